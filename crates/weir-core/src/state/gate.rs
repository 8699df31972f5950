//! The gate the source instances of one worker pass before they emit: open, or holding
//! them at an epoch boundary while a checkpoint is agreed and taken, or closed until every
//! worker of a (restored) job is ready.
//!
//! A checkpoint's epoch `L` is the highest epoch any source instance is in (or, finished,
//! ended in) when the checkpoint begins. Every source first *freezes* (it may go on filling its current epoch
//! but not start the next), then, once `L` is known, goes on up to the end of `L` and waits
//! at `L + 1` until the snapshot is taken. So no record after `L` exists anywhere while
//! operators snapshot, and epochs keep the records they would have had:
//!
//! - a record-count epoch source *fills* the epochs up to `L` as it would anyway, so each
//!   epoch holds the same records with and without checkpoints (a source with nothing to
//!   read jumps to `L + 1` instead of waiting for records that may not come);
//! - an interval source's epochs are time slots: one behind closes its epoch and goes
//!   straight to `L + 1`, the slot the others are in.
//!
//! The gate also knows the *leading epoch*: the highest epoch a live source instance of the
//! job is in, or the one after the highest a finished instance ended in, from this worker's
//! instances and what the other workers announce through the control dataflow. A record-count instance with nothing to read and nothing in its epoch
//! jumps to it: its empty epoch would otherwise hold every epoch after it back downstream
//! (an epoch is complete only when every instance has passed it), so nothing the others
//! read would complete, and flow control would stop them `max_epochs_in_flight` epochs on.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use timely::scheduling::Activator;

use crate::job::Epoch;

/// What sources may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GateMode {
    /// Anything.
    Open,
    /// Stay in the current epoch: fill it, but neither close it nor start the next.
    Freeze,
    /// Emit only at epochs up to this one; past it, wait.
    Limit(Epoch),
    /// Nothing, until every worker is ready (the start of a checkpointed job).
    Closed,
}

/// Where one source instance is.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SourceStatus {
    /// The epoch of its capability.
    pub(crate) epoch: Epoch,
    /// Whether it can still emit (not exhausted).
    pub(crate) live: bool,
}

/// The sources of one worker and what they may do.
#[derive(Debug)]
pub(crate) struct SourceGate {
    mode: Cell<GateMode>,
    sources: RefCell<Vec<Rc<Cell<SourceStatus>>>>,
    /// Operators that hold work back while a checkpoint is taken, woken when the gate
    /// changes.
    waiters: RefCell<Vec<Activator>>,
    /// The highest epoch the workers announced their sources lead to.
    announced: Cell<Epoch>,
    /// Whether a source of this worker waited for the sinks (flow control) since the last
    /// [`SourceGate::take_held`].
    held: Cell<bool>,
}

impl SourceGate {
    pub(crate) fn new(mode: GateMode) -> Self {
        SourceGate {
            mode: Cell::new(mode),
            sources: RefCell::default(),
            waiters: RefCell::default(),
            announced: Cell::new(0),
            held: Cell::new(false),
        }
    }

    pub(crate) fn mode(&self) -> GateMode {
        self.mode.get()
    }

    pub(crate) fn set(&self, mode: GateMode) {
        self.mode.set(mode);
    }

    /// Whether an operator whose work would go out at `epoch` may do it now: not past a
    /// checkpoint's epoch while the checkpoint is taken (the sources wait after it then).
    pub(crate) fn allows_output_at(&self, epoch: Epoch) -> bool {
        match self.mode() {
            GateMode::Limit(limit) => epoch <= limit,
            GateMode::Open | GateMode::Freeze | GateMode::Closed => true,
        }
    }

    /// Wakes the operator of `activator` whenever the checkpoint protocol moves the gate
    /// (it holds work back while a checkpoint is taken).
    pub(crate) fn wake_on_open(&self, activator: Activator) {
        self.waiters.borrow_mut().push(activator);
    }

    /// Wakes the operators that asked to be (see [`SourceGate::wake_on_open`]).
    pub(crate) fn wake_waiters(&self) {
        self.waiters.borrow().iter().for_each(Activator::activate);
    }

    /// A source instance of this worker, starting at `epoch`.
    pub(crate) fn register(&self, epoch: Epoch) -> Rc<Cell<SourceStatus>> {
        let status = Rc::new(Cell::new(SourceStatus { epoch, live: true }));
        self.sources.borrow_mut().push(Rc::clone(&status));
        status
    }

    /// The highest epoch a source of this worker is in, or ended in (0 without any). A
    /// finished source counts with the epoch it ended in: it may have emitted there before
    /// the checkpoint began, and a checkpoint below that epoch would restore the source as
    /// finished but the operators without what it emitted.
    pub(crate) fn highest_epoch(&self) -> Epoch {
        self.sources
            .borrow()
            .iter()
            .map(|s| s.get().epoch)
            .max()
            .unwrap_or(0)
    }

    /// The epoch this worker's sources lead the others to (0 without any): the highest a
    /// live one is in, and the one after the highest a finished one ended in (what it
    /// emitted there completes only once every other instance has passed that epoch).
    pub(crate) fn local_leading_epoch(&self) -> Epoch {
        self.sources
            .borrow()
            .iter()
            .map(|s| s.get())
            .map(|s| s.epoch.saturating_add(u64::from(!s.live)))
            .max()
            .unwrap_or(0)
    }

    /// The epoch an idle source instance moves on to: the highest this worker's sources
    /// and the other workers' lead to (see [`SourceGate::local_leading_epoch`] and the
    /// module documentation).
    pub(crate) fn leading_epoch(&self) -> Epoch {
        self.local_leading_epoch().max(self.announced.get())
    }

    /// Takes in the highest source epoch other workers announced; whether it rose.
    pub(crate) fn hear(&self, epoch: Epoch) -> bool {
        let rose = epoch > self.announced.get();
        if rose {
            self.announced.set(epoch);
        }
        rose
    }

    /// Notes that a source of this worker waits for the sinks (flow control).
    pub(crate) fn note_held(&self) {
        self.held.set(true);
    }

    /// Whether a source waited for the sinks since the last call.
    pub(crate) fn take_held(&self) -> bool {
        self.held.replace(false)
    }

    /// Whether every live source of this worker is past `epoch`.
    pub(crate) fn all_past(&self, epoch: Epoch) -> bool {
        self.sources
            .borrow()
            .iter()
            .map(|s| s.get())
            .all(|s| !s.live || s.epoch > epoch)
    }
}

/// What a source instance does at a moment, given the gate (see [`SourceGate`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Passage {
    /// Emit as usual.
    Go,
    /// Emit, but do not close the current epoch.
    StayInEpoch,
    /// Emit in the current epoch; when it closes, go on at this epoch (and wait there).
    CloseInto(Epoch),
    /// Emit as usual, closing epochs as usual, up to the end of this epoch; with nothing to
    /// read at the start of an epoch, go on at the epoch after it (and wait there).
    Fill(Epoch),
    /// Move the capability to this epoch (if it is later) and emit nothing.
    WaitAt(Epoch),
    /// Emit nothing.
    Wait,
}

impl Passage {
    /// The passage of a source whose capability is at `epoch` and that has emitted
    /// `in_epoch` records in it; `fill` for a source whose epochs are record counts.
    pub(crate) fn of(mode: GateMode, epoch: Epoch, in_epoch: u64, fill: bool) -> Passage {
        match mode {
            GateMode::Open => Passage::Go,
            GateMode::Closed => Passage::Wait,
            GateMode::Freeze => Passage::StayInEpoch,
            GateMode::Limit(limit) if epoch > limit => Passage::Wait,
            GateMode::Limit(limit) if fill => Passage::Fill(limit),
            // An epoch without records closes at once.
            GateMode::Limit(limit) if in_epoch == 0 => Passage::WaitAt(limit + 1),
            GateMode::Limit(limit) => Passage::CloseInto(limit + 1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_leading_epoch_is_the_highest_of_this_worker_and_what_others_announced() {
        let gate = SourceGate::new(GateMode::Open);
        let a = gate.register(3);
        assert_eq!(gate.leading_epoch(), 3);
        assert!(gate.hear(7));
        assert!(!gate.hear(5), "an older announcement does not lower it");
        assert_eq!(gate.leading_epoch(), 7);
        a.set(SourceStatus {
            epoch: 9,
            live: true,
        });
        assert_eq!(gate.leading_epoch(), 9);
        let b = gate.register(4);
        b.set(SourceStatus {
            epoch: 20,
            live: false,
        });
        assert_eq!(
            gate.leading_epoch(),
            21,
            "past the epoch a finished source ended in, so that its records there complete"
        );
        assert_eq!(gate.highest_epoch(), 20);
        assert!(!gate.take_held());
        gate.note_held();
        assert!(gate.take_held());
        assert!(!gate.take_held(), "taken once");
    }

    #[test]
    fn sources_stay_in_their_epoch_then_go_on_to_the_one_after_the_limit() {
        assert_eq!(Passage::of(GateMode::Open, 3, 5, false), Passage::Go);
        assert_eq!(
            Passage::of(GateMode::Freeze, 3, 5, false),
            Passage::StayInEpoch
        );
        assert_eq!(
            Passage::of(GateMode::Limit(7), 3, 5, false),
            Passage::CloseInto(8)
        );
        assert_eq!(
            Passage::of(GateMode::Limit(7), 7, 0, false),
            Passage::WaitAt(8)
        );
        assert_eq!(Passage::of(GateMode::Limit(7), 8, 0, false), Passage::Wait);
        assert_eq!(Passage::of(GateMode::Closed, 0, 0, false), Passage::Wait);
        // Record-count epochs are filled up to the limit.
        assert_eq!(
            Passage::of(GateMode::Limit(7), 3, 0, true),
            Passage::Fill(7)
        );
        assert_eq!(
            Passage::of(GateMode::Limit(7), 7, 5, true),
            Passage::Fill(7)
        );
        assert_eq!(Passage::of(GateMode::Limit(7), 8, 0, true), Passage::Wait);
        let gate = SourceGate::new(GateMode::Open);
        let a = gate.register(2);
        let b = gate.register(5);
        assert_eq!(gate.highest_epoch(), 5);
        b.set(SourceStatus {
            epoch: 9,
            live: false,
        });
        // A finished source still counts with the epoch it ended in (regression: a
        // checkpoint below it lost what it had emitted there), but it waits for nothing.
        assert_eq!(gate.highest_epoch(), 9);
        assert!(!gate.all_past(2));
        a.set(SourceStatus {
            epoch: 3,
            live: true,
        });
        assert!(gate.all_past(2));
    }
}
