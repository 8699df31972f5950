//! Kafka in, exactly-once files out: reads JSON events `{"id", "key"}` from a topic, keeps a
//! running count per key in checkpointed state, and writes `{"id", "key", "count"}` lines as
//! part files that commit with the checkpoints. Killed and restarted with the same
//! `--checkpoint-dir`, it resumes from the offsets of its last checkpoint, so every id is in
//! the output once and every count is right (tests/kafka_recovery.rs does this with SIGKILL).
//!
//! ```text
//! cargo run --example kafka_exactly_once -- --bootstrap 127.0.0.1:9092 --topic events \
//!     --output out/ -w 2 --checkpoint-dir ckpt/ --checkpoint-interval 500
//! ```

use std::path::PathBuf;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use weir::prelude::*;
use weir_kafka::{KafkaConfig, KafkaSource, ReadKafka};

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Event {
    id: u64,
    key: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Counted {
    id: u64,
    key: u64,
    count: u64,
}

struct Args {
    bootstrap: String,
    topic: String,
    output: PathBuf,
    rate: Option<f64>,
}

impl Args {
    fn parse(args: &[String]) -> anyhow::Result<Self> {
        let (mut bootstrap, mut topic, mut output, mut rate) = (None, None, None, None);
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let mut value = || it.next().with_context(|| format!("{arg} needs a value"));
            match arg.as_str() {
                "--bootstrap" => bootstrap = Some(value()?.clone()),
                "--topic" => topic = Some(value()?.clone()),
                "--output" => output = Some(PathBuf::from(value()?)),
                "--rate" => rate = Some(value()?.parse().context("--rate: records per second")?),
                other => anyhow::bail!(
                    "unknown argument `{other}` (expected --bootstrap HOST:PORT --topic T \
                     --output DIR [--rate N] and job flags)"
                ),
            }
        }
        Ok(Args {
            bootstrap: bootstrap.context("--bootstrap HOST:PORT is required")?,
            topic: topic.context("--topic T is required")?,
            output: output.context("--output DIR is required")?,
            rate,
        })
    }
}

fn main() -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let args = Args::parse(&config.program_args)?;
    let workers = config.total_workers();
    execute(config, move |job| {
        let source = KafkaSource::builder(KafkaConfig::new(&args.bootstrap))
            .topics([args.topic.clone()])
            .group_id("kafka-exactly-once")
            .bounded()
            .json::<Event>()?;
        let read = op("events").parallelism(workers);
        let read = match args.rate {
            Some(rate) => read.rate(rate),
            None => read,
        };
        job.read_kafka(read, source)
            .map("value", |r| r.value)
            .key_by(|e: &Event| e.key)
            .map_with_state("count", |count: &mut u64, e: Event| {
                *count += 1;
                Counted {
                    id: e.id,
                    key: e.key,
                    count: *count,
                }
            })
            .write_jsonl("write", &args.output);
        Ok(())
    })?;
    Ok(())
}
