//! Flink ML's iterative estimators on Weir against scikit-learn: LogisticRegression (100
//! dense features, 20 iterations) and KMeans (k = 2, 10 dims, 20 iterations) fitted on 1M
//! rows, at 1 and 2 workers.
//!
//! The data is generated deterministically (a splitmix64 stream per row, so any worker can
//! build its own rows) and written once, as raw little-endian f64, to a temporary directory
//! that the scikit-learn baseline `scripts/sklearn_estimator_bench.py` reads: both fit the
//! same rows.
//! - LogisticRegression: features uniform in [-1, 1), labels `dot(x, w) + N(0, 1) > 0` for a
//!   fixed `w ~ N(0, 1)`. Weir: `maxIter` 20, `globalBatchSize` = all rows (every round a full
//!   pass, full-batch gradient descent), `tol` 0, `learningRate` 1, no regularisation.
//!   scikit-learn: `LogisticRegression(solver='lbfgs', max_iter=20, tol=0,
//!   fit_intercept=False, C=inf)`: 20 L-BFGS iterations, each at least one full pass for the
//!   loss and gradient. Both report their accuracy on the training rows.
//! - KMeans: a stretched Gaussian cloud (standard deviations 1.0 down to 0.9 over the 10
//!   dims), where Lloyd's iterations keep turning the split between the two clusters and do
//!   not converge within 20 rounds (the rounds run are reported for both). Weir: `k` 2,
//!   `maxIter` 20, `initMode` random. scikit-learn: `KMeans(n_clusters=2, max_iter=20,
//!   n_init=1, init='random', algorithm='lloyd', tol=0)`. Both report their inertia.
//!
//! Weir's input is in memory before timing, in batches of 4000 rows (an even split at 2
//! workers: 250 batches): each worker builds its own share on its own thread, as a source
//! instance would, and hands it to the job through `Table::from_batches`; the clock starts
//! once all shares are built (plus the measured start-up time of an empty job) and stops
//! when the fit job (fit and a sink of the model data) ends. Each estimator and worker count
//! runs in a process of its own (the bench starts itself with `--estimator-child`), once to
//! warm up and then 3 times (median). scikit-learn's `fit` is timed the same way (data
//! loaded first, median of 3), with its default threads and with one thread (OpenMP and
//! BLAS limited through threadpoolctl); the ratio is against the faster of the two.
//!
//! Memory: the peak RSS (`VmHWM`, reset before each run) and its rise over the RSS when the
//! clock started (input built), in MB per million rows; the same for scikit-learn.
//!
//! `cargo bench --bench flink_ml_estimators_vs_sklearn` prints the table and writes
//! `target/bench/flink_ml_estimators_vs_sklearn.json`; `-- --rows N`, `-- --estimators
//! logreg,kmeans` and `-- --no-sklearn` narrow it, and `-- --only-workers N` times the Weir
//! fits at N workers only, in this process (to profile them). Under `cargo test` it does a
//! small smoke run of the Weir side only.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use serde_json::{json, Map, Value as Json};
use weir::flink_ml::api::Stage;
use weir::flink_ml::classification::{LinearModelData, LogisticRegression};
use weir::flink_ml::clustering::{KMeans, KMeansModelData};
use weir::flink_ml::table::{Column, DataType, RowBatch, Schema, Table, TableCollector};
use weir::prelude::*;

#[path = "support/bench_process.rs"]
#[allow(dead_code)]
mod bench_process;

use bench_process::{arg_value, bench_python, reset_peak_memory, status_bytes, JobClock};

/// Rows per input batch: 1M rows are 250 batches, 125 per worker at 2 workers.
const BATCH_ROWS: usize = 4000;
/// Iterations of both estimators.
const ITERATIONS: u64 = 20;
/// LogisticRegression's features.
const LR_DIM: usize = 100;
/// KMeans' dims and clusters.
const KM_DIM: usize = 10;
const KM_K: usize = 2;
/// The seed of the data.
const SEED: u64 = 0x5EED_2024;

/// The estimators, by key.
const ESTIMATORS: [&str; 2] = ["logreg", "kmeans"];

// ---------------------------------------------------------------------------------------
// Data: a splitmix64 stream per row.

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

struct Rng(u64);

impl Rng {
    fn new(stream: u64, index: u64) -> Rng {
        Rng(splitmix(
            SEED ^ splitmix(stream) ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03),
        ))
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        splitmix(self.0)
    }

    /// Uniform in [0, 1).
    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Standard normal (Box-Muller, one of the pair).
    fn gaussian(&mut self) -> f64 {
        let u = 1.0 - self.uniform();
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// The true coefficient of the LogisticRegression data.
fn true_coefficient() -> Vec<f64> {
    let mut rng = Rng::new(1, u64::MAX);
    (0..LR_DIM).map(|_| rng.gaussian()).collect()
}

/// LogisticRegression row `r`: its features into `x`, its label.
fn lr_row(r: usize, w: &[f64], x: &mut [f64]) -> f64 {
    let mut rng = Rng::new(2, r as u64);
    x.iter_mut().for_each(|v| *v = 2.0 * rng.uniform() - 1.0);
    let margin: f64 = x.iter().zip(w).map(|(a, b)| a * b).sum::<f64>() + rng.gaussian();
    if margin > 0.0 {
        1.0
    } else {
        0.0
    }
}

/// KMeans row `r` into `x`: a Gaussian with standard deviations from 1.0 down to 0.9.
fn km_row(r: usize, x: &mut [f64]) {
    let mut rng = Rng::new(3, r as u64);
    let dims = x.len();
    for (j, v) in x.iter_mut().enumerate() {
        *v = rng.gaussian() * (1.0 - 0.1 * j as f64 / (dims - 1) as f64);
    }
}

/// One estimator's benchmark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Estimator {
    LogReg,
    KMeans,
}

impl Estimator {
    fn of(key: &str) -> Estimator {
        match key {
            "logreg" => Estimator::LogReg,
            "kmeans" => Estimator::KMeans,
            other => panic!("unknown estimator {other}"),
        }
    }

    fn key(self) -> &'static str {
        match self {
            Estimator::LogReg => "logreg",
            Estimator::KMeans => "kmeans",
        }
    }

    fn dim(self) -> usize {
        match self {
            Estimator::LogReg => LR_DIM,
            Estimator::KMeans => KM_DIM,
        }
    }

    fn schema(self) -> Schema {
        match self {
            Estimator::LogReg => Schema::new([
                ("features", DataType::DenseVector),
                ("label", DataType::Double),
            ]),
            Estimator::KMeans => Schema::new([("features", DataType::DenseVector)]),
        }
    }

    /// The input's size in bytes (features and labels as f64).
    fn input_bytes(self, rows: usize) -> u64 {
        let per_row = self.dim() + usize::from(self == Estimator::LogReg);
        (8 * per_row * rows) as u64
    }

    /// The stage, its params set.
    fn stage(self, rows: usize) -> Box<dyn Stage> {
        let mut stage: Box<dyn Stage> = match self {
            Estimator::LogReg => Box::new(LogisticRegression::new()),
            Estimator::KMeans => Box::new(KMeans::new()),
        };
        let params = match self {
            Estimator::LogReg => json!({
                "maxIter": ITERATIONS,
                "globalBatchSize": rows,
                "tol": 0.0,
                "learningRate": 1.0,
                "reg": 0.0,
            }),
            Estimator::KMeans => json!({
                "k": KM_K,
                "maxIter": ITERATIONS,
                "initMode": "random",
            }),
        };
        stage
            .param_map_mut()
            .update_from_json(params.as_object().unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", self.key()));
        stage
    }

    /// Rows `start..start + len` as a batch.
    fn batch(self, w: &[f64], start: usize, len: usize) -> RowBatch {
        let dim = self.dim();
        let mut values = vec![0.0; len * dim];
        let mut labels = Vec::with_capacity(len);
        for (i, x) in values.chunks_exact_mut(dim).enumerate() {
            match self {
                Estimator::LogReg => labels.push(lr_row(start + i, w, x)),
                Estimator::KMeans => km_row(start + i, x),
            }
        }
        let mut columns = vec![Column::DenseVector { dim, values }];
        if self == Estimator::LogReg {
            columns.push(Column::Double(labels));
        }
        RowBatch::new(len, columns)
    }

    /// Worker `w`'s input of a run: instance `w` of the source emits the batches at positions
    /// `w, w + workers, …` of its vector, so the vector holds the worker's own batches there
    /// and empty placeholder batches elsewhere.
    fn worker_share(self, rows: usize, workers: usize, worker: usize) -> Vec<RowBatch> {
        let w = true_coefficient();
        (0..rows.div_ceil(BATCH_ROWS))
            .map(|k| {
                if k % workers != worker {
                    return RowBatch::default();
                }
                let start = k * BATCH_ROWS;
                self.batch(&w, start, BATCH_ROWS.min(rows - start))
            })
            .collect()
    }

    /// Writes the whole input for the baseline: `<key>_x.f64` (rows × dim) and, for
    /// LogisticRegression, `<key>_y.f64`.
    fn write_files(self, dir: &Path, rows: usize) {
        let w = true_coefficient();
        let file = |suffix: &str| {
            let path = dir.join(format!("{}_{suffix}.f64", self.key()));
            BufWriter::with_capacity(
                1 << 20,
                std::fs::File::create(&path).unwrap_or_else(|e| panic!("{path:?}: {e}")),
            )
        };
        let mut xs = file("x");
        let mut ys = (self == Estimator::LogReg).then(|| file("y"));
        let mut start = 0;
        while start < rows {
            let batch = self.batch(&w, start, BATCH_ROWS.min(rows - start));
            let columns = batch.columns();
            if let Column::DenseVector { values, .. } = &*columns[0] {
                for v in values {
                    xs.write_all(&v.to_le_bytes()).unwrap();
                }
            }
            if let (Some(ys), Some(Column::Double(labels))) =
                (ys.as_mut(), columns.get(1).map(|c| &**c))
            {
                for v in labels {
                    ys.write_all(&v.to_le_bytes()).unwrap();
                }
            }
            start += batch.rows();
        }
        xs.flush().unwrap();
        if let Some(mut ys) = ys {
            ys.flush().unwrap();
        }
    }

    /// The fitted model's quality on the training rows: LogisticRegression's accuracy,
    /// KMeans' inertia (sum of squared distances to the closest centroid).
    fn quality(self, model: &Model, rows: usize) -> f64 {
        let w = true_coefficient();
        let mut x = vec![0.0; self.dim()];
        match model {
            Model::Linear(coefficient) => {
                let correct = (0..rows)
                    .filter(|&r| {
                        let label = lr_row(r, &w, &mut x);
                        let dot: f64 = x.iter().zip(coefficient).map(|(a, b)| a * b).sum();
                        let predicted = if dot >= 0.0 { 1.0 } else { 0.0 };
                        predicted == label
                    })
                    .count();
                correct as f64 / rows as f64
            }
            Model::Centroids(centroids) => (0..rows)
                .map(|r| {
                    km_row(r, &mut x);
                    centroids
                        .iter()
                        .map(|c| c.iter().zip(&x).map(|(a, b)| (a - b) * (a - b)).sum())
                        .fold(f64::INFINITY, f64::min)
                })
                .sum(),
        }
    }
}

/// A fitted model, read back from its model data table.
enum Model {
    Linear(Vec<f64>),
    Centroids(Vec<Vec<f64>>),
}

// ---------------------------------------------------------------------------------------
// Weir.

/// One measured run of the Weir fit.
struct Run {
    time: Duration,
    /// The busiest operators: name and busy time summed over instances (ms).
    busy: Vec<(String, f64)>,
    rounds: u64,
    peak_rss: Option<u64>,
    start_rss: Option<u64>,
    model: Model,
}

/// The fit job: each worker builds its share of the input in the job's build closure, on its
/// own thread; the job fits the estimator and collects its model data. The [`JobClock`]
/// counts the whole job but the building of the shares.
fn weir_run(estimator: Estimator, rows: usize, workers: usize) -> Run {
    let stage = estimator.stage(rows);
    let built = Arc::new(Barrier::new(workers));
    let out = TableCollector::new();
    let sink = out.clone();
    reset_peak_memory();
    let clock = JobClock::new();
    let job_clock = Arc::clone(&clock);
    let report = execute(Config::threads(workers).with_verbose(false), move |job| {
        job_clock.entered();
        let batches = estimator.worker_share(rows, job.workers(), job.worker_index());
        if built.wait().is_leader() {
            job_clock.start();
        }
        let input = Table::from_batches(job, "input", estimator.schema(), batches);
        let fitted = stage.fit(job, vec![input])?;
        let data = fitted.model_data.into_iter().next().expect("model data");
        data.collect("model", &sink);
        Ok(())
    })
    .unwrap_or_else(|e| panic!("{}: {e}", estimator.key()));
    let (time, start_rss) = clock.stop();
    let peak_rss = status_bytes("VmHWM:");
    // The rounds: partials the reducer received, over the instances that sent them.
    let iterate = report
        .operators
        .iter()
        .find(|o| o.kind == "iterate")
        .expect("an iterate operator");
    let reduce = report
        .operators
        .iter()
        .find(|o| o.kind == "iterate-reduce")
        .expect("an iterate-reduce operator");
    let rounds = reduce.records_in / iterate.parallelism.max(1) as u64;
    let schema = out.schema().expect("the model data's schema");
    let batches = out.batches();
    let model = match estimator {
        Estimator::LogReg => Model::Linear(
            LinearModelData::from_batches("LogisticRegressionModel", &schema, &batches)
                .expect("LogisticRegression model data")
                .coefficient,
        ),
        Estimator::KMeans => Model::Centroids(
            KMeansModelData::from_batches(&schema, &batches)
                .expect("KMeans model data")
                .centroids,
        ),
    };
    let mut busy: Vec<(String, f64)> = report
        .operators
        .iter()
        .map(|o| (o.name.clone(), o.busy_ms))
        .collect();
    busy.sort_by(|a, b| b.1.total_cmp(&a.1));
    busy.truncate(4);
    Run {
        time,
        busy,
        rounds,
        peak_rss,
        start_rss,
        model,
    }
}

/// The median of the timed runs, the largest peak RSS, the rounds run and the quality.
struct Measured {
    median: Duration,
    busy: Vec<(String, f64)>,
    times: Vec<Duration>,
    peak_rss: Option<u64>,
    start_rss: Option<u64>,
    rounds: u64,
    quality: f64,
}

impl Measured {
    fn to_json(&self) -> Json {
        json!({
            "median_s": self.median.as_secs_f64(),
            "seconds": self.times.iter().map(|t| t.as_secs_f64()).collect::<Vec<_>>(),
            "peak_rss_bytes": self.peak_rss,
            "start_rss_bytes": self.start_rss,
            "rounds": self.rounds,
            "quality": self.quality,
        })
    }

    fn from_json(json: &Json) -> Measured {
        let secs = |v: &Json| Duration::from_secs_f64(v.as_f64().expect("seconds"));
        Measured {
            median: secs(&json["median_s"]),
            busy: Vec::new(),
            times: json["seconds"]
                .as_array()
                .expect("seconds")
                .iter()
                .map(secs)
                .collect(),
            peak_rss: json["peak_rss_bytes"].as_u64(),
            start_rss: json["start_rss_bytes"].as_u64(),
            rounds: json["rounds"].as_u64().expect("rounds"),
            quality: json["quality"].as_f64().expect("quality"),
        }
    }

    /// The peak's rise over the RSS at the start, in bytes.
    fn rise(&self) -> Option<u64> {
        Some(self.peak_rss?.saturating_sub(self.start_rss?))
    }
}

fn measure(
    estimator: Estimator,
    rows: usize,
    workers: usize,
    warmup: usize,
    runs: usize,
) -> Measured {
    for _ in 0..warmup {
        weir_run(estimator, rows, workers);
    }
    let mut all: Vec<Run> = (0..runs)
        .map(|_| weir_run(estimator, rows, workers))
        .collect();
    all.sort_by_key(|r| r.time);
    let median = &all[all.len() / 2];
    Measured {
        median: median.time,
        busy: median.busy.clone(),
        times: all.iter().map(|r| r.time).collect(),
        peak_rss: all.iter().filter_map(|r| r.peak_rss).max(),
        start_rss: all.iter().filter_map(|r| r.start_rss).max(),
        rounds: median.rounds,
        quality: estimator.quality(&median.model, rows),
    }
}

/// [`measure`] in a child process (`--estimator-child KEY --child-workers N`), so that what
/// one measurement leaves in the allocator's arenas (and in the RSS) does not weigh on the
/// next.
fn measure_in_child(estimator: Estimator, rows: usize, workers: usize) -> Measured {
    let exe = std::env::current_exe().expect("the bench's own path");
    let output = Command::new(exe)
        .args(["--bench", "--estimator-child", estimator.key()])
        .args([
            "--child-workers",
            &workers.to_string(),
            "--rows",
            &rows.to_string(),
        ])
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("run the bench for one estimator");
    assert!(
        output.status.success(),
        "{} at -w {workers}: the child process failed ({})",
        estimator.key(),
        output.status
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    let json: Json = serde_json::from_str(line).unwrap_or_else(|e| {
        panic!(
            "{} at -w {workers}: no JSON from the child ({e}): {stdout}",
            estimator.key()
        )
    });
    Measured::from_json(&json)
}

// ---------------------------------------------------------------------------------------
// scikit-learn.

/// Writes the data of `estimators` to a temporary directory and runs
/// `scripts/sklearn_estimator_bench.py` on it: its JSON.
fn sklearn_baseline(python: &Path, rows: usize, runs: usize, estimators: &[Estimator]) -> Json {
    let dir = tempfile::tempdir().expect("a temporary directory for the data");
    for e in estimators {
        e.write_files(dir.path(), rows);
    }
    let keys: Vec<&str> = estimators.iter().map(|e| e.key()).collect();
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/sklearn_estimator_bench.py");
    let output = Command::new(python)
        .arg(&script)
        .args(["--rows", &rows.to_string(), "--runs", &runs.to_string()])
        .args(["--estimators", &keys.join(",")])
        .args(["--iterations", &ITERATIONS.to_string()])
        .arg("--data-dir")
        .arg(dir.path())
        .stderr(std::process::Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    assert!(
        output.status.success(),
        "{} failed ({})",
        script.display(),
        output.status
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "{} printed no JSON ({e}): {}",
            script.display(),
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

// ---------------------------------------------------------------------------------------

/// Bytes per million rows, in MB (10^6 bytes).
fn mb_per_million(bytes: Option<u64>, rows: usize) -> Option<f64> {
    bytes.map(|b| b as f64 / 1e6 / (rows as f64 / 1e6))
}

fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.digits$}"))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let benchmarking = args.iter().any(|a| a == "--bench");
    let rows: usize = arg_value(&args, "--rows")
        .map(|r| r.parse().expect("--rows N"))
        .unwrap_or(if benchmarking { 1_000_000 } else { 20_000 });
    let (warmup, runs) = if benchmarking { (1, 3) } else { (0, 1) };
    let selected: Vec<Estimator> = match arg_value(&args, "--estimators") {
        Some(list) => ESTIMATORS
            .into_iter()
            .filter(|s| list.split(',').any(|x| x == *s))
            .map(Estimator::of)
            .collect(),
        None => ESTIMATORS.into_iter().map(Estimator::of).collect(),
    };
    // `--estimator-child KEY --child-workers N`: the process `measure_in_child` starts.
    if let Some(key) = arg_value(&args, "--estimator-child") {
        let workers = arg_value(&args, "--child-workers")
            .and_then(|w| w.parse().ok())
            .expect("--child-workers N");
        let m = measure(Estimator::of(&key), rows, workers, warmup, runs);
        println!("{}", m.to_json());
        return;
    }
    // `--only-workers N`: time the Weir fits at N workers only (for profiling them).
    let only_workers: Option<usize> =
        arg_value(&args, "--only-workers").map(|w| w.parse().expect("--only-workers N"));
    let with_sklearn =
        benchmarking && only_workers.is_none() && !args.iter().any(|a| a == "--no-sklearn");
    // Fail before the long Weir runs when the baseline cannot run.
    let python = with_sklearn.then(|| {
        bench_python(&["numpy", "sklearn", "threadpoolctl"]).unwrap_or_else(|e| panic!("{e}"))
    });
    let work = |rounds: u64, d: Duration| rows as f64 * rounds as f64 / d.as_secs_f64();

    let mut weir = Vec::new();
    for &estimator in &selected {
        if let Some(workers) = only_workers {
            let m = measure(estimator, rows, workers, warmup, runs);
            println!(
                "{:8} weir -w {workers} {:>8.3} s {:>14.0} row-iterations/s ({} rounds, quality {:.4})",
                estimator.key(),
                m.median.as_secs_f64(),
                work(m.rounds, m.median),
                m.rounds,
                m.quality
            );
            for (name, ms) in &m.busy {
                println!("    busy {name}: {ms:.0} ms");
            }
            continue;
        }
        let at = |workers| {
            if benchmarking {
                measure_in_child(estimator, rows, workers)
            } else {
                measure(estimator, rows, workers, warmup, runs)
            }
        };
        let (w1, w2) = (at(1), at(2));
        assert_eq!(
            w1.rounds,
            w2.rounds,
            "{}: the same rounds at 1 and 2 workers",
            estimator.key()
        );
        println!(
            "{:8} weir -w 1 {:.3} s  -w 2 {:.3} s  (w2/w1 {:.2}x; {} rounds; quality {:.4} / {:.4})",
            estimator.key(),
            w1.median.as_secs_f64(),
            w2.median.as_secs_f64(),
            w1.median.as_secs_f64() / w2.median.as_secs_f64(),
            w1.rounds,
            w1.quality,
            w2.quality,
        );
        weir.push((estimator, w1, w2));
    }
    if only_workers.is_some() {
        return;
    }

    let sklearn = match &python {
        Some(python) if !weir.is_empty() => {
            let estimators: Vec<Estimator> = weir.iter().map(|(e, ..)| *e).collect();
            sklearn_baseline(python, rows, runs, &estimators)
        }
        _ => Json::Null,
    };

    println!();
    println!(
        "Flink ML estimators, fit, {rows} rows, {ITERATIONS} iterations, median of {runs} \
         (throughput in row-iterations/s; memory: rise of the peak RSS over the RSS with the \
         input built, MB per 1M rows)"
    );
    println!(
        "{:8} {:>9} {:>9} {:>9} {:>9} {:>7} {:>7} {:>6} {:>7} {:>7} {:>7} {:>7} {:>9} {:>9}",
        "model",
        "sk s",
        "sk1 s",
        "weir w1 s",
        "weir w2 s",
        "w2/sk",
        "w2/sk1",
        "w2/w1",
        "sk MB",
        "w1 MB",
        "w2 MB",
        "rounds",
        "sk qual",
        "weir qual"
    );
    let mut results = Map::new();
    for (estimator, w1, w2) in &weir {
        let sk = sklearn
            .get("estimators")
            .and_then(|s| s.get(estimator.key()));
        let variant = |name: &str| sk.and_then(|s| s.get(name));
        let seconds = |v: Option<&Json>| v.and_then(|v| v["median_s"].as_f64());
        let (sk_default, sk_one) = (variant("default_threads"), variant("one_thread"));
        let sk_iters = |v: Option<&Json>| v.and_then(|v| v["n_iter"].as_u64());
        let sk_rate = |v: Option<&Json>| Some(rows as f64 * sk_iters(v)? as f64 / seconds(v)?);
        let w2_rate = work(w2.rounds, w2.median);
        let over = |v: Option<&Json>| sk_rate(v).map(|r| w2_rate / r);
        // Against the faster of scikit-learn's two settings.
        let over_best = match (over(sk_default), over(sk_one)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let speedup = w1.median.as_secs_f64() / w2.median.as_secs_f64();
        let sk_rise = |v: Option<&Json>| {
            let v = v?;
            Some(
                v["peak_rss_bytes"]
                    .as_u64()?
                    .saturating_sub(v["start_rss_bytes"].as_u64()?),
            )
        };
        let sk_mb = match (sk_rise(sk_default), sk_rise(sk_one)) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        let sk_quality = sk_default.and_then(|v| v["quality"].as_f64());
        println!(
            "{:8} {:>9} {:>9} {:>9.3} {:>9.3} {:>7} {:>7} {:>5.2}x {:>7} {:>7} {:>7} {:>7} {:>9} {:>9.4}",
            estimator.key(),
            fmt_opt(seconds(sk_default), 3),
            fmt_opt(seconds(sk_one), 3),
            w1.median.as_secs_f64(),
            w2.median.as_secs_f64(),
            over(sk_default).map_or("-".into(), |r| format!("{r:.2}x")),
            over(sk_one).map_or("-".into(), |r| format!("{r:.2}x")),
            speedup,
            fmt_opt(mb_per_million(sk_mb, rows), 0),
            fmt_opt(mb_per_million(w1.rise(), rows), 0),
            fmt_opt(mb_per_million(w2.rise(), rows), 0),
            format!(
                "{}/{}",
                w2.rounds,
                sk_iters(sk_default).map_or("-".into(), |n| n.to_string())
            ),
            fmt_opt(sk_quality, 4),
            w2.quality,
        );
        let weir_json = |m: &Measured| {
            let mut j = m.to_json();
            j["row_iterations_per_s"] = json!(work(m.rounds, m.median));
            j["peak_rise_mb_per_million_rows"] = json!(mb_per_million(m.rise(), rows));
            j["peak_mb_per_million_rows"] = json!(mb_per_million(m.peak_rss, rows));
            j
        };
        results.insert(
            estimator.key().to_string(),
            json!({
                "input_bytes": estimator.input_bytes(rows),
                "weir_w1": weir_json(w1),
                "weir_w2": weir_json(w2),
                "sklearn": sk,
                "sklearn_peak_rise_mb_per_million_rows": mb_per_million(sk_mb, rows),
                "w2_over_sklearn_default_threads": over(sk_default),
                "w2_over_sklearn_one_thread": over(sk_one),
                "w2_over_sklearn_best": over_best,
                "w2_over_w1": speedup,
                "meets_3x_sklearn": over_best.map(|r| r >= 3.0),
                "meets_1_6x_scaling": speedup >= 1.6,
            }),
        );
    }
    if benchmarking {
        std::fs::create_dir_all("target/bench").unwrap();
        let report = json!({
            "rows": rows,
            "runs": runs,
            "warmup": warmup,
            "iterations": ITERATIONS,
            "batch_rows": BATCH_ROWS,
            "estimators": results,
            "sklearn": sklearn,
        });
        std::fs::write(
            "target/bench/flink_ml_estimators_vs_sklearn.json",
            serde_json::to_string_pretty(&report).unwrap() + "\n",
        )
        .unwrap();
    }
}
