//! Flink ML's feature stages on Weir against scikit-learn: StandardScaler, MinMaxScaler,
//! VectorAssembler, HashingTF and StringIndexer on 1M rows of the shapes of Flink ML's own
//! benchmark files (`benches/flink-ml/<stage>-benchmark.json`: the stage's params and the
//! generator's dims, columns, array sizes and distinct values, with `numValues` set to 1M).
//!
//! The input is built in memory before timing, in batches of 4096 rows (Flink's generator
//! rows, cycled): each worker builds its own share on its own thread, as a source instance
//! would, and hands it to the job through `Table::from_batches`; the clock counts the whole
//! job (its start, building and running the dataflow, shutting down) but the building of the
//! shares. Estimators run `fit` and `Fitted::transform` of the same table in one job;
//! transformers run `transform`; a sink counts the output rows. Each stage runs at 1 and 2
//! workers, once to warm up and then at least 5 times (median; up to 25 times for a job
//! of a few milliseconds, see `runs_for`), each
//! stage and worker count in a process of its own (the bench starts itself with
//! `--stage-child`). The same command then runs the scikit-learn baseline
//! `scripts/sklearn_feature_bench.py` (same shapes, median of 5) with
//! the pinned Python at `$WEIR_BENCH_PYTHON` or `~/.cache/weir/bench-venv/bin/python`
//! (`bash scripts/install-bench-python.sh` makes it).
//!
//! `cargo bench --bench flink_ml_vs_sklearn` prints the table and writes
//! `target/bench/flink_ml_vs_sklearn.json`; `-- --rows N`, `-- --stages a,b` and
//! `-- --no-sklearn` narrow it, and `-- --only-workers N` times the Weir jobs at N workers
//! only (to profile them). Under `cargo test` it does a small smoke run of the Weir side
//! only. Stages not in the class registry (yet) are reported as missing, not failed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use serde_json::{json, Map, Value as Json};
use weir::flink_ml::api::{new_stage, Stage, StageKind};
use weir::flink_ml::benchmark::DataGenerator;
use weir::flink_ml::table::{Column, RowBatch, Schema, Table, DEFAULT_BATCH_ROWS};
use weir::prelude::*;

#[path = "support/bench_process.rs"]
#[allow(dead_code)]
mod bench_process;

use bench_process::{arg_value, bench_python, reset_peak_memory, status_bytes, JobClock};

/// The stages, by the stem of their Flink ML benchmark file.
const STAGES: [&str; 5] = [
    "standardscaler",
    "minmaxscaler",
    "vectorassembler",
    "hashingtf",
    "stringindexer",
];

/// One stage's benchmark: the stage (params set from the file) and its data generator.
struct StageBench {
    key: &'static str,
    class: String,
    stage: Option<Box<dyn Stage>>,
    missing: Option<String>,
    generator: DataGenerator,
    /// Flink's generator rows that the input cycles through.
    distinct_rows: RowBatch,
}

/// Reads `benches/flink-ml/<key>-benchmark.json` (line comments allowed, as in Flink's files).
fn benchmark_entry(key: &str) -> Map<String, Json> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("benches/flink-ml")
        .join(format!("{key}-benchmark.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let json: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let file: Map<String, Json> =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let (_, entry) = file
        .into_iter()
        .find(|(k, _)| k != "version")
        .unwrap_or_else(|| panic!("{path:?} has no benchmark"));
    match entry {
        Json::Object(entry) => entry,
        _ => panic!("{path:?}: the benchmark is not an object"),
    }
}

fn class_and_params(entry: &Map<String, Json>, key: &str) -> (String, Map<String, Json>) {
    let part = &entry[key];
    let class = part["className"].as_str().expect("className").to_string();
    let params = part
        .get("paramMap")
        .and_then(Json::as_object)
        .cloned()
        .unwrap_or_default();
    (class, params)
}

impl StageBench {
    fn load(key: &'static str, rows: usize) -> StageBench {
        let entry = benchmark_entry(key);
        let (class, params) = class_and_params(&entry, "stage");
        let (stage, missing) = match new_stage(&class) {
            Ok(mut stage) => {
                stage
                    .param_map_mut()
                    .update_from_json(&params)
                    .unwrap_or_else(|e| panic!("{key}: {e}"));
                (Some(stage), None)
            }
            Err(e) => (None, Some(e.to_string())),
        };
        let (gen_class, mut gen_params) = class_and_params(&entry, "inputData");
        gen_params.insert("numValues".into(), json!(rows));
        let generator =
            DataGenerator::parse(&gen_class, &gen_params).unwrap_or_else(|e| panic!("{key}: {e}"));
        let distinct_rows = generator.pregenerated();
        StageBench {
            key,
            class,
            stage,
            missing,
            generator,
            distinct_rows,
        }
    }

    fn schema(&self) -> &Schema {
        self.generator.schema()
    }

    /// The input's size in bytes (as `RowBatch::weight` counts), from its first batch.
    fn input_bytes(&self, rows: usize) -> f64 {
        let first = rows.min(DEFAULT_BATCH_ROWS);
        cycled_batch(&self.distinct_rows, 0, first).weight() as f64 * rows as f64 / first as f64
    }
}

/// Rows `start..start + len` of the input: Flink's generator rows `pre`, cycled.
fn cycled_batch(pre: &RowBatch, start: usize, len: usize) -> RowBatch {
    let m = pre.rows();
    let rows = (start..start + len).map(|r| r % m);
    let columns = pre
        .columns()
        .iter()
        .map(|column| match &**column {
            Column::Double(c) => Column::Double(rows.clone().map(|r| c[r]).collect()),
            Column::String(c) => Column::String(rows.clone().map(|r| &c[r]).collect()),
            Column::StringArray(c) => {
                Column::StringArray(rows.clone().map(|r| c[r].clone()).collect())
            }
            Column::DenseVector { dim, values } => {
                let mut out = Vec::with_capacity(len * dim);
                for r in rows.clone() {
                    out.extend_from_slice(&values[r * dim..(r + 1) * dim]);
                }
                Column::DenseVector {
                    dim: *dim,
                    values: out,
                }
            }
            other => panic!("no generator of {} columns here", other.data_type()),
        })
        .collect();
    RowBatch::new(len, columns)
}

/// Worker `w`'s input of a run: instance `w` of the source emits the batches at positions
/// `w, w + workers, …` of its vector, so the vector holds the worker's own batches there and
/// empty placeholder batches elsewhere.
fn worker_share(pre: &RowBatch, rows: usize, workers: usize, w: usize) -> Vec<RowBatch> {
    (0..rows.div_ceil(DEFAULT_BATCH_ROWS))
        .map(|k| {
            if k % workers != w {
                return RowBatch::default();
            }
            let start = k * DEFAULT_BATCH_ROWS;
            cycled_batch(pre, start, DEFAULT_BATCH_ROWS.min(rows - start))
        })
        .collect()
}

/// One measured run of the Weir job.
struct Run {
    time: Duration,
    output_rows: u64,
    peak_rss: Option<u64>,
    start_rss: Option<u64>,
}

/// The job: the input table, fit + transform (estimators) or transform, a counting sink.
///
/// Each worker builds its share of the input in the job's build closure, on its own thread
/// (as a source instance reads its split on its worker, so the input is in that worker's
/// allocator arena). The [`JobClock`] counts the whole job but the building of the shares.
fn weir_run(bench: &StageBench, rows: usize, workers: usize) -> Run {
    let stage = bench.stage.as_ref().expect("an available stage").clone();
    let schema = bench.schema().clone();
    let pre = Arc::new(bench.distinct_rows.clone());
    let built = Arc::new(Barrier::new(workers));
    let count = Arc::new(AtomicU64::new(0));
    let sink = Arc::clone(&count);
    reset_peak_memory();
    let clock = JobClock::new();
    let job_clock = Arc::clone(&clock);
    execute(Config::threads(workers).with_verbose(false), move |job| {
        job_clock.entered();
        let batches = worker_share(&pre, rows, job.workers(), job.worker_index());
        if built.wait().is_leader() {
            job_clock.start();
        }
        let input = Table::from_batches(job, "input", schema.clone(), batches);
        let outputs = if stage.kind() == StageKind::Estimator {
            let fitted = stage.fit(job, vec![input.clone()])?;
            fitted.transform(job, vec![input])?
        } else {
            stage.transform(job, vec![input])?
        };
        for (i, output) in outputs.into_iter().enumerate() {
            let sink = Arc::clone(&sink);
            output.stream.for_each(format!("count{i}"), move |batch| {
                sink.fetch_add(batch.rows() as u64, Ordering::Relaxed);
            });
        }
        Ok(())
    })
    .unwrap_or_else(|e| panic!("{}: {e}", bench.key));
    let (time, start_rss) = clock.stop();
    Run {
        time,
        output_rows: count.load(Ordering::Relaxed),
        peak_rss: status_bytes("VmHWM:"),
        start_rss,
    }
}

/// The median of `runs` runs after `warmup` warm-up runs, and the largest peak RSS.
struct Measured {
    median: Duration,
    times: Vec<Duration>,
    peak_rss: Option<u64>,
    start_rss: Option<u64>,
}

impl Measured {
    fn to_json(&self) -> Json {
        json!({
            "median_s": self.median.as_secs_f64(),
            "seconds": self.times.iter().map(|t| t.as_secs_f64()).collect::<Vec<_>>(),
            "peak_rss_bytes": self.peak_rss,
            "start_rss_bytes": self.start_rss,
        })
    }

    fn from_json(json: &Json) -> Measured {
        let secs = |v: &Json| Duration::from_secs_f64(v.as_f64().expect("seconds"));
        Measured {
            median: secs(&json["median_s"]),
            times: json["seconds"]
                .as_array()
                .expect("seconds")
                .iter()
                .map(secs)
                .collect(),
            peak_rss: json["peak_rss_bytes"].as_u64(),
            start_rss: json["start_rss_bytes"].as_u64(),
        }
    }
}

/// A stage at 1 and 2 workers: in this process, or (`isolated`) each worker count in a
/// child process of this bench, so that what one measurement leaves in the allocator's
/// arenas (and in the RSS) does not weigh on the next.
fn measure_stage(
    bench: &StageBench,
    rows: usize,
    warmup: usize,
    runs: usize,
    isolated: bool,
) -> (Measured, Measured) {
    let at = |workers: usize| {
        if isolated {
            measure_in_child(bench, rows, workers)
        } else {
            measure(bench, rows, workers, warmup, runs)
        }
    };
    (at(1), at(2))
}

/// [`measure`] in a child process (`--stage-child KEY --child-workers N`).
fn measure_in_child(bench: &StageBench, rows: usize, workers: usize) -> Measured {
    let exe = std::env::current_exe().expect("the bench's own path");
    let output = Command::new(exe)
        .args(["--bench", "--stage-child", bench.key])
        .args([
            "--child-workers",
            &workers.to_string(),
            "--rows",
            &rows.to_string(),
        ])
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("run the bench for one stage");
    assert!(
        output.status.success(),
        "{} at -w {workers}: the child process failed ({})",
        bench.key,
        output.status
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    let json: Json = serde_json::from_str(line).unwrap_or_else(|e| {
        panic!(
            "{} at -w {workers}: no JSON from the child ({e}): {stdout}",
            bench.key
        )
    });
    Measured::from_json(&json)
}

fn measure(
    bench: &StageBench,
    rows: usize,
    workers: usize,
    warmup: usize,
    runs: usize,
) -> Measured {
    let mut warmed = Duration::MAX;
    for _ in 0..warmup {
        warmed = weir_run(bench, rows, workers).time;
    }
    let runs = runs_for(runs, warmed);
    let mut all: Vec<Run> = (0..runs).map(|_| weir_run(bench, rows, workers)).collect();
    for run in &all {
        assert_eq!(
            run.output_rows, rows as u64,
            "{} at -w {workers}: every input row comes out",
            bench.key
        );
    }
    all.sort_by_key(|r| r.time);
    Measured {
        median: all[all.len() / 2].time,
        times: all.iter().map(|r| r.time).collect(),
        peak_rss: all.iter().filter_map(|r| r.peak_rss).max(),
        start_rss: all.iter().filter_map(|r| r.start_rss).max(),
    }
}

/// At least `runs` runs, and more (up to 25, an odd number) for a job of a few
/// milliseconds, so that its median covers at least half a second: a short job's time
/// varies with every other thing the machine does meanwhile.
fn runs_for(runs: usize, one: Duration) -> usize {
    let fill = (Duration::from_millis(500).as_secs_f64() / one.as_secs_f64().max(1e-6)) as usize;
    fill.clamp(runs, 25.max(runs)) | 1
}

/// Runs `scripts/sklearn_feature_bench.py` and returns its JSON.
fn sklearn_baseline(python: &Path, rows: usize, runs: usize, stages: &[&str]) -> Json {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/sklearn_feature_bench.py");
    let output = Command::new(python)
        .arg(&script)
        .args(["--rows", &rows.to_string(), "--runs", &runs.to_string()])
        .args(["--stages", &stages.join(",")])
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

/// `object` with `key` set to `value`.
fn dict(mut object: Json, key: &str, value: Json) -> Json {
    object[key] = value;
    object
}

fn mib(bytes: Option<u64>) -> String {
    bytes.map_or("-".into(), |b| format!("{}", b >> 20))
}

/// Peak RSS and how far it rose above the RSS at the start of the run: `"797 (+12)"` MiB.
fn peak_and_rise(peak: Option<u64>, start: Option<u64>) -> String {
    match (peak, start) {
        (Some(p), Some(s)) => format!("{} (+{})", p >> 20, p.saturating_sub(s) >> 20),
        (p, _) => mib(p),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let benchmarking = args.iter().any(|a| a == "--bench");
    let rows: usize = arg_value(&args, "--rows")
        .map(|r| r.parse().expect("--rows N"))
        .unwrap_or(if benchmarking { 1_000_000 } else { 10_000 });
    let (warmup, runs) = if benchmarking { (1, 5) } else { (0, 1) };
    let selected: Vec<&str> = match arg_value(&args, "--stages") {
        Some(list) => STAGES
            .into_iter()
            .filter(|s| list.split(',').any(|x| x == *s))
            .collect(),
        None => STAGES.to_vec(),
    };
    // `--stage-child KEY --child-workers N`: the process `measure_in_child` starts.
    if let Some(key) = arg_value(&args, "--stage-child") {
        let key = STAGES
            .into_iter()
            .find(|s| *s == key)
            .expect("a known stage");
        let workers = arg_value(&args, "--child-workers")
            .and_then(|w| w.parse().ok())
            .expect("--child-workers N");
        let bench = StageBench::load(key, rows);
        println!("{}", measure(&bench, rows, workers, warmup, runs).to_json());
        return;
    }
    // `--only-workers N`: time the Weir job at N workers only (for profiling it).
    let only_workers: Option<usize> =
        arg_value(&args, "--only-workers").map(|w| w.parse().expect("--only-workers N"));
    let with_sklearn =
        benchmarking && only_workers.is_none() && !args.iter().any(|a| a == "--no-sklearn");
    // Fail before the long Weir runs when the baseline cannot run.
    let python =
        with_sklearn.then(|| bench_python(&["numpy", "sklearn"]).unwrap_or_else(|e| panic!("{e}")));

    let benches: Vec<StageBench> = selected
        .iter()
        .map(|key| StageBench::load(key, rows))
        .collect();
    let mut weir = Vec::new();
    for bench in &benches {
        if let Some(why) = &bench.missing {
            println!("{:16} not available yet ({why})", bench.key);
            continue;
        }
        let input_bytes = bench.input_bytes(rows);
        if let Some(workers) = only_workers {
            // Profiling: one worker count, no baseline, no report.
            let m = measure(bench, rows, workers, warmup, runs);
            println!(
                "{:16} weir -w {workers} {:>12.0} rows/s",
                bench.key,
                rows as f64 / m.median.as_secs_f64()
            );
            continue;
        }
        let (w1, w2) = measure_stage(bench, rows, warmup, runs, benchmarking);
        println!(
            "{:16} weir -w 1 {:>12.0} rows/s  -w 2 {:>12.0} rows/s  (w2/w1 {:.2}x; peak RSS {} / {} MiB, input {} MiB)",
            bench.key,
            rows as f64 / w1.median.as_secs_f64(),
            rows as f64 / w2.median.as_secs_f64(),
            w1.median.as_secs_f64() / w2.median.as_secs_f64(),
            peak_and_rise(w1.peak_rss, w1.start_rss),
            peak_and_rise(w2.peak_rss, w2.start_rss),
            input_bytes as u64 >> 20,
        );
        weir.push((bench, input_bytes, w1, w2));
    }

    let available: Vec<&str> = weir.iter().map(|(b, ..)| b.key).collect();
    let sklearn = match &python {
        Some(python) if !available.is_empty() => sklearn_baseline(python, rows, runs, &available),
        _ => Json::Null,
    };

    println!();
    println!("Flink ML feature stages, fit+transform (estimators) or transform, {rows} rows, median of {runs} or more");
    println!(
        "(peak RSS in MiB during a run, input included, and its rise over the RSS at the start)"
    );
    println!(
        "{:16} {:>12} {:>12} {:>12} {:>7} {:>8} {:>6} {:>13} {:>13} {:>13}",
        "stage",
        "sklearn/s",
        "weir w1/s",
        "weir w2/s",
        "w2/sk",
        "(best sk)",
        "w2/w1",
        "sk peak",
        "w1 peak",
        "w2 peak"
    );
    let mut results = Map::new();
    for (bench, input_bytes, w1, w2) in &weir {
        let per_s = |d: Duration| rows as f64 / d.as_secs_f64();
        let sk = sklearn.get("stages").and_then(|s| s.get(bench.key));
        let sk_rate = sk.and_then(|s| s["rows_per_s"].as_f64());
        let sk_peak = sk.and_then(|s| s["peak_rss_bytes"].as_u64());
        let sk_start = sk.and_then(|s| s["start_rss_bytes"].as_u64());
        let over_sk = sk_rate.map(|r| per_s(w2.median) / r);
        // Against scikit-learn's fastest run: its runs vary more than Weir's (page faults
        // and huge-page compaction of its temporaries), so this is the conservative ratio.
        let over_sk_best = sk
            .and_then(|s| s["best_rows_per_s"].as_f64())
            .map(|r| per_s(w2.median) / r);
        let speedup = w1.median.as_secs_f64() / w2.median.as_secs_f64();
        println!(
            "{:16} {:>12} {:>12.0} {:>12.0} {:>7} {:>9} {:>5.2}x {:>13} {:>13} {:>13}",
            bench.key,
            sk_rate.map_or("-".into(), |r| format!("{r:.0}")),
            per_s(w1.median),
            per_s(w2.median),
            over_sk.map_or("-".into(), |r| format!("{r:.2}x")),
            over_sk_best.map_or("-".into(), |r| format!("({r:.2}x)")),
            speedup,
            peak_and_rise(sk_peak, sk_start),
            peak_and_rise(w1.peak_rss, w1.start_rss),
            peak_and_rise(w2.peak_rss, w2.start_rss),
        );
        results.insert(
            bench.key.to_string(),
            json!({
                "class": bench.class,
                "kind": if bench.stage.as_ref().map(|s| s.kind()) == Some(StageKind::Estimator) { "fit+transform" } else { "transform" },
                "input_bytes": *input_bytes as u64,
                "weir_w1": dict(w1.to_json(), "rows_per_s", json!(per_s(w1.median))),
                "weir_w2": dict(w2.to_json(), "rows_per_s", json!(per_s(w2.median))),
                "sklearn": sk,
                "w2_over_sklearn": over_sk,
                "w2_over_sklearn_best_run": over_sk_best,
                "w2_over_w1": speedup,
                "meets_5x_sklearn": over_sk.map(|r| r >= 5.0),
                "meets_1_6x_scaling": speedup >= 1.6,
            }),
        );
    }
    for bench in benches.iter().filter(|b| b.missing.is_some()) {
        println!("{:16} not available yet", bench.key);
        results.insert(
            bench.key.to_string(),
            json!({"class": bench.class, "missing": bench.missing}),
        );
    }
    if benchmarking && only_workers.is_none() {
        std::fs::create_dir_all("target/bench").unwrap();
        let report = json!({
            "rows": rows,
            "runs": runs,
            "warmup": warmup,
            "batch_rows": DEFAULT_BATCH_ROWS,
            "stages": results,
            "sklearn": sklearn,
        });
        std::fs::write(
            "target/bench/flink_ml_vs_sklearn.json",
            serde_json::to_string_pretty(&report).unwrap() + "\n",
        )
        .unwrap();
    }
}
