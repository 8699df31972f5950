//! Kafka + ML: score a stream from one topic with an in-process ONNX model, write the
//! predictions to another topic, and swap the model mid-stream when a new version is
//! published to the model topic (Kafka Streams' embedded model, TensorFlow.js on Flink).
//!
//! Against a running broker (start one with `weir kafka broker`, or any Kafka):
//! ```text
//! cargo run --example kafka_scoring -- --bootstrap 127.0.0.1:9092 -w 2
//! ```
//! The example creates the topics `digits` (2 partitions), `predictions` and `models`,
//! publishes model v1 (logistic regression), produces half of the digits, publishes v2 (an
//! MLP, by `file://` URI) and produces the rest; the job reads both topics, and prints how
//! many records each version scored. With `--no-producer` it only runs the job (produce with
//! `weir kafka produce` and `weir kafka publish-model`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use weir::onnx::{PredictConfig, PredictExt};
use weir::prelude::*;
use weir_kafka::{
    create_topic, publish_model, KafkaConfig, KafkaSink, KafkaSource, ModelTopic, OutgoingMessage,
    PublishedModel, ReadKafka, ReadModels, TopicWriter, WriteKafka,
};

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Digit {
    id: u64,
    x: Vec<f32>,
    y: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Scored {
    id: u64,
    label: i64,
    truth: i64,
    model_version: u64,
}

struct Args {
    bootstrap: String,
    records: usize,
    produce: bool,
}

impl Args {
    fn parse(args: &[String]) -> anyhow::Result<Self> {
        let mut parsed = Args {
            bootstrap: "127.0.0.1:9092".into(),
            records: 1_796,
            produce: true,
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let mut value = || it.next().with_context(|| format!("{arg} needs a value"));
            match arg.as_str() {
                "--bootstrap" => parsed.bootstrap = value()?.clone(),
                "--records" => parsed.records = value()?.parse().context("--records: a count")?,
                "--no-producer" => parsed.produce = false,
                other => anyhow::bail!(
                    "unknown argument `{other}` (expected --bootstrap HOST:PORT, --records N \
                     (even), --no-producer, and job flags)"
                ),
            }
        }
        anyhow::ensure!(
            parsed.records % 2 == 0,
            "--records must be even (two partitions)"
        );
        Ok(parsed)
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Produces the demo's input: v1, the first half of the digits, then v2 once v1 has scored
/// them all, then the second half.
fn produce(kafka: KafkaConfig, records: usize, scored_v1: Collector<u64>) -> anyhow::Result<()> {
    let lines: Vec<String> = std::fs::read_to_string(root().join("fixtures/data/digits.jsonl"))?
        .lines()
        .cycle()
        .take(records)
        .enumerate()
        .map(|(i, l)| {
            let mut d: Digit = serde_json::from_str(l).expect("fixture");
            d.id = i as u64;
            serde_json::to_string(&d).expect("json")
        })
        .collect();
    let v1 = std::fs::read(root().join("fixtures/models/digits_logreg.onnx"))?;
    publish_model(&kafka, "models", "digits", 1, PublishedModel::Bytes(&v1))?;
    let (first, second) = lines.split_at(records / 2);
    send(&kafka, first, 0)?;
    while scored_v1.len() < first.len() {
        std::thread::sleep(Duration::from_millis(20));
    }
    let v2 = root().join("fixtures/models/digits_mlp256.onnx");
    let uri = format!("file://{}", v2.canonicalize()?.display());
    publish_model(&kafka, "models", "digits", 2, PublishedModel::Uri(&uri))?;
    // The new version applies from the epoch it arrives in; give it a moment to load.
    std::thread::sleep(Duration::from_millis(1_500));
    send(&kafka, second, records / 2)?;
    Ok(())
}

/// Sends lines to `digits`, record `i` to partition `i % 2`.
fn send(kafka: &KafkaConfig, lines: &[String], first: usize) -> anyhow::Result<()> {
    let mut writer = TopicWriter::new(kafka, "digits")?;
    for (i, line) in lines.iter().enumerate() {
        writer.send(&OutgoingMessage {
            value: line.as_bytes(),
            partition: Some(((first + i) % 2) as i32),
            ..OutgoingMessage::default()
        })?;
    }
    writer.finish()?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let args = Args::parse(&config.program_args)?;
    let kafka = KafkaConfig::new(&args.bootstrap);
    for (topic, partitions) in [("digits", 2), ("predictions", 2), ("models", 1)] {
        create_topic(&kafka, topic, partitions)?;
    }
    let counts = Collector::new();
    let scored_v1 = Collector::new();
    let producer = args.produce.then(|| {
        let (kafka, records, v1) = (kafka.clone(), args.records, scored_v1.clone());
        std::thread::spawn(move || produce(kafka, records, v1))
    });
    let (sink, v1) = (counts.clone(), scored_v1.clone());
    let per_instance = (args.records / 2) as u64;
    let workers = config.total_workers().min(2);
    let report = execute(config, move |job| {
        // Each of the two partitions goes to its own instance, which stops after its half.
        let source = KafkaSource::builder(kafka.clone())
            .topics(["digits"])
            .stop_after(per_instance * 2 / workers as u64)
            .json::<Digit>()?;
        let digits = job
            .read_kafka(
                op("digits")
                    .parallelism(workers)
                    .epochs(EpochPolicy::Interval(Duration::from_millis(100))),
                source,
            )
            .map("value", |r| r.value);
        let models = job.read_models(
            "models",
            ModelTopic::new(kafka.clone(), "models").stop_after_versions(2),
        );
        let (scored, _dead) = digits.predict(
            "predict",
            models,
            |d: &Digit, row: &mut Vec<f32>| row.extend_from_slice(&d.x),
            PredictConfig::default(),
        );
        let scored = scored.map("scored", |p| Scored {
            id: p.record.id,
            label: p.label,
            truth: p.record.y,
            model_version: p.model_version,
        });
        scored
            .clone()
            .map("version", |s| s.model_version)
            .collect("counts", &sink);
        scored
            .clone()
            .filter("v1", |s| s.model_version == 1)
            .map("id", |s| s.id)
            .collect("v1-ids", &v1);
        let out = KafkaSink::builder(kafka.clone(), "predictions")
            .json::<Scored>()
            .key(|s| Some(s.id.to_string().into_bytes()))
            .header("source", "kafka_scoring");
        scored.write_kafka("predictions", out);
        Ok(())
    })?;
    if let Some(p) = producer {
        p.join().expect("producer thread")?;
    }
    let versions = counts.take();
    for v in [1, 2] {
        let n = versions.iter().filter(|x| **x == v).count();
        println!("model v{v} scored {n} records");
    }
    let _ = report;
    Ok(())
}
