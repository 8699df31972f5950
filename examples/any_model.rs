//! Scoring with models of the kinds people bring, all trained and exported by
//! `scripts/make_typed_models.py`:
//!
//! - `image`: a small convolutional network over the 8x8 digits as `[N, 1, 8, 8]` images;
//! - `wine`: a scikit-learn pipeline exported with skl2onnx's defaults: string class labels
//!   and ZipMap probabilities (a sequence of maps, one per record);
//! - `text`: a topic classifier over int32 token ids of any length (`[N, L]`).
//!
//! ```text
//! cargo run --release --example any_model -- -w 2            # all three
//! cargo run --release --example any_model -- -w 2 --only text
//! ```
//!
//! Each job prints one JSON line: records, accuracy against the data's labels, dead letters.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use weir::onnx::{ModelUpdate, PredictExt, TensorPredictConfig, TensorSpec};
use weir::prelude::*;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn model(file: &str) -> ModelUpdate {
    ModelUpdate::from_path(file, 1, fixtures().join("models").join(file))
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Digit {
    id: u64,
    x: Vec<f32>,
    y: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Wine {
    id: u64,
    x: Vec<f32>,
    y: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Text {
    id: u64,
    text: String,
    topic: String,
}

/// Counts of right answers, summed on one instance.
fn count_correct<'s>(correct: DataStream<'s, bool>, sink: &Collector<(u64, u64)>) {
    correct
        .global_aggregate(
            "accuracy",
            || (0u64, 0u64),
            |acc, c| {
                acc.0 += u64::from(c);
                acc.1 += 1;
            },
            |acc, other| {
                acc.0 += other.0;
                acc.1 += other.1;
            },
        )
        .collect(op("counts").parallelism(1), sink);
}

/// The CNN: a digit's 64 pixels are its `[1, 8, 8]` image.
fn image(job: &mut Job<'_>, sink: &Collector<(u64, u64)>) {
    let digits = job.read_jsonl::<Digit>("digits", fixtures().join("data/digits.jsonl"));
    let models = job.from_vec(op("model").parallelism(1), vec![model("digits_cnn.onnx")]);
    let (scored, _dead) = digits.predict_tensors(
        "predict",
        models,
        |_| 0,
        |d: &Digit, rows| rows.f32(0).extend_from_slice(&d.x),
        |d, out| out.i64(0)[0] == d.y,
        TensorPredictConfig {
            inputs: vec![TensorSpec::f32("image")],
            outputs: vec![TensorSpec::i64("label").with_width(1)],
            ..TensorPredictConfig::default()
        },
    );
    count_correct(scored, sink);
}

/// The scikit-learn pipeline: string labels, and a ZipMap per record whose top class must
/// be the label.
fn wine(job: &mut Job<'_>, sink: &Collector<(u64, u64)>) {
    let wines = job.read_jsonl::<Wine>("wines", fixtures().join("data/wine.jsonl"));
    let models = job.from_vec(op("model").parallelism(1), vec![model("wine_zipmap.onnx")]);
    let (scored, _dead) = wines.predict_tensors(
        "predict",
        models,
        |_| 0,
        |w: &Wine, rows| rows.f32(0).extend_from_slice(&w.x),
        |w, out| {
            let label = &out.string(0)[0];
            let probabilities = out.map(1).expect("ZipMap: one map per record");
            let top = ["barolo", "grignolino", "barbera"]
                .into_iter()
                .max_by(|a, b| {
                    let p = |k: &str| probabilities.get_str(k).unwrap_or(0.0);
                    p(a).total_cmp(&p(b))
                })
                .unwrap_or_default();
            *label == w.y && label == top
        },
        TensorPredictConfig {
            inputs: vec![TensorSpec::f32("X")],
            outputs: vec![
                TensorSpec::string("output_label").with_width(1),
                TensorSpec::any("output_probability"),
            ],
            ..TensorPredictConfig::default()
        },
    );
    count_correct(scored, sink);
}

#[derive(Clone, Deserialize)]
struct Vocabulary {
    topics: Vec<String>,
    vocabulary: Vec<String>,
}

/// The text model: words to int32 ids with the model's vocabulary (1 for unknown words);
/// texts of different lengths go into different runs.
fn text(job: &mut Job<'_>, vocab: Vocabulary, sink: &Collector<(u64, u64)>) {
    let index: HashMap<String, i32> = vocab
        .vocabulary
        .iter()
        .enumerate()
        .map(|(i, w)| (w.clone(), i as i32))
        .collect();
    let topics = vocab.topics;
    let texts = job.read_jsonl::<Text>("texts", fixtures().join("data/text.jsonl"));
    let models = job.from_vec(op("model").parallelism(1), vec![model("text_bow.onnx")]);
    let (scored, _dead) = texts.predict_tensors(
        "predict",
        models,
        |_| 0,
        move |t: &Text, rows| {
            let tokens = rows.i32(0);
            tokens.extend(
                t.text
                    .split_whitespace()
                    .map(|w| *index.get(w).unwrap_or(&1)),
            );
        },
        move |t, out| topics.get(out.i64(0)[0] as usize) == Some(&t.topic),
        TensorPredictConfig {
            inputs: vec![TensorSpec::i32("tokens")],
            outputs: vec![TensorSpec::i64("label").with_width(1)],
            ..TensorPredictConfig::default()
        },
    );
    count_correct(scored, sink);
}

/// The text model's vocabulary and topic names.
fn vocabulary() -> anyhow::Result<Vocabulary> {
    let path = fixtures().join("data/text_vocab.json");
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    Ok(serde_json::from_str(&text)?)
}

fn main() -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let mut only = None;
    let mut args = config.program_args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--only" => {
                only = Some(
                    args.next()
                        .context("--only needs image, wine or text")?
                        .clone(),
                )
            }
            other => anyhow::bail!("unknown argument `{other}` (expected --only image|wine|text)"),
        }
    }
    let first_process = config.process_index() == 0;
    let vocab = vocabulary()?;
    for name in ["image", "wine", "text"] {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let counts = Collector::new();
        let sink = counts.clone();
        let vocab = vocab.clone();
        let report = execute(config.clone(), move |job| {
            match name {
                "image" => image(job, &sink),
                "wine" => wine(job, &sink),
                _ => text(job, vocab.clone(), &sink),
            }
            Ok(())
        })?;
        if first_process {
            // The running total's last update holds every record.
            let (correct, total) = counts
                .take()
                .into_iter()
                .max_by_key(|&(_, n)| n)
                .unwrap_or((0, 0));
            let line = serde_json::json!({
                "model": name,
                "records": total,
                "accuracy": correct as f64 / total.max(1) as f64,
                "dead_letters": report.dead_letters,
            });
            println!("{line}");
        }
    }
    Ok(())
}
