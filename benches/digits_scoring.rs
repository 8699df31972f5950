//! The digits scoring job (JSONL file in, JSONL predictions out) against a hand-written
//! program doing the same parse, inference and write, at 1 and 2 threads/workers, with the
//! logistic regression and the 256x256 MLP.
//!
//! The input is `RECORDS` digit records (`{"id","x":[64 numbers],"y"}`, the fixture's 1,797
//! digits repeated with new ids), written to `target/bench/` before timing. Both sides write
//! `{"id","pred","model_version"}` lines, one part file per thread/worker, and both outputs
//! are checked against each other after each configuration (same prediction for every id).
//! - **hand-written** (`n` threads): thread `t` reads the byte range `[t*len/n, (t+1)*len/n)`
//!   of the input widened to whole lines (Weir's file source reads the same bytes as blocks
//!   of 4 MiB taken in turn), parses each line
//!   with serde_json, copies its features into a batch of 256 rows, runs its own ONNX Runtime
//!   session (1 intra-op thread, loaded inside the timed part) on each full batch, and writes
//!   each prediction with serde_json into a buffered part file, as Weir's file sinks write
//!   theirs: into a temporary file that is synced (`fsync`) and renamed when complete.
//! - **Weir** (`-w n`): `read_jsonl` → `predict` (the demo's `PredictConfig::default()`,
//!   batches of up to 256) → `map` → `write_jsonl`, the model from a parallelism-1 source.
//!
//! Runs alternate between the sides; the table gives the best time of each and the ratio
//! Weir / hand-written (throughput), and peak memory (VmHWM, reset before each run). Timing is
//! not asserted. `cargo bench --bench digits_scoring [-- RECORDS [REPETITIONS]]` (default
//! 500,000 records, 5 repetitions) prints the table and writes
//! `target/bench/digits_scoring.json`. `WEIR_BENCH_ONLY=<model>:<side>` (model `logreg` or
//! `mlp`, side `hand1`, `hand2`, `w1`, `w2`) runs one side REPETITIONS times, for `perf`.
//! Under `cargo test` it does a small smoke run that checks the outputs.

#[path = "support/bench_process.rs"]
#[allow(dead_code)]
mod bench_process;

use bench_process::{number_arg, FourSides, Run, FOUR_SIDES as SIDES};

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use ort::session::Session;
use ort::value::TensorRef;
use serde::{Deserialize, Serialize};
use weir::onnx::{runtime, ModelUpdate, PredictConfig, PredictExt};
use weir::prelude::*;

/// The same allocator as the `weir` binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Rows per `Session::run` on both sides.
const BATCH: usize = 256;
/// Features per digit.
const FEATURES: usize = 64;

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Digit {
    id: u64,
    x: Vec<f32>,
    y: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Scored {
    id: u64,
    pred: i64,
    model_version: u64,
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn bench_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench/digits_scoring")
}

/// Writes `records` digit records to a JSONL file and returns its path.
fn write_input(records: usize) -> PathBuf {
    let text = std::fs::read_to_string(fixtures().join("data/digits.jsonl")).unwrap();
    let base: Vec<Digit> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    std::fs::create_dir_all(bench_dir()).unwrap();
    let path = bench_dir().join(format!("digits_{records}.jsonl"));
    let mut out = BufWriter::new(File::create(&path).unwrap());
    for i in 0..records {
        let digit = Digit {
            id: i as u64,
            ..base[i % base.len()].clone()
        };
        serde_json::to_writer(&mut out, &digit).unwrap();
        out.write_all(b"\n").unwrap();
    }
    out.flush().unwrap();
    path
}

/// The hand-written program on `threads` threads, writing part files into `out`.
fn hand_written(input: &Path, model: &Path, out: &Path, threads: usize) -> Run {
    prepare_output(out);
    let environment = runtime().unwrap().environment();
    let len = std::fs::metadata(input).unwrap().len();
    let start = Run::start();
    std::thread::scope(|s| {
        for t in 0..threads {
            let range = (
                t as u64 * len / threads as u64,
                (t as u64 + 1) * len / threads as u64,
            );
            let part = out.join(format!("part-{t}.jsonl"));
            std::thread::Builder::new()
                .name(format!("hand-{t}"))
                .spawn_scoped(s, move || {
                    score_range(environment, input, range, model, &part)
                })
                .unwrap();
        }
    });
    Run::end(start)
}

/// Scores the lines whose first byte is in `[from, to)` into the file `part`.
fn score_range(
    environment: &'static ort::environment::Environment,
    input: &Path,
    (from, to): (u64, u64),
    model: &Path,
    part: &Path,
) {
    let mut session = Session::builder(environment)
        .unwrap()
        .with_intra_threads(1)
        .unwrap()
        .commit_from_file(model)
        .unwrap();
    let mut file = File::open(input).unwrap();
    let mut at = from;
    if from > 0 {
        // The line the range starts inside belongs to the range before.
        file.seek(SeekFrom::Start(from - 1)).unwrap();
        let mut skip = BufReader::new(&mut file);
        let mut partial = Vec::new();
        at = from - 1 + skip.read_until(b'\n', &mut partial).unwrap() as u64;
        file.seek(SeekFrom::Start(at)).unwrap();
    }
    let mut lines = BufReader::with_capacity(64 * 1024, file.take(u64::MAX));
    // Written as Weir's file sinks write: into a temporary file, synced, then renamed.
    let temp = part.with_extension("jsonl.inprogress");
    let mut writer = BufWriter::with_capacity(64 * 1024, File::create(&temp).unwrap());
    let mut line = Vec::new();
    let mut ids = Vec::with_capacity(BATCH);
    let mut x = Vec::with_capacity(BATCH * FEATURES);
    loop {
        let done = at >= to || {
            line.clear();
            let n = lines.read_until(b'\n', &mut line).unwrap();
            at += n as u64;
            n == 0
        };
        if !done {
            let digit: Digit = serde_json::from_slice(&line).unwrap();
            ids.push(digit.id);
            x.extend_from_slice(&digit.x);
        }
        if ids.len() == BATCH || (done && !ids.is_empty()) {
            let input = TensorRef::from_array_view(([ids.len(), FEATURES], &x[..])).unwrap();
            let outputs = session.run(ort::inputs!["input" => input]).unwrap();
            let (_, labels) = outputs["label"].try_extract_tensor::<i64>().unwrap();
            for (&id, &pred) in ids.iter().zip(labels) {
                let scored = Scored {
                    id,
                    pred,
                    model_version: 1,
                };
                serde_json::to_writer(&mut writer, &scored).unwrap();
                writer.write_all(b"\n").unwrap();
            }
            ids.clear();
            x.clear();
        }
        if done {
            break;
        }
    }
    writer.flush().unwrap();
    writer.get_ref().sync_all().unwrap();
    std::fs::rename(&temp, part).unwrap();
}

/// The Weir job on `workers` workers, writing part files into `out`.
fn weir(input: &Path, model: &Path, out: &Path, workers: usize) -> Run {
    prepare_output(out);
    let (input, model, out) = (input.to_path_buf(), model.to_path_buf(), out.to_path_buf());
    let start = Run::start();
    execute(Config::threads(workers).with_verbose(false), move |job| {
        let models = job.from_vec(
            op("model").parallelism(1),
            vec![ModelUpdate::from_path("digits", 1, &model)],
        );
        let (scored, _dead) = job.read_jsonl::<Digit>("digits", &input).predict(
            "predict",
            models,
            |d: &Digit, row: &mut Vec<f32>| row.extend_from_slice(&d.x),
            PredictConfig::default(),
        );
        scored
            .map("to_output", |p| Scored {
                id: p.record.id,
                pred: p.label,
                model_version: p.model_version,
            })
            .write_jsonl(op("write").overwrite(true), &out);
        Ok(())
    })
    .unwrap();
    Run::end(start)
}

fn prepare_output(out: &Path) {
    let _ = std::fs::remove_dir_all(out);
    std::fs::create_dir_all(out).unwrap();
}

/// Every prediction in the `.jsonl` files of `dir`, indexed by id (ids are `0..records`);
/// each id must be scored exactly once. A vector rather than a map: the check runs between
/// timed runs, and memory it leaves with the allocator counts in the next run's peak.
fn predictions(dir: &Path, records: usize) -> Vec<i64> {
    let mut by_id = vec![-1i64; records];
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "jsonl") {
            for line in BufReader::new(File::open(&path).unwrap()).lines() {
                let scored: Scored = serde_json::from_str(&line.unwrap()).unwrap();
                assert_eq!(scored.model_version, 1, "{}", path.display());
                let slot = &mut by_id[scored.id as usize];
                assert!(
                    *slot < 0,
                    "id {} scored twice in {}",
                    scored.id,
                    dir.display()
                );
                *slot = scored.pred;
            }
        }
    }
    if let Some(id) = by_id.iter().position(|&p| p < 0) {
        panic!("id {id} was not scored in {}", dir.display());
    }
    by_id
}

fn run_side(input: &Path, model: &Path, side: &str) -> Run {
    let out = bench_dir().join(format!("out-{side}"));
    match side {
        "hand1" => hand_written(input, model, &out, 1),
        "hand2" => hand_written(input, model, &out, 2),
        "w1" => weir(input, model, &out, 1),
        "w2" => weir(input, model, &out, 2),
        other => panic!("unknown side `{other}` (expected hand1, hand2, w1, w2)"),
    }
}

fn measure(input: &Path, model: &Path, records: usize, reps: usize) -> FourSides {
    let mut best = FourSides::new();
    for _ in 0..reps {
        for (i, side) in SIDES.iter().enumerate() {
            let run = run_side(input, model, side);
            best.keep(i, run.took, run.peak);
        }
    }
    let expected = predictions(&bench_dir().join("out-hand1"), records);
    for side in &SIDES[1..] {
        let got = predictions(&bench_dir().join(format!("out-{side}")), records);
        assert!(got == expected, "{side} predicted differently from hand1");
    }
    best
}

const MODELS: [(&str, &str); 2] = [
    ("logreg", "digits_logreg.onnx"),
    ("mlp", "digits_mlp256.onnx"),
];

fn main() {
    let (benchmarking, args) = bench_process::bench_args();
    let records = number_arg(&args, 0, if benchmarking { 500_000 } else { 3_000 });
    let reps = number_arg(&args, 1, if benchmarking { 5 } else { 1 }).max(1);
    if !benchmarking {
        println!("smoke run (use `cargo bench --bench digits_scoring` for real numbers)");
    }
    runtime().expect("ONNX Runtime (scripts/install-onnxruntime.sh installs it)");
    let input = write_input(records);
    let model = |file: &str| fixtures().join("models").join(file);
    if let Ok(only) = std::env::var("WEIR_BENCH_ONLY") {
        let (name, side) = only
            .split_once(':')
            .expect("WEIR_BENCH_ONLY=<model>:<side>");
        let (_, file) = MODELS
            .iter()
            .find(|(n, _)| *n == name)
            .expect("model `logreg` or `mlp`");
        let took = (0..reps)
            .map(|_| run_side(&input, &model(file), side).took)
            .min()
            .unwrap();
        println!("{only}: {:.1} ms", took.as_secs_f64() * 1e3);
        return;
    }
    println!(
        "{records} records, best of {reps} interleaved runs; ms (peak MiB)\n\n\
         | model | hand 1 thread | hand 2 threads | Weir -w 1 | Weir -w 2 | -w 1 / hand 1 | -w 2 / hand 2 |\n\
         |---|---:|---:|---:|---:|---:|---:|"
    );
    let mut json = Vec::new();
    let mut all_hold = true;
    for (name, file) in MODELS {
        let best = measure(&input, &model(file), records, reps);
        let (r1, r2) = (best.ms[0] / best.ms[2], best.ms[1] / best.ms[3]);
        all_hold &= r1 >= 0.9 && r2 >= 0.9;
        println!("| {name} | {} | {r1:.2}x | {r2:.2}x |", best.cells());
        let mut result = best.json();
        result["model"] = name.into();
        result["records"] = records.into();
        result["w1_vs_hand1"] = r1.into();
        result["w2_vs_hand2"] = r2.into();
        json.push(result);
    }
    println!(
        "\ntarget (Weir at least 0.9x the hand-written program at -w 1 and -w 2): {}",
        if all_hold { "holds" } else { "missed" }
    );
    if benchmarking {
        std::fs::write(
            bench_dir().join("../digits_scoring.json"),
            serde_json::to_string_pretty(&json).unwrap() + "\n",
        )
        .unwrap();
    }
}
