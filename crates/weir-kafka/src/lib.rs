//! Kafka for Weir: a source and a sink on librdkafka (through `rdkafka`), model updates
//! through a topic for the predict operator, and the topic helpers `weir kafka` uses.
//!
//! ```no_run
//! use weir_core::{execute, op, Config};
//! use weir_kafka::{KafkaConfig, KafkaSink, KafkaSource, ReadKafka, WriteKafka};
//!
//! #[derive(serde::Deserialize, serde::Serialize, Clone, Debug)]
//! struct Click { user: String, page: String }
//!
//! execute(Config::threads(2), |job| {
//!     let kafka = KafkaConfig::new("127.0.0.1:9092");
//!     let source = KafkaSource::builder(kafka.clone()).topics(["clicks"]).json::<Click>()?;
//!     job.read_kafka(op("clicks").parallelism(2), source)
//!         .map("value", |r| r.value)
//!         .filter("home", |c| c.page == "/")
//!         .write_kafka("home-clicks", KafkaSink::builder(kafka, "home-clicks").json());
//!     Ok(())
//! }).unwrap();
//! ```
//!
//! Why librdkafka: it is the reference client (consumer groups for committed offsets,
//! idempotent and transactional producers, mature batching and reconnects); the pure-Rust
//! `rskafka` has no consumer groups. It is built from source by cmake, so the crate is kept
//! out of `weir-core`: jobs that never touch Kafka do not compile it. See `docs/kafka.md`.

mod admin;
mod assignment;
mod config;
mod error;
mod model_topic;
mod offsets;
mod record;
mod sink;
mod source;
mod topic_io;
mod value_format;

pub use admin::{create_topic, partitions, topics};
pub use assignment::owner;
pub use config::KafkaConfig;
pub use error::KafkaError;
pub use model_topic::{
    latest_model, publish_model, ModelTopic, PublishedModel, ReadModels, NAME_HEADER, URI_HEADER,
    VERSION_HEADER,
};
pub use offsets::StartingOffsets;
pub use record::KafkaRecord;
pub use sink::{HeadersFn, KafkaSink, KafkaSinkBuilder, KeyFn, PartitionFn, WriteKafka};
pub use source::{KafkaSource, KafkaSourceBuilder, ReadKafka};
pub use topic_io::{dump_topic, DumpedMessage, OutgoingMessage, TopicWriter};
pub use value_format::{
    bytes_decoder, bytes_encoder, json_decoder, json_encoder, DecodeFn, EncodeFn,
};
