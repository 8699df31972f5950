//! Operators with a broadcast side input (Flink ML's `withBroadcast`): every instance keeps
//! a state built from all side records, and processes each epoch of its main input with the
//! state as of that epoch. The hook for model-serving operators: the side input carries
//! model updates, the state holds the loaded model.

use std::cell::RefCell;
use std::rc::Rc;

use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::{Capability, InputCapability};
use timely::progress::frontier::MutableAntichain;
use timely::scheduling::SyncActivator;

use crate::dead_letter::DeadLetter;
use crate::job::{Epoch, Op};
use crate::operators::epoch_stash::EpochStash;
use crate::operators::split_results::split_results;
use crate::plan::Partitioning;
use crate::report::OperatorMetrics;
use crate::state::snapshot::{decode_part, encode_part, StatePart};
use crate::state::{Barrier, Checkpointed, InstanceCheckpoint, StateError};
use crate::stream::{Data, DataStream, VecBuilder};

/// What an epoch batch handler did with a batch.
pub enum BatchOutcome<T, U> {
    /// The batch was processed: outputs and dead letters, in any order.
    Done(Vec<Result<U, DeadLetter>>),
    /// The state cannot process records yet (e.g. no model has arrived, or the last one was
    /// rejected): hold them and try again after the next side update. The `String` says why,
    /// for people: held records become dead letters with the reason of the last `Hold` if the
    /// side input ends first.
    Hold(Vec<T>, String),
    /// The state is still working on a side update in the background (e.g. loading a
    /// model on another thread) and will call [`StateWaker::wake`] when done: hold the
    /// records and try again then. Later side updates are not applied until the batch is
    /// done, so it still sees the state of its epoch. Unlike [`BatchOutcome::Hold`], waiting
    /// records are never given up when the side input ends.
    Wait(Vec<T>),
}

/// Wakes a [`DataStream::map_batch_with_broadcast`] operator from any thread, so that it
/// retries the batches its state held back (see [`BatchOutcome::Wait`]).
#[derive(Clone, Debug)]
pub struct StateWaker(SyncActivator);

impl StateWaker {
    /// Schedules the operator on its worker (and unparks the worker thread). Does nothing
    /// once the job has ended.
    pub fn wake(&self) {
        let _ = self.0.activate();
    }
}

/// An epoch's outputs and dead letters, with the capability to emit them.
type Ready<U> = Vec<(Capability<Epoch>, Vec<Result<U, DeadLetter>>)>;

/// What one instance of [`DataStream::map_batch_with_broadcast`] keeps between activations:
/// its state, the epochs of both inputs not processed yet, and the batches its state held
/// back. Epochs go in order: side records of an epoch first, then its batch.
struct BroadcastBatcher<St, T, S, U> {
    state: Rc<RefCell<St>>,
    handlers: Handlers<St, T, S, U>,
    records: EpochStash<Vec<T>>,
    updates: EpochStash<Vec<S>>,
    /// Batches the state held back, oldest first.
    held: Vec<(Capability<Epoch>, Vec<T>)>,
    /// Whether the last try said `Wait` (the state will wake us) rather than `Hold`.
    waiting: bool,
    /// The last `Hold`'s reason.
    held_because: String,
    metrics: Rc<OperatorMetrics>,
    name: String,
}

impl<St, T: Data, S: Data, U: Data> BroadcastBatcher<St, T, S, U> {
    fn receive_main(&mut self, cap: &InputCapability<Epoch>, data: &mut Vec<T>, port: usize) {
        self.metrics.add_in(data.len());
        if let Some(batch) = self.records.for_message(cap, port) {
            batch.append(data);
        }
    }

    fn receive_side(&mut self, cap: &InputCapability<Epoch>, data: &mut Vec<S>, port: usize) {
        if let Some(batch) = self.updates.for_message(cap, port) {
            batch.append(data);
        }
    }

    /// Retries what is held, oldest first, stopping at the first batch that still cannot go
    /// (later epochs stay queued behind it).
    fn retry(&mut self, ready: &mut Ready<U>) {
        let mut queue = std::mem::take(&mut self.held).into_iter();
        let mut state = self.state.borrow_mut();
        self.waiting = false;
        for (cap, batch) in queue.by_ref() {
            match (self.handlers.on_batch)(&mut state, batch, &self.metrics) {
                BatchOutcome::Done(out) => ready.push((cap, out)),
                BatchOutcome::Hold(batch, reason) => {
                    self.held.push((cap, batch));
                    self.held_because = reason;
                    break;
                }
                BatchOutcome::Wait(batch) => {
                    self.held.push((cap, batch));
                    self.waiting = true;
                    break;
                }
            }
        }
        self.held.extend(queue);
    }

    /// Processes the epochs both inputs have completed, in order. While the state works on
    /// a batch (`Wait`), later side updates stay unapplied, so that every batch sees the
    /// state of its own epoch.
    fn process(&mut self, complete: impl Fn(Epoch) -> bool, ready: &mut Ready<U>) {
        if !self.held.is_empty() {
            self.retry(ready);
        }
        while !self.waiting {
            let next = match (self.records.first_epoch(), self.updates.first_epoch()) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) | (None, Some(a)) => a,
                (None, None) => break,
            };
            if !complete(next) {
                break;
            }
            if let Some((_, side_records)) = self.updates.take(next) {
                let mut state = self.state.borrow_mut();
                side_records
                    .into_iter()
                    .for_each(|s| (self.handlers.on_side)(&mut state, s));
                drop(state);
                // The state changed: batches held back may go now.
                if !self.held.is_empty() {
                    self.retry(ready);
                }
            }
            if let Some((cap, batch)) = self.records.take(next) {
                // Behind what is already held, to keep epoch order.
                self.held.push((cap, batch));
                self.retry(ready);
            }
        }
    }

    /// No side update will ever come: what is held (and not waited on) cannot be processed
    /// and becomes dead letters.
    fn give_up_held(&mut self, ready: &mut Ready<U>) {
        if self.waiting {
            return;
        }
        for (cap, batch) in self.held.drain(..) {
            let dead = never_processed(&self.name, *cap.time(), batch, &self.held_because);
            ready.push((cap, dead));
        }
    }

    /// In a job that checkpoints: batches the state holds (`Hold`) keep their capability
    /// at the inputs' frontier `now`, not at their own epoch, so that they do not keep the
    /// operators downstream (and so checkpoints) behind them; their outputs appear at the
    /// epoch in which the state takes them.
    fn let_held_move(&mut self, now: Epoch) {
        if self.waiting || now == Epoch::MAX {
            return;
        }
        for (cap, _) in &mut self.held {
            if *cap.time() < now {
                cap.downgrade(&now);
            }
        }
    }

    /// Every epoch below this one is in the state: both inputs are complete below it and
    /// nothing below it is queued or waited on. Batches the state holds (`Hold`) do not
    /// count: checkpoints save them ([`HeldBatches`]), since only a later side record may
    /// release them.
    fn applied_below(&self, input: Epoch, side: Epoch) -> Epoch {
        let held = self
            .held
            .first()
            .filter(|_| self.waiting)
            .map(|(cap, _)| *cap.time());
        [
            Some(input),
            Some(side),
            held,
            self.records.first_epoch(),
            self.updates.first_epoch(),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(Epoch::MAX)
    }
}

/// The batches an instance's state holds back (`Hold`), as checkpoints see them: saved as
/// splits of `"{op}/held"` (one per batch), and
/// held again by a restored instance at the first epoch after the restored one.
struct HeldBatches<St, T, S, U>(Rc<RefCell<BroadcastBatcher<St, T, S, U>>>);

impl<St: 'static, T: Data, S: Data, U: Data> HeldBatches<St, T, S, U> {
    fn attach(
        ctx: &crate::job::JobContext<'_>,
        handle: &crate::job::OpHandle,
        batcher: &Rc<RefCell<BroadcastBatcher<St, T, S, U>>>,
        cap: Capability<Epoch>,
    ) {
        let name = format!("{}/held", handle.name);
        let Some(instance) = handle.instance else {
            ctx.state.claim(&name);
            return;
        };
        if let Some(restored) = &ctx.state.restored {
            let instances = handle.placement.len();
            let at = restored.epoch().saturating_add(1);
            for split in restored
                .splits(&name, instance, instances)
                .unwrap_or_default()
            {
                match decode_part::<Vec<T>>(&split) {
                    Ok(batch) => batcher.borrow_mut().held.push((cap.delayed(&at), batch)),
                    Err(e) => ctx.fail_build(crate::WeirError::Checkpoint(format!(
                        "cannot restore the batches `{}` held: {e}",
                        handle.name
                    ))),
                }
            }
        }
        if ctx.state.enabled {
            let saved: Rc<dyn Checkpointed> = Rc::new(HeldBatches(Rc::clone(batcher)));
            // Held batches never keep a checkpoint waiting.
            ctx.state.register(&name, instance, saved).set(Epoch::MAX);
        }
    }
}

impl<St, T: Data, S: Data, U: Data> Checkpointed for HeldBatches<St, T, S, U> {
    fn snapshot(&self, _barrier: Barrier) -> Result<StatePart, StateError> {
        let batcher = self.0.borrow();
        // Every held batch is of an epoch up to the barrier's: no record after it exists
        // while operators snapshot (held ones may carry a later capability, see
        // `let_held_move`).
        let splits = batcher
            .held
            .iter()
            .map(|(_, batch)| encode_part(batch))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(StatePart::Splits(splits))
    }
}

/// The least time of a frontier; `Epoch::MAX` once it is empty.
fn first(frontier: &MutableAntichain<Epoch>) -> Epoch {
    frontier.frontier().first().copied().unwrap_or(Epoch::MAX)
}

impl<'s, T: Data> DataStream<'s, T> {
    /// Processes each epoch of this stream, per instance, with a state kept up to date from
    /// the `side` stream, which every instance receives in full (BROADCAST edge).
    ///
    /// `init` builds each instance's state; it gets a [`StateWaker`] for state that works in
    /// the background. For each epoch `t` (in order, once both inputs are complete up to `t`),
    /// the instance first applies the side records of `t` with `on_side`, then hands the main
    /// records of `t` to `on_batch` (with the operator's metrics, for named counters). A batch
    /// the state cannot take yet ([`BatchOutcome::Hold`] or [`BatchOutcome::Wait`]) is kept
    /// with its epoch, later epochs queue behind it, and it is retried on every activation
    /// (after side updates, and when the waker fires). If the side input ends with records
    /// still held (not waiting), they become dead letters whose reason is the last
    /// [`BatchOutcome::Hold`]'s. Returns the outputs and the dead letters, which are also
    /// registered with the job's dead-letter output.
    ///
    /// The state is not checkpointed: a job that checkpoints refuses the operator (use
    /// [`DataStream::map_batch_with_broadcast_checkpointed`]).
    ///
    /// ```
    /// use weir_core::{execute, BatchOutcome, Collector, Config};
    /// let out = Collector::new();
    /// let sink = out.clone();
    /// execute(Config::threads(2), move |job| {
    ///     let scale = job.from_vec("scale", vec![10u64]);
    ///     job.from_vec("numbers", vec![1u64, 2, 3])
    ///         .map_batch_with_broadcast(
    ///             "scaled",
    ///             scale,
    ///             |_waker| 1u64,
    ///             |factor, new| *factor = new,
    ///             |factor, batch: Vec<u64>, _metrics| {
    ///                 BatchOutcome::Done(batch.into_iter().map(|n| Ok(n * *factor)).collect())
    ///             },
    ///         )
    ///         .0
    ///         .collect("out", &sink);
    ///     Ok(())
    /// }).unwrap();
    /// assert_eq!(out.sorted(), vec![10, 20, 30]);
    /// ```
    #[allow(clippy::type_complexity)]
    pub fn map_batch_with_broadcast<S: Data, St: 'static, U: Data>(
        self,
        op: impl Into<Op>,
        side: DataStream<'s, S>,
        init: impl FnOnce(StateWaker) -> St,
        on_side: impl FnMut(&mut St, S) + 'static,
        on_batch: impl FnMut(&mut St, Vec<T>, &OperatorMetrics) -> BatchOutcome<T, U> + 'static,
    ) -> (DataStream<'s, U>, DataStream<'s, DeadLetter>) {
        let handlers = Handlers::new(on_side, on_batch);
        self.broadcast_batches(op.into(), side, init, handlers, None)
    }

    /// [`DataStream::map_batch_with_broadcast`] whose instances' state is part of the job's
    /// checkpoints, as `checkpoint` says. A checkpoint at epoch `e` holds each instance's
    /// state after the side records and batches of every epoch up to `e`. Batches the state
    /// holds (`Hold`) are saved with the checkpoint and held again after a restore; they
    /// keep their capability at the inputs' frontier rather than their own epoch, so their
    /// outputs appear at the epoch in which the state takes them. While the state works on
    /// a batch (`Wait`), no checkpoint completes past its epoch.
    ///
    /// ```
    /// use weir_core::{execute, BatchOutcome, Collector, Config};
    /// use weir_core::state::InstanceCheckpoint;
    /// let out = Collector::new();
    /// let sink = out.clone();
    /// execute(Config::threads(1), move |job| {
    ///     let resets = job.from_vec("resets", Vec::<u64>::new());
    ///     // A running count of records per instance, kept across a restore.
    ///     job.from_vec("numbers", vec![1u64, 2, 3])
    ///         .map_batch_with_broadcast_checkpointed(
    ///             "count",
    ///             resets,
    ///             |_waker| 0u64,
    ///             |count, to| *count = to,
    ///             |count, batch: Vec<u64>, _metrics| {
    ///                 *count += batch.len() as u64;
    ///                 BatchOutcome::Done(vec![Ok(*count)])
    ///             },
    ///             InstanceCheckpoint::new(|count: &u64| *count, |count, parts: Vec<u64>| {
    ///                 *count = parts.into_iter().sum()
    ///             }),
    ///         )
    ///         .0
    ///         .collect("out", &sink);
    ///     Ok(())
    /// }).unwrap();
    /// assert_eq!(out.sorted(), vec![3]);
    /// ```
    #[allow(clippy::type_complexity)]
    pub fn map_batch_with_broadcast_checkpointed<S: Data, St: 'static, U: Data>(
        self,
        op: impl Into<Op>,
        side: DataStream<'s, S>,
        init: impl FnOnce(StateWaker) -> St,
        on_side: impl FnMut(&mut St, S) + 'static,
        on_batch: impl FnMut(&mut St, Vec<T>, &OperatorMetrics) -> BatchOutcome<T, U> + 'static,
        checkpoint: InstanceCheckpoint<St>,
    ) -> (DataStream<'s, U>, DataStream<'s, DeadLetter>) {
        let handlers = Handlers::new(on_side, on_batch);
        self.broadcast_batches(op.into(), side, init, handlers, Some(checkpoint))
    }

    fn broadcast_batches<S: Data, St: 'static, U: Data>(
        self,
        op: Op,
        side: DataStream<'s, S>,
        init: impl FnOnce(StateWaker) -> St,
        handlers: Handlers<St, T, S, U>,
        checkpoint: Option<InstanceCheckpoint<St>>,
    ) -> (DataStream<'s, U>, DataStream<'s, DeadLetter>) {
        let ctx = Rc::clone(&self.ctx);
        let main_edge = self.edge_to(&op);
        let handle = ctx.add_operator(
            &op,
            "map_batch_with_broadcast",
            &[(self.node, main_edge), (side.node, Partitioning::Broadcast)],
        );
        if checkpoint.is_none() {
            ctx.refuse_checkpoints(&handle.name, "map_batch_with_broadcast");
        }
        let main = self.routed(main_edge, &handle.placement);
        let side_stream = side.routed(Partitioning::Broadcast, &handle.placement);
        let metrics = Rc::clone(&handle.metrics);
        let node = handle.node;
        let worker = self.ctx.scope.worker();
        let out = main.binary_frontier::<_, VecBuilder<Result<U, DeadLetter>>, _, _, _, _>(
            side_stream,
            Pipeline,
            Pipeline,
            &handle.name,
            |cap, info| {
                let waker = StateWaker(worker.sync_activator_for(info.address.to_vec()));
                let state = Rc::new(RefCell::new(init(waker)));
                let applied = checkpoint.and_then(|c| c.attach(&ctx, &handle, &state));
                let batcher = Rc::new(RefCell::new(BroadcastBatcher {
                    state,
                    handlers,
                    records: EpochStash::new(),
                    updates: EpochStash::new(),
                    held: Vec::new(),
                    waiting: false,
                    held_because: String::new(),
                    metrics: Rc::clone(&metrics),
                    name: handle.name.clone(),
                }));
                if applied.is_some() || ctx.state.restored.is_some() {
                    HeldBatches::attach(&ctx, &handle, &batcher, cap);
                }
                move |(input, input_frontier), (side, side_frontier), output| {
                    let _busy = metrics.busy_in(node);
                    let mut batcher = batcher.borrow_mut();
                    let port = output.output_index();
                    input.for_each(|cap, data| batcher.receive_main(&cap, data, port));
                    side.for_each(|cap, data| batcher.receive_side(&cap, data, port));
                    let mut ready: Ready<U> = Vec::new();
                    batcher.process(
                        |t| !input_frontier.less_equal(&t) && !side_frontier.less_equal(&t),
                        &mut ready,
                    );
                    // No side update can come to release what the state holds: give it up,
                    // also while the main input is still live. Updates the side input sent
                    // before it ended wait for the main input's epochs: not before they apply.
                    if side_frontier.is_empty() && batcher.updates.first_epoch().is_none() {
                        batcher.give_up_held(&mut ready);
                    }
                    for (cap, mut out) in ready {
                        metrics.add_out(out.iter().filter(|r| r.is_ok()).count());
                        output.session(&cap).give_container(&mut out);
                    }
                    if let Some(cell) = &applied {
                        let (input, side) = (first(input_frontier), first(side_frontier));
                        batcher.let_held_move(input.min(side));
                        cell.set(batcher.applied_below(input, side));
                    }
                }
            },
        );
        let dead_metrics = Rc::clone(&handle.metrics);
        let (ok, err) = split_results(out, &handle.name, move |dead: DeadLetter| {
            dead_metrics.add_dead(1);
            dead
        });
        ctx.dead_letters.borrow_mut().push((
            err.clone(),
            handle.node,
            Rc::clone(&handle.placement),
        ));
        let dead = DataStream::from_parts(
            Rc::clone(&ctx),
            err,
            handle.node,
            Rc::clone(&handle.placement),
        );
        (
            DataStream::from_parts(ctx, ok, handle.node, handle.placement),
            dead,
        )
    }
}

/// Applies a side record to an instance's state.
type OnSide<St, S> = Box<dyn FnMut(&mut St, S)>;
/// Processes an epoch's batch with an instance's state.
type OnBatch<St, T, U> = Box<dyn FnMut(&mut St, Vec<T>, &OperatorMetrics) -> BatchOutcome<T, U>>;

/// The user's side and batch handlers of a [`DataStream::map_batch_with_broadcast`].
struct Handlers<St, T, S, U> {
    on_side: OnSide<St, S>,
    on_batch: OnBatch<St, T, U>,
}

impl<St, T, S, U> Handlers<St, T, S, U> {
    fn new(
        on_side: impl FnMut(&mut St, S) + 'static,
        on_batch: impl FnMut(&mut St, Vec<T>, &OperatorMetrics) -> BatchOutcome<T, U> + 'static,
    ) -> Self {
        Handlers {
            on_side: Box::new(on_side),
            on_batch: Box::new(on_batch),
        }
    }
}

/// The dead letters of a batch held back when the side input ended: the state never could
/// process it, for `reason` (the last [`BatchOutcome::Hold`]'s).
fn never_processed<T: Data, U>(
    operator: &str,
    epoch: Epoch,
    batch: Vec<T>,
    reason: &str,
) -> Vec<Result<U, DeadLetter>> {
    batch
        .into_iter()
        .map(|record| {
            Err(DeadLetter::for_record(
                operator,
                format!("epoch {epoch}"),
                format!(
                    "the side input ended before the state could process this record: {reason}"
                ),
                &record,
            ))
        })
        .collect()
}
