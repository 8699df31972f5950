//! An image classifier (`fixtures/models/digits_cnn.onnx`, `[N, 1, 8, 8]`) through the predict
//! operator at `-w 2` vs a hand-written loop calling `Session::run` with the same batch size on
//! two threads (one session each, half the rows each).
//!
//! `cargo bench --bench image_predict` prints the table and writes
//! `target/bench/image_predict.json`. Under `cargo test` it does a small smoke run.
//!
//! Both sides do the same work: load the model (one session per thread or instance), and per
//! row copy the image's 64 floats from a shared table into the batch, run, and read the label
//! and the 10 probabilities back. The Weir side's time is the whole job's.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
fn raw(images: &Arc<Vec<f32>>, threads: usize, batch: usize) -> Duration {
    let rows = images.len() / 64;
    let environment = runtime().unwrap().environment();
    let start = Instant::now();
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
                let mine: Vec<usize> = (t..rows).step_by(threads).collect();
                let mut x = Vec::with_capacity(batch * 64);
                let mut checksum = 0i64;
                for chunk in mine.chunks(batch) {
                    x.clear();
                    for &r in chunk {
                        x.extend_from_slice(&images[r * 64..(r + 1) * 64]);
                    }
                    let input =
                        TensorRef::from_array_view(([chunk.len(), 1, 8, 8], &x[..])).unwrap();
                    let out = session.run(ort::inputs!["image" => input]).unwrap();
                    let (_, labels) = out["label"].try_extract_tensor::<i64>().unwrap();
                    let (_, p) = out["probabilities"].try_extract_tensor::<f32>().unwrap();
                    checksum += labels.iter().sum::<i64>() + p.len() as i64;
                }
                std::hint::black_box(checksum);
            });
        }
    });
    start.elapsed()
}

/// The Weir job: row ids from a collection source (parallelism `workers`) → `predict_tensors`
/// on the CNN → a discarding sink, at `-w workers`.
fn weir(images: &Arc<Vec<f32>>, workers: usize, batch: usize) -> Duration {
    let rows = images.len() / 64;
    let images = Arc::clone(images);
    let start = Instant::now();
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
    let elapsed = start.elapsed();
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
    elapsed
}

fn main() {
    // `WEIR_BENCH_PROFILE=1` runs each side once at -w 1 and -w 2 and prints where the
    // Weir job spent its time (operators' busy time, summed over instances).
    if std::env::var("WEIR_BENCH_PROFILE").is_ok() {
        let images = images(1_500_000);
        for workers in [1, 2] {
            println!("-w {workers}: raw {:?}", raw(&images, workers, 256));
            println!("-w {workers}: weir {:?}", weir(&images, workers, 256));
        }
        return;
    }
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let (rows, runs) = if benchmarking {
        (1_500_000, 5)
    } else {
        (4_000, 1)
    };
    if !benchmarking {
        println!("smoke run (use `cargo bench --bench image_predict` for real numbers)");
    }
    let images = images(rows);
    let mut json = Vec::new();
    println!("digits CNN [N, 1, 8, 8], {rows} rows, {runs} alternating runs; ratio: median of per-pair raw/weir");
    println!(
        "{:>8} {:>6} {:>14} {:>14} {:>8}",
        "threads", "batch", "raw rows/s", "weir rows/s", "weir/raw"
    );
    for (threads, batch) in [(1usize, 256usize), (2, 256), (2, 32)] {
        let (mut raws, mut weirs) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            raws.push(raw(&images, threads, batch));
            weirs.push(weir(&images, threads, batch));
        }
        let mut ratios: Vec<f64> = raws
            .iter()
            .zip(&weirs)
            .map(|(r, w)| r.as_secs_f64() / w.as_secs_f64())
            .collect();
        if std::env::var("WEIR_BENCH_PAIRS").is_ok() {
            for (r, w) in raws.iter().zip(&weirs) {
                println!("    pair: raw {r:?} weir {w:?}");
            }
        }
        ratios.sort_by(f64::total_cmp);
        let ratio = ratios[ratios.len() / 2];
        let per_s = |d: &[Duration]| rows as f64 / d.iter().min().unwrap().as_secs_f64();
        let (rr, wr) = (per_s(&raws), per_s(&weirs));
        println!("{threads:>8} {batch:>6} {rr:>14.0} {wr:>14.0} {ratio:>8.3}");
        json.push(format!(
            "{{\"threads\":{threads},\"batch\":{batch},\"rows\":{rows},\"raw_rows_per_s\":{rr:.0},\"weir_rows_per_s\":{wr:.0},\"ratio\":{ratio:.4}}}"
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
