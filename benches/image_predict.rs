//! An image classifier (`fixtures/models/digits_cnn.onnx`, `[N, 1, 8, 8]`) through the predict
//! operator at `-w 2` vs a hand-written loop calling `Session::run` with the same batch size on
//! two threads (one session each, half the rows each).
//!
//! `cargo bench --bench image_predict [-- ROWS]` (default 1,500,000) prints the table and
//! writes `target/bench/image_predict.json`. Under `cargo test` it does a small smoke run.
//!
//! Both sides do the same work: load the model (one session per thread or instance), and per
//! row copy the image's 64 floats from a shared table into the batch, run, and read the label
//! and the 10 probabilities back. The Weir side's time is the whole job's. The table also
//! gives the peak memory (VmHWM, reset right before each run) of each side's best run,
//! columns `raw MiB` and `weir MiB` (JSON `raw_peak_mib`, `weir_peak_mib`); the shared table
//! of images (256 bytes a row) is held in memory by design and counts in both.

#[path = "support/bench_process.rs"]
#[allow(dead_code)]
mod bench_process;

use bench_process::Run;

use std::path::PathBuf;
use std::sync::Arc;

use ort::session::Session;
use ort::value::TensorRef;
use weir::onnx::{runtime, ModelUpdate, PredictExt, TensorPredictConfig, TensorSpec};
use weir::prelude::*;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// `rows` images (the digits, repeated), 64 floats each.
fn images(rows: usize) -> Arc<Vec<f32>> {
    let text = std::fs::read_to_string(fixtures().join("data/digits.jsonl")).unwrap();
    let base: Vec<Vec<f32>> = text
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            serde_json::from_value(v["x"].clone()).unwrap()
        })
        .collect();
    Arc::new(
        (0..rows)
            .flat_map(|i| base[i % base.len()].clone())
            .collect(),
    )
}

fn model() -> PathBuf {
    fixtures().join("models/digits_cnn.onnx")
}

/// The hand-written loop: `threads` threads, each loading its session (as the job's
/// instances do) and scoring rows `t, t + threads, …` in batches of `batch`.
fn raw(images: &Arc<Vec<f32>>, threads: usize, batch: usize) -> Run {
    let rows = images.len() / 64;
    let environment = runtime().unwrap().environment();
    let start = Run::start();
    std::thread::scope(|s| {
        for t in 0..threads {
            let images = Arc::clone(images);
            s.spawn(move || {
                let mut session = Session::builder(environment)
                    .unwrap()
                    .with_intra_threads(1)
                    .unwrap()
                    .commit_from_file(model())
                    .unwrap();
                let mut mine = (t..rows).step_by(threads).peekable();
                let mut x = Vec::with_capacity(batch * 64);
                let mut checksum = 0i64;
                while mine.peek().is_some() {
                    x.clear();
                    for r in mine.by_ref().take(batch) {
                        x.extend_from_slice(&images[r * 64..(r + 1) * 64]);
                    }
                    let n = x.len() / 64;
                    let input = TensorRef::from_array_view(([n, 1, 8, 8], &x[..])).unwrap();
                    let out = session.run(ort::inputs!["image" => input]).unwrap();
                    let (_, labels) = out["label"].try_extract_tensor::<i64>().unwrap();
                    let (_, p) = out["probabilities"].try_extract_tensor::<f32>().unwrap();
                    checksum += labels.iter().sum::<i64>() + p.len() as i64;
                }
                std::hint::black_box(checksum);
            });
        }
    });
    Run::end(start)
}

/// The Weir job: row ids from a collection source (parallelism `workers`) → `predict_tensors`
/// on the CNN → a discarding sink, at `-w workers`.
fn weir(images: &Arc<Vec<f32>>, workers: usize, batch: usize) -> Run {
    let rows = images.len() / 64;
    let images = Arc::clone(images);
    let start = Run::start();
    let report = execute(Config::threads(workers).with_verbose(false), move |job| {
        let models = job.from_vec(
            op("model").parallelism(1),
            vec![ModelUpdate::from_path("cnn", 1, model())],
        );
        let table = Arc::clone(&images);
        let (scored, _) = job
            .from_iter(
                op("rows").epochs(EpochPolicy::Records(
                    std::env::var("EPOCH")
                        .ok()
                        .and_then(|e| e.parse().ok())
                        .unwrap_or(4096),
                )),
                0..rows as u64,
            )
            .predict_tensors(
                "predict",
                models,
                |_| 0,
                move |&r: &u64, rows| {
                    let r = r as usize;
                    rows.f32(0).extend_from_slice(&table[r * 64..(r + 1) * 64]);
                },
                |_, out| (out.i64(0)[0], out.f32(1).len()),
                TensorPredictConfig {
                    inputs: vec![TensorSpec::f32("image")],
                    outputs: vec![TensorSpec::i64("label"), TensorSpec::f32("probabilities")],
                    max_batch: batch,
                    ..TensorPredictConfig::default()
                },
            );
        scored.for_each("drop", |p| {
            std::hint::black_box(p);
        });
        Ok(())
    })
    .unwrap();
    let run = Run::end(start);
    let elapsed = run.took;
    if std::env::var("WEIR_BENCH_PROFILE").is_ok() {
        for o in &report.operators {
            println!("  {:<10} busy {:>8.1} ms", o.name, o.busy_ms);
        }
        println!(
            "  wall {:.1} ms, job {:.1} ms",
            elapsed.as_secs_f64() * 1e3,
            report.elapsed_ms
        );
    }
    run
}

/// Alternating runs of both sides: the best run of each and the median of the per-pair
/// ratios raw time / Weir time.
fn measure(images: &Arc<Vec<f32>>, threads: usize, batch: usize, runs: usize) -> (Run, Run, f64) {
    let (mut raws, mut weirs) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        raws.push(raw(images, threads, batch));
        weirs.push(weir(images, threads, batch));
    }
    if std::env::var("WEIR_BENCH_PAIRS").is_ok() {
        for (r, w) in raws.iter().zip(&weirs) {
            println!(
                "    pair: raw {:?} ({:.0} MiB) weir {:?} ({:.0} MiB)",
                r.took,
                r.peak_mib(),
                w.took,
                w.peak_mib()
            );
        }
    }
    let mut ratios: Vec<f64> = raws
        .iter()
        .zip(&weirs)
        .map(|(r, w)| r.took.as_secs_f64() / w.took.as_secs_f64())
        .collect();
    ratios.sort_by(f64::total_cmp);
    let best = |runs: &[Run]| *runs.iter().min_by_key(|r| r.took).unwrap();
    (best(&raws), best(&weirs), ratios[ratios.len() / 2])
}

fn main() {
    // `WEIR_BENCH_PROFILE=1` runs each side once at -w 1 and -w 2 and prints where the
    // Weir job spent its time (operators' busy time, summed over instances).
    if std::env::var("WEIR_BENCH_PROFILE").is_ok() {
        let images = images(1_500_000);
        for workers in [1, 2] {
            println!("-w {workers}: raw {:?}", raw(&images, workers, 256).took);
            println!("-w {workers}: weir {:?}", weir(&images, workers, 256).took);
        }
        return;
    }
    let (benchmarking, args) = bench_process::bench_args();
    let (rows, runs) = if benchmarking {
        (1_500_000, 5)
    } else {
        (4_000, 1)
    };
    let rows = bench_process::number_arg(&args, 0, rows);
    if !benchmarking {
        println!("smoke run (use `cargo bench --bench image_predict` for real numbers)");
    }
    let images = images(rows);
    let mut json = Vec::new();
    println!("digits CNN [N, 1, 8, 8], {rows} rows, {runs} alternating runs; ratio: median of per-pair raw/weir; MiB: peak memory of the best run");
    println!(
        "{:>8} {:>6} {:>14} {:>14} {:>8} {:>8} {:>9}",
        "threads", "batch", "raw rows/s", "weir rows/s", "weir/raw", "raw MiB", "weir MiB"
    );
    for (threads, batch) in [(1usize, 256usize), (2, 256), (2, 32)] {
        let (raw, weir, ratio) = measure(&images, threads, batch, runs);
        let per_s = |r: Run| rows as f64 / r.took.as_secs_f64();
        let (rr, wr) = (per_s(raw), per_s(weir));
        let (raw_mib, weir_mib) = (raw.peak_mib(), weir.peak_mib());
        println!(
            "{threads:>8} {batch:>6} {rr:>14.0} {wr:>14.0} {ratio:>8.3} {raw_mib:>8.0} {weir_mib:>9.0}"
        );
        json.push(format!(
            "{{\"threads\":{threads},\"batch\":{batch},\"rows\":{rows},\"raw_rows_per_s\":{rr:.0},\"weir_rows_per_s\":{wr:.0},\"ratio\":{ratio:.4},\"raw_peak_mib\":{raw_mib:.1},\"weir_peak_mib\":{weir_mib:.1}}}"
        ));
    }
    if benchmarking {
        std::fs::create_dir_all("target/bench").unwrap();
        std::fs::write(
            "target/bench/image_predict.json",
            format!("[{}]\n", json.join(",")),
        )
        .unwrap();
    }
}
