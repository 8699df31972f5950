//! Producing lines into a topic and dumping a topic, outside a job (`weir kafka produce` and
//! `weir kafka dump`, demos and tests).

use std::io::Write;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError as RdError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};
use serde::Serialize;

use crate::admin::{partitions_with, unreachable_or};
use crate::config::KafkaConfig;
use crate::error::KafkaError;
use crate::offsets::end_offsets;
use crate::sink::Deliveries;

/// One message to produce.
#[derive(Clone, Debug, Default)]
pub struct OutgoingMessage<'a> {
    /// The value.
    pub value: &'a [u8],
    /// The key.
    pub key: Option<&'a [u8]>,
    /// The partition (`None`: the producer's partitioner, by key).
    pub partition: Option<i32>,
    /// Headers.
    pub headers: &'a [(&'a str, &'a [u8])],
    /// The record's timestamp, ms since the epoch (`None`: the time it is sent).
    pub timestamp: Option<i64>,
}

/// A producer that checks every delivery (for tools: `weir kafka produce`, publishing
/// models).
pub struct TopicWriter {
    config: KafkaConfig,
    topic: String,
    producer: BaseProducer<Deliveries>,
    deliveries: Deliveries,
    sent: u64,
}

impl TopicWriter {
    /// A writer to `topic`.
    pub fn new(config: &KafkaConfig, topic: &str) -> Result<Self, KafkaError> {
        let deliveries = Deliveries::default();
        let producer = config
            .client_config()
            .set("linger.ms", "5")
            .set("message.max.bytes", "1000000000")
            .create_with_context(deliveries.clone())
            .map_err(|source| KafkaError::Client {
                bootstrap: config.bootstrap().to_string(),
                source: Box::new(source),
            })?;
        Ok(TopicWriter {
            config: config.clone(),
            topic: topic.to_string(),
            producer,
            deliveries,
            sent: 0,
        })
    }

    /// Queues a message (waiting while the producer's queue is full).
    pub fn send(&mut self, m: &OutgoingMessage<'_>) -> Result<(), KafkaError> {
        let headers = m.headers.iter().fold(OwnedHeaders::new(), |hs, (k, v)| {
            hs.insert(Header {
                key: k,
                value: Some(*v),
            })
        });
        let mut record = BaseRecord::<[u8], [u8]>::to(&self.topic)
            .payload(m.value)
            .headers(headers);
        if let Some(k) = m.key {
            record = record.key(k);
        }
        if let Some(p) = m.partition {
            record = record.partition(p);
        }
        if let Some(ts) = m.timestamp {
            record = record.timestamp(ts);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => {
                    self.sent += 1;
                    return Ok(());
                }
                Err((RdError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    self.producer.poll(Duration::from_millis(10));
                    record = back;
                }
                Err((e, _)) => {
                    return Err(unreachable_or(
                        &self.config,
                        &format!("send to {}", self.topic),
                        e,
                    ))
                }
            }
        }
    }

    /// Waits until the broker has every message; returns how many were sent.
    pub fn finish(self) -> Result<u64, KafkaError> {
        let what = format!("flush to {}", self.topic);
        self.producer
            .flush(self.config.request_timeout().max(Duration::from_secs(60)))
            .map_err(|e| unreachable_or(&self.config, &what, e))?;
        if let Some((failed, first)) = self.deliveries.failures() {
            return Err(KafkaError::Delivery {
                operator: "producer".into(),
                bootstrap: self.config.bootstrap().to_string(),
                failed,
                first,
            });
        }
        Ok(self.sent)
    }
}

/// A message as `weir kafka dump` prints it (one JSON line each).
#[derive(Clone, Debug, Serialize)]
pub struct DumpedMessage {
    /// The partition.
    pub partition: i32,
    /// The offset.
    pub offset: i64,
    /// The timestamp, ms since the epoch.
    pub timestamp: Option<i64>,
    /// The key, as lossy UTF-8.
    pub key: Option<String>,
    /// The value: JSON when it parses as JSON, else a string (lossy UTF-8).
    pub value: serde_json::Value,
    /// The headers (lossy UTF-8).
    pub headers: Vec<(String, String)>,
}

/// Writes every message of `topic` that is there now (up to `limit`), as JSON lines, or
/// only the values when `values_only`; returns how many.
pub fn dump_topic(
    config: &KafkaConfig,
    topic: &str,
    limit: Option<u64>,
    values_only: bool,
    out: &mut dyn Write,
) -> Result<u64, KafkaError> {
    let consumer: BaseConsumer = config.create(
        config
            .client_config()
            .set("group.id", "weir-dump")
            .set("enable.auto.commit", "false")
            // From offset 0 (see `resolve_starts`): a log that starts later resets to its start.
            .set("auto.offset.reset", "earliest"),
    )?;
    let partitions: Vec<(String, i32)> = partitions_with(&consumer, config, topic)?
        .into_iter()
        .map(|p| (topic.to_string(), p))
        .collect();
    let ends = end_offsets(config, &partitions)?;
    let mut tpl = TopicPartitionList::new();
    let mut open = 0;
    for (t, p) in &partitions {
        if ends.get(&(t.clone(), *p)).copied().unwrap_or(0) > 0 {
            tpl.add_partition_offset(t, *p, Offset::Offset(0))
                .map_err(|e| unreachable_or(config, "assign", e))?;
            open += 1;
        }
    }
    consumer
        .assign(&tpl)
        .map_err(|e| unreachable_or(config, "assign", e))?;
    let mut written = 0u64;
    let mut done = std::collections::HashSet::new();
    let mut quiet_since = Instant::now();
    while done.len() < open && limit.is_none_or(|l| written < l) {
        let Some(polled) = consumer.poll(Duration::from_millis(100)) else {
            if quiet_since.elapsed() > config.request_timeout() {
                break;
            }
            continue;
        };
        quiet_since = Instant::now();
        let m = polled.map_err(|e| unreachable_or(config, &format!("read {topic}"), e))?;
        let end = ends
            .get(&(topic.to_string(), m.partition()))
            .copied()
            .unwrap_or(0);
        if m.offset() >= end {
            done.insert(m.partition());
            continue;
        }
        if m.offset() + 1 >= end {
            done.insert(m.partition());
        }
        write_message(&m, values_only, out).map_err(|e| KafkaError::Config {
            what: format!("dump {topic}"),
            message: e.to_string(),
        })?;
        written += 1;
    }
    Ok(written)
}

fn write_message(
    m: &rdkafka::message::BorrowedMessage<'_>,
    values_only: bool,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let payload = m.payload().unwrap_or_default();
    if values_only {
        out.write_all(payload)?;
        return out.write_all(b"\n");
    }
    let value = serde_json::from_slice(payload)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(payload).into()));
    let dumped = DumpedMessage {
        partition: m.partition(),
        offset: m.offset(),
        timestamp: m.timestamp().to_millis(),
        key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
        value,
        headers: m
            .headers()
            .map(|hs| {
                hs.iter()
                    .map(|h| {
                        let v = String::from_utf8_lossy(h.value.unwrap_or_default());
                        (h.key.to_string(), v.into_owned())
                    })
                    .collect()
            })
            .unwrap_or_default(),
    };
    serde_json::to_writer(&mut *out, &dumped)?;
    out.write_all(b"\n")
}
