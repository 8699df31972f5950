//! Records with an event timestamp, and the watermark messages that travel beside them.

use serde::{Deserialize, Serialize};

/// Event time: milliseconds since the Unix epoch (as in Flink), or any other millisecond
/// clock the records carry.
pub type EventTime = i64;

/// The lowest watermark: nothing is known yet.
pub const NO_WATERMARK: EventTime = EventTime::MIN;
/// The watermark of a finished input: every window may fire.
pub const END_OF_TIME: EventTime = EventTime::MAX;

/// A record and its event timestamp.
///
/// `watermark` is the watermark of the instance that assigned the timestamp as it was just
/// before this record was read. A record is *late* for a window when that watermark has
/// already passed the window's end (plus the allowed lateness); deciding lateness there,
/// rather than at the window, makes it independent of epoch size and of how far other
/// source instances have come (see `docs/event-time.md`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stamped<T> {
    /// The event timestamp (milliseconds).
    pub ts: EventTime,
    /// The record.
    pub data: T,
    /// The assigning instance's watermark before this record.
    pub watermark: EventTime,
}

impl<T> Stamped<T> {
    /// The record with another payload, keeping its time and watermark.
    pub fn with<U>(&self, data: U) -> Stamped<U> {
        Stamped {
            ts: self.ts,
            data,
            watermark: self.watermark,
        }
    }
}

/// One watermark generator instance's progress, sent at an epoch to every instance of the
/// event-time operators downstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct WatermarkMessage {
    /// Which generator instance: `(plan node << 32) | instance`.
    pub(crate) generator: u64,
    /// Its watermark after the records it sent up to this epoch.
    pub(crate) watermark: EventTime,
    /// Whether it has been idle for its idle timeout (it then does not hold others back).
    pub(crate) idle: bool,
}

/// The id of instance `instance` of generator node `node`.
pub(crate) fn generator_id(node: usize, instance: usize) -> u64 {
    ((node as u64) << 32) | instance as u64
}

/// What a timestamp extractor may return: a timestamp, or why the record has none.
///
/// ```
/// use weir_core::time::IntoTimestamp;
/// assert_eq!(5i64.into_timestamp(), Ok(5));
/// assert_eq!(Some(7u64).into_timestamp(), Ok(7));
/// assert!(None::<i64>.into_timestamp().is_err());
/// assert!(u64::MAX.into_timestamp().is_err());
/// ```
pub trait IntoTimestamp {
    /// The timestamp in milliseconds, or the reason there is none.
    fn into_timestamp(self) -> Result<EventTime, String>;
}

impl IntoTimestamp for i64 {
    fn into_timestamp(self) -> Result<EventTime, String> {
        Ok(self)
    }
}

impl IntoTimestamp for u64 {
    fn into_timestamp(self) -> Result<EventTime, String> {
        i64::try_from(self)
            .map_err(|_| format!("timestamp {self} does not fit in i64 milliseconds"))
    }
}

impl IntoTimestamp for f64 {
    fn into_timestamp(self) -> Result<EventTime, String> {
        if self.is_finite() && self.abs() < 9.0e18 {
            Ok(self as i64)
        } else {
            Err(format!(
                "timestamp {self} is not a finite number of milliseconds"
            ))
        }
    }
}

impl<T: IntoTimestamp> IntoTimestamp for Option<T> {
    fn into_timestamp(self) -> Result<EventTime, String> {
        match self {
            Some(t) => t.into_timestamp(),
            None => Err("the record has no timestamp".into()),
        }
    }
}

impl<T: IntoTimestamp, E: std::fmt::Display> IntoTimestamp for Result<T, E> {
    fn into_timestamp(self) -> Result<EventTime, String> {
        self.map_err(|e| e.to_string())?.into_timestamp()
    }
}
