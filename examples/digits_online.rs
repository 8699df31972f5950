//! Online learning on a stream of handwritten digits: predict, then train, on every record
//! (prequential evaluation), with live metrics over HTTP and checkpoints to a model store.
//!
//! ```text
//! cargo run --release --example digits_online
//! cargo run --release --example digits_online -- --records 50000 --rate 2000 --store redis://127.0.0.1:6379/ --metrics 127.0.0.1:9898
//! ```
//! The stream cycles through `--input` (default: the digits set in `fixtures/`; lines
//! `{"id","x":[64],"y"}`) for `--records` records (default 20,000), paced at `--rate` records/s
//! if given. The trainer (SGD, or FTRL with `--ftrl`) resumes from the newest checkpoint in
//! `--store` (a directory, default `target/digits_online/store`, or `redis://…`) and skips the
//! records that checkpoint had seen. `GET /metrics` on `--metrics HOST:PORT` (default
//! 127.0.0.1:9898) gives operator and ML metrics; a line of metrics goes to stderr every two
//! seconds. Prints one JSON line: records, accuracy, accuracy_last_10pct, records_per_s, and
//! `window_accuracy`: the prequential accuracy of each tenth of the stream, computed in the
//! job by Flink ML's `MulticlassClassificationEvaluator` with `CountTumblingWindows` over the
//! trainer's predictions.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use weir::flink_ml::api::Stage;
use weir::flink_ml::evaluation::multiclass_classification_evaluator::MULTICLASS_METRICS_NAMES;
use weir::flink_ml::evaluation::MulticlassClassificationEvaluator;
use weir::flink_ml::param::WithParams;
use weir::flink_ml::table::{Column, DataType, RowBatch, Schema, Table, TableCollector};
use weir::ml::{
    open_store, FtrlClassifier, LabeledPoint, MetricsServer, ModelStore, OnlineClassifier,
    OnlineLearnExt, OnlineMetrics, OnlineOptions, SgdClassifier,
};
use weir::prelude::*;

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Digit {
    id: u64,
    x: Vec<f32>,
    y: usize,
}

fn main() -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut input = root.join("fixtures/data/digits.jsonl");
    let mut store_address = root
        .join("target/digits_online/store")
        .display()
        .to_string();
    let (mut records, mut rate, mut metrics_address, mut ftrl) =
        (20_000u64, None::<f64>, "127.0.0.1:9898".to_string(), false);
    let mut checkpoint_records = 2000u64;
    let mut args = config.program_args.iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--input" => input = PathBuf::from(value("--input")?),
            "--records" => records = value("--records")?.parse()?,
            "--rate" => rate = Some(value("--rate")?.parse()?),
            "--store" => store_address = value("--store")?.clone(),
            "--metrics" => metrics_address = value("--metrics")?.clone(),
            "--checkpoint-records" => checkpoint_records = value("--checkpoint-records")?.parse()?,
            "--ftrl" => ftrl = true,
            other => bail!(
                "unknown argument `{other}` (expected --input, --records, --rate, --store, --metrics, --checkpoint-records, --ftrl)"
            ),
        }
    }
    let digits = Arc::new(DigitLines::read(&input)?);
    let store: Arc<dyn ModelStore> = Arc::from(open_store(&store_address)?);
    // Resume where the newest checkpoint left off: its records are not trained on again.
    let start = store.latest()?.map_or(0, |c| c.records);
    let metrics = Arc::new(std::sync::Mutex::new(OnlineMetrics::default()));
    let live = weir::LiveMetrics::new();
    let config = config.with_live_metrics(live.clone());
    let first_process = config.process_index() == 0;
    let server = if first_process {
        let (ml, live) = (Arc::clone(&metrics), live.clone());
        let server = MetricsServer::start(&metrics_address, move || {
            live.prometheus() + &ml.lock().unwrap().prometheus()
        })?;
        eprintln!("metrics: http://{}/metrics", server.address());
        Some(server)
    } else {
        None
    };
    // A line of metrics on the terminal every two seconds, until the job ends (dropping
    // `done` wakes the reporter at once).
    let (done, stopped) = std::sync::mpsc::channel::<()>();
    let reporter = {
        let metrics = Arc::clone(&metrics);
        let verbose = config.verbose && first_process;
        std::thread::spawn(move || {
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                stopped.recv_timeout(Duration::from_secs(2))
            {
                if verbose {
                    let m = metrics.lock().unwrap().clone();
                    eprintln!(
                        "trained {} records: accuracy {:.4}, last window {:.4}, log loss {:.4}, model v{}",
                        m.records,
                        m.accuracy(),
                        m.window_accuracy,
                        m.log_loss(),
                        m.model_version
                    );
                }
            }
        })
    };
    let options = OnlineOptions {
        store: Some(store),
        checkpoint_records,
        metrics: Arc::clone(&metrics),
        ..OnlineOptions::default()
    };
    let outcomes = Collector::new();
    let sink = outcomes.clone();
    let windows = TableCollector::new();
    let windows_sink = windows.clone();
    let evaluator = prequential_evaluator(records.saturating_sub(start))?;
    let started = Instant::now();
    let job_digits = Arc::clone(&digits);
    execute(config, move |job| {
        let digits = Arc::clone(&job_digits);
        let remaining = records.saturating_sub(start);
        let source = match rate {
            Some(r) => op("digits").parallelism(1).rate(r),
            None => op("digits").parallelism(1),
        };
        let lines = Arc::clone(&digits);
        let stream = job
            .generate(source, Some(remaining), move |k| lines.point(start + k))
            .flat_map("decoded", |point: Option<LabeledPoint>| point);
        let point = |p: LabeledPoint| p;
        let predictions = if ftrl {
            learn(
                stream,
                FtrlClassifier::new(10, 64, 0.5, 1.0, 0.0, 1e-3),
                point,
                options.clone(),
            )
        } else {
            learn(
                stream,
                SgdClassifier::new(10, 64, 0.5, 1e-4, 1e-5),
                point,
                options.clone(),
            )
        };
        predictions
            .clone()
            .map("outcome", |p| (p.index, p.label == p.truth))
            .collect(op("outcomes").parallelism(1), &sink);
        // Prequential accuracy per tenth of the stream, by Flink ML's evaluator: each epoch's
        // predictions as a batch of two columns.
        let schema = Schema::new([
            ("label", DataType::Double),
            ("prediction", DataType::Double),
        ]);
        let scored = predictions.try_map_batch(
            op("scored_table").parallelism(1),
            |predictions: Vec<weir::ml::OnlinePrediction>| {
                let labels = predictions.iter().map(|p| p.truth as f64).collect();
                let guesses = predictions.iter().map(|p| p.label as f64).collect();
                let columns = vec![Column::Double(labels), Column::Double(guesses)];
                Ok::<_, String>([RowBatch::new(predictions.len(), columns)])
            },
        );
        let table = Table::new(schema, scored);
        evaluator
            .transform(job, vec![table])?
            .remove(0)
            .collect(op("window_metrics").parallelism(1), &windows_sink);
        Ok(())
    })?;
    let seconds = started.elapsed().as_secs_f64();
    drop(done);
    let _ = reporter.join();
    drop(server);
    if !first_process {
        return Ok(());
    }
    let mut outcomes = outcomes.take();
    outcomes.sort_unstable();
    let m = metrics.lock().unwrap().clone();
    let window_accuracy: Vec<f64> = windows
        .json_rows()
        .iter()
        .filter_map(|row| row["accuracy"].as_f64())
        .collect();
    println!(
        "{}",
        serde_json::json!({
            "records": m.records,
            "trained_this_run": outcomes.len(),
            "resumed_from": start,
            "accuracy": m.accuracy(),
            "accuracy_last_10pct": window_accuracy.last(),
            "window_accuracy": window_accuracy,
            "log_loss": m.log_loss(),
            "malformed_lines": digits.malformed.load(std::sync::atomic::Ordering::Relaxed),
            "model_version": m.model_version,
            "seconds": seconds,
            "records_per_s": outcomes.len() as f64 / seconds,
        })
    );
    Ok(())
}

/// The input's lines, decoded when the stream first reaches each one (so the job starts at
/// once, and a line the stream never reaches is never decoded). A malformed line is skipped
/// with a warning naming it, once, and counted.
struct DigitLines {
    path: PathBuf,
    lines: Vec<String>,
    decoded: Vec<std::sync::OnceLock<Option<LabeledPoint>>>,
    malformed: std::sync::atomic::AtomicU64,
}

impl DigitLines {
    fn read(path: &std::path::Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let lines: Vec<String> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(String::from)
            .collect();
        if lines.is_empty() {
            bail!("{} has no records", path.display());
        }
        Ok(DigitLines {
            path: path.to_path_buf(),
            decoded: lines.iter().map(|_| std::sync::OnceLock::new()).collect(),
            lines,
            malformed: Default::default(),
        })
    }

    /// Record `k` of the stream, which cycles through the lines; `None` for a malformed line.
    fn point(&self, k: u64) -> Option<LabeledPoint> {
        let i = (k % self.lines.len() as u64) as usize;
        self.decoded[i].get_or_init(|| self.decode(i)).clone()
    }

    fn decode(&self, i: usize) -> Option<LabeledPoint> {
        match serde_json::from_str::<Digit>(&self.lines[i]) {
            Ok(d) if d.x.len() == 64 && d.y < 10 => Some(LabeledPoint {
                x: d.x.iter().map(|v| v / 16.0).collect(),
                y: d.y,
            }),
            Ok(d) => self.malformed(
                i,
                &format!(
                    "expected 64 pixels and a label 0-9, got {} pixels and label {}",
                    d.x.len(),
                    d.y
                ),
            ),
            Err(e) => self.malformed(i, &format!("not a digit record: {e}")),
        }
    }

    fn malformed(&self, i: usize, why: &str) -> Option<LabeledPoint> {
        self.malformed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        eprintln!("{}: line {}: {why}; skipped", self.path.display(), i + 1);
        None
    }
}

/// Flink ML's multi-class evaluator over count windows of a tenth of the `records` this run
/// trains on: one row of metrics per window, as the stream goes.
fn prequential_evaluator(records: u64) -> anyhow::Result<MulticlassClassificationEvaluator> {
    let mut evaluator = MulticlassClassificationEvaluator::new().set(
        &MULTICLASS_METRICS_NAMES,
        vec!["accuracy".to_string(), "f1".to_string()],
    )?;
    evaluator.param_map_mut().set_json(
        "windows",
        serde_json::json!({
            "class": "org.apache.flink.ml.common.window.CountTumblingWindows",
            "size": (records / 10).max(1),
        }),
    )?;
    Ok(evaluator)
}

fn learn<'s, C: OnlineClassifier + Clone>(
    stream: DataStream<'s, LabeledPoint>,
    classifier: C,
    point: impl Fn(LabeledPoint) -> LabeledPoint + 'static,
    options: OnlineOptions,
) -> DataStream<'s, weir::ml::OnlinePrediction> {
    stream
        .learn_online("train", classifier, point, options)
        .predictions
}
