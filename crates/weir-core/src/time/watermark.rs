//! Watermark strategies (Flink's `WatermarkStrategy`): how a record's timestamp is found and
//! how far event time has come at an instance that assigns timestamps.

use std::rc::Rc;
use std::time::Duration;

use crate::time::stamped::{EventTime, IntoTimestamp, NO_WATERMARK};

/// Tracks the watermark of one instance from the timestamps it sees (Flink's
/// `WatermarkGenerator`). The watermark says: no record with a timestamp at or below it is
/// expected any more.
pub trait WatermarkGenerator: 'static {
    /// A record with timestamp `ts` was read.
    fn on_event(&mut self, ts: EventTime);
    /// The current watermark ([`NO_WATERMARK`] before anything is known).
    fn current_watermark(&self) -> EventTime;
}

/// Records are at most `bound` out of order: the watermark is the highest timestamp seen
/// minus `bound` minus 1 ms (Flink's `BoundedOutOfOrdernessWatermarks`).
#[derive(Clone, Debug)]
pub struct BoundedOutOfOrderness {
    bound: EventTime,
    max_seen: EventTime,
}

impl BoundedOutOfOrderness {
    /// A generator for records at most `bound` out of order.
    pub fn new(bound: Duration) -> Self {
        BoundedOutOfOrderness {
            bound: bound.as_millis().min(i64::MAX as u128 / 2) as EventTime,
            max_seen: NO_WATERMARK,
        }
    }
}

impl WatermarkGenerator for BoundedOutOfOrderness {
    fn on_event(&mut self, ts: EventTime) {
        self.max_seen = self.max_seen.max(ts);
    }

    fn current_watermark(&self) -> EventTime {
        if self.max_seen == NO_WATERMARK {
            NO_WATERMARK
        } else {
            self.max_seen.saturating_sub(self.bound).saturating_sub(1)
        }
    }
}

/// Builds one generator per instance.
pub(crate) type GeneratorFactory = Rc<dyn Fn() -> Box<dyn WatermarkGenerator>>;
type Extractor<T> = Rc<dyn Fn(&T) -> Result<EventTime, String>>;

/// The kind of watermark, before a timestamp assigner is chosen (see
/// [`WatermarkStrategy::for_bounded_out_of_orderness`]).
#[derive(Clone)]
pub struct WatermarkStrategyBuilder {
    generator: GeneratorFactory,
}

impl WatermarkStrategyBuilder {
    /// Takes each record's timestamp from `extract` (Flink's `withTimestampAssigner`). A
    /// record whose extractor fails becomes a dead letter with the reason.
    pub fn with_timestamp_assigner<T, R: IntoTimestamp>(
        self,
        extract: impl Fn(&T) -> R + 'static,
    ) -> WatermarkStrategy<T> {
        WatermarkStrategy {
            extract: Rc::new(move |x| extract(x).into_timestamp()),
            field: None,
            generator: self.generator,
            idle_timeout: None,
            max_future: Some(WatermarkStrategy::<T>::DEFAULT_MAX_FUTURE),
            split: None,
            expected_splits: None,
        }
    }
}

/// How an event-time stream gets its timestamps and watermarks: an extractor, a watermark
/// generator per instance, an idle timeout and a bound on timestamps in the future.
///
/// ```
/// use std::time::Duration;
/// use weir_core::time::WatermarkStrategy;
/// struct Click { user: u32, ts: i64 }
/// let strategy = WatermarkStrategy::for_bounded_out_of_orderness(Duration::from_secs(5))
///     .with_timestamp_assigner(|c: &Click| c.ts)
///     .field("ts")
///     .with_idleness(Duration::from_secs(30));
/// # let _ = strategy;
/// ```
pub struct WatermarkStrategy<T> {
    pub(crate) extract: Extractor<T>,
    pub(crate) field: Option<String>,
    pub(crate) generator: GeneratorFactory,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) max_future: Option<Duration>,
    pub(crate) split: Option<SplitOf<T>>,
    pub(crate) expected_splits: Option<ExpectedSplits>,
}

/// The split (a Kafka partition, a file) a record was read from.
pub(crate) type SplitOf<T> = Rc<dyn Fn(&T) -> u64>;
/// The splits instance `i` of `n` will read.
pub(crate) type ExpectedSplits = Rc<dyn Fn(usize, usize) -> Vec<u64>>;

impl<T> Clone for WatermarkStrategy<T> {
    fn clone(&self) -> Self {
        WatermarkStrategy {
            extract: Rc::clone(&self.extract),
            field: self.field.clone(),
            generator: Rc::clone(&self.generator),
            idle_timeout: self.idle_timeout,
            max_future: self.max_future,
            split: self.split.clone(),
            expected_splits: self.expected_splits.clone(),
        }
    }
}

impl WatermarkStrategy<()> {
    /// Records arrive at most `bound` out of order (Flink's `forBoundedOutOfOrderness`).
    pub fn for_bounded_out_of_orderness(bound: Duration) -> WatermarkStrategyBuilder {
        WatermarkStrategyBuilder {
            generator: Rc::new(move || Box::new(BoundedOutOfOrderness::new(bound))),
        }
    }

    /// Timestamps never decrease (Flink's `forMonotonousTimestamps`): a record older than
    /// one already seen is late.
    pub fn for_monotonous_timestamps() -> WatermarkStrategyBuilder {
        Self::for_bounded_out_of_orderness(Duration::ZERO)
    }

    /// A generator of the user's own (Flink's `forGenerator`), one per instance.
    ///
    /// ```
    /// use weir_core::time::{EventTime, WatermarkGenerator, WatermarkStrategy};
    /// /// The watermark trails the newest timestamp by a minute, rounded down to a minute.
    /// struct Minutes { newest: EventTime }
    /// impl WatermarkGenerator for Minutes {
    ///     fn on_event(&mut self, ts: EventTime) { self.newest = self.newest.max(ts); }
    ///     fn current_watermark(&self) -> EventTime {
    ///         (self.newest - 60_000).div_euclid(60_000) * 60_000
    ///     }
    /// }
    /// let s = WatermarkStrategy::for_generator(|| Minutes { newest: 0 })
    ///     .with_timestamp_assigner(|t: &i64| *t);
    /// # let _ = s;
    /// ```
    pub fn for_generator<G: WatermarkGenerator>(
        make: impl Fn() -> G + 'static,
    ) -> WatermarkStrategyBuilder {
        WatermarkStrategyBuilder {
            generator: Rc::new(move || Box::new(make())),
        }
    }
}

impl<T> WatermarkStrategy<T> {
    /// Timestamps more than a day ahead of the wall clock are dead letters by default.
    pub const DEFAULT_MAX_FUTURE: Duration = Duration::from_secs(24 * 3600);

    /// Names the field the timestamp comes from, for dead letters of records without one.
    pub fn field(mut self, name: impl Into<String>) -> Self {
        self.field = Some(name.into());
        self
    }

    /// An instance that has read nothing for `timeout` (processing time) is idle: it stops
    /// holding the combined watermark back until it reads again (Flink's `withIdleness`).
    /// Its epochs must still advance for the others to be seen (interval epochs, or a
    /// source that has finished).
    pub fn with_idleness(mut self, timeout: Duration) -> Self {
        self.idle_timeout = Some(timeout);
        self
    }

    /// One generator per split inside each instance, `split(record)` naming the split (a
    /// Kafka partition; Flink's per-partition watermarks): the instance's watermark is the
    /// lowest of its splits' (leaving out splits idle for the idle timeout, if one is set),
    /// so a partition that lags holds the watermark back instead of its records turning late
    /// because another partition ran ahead. A split counts from its first record (see
    /// [`WatermarkStrategy::per_split_expecting`] for splits known in advance). The
    /// instance's watermark never goes back, so a split that first appears behind the others
    /// has its older records judged against the watermark already reached.
    ///
    /// ```
    /// use std::time::Duration;
    /// use weir_core::time::WatermarkStrategy;
    /// // (partition, timestamp) records.
    /// let s = WatermarkStrategy::for_bounded_out_of_orderness(Duration::from_secs(1))
    ///     .with_timestamp_assigner(|r: &(u32, i64)| r.1)
    ///     .per_split(|r: &(u32, i64)| u64::from(r.0));
    /// # let _ = s;
    /// ```
    pub fn per_split(mut self, split: impl Fn(&T) -> u64 + 'static) -> Self {
        self.split = Some(Rc::new(split));
        self
    }

    /// [`WatermarkStrategy::per_split`], with the splits each instance will read known in
    /// advance: `expected(instance, instances)` (the assigner's), so that a split holds the
    /// watermark back from the start, before its first record (or until it is idle, with
    /// [`WatermarkStrategy::with_idleness`]), as Flink's per-partition watermarks do for
    /// assigned partitions. For a source whose instances feed the assigner's one to one
    /// (the same parallelism); `weir_kafka::KafkaSource::watermarks` builds one.
    ///
    /// ```
    /// use std::time::Duration;
    /// use weir_core::time::WatermarkStrategy;
    /// let s = WatermarkStrategy::for_bounded_out_of_orderness(Duration::from_secs(1))
    ///     .with_timestamp_assigner(|r: &(u32, i64)| r.1)
    ///     .per_split_expecting(|r: &(u32, i64)| u64::from(r.0), |_, _| vec![0, 1]);
    /// # let _ = s;
    /// ```
    pub fn per_split_expecting(
        mut self,
        split: impl Fn(&T) -> u64 + 'static,
        expected: impl Fn(usize, usize) -> Vec<u64> + 'static,
    ) -> Self {
        self.split = Some(Rc::new(split));
        self.expected_splits = Some(Rc::new(expected));
        self
    }

    /// Records whose timestamp is more than `bound` ahead of the wall clock become dead
    /// letters instead of pushing the watermark to the end of time ([`None`]: no bound).
    /// Default: [`WatermarkStrategy::DEFAULT_MAX_FUTURE`].
    pub fn max_future(mut self, bound: Option<Duration>) -> Self {
        self.max_future = bound;
        self
    }
}
