//! Online learning from Kafka (PyFlink's online-learning scenario): labelled digits arrive on
//! a topic; the job predicts each one, then trains on it (test-then-train), checkpoints the
//! model to a model store, and publishes every checkpoint as an ONNX model version to a model
//! topic, where a separate scoring job (`weir predict --models kafka://…`, or the
//! `kafka_scoring` example) picks it up; `weir serve --store DIR` serves the newest version
//! of the store over HTTP.
//!
//! ```text
//! weir kafka broker &                                   # or any Kafka broker
//! weir kafka create-topic labelled --partitions 2; weir kafka create-topic models
//! weir kafka produce labelled fixtures/data/digits.jsonl
//! cargo run --release --example kafka_online -- --bootstrap 127.0.0.1:9092 --store target/kafka_online/store
//! weir serve --store target/kafka_online/store
//! ```
//! Reads `--records` messages (default: all the topic holds at the start; `{"id","x":[64],
//! "y"}` lines) and ends; prints one JSON line: records, accuracy, model versions published.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use weir::ml::{
    open_store, Checkpoint, LabeledPoint, ModelStore, OnlineLearnExt, OnlineMetrics, OnlineOptions,
    SgdClassifier, StoreError,
};
use weir::prelude::*;
use weir_kafka::{publish_model, KafkaConfig, KafkaSource, PublishedModel, ReadKafka};

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Digit {
    id: u64,
    x: Vec<f32>,
    y: usize,
}

/// A model store that also publishes every checkpoint it saves, as ONNX (scaler included),
/// to a model topic: the checkpoint's version is the model version.
struct PublishingStore {
    store: Box<dyn ModelStore>,
    kafka: KafkaConfig,
    topic: String,
    published: Arc<AtomicU64>,
}

impl ModelStore for PublishingStore {
    fn save(&self, checkpoint: &Checkpoint) -> Result<(), StoreError> {
        self.store.save(checkpoint)?;
        let onnx = checkpoint.to_onnx();
        let model = PublishedModel::Bytes(&onnx);
        // A version that cannot be published is reported, and the next one tries again: the
        // store (the checkpoint) is what the job resumes from.
        match publish_model(
            &self.kafka,
            &self.topic,
            "digits",
            checkpoint.version,
            model,
        ) {
            Ok(()) => {
                self.published.fetch_add(1, Ordering::SeqCst);
            }
            Err(e) => eprintln!("model v{} not published: {e}", checkpoint.version),
        }
        Ok(())
    }

    fn versions(&self) -> Result<Vec<u64>, StoreError> {
        self.store.versions()
    }

    fn read(&self, version: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.store.read(version)
    }

    fn describe(&self) -> String {
        format!("{} publishing to {}", self.store.describe(), self.topic)
    }
}

struct Args {
    bootstrap: String,
    input: String,
    models: String,
    store: String,
    records: Option<u64>,
    checkpoint_records: u64,
}

impl Args {
    fn parse(args: &[String]) -> anyhow::Result<Self> {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let mut parsed = Args {
            bootstrap: "127.0.0.1:9092".into(),
            input: "labelled".into(),
            models: "models".into(),
            store: root.join("target/kafka_online/store").display().to_string(),
            records: None,
            checkpoint_records: 500,
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let mut value = || it.next().with_context(|| format!("{arg} needs a value"));
            match arg.as_str() {
                "--bootstrap" => parsed.bootstrap = value()?.clone(),
                "--input" => parsed.input = value()?.clone(),
                "--models" => parsed.models = value()?.clone(),
                "--store" => parsed.store = value()?.clone(),
                "--records" => parsed.records = Some(value()?.parse().context("--records")?),
                "--checkpoint-records" => {
                    parsed.checkpoint_records = value()?.parse().context("--checkpoint-records")?
                }
                other => bail!(
                    "unknown argument `{other}` (expected --bootstrap, --input TOPIC, --models \
                     TOPIC, --store DIR|redis://…, --records N, --checkpoint-records N)"
                ),
            }
        }
        Ok(parsed)
    }
}

fn main() -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let args = Args::parse(&config.program_args)?;
    let kafka = KafkaConfig::new(&args.bootstrap);
    let published = Arc::new(AtomicU64::new(0));
    let store: Arc<dyn ModelStore> = Arc::new(PublishingStore {
        store: open_store(&args.store)?,
        kafka: kafka.clone(),
        topic: args.models.clone(),
        published: Arc::clone(&published),
    });
    let metrics = Arc::new(Mutex::new(OnlineMetrics::default()));
    let options = OnlineOptions {
        store: Some(store),
        checkpoint_records: args.checkpoint_records,
        scale: true,
        metrics: Arc::clone(&metrics),
        ..OnlineOptions::default()
    };
    let first_process = config.process_index() == 0;
    let outcomes = Collector::new();
    let sink = outcomes.clone();
    execute(config, move |job| {
        let mut source = KafkaSource::builder(kafka.clone()).topics([args.input.clone()]);
        source = match args.records {
            Some(n) => source.stop_after(n),
            None => source.bounded(),
        };
        let points = job
            .read_kafka(op("labelled").parallelism(1), source.json::<Digit>()?)
            .map("point", |r| LabeledPoint {
                x: r.value.x,
                y: r.value.y,
            });
        points
            .learn_online(
                "train",
                SgdClassifier::new(10, 64, 0.5, 1e-4, 1e-5),
                |p| p,
                options.clone(),
            )
            .predictions
            .map("outcome", |p| p.label == p.truth)
            .collect(op("outcomes").parallelism(1), &sink);
        Ok(())
    })?;
    if !first_process {
        return Ok(());
    }
    let outcomes = outcomes.take();
    let m = metrics.lock().unwrap_or_else(|e| e.into_inner()).clone();
    println!(
        "{}",
        serde_json::json!({
            "records": outcomes.len(),
            "accuracy": m.accuracy(),
            "model_version": m.model_version,
            "published_versions": published.load(Ordering::SeqCst),
        })
    );
    Ok(())
}
