//! The online trainer (`learn_online`: predict, score, then learn per record) against the same
//! SGD in a plain Rust loop over the same records, and the job at 1 and 2 workers.
//!
//! Each line also gives the peak memory (VmHWM, reset right before each run) of that side's
//! best run, `MiB peak` (JSON `loop_peak_mib`, `job_w1_peak_mib`, `job_w2_peak_mib`,
//! `parallel_p1_peak_mib`, `parallel_p2_peak_mib`). The records are held in memory by design
//! (about 300 bytes each; the jobs take a copy made before their run starts, so both count).
//!
//! `cargo bench --bench online_vs_loop [-- RECORDS]` (default 200,000) prints the table and
//! writes `target/bench/online_vs_loop.json`. Under `cargo test` it does a small smoke run.

#[path = "support/bench_process.rs"]
#[allow(dead_code)]
mod bench_process;

use bench_process::Run;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use weir::ml::{LabeledPoint, OnlineClassifier, OnlineLearnExt, OnlineOptions, SgdClassifier};
use weir::prelude::*;

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Digit {
    id: u64,
    x: Vec<f32>,
    y: usize,
}

fn stream(n: usize) -> Vec<LabeledPoint> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/data/digits.jsonl");
    let digits: Vec<Digit> = std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (0..n)
        .map(|i| {
            let d = &digits[i % digits.len()];
            LabeledPoint {
                x: d.x.iter().map(|v| v / 16.0).collect(),
                y: d.y,
            }
        })
        .collect()
}

fn classifier() -> SgdClassifier {
    SgdClassifier::new(10, 64, 0.5, 1e-4, 1e-5)
}

/// The baseline: the same predict-score-learn steps in a loop, no dataflow.
fn plain_loop(points: &[LabeledPoint]) -> (Run, f64) {
    let mut model = classifier();
    let start = Run::start();
    let mut correct = 0u64;
    for p in points {
        let probabilities = model.predict_proba(&p.x);
        let label = (0..probabilities.len()).fold(0, |b, c| {
            if probabilities[c] > probabilities[b] {
                c
            } else {
                b
            }
        });
        correct += (label == p.y) as u64;
        model.learn(&p.x, p.y);
    }
    (Run::end(start), correct as f64 / points.len() as f64)
}

/// The Weir job: collection source -> learn_online -> counting sink, on `workers` workers.
fn weir_job(points: &[LabeledPoint], workers: usize) -> (Run, f64) {
    let points = std::sync::Mutex::new(Some(points.to_vec()));
    let correct = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (count, n) = (
        std::sync::Arc::clone(&correct),
        points.lock().unwrap().as_ref().unwrap().len(),
    );
    let start = Run::start();
    execute(Config::threads(workers).with_verbose(false), move |job| {
        let data = if job.worker_index() == 0 {
            points.lock().unwrap().take().unwrap_or_default()
        } else {
            Vec::new()
        };
        let count = std::sync::Arc::clone(&count);
        job.from_vec(op("points").parallelism(1), data)
            .learn_online(
                "train",
                classifier(),
                |p: LabeledPoint| p,
                OnlineOptions::default(),
            )
            .predictions
            .for_each("count", move |p| {
                count.fetch_add(
                    (p.label == p.truth) as u64,
                    std::sync::atomic::Ordering::Relaxed,
                );
            });
        Ok(())
    })
    .unwrap();
    (
        Run::end(start),
        correct.load(std::sync::atomic::Ordering::Relaxed) as f64 / n as f64,
    )
}

/// `learn_online_parallel` with one instance per worker, merging every 1000-record epoch.
fn weir_parallel(points: &[LabeledPoint], workers: usize) -> (Run, f64) {
    let points = std::sync::Mutex::new(Some(points.to_vec()));
    let correct = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (count, n) = (
        std::sync::Arc::clone(&correct),
        points.lock().unwrap().as_ref().unwrap().len(),
    );
    let config = Config::threads(workers)
        .with_verbose(false)
        .with_epochs(EpochPolicy::Records(1000));
    let start = Run::start();
    execute(config, move |job| {
        let data = if job.worker_index() == 0 {
            points.lock().unwrap().take().unwrap_or_default()
        } else {
            Vec::new()
        };
        let count = std::sync::Arc::clone(&count);
        let stream = job.from_vec(op("points").parallelism(1), data).rebalance();
        weir::ml::learn_online_parallel(
            job,
            stream,
            op("train").parallelism(workers),
            classifier(),
            |p: LabeledPoint| p,
        )
        .predictions
        .for_each("count", move |p| {
            count.fetch_add(
                (p.label == p.truth) as u64,
                std::sync::atomic::Ordering::Relaxed,
            );
        });
        Ok(())
    })
    .unwrap();
    (
        Run::end(start),
        correct.load(std::sync::atomic::Ordering::Relaxed) as f64 / n as f64,
    )
}

/// The best runs of each side.
struct Best {
    plain_loop: Run,
    job_w1: Run,
    job_w2: Run,
    /// Median of the per-pair ratios loop time / job (-w 1) time.
    job_over_loop: f64,
    parallel_p1: Run,
    parallel_p2: Run,
    /// Prequential accuracy of the last `learn_online_parallel` run at parallelism 2.
    parallel_p2_accuracy: f64,
}

fn measure(points: &[LabeledPoint], runs: usize) -> Best {
    let mut pairs = Vec::new();
    let (mut best_loop, mut best_job, mut best_job2) = (Run::NONE, Run::NONE, Run::NONE);
    for _ in 0..runs {
        let (l, loop_acc) = plain_loop(points);
        let (j, job_acc) = weir_job(points, 1);
        let (j2, _) = weir_job(points, 2);
        assert!(
            (loop_acc - job_acc).abs() < 1e-9,
            "same model, same predictions"
        );
        pairs.push(l.took.as_secs_f64() / j.took.as_secs_f64());
        best_loop = best_loop.min(l);
        best_job = best_job.min(j);
        best_job2 = best_job2.min(j2);
    }
    let (mut best_p1, mut best_p2, mut acc_p2) = (Run::NONE, Run::NONE, 0.0);
    for _ in 0..runs {
        let (p1, _) = weir_parallel(points, 1);
        let (p2, acc) = weir_parallel(points, 2);
        best_p1 = best_p1.min(p1);
        best_p2 = best_p2.min(p2);
        acc_p2 = acc;
    }
    pairs.sort_by(f64::total_cmp);
    Best {
        plain_loop: best_loop,
        job_w1: best_job,
        job_w2: best_job2,
        job_over_loop: pairs[pairs.len() / 2],
        parallel_p1: best_p1,
        parallel_p2: best_p2,
        parallel_p2_accuracy: acc_p2,
    }
}

fn main() {
    let (benchmarking, args) = bench_process::bench_args();
    let (n, runs) = if benchmarking {
        (200_000, 5)
    } else {
        (5_000, 1)
    };
    let n = bench_process::number_arg(&args, 0, n);
    let points = stream(n);
    let best = measure(&points, runs);
    let median = best.job_over_loop;
    let per_s = |r: Run| n as f64 / r.took.as_secs_f64();
    let line = |name: &str, r: Run| {
        format!(
            "{name:<15} {:>12.0} records/s {:>6.0} MiB peak",
            per_s(r),
            r.peak_mib()
        )
    };
    println!("online SGD, {n} digit records, {runs} alternating runs");
    println!("{}", line("plain loop", best.plain_loop));
    println!(
        "{}   job/loop (median pair) {median:.3}",
        line("weir job, -w 1", best.job_w1)
    );
    println!(
        "{}   (the trainer is one instance)",
        line("weir job, -w 2", best.job_w2)
    );
    println!("{}", line("parallel, p=1", best.parallel_p1));
    println!(
        "{}   speedup {:.2}x, prequential accuracy {:.4} (merging every 1000 records)",
        line("parallel, p=2", best.parallel_p2),
        best.parallel_p1.took.as_secs_f64() / best.parallel_p2.took.as_secs_f64(),
        best.parallel_p2_accuracy
    );
    if benchmarking {
        std::fs::create_dir_all("target/bench").unwrap();
        std::fs::write("target/bench/online_vs_loop.json", json(n, &best)).unwrap();
    }
}

/// The JSON of `target/bench/online_vs_loop.json`.
fn json(n: usize, best: &Best) -> String {
    let per_s = |r: Run| n as f64 / r.took.as_secs_f64();
    format!(
        "{{\"records\":{n},\"loop_records_per_s\":{:.0},\"job_w1_records_per_s\":{:.0},\"job_w2_records_per_s\":{:.0},\"job_over_loop\":{:.4},\"parallel_p1_records_per_s\":{:.0},\"parallel_p2_records_per_s\":{:.0},\"loop_peak_mib\":{:.1},\"job_w1_peak_mib\":{:.1},\"job_w2_peak_mib\":{:.1},\"parallel_p1_peak_mib\":{:.1},\"parallel_p2_peak_mib\":{:.1}}}\n",
        per_s(best.plain_loop),
        per_s(best.job_w1),
        per_s(best.job_w2),
        best.job_over_loop,
        per_s(best.parallel_p1),
        per_s(best.parallel_p2),
        best.plain_loop.peak_mib(),
        best.job_w1.peak_mib(),
        best.job_w2.peak_mib(),
        best.parallel_p1.peak_mib(),
        best.parallel_p2.peak_mib()
    )
}
