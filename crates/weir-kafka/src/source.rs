//! The Kafka source: `job.read_kafka(op, KafkaSource::builder(config)…)`.
//!
//! Each source instance has its own consumer with a manual assignment (no group rebalancing:
//! the assignment is the job's, as in Flink's `KafkaSource`). Partition `p` of topic `t` goes
//! to instance [`owner`]`(t, p, n)`. The offsets of every partition are the source's
//! checkpoint splits; a restored job deals every split to every instance, which keeps the
//! ones it owns at the new parallelism and knows from the rest which partitions exist, so a
//! partition found later (and only then) is read from its start.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError as RdError;
use rdkafka::message::{BorrowedMessage, Headers};
use rdkafka::{Message, Offset, TopicPartitionList};
use regex::Regex;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use weir_core::sources::{Decoded, SplitDealing};
use weir_core::time::WatermarkStrategy;
use weir_core::{Data, DataStream, DeadLetter, Job, Op, PullSource, Pulled};

use crate::admin::{partitions_with, topics as list_topics, unreachable_or};
use crate::assignment::{owner, topic_hash};
use crate::config::KafkaConfig;
use crate::error::KafkaError;
use crate::offsets::{end_offsets, resolve_starts, StartingOffsets, TopicPartition};
use crate::record::{location, KafkaRecord};
use crate::value_format::{bytes_decoder, json_decoder, DecodeFn, MessageView};

/// Which topics a source reads.
#[derive(Clone, Debug)]
enum Topics {
    Names(Vec<String>),
    Pattern(Regex),
}

/// A Kafka source's settings (build with [`KafkaSource::builder`]).
#[derive(Clone)]
pub struct KafkaSource<T> {
    config: KafkaConfig,
    topics: Topics,
    group_id: Option<String>,
    starting: StartingOffsets,
    bounded: bool,
    discovery: Duration,
    stop_after: Option<u64>,
    decode: DecodeFn<T>,
}

/// Builds a [`KafkaSource`].
#[derive(Clone, Debug)]
pub struct KafkaSourceBuilder {
    config: KafkaConfig,
    topics: Vec<String>,
    pattern: Option<String>,
    group_id: Option<String>,
    starting: StartingOffsets,
    bounded: bool,
    discovery: Duration,
    stop_after: Option<u64>,
}

impl KafkaSource<()> {
    /// A source reading from the brokers of `config`.
    ///
    /// ```
    /// use weir_kafka::{KafkaConfig, KafkaSource, StartingOffsets};
    /// let source = KafkaSource::builder(KafkaConfig::new("127.0.0.1:9092"))
    ///     .topics(["clicks"])
    ///     .group_id("click-counter")
    ///     .starting_offsets(StartingOffsets::Earliest)
    ///     .bounded()
    ///     .json::<serde_json::Value>()
    ///     .unwrap();
    /// # let _ = source;
    /// ```
    pub fn builder(config: KafkaConfig) -> KafkaSourceBuilder {
        KafkaSourceBuilder {
            config,
            topics: Vec::new(),
            pattern: None,
            group_id: None,
            starting: StartingOffsets::Earliest,
            bounded: false,
            discovery: Duration::from_secs(10),
            stop_after: None,
        }
    }
}

impl KafkaSourceBuilder {
    /// Reads these topics.
    pub fn topics<S: Into<String>>(mut self, topics: impl IntoIterator<Item = S>) -> Self {
        self.topics.extend(topics.into_iter().map(Into::into));
        self
    }

    /// Reads every topic whose whole name matches this regular expression (topics created
    /// later are picked up by partition discovery).
    pub fn topic_pattern(mut self, pattern: impl Into<String>) -> Self {
        self.pattern = Some(pattern.into());
        self
    }

    /// The consumer group: offsets are committed to it when a checkpoint completes (for
    /// monitoring tools; the job itself resumes from its checkpoint), and
    /// [`StartingOffsets::Committed`] reads them.
    pub fn group_id(mut self, group: impl Into<String>) -> Self {
        self.group_id = Some(group.into());
        self
    }

    /// Where a fresh job starts ([`StartingOffsets::Earliest`] by default).
    pub fn starting_offsets(mut self, starting: StartingOffsets) -> Self {
        self.starting = starting;
        self
    }

    /// Stops at the end offsets the partitions have when the job starts (for tests and
    /// batch jobs); no partitions are discovered later.
    pub fn bounded(mut self) -> Self {
        self.bounded = true;
        self
    }

    /// Ends each source instance after it has emitted this many messages (records and dead
    /// letters): for demos and tests that read a known number of messages from a live topic,
    /// such as a model topic.
    pub fn stop_after(mut self, messages: u64) -> Self {
        self.stop_after = Some(messages);
        self
    }

    /// How often an unbounded source looks for new partitions and topics (10 s).
    pub fn partition_discovery(mut self, every: Duration) -> Self {
        self.discovery = every;
        self
    }

    /// Values as JSON into `T`; a value that does not decode becomes a dead letter naming
    /// `topic/partition@offset`.
    pub fn json<T: DeserializeOwned + 'static>(self) -> Result<KafkaSource<T>, KafkaError> {
        self.decoder(json_decoder())
    }

    /// Values as raw bytes.
    pub fn bytes(self) -> Result<KafkaSource<Vec<u8>>, KafkaError> {
        self.decoder(bytes_decoder())
    }

    /// Messages decoded by `decode` (given the value, key and headers); an `Err` becomes
    /// the dead letter's reason.
    pub fn decoder<T>(self, decode: DecodeFn<T>) -> Result<KafkaSource<T>, KafkaError> {
        let what = || "source".to_string();
        let topics = match (self.pattern, self.topics.is_empty()) {
            (Some(_), false) => {
                return Err(KafkaError::Config {
                    what: what(),
                    message: "give topics or a topic pattern, not both".into(),
                })
            }
            (None, true) => {
                return Err(KafkaError::Config {
                    what: what(),
                    message: "no topics: call .topics([..]) or .topic_pattern(..)".into(),
                })
            }
            (Some(p), true) => Topics::Pattern(Regex::new(&format!("^(?:{p})$")).map_err(|e| {
                KafkaError::Config {
                    what: what(),
                    message: format!("topic pattern `{p}`: {e}"),
                }
            })?),
            (None, false) => Topics::Names(self.topics),
        };
        if matches!(self.starting, StartingOffsets::Committed { .. }) && self.group_id.is_none() {
            return Err(KafkaError::Config {
                what: what(),
                message: "StartingOffsets::Committed needs a group id (.group_id(..))".into(),
            });
        }
        Ok(KafkaSource {
            config: self.config,
            topics,
            group_id: self.group_id,
            starting: self.starting,
            bounded: self.bounded,
            discovery: self.discovery,
            stop_after: self.stop_after,
            decode,
        })
    }
}

impl<T: 'static> KafkaSource<T> {
    /// Event time from the records' Kafka timestamps, with a watermark per partition
    /// (Flink's per-partition watermarks): each partition's records may be `bound` out of
    /// order, and a partition that lags holds the watermark back. Give the assigner the
    /// source's parallelism, so that each of its instances follows one source instance's
    /// partitions (as found now; partitions added later count from their first record). A
    /// record without a timestamp becomes a dead letter.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # use weir_core::{execute, op, Config};
    /// use weir_kafka::{KafkaConfig, KafkaSource, ReadKafka};
    /// # execute(Config::threads(2), |job| {
    /// let source = KafkaSource::builder(KafkaConfig::new("127.0.0.1:9092"))
    ///     .topics(["clicks"])
    ///     .json::<serde_json::Value>()?;
    /// let strategy = source.watermarks(Duration::from_secs(2))?;
    /// let events = job
    ///     .read_kafka(op("clicks").parallelism(2), source)
    ///     .assign_timestamps(op("time").parallelism(2), strategy);
    /// # Ok(()) }).unwrap();
    /// ```
    pub fn watermarks(
        &self,
        bound: Duration,
    ) -> Result<WatermarkStrategy<KafkaRecord<T>>, KafkaError> {
        let mut partitions = Vec::new();
        let client = crate::admin::metadata_client(&self.config)?;
        let names = match &self.topics {
            Topics::Names(names) => names.clone(),
            Topics::Pattern(re) => list_topics(&self.config)?
                .into_iter()
                .filter(|t| re.is_match(t))
                .collect(),
        };
        for topic in names {
            for p in partitions_with(&client, &self.config, &topic)? {
                partitions.push((topic.clone(), p));
            }
        }
        let expected = move |instance: usize, instances: usize| {
            partitions
                .iter()
                .filter(|(t, p)| owner(t, *p, instances) == instance)
                .map(|(t, p)| split_id(t, *p))
                .collect()
        };
        Ok(WatermarkStrategy::for_bounded_out_of_orderness(bound)
            .with_timestamp_assigner(|r: &KafkaRecord<T>| {
                r.timestamp.ok_or("the message has no timestamp")
            })
            .field("kafka timestamp")
            .per_split_expecting(
                |r: &KafkaRecord<T>| split_id(&r.topic, r.partition),
                expected,
            ))
    }
}

/// A partition as a watermark split.
fn split_id(topic: &str, partition: i32) -> u64 {
    (topic_hash(topic) << 20) ^ (partition as u32 as u64)
}

/// Reading Kafka from a job.
pub trait ReadKafka<'s> {
    /// The messages of `source`'s topics, decoded; undecodable ones go to
    /// [`Job::dead_letters`]. Offsets are part of the job's checkpoints (exactly-once with
    /// respect to state) and are committed to the group, if any, when a checkpoint completes.
    /// A broker that cannot be reached fails the job with an error naming it.
    fn read_kafka<T: Data>(
        &mut self,
        op: impl Into<Op>,
        source: KafkaSource<T>,
    ) -> DataStream<'s, KafkaRecord<T>>;
}

impl<'s> ReadKafka<'s> for Job<'s> {
    fn read_kafka<T: Data>(
        &mut self,
        op: impl Into<Op>,
        source: KafkaSource<T>,
    ) -> DataStream<'s, KafkaRecord<T>> {
        let op: Op = op.into();
        let name = op.name().to_string();
        self.pull_source_decoding(
            op,
            "source:kafka",
            SplitDealing::All,
            move |i, n, splits| KafkaReader::start(name, source, i, n, splits),
        )
    }
}

/// A partition's position in a checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct PartitionSplit {
    topic: String,
    partition: i32,
    /// The next offset to read.
    next: i64,
    /// Where a bounded source stops.
    end: Option<i64>,
}

/// What an instance knows of one of its partitions.
#[derive(Clone, Copy, Debug)]
struct PartitionState {
    next: i64,
    end: Option<i64>,
    /// Set when the consumer was positioned at `next` and no message at or before `next`
    /// has arrived since: how far the next rewind goes back, and since when the partition
    /// waits (see [`Positions::admit`]).
    unverified: Option<(i64, Instant)>,
}

impl PartitionState {
    fn done(&self) -> bool {
        self.end.is_some_and(|e| self.next >= e)
    }
}

/// One source instance.
struct KafkaReader<T> {
    operator: String,
    source: KafkaSource<T>,
    instance: usize,
    instances: usize,
    consumer: Option<BaseConsumer>,
    /// This instance's partitions.
    positions: Positions,
    /// Every partition any instance reads (from the checkpoint, and discovered).
    known: BTreeSet<TopicPartition>,
    /// When to look for new partitions next (`None`: never, a bounded source).
    next_discovery: Option<Instant>,
    /// Whether partitions found from now on are new (start at their earliest offset).
    started: bool,
    failed: Option<String>,
    /// The offsets of the last snapshot, committed to the group when it completes.
    snapshot_offsets: std::cell::RefCell<Vec<(String, i32, i64)>>,
    /// Messages emitted (for [`KafkaSourceBuilder::stop_after`]).
    emitted: u64,
}

impl<T: 'static> KafkaReader<T> {
    fn start(
        operator: String,
        source: KafkaSource<T>,
        instance: usize,
        instances: usize,
        splits: Option<Vec<Vec<u8>>>,
    ) -> Self {
        let mut reader = KafkaReader {
            operator,
            source,
            instance,
            instances,
            consumer: None,
            positions: Positions::default(),
            known: BTreeSet::new(),
            next_discovery: Some(Instant::now()),
            started: false,
            failed: None,
            snapshot_offsets: Default::default(),
            emitted: 0,
        };
        if let Err(e) = reader.connect(splits) {
            reader.failed = Some(format!("{}: {e}", reader.operator));
        }
        reader
    }

    fn connect(&mut self, splits: Option<Vec<Vec<u8>>>) -> Result<(), KafkaError> {
        let mut config = self
            .source
            .config
            .client_config()
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            // Ends of partitions tell a position inside a broker's last batch (see admit).
            .set("enable.partition.eof", "true")
            // A rewind below the log start must land on the log start, never on the end.
            .set("auto.offset.reset", "earliest")
            .to_owned();
        // Groups are for commits only: the assignment is manual.
        let group = self
            .source
            .group_id
            .clone()
            .unwrap_or_else(|| "weir".into());
        config.set("group.id", &group);
        let consumer: BaseConsumer = self.source.config.create(&config)?;
        self.consumer = Some(consumer);
        if let Some(splits) = splits {
            self.restore(&splits)?;
            self.started = true;
            self.assign()?;
            if self.source.bounded {
                // A bounded job reads the partitions of its first start, no others.
                self.next_discovery = None;
                return Ok(());
            }
        }
        self.discover()
    }

    /// Takes the restored splits: an unreadable one fails the job (its partition would
    /// otherwise count as new and be read again from its start).
    fn restore(&mut self, splits: &[Vec<u8>]) -> Result<(), KafkaError> {
        for bytes in splits {
            let s = serde_json::from_slice::<PartitionSplit>(bytes).map_err(|e| {
                KafkaError::Config {
                    what: format!("source {}", self.operator),
                    message: format!("a checkpoint split is not a Kafka partition position: {e}"),
                }
            })?;
            self.known.insert((s.topic.clone(), s.partition));
            if owner(&s.topic, s.partition, self.instances) == self.instance {
                let state = PartitionState {
                    next: s.next,
                    end: s.end,
                    unverified: None,
                };
                self.positions
                    .owned
                    .entry(s.topic)
                    .or_default()
                    .insert(s.partition, state);
            }
        }
        Ok(())
    }

    fn consumer(&self) -> &BaseConsumer {
        self.consumer.as_ref().expect("connected")
    }

    /// The topics to read now.
    fn topic_names(&self) -> Result<Vec<String>, KafkaError> {
        match &self.source.topics {
            Topics::Names(names) => Ok(names.clone()),
            Topics::Pattern(re) => Ok(list_topics(&self.source.config)?
                .into_iter()
                .filter(|t| re.is_match(t))
                .collect()),
        }
    }

    /// Looks for partitions no instance reads yet; takes those this instance owns.
    fn discover(&mut self) -> Result<(), KafkaError> {
        self.next_discovery = Instant::now().checked_add(self.source.discovery);
        let mut found = Vec::new();
        for topic in self.topic_names()? {
            let partitions = match partitions_with(self.consumer(), &self.source.config, &topic) {
                Ok(ps) => ps,
                // A pattern's topic may go away; a named one must exist at the first start.
                Err(KafkaError::NoSuchTopic { .. })
                    if self.started || matches!(self.source.topics, Topics::Pattern(_)) =>
                {
                    continue
                }
                Err(e) => return Err(e),
            };
            for p in partitions {
                let tp = (topic.clone(), p);
                if !self.known.contains(&tp) {
                    found.push(tp);
                }
            }
        }
        let first = !self.started;
        // Partitions other instances own only become known; this instance's are known
        // once they are assigned (a failure here is retried at the next discovery).
        let (mine, others): (Vec<TopicPartition>, Vec<TopicPartition>) = found
            .into_iter()
            .partition(|(t, p)| owner(t, *p, self.instances) == self.instance);
        self.known.extend(others);
        let found = mine;
        if found.is_empty() {
            self.started = true;
            return if first { self.assign() } else { Ok(()) };
        }
        let starting = if first {
            self.source.starting.clone()
        } else {
            StartingOffsets::Earliest
        };
        let starts = resolve_starts(self.consumer(), &self.source.config, &found, &starting)?;
        let ends = if self.source.bounded {
            Some(end_offsets(&self.source.config, &found)?)
        } else {
            None
        };
        let taken = found.clone();
        for tp in found {
            let next = starts.get(&tp).copied().unwrap_or(0);
            let end = ends.as_ref().map(|e| e.get(&tp).copied().unwrap_or(next));
            tracing::debug!(
                "{}: reads {}/{} from offset {next}",
                self.operator,
                tp.0,
                tp.1
            );
            self.positions.owned.entry(tp.0).or_default().insert(
                tp.1,
                PartitionState {
                    next,
                    end,
                    unverified: None,
                },
            );
        }
        if self.source.bounded {
            self.next_discovery = None;
        }
        self.assign()?;
        self.started = true;
        self.known.extend(taken);
        Ok(())
    }

    /// Assigns the consumer every owned partition that is not done, at its next offset.
    fn assign(&mut self) -> Result<(), KafkaError> {
        let mut tpl = TopicPartitionList::new();
        let mut remaining = 0u64;
        for (topic, parts) in self.positions.owned.iter_mut() {
            for (p, s) in parts.iter_mut() {
                if !s.done() {
                    s.unverified = (s.next > 0).then_some((FIRST_REWIND, Instant::now()));
                    tpl.add_partition_offset(topic, *p, Offset::Offset(s.next))
                        .map_err(|e| unreachable_or(&self.source.config, "assign", e))?;
                    remaining += 1;
                }
            }
        }
        self.positions.remaining = remaining;
        self.consumer()
            .assign(&tpl)
            .map_err(|e| unreachable_or(&self.source.config, "assign", e))
    }
}

/// The positions of an instance's partitions.
#[derive(Default)]
struct Positions {
    /// By topic, then partition.
    owned: BTreeMap<String, BTreeMap<i32, PartitionState>>,
    /// Partitions not done (all of them, unless the source is bounded).
    remaining: u64,
}

impl Positions {
    /// What to do with `m`: emit it (a message of an owned partition, not read yet, before
    /// the end), skip it, or rewind its partition.
    ///
    /// A broker must answer a fetch at an offset inside a record batch with that batch
    /// (the client drops the records before the offset); tansu 0.6 answers with the next
    /// batch, which would silently lose the rest of the batch after every restore. So after
    /// positioning a partition at `next`, the first message must be at or before `next`;
    /// if it is after, the instance rewinds (1024 offsets, then twice as far each time, at
    /// most to offset 0) and skips what it has read. A gap that survives a rewind to 0 is
    /// real (compaction, transaction markers). On a broker that answers correctly no
    /// rewind ever happens.
    fn admit(&mut self, m: &BorrowedMessage<'_>) -> Admit {
        let Some(state) = self
            .owned
            .get_mut(m.topic())
            .and_then(|t| t.get_mut(&m.partition()))
        else {
            return Admit::Skip;
        };
        let offset = m.offset();
        if state.unverified.is_some() {
            if offset > state.next {
                if let Some(to) = state.rewind() {
                    return Admit::Rewind(to);
                }
            }
            state.unverified = None;
        }
        if offset < state.next || state.done() {
            return Admit::Skip;
        }
        if let Some(end) = state.end.filter(|e| offset >= *e) {
            state.next = end;
            self.remaining = self.remaining.saturating_sub(1);
            return Admit::Skip;
        }
        state.next = offset + 1;
        if state.done() {
            self.remaining = self.remaining.saturating_sub(1);
        }
        Admit::Emit
    }
}

impl Positions {
    /// The end of partition `partition` was reached (of whichever topic: librdkafka does not
    /// say): partitions with that number positioned at an offset no message confirmed
    /// rewind (a broker that skips the rest of a batch skips everything when it is the
    /// last one).
    /// Marks done the partitions numbered `partition` whose consumer position (in
    /// `positions`) reached their end.
    fn finish_at_end(&mut self, partition: i32, positions: &TopicPartitionList) {
        for (topic, parts) in self.owned.iter_mut() {
            let Some(state) = parts.get_mut(&partition) else {
                continue;
            };
            let Some(end) = state.end.filter(|_| !state.done()) else {
                continue;
            };
            let position = positions
                .find_partition(topic, partition)
                .and_then(|e| e.offset().to_raw());
            if position.is_some_and(|at| at >= end) {
                state.next = end;
                state.unverified = None;
                self.remaining = self.remaining.saturating_sub(1);
            }
        }
    }

    fn rewinds_at_end(&mut self, partition: i32) -> Vec<(String, i32, i64)> {
        self.rewinds(|p, _| p == partition)
    }

    /// Partitions positioned at an offset that no message has confirmed for
    /// [`UNCONFIRMED_WAIT`] rewind: tansu answers a fetch inside its last batch with
    /// nothing at all, not even the end of the partition.
    fn rewinds_when_quiet(&mut self) -> Vec<(String, i32, i64)> {
        self.rewinds(|_, since| since.elapsed() >= UNCONFIRMED_WAIT)
    }

    fn rewinds(&mut self, due: impl Fn(i32, Instant) -> bool) -> Vec<(String, i32, i64)> {
        let mut out = Vec::new();
        for (topic, parts) in self.owned.iter_mut() {
            for (p, state) in parts.iter_mut() {
                let waiting = state.unverified.is_some_and(|(_, since)| due(*p, since));
                if waiting && !state.done() {
                    if let Some(to) = state.rewind() {
                        out.push((topic.clone(), *p, to));
                    }
                }
            }
        }
        out
    }
}

impl PartitionState {
    /// Where to rewind to, if rewinding can still go back further.
    fn rewind(&mut self) -> Option<i64> {
        let (back, _) = self.unverified.filter(|(b, _)| *b > 0 && self.next > 0)?;
        let to = (self.next - back).max(0);
        let further = if to == 0 { 0 } else { back.saturating_mul(2) };
        self.unverified = Some((further, Instant::now()));
        Some(to)
    }
}

/// What [`Positions::admit`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Admit {
    Emit,
    Skip,
    /// Position the message's partition at this offset and read again.
    Rewind(i64),
}

/// How far the first rewind goes back (see [`Positions::admit`]).
const FIRST_REWIND: i64 = 1024;
/// How long a partition positioned at an offset waits for a message before it rewinds.
const UNCONFIRMED_WAIT: Duration = Duration::from_millis(500);

/// A seek that failed (librdkafka refuses one while a partition is not fetching yet) is
/// retried: the partition stays unconfirmed and rewinds again when it stays quiet.
fn retry_seek(operator: &str, sought: Result<(), KafkaError>) {
    if let Err(e) = sought {
        tracing::warn!("{operator}: {e} (tried again when the partition stays quiet)");
    }
}

/// Positions `topic/partition` of `consumer` at `to`.
fn seek(
    consumer: &BaseConsumer,
    config: &KafkaConfig,
    topic: &str,
    partition: i32,
    to: i64,
) -> Result<(), KafkaError> {
    tracing::debug!("rewinds {topic}/{partition} to {to}");
    consumer
        .seek(
            topic,
            partition,
            Offset::Offset(to),
            config.request_timeout(),
        )
        .map_err(|e| unreachable_or(config, &format!("seek {topic}/{partition} to {to}"), e))
}

/// The record of a message, or its dead letter naming `topic/partition@offset`.
fn decode<T>(
    operator: &str,
    decode: &DecodeFn<T>,
    m: &BorrowedMessage<'_>,
) -> Decoded<KafkaRecord<T>> {
    let headers: Vec<(String, Vec<u8>)> = m
        .headers()
        .map(|hs| {
            hs.iter()
                .map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec()))
                .collect()
        })
        .unwrap_or_default();
    let view = MessageView {
        value: m.payload(),
        key: m.key(),
        headers: &headers,
    };
    match decode(&view) {
        Ok(value) => Ok(KafkaRecord {
            topic: m.topic().to_string(),
            partition: m.partition(),
            offset: m.offset(),
            timestamp: m.timestamp().to_millis(),
            key: m.key().map(<[u8]>::to_vec),
            headers,
            value,
        }),
        Err(reason) => Err(Box::new(DeadLetter::new(
            operator,
            location(m.topic(), m.partition(), m.offset()),
            reason,
            m.payload().unwrap_or_default(),
        ))),
    }
}

/// How long an instance waits before asking again when no message is ready.
const IDLE_POLL: Duration = Duration::from_millis(1);
/// How long it waits after a client error (the client reconnects by itself).
const ERROR_BACKOFF: Duration = Duration::from_millis(100);

impl<T: 'static> PullSource<Decoded<KafkaRecord<T>>> for KafkaReader<T> {
    fn pull(&mut self) -> Pulled<Decoded<KafkaRecord<T>>> {
        if let Some(message) = self.failed.take() {
            return Pulled::Failed(message);
        }
        if self.consumer.is_none() {
            return Pulled::Done;
        }
        if self.next_discovery.is_some_and(|at| Instant::now() >= at) {
            if let Err(e) = self.discover() {
                // Discovery is retried; reading goes on.
                tracing::warn!("{}: partition discovery: {e}", self.operator);
            }
        }
        if self.source.bounded && self.positions.remaining == 0
            || self.source.stop_after.is_some_and(|n| self.emitted >= n)
        {
            return self.end();
        }
        let Some(consumer) = self.consumer.as_ref() else {
            return Pulled::Done;
        };
        loop {
            let message = match consumer.poll(Duration::ZERO) {
                None => {
                    for (topic, p, to) in self.positions.rewinds_when_quiet() {
                        retry_seek(
                            &self.operator,
                            seek(consumer, &self.source.config, &topic, p, to),
                        );
                    }
                    return Pulled::Pending(IDLE_POLL);
                }
                Some(Ok(m)) => m,
                Some(Err(RdError::PartitionEOF(p))) => {
                    // The consumer's position moves past records it never delivers
                    // (transaction markers, aborted records): a bounded partition whose
                    // position reached its end is done.
                    if let Ok(positions) = consumer.position() {
                        self.positions.finish_at_end(p, &positions);
                    }
                    if self.source.bounded && self.positions.remaining == 0 {
                        return self.end();
                    }
                    for (topic, p, to) in self.positions.rewinds_at_end(p) {
                        retry_seek(
                            &self.operator,
                            seek(consumer, &self.source.config, &topic, p, to),
                        );
                    }
                    continue;
                }
                Some(Err(e)) => {
                    tracing::warn!("{}: {e} (the client retries)", self.operator);
                    return Pulled::Pending(ERROR_BACKOFF);
                }
            };
            match self.positions.admit(&message) {
                Admit::Emit => {
                    self.emitted += 1;
                    return Pulled::Record(decode(&self.operator, &self.source.decode, &message));
                }
                Admit::Skip => {}
                Admit::Rewind(to) => {
                    let (topic, partition) = (message.topic().to_string(), message.partition());
                    drop(message);
                    let sought = seek(consumer, &self.source.config, &topic, partition, to);
                    retry_seek(&self.operator, sought);
                }
            }
            if self.source.bounded && self.positions.remaining == 0 {
                return self.end();
            }
        }
    }

    fn remaining(&self) -> Option<Vec<Vec<u8>>> {
        let mut splits = Vec::new();
        let mut offsets = Vec::new();
        for (topic, parts) in &self.positions.owned {
            for (p, s) in parts {
                let split = PartitionSplit {
                    topic: topic.clone(),
                    partition: *p,
                    next: s.next,
                    end: s.end,
                };
                splits.push(serde_json::to_vec(&split).ok()?);
                offsets.push((topic.clone(), *p, s.next));
            }
        }
        // Partitions other instances read are theirs to save; this one knows of them only.
        *self.snapshot_offsets.borrow_mut() = offsets;
        Some(splits)
    }

    fn committed(&mut self, _checkpoint: u64) {
        let offsets = self.snapshot_offsets.borrow().clone();
        self.commit_to_group(&offsets, CommitMode::Async);
    }
}

impl<T> KafkaReader<T> {
    /// Commits `offsets` to the consumer group, if the source has one (for monitoring
    /// tools: the job resumes from its checkpoints).
    fn commit_to_group(&self, offsets: &[(String, i32, i64)], mode: CommitMode) {
        let (Some(consumer), Some(_)) = (&self.consumer, &self.source.group_id) else {
            return;
        };
        if offsets.is_empty() {
            return;
        }
        let mut tpl = TopicPartitionList::new();
        for (t, p, o) in offsets.iter() {
            if tpl.add_partition_offset(t, *p, Offset::Offset(*o)).is_err() {
                return;
            }
        }
        if let Err(e) = consumer.commit(&tpl, mode) {
            tracing::warn!("{}: committing offsets to the group: {e}", self.operator);
        }
    }

    /// The instance ends: its final offsets go to the group now (an ended source takes no
    /// part in later checkpoints' commits).
    fn end(&self) -> Pulled<Decoded<KafkaRecord<T>>> {
        let offsets: Vec<(String, i32, i64)> = self
            .positions
            .owned
            .iter()
            .flat_map(|(t, parts)| parts.iter().map(move |(p, s)| (t.clone(), *p, s.next)))
            .collect();
        self.commit_to_group(&offsets, CommitMode::Sync);
        Pulled::Done
    }
}
