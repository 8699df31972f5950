//! The Kafka sink: `stream.write_kafka(op, KafkaSink::builder(config)…)`.
//!
//! Each sink instance has its own producer. Records are sent as they arrive (the producer
//! batches them); when a checkpoint is taken the instance flushes and checks that every
//! record was acknowledged, so a checkpoint never covers a record that could be lost
//! (at-least-once: after a crash, the records since the last checkpoint are sent again).

use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::error::{KafkaError as RdError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use serde::Serialize;
use weir_core::{Data, DataStream, Op, SinkWriter, WeirError};

use crate::config::KafkaConfig;
use crate::error::KafkaError;
use crate::value_format::{bytes_encoder, json_encoder, EncodeFn};

/// A record's key, from the record.
pub type KeyFn<T> = Rc<dyn Fn(&T) -> Option<Vec<u8>>>;
/// A record's partition, from the record (`None`: the producer's partitioner, by key).
pub type PartitionFn<T> = Rc<dyn Fn(&T) -> Option<i32>>;
/// A record's headers.
pub type HeadersFn<T> = Rc<dyn Fn(&T) -> Vec<(String, Vec<u8>)>>;

/// A Kafka sink's settings (build with [`KafkaSink::builder`]).
#[derive(Clone)]
pub struct KafkaSink<T> {
    config: KafkaConfig,
    topic: String,
    encode: EncodeFn<T>,
    key: Option<KeyFn<T>>,
    partition: Option<PartitionFn<T>>,
    headers: Option<HeadersFn<T>>,
}

/// Builds a [`KafkaSink`].
#[derive(Clone, Debug)]
pub struct KafkaSinkBuilder {
    config: KafkaConfig,
    topic: String,
}

impl KafkaSink<()> {
    /// A sink writing to `topic` on the brokers of `config`.
    ///
    /// ```
    /// use weir_kafka::{KafkaConfig, KafkaSink};
    /// #[derive(serde::Serialize)]
    /// struct Score { user: String, score: f32 }
    /// let sink = KafkaSink::builder(KafkaConfig::new("127.0.0.1:9092"), "scores")
    ///     .json::<Score>()
    ///     .key(|s| Some(s.user.as_bytes().to_vec()))
    ///     .header("source", "docs");
    /// # let _ = sink;
    /// ```
    pub fn builder(config: KafkaConfig, topic: impl Into<String>) -> KafkaSinkBuilder {
        KafkaSinkBuilder {
            config,
            topic: topic.into(),
        }
    }
}

impl KafkaSinkBuilder {
    /// Records as JSON values.
    pub fn json<T: Serialize + 'static>(self) -> KafkaSink<T> {
        self.encoder(json_encoder())
    }

    /// Records that are bytes, as they are.
    pub fn bytes<T: AsRef<[u8]> + 'static>(self) -> KafkaSink<T> {
        self.encoder(bytes_encoder())
    }

    /// Records encoded by `encode`.
    pub fn encoder<T>(self, encode: EncodeFn<T>) -> KafkaSink<T> {
        KafkaSink {
            config: self.config,
            topic: self.topic,
            encode,
            key: None,
            partition: None,
            headers: None,
        }
    }
}

impl<T: 'static> KafkaSink<T> {
    /// Each record's key (records without one are spread by the producer).
    pub fn key(mut self, key: impl Fn(&T) -> Option<Vec<u8>> + 'static) -> Self {
        self.key = Some(Rc::new(key));
        self
    }

    /// Each record's partition (otherwise the producer's partitioner chooses, by key).
    pub fn partition(mut self, partition: impl Fn(&T) -> Option<i32> + 'static) -> Self {
        self.partition = Some(Rc::new(partition));
        self
    }

    /// Each record's headers.
    pub fn headers(mut self, headers: impl Fn(&T) -> Vec<(String, Vec<u8>)> + 'static) -> Self {
        self.headers = Some(Rc::new(headers));
        self
    }

    /// A header every record carries (added after those of [`KafkaSink::headers`]).
    pub fn header(self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        let (name, value) = (name.into(), value.into());
        let before = self.headers.clone();
        self.headers(move |r| {
            let mut hs = before.as_ref().map(|f| f(r)).unwrap_or_default();
            hs.push((name.clone(), value.clone()));
            hs
        })
    }
}

/// Writing Kafka from a stream.
pub trait WriteKafka {
    /// The record type.
    type Record;

    /// Sends every record to the sink's topic: at-least-once with checkpoints (each
    /// checkpoint waits until the broker acknowledged every record before it), best effort
    /// flushed at the end without them. A record the broker refuses fails the job.
    fn write_kafka(self, op: impl Into<Op>, sink: KafkaSink<Self::Record>);
}

impl<'s, T: Data> WriteKafka for DataStream<'s, T> {
    type Record = T;

    fn write_kafka(self, op: impl Into<Op>, sink: KafkaSink<T>) {
        let op: Op = op.into();
        let name = op.name().to_string();
        self.sink(op, "sink:kafka", move |_, _| KafkaWriter::new(name, sink));
    }
}

/// Delivery failures, counted by the producer's callback.
#[derive(Clone, Default)]
pub(crate) struct Deliveries {
    failed: Arc<AtomicU64>,
    first: Arc<Mutex<Option<String>>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            self.failed.fetch_add(1, Ordering::Relaxed);
            let mut first = self.first.lock().unwrap_or_else(|e| e.into_inner());
            first.get_or_insert_with(|| e.to_string());
        }
    }
}

impl Deliveries {
    /// How many records failed, and the first failure.
    pub(crate) fn failures(&self) -> Option<(u64, String)> {
        let failed = self.failed.load(Ordering::Relaxed);
        (failed > 0).then(|| {
            let first = self.first.lock().unwrap_or_else(|e| e.into_inner());
            (failed, first.clone().unwrap_or_default())
        })
    }
}

/// How long a flush may take before the sink reports the broker unreachable.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(120);

/// One sink instance.
struct KafkaWriter<T> {
    operator: String,
    sink: KafkaSink<T>,
    producer: Result<BaseProducer<Deliveries>, String>,
    deliveries: Deliveries,
    value: Vec<u8>,
}

impl<T: 'static> KafkaWriter<T> {
    fn new(operator: String, sink: KafkaSink<T>) -> Self {
        let deliveries = Deliveries::default();
        // Defaults the user's properties override.
        let producer = sink
            .config
            .client_config_with(&[("linger.ms", "5"), ("enable.idempotence", "false")])
            .create_with_context(deliveries.clone())
            .map_err(|source| {
                KafkaError::Client {
                    bootstrap: sink.config.bootstrap().to_string(),
                    source: Box::new(source),
                }
                .to_string()
            });
        KafkaWriter {
            operator,
            sink,
            producer,
            deliveries,
            value: Vec::new(),
        }
    }

    fn fail(&self, message: impl std::fmt::Display) -> WeirError {
        WeirError::Operator {
            operator: self.operator.clone(),
            message: message.to_string(),
        }
    }

    fn send(&mut self, record: &T) -> Result<(), WeirError> {
        self.value.clear();
        (self.sink.encode)(record, &mut self.value).map_err(|e| self.fail(e))?;
        let key = self.sink.key.as_ref().and_then(|k| k(record));
        let partition = self.sink.partition.as_ref().and_then(|p| p(record));
        let headers = self.sink.headers.as_ref().map(|h| {
            h(record).iter().fold(OwnedHeaders::new(), |hs, (k, v)| {
                hs.insert(Header {
                    key: k,
                    value: Some(v),
                })
            })
        });
        let producer = self.producer.as_ref().map_err(|e| self.fail(e))?;
        let mut out = BaseRecord::to(&self.sink.topic).payload(&self.value[..]);
        if let Some(k) = &key {
            out = out.key(&k[..]);
        }
        if let Some(p) = partition {
            out = out.partition(p);
        }
        if let Some(hs) = headers {
            out = out.headers(hs);
        }
        loop {
            match producer.send(out) {
                Ok(()) => return Ok(()),
                Err((RdError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    // Back-pressure: serve delivery reports until there is room.
                    producer.poll(Duration::from_millis(10));
                    out = back;
                }
                Err((e, _)) => return Err(self.fail(format!("send to {}: {e}", self.sink.topic))),
            }
        }
    }

    /// Waits until the broker acknowledged every record sent; fails on any lost one.
    fn flush(&mut self) -> Result<(), WeirError> {
        let producer = self.producer.as_ref().map_err(|e| self.fail(e))?;
        producer.flush(FLUSH_TIMEOUT).map_err(|e| {
            self.fail(format!(
                "flushing to {} within {} s: {e}",
                self.sink.config.bootstrap(),
                FLUSH_TIMEOUT.as_secs()
            ))
        })?;
        if let Some((failed, first)) = self.deliveries.failures() {
            return Err(self.fail(KafkaError::Delivery {
                operator: self.operator.clone(),
                bootstrap: self.sink.config.bootstrap().to_string(),
                failed,
                first,
            }));
        }
        Ok(())
    }
}

impl<T: 'static> SinkWriter<T> for KafkaWriter<T> {
    fn write(&mut self, batch: &mut Vec<T>) -> Result<(), WeirError> {
        for record in batch.iter() {
            self.send(record)?;
        }
        if let Ok(p) = &self.producer {
            // Serve delivery reports without waiting.
            p.poll(Duration::ZERO);
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), WeirError> {
        self.flush()
    }

    fn snapshot(&mut self, _checkpoint: u64) -> Result<(), WeirError> {
        self.flush()
    }
}
