//! Checkpointed state for operators a user writes with timely directly
//! ([`DataStream::inner`](crate::DataStream::inner) and
//! [`DataStream::from_timely`](crate::DataStream::from_timely)): state of the instance as a
//! whole ([`Job::instance_state`]) or per key ([`Job::keyed_state`]). The operator tells the
//! checkpoint protocol how far its state has applied its input with
//! [`CustomState::applied`]; a checkpoint at epoch `e` waits until every registered
//! instance has applied every epoch up to `e`.

use std::cell::{Cell, Ref, RefCell, RefMut};
use std::hash::Hash;
use std::rc::Rc;

use serde::de::DeserializeOwned;
use serde::Serialize;
use timely::progress::frontier::MutableAntichain;

use crate::job::{Epoch, Job};
use crate::operators::keyed::owner_index;
use crate::state::snapshot::StatePart;
use crate::state::{Barrier, Checkpointed, InstanceCheckpoint, KeyedState, StateError};
use crate::WeirError;

/// The state of a hand-written operator's instance on one worker, restored from the job's
/// checkpoint and saved with the next ones.
pub struct CustomState<St> {
    state: Rc<RefCell<St>>,
    applied_below: Option<Rc<Cell<Epoch>>>,
}

impl<St> Clone for CustomState<St> {
    fn clone(&self) -> Self {
        CustomState {
            state: Rc::clone(&self.state),
            applied_below: self.applied_below.clone(),
        }
    }
}

impl<St> CustomState<St> {
    /// Reads the state.
    pub fn borrow(&self) -> Ref<'_, St> {
        self.state.borrow()
    }

    /// Changes the state.
    pub fn borrow_mut(&self) -> RefMut<'_, St> {
        self.state.borrow_mut()
    }

    /// Tells the checkpoint protocol that the state has applied every epoch before the
    /// operator's input `frontier` (call it at the end of every activation; a state that
    /// holds records back passes the least epoch it holds to [`CustomState::applied_below`]).
    pub fn applied(&self, frontier: &MutableAntichain<Epoch>) {
        self.applied_below(frontier.frontier().first().copied().unwrap_or(Epoch::MAX));
    }

    /// Tells the checkpoint protocol that the state has applied every epoch below `epoch`.
    pub fn applied_below(&self, epoch: Epoch) {
        if let Some(cell) = &self.applied_below {
            cell.set(epoch);
        }
    }
}

impl<'s> Job<'s> {
    /// State of this worker's instance of the hand-written operator `operator` (one instance
    /// per worker), checkpointed as `checkpoint` says and restored before the job starts (a
    /// job restored at another worker count deals the saved parts as
    /// [`InstanceCheckpoint`] does). `operator` is the state's identity across restores.
    ///
    /// ```
    /// use weir_core::reexports::timely::container::CapacityContainerBuilder;
    /// use weir_core::reexports::timely::dataflow::channels::pact::Pipeline;
    /// use weir_core::reexports::timely::dataflow::operators::generic::Operator;
    /// use weir_core::state::InstanceCheckpoint;
    /// use weir_core::{execute, Collector, Config, DataStream};
    /// let out = Collector::new();
    /// let sink = out.clone();
    /// execute(Config::threads(2), move |job| {
    ///     let numbers = job.from_vec("numbers", (1..=10u64).collect());
    ///     // A running sum per worker that survives a restore.
    ///     let sum = job.instance_state(
    ///         "running_sum",
    ///         0u64,
    ///         InstanceCheckpoint::new(|s: &u64| *s, |s, parts: Vec<u64>| *s = parts.iter().sum()),
    ///     );
    ///     let sums = numbers.inner().clone().unary_frontier::<CapacityContainerBuilder<Vec<u64>>, _, _, _>(
    ///         Pipeline, "RunningSum", move |_, _| {
    ///         move |(input, frontier), output| {
    ///             input.for_each(|cap, data| {
    ///                 let mut total = sum.borrow_mut();
    ///                 let sums: Vec<u64> = data.iter().map(|n| { *total += n; *total }).collect();
    ///                 output.session(&cap).give_iterator(sums.into_iter());
    ///             });
    ///             sum.applied(frontier);
    ///         }
    ///     },
    ///     );
    ///     DataStream::from_timely(job, "running_sum", &[&numbers], sums).collect("out", &sink);
    ///     Ok(())
    /// }).unwrap();
    /// assert_eq!(out.sorted().len(), 10);
    /// ```
    pub fn instance_state<St: 'static>(
        &self,
        operator: &str,
        init: St,
        checkpoint: InstanceCheckpoint<St>,
    ) -> CustomState<St> {
        let state = Rc::new(RefCell::new(init));
        let applied_below = checkpoint.attach_as(
            &self.ctx,
            operator,
            self.ctx.index,
            self.ctx.workers,
            &state,
        );
        CustomState {
            state,
            applied_below,
        }
    }

    /// Keyed state (Flink's keyed `ValueState`, `ListState`, `MapState` through the value
    /// type) of this worker's instance of the hand-written operator `operator`. The operator
    /// must route records to workers by [`key_hash`](crate::key_hash) of their key, e.g.
    /// with `Exchange::new(|r| weir_core::key_hash(&key(r)))`, so that a job restored at
    /// another worker count finds each key's state where the key's records go.
    pub fn keyed_state<K, V>(&self, operator: &str) -> CustomState<KeyedState<K, V>>
    where
        K: Hash + Eq + Clone + Serialize + DeserializeOwned + 'static,
        V: Serialize + DeserializeOwned + 'static,
    {
        let mut state = KeyedState::new();
        let enabled = self.ctx.state.enabled;
        if enabled {
            // Before the restore, which then fills the tracked table once.
            state.track_changes();
        }
        let (me, workers) = (self.ctx.index, self.ctx.workers);
        if let Some(restored) = &self.ctx.state.restored {
            let owns = move |hash: u64| owner_index(hash, workers) == me;
            if let Err(e) = state.restore(&restored.keyed(operator, owns)) {
                self.ctx.fail_build(WeirError::Checkpoint(format!(
                    "cannot restore the state of `{operator}`: {e}"
                )));
            }
        }
        let state = Rc::new(RefCell::new(state));
        let applied_below = enabled.then(|| {
            let saved: Rc<dyn Checkpointed> = Rc::new(SavedKeyed(Rc::clone(&state)));
            self.ctx.state.register(operator, me, saved)
        });
        CustomState {
            state,
            applied_below,
        }
    }
}

/// A custom operator's keyed state as the checkpoint protocol sees it.
struct SavedKeyed<K, V>(Rc<RefCell<KeyedState<K, V>>>);

impl<K, V> Checkpointed for SavedKeyed<K, V>
where
    K: Hash + Eq + Clone + Serialize + DeserializeOwned,
    V: Serialize + DeserializeOwned,
{
    fn snapshot(&self, barrier: Barrier) -> Result<StatePart, StateError> {
        self.0.borrow_mut().snapshot(barrier.full)
    }
}
