//! Operators with a broadcast side input (Flink ML's `withBroadcast`): every instance keeps
//! a state built from all side records, and processes each epoch of its main input with the
//! state as of that epoch. The hook for model-serving operators: the side input carries
//! model updates, the state holds the loaded model.

use std::rc::Rc;

use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::core::OkErr;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Capability;

use crate::dead_letter::DeadLetter;
use crate::epoch_stash::EpochStash;
use crate::job::{Epoch, Op};
use crate::plan::Partitioning;
use crate::report::OperatorMetrics;
use crate::stream::{Data, DataStream, VecBuilder};

/// What an epoch batch handler did with a batch.
pub enum BatchOutcome<T, U> {
    /// The batch was processed: outputs and dead letters, in any order.
    Done(Vec<Result<U, DeadLetter>>),
    /// The state cannot process records yet (e.g. no model has arrived): hold them and try
    /// again after the next side update.
    Hold(Vec<T>),
}

impl<'s, T: Data> DataStream<'s, T> {
    /// Processes each epoch of this stream, per instance, with a state kept up to date from
    /// the `side` stream, which every instance receives in full (BROADCAST edge).
    ///
    /// For each epoch `t` (in order, once both inputs are complete up to `t`), the instance
    /// first applies the side records of `t` with `on_side`, then hands the main records of
    /// `t` to `on_batch` (with the operator's metrics, for named counters). A batch the state cannot take yet ([`BatchOutcome::Hold`]) is kept
    /// (with its epoch) and retried after later side updates; if the side input ends with
    /// records still held, they become dead letters. Returns the outputs and the dead letters,
    /// which are also registered with the job's dead-letter output.
    #[allow(clippy::type_complexity)]
    pub fn map_batch_with_broadcast<S: Data, St: 'static, U: Data>(
        self,
        op: impl Into<Op>,
        side: DataStream<'s, S>,
        init: impl FnOnce() -> St,
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
        let main = self.routed(main_edge, &handle.placement);
        let side_stream = side.routed(Partitioning::Broadcast, &handle.placement);
        let metrics = Rc::clone(&handle.metrics);
        let node = handle.node;
        let name = handle.name.clone();
        let mut state = init();
        let out = main.binary_frontier::<_, VecBuilder<Result<U, DeadLetter>>, _, _, _, _>(
            side_stream,
            Pipeline,
            Pipeline,
            &handle.name,
            move |_cap, _info| {
                let mut records: EpochStash<Vec<T>> = EpochStash::new();
                let mut updates: EpochStash<Vec<S>> = EpochStash::new();
                let mut held: Vec<(Capability<Epoch>, Vec<T>)> = Vec::new();
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
                    let mut ready: Vec<(Capability<Epoch>, Vec<Result<U, DeadLetter>>)> = Vec::new();
                    let complete = |t: Epoch| !input_frontier.less_equal(&t) && !side_frontier.less_equal(&t);
                    loop {
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
                            side_records.into_iter().for_each(|s| on_side(&mut state, s));
                            // The state changed: batches held back may go now, oldest first.
                            for (cap, batch) in std::mem::take(&mut held) {
                                match on_batch(&mut state, batch, &metrics) {
                                    BatchOutcome::Done(out) => ready.push((cap, out)),
                                    BatchOutcome::Hold(batch) => held.push((cap, batch)),
                                }
                            }
                        }
                        if let Some((cap, batch)) = records.take(next) {
                            if !held.is_empty() {
                                // Keep epoch order behind what is already held.
                                held.push((cap, batch));
                                continue;
                            }
                            match on_batch(&mut state, batch, &metrics) {
                                BatchOutcome::Done(out) => ready.push((cap, out)),
                                BatchOutcome::Hold(batch) => held.push((cap, batch)),
                            }
                        }
                    }
                    // No side update will ever come: what is held cannot be processed.
                    // (Checked below, after the emitted batches.)
                    if side_frontier.is_empty() && input_frontier.is_empty() {
                        for (cap, batch) in held.drain(..) {
                            let epoch = *cap.time();
                            let dead = batch.into_iter().map(|x| {
                                Err(DeadLetter {
                                    operator: name.clone(),
                                    location: format!("epoch {epoch}"),
                                    reason: "the side input ended before the state could process this record (no model arrived?)".into(),
                                    raw: serde_json::to_string(&x).unwrap_or_default(),
                                })
                            });
                            let dead = dead.collect();
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
