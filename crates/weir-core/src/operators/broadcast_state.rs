//! Operators with a broadcast side input (Flink ML's `withBroadcast`): every instance keeps
//! a state built from all side records, and processes each epoch of its main input with the
//! state as of that epoch. The hook for model-serving operators: the side input carries
//! model updates, the state holds the loaded model.

use std::rc::Rc;

use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::core::OkErr;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Capability;
use timely::scheduling::SyncActivator;

use crate::dead_letter::DeadLetter;
use crate::job::{Epoch, Op};
use crate::operators::epoch_stash::EpochStash;
use crate::plan::Partitioning;
use crate::report::OperatorMetrics;
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
    #[allow(clippy::type_complexity)]
    pub fn map_batch_with_broadcast<S: Data, St: 'static, U: Data>(
        self,
        op: impl Into<Op>,
        side: DataStream<'s, S>,
        init: impl FnOnce(StateWaker) -> St,
        mut on_side: impl FnMut(&mut St, S) + 'static,
        mut on_batch: impl FnMut(&mut St, Vec<T>, &OperatorMetrics) -> BatchOutcome<T, U> + 'static,
    ) -> (DataStream<'s, U>, DataStream<'s, DeadLetter>) {
        let op = op.into();
        let ctx = Rc::clone(&self.ctx);
        let main_edge = self.edge_to(&op);
        let handle = ctx.add_operator(
            &op,
            "map_batch_with_broadcast",
            &[(self.node, main_edge), (side.node, Partitioning::Broadcast)],
        );
        ctx.refuse_checkpoints(&handle.name, "map_batch_with_broadcast");
        let main = self.routed(main_edge, &handle.placement);
        let side_stream = side.routed(Partitioning::Broadcast, &handle.placement);
        let metrics = Rc::clone(&handle.metrics);
        let node = handle.node;
        let name = handle.name.clone();
        let worker = self.ctx.scope.worker();
        let out = main.binary_frontier::<_, VecBuilder<Result<U, DeadLetter>>, _, _, _, _>(
            side_stream,
            Pipeline,
            Pipeline,
            &handle.name,
            move |_cap, info| {
                let mut state = init(StateWaker(worker.sync_activator_for(info.address.to_vec())));
                let mut records: EpochStash<Vec<T>> = EpochStash::new();
                let mut updates: EpochStash<Vec<S>> = EpochStash::new();
                // Batches the state held back, oldest first, whether the last try said
                // `Wait` (the state will wake us) rather than `Hold`, and the last `Hold`'s
                // reason.
                let mut held: Vec<(Capability<Epoch>, Vec<T>)> = Vec::new();
                let mut waiting = false;
                let mut held_because = String::new();
                move |(input, input_frontier), (side, side_frontier), output| {
                    let _busy = metrics.busy_in(node);
                    input.for_each(|cap, data| {
                        metrics.add_in(data.len());
                        if let Some(batch) = records.for_message(&cap, output.output_index()) {
                            batch.append(data);
                        }
                    });
                    side.for_each(|cap, data| {
                        if let Some(batch) = updates.for_message(&cap, output.output_index()) {
                            batch.append(data);
                        }
                    });
                    let mut ready: Vec<(Capability<Epoch>, Vec<Result<U, DeadLetter>>)> =
                        Vec::new();
                    let complete =
                        |t: Epoch| !input_frontier.less_equal(&t) && !side_frontier.less_equal(&t);
                    // Retries what is held, oldest first, stopping at the first batch that
                    // still cannot go (later epochs stay queued behind it).
                    let mut retry =
                        |state: &mut St,
                         held: &mut Vec<(Capability<Epoch>, Vec<T>)>,
                         ready: &mut Vec<(Capability<Epoch>, Vec<Result<U, DeadLetter>>)>|
                         -> bool {
                            let mut queue = std::mem::take(held).into_iter();
                            let mut waiting = false;
                            for (cap, batch) in queue.by_ref() {
                                match on_batch(state, batch, &metrics) {
                                    BatchOutcome::Done(out) => ready.push((cap, out)),
                                    BatchOutcome::Hold(batch, reason) => {
                                        held.push((cap, batch));
                                        held_because = reason;
                                        break;
                                    }
                                    BatchOutcome::Wait(batch) => {
                                        held.push((cap, batch));
                                        waiting = true;
                                        break;
                                    }
                                }
                            }
                            held.extend(queue);
                            waiting
                        };
                    if !held.is_empty() {
                        waiting = retry(&mut state, &mut held, &mut ready);
                    }
                    // While the state works on a batch (`Wait`), later side updates stay
                    // unapplied, so that every batch sees the state of its own epoch.
                    while !waiting {
                        let next = match (records.first_epoch(), updates.first_epoch()) {
                            (Some(a), Some(b)) => a.min(b),
                            (Some(a), None) => a,
                            (None, Some(b)) => b,
                            (None, None) => break,
                        };
                        if !complete(next) {
                            break;
                        }
                        if let Some((_, side_records)) = updates.take(next) {
                            side_records
                                .into_iter()
                                .for_each(|s| on_side(&mut state, s));
                            // The state changed: batches held back may go now.
                            if !held.is_empty() {
                                waiting = retry(&mut state, &mut held, &mut ready);
                            }
                        }
                        if let Some((cap, batch)) = records.take(next) {
                            // Behind what is already held, to keep epoch order.
                            held.push((cap, batch));
                            waiting = retry(&mut state, &mut held, &mut ready);
                        }
                    }
                    // No side update will ever come: what is held cannot be processed.
                    // (Checked below, after the emitted batches.)
                    if side_frontier.is_empty() && input_frontier.is_empty() && !waiting {
                        for (cap, batch) in held.drain(..) {
                            let dead = never_processed(&name, *cap.time(), batch, &held_because);
                            ready.push((cap, dead));
                        }
                    }
                    for (cap, out) in ready {
                        metrics.add_out(out.iter().filter(|r| r.is_ok()).count());
                        output.session(&cap).give_iterator(out.into_iter());
                    }
                }
            },
        );
        let dead_metrics = Rc::clone(&handle.metrics);
        let (ok, err) = out.ok_err::<Vec<U>, U, Vec<DeadLetter>, DeadLetter, _>(move |r| {
            if r.is_err() {
                dead_metrics.add_dead(1);
            }
            r
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
