//! The state of the operator instances on one worker, as the checkpointing protocol sees
//! it, and the restored checkpoint each instance takes its state from.

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::rc::Rc;
use std::sync::Arc;

use crate::job::Epoch;
use crate::state::snapshot::{KeyedEntries, KeyedEntry, OperatorState, StatePart, WorkerSnapshot};
use crate::state::store::Manifest;
use crate::state::StateError;

/// What a snapshot is taken for (Flink's checkpoint barrier): the checkpoint, and the epoch
/// whose end it captures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Barrier {
    /// The checkpoint's id.
    pub checkpoint: u64,
    /// Every epoch up to this one is in the snapshot, and nothing after it.
    pub epoch: Epoch,
    /// Whether the snapshot must hold everything; otherwise keyed state may hold only what
    /// changed since the previous checkpoint.
    pub full: bool,
}

/// State an operator instance keeps across epochs, which checkpoints save.
///
/// The protocol calls these on the worker thread, between two steps of the dataflow, when
/// the instance has applied every epoch up to the checkpoint's and nothing after it.
pub trait Checkpointed {
    /// The instance's state at `barrier`.
    fn snapshot(&self, barrier: Barrier) -> Result<StatePart, StateError>;

    /// Checkpoint `checkpoint` is complete (its manifest is written): what the instance
    /// held back until then may be released (a file sink makes its files visible).
    fn committed(&self, _checkpoint: u64) -> Result<(), StateError> {
        Ok(())
    }

    /// Before the job starts (on every worker, before any source emits): settle what an
    /// earlier run left, given the checkpoint restored (0: none). A file sink makes the
    /// files of checkpoints up to it visible and removes later ones.
    fn prepare(&self, _restored: u64) -> Result<(), StateError> {
        Ok(())
    }
}

/// The keyed entries of one checkpoint of a chain that an instance takes: those of every
/// worker's file whose key hash the instance owns.
pub(crate) struct KeyedPart<'a> {
    /// Whether the checkpoint holds every key (replacing what came before).
    pub(crate) full: bool,
    sources: Vec<&'a KeyedEntries>,
    owns: Rc<dyn Fn(u64) -> bool + 'a>,
}

impl<'a> KeyedPart<'a> {
    /// All the entries of a keyed snapshot part.
    #[cfg(test)]
    pub(crate) fn of(part: &'a StatePart) -> Self {
        match part {
            StatePart::Keyed { full, entries } => KeyedPart {
                full: *full,
                sources: vec![entries],
                owns: Rc::new(|_| true),
            },
            _ => KeyedPart {
                full: false,
                sources: Vec::new(),
                owns: Rc::new(|_| true),
            },
        }
    }

    /// The entries the instance takes.
    pub(crate) fn entries(&self) -> impl Iterator<Item = KeyedEntry<'a>> + '_ {
        self.sources.iter().flat_map(move |e| {
            let owns = Rc::clone(&self.owns);
            e.iter_where(move |h| owns(h))
        })
    }
}

/// One instance's registered state.
pub(crate) struct Registered {
    pub(crate) operator: String,
    pub(crate) instance: usize,
    pub(crate) state: Rc<dyn Checkpointed>,
    /// Every epoch below this one is in the state (the instance's input frontier after its
    /// last activation).
    pub(crate) applied_below: Rc<Cell<Epoch>>,
}

/// A checkpoint loaded for a restore: the chain from its full base, every worker's file.
pub(crate) struct Restored {
    /// The chain, oldest first; the last is the checkpoint restored.
    pub(crate) chain: Vec<Manifest>,
    /// The worker files of each checkpoint of the chain.
    pub(crate) snapshots: Vec<Vec<WorkerSnapshot>>,
}

impl Restored {
    /// The checkpoint restored.
    pub(crate) fn manifest(&self) -> &Manifest {
        self.chain.last().expect("a chain is never empty")
    }

    /// Whether the restored checkpoint is the final one of a completed job.
    pub(crate) fn is_final(&self) -> bool {
        self.manifest().final_
    }

    /// The epoch the restored state covers: sources go on after it.
    pub(crate) fn epoch(&self) -> Epoch {
        self.manifest().epoch
    }

    fn parts<'a>(
        &'a self,
        checkpoint: usize,
        operator: &'a str,
    ) -> impl Iterator<Item = &'a OperatorState> {
        self.snapshots[checkpoint]
            .iter()
            .flat_map(|w| w.operators.iter())
            .filter(move |o| o.operator == operator)
    }

    /// Every operator with state in the checkpoint.
    pub(crate) fn operators(&self) -> BTreeSet<String> {
        self.snapshots
            .iter()
            .flatten()
            .flat_map(|w| w.operators.iter().map(|o| o.operator.clone()))
            .collect()
    }

    /// The keyed state of `operator` that an instance owning the keys `owns` (by key hash)
    /// takes: one part per checkpoint of the chain, oldest first (borrowed: nothing is
    /// copied until the instance decodes its keys).
    pub(crate) fn keyed<'a>(
        &'a self,
        operator: &'a str,
        owns: impl Fn(u64) -> bool + 'a,
    ) -> Vec<KeyedPart<'a>> {
        let owns: Rc<dyn Fn(u64) -> bool + 'a> = Rc::new(owns);
        (0..self.chain.len())
            .map(|i| {
                let mut part = KeyedPart {
                    full: i == 0,
                    sources: Vec::new(),
                    owns: Rc::clone(&owns),
                };
                for o in self.parts(i, operator) {
                    if let StatePart::Keyed { full, entries } = &o.part {
                        part.full &= *full;
                        part.sources.push(entries);
                    }
                }
                part
            })
            .collect()
    }

    /// A source's splits for `instance` of `instances`: at the checkpoint's parallelism, the
    /// instance's own splits back (an instance may hold several, or none once it ended); at
    /// another, all the instances' splits in instance order (sorted by `order`, if given),
    /// every `instances`-th one. `None` when the source had no state (a new operator).
    pub(crate) fn source_splits(
        &self,
        operator: &str,
        instance: usize,
        instances: usize,
        order: Option<SplitOrder>,
    ) -> Option<Vec<Vec<u8>>> {
        let parts = self.split_parts(operator)?;
        // Every instance of a source saves a part, so the parts are instances 0..n.
        let same_instances =
            parts.len() == instances && parts.iter().enumerate().all(|(i, o)| o.instance == i);
        if same_instances {
            return Some(splits_of(parts[instance]).to_vec());
        }
        let mut all: Vec<&Vec<u8>> = parts.iter().flat_map(|o| splits_of(o)).collect();
        if let Some(order) = order {
            all.sort_by(|a, b| order(a, b));
        }
        Some(every_nth(all, instance, instances))
    }

    /// The splits of `operator` dealt to `instance` of `instances`: all the instances'
    /// splits of the restored checkpoint, in a fixed order, every `instances`-th one.
    /// `None` when the operator had no state (a new operator).
    pub(crate) fn splits(
        &self,
        operator: &str,
        instance: usize,
        instances: usize,
    ) -> Option<Vec<Vec<u8>>> {
        let parts = self.split_parts(operator)?;
        let all: Vec<&Vec<u8>> = parts.iter().flat_map(|o| splits_of(o)).collect();
        Some(every_nth(all, instance, instances))
    }

    /// The parts of `operator` in the restored checkpoint, by instance; `None` if it has
    /// none.
    fn split_parts<'a>(&'a self, operator: &'a str) -> Option<Vec<&'a OperatorState>> {
        let last = self.chain.len() - 1;
        let mut parts: Vec<&OperatorState> = self.parts(last, operator).collect();
        parts.sort_by_key(|o| o.instance);
        (!parts.is_empty()).then_some(parts)
    }
}

/// How a source sorts its splits before they are dealt at another parallelism.
pub(crate) type SplitOrder = fn(&[u8], &[u8]) -> std::cmp::Ordering;

/// The splits an operator instance's part holds (none if it holds other state).
fn splits_of(o: &OperatorState) -> &[Vec<u8>] {
    match &o.part {
        StatePart::Splits(s) => s,
        _ => &[],
    }
}

/// Every `instances`-th of `all`, from the `instance`-th on.
fn every_nth(all: Vec<&Vec<u8>>, instance: usize, instances: usize) -> Vec<Vec<u8>> {
    all.into_iter()
        .enumerate()
        .filter(|(j, _)| j % instances.max(1) == instance)
        .map(|(_, s)| s.clone())
        .collect()
}

/// The registered state of one worker, and the checkpoint it was restored from.
#[derive(Default)]
pub(crate) struct StateRegistry {
    /// Whether the job checkpoints.
    pub(crate) enabled: bool,
    pub(crate) restored: Option<Arc<Restored>>,
    pub(crate) entries: RefCell<Vec<Registered>>,
    /// Operators that took their restored state.
    pub(crate) claimed: RefCell<BTreeSet<String>>,
    /// Operators without state that a checkpoint still waits for (sinks that are not
    /// transactional): the epoch below which each has received everything.
    pub(crate) watched: RefCell<Vec<Rc<Cell<Epoch>>>>,
}

impl StateRegistry {
    /// Registers an instance's state; returns the cell the instance keeps up to date with
    /// its input frontier.
    pub(crate) fn register(
        &self,
        operator: &str,
        instance: usize,
        state: Rc<dyn Checkpointed>,
    ) -> Rc<Cell<Epoch>> {
        let applied_below = Rc::new(Cell::new(0));
        self.entries.borrow_mut().push(Registered {
            operator: operator.to_string(),
            instance,
            state,
            applied_below: Rc::clone(&applied_below),
        });
        self.claimed.borrow_mut().insert(operator.to_string());
        applied_below
    }

    /// [`StateRegistry::register`] in a job that checkpoints; `None` in one that does not.
    pub(crate) fn register_if_enabled(
        &self,
        operator: &str,
        instance: usize,
        state: Rc<dyn Checkpointed>,
    ) -> Option<Rc<Cell<Epoch>>> {
        self.enabled
            .then(|| self.register(operator, instance, state))
    }

    /// Notes that `operator` is part of this job's stateful operators (it restores its state
    /// on other workers).
    pub(crate) fn claim(&self, operator: &str) {
        self.claimed.borrow_mut().insert(operator.to_string());
    }

    /// Whether every registered instance has applied every epoch up to `epoch` (and every
    /// watched operator has received it).
    pub(crate) fn applied_through(&self, epoch: Epoch) -> bool {
        self.entries
            .borrow()
            .iter()
            .all(|r| r.applied_below.get() > epoch)
            && self.watched.borrow().iter().all(|w| w.get() > epoch)
    }

    /// A cell an operator without state sets to the epoch below which it has received
    /// everything, so that a checkpoint waits for it (nothing acknowledged is lost).
    pub(crate) fn watch(&self) -> Rc<Cell<Epoch>> {
        let cell = Rc::new(Cell::new(0));
        self.watched.borrow_mut().push(Rc::clone(&cell));
        cell
    }

    /// The state of every registered instance at `barrier`.
    pub(crate) fn snapshot(
        &self,
        barrier: Barrier,
        worker: usize,
    ) -> Result<WorkerSnapshot, StateError> {
        let operators = self
            .entries
            .borrow()
            .iter()
            .map(|r| {
                Ok(OperatorState {
                    operator: r.operator.clone(),
                    instance: r.instance,
                    part: r.state.snapshot(barrier)?,
                })
            })
            .collect::<Result<Vec<_>, StateError>>()?;
        Ok(WorkerSnapshot {
            checkpoint: barrier.checkpoint,
            worker,
            operators,
        })
    }

    /// Lets every instance settle what an earlier run left (see [`Checkpointed::prepare`]).
    pub(crate) fn prepare(&self, restored: u64) -> Result<(), StateError> {
        for r in self.entries.borrow().iter() {
            r.state.prepare(restored)?;
        }
        Ok(())
    }

    /// Tells every instance that checkpoint `id` is complete.
    pub(crate) fn committed(&self, id: u64) -> Result<(), StateError> {
        for r in self.entries.borrow().iter() {
            r.state.committed(id)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A checkpoint in which the instances of source `s` saved these splits (one worker
    /// each).
    fn checkpoint(splits: &[&[&str]]) -> Restored {
        let manifest = Manifest {
            format: crate::state::store::FORMAT,
            job: vec!["s".into()],
            id: 1,
            epoch: 9,
            workers: splits.len(),
            base: 1,
            files: Vec::new(),
            operators: Vec::new(),
            completed_ms: 0,
            duration_ms: 0,
            alignment_ms: 0,
            final_: false,
        };
        let snapshots = splits
            .iter()
            .enumerate()
            .map(|(i, own)| WorkerSnapshot {
                checkpoint: 1,
                worker: i,
                operators: vec![OperatorState {
                    operator: "s".into(),
                    instance: i,
                    part: StatePart::Splits(own.iter().map(|s| s.as_bytes().to_vec()).collect()),
                }],
            })
            .collect();
        Restored {
            chain: vec![manifest],
            snapshots: vec![snapshots],
        }
    }

    fn dealt(r: &Restored, instance: usize, instances: usize) -> Vec<String> {
        r.source_splits("s", instance, instances, None)
            .expect("the source has state")
            .into_iter()
            .map(|s| String::from_utf8(s).unwrap())
            .collect()
    }

    /// At the checkpoint's parallelism every source instance gets its own splits back, also
    /// when the instances hold different numbers of them (an ended instance holds none);
    /// dealing them round-robin moved them between instances. At another parallelism they
    /// are dealt round-robin in instance order.
    #[test]
    fn source_splits_return_to_their_instance_at_the_same_parallelism() {
        let r = checkpoint(&[&["a", "b"], &["c", "d"]]);
        assert_eq!(dealt(&r, 0, 2), ["a", "b"]);
        assert_eq!(dealt(&r, 1, 2), ["c", "d"]);
        let ended = checkpoint(&[&[], &["p"]]);
        assert_eq!(dealt(&ended, 0, 2), Vec::<String>::new());
        assert_eq!(dealt(&ended, 1, 2), ["p"]);

        assert_eq!(dealt(&r, 0, 1), ["a", "b", "c", "d"]);
        let three: Vec<_> = (0..3).map(|i| dealt(&r, i, 3)).collect();
        assert_eq!(three, [vec!["a", "d"], vec!["b"], vec!["c"]]);
    }
}
