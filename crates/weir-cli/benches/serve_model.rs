//! `weir serve --model` under 32 concurrent clients vs calling ONNX Runtime directly in this
//! process from 32 threads (one shared session, one row per call): requests per second and
//! p50/p99 latency of each, i.e. the cost (or gain) of the HTTP layer and batching.
//!
//! `cargo bench -p weir-cli --bench serve_model` (needs the release `weir` binary, which
//! cargo builds for the bench) prints the table and writes `target/bench/serve_model.json`.
//! Under `cargo test` it does a small smoke run.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use ort::session::Session;
use ort::value::TensorRef;

const CLIENTS: usize = 32;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

fn images() -> Vec<Vec<f32>> {
    std::fs::read_to_string(fixtures().join("data/digits.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            serde_json::from_value(v["x"].clone()).unwrap()
        })
        .collect()
}

/// Requests per second and the latencies (sorted) of `CLIENTS` threads making `per_client`
/// calls each with `call(client, i)`.
fn load(per_client: usize, call: impl Fn(usize, usize) + Sync) -> (f64, Vec<Duration>) {
    let barrier = Barrier::new(CLIENTS);
    let latencies = Mutex::new(Vec::with_capacity(CLIENTS * per_client));
    let start = Instant::now();
    std::thread::scope(|s| {
        for c in 0..CLIENTS {
            let (barrier, latencies, call) = (&barrier, &latencies, &call);
            s.spawn(move || {
                barrier.wait();
                let mut mine = Vec::with_capacity(per_client);
                for i in 0..per_client {
                    let t = Instant::now();
                    call(c, i);
                    mine.push(t.elapsed());
                }
                latencies.lock().unwrap().extend(mine);
            });
        }
    });
    let elapsed = start.elapsed().as_secs_f64();
    let mut latencies = latencies.into_inner().unwrap();
    latencies.sort();
    ((CLIENTS * per_client) as f64 / elapsed, latencies)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p) as usize].as_secs_f64() * 1e3
}

fn main() {
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let per_client = if benchmarking { 300 } else { 5 };
    let images = Arc::new(images());
    let model = fixtures().join("models/digits_cnn.onnx");

    // Direct: one session behind a mutex, one row a call.
    let session = Mutex::new(
        Session::builder(weir_onnx::runtime().unwrap().environment())
            .unwrap()
            .with_intra_threads(1)
            .unwrap()
            .commit_from_file(&model)
            .unwrap(),
    );
    let (direct_rps, direct) = load(per_client, |c, i| {
        let x = &images[(c * 31 + i) % images.len()];
        let input = TensorRef::from_array_view(([1usize, 1, 8, 8], &x[..])).unwrap();
        let mut session = session.lock().unwrap();
        let out = session.run(ort::inputs!["image" => input]).unwrap();
        let (_, label) = out["label"].try_extract_tensor::<i64>().unwrap();
        std::hint::black_box(label[0]);
    });

    // Through `weir serve --model` over HTTP.
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--threads",
            "4",
            "--model",
        ])
        .arg(&model)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = format!(
        "{}/v1/models/digits_cnn:predict",
        line.trim().strip_prefix("serving on ").unwrap()
    );
    let bodies: Vec<String> = images
        .iter()
        .map(|x| serde_json::json!({"instances": [[x.chunks(8).collect::<Vec<_>>()]]}).to_string())
        .collect();
    let agents: Vec<ureq::Agent> = (0..CLIENTS)
        .map(|_| ureq::Agent::new_with_defaults())
        .collect();
    let (http_rps, http) = load(per_client, |c, i| {
        let body = &bodies[(c * 31 + i) % bodies.len()];
        let mut response = agents[c].post(&url).send(body).unwrap();
        std::hint::black_box(response.body_mut().read_to_string().unwrap());
    });
    let _ = child.kill();
    let _ = child.wait();

    println!("digits CNN, {CLIENTS} concurrent clients, {per_client} single-image requests each");
    println!("{:<34} {:>10} {:>9} {:>9}", "", "req/s", "p50 ms", "p99 ms");
    for (name, rps, lat) in [
        ("ONNX Runtime directly (1 session)", direct_rps, &direct),
        ("weir serve --model (HTTP, batched)", http_rps, &http),
    ] {
        println!(
            "{name:<34} {rps:>10.0} {:>9.3} {:>9.3}",
            percentile(lat, 0.5),
            percentile(lat, 0.99)
        );
    }
    println!("serve/direct throughput: {:.3}", http_rps / direct_rps);
    if benchmarking {
        let json = serde_json::json!({
            "clients": CLIENTS, "requests_per_client": per_client,
            "direct": {"rps": direct_rps, "p50_ms": percentile(&direct, 0.5), "p99_ms": percentile(&direct, 0.99)},
            "serve": {"rps": http_rps, "p50_ms": percentile(&http, 0.5), "p99_ms": percentile(&http, 0.99)},
            "throughput_ratio": http_rps / direct_rps,
        });
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("serve_model.json"), format!("{json}\n")).unwrap();
    }
}
