//! The main demo: scores handwritten digits with an ONNX model inside the dataflow.
//!
//! ```text
//! cargo run --release --example digits_scoring -- -w 2
//! cargo run --release --example digits_scoring -- -w 2 --input in.jsonl --model m.onnx --output out.jsonl
//! ```
//! Input lines are `{"id":<int>,"x":[64 numbers],"y":<label>}` (default: the digits data set
//! shipped in `fixtures/`); output lines are `{"id","pred","model_version"}`. The program ends
//! by printing one JSON line: records, errors, accuracy, seconds, records_per_s.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use weir::onnx::{ModelUpdate, PredictConfig, PredictExt};
use weir::prelude::*;

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

fn main() -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut input = root.join("fixtures/data/digits.jsonl");
    let mut model = root.join("fixtures/models/digits_logreg.onnx");
    let mut output = root.join("target/digits_scoring/predictions.jsonl");
    let mut args = config.program_args.iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .with_context(|| format!("{name} needs a path"))
                .map(PathBuf::from)
        };
        match arg.as_str() {
            "--input" => input = value("--input")?,
            "--model" => model = value("--model")?,
            "--output" => output = value("--output")?,
            other => {
                anyhow::bail!("unknown argument `{other}` (expected --input, --model, --output)")
            }
        }
    }
    let explaining = config.explain.is_some();
    let first_process = config.process_index() == 0;
    let counts = Collector::new();
    let sink = counts.clone();
    // Provision ONNX Runtime first (on first use it is installed from PyPI, which says so on
    // stderr), so that installing it does not count in the job's time.
    if !explaining {
        weir::onnx::runtime()?;
    }
    let started = Instant::now();
    let report = execute(config, move |job| {
        let digits = job.read_jsonl::<Digit>("digits", &input);
        let models = job.from_vec(
            op("model").parallelism(1),
            vec![ModelUpdate::from_path("digits", 1, &model)],
        );
        let (scored, _dead) = digits.predict(
            "predict",
            models,
            |d: &Digit, row: &mut Vec<f32>| row.extend_from_slice(&d.x),
            PredictConfig::default(),
        );
        scored
            .clone()
            .map("to_output", |p| Scored {
                id: p.record.id,
                pred: p.label,
                model_version: p.model_version,
            })
            .write_jsonl_file("write", &output);
        // Running accuracy: (correct, scored) over the whole stream; the last update is the total.
        scored
            .map("correct", |p| u64::from(p.label == p.record.y))
            .global_aggregate(
                "accuracy",
                || (0u64, 0u64),
                |acc, c| {
                    acc.0 += c;
                    acc.1 += 1;
                },
                |acc, other| {
                    acc.0 += other.0;
                    acc.1 += other.1;
                },
            )
            .collect(op("counts").parallelism(1), &sink);
        Ok(())
    })?;
    if explaining || !first_process {
        return Ok(());
    }
    let seconds = started.elapsed().as_secs_f64();
    let (correct, scored) = counts
        .take()
        .into_iter()
        .max_by_key(|&(_, n)| n)
        .unwrap_or((0, 0));
    let records = report.operator("digits").map_or(0, |o| o.records_in);
    let summary = serde_json::json!({
        "records": records,
        "errors": report.dead_letters,
        "accuracy": if scored > 0 { correct as f64 / scored as f64 } else { 0.0 },
        "seconds": seconds,
        "records_per_s": records as f64 / seconds,
    });
    println!("{summary}");
    Ok(())
}
