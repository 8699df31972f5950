//! Window assigners (tumbling, sliding, session, count; event or processing time), windows,
//! and the panes a window fires.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::time::stamped::EventTime;

/// A window of event time `[start, end)`, or for count windows the record positions
/// `[start, end)` of its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TimeWindow {
    /// The first timestamp (or position) in the window.
    pub start: EventTime,
    /// One past the last timestamp (or position).
    pub end: EventTime,
}

impl TimeWindow {
    /// The last timestamp in the window: it fires when the watermark reaches it.
    pub fn max_timestamp(&self) -> EventTime {
        self.end.saturating_sub(1)
    }

    /// Whether two windows overlap or touch (Flink's `TimeWindow.intersects`): sessions
    /// `[0, 10)` and `[10, 20)` merge.
    fn intersects(&self, other: &TimeWindow) -> bool {
        self.start <= other.end && other.start <= self.end
    }

    fn cover(&self, other: &TimeWindow) -> TimeWindow {
        TimeWindow {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

/// Which clock windows and timers follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TimeDomain {
    /// The records' timestamps and the watermark.
    EventTime,
    /// The wall clock of the instance when it applies the record.
    ProcessingTime,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WindowKind {
    Tumbling { size: i64, offset: i64 },
    Sliding { size: i64, slide: i64, offset: i64 },
    Session { gap: i64 },
    Count { size: u64, slide: u64 },
}

/// How records are grouped into windows (Flink's `WindowAssigner`).
///
/// ```
/// use std::time::Duration;
/// use weir_core::time::{TimeWindow, Windows};
/// let w = Windows::sliding(Duration::from_secs(10), Duration::from_secs(5));
/// assert_eq!(w.assign(12_000), vec![
///     TimeWindow { start: 10_000, end: 20_000 },
///     TimeWindow { start: 5_000, end: 15_000 },
/// ]);
/// assert_eq!(Windows::tumbling(Duration::from_secs(10)).assign(-1),
///            vec![TimeWindow { start: -10_000, end: 0 }]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Windows {
    pub(crate) kind: WindowKind,
    pub(crate) domain: TimeDomain,
    /// A duration given as less than a millisecond (Flink refuses sizes, slides and gaps of
    /// 0): the operator refuses to build ([`Windows::check`]).
    zero: Option<&'static str>,
}

fn millis(d: Duration) -> i64 {
    d.as_millis().clamp(1, i64::MAX as u128 / 4) as i64
}

/// `what` if `d` is less than a millisecond (windows count in milliseconds).
fn zero_if_under_a_millisecond(what: &'static str, d: Duration) -> Option<&'static str> {
    (d.as_millis() == 0).then_some(what)
}

impl Windows {
    /// Fixed, non-overlapping windows of `size` (Flink's `TumblingEventTimeWindows`).
    pub fn tumbling(size: Duration) -> Self {
        Self::event(WindowKind::Tumbling {
            size: millis(size),
            offset: 0,
        })
        .refusing(zero_if_under_a_millisecond("size", size))
    }

    /// Windows of `size` starting every `slide` (Flink's `SlidingEventTimeWindows`); a
    /// record belongs to `size / slide` of them.
    pub fn sliding(size: Duration, slide: Duration) -> Self {
        Self::event(WindowKind::Sliding {
            size: millis(size),
            slide: millis(slide),
            offset: 0,
        })
        .refusing(
            zero_if_under_a_millisecond("size", size)
                .or(zero_if_under_a_millisecond("slide", slide)),
        )
    }

    /// A window per burst of activity of a key: records at most `gap` apart share one
    /// (Flink's `EventTimeSessionWindows.withGap`).
    pub fn session(gap: Duration) -> Self {
        Self::event(WindowKind::Session { gap: millis(gap) })
            .refusing(zero_if_under_a_millisecond("gap", gap))
    }

    /// Every `size` records of a key in event-time order (Flink's `countWindow(size)`). A
    /// key's records are counted in timestamp order once the watermark has passed them, so
    /// the windows do not depend on arrival order; a last window with fewer records does not
    /// fire.
    pub fn count(size: u64) -> Self {
        Self::count_sliding(size, size)
    }

    /// Windows of the last `size` records of a key, fired every `slide` records (Flink's
    /// `countWindow(size, slide)`).
    pub fn count_sliding(size: u64, slide: u64) -> Self {
        // Positions are i64: a count beyond a quarter of its range is as good as endless.
        let most = i64::MAX as u64 / 4;
        Self::event(WindowKind::Count {
            size: size.clamp(1, most),
            slide: slide.clamp(1, most),
        })
    }

    fn event(kind: WindowKind) -> Self {
        Windows {
            kind,
            domain: TimeDomain::EventTime,
            zero: None,
        }
    }

    fn refusing(mut self, zero: Option<&'static str>) -> Self {
        self.zero = zero;
        self
    }

    /// Whether the windows can be built: a size, slide or gap of less than a millisecond
    /// cannot (Flink refuses 0; here it would make a record fall into millions of sliding
    /// windows).
    ///
    /// ```
    /// use std::time::Duration;
    /// use weir_core::time::Windows;
    /// assert!(Windows::tumbling(Duration::from_secs(1)).check().is_ok());
    /// assert_eq!(
    ///     Windows::sliding(Duration::from_secs(60), Duration::ZERO).check().unwrap_err(),
    ///     "the windows' slide is 0 ms: it must be at least 1 ms"
    /// );
    /// ```
    pub fn check(&self) -> Result<(), String> {
        match self.zero {
            Some(what) => Err(format!(
                "the windows' {what} is 0 ms: it must be at least 1 ms"
            )),
            None => Ok(()),
        }
    }

    /// The same windows over the wall clock of the instance (Flink's
    /// `TumblingProcessingTimeWindows` and the like): a record belongs to the window of the
    /// moment it is applied, and windows fire when the clock passes their end.
    pub fn processing_time(mut self) -> Self {
        self.domain = TimeDomain::ProcessingTime;
        self
    }

    /// Shifts tumbling and sliding windows by `offset` (for example to align daily windows
    /// with a time zone).
    pub fn offset(mut self, offset: Duration) -> Self {
        // Not `millis`: an offset of zero is no offset.
        let o = offset.as_millis().min(i64::MAX as u128 / 4) as i64;
        match &mut self.kind {
            WindowKind::Tumbling { offset, .. } | WindowKind::Sliding { offset, .. } => *offset = o,
            _ => {}
        }
        self
    }

    pub(crate) fn is_count(&self) -> bool {
        matches!(self.kind, WindowKind::Count { .. })
    }

    pub(crate) fn is_session(&self) -> bool {
        matches!(self.kind, WindowKind::Session { .. })
    }

    /// The windows a record at `ts` belongs to (time windows; a session window is the
    /// record's own `[ts, ts + gap)`, merged later).
    pub fn assign(&self, ts: EventTime) -> Vec<TimeWindow> {
        let mut out = Vec::new();
        self.assign_into(ts, &mut out);
        out
    }

    /// [`Windows::assign`] into a buffer the caller reuses.
    pub(crate) fn assign_into(&self, ts: EventTime, out: &mut Vec<TimeWindow>) {
        match self.kind {
            WindowKind::Tumbling { size, offset } => {
                // Saturating: timestamps near the ends of i64 must not overflow.
                let start = ts.saturating_sub(ts.saturating_sub(offset).rem_euclid(size));
                out.push(TimeWindow {
                    start,
                    end: start.saturating_add(size),
                });
            }
            WindowKind::Sliding {
                size,
                slide,
                offset,
            } => {
                let last = ts.saturating_sub(ts.saturating_sub(offset).rem_euclid(slide));
                let mut start = last;
                while start > ts.saturating_sub(size) {
                    out.push(TimeWindow {
                        start,
                        end: start.saturating_add(size),
                    });
                    match start.checked_sub(slide) {
                        Some(earlier) => start = earlier,
                        None => break,
                    }
                }
            }
            WindowKind::Session { gap } => out.push(TimeWindow {
                start: ts,
                end: ts.saturating_add(gap),
            }),
            WindowKind::Count { .. } => {}
        }
    }
}

/// When a pane fired, relative to the watermark.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Timing {
    /// Before the watermark reached the window's end (an early-firing trigger).
    Early,
    /// When the watermark reached the window's end.
    OnTime,
    /// After that: a late record within the allowed lateness updated the window; this pane
    /// corrects the earlier ones.
    Late,
}

/// Which firing of its window a result is (Flink's `PaneInfo`): the last pane of a window
/// holds its final value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Pane {
    /// 0 for the first firing of the window, then 1, 2, ...
    pub index: u32,
    /// When it fired.
    pub timing: Timing,
}

/// A window's result: the key, the window, the value, and which firing it is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WindowResult<K, R> {
    /// The key.
    pub key: K,
    /// The window.
    pub window: TimeWindow,
    /// The aggregate (or what the window function returned).
    pub value: R,
    /// Which firing this is.
    pub pane: Pane,
}

/// Merges `window` into a key's session windows (sorted by start): returns the merged
/// window and the indexes of the existing windows it absorbs.
pub(crate) fn merge_session(
    existing: &[TimeWindow],
    window: TimeWindow,
) -> (TimeWindow, Vec<usize>) {
    let mut merged = window;
    let mut absorbed = Vec::new();
    // Absorbing one window can make the cover reach the next: repeat until stable.
    loop {
        let before = absorbed.len();
        for (i, w) in existing.iter().enumerate() {
            if !absorbed.contains(&i) && w.intersects(&merged) {
                merged = merged.cover(w);
                absorbed.push(i);
            }
        }
        if absorbed.len() == before {
            break;
        }
    }
    absorbed.sort_unstable();
    (merged, absorbed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_merge_transitively() {
        let w = |start, end| TimeWindow { start, end };
        let existing = [w(0, 10), w(12, 20), w(30, 40)];
        // [9, 13) bridges the first two, not the third.
        assert_eq!(merge_session(&existing, w(9, 13)), (w(0, 20), vec![0, 1]));
        assert_eq!(merge_session(&existing, w(21, 25)), (w(21, 25), vec![]));
        // Touching sessions merge, as Flink's `TimeWindow.intersects` has it.
        assert_eq!(merge_session(&existing, w(20, 25)), (w(12, 25), vec![1]));
        assert_eq!(merge_session(&existing, w(25, 30)), (w(25, 40), vec![2]));
    }

    #[test]
    fn sizes_slides_and_gaps_under_a_millisecond_are_refused() {
        let ms = Duration::from_millis(1);
        assert!(Windows::tumbling(ms).check().is_ok());
        assert!(Windows::sliding(Duration::from_secs(1), ms).check().is_ok());
        assert!(Windows::session(ms).check().is_ok());
        let refused = |w: Windows| w.check().unwrap_err();
        assert!(refused(Windows::tumbling(Duration::ZERO)).contains("size is 0 ms"));
        assert!(refused(Windows::sliding(
            Duration::from_secs(1),
            Duration::from_micros(500)
        ))
        .contains("slide is 0 ms"));
        assert!(refused(Windows::session(Duration::ZERO)).contains("gap is 0 ms"));
        assert!(refused(Windows::session(Duration::ZERO).processing_time()).contains("gap"));
    }

    #[test]
    fn extreme_timestamps_do_not_overflow() {
        let tumbling = Windows::tumbling(Duration::from_secs(10));
        assert_eq!(tumbling.assign(i64::MIN).len(), 1);
        assert_eq!(tumbling.assign(i64::MAX).len(), 1);
        let sliding = Windows::sliding(Duration::from_secs(10), Duration::from_secs(3));
        // At the very bottom of time no whole sliding window fits: none (the record is late).
        assert!(sliding.assign(i64::MIN).len() <= 4);
        assert!(!sliding.assign(i64::MAX).is_empty());
        let zero = Windows::tumbling(Duration::from_secs(10)).offset(Duration::ZERO);
        assert_eq!(
            zero.assign(0),
            vec![TimeWindow {
                start: 0,
                end: 10_000
            }]
        );
    }

    #[test]
    fn tumbling_offsets_shift_the_windows() {
        let w = Windows::tumbling(Duration::from_secs(10)).offset(Duration::from_secs(3));
        assert_eq!(
            w.assign(12_000),
            vec![TimeWindow {
                start: 3_000,
                end: 13_000
            }]
        );
        assert_eq!(
            w.assign(13_000),
            vec![TimeWindow {
                start: 13_000,
                end: 23_000
            }]
        );
    }
}
