//! The combined watermark at an event-time operator instance: the minimum over the
//! generator instances upstream, leaving out idle ones, never going back.

use std::collections::BTreeMap;
use std::rc::Rc;

use rustc_hash::FxHashMap;
use timely::dataflow::operators::core::Exchange as _;
use timely::dataflow::operators::vec::Map as _;
use timely::dataflow::operators::{Capability, InputCapability};
use timely::dataflow::Stream;
use timely::progress::frontier::MutableAntichain;

use crate::job::Epoch;
use crate::time::stamped::{EventTime, WatermarkMessage, END_OF_TIME, NO_WATERMARK};

/// The watermark every generator has announced, and the combined watermark.
#[derive(Debug)]
pub(crate) struct WatermarkTracker {
    generators: FxHashMap<u64, (EventTime, bool)>,
    current: EventTime,
}

impl WatermarkTracker {
    pub(crate) fn new(generators: &[u64]) -> Self {
        WatermarkTracker {
            generators: generators
                .iter()
                .map(|&g| (g, (NO_WATERMARK, false)))
                .collect(),
            current: NO_WATERMARK,
        }
    }

    /// Applies the watermark messages of one epoch; returns the combined watermark.
    pub(crate) fn apply(&mut self, marks: &[WatermarkMessage]) -> EventTime {
        if marks.is_empty() {
            return self.current;
        }
        for m in marks {
            if let Some(g) = self.generators.get_mut(&m.generator) {
                g.0 = g.0.max(m.watermark);
                g.1 = m.idle;
            }
        }
        let active = self.generators.values().filter(|(_, idle)| !idle);
        if let Some(mut min) = active.map(|(w, _)| *w).min() {
            // Finished generators (at the end of time) must not carry the watermark past
            // idle ones that have not finished: it would never come back.
            let idle_unfinished = self
                .generators
                .values()
                .filter(|(w, idle)| *idle && *w != END_OF_TIME);
            if let Some(cap) = idle_unfinished.map(|(w, _)| *w).max() {
                if min == END_OF_TIME {
                    min = cap;
                }
            }
            self.current = self.current.max(min);
        }
        self.current
    }

    /// The combined watermark.
    pub(crate) fn current(&self) -> EventTime {
        self.current
    }
}

/// The watermark messages sent to every instance in `placement`.
pub(crate) fn broadcast_marks<'s>(
    marks: &Stream<'s, Epoch, Vec<WatermarkMessage>>,
    placement: &Rc<[usize]>,
) -> Stream<'s, Epoch, Vec<WatermarkMessage>> {
    let targets = Rc::clone(placement);
    marks
        .clone()
        .flat_map(move |m| {
            let targets = Rc::clone(&targets);
            (0..targets.len()).map(move |i| (targets[i] as u64, m))
        })
        .exchange(|(w, _)| *w)
        .map(|(_, m)| m)
}

/// An epoch's input at an event-time operator: its records (the batches as they came, not
/// copied) and its watermark messages.
pub(crate) struct EpochInput<R> {
    pub(crate) records: Vec<Vec<R>>,
    pub(crate) marks: Vec<WatermarkMessage>,
}

impl<R> Default for EpochInput<R> {
    fn default() -> Self {
        EpochInput {
            records: Vec::new(),
            marks: Vec::new(),
        }
    }
}

/// Epochs of records and watermarks held until both inputs have passed them.
pub(crate) struct EventEpochs<R> {
    pending: BTreeMap<Epoch, (Capability<Epoch>, EpochInput<R>)>,
}

impl<R> EventEpochs<R> {
    pub(crate) fn new() -> Self {
        EventEpochs {
            pending: BTreeMap::new(),
        }
    }

    /// The input of the message's epoch, created with a capability for output `port`.
    pub(crate) fn for_message(
        &mut self,
        cap: &InputCapability<Epoch>,
        port: usize,
    ) -> Option<&mut EpochInput<R>> {
        let time = *cap.least()?;
        Some(
            &mut self
                .pending
                .entry(time)
                .or_insert_with(|| (cap.delayed(&time, port), EpochInput::default()))
                .1,
        )
    }

    /// The earliest epoch both frontiers have passed.
    pub(crate) fn next_complete(
        &mut self,
        a: &MutableAntichain<Epoch>,
        b: &MutableAntichain<Epoch>,
    ) -> Option<(Capability<Epoch>, EpochInput<R>)> {
        let entry = self.pending.first_entry()?;
        if a.less_equal(entry.key()) || b.less_equal(entry.key()) {
            return None;
        }
        Some(entry.remove())
    }
}

/// The lowest epoch either frontier may still deliver ([`Epoch::MAX`]: both done).
pub(crate) fn lowest(a: &MutableAntichain<Epoch>, b: &MutableAntichain<Epoch>) -> Epoch {
    let a = a.frontier().first().copied().unwrap_or(Epoch::MAX);
    let b = b.frontier().first().copied().unwrap_or(Epoch::MAX);
    a.min(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(generator: u64, watermark: EventTime, idle: bool) -> WatermarkMessage {
        WatermarkMessage {
            generator,
            watermark,
            idle,
        }
    }

    #[test]
    fn the_combined_watermark_is_the_minimum_of_the_active_generators() {
        let mut t = WatermarkTracker::new(&[1, 2]);
        assert_eq!(t.apply(&[mark(1, 100, false)]), NO_WATERMARK);
        assert_eq!(t.apply(&[mark(2, 50, false)]), 50);
        // Generator 2 idles: it no longer holds 1 back.
        assert_eq!(t.apply(&[mark(2, 50, true)]), 100);
        // Back from idle behind the combined watermark: the watermark never goes back.
        assert_eq!(t.apply(&[mark(2, 60, false)]), 100);
        assert_eq!(t.apply(&[mark(2, 200, false), mark(1, 300, false)]), 200);
        // Unknown generators are ignored; all idle keeps the watermark.
        assert_eq!(t.apply(&[mark(9, 1000, false)]), 200);
        assert_eq!(t.apply(&[mark(1, 300, true), mark(2, 200, true)]), 200);
    }

    #[test]
    fn a_finished_generator_does_not_carry_the_watermark_past_an_idle_one() {
        let mut t = WatermarkTracker::new(&[1, 2]);
        assert_eq!(t.apply(&[mark(1, 100, false), mark(2, 50, false)]), 50);
        assert_eq!(t.apply(&[mark(2, 60, true)]), 100);
        // 1 ends; 2 is idle at 60: the watermark stays where it was, not at the end of time.
        assert_eq!(t.apply(&[mark(1, END_OF_TIME, false)]), 100);
        // 2 ends too: now everything may fire.
        assert_eq!(t.apply(&[mark(2, END_OF_TIME, false)]), END_OF_TIME);
    }
}
