//! State that belongs to an operator instance as a whole rather than to keys (a model being
//! trained, a loaded model's version, a counter), checkpointed through a saved part the
//! user chooses. On a restore, each new instance takes the parts of the old instances dealt
//! to it (old instance `j` goes to new instance `j % instances`), so a job restored at the
//! same parallelism gets every instance's part back where it was.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::job::{Epoch, JobContext, OpHandle};
use crate::state::snapshot::{decode_part, encode_part, StatePart};
use crate::state::{Barrier, Checkpointed, StateError};
use crate::WeirError;

type Save<St> = Box<dyn Fn(&St) -> Result<Vec<u8>, StateError>>;
type Restore<St> = Box<dyn Fn(&mut St, &[Vec<u8>]) -> Result<(), StateError>>;

/// How an operator instance's state `St` is checkpointed: what part of it to save, and how
/// to rebuild it from the saved parts dealt to the instance on a restore.
///
/// ```
/// use weir_core::state::InstanceCheckpoint;
/// // A model with a counter of records seen: both are saved; on a restore at a lower
/// // parallelism an instance may get several parts, and adds up their counts.
/// struct Learner { weights: Vec<f32>, seen: u64 }
/// let checkpoint = InstanceCheckpoint::new(
///     |l: &Learner| (l.weights.clone(), l.seen),
///     |l: &mut Learner, parts: Vec<(Vec<f32>, u64)>| {
///         if let Some((weights, _)) = parts.first() {
///             l.weights = weights.clone();
///         }
///         l.seen = parts.iter().map(|(_, seen)| seen).sum();
///     },
/// );
/// # let _ = checkpoint;
/// ```
pub struct InstanceCheckpoint<St> {
    save: Save<St>,
    restore: Restore<St>,
    /// Every instance holds the same state (built from a broadcast input): one copy is
    /// saved, and every instance is restored from it.
    shared: bool,
}

impl<St: 'static> InstanceCheckpoint<St> {
    /// `save` takes the part of the state to checkpoint; `restore` rebuilds the state from
    /// the parts dealt to this instance (called once, before any record, and only when the
    /// restored checkpoint has state for the operator; it may get no part when the job grew).
    pub fn new<P: Serialize + DeserializeOwned + 'static>(
        save: impl Fn(&St) -> P + 'static,
        restore: impl Fn(&mut St, Vec<P>) + 'static,
    ) -> Self {
        InstanceCheckpoint {
            save: Box::new(move |state| encode_part(&save(state))),
            restore: Box::new(move |state, parts| {
                let parts = parts
                    .iter()
                    .map(|p| decode_part::<P>(p))
                    .collect::<Result<Vec<P>, _>>()?;
                restore(state, parts);
                Ok(())
            }),
            shared: false,
        }
    }

    /// For state that is the same on every instance (built from a broadcast side input,
    /// like a loaded model): instance 0 saves its part, and every instance, at any
    /// parallelism, is restored from that one part.
    ///
    /// ```
    /// use weir_core::state::InstanceCheckpoint;
    /// // The version of the model every instance has loaded.
    /// let checkpoint = InstanceCheckpoint::shared(|v: &u64| *v, |v: &mut u64, saved: u64| *v = saved);
    /// # let _ = checkpoint;
    /// ```
    pub fn shared<P: Serialize + DeserializeOwned + 'static>(
        save: impl Fn(&St) -> P + 'static,
        restore: impl Fn(&mut St, P) + 'static,
    ) -> Self {
        InstanceCheckpoint {
            save: Box::new(move |state| encode_part(&save(state))),
            restore: Box::new(move |state, parts| {
                if let Some(part) = parts.first() {
                    restore(state, decode_part::<P>(part)?);
                }
                Ok(())
            }),
            shared: true,
        }
    }

    /// Restores `state` from the job's checkpoint and registers it for the next ones, on the
    /// worker hosting instance `handle.instance` (as operator `handle.name`). Returns the
    /// cell the instance sets to the epoch below which its state has applied everything.
    pub(crate) fn attach(
        self,
        ctx: &JobContext<'_>,
        handle: &OpHandle,
        state: &Rc<RefCell<St>>,
    ) -> Option<Rc<Cell<Epoch>>> {
        let Some(instance) = handle.instance else {
            ctx.state.claim(&handle.name);
            return None;
        };
        self.attach_as(ctx, &handle.name, instance, handle.placement.len(), state)
    }

    /// [`InstanceCheckpoint::attach`] for instance `instance` of `instances` of `operator`.
    pub(crate) fn attach_as(
        self,
        ctx: &JobContext<'_>,
        operator: &str,
        instance: usize,
        instances: usize,
        state: &Rc<RefCell<St>>,
    ) -> Option<Rc<Cell<Epoch>>> {
        let restored = ctx.state.restored.as_ref();
        // A shared state's one saved part goes to every instance.
        let (take, of) = if self.shared {
            (0, 1)
        } else {
            (instance, instances)
        };
        if let Some(parts) = restored.and_then(|r| r.splits(operator, take, of)) {
            if let Err(e) = (self.restore)(&mut state.borrow_mut(), &parts) {
                ctx.fail_build(WeirError::Checkpoint(format!(
                    "cannot restore the state of `{operator}`: {e}"
                )));
            }
        }
        if !ctx.state.enabled {
            return None;
        }
        let saved: Rc<dyn Checkpointed> = Rc::new(SavedInstance {
            state: Rc::clone(state),
            save: self.save,
            saves: !self.shared || instance == 0,
        });
        Some(ctx.state.register(operator, instance, saved))
    }
}

/// An instance's state as the checkpoint protocol sees it.
struct SavedInstance<St> {
    state: Rc<RefCell<St>>,
    save: Save<St>,
    /// Whether this instance saves (all do, but only instance 0 of a shared state).
    saves: bool,
}

impl<St> Checkpointed for SavedInstance<St> {
    fn snapshot(&self, _barrier: Barrier) -> Result<StatePart, StateError> {
        if !self.saves {
            return Ok(StatePart::Splits(Vec::new()));
        }
        Ok(StatePart::Splits(vec![(self.save)(&self.state.borrow())?]))
    }
}
