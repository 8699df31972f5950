//! The predict operator vs raw `ort::Session::run` on the same batches, and the digits
//! scoring pipeline end to end at 1 and 2 workers.
//!
//! `cargo bench --bench predict_vs_session` prints the tables and writes
//! `target/bench/predict_vs_session.json`. Under `cargo test` it does a small smoke run.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ort::session::Session;
use ort::value::TensorRef;
use serde::{Deserialize, Serialize};
use weir::onnx::{runtime, ModelUpdate, PredictConfig, PredictExt};
use weir::prelude::*;

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Digit {
    id: u64,
    x: Vec<f32>,
    y: i64,
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn digits(rows: usize) -> Vec<Digit> {
    let text = std::fs::read_to_string(fixtures().join("data/digits.jsonl")).unwrap();
    let base: Vec<Digit> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (0..rows)
        .map(|i| Digit {
            id: i as u64,
            ..base[i % base.len()].clone()
        })
        .collect()
}

/// Raw ONNX Runtime: pre-built batches, one session, labels and probabilities read back.
fn raw(model: &str, rows: &[Digit], batch: usize) -> Duration {
    let mut session = Session::builder(runtime().unwrap().environment())
        .unwrap()
        .with_intra_threads(1)
        .unwrap()
        .commit_from_file(fixtures().join("models").join(model))
        .unwrap();
    let batches: Vec<Vec<f32>> = rows
        .chunks(batch)
        .map(|c| c.iter().flat_map(|d| d.x.iter().copied()).collect())
        .collect();
    let start = Instant::now();
    let mut checksum = 0i64;
    for x in &batches {
        let n = x.len() / 64;
        let input = TensorRef::from_array_view(([n, 64], &x[..])).unwrap();
        let out = session.run(ort::inputs!["input" => input]).unwrap();
        let (_, labels) = out["label"].try_extract_tensor::<i64>().unwrap();
        let (_, p) = out["probabilities"].try_extract_tensor::<f32>().unwrap();
        checksum += labels.iter().sum::<i64>() + p.len() as i64;
    }
    std::hint::black_box(checksum);
    start.elapsed()
}

/// The same rows through a Weir job: collection source -> predict -> discard, 1 worker.
/// Returns the whole job's time and the predict operator's busy time (its own work: feature
/// extraction, checks, batching, `Session::run`, building predictions, model loading).
fn weir_predict(model: &str, rows: &[Digit], batch: usize) -> (Duration, Duration) {
    // The single worker takes the rows: the job does not time a copy of them.
    let rows = std::sync::Mutex::new(Some(rows.to_vec()));
    let model = fixtures().join("models").join(model);
    let config = Config::threads(1).with_verbose(false);
    let start = Instant::now();
    let report = execute(config, move |job| {
        let models = job.from_vec("model", vec![ModelUpdate::from_path("m", 1, &model)]);
        let rows = rows.lock().unwrap().take().expect("one worker");
        let (scored, _) = job.from_vec("rows", rows).predict(
            "predict",
            models,
            |d: &Digit, row: &mut Vec<f32>| row.extend_from_slice(&d.x),
            PredictConfig {
                max_batch: batch,
                ..PredictConfig::default()
            },
        );
        scored.for_each("drop", |p| {
            std::hint::black_box(p.label);
        });
        Ok(())
    })
    .unwrap();
    let busy = Duration::from_secs_f64(report.operator("predict").unwrap().busy_ms / 1e3);
    (start.elapsed(), busy)
}

/// The digits_scoring pipeline (JSONL file -> parse -> predict -> JSONL file) on `workers`.
fn end_to_end(input: &std::path::Path, workers: usize) -> Duration {
    let input = input.to_path_buf();
    let model = fixtures().join("models/digits_logreg.onnx");
    let output = PathBuf::from("target/bench/predict_out.jsonl");
    let start = Instant::now();
    execute(Config::threads(workers).with_verbose(false), move |job| {
        let models = job.from_vec(
            op("model").parallelism(1),
            vec![ModelUpdate::from_path("m", 1, &model)],
        );
        let (scored, _) = job.read_jsonl::<Digit>("digits", &input).predict(
            "predict",
            models,
            |d: &Digit, row: &mut Vec<f32>| row.extend_from_slice(&d.x),
            PredictConfig::default(),
        );
        scored
            .map("to_output", |p| (p.record.id, p.label, p.model_version))
            .write_jsonl(op("write").overwrite(true), &output);
        Ok(())
    })
    .unwrap();
    start.elapsed()
}

fn best(runs: usize, mut f: impl FnMut() -> Duration) -> Duration {
    (0..runs).map(|_| f()).min().unwrap()
}

fn main() {
    // `WEIR_BENCH_PROFILE=MODEL:BATCH` runs only the Weir side, 10 times (for `perf record`).
    if let Ok(spec) = std::env::var("WEIR_BENCH_PROFILE") {
        let (model, batch) = spec
            .split_once(':')
            .expect("WEIR_BENCH_PROFILE=MODEL:BATCH");
        let data = digits(300_000);
        for _ in 0..10 {
            let (job, op) = weir_predict(model, &data, batch.parse().unwrap());
            println!("job {job:?}, predict operator busy {op:?}");
        }
        return;
    }
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let (rows, runs, e2e_records) = if benchmarking {
        (300_000, 5, 200_000)
    } else {
        (2_000, 1, 5_000)
    };
    if !benchmarking {
        println!("smoke run (use `cargo bench --bench predict_vs_session` for real numbers)");
    }
    let data = digits(rows);
    let mut json = Vec::new();
    println!(
        "predict operator vs raw Session::run, {rows} rows ({} at batch 1), 1 thread, {runs} alternating runs",
        rows / 10
    );
    println!(
        "rows/s: best run of each side; op/raw and job/raw: median of the per-run-pair ratios"
    );
    println!(
        "{:<20} {:>6} {:>12} {:>16} {:>8} {:>12} {:>8}",
        "model", "batch", "raw rows/s", "operator rows/s", "op/raw", "job rows/s", "job/raw"
    );
    for model in ["digits_logreg.onnx", "digits_mlp256.onnx"] {
        for batch in [1usize, 32, 256] {
            // Batch 1 is slow: a tenth of the rows.
            let rows = if batch == 1 { rows / 10 } else { rows };
            let data = &data[..rows];
            // Raw and Weir runs alternate, so that drift of this shared machine hits both.
            let (mut raws, mut ops, mut jobs) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..runs {
                raws.push(raw(model, data, batch));
                let (job, op) = weir_predict(model, data, batch);
                jobs.push(job);
                ops.push(op);
            }
            let pair_ratio = |weir: &[Duration]| {
                let mut r: Vec<f64> = raws
                    .iter()
                    .zip(weir)
                    .map(|(raw, weir)| raw.as_secs_f64() / weir.as_secs_f64())
                    .collect();
                r.sort_by(f64::total_cmp);
                r[r.len() / 2]
            };
            let per_s = |d: &[Duration]| rows as f64 / d.iter().min().unwrap().as_secs_f64();
            let (rr, or, jr) = (per_s(&raws), per_s(&ops), per_s(&jobs));
            let (op_ratio, job_ratio) = (pair_ratio(&ops), pair_ratio(&jobs));
            println!(
                "{model:<20} {batch:>6} {rr:>12.0} {or:>16.0} {op_ratio:>8.3} {jr:>12.0} {job_ratio:>8.3}"
            );
            json.push(format!(
                "{{\"model\":\"{model}\",\"batch\":{batch},\"rows\":{rows},\"raw_rows_per_s\":{rr:.0},\"operator_rows_per_s\":{or:.0},\"job_rows_per_s\":{jr:.0},\"operator_ratio\":{op_ratio:.4},\"job_ratio\":{job_ratio:.4}}}"
            ));
        }
    }
    // End to end on a larger input made of repeated digits.
    std::fs::create_dir_all("target/bench").unwrap();
    let input = PathBuf::from("target/bench/digits_large.jsonl");
    let text: String = digits(e2e_records)
        .iter()
        .map(|d| serde_json::to_string(d).unwrap() + "\n")
        .collect();
    std::fs::write(&input, text).unwrap();
    let w1 = best(runs, || end_to_end(&input, 1));
    let w2 = best(runs, || end_to_end(&input, 2));
    let (r1, r2) = (
        e2e_records as f64 / w1.as_secs_f64(),
        e2e_records as f64 / w2.as_secs_f64(),
    );
    println!("digits scoring end to end, {e2e_records} records: -w 1 {r1:.0} rec/s, -w 2 {r2:.0} rec/s, speedup {:.2}x", r2 / r1);
    json.push(format!("{{\"end_to_end_records\":{e2e_records},\"w1_records_per_s\":{r1:.0},\"w2_records_per_s\":{r2:.0},\"speedup\":{:.3}}}", r2 / r1));
    if benchmarking {
        std::fs::write(
            "target/bench/predict_vs_session.json",
            format!("[{}]\n", json.join(",")),
        )
        .unwrap();
    }
}
