//! The two halves of an online iteration's round ([`super::online_iteration`]): the
//! instances, which buffer records and answer each round with a partial, and the reducer,
//! which merges a round's partials into the next model version; and how checkpoints save
//! both.
//!
//! **Time.** An instance holds a capability that follows its records' frontier (and stays
//! at the last epoch of its records once they end, until the reducer says the iteration is
//! over): its partials go out at that epoch, and the reducer's versions at the epoch of the
//! round's first partial (moved up to its partials' frontier while it waits for the rest),
//! so the rounds stay at the epochs of the records that feed them instead of running ahead
//! by one epoch per round. A round model sent back at epoch `e` arrives at `e + 1` but
//! counts as `e`'s: checkpoints wait until it has arrived.
//!
//! **Checkpoints.** While a checkpoint at epoch `L` is taken (the sources wait at `L + 1`),
//! an instance whose capability is past `L` answers no round: that would use rows up to `L`
//! in an answer after `L`. So at the snapshot every partial up to `L` is with the reducer,
//! every round model sent up to `L` is with the instances, and nothing after `L` exists.
//! An instance saves its buffer, the round it has not answered and whether the iteration
//! is over; the reducer its round, model and the partials it has. A restore needs the same
//! number of instances (the partials of a round are per instance).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use timely::dataflow::operators::Capability;

use crate::error::WeirError;
use crate::job::{Epoch, JobContext};
use crate::operators::iteration::Round;
use crate::operators::online_iteration::OnlineBody;
use crate::state::snapshot::{decode_part, encode_part, StatePart};
use crate::state::{Barrier, Checkpointed, StateError};

/// A round's model for the instances.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct RoundModel<M> {
    pub(crate) round: u64,
    pub(crate) model: M,
}

/// What goes round the loop to every instance.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) enum ToInstances<M> {
    /// The model of the next round.
    Round(RoundModel<M>),
    /// The iteration is over: the instances let their capabilities go.
    End,
}

/// An instance's answer to a round: its partial over `rows` rows, and whether its input has
/// ended and its buffer is empty.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct RoundPartial<P> {
    round: u64,
    partial: P,
    rows: usize,
    last: bool,
}

/// What the reducer emits.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) enum Emitted<M> {
    /// A version that also goes round the loop as the model of its round (the initial
    /// model is round 0's).
    Next(RoundModel<M>),
    /// The last version: it goes out, and the loop ends.
    Last(M),
    /// The loop ends without a new version (every input ended on a round boundary).
    End,
}

impl<M> Emitted<M> {
    /// The model version this emits, if any.
    pub(crate) fn version(self) -> Option<M> {
        match self {
            Emitted::Next(next) => Some(next.model),
            Emitted::Last(model) => Some(model),
            Emitted::End => None,
        }
    }

    /// What goes round the loop.
    pub(crate) fn into_loop_message(self) -> ToInstances<M> {
        match self {
            Emitted::Next(next) => ToInstances::Round(next),
            Emitted::Last(_) | Emitted::End => ToInstances::End,
        }
    }
}

/// One instance of an online iteration.
pub(crate) struct OnlineInstance<B: OnlineBody, E> {
    /// Follows the records' frontier, then stays at their last epoch until the iteration
    /// is over: partials go out with it.
    pub(crate) data_cap: Option<Capability<Epoch>>,
    body: B,
    /// The round this instance has not answered yet, and its model.
    waiting: Option<(u64, B::Model)>,
    /// The reducer said the iteration is over.
    over: bool,
    fail: E,
    failed: bool,
    instance: usize,
    instances: usize,
}

/// What a checkpoint saves of an instance.
#[derive(Serialize, Deserialize)]
struct SavedInstance<Buf, M> {
    buffer: Buf,
    waiting: Option<(u64, M)>,
    over: bool,
}

impl<B: OnlineBody, E: Fn(String)> OnlineInstance<B, E> {
    pub(crate) fn new(body: B, fail: E, (instance, instances): (usize, usize)) -> Self {
        OnlineInstance {
            data_cap: None,
            body,
            waiting: None,
            over: false,
            fail,
            failed: false,
            instance,
            instances,
        }
    }

    /// Whether the instance still takes part (not failed, the iteration not over).
    pub(crate) fn active(&self) -> bool {
        !self.failed && !self.over
    }

    pub(crate) fn push_all(&mut self, records: Vec<B::Record>) {
        if self.failed {
            return;
        }
        for record in records {
            if let Err(message) = self.body.push(record) {
                self.give_up(message);
                return;
            }
        }
    }

    pub(crate) fn receive(&mut self, message: ToInstances<B::Model>) {
        match message {
            ToInstances::Round(next) if self.waiting.is_some() => self.give_up(format!(
                "the model of round {} came before a partial",
                next.round
            )),
            ToInstances::Round(next) => self.waiting = Some((next.round, next.model)),
            ToInstances::End => {
                self.over = true;
                self.waiting = None;
                self.data_cap = None;
            }
        }
    }

    /// The partial of the waiting round once this instance holds its share of rows (or its
    /// input has ended) and `may_send` allows its epoch, with the capability to send it with.
    pub(crate) fn answer(
        &mut self,
        ended: bool,
        may_send: impl Fn(Epoch) -> bool,
    ) -> Option<(RoundPartial<B::Partial>, Capability<Epoch>)> {
        if self.failed {
            return None;
        }
        let (number, _) = self.waiting.as_ref()?;
        let round = Round {
            number: *number,
            instance: self.instance,
            instances: self.instances,
        };
        let share = self.body.batch_rows(round).max(1);
        let buffered = self.body.buffered();
        if buffered < share && !ended {
            return None;
        }
        let cap = self
            .data_cap
            .as_ref()
            .filter(|c| may_send(*c.time()))?
            .clone();
        let (_, model) = self.waiting.take().expect("checked above");
        let rows = share.min(buffered);
        match self.body.partial(round, &model, rows) {
            Ok(partial) => {
                let last = ended && self.body.buffered() == 0;
                let partial = RoundPartial {
                    round: round.number,
                    partial,
                    rows,
                    last,
                };
                Some((partial, cap))
            }
            Err(message) => {
                self.give_up(message);
                None
            }
        }
    }

    fn give_up(&mut self, message: String) {
        if !self.failed {
            (self.fail)(message);
        }
        self.failed = true;
        self.waiting = None;
        self.data_cap = None;
    }

    fn saved(&self) -> SavedInstance<B::Buffer, B::Model> {
        SavedInstance {
            buffer: self.body.save_buffer(),
            waiting: self.waiting.clone(),
            over: self.over,
        }
    }

    fn restore(&mut self, saved: SavedInstance<B::Buffer, B::Model>) -> Result<(), String> {
        self.body.restore_buffer(saved.buffer)?;
        self.waiting = saved.waiting;
        self.over = saved.over;
        Ok(())
    }
}

/// The reducer of an online iteration.
pub(crate) struct OnlineReducer<B: OnlineBody, E> {
    /// The capability of the first partial of the current round (moved up to the partials'
    /// frontier while the round waits).
    pub(crate) cap: Option<Capability<Epoch>>,
    body: B,
    expected: usize,
    /// The current round and its model.
    model: Option<(u64, B::Model)>,
    partials: Vec<RoundPartial<B::Partial>>,
    pub(crate) done: bool,
    fail: E,
}

/// What a checkpoint saves of the reducer.
#[derive(Serialize, Deserialize)]
struct SavedReducer<M, P> {
    model: Option<(u64, M)>,
    partials: Vec<RoundPartial<P>>,
    done: bool,
}

impl<B: OnlineBody, E: Fn(String)> OnlineReducer<B, E> {
    pub(crate) fn new(body: B, expected: usize, fail: E) -> Self {
        OnlineReducer {
            cap: None,
            body,
            expected,
            model: None,
            partials: Vec::new(),
            done: false,
            fail,
        }
    }

    /// The initial model: version 0, and the model of round 0.
    pub(crate) fn initial(&mut self, model: B::Model) -> Option<Emitted<B::Model>> {
        if self.model.is_some() || self.done {
            self.give_up("the initial model has more than one record".into());
            return None;
        }
        self.model = Some((0, model.clone()));
        Some(Emitted::Next(RoundModel { round: 0, model }))
    }

    pub(crate) fn receive(&mut self, partials: &mut Vec<RoundPartial<B::Partial>>) {
        self.partials.append(partials);
    }

    /// What the round gives once every instance's partial is in.
    pub(crate) fn reduce_complete_round(&mut self) -> Option<Emitted<B::Model>> {
        let (round, _) = self.model.as_ref()?;
        let round = *round;
        if self.done || self.partials.len() < self.expected {
            return None;
        }
        if let Some(other) = self.partials.iter().find(|p| p.round != round) {
            let message = format!(
                "a partial of round {} arrived in round {round}",
                other.round
            );
            self.give_up(message);
            return None;
        }
        let last = self.partials.iter().all(|p| p.last);
        let rows: usize = self.partials.iter().map(|p| p.rows).sum();
        let mut partials = std::mem::take(&mut self.partials)
            .into_iter()
            .map(|p| p.partial);
        let mut total = partials.next().expect("at least one partial");
        partials.for_each(|p| self.body.merge(&mut total, p));
        let (_, model) = self.model.take().expect("checked above");
        if rows == 0 {
            // Every input ended on a round boundary (an instance answers with no rows only
            // then): no new version.
            self.done = true;
            return Some(Emitted::End);
        }
        match self.body.update(model, total) {
            Ok(model) if last => {
                self.done = true;
                Some(Emitted::Last(model))
            }
            Ok(model) => {
                self.model = Some((round + 1, model.clone()));
                Some(Emitted::Next(RoundModel {
                    round: round + 1,
                    model,
                }))
            }
            Err(message) => {
                self.give_up(message);
                None
            }
        }
    }

    /// The initial model's input ended: without an initial model, the job fails.
    pub(crate) fn init_ended(&mut self) {
        if !self.done && self.model.is_none() {
            self.give_up("no initial model (was the initial model data empty?)".into());
        }
    }

    fn give_up(&mut self, message: String) {
        if !self.done {
            (self.fail)(message);
        }
        self.done = true;
        self.cap = None;
    }

    fn saved(&self) -> SavedReducer<B::Model, B::Partial> {
        SavedReducer {
            model: self.model.clone(),
            partials: self.partials.clone(),
            done: self.done,
        }
    }

    fn restore(&mut self, saved: SavedReducer<B::Model, B::Partial>) {
        self.model = saved.model;
        self.partials = saved.partials;
        self.done = saved.done;
    }
}

/// An instance of an online iteration as checkpoints see it.
pub(crate) struct SavedRound<S>(pub(crate) Rc<RefCell<S>>);

impl<B: OnlineBody, E: Fn(String) + 'static> Checkpointed for SavedRound<OnlineInstance<B, E>> {
    fn snapshot(&self, _barrier: Barrier) -> Result<StatePart, StateError> {
        let part = encode_part(&self.0.borrow().saved())?;
        Ok(StatePart::Splits(vec![part]))
    }
}

impl<B: OnlineBody, E: Fn(String) + 'static> Checkpointed for SavedRound<OnlineReducer<B, E>> {
    fn snapshot(&self, _barrier: Barrier) -> Result<StatePart, StateError> {
        let part = encode_part(&self.0.borrow().saved())?;
        Ok(StatePart::Splits(vec![part]))
    }
}

/// Restores instance `instance` of `instances` of the online iteration `operator` from the
/// job's checkpoint (if it has one) and registers it for the next ones. Returns the cell
/// the instance sets to the epoch below which its state has everything.
pub(crate) fn attach_instance<B: OnlineBody, E: Fn(String) + 'static>(
    ctx: &JobContext<'_>,
    operator: &str,
    (instance, instances): (usize, usize),
    state: &Rc<RefCell<OnlineInstance<B, E>>>,
) -> Option<Rc<Cell<Epoch>>> {
    if let Some(saved) = restored_part(ctx, operator, instance, instances) {
        if let Err(e) = state.borrow_mut().restore(saved) {
            ctx.fail_build(WeirError::Checkpoint(format!(
                "cannot restore the rows `{operator}` buffered: {e}"
            )));
        }
    }
    let saved = Rc::new(SavedRound(Rc::clone(state)));
    ctx.state.register_if_enabled(operator, instance, saved)
}

/// [`attach_instance`] for the reducer (one instance).
pub(crate) fn attach_reducer<B: OnlineBody, E: Fn(String) + 'static>(
    ctx: &JobContext<'_>,
    operator: &str,
    state: &Rc<RefCell<OnlineReducer<B, E>>>,
) -> Option<Rc<Cell<Epoch>>> {
    if let Some(saved) = restored_part(ctx, operator, 0, 1) {
        state.borrow_mut().restore(saved);
    }
    let saved = Rc::new(SavedRound(Rc::clone(state)));
    ctx.state.register_if_enabled(operator, 0, saved)
}

/// The part instance `instance` of `operator` saved in the restored checkpoint; the build
/// fails if the checkpoint has another number of instances or the part does not decode.
fn restored_part<P: DeserializeOwned>(
    ctx: &JobContext<'_>,
    operator: &str,
    instance: usize,
    instances: usize,
) -> Option<P> {
    let mut parts = ctx.state.restored.as_ref()?.splits(operator, 0, 1)?;
    if parts.len() != instances {
        ctx.fail_build(WeirError::Checkpoint(format!(
            "`{operator}` (an online iteration) was checkpointed with {} instances and cannot \
             be restored with {instances}: a round's partials are per instance; restore at \
             the parallelism of the checkpoint",
            parts.len()
        )));
        return None;
    }
    match decode_part(&parts.swap_remove(instance)) {
        Ok(part) => Some(part),
        Err(e) => {
            ctx.fail_build(WeirError::Checkpoint(format!(
                "cannot restore the state of `{operator}`: {e}"
            )));
            None
        }
    }
}
