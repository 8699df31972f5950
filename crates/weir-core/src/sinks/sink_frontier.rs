//! How far the sinks of a worker have got: the lowest epoch any of them may still receive,
//! which flow control holds the sources to. Each sink reports its own input frontier when
//! it changes (a sink is scheduled whenever it does), instead of feeding a timely probe: a
//! probe is one more operator per sink that progress tracking visits at every epoch.

use std::cell::RefCell;
use std::rc::Rc;

use timely::progress::frontier::MutableAntichain;

use crate::job::Epoch;

/// The frontier of a worker's sinks (empty when there are none, or all are done). Cloning
/// shares it.
#[derive(Clone, Default)]
pub(crate) struct SinkFrontier {
    frontier: Rc<RefCell<MutableAntichain<Epoch>>>,
}

impl SinkFrontier {
    /// Whether some sink may still receive records at `epoch` or earlier.
    pub(crate) fn less_equal(&self, epoch: &Epoch) -> bool {
        self.frontier.borrow().less_equal(epoch)
    }

    /// The lowest epoch some sink may still receive, `None` once every sink is done.
    pub(crate) fn first(&self) -> Option<Epoch> {
        self.frontier.borrow().frontier().first().copied()
    }

    /// A new sink, at epoch 0 until it reports.
    pub(crate) fn sink(&self) -> SinkReport {
        self.frontier.borrow_mut().update_iter([(0, 1)]);
        SinkReport {
            frontier: self.clone(),
            at: Some(0),
        }
    }
}

/// One sink's part of a [`SinkFrontier`].
pub(crate) struct SinkReport {
    frontier: SinkFrontier,
    /// The epoch this sink last reported (`None` once its input has ended).
    at: Option<Epoch>,
}

impl SinkReport {
    /// Reports the sink's input frontier: `first`, its lowest epoch (`None` when the input
    /// has ended). Epochs are totally ordered, so the frontier has one element at most.
    pub(crate) fn at(&mut self, first: Option<Epoch>) {
        if first == self.at {
            return;
        }
        let removed = self.at.map(|e| (e, -1));
        let added = first.map(|e| (e, 1));
        self.frontier
            .frontier
            .borrow_mut()
            .update_iter(added.into_iter().chain(removed));
        self.at = first;
    }
}

impl Drop for SinkReport {
    /// A sink that is dropped (its dataflow torn down) holds nothing back.
    fn drop(&mut self) {
        self.at(None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frontier_is_the_lowest_sink_and_empty_without_sinks() {
        let sinks = SinkFrontier::default();
        assert_eq!(sinks.first(), None);
        assert!(!sinks.less_equal(&0), "no sink holds the sources back");
        let mut a = sinks.sink();
        let mut b = sinks.sink();
        assert_eq!(sinks.first(), Some(0));
        a.at(Some(5));
        assert_eq!(sinks.first(), Some(0), "b is still at 0");
        b.at(Some(3));
        assert_eq!(sinks.first(), Some(3));
        assert!(sinks.less_equal(&3) && !sinks.less_equal(&2));
        b.at(None);
        assert_eq!(sinks.first(), Some(5));
        drop(a);
        assert_eq!(sinks.first(), None);
        drop(b);
        assert_eq!(sinks.first(), None, "an ended sink is not removed twice");
    }
}
