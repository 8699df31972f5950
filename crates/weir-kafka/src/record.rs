//! What a Kafka source emits.

use serde::{Deserialize, Serialize};

/// One Kafka message, its value decoded (Flink's `ConsumerRecord` as the deserialiser sees
/// it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KafkaRecord<T> {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The offset in the partition.
    pub offset: i64,
    /// The record's timestamp (create or log-append time), in ms since the epoch.
    pub timestamp: Option<i64>,
    /// The key's bytes.
    pub key: Option<Vec<u8>>,
    /// The headers, in order (a header without a value has an empty one).
    pub headers: Vec<(String, Vec<u8>)>,
    /// The decoded value.
    pub value: T,
}

impl<T> KafkaRecord<T> {
    /// The first header called `name`, as UTF-8 if it is.
    ///
    /// ```
    /// let r = weir_kafka::KafkaRecord { topic: "t".into(), partition: 0, offset: 0,
    ///     timestamp: None, key: None, headers: vec![("v".into(), b"3".to_vec())], value: () };
    /// assert_eq!(r.header("v"), Some("3"));
    /// ```
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }

    /// `topic/partition@offset`, as dead letters name a message.
    pub fn location(&self) -> String {
        location(&self.topic, self.partition, self.offset)
    }
}

/// `topic/partition@offset`.
pub(crate) fn location(topic: &str, partition: i32, offset: i64) -> String {
    format!("{topic}/{partition}@{offset}")
}
