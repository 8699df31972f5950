//! The predict operator vs raw `ort::Session::run` on the same batches, and the digits
//! scoring pipeline end to end at 1 and 2 workers.
//!
//! Peak memory (VmHWM, reset right before each timed run) of the best run of each side is
//! reported too: columns `raw MiB` and `job MiB` (JSON `raw_peak_mib`, `job_peak_mib`), and
//! the end-to-end line's `peak MiB` (JSON `w1_peak_mib`, `w2_peak_mib`). The operator
//! comparison holds its rows in memory on both sides (so its peaks grow with ROWS); the end to
//! end job streams its input file.
//!
//! `cargo bench --bench predict_vs_session [-- ROWS [E2E_RECORDS]]` (default 300,000 rows and
//! 200,000 end-to-end records) prints the tables and writes
//! `target/bench/predict_vs_session.json`. Under `cargo test` it does a small smoke run.

#[path = "support/bench_process.rs"]
#[allow(dead_code)]
mod bench_process;

use bench_process::Run;

use std::path::PathBuf;
use std::time::Duration;

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
fn raw(model: &str, rows: &[Digit], batch: usize) -> Run {
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
    let start = Run::start();
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
    Run::end(start)
}

/// The same rows through a Weir job: collection source -> predict -> discard, 1 worker.
/// Returns the whole job's time and the predict operator's busy time (its own work: feature
/// extraction, checks, batching, `Session::run`, building predictions, model loading).
fn weir_predict(model: &str, rows: &[Digit], batch: usize) -> (Run, Duration) {
    // The single worker takes the rows: the job does not time a copy of them.
    let rows = std::sync::Mutex::new(Some(rows.to_vec()));
    let model = fixtures().join("models").join(model);
    let config = Config::threads(1).with_verbose(false);
    let start = Run::start();
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
    let run = Run::end(start);
    let busy = Duration::from_secs_f64(report.operator("predict").unwrap().busy_ms / 1e3);
    (run, busy)
}

/// The digits_scoring pipeline (JSONL file -> parse -> predict -> JSONL file) on `workers`.
fn end_to_end(input: &std::path::Path, workers: usize) -> Run {
    let input = input.to_path_buf();
    let model = fixtures().join("models/digits_logreg.onnx");
    let output = PathBuf::from("target/bench/predict_out.jsonl");
    let start = Run::start();
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
    Run::end(start)
}

/// The fastest of `runs` runs.
fn best(runs: usize, mut f: impl FnMut() -> Run) -> Run {
    (0..runs).map(|_| f()).min_by_key(|r| r.took).unwrap()
}

/// The operator against raw `Session::run`, per model and batch size: prints the table's rows
/// and pushes their JSON.
fn operator_table(data: &[Digit], runs: usize, json: &mut Vec<String>) {
    for model in ["digits_logreg.onnx", "digits_mlp256.onnx"] {
        for batch in [1usize, 32, 256] {
            // Batch 1 is slow: a tenth of the rows.
            let rows = if batch == 1 {
                data.len() / 10
            } else {
                data.len()
            };
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
                    .map(|(raw, weir)| raw.took.as_secs_f64() / weir.as_secs_f64())
                    .collect();
                r.sort_by(f64::total_cmp);
                r[r.len() / 2]
            };
            let fastest = |runs: &[Run]| *runs.iter().min_by_key(|r| r.took).unwrap();
            let (raw_best, job_best) = (fastest(&raws), fastest(&jobs));
            let per_s = |d: Duration| rows as f64 / d.as_secs_f64();
            let (rr, jr) = (per_s(raw_best.took), per_s(job_best.took));
            let or = per_s(*ops.iter().min().unwrap());
            let job_times: Vec<Duration> = jobs.iter().map(|j| j.took).collect();
            let (op_ratio, job_ratio) = (pair_ratio(&ops), pair_ratio(&job_times));
            let (raw_mib, job_mib) = (raw_best.peak_mib(), job_best.peak_mib());
            println!(
                "{model:<20} {batch:>6} {rr:>12.0} {or:>16.0} {op_ratio:>8.3} {jr:>12.0} {job_ratio:>8.3} {raw_mib:>8.0} {job_mib:>8.0}"
            );
            json.push(format!(
                "{{\"model\":\"{model}\",\"batch\":{batch},\"rows\":{rows},\"raw_rows_per_s\":{rr:.0},\"operator_rows_per_s\":{or:.0},\"job_rows_per_s\":{jr:.0},\"operator_ratio\":{op_ratio:.4},\"job_ratio\":{job_ratio:.4},\"raw_peak_mib\":{raw_mib:.1},\"job_peak_mib\":{job_mib:.1}}}"
            ));
        }
    }
}

/// The digits scoring pipeline end to end on a larger input made of repeated digits, at 1
/// and 2 workers: the table's line and its JSON.
fn end_to_end_row(e2e_records: usize, runs: usize) -> (String, String) {
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
        e2e_records as f64 / w1.took.as_secs_f64(),
        e2e_records as f64 / w2.took.as_secs_f64(),
    );
    let (m1, m2) = (w1.peak_mib(), w2.peak_mib());
    let line = format!("digits scoring end to end, {e2e_records} records: -w 1 {r1:.0} rec/s, -w 2 {r2:.0} rec/s, speedup {:.2}x; peak MiB -w 1 {m1:.0}, -w 2 {m2:.0}", r2 / r1);
    (line, format!("{{\"end_to_end_records\":{e2e_records},\"w1_records_per_s\":{r1:.0},\"w2_records_per_s\":{r2:.0},\"speedup\":{:.3},\"w1_peak_mib\":{m1:.1},\"w2_peak_mib\":{m2:.1}}}", r2 / r1))
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
            println!(
                "job {:?} ({:.0} MiB peak), predict operator busy {op:?}",
                job.took,
                job.peak_mib()
            );
        }
        return;
    }
    let (benchmarking, args) = bench_process::bench_args();
    let (rows, runs, e2e_records) = if benchmarking {
        (300_000, 5, 200_000)
    } else {
        (2_000, 1, 5_000)
    };
    let rows = bench_process::number_arg(&args, 0, rows);
    let e2e_records = bench_process::number_arg(&args, 1, e2e_records);
    if !benchmarking {
        println!("smoke run (use `cargo bench --bench predict_vs_session` for real numbers)");
    }
    // The end-to-end job streams its file: it runs first, so that the memory the operator
    // comparison's rows leave with the allocator does not count in its peak.
    let (e2e_line, e2e_json) = end_to_end_row(e2e_records, runs);
    let data = digits(rows);
    let mut json = Vec::new();
    println!(
        "predict operator vs raw Session::run, {rows} rows ({} at batch 1), 1 thread, {runs} alternating runs",
        rows / 10
    );
    println!(
        "rows/s: best run of each side; op/raw and job/raw: median of the per-run-pair ratios; \
         MiB: peak memory of the best run (the rows held in memory included)"
    );
    println!(
        "{:<20} {:>6} {:>12} {:>16} {:>8} {:>12} {:>8} {:>8} {:>8}",
        "model",
        "batch",
        "raw rows/s",
        "operator rows/s",
        "op/raw",
        "job rows/s",
        "job/raw",
        "raw MiB",
        "job MiB"
    );
    operator_table(&data, runs, &mut json);
    println!("{e2e_line}");
    json.push(e2e_json);
    if benchmarking {
        std::fs::write(
            "target/bench/predict_vs_session.json",
            format!("[{}]\n", json.join(",")),
        )
        .unwrap();
    }
}
