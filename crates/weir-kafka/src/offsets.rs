//! Where a source starts reading a partition, and where a bounded one stops.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError as RdError;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Message, Offset, TopicPartitionList};

use crate::admin::unreachable_or;
use crate::config::KafkaConfig;
use crate::error::KafkaError;

/// Where a source starts in the partitions it finds at its first start (Flink's
/// `OffsetsInitializer`). Partitions found later start at their earliest offset; a restored
/// job goes on from its checkpoint.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum StartingOffsets {
    /// The first offset still in the log.
    #[default]
    Earliest,
    /// After the last message (only messages produced from now on).
    Latest,
    /// The consumer group's committed offsets; partitions without one start as `or` says
    /// (`Earliest` or `Latest`). Needs a group id.
    Committed {
        /// Where partitions without a committed offset start.
        or: Box<StartingOffsets>,
    },
    /// The first message whose timestamp is at or after this one (ms since the epoch).
    Timestamp(i64),
}

/// A partition of a topic.
pub(crate) type TopicPartition = (String, i32);

/// Resolves `starting` to offsets for `partitions`.
pub(crate) fn resolve_starts(
    consumer: &BaseConsumer,
    config: &KafkaConfig,
    partitions: &[TopicPartition],
    starting: &StartingOffsets,
) -> Result<HashMap<TopicPartition, i64>, KafkaError> {
    let timeout = config.request_timeout();
    let mut out = HashMap::new();
    match starting {
        // Offset 0, not the broker's log start: tansu 0.6 answers "earliest" with the batch
        // it stored first, which is not the lowest offset when two producers wrote a
        // partition at once, and a source starting there skipped the records below it. A
        // broker whose log starts later answers offset 0 with "out of range", and the
        // source's consumer resets to the log start (`auto.offset.reset=earliest`).
        StartingOffsets::Earliest => {
            out.extend(partitions.iter().map(|tp| (tp.clone(), 0)));
        }
        // The end as read, not the high watermark (see `end_offsets`).
        StartingOffsets::Latest => out.extend(end_offsets(config, partitions)?),
        StartingOffsets::Timestamp(ts) => {
            let mut tpl = TopicPartitionList::new();
            for (t, p) in partitions {
                tpl.add_partition_offset(t, *p, Offset::Offset(*ts))
                    .map_err(|e| unreachable_or(config, "offsets for times", e))?;
            }
            let found = consumer
                .offsets_for_times(tpl, timeout)
                .map_err(|e| unreachable_or(config, "offsets for times", e))?;
            for e in found.elements() {
                let at = match e.offset() {
                    Offset::Offset(o) => o,
                    _ => watermarks(consumer, config, e.topic(), e.partition())?.1,
                };
                out.insert((e.topic().to_string(), e.partition()), at);
            }
        }
        StartingOffsets::Committed { or } => {
            let mut tpl = TopicPartitionList::new();
            for (t, p) in partitions {
                tpl.add_partition(t, *p);
            }
            let committed = consumer
                .committed_offsets(tpl, timeout)
                .map_err(|e| unreachable_or(config, "committed offsets", e))?;
            let mut missing = Vec::new();
            for e in committed.elements() {
                match e.offset() {
                    Offset::Offset(o) => {
                        out.insert((e.topic().to_string(), e.partition()), o);
                    }
                    _ => missing.push((e.topic().to_string(), e.partition())),
                }
            }
            let fallback = match **or {
                StartingOffsets::Latest => StartingOffsets::Latest,
                _ => StartingOffsets::Earliest,
            };
            if missing.is_empty() {
                return Ok(out);
            }
            out.extend(resolve_starts(consumer, config, &missing, &fallback)?);
        }
    }
    Ok(out)
}

/// The low and high watermarks of a partition.
pub(crate) fn watermarks(
    consumer: &BaseConsumer,
    config: &KafkaConfig,
    topic: &str,
    partition: i32,
) -> Result<(i64, i64), KafkaError> {
    consumer
        .fetch_watermarks(topic, partition, config.request_timeout())
        .map_err(|e| unreachable_or(config, &format!("offsets of {topic}/{partition}"), e))
}

/// The end offsets of `partitions` now: one past the last message of each.
///
/// The high watermark answers this on a Kafka broker. Some brokers (tansu 0.6) report the
/// base offset of the last record batch plus one instead, which cuts the last batch short;
/// so the end is read, not trusted: a probe consumer reads from just before the reported
/// high watermark until the end of each partition, and the end is one past the last
/// message it saw.
pub(crate) fn end_offsets(
    config: &KafkaConfig,
    partitions: &[TopicPartition],
) -> Result<HashMap<TopicPartition, i64>, KafkaError> {
    let probe: BaseConsumer = config.create(
        config
            .client_config()
            .set("enable.partition.eof", "true")
            .set("enable.auto.commit", "false")
            .set("group.id", "weir-end-offsets-probe"),
    )?;
    let mut ends = HashMap::new();
    let mut tpl = TopicPartitionList::new();
    let mut assigned: HashSet<TopicPartition> = HashSet::new();
    let mut high_marks: HashMap<TopicPartition, i64> = HashMap::new();
    for (t, p) in partitions {
        let (low, high) = watermarks(&probe, config, t, *p)?;
        ends.insert((t.clone(), *p), high.max(low));
        high_marks.insert((t.clone(), *p), high);
        if high > low {
            tpl.add_partition_offset(t, *p, Offset::Offset(high - 1))
                .map_err(|e| unreachable_or(config, "assign", e))?;
            assigned.insert((t.clone(), *p));
        }
    }
    let open = assigned.len();
    if open == 0 {
        return Ok(ends);
    }
    probe
        .assign(&tpl)
        .map_err(|e| unreachable_or(config, "assign", e))?;
    // The end is as of now: a message stamped after the probe started, or reading for
    // longer than the request timeout (a topic written faster than it is read), ends a
    // partition at what was seen.
    let started_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let deadline = Instant::now() + config.request_timeout();
    let mut closed: HashSet<TopicPartition> = HashSet::new();
    while closed.len() < open && Instant::now() < deadline {
        match probe.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let tp = (m.topic().to_string(), m.partition());
                if closed.contains(&tp) || !assigned.contains(&tp) {
                    continue;
                }
                // At or past the reported high watermark, a message stamped after the start
                // was produced after it (below it, every message counts).
                let past_high = high_marks.get(&tp).is_some_and(|h| m.offset() >= *h);
                if past_high && m.timestamp().to_millis().is_some_and(|ts| ts > started_ms) {
                    closed.insert(tp);
                    continue;
                }
                let end = ends.entry(tp).or_default();
                *end = (*end).max(m.offset() + 1);
            }
            Some(Err(RdError::PartitionEOF(p))) => {
                // librdkafka names only the partition: close that number's open ones.
                let matching: Vec<TopicPartition> =
                    assigned.iter().filter(|(_, q)| *q == p).cloned().collect();
                closed.extend(matching);
            }
            Some(Err(e))
                if e.rdkafka_error_code() == Some(RDKafkaErrorCode::UnknownTopicOrPartition) =>
            {
                return Err(unreachable_or(config, "read to the end", e))
            }
            _ => {}
        }
    }
    Ok(ends)
}
