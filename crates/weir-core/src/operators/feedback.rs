//! Feedback edges: a stream whose records come from later in the same job, one epoch later
//! (timely's `feedback` / `connect_loop` with a summary of 1). The hook for synchronous model
//! averaging: instances emit their models at epoch `e`, a merge operator averages them, and
//! the merged model comes back as a side input at epoch `e + 1`.
//!
//! In a job that checkpoints, the records sent back at a checkpoint's epoch `L` are in flight
//! across it (they arrive at `L + 1`, after the checkpoint): an [`InFlight`] keeper holds the
//! records of the latest epochs and saves those sent at `L` with the checkpoint; a restored
//! job sends them again at `L`, so they arrive at `L + 1` as they would have.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::{Concat, ConnectLoop, Feedback};
use timely::dataflow::Stream;

use crate::job::{Epoch, Job, JobContext, Op};
use crate::operators::join_state::replay_at;
use crate::plan::{NodeId, PlanEdge};
use crate::state::snapshot::{decode_part, encode_part, StatePart};
use crate::state::{Barrier, Checkpointed, StateError};
use crate::stream::{Data, DataStream, VecBuilder};
use crate::WeirError;

/// The open end of a feedback edge; [`FeedbackHandle::connect`] closes the loop.
pub struct FeedbackHandle<'s, T: Data> {
    ctx: Rc<JobContext<'s>>,
    handle: timely::dataflow::operators::feedback::Handle<'s, Epoch, Vec<T>>,
    op: Op,
    name: String,
    node: NodeId,
    placement: Rc<[usize]>,
}

impl<'s> Job<'s> {
    /// A stream of records that a later part of the job sends back with [`FeedbackHandle::connect`],
    /// arriving one epoch after they were sent. The operator `op` (placed like any operator
    /// with its parallelism) is where the fed-back records land. In a job that checkpoints,
    /// the records in flight at a checkpoint are saved with it (as `"{op}/in-flight"`).
    ///
    /// ```
    /// use weir_core::{execute, Collector, Config};
    /// let out = Collector::new();
    /// let sink = out.clone();
    /// execute(Config::threads(2), move |job| {
    ///     let (loopback, back) = job.feedback::<u64>("back");
    ///     // Every number comes back once, doubled, one epoch later.
    ///     let doubled = job.from_vec("numbers", vec![1u64, 2, 3]).map("double", |n| n * 2);
    ///     loopback.connect(doubled);
    ///     back.collect("out", &sink);
    ///     Ok(())
    /// }).unwrap();
    /// assert_eq!(out.sorted(), vec![2, 4, 6]);
    /// ```
    pub fn feedback<T: Data>(
        &mut self,
        op: impl Into<Op>,
    ) -> (FeedbackHandle<'s, T>, DataStream<'s, T>) {
        feedback_in(&self.ctx, op.into())
    }
}

/// A feedback edge in the job of `ctx` (see [`Job::feedback`]).
pub(crate) fn feedback_in<'s, T: Data>(
    ctx: &Rc<JobContext<'s>>,
    op: Op,
) -> (FeedbackHandle<'s, T>, DataStream<'s, T>) {
    let handle = ctx.add_operator(&op, "feedback", &[]);
    let (loop_handle, stream) = ctx.scope.feedback::<Vec<T>>(1);
    let stream = DataStream::from_parts(
        Rc::clone(ctx),
        stream,
        handle.node,
        Rc::clone(&handle.placement),
    );
    (
        FeedbackHandle {
            ctx: Rc::clone(ctx),
            handle: loop_handle,
            op,
            name: handle.name,
            node: handle.node,
            placement: handle.placement,
        },
        stream,
    )
}

impl<'s, T: Data> FeedbackHandle<'s, T> {
    /// Sends `stream` back to the feedback stream (one epoch later), routed to its placement.
    pub fn connect(self, stream: DataStream<'s, T>) {
        let keep = self.ctx.state.enabled;
        self.connect_keeping(stream, keep);
    }

    /// [`FeedbackHandle::connect`] for a loop whose receiving operator counts a record at
    /// the epoch it was sent at, not the one it arrives at (its checkpointed state waits
    /// for every record sent up to a checkpoint's epoch): no in-flight keeper, nothing of
    /// the edge in checkpoints.
    pub(crate) fn connect_counted_at_send(self, stream: DataStream<'s, T>) {
        self.connect_keeping(stream, false);
    }

    fn connect_keeping(self, stream: DataStream<'s, T>, keep: bool) {
        let edge = stream.edge_to(&self.op);
        self.ctx.plan.borrow_mut().edges.push(PlanEdge {
            from: stream.node,
            to: self.node,
            partitioning: edge,
        });
        let mut sent = stream;
        if keep {
            sent.stream = InFlight::keep(&self.ctx, &self.name, sent.stream);
        }
        sent.routed(edge, &self.placement).connect_loop(self.handle);
    }
}

/// The records a worker sent into a feedback edge at its latest epochs, by epoch.
struct InFlight<T> {
    sent: RefCell<BTreeMap<Epoch, Vec<T>>>,
}

impl<T: Data> InFlight<T> {
    /// Passes `stream` through a keeper registered as `"{feedback}/in-flight"` on this
    /// worker, and, in a restored job, adds the records this worker takes over from the
    /// checkpoint at its epoch.
    fn keep<'s>(
        ctx: &JobContext<'s>,
        feedback: &str,
        stream: Stream<'s, Epoch, Vec<T>>,
    ) -> Stream<'s, Epoch, Vec<T>> {
        let name = format!("{feedback}/in-flight");
        let keeper = Rc::new(InFlight {
            sent: RefCell::new(BTreeMap::new()),
        });
        let applied_below =
            ctx.state
                .register(&name, ctx.index, Rc::clone(&keeper) as Rc<dyn Checkpointed>);
        let kept = stream.unary_frontier::<VecBuilder<T>, _, _, _>(
            Pipeline,
            "KeepInFlight",
            move |_cap, _info| {
                move |(input, frontier), output| {
                    input.for_each(|cap, data| {
                        if let Some(epoch) = cap.least() {
                            keeper.record(*epoch, data);
                        }
                        output.session(&cap).give_container(data);
                    });
                    let below = frontier.frontier().first().copied().unwrap_or(Epoch::MAX);
                    keeper.prune(below);
                    applied_below.set(below);
                }
            },
        );
        match Self::restored(ctx, &name) {
            Some((epoch, records)) => kept.concat(replay_at(ctx, epoch, records)),
            None => kept,
        }
    }

    /// The records this worker sends again after a restore: its share of those saved by
    /// every worker of the checkpoint, and the checkpoint's epoch.
    fn restored(ctx: &JobContext<'_>, name: &str) -> Option<(Epoch, Vec<T>)> {
        let restored = ctx.state.restored.as_ref()?;
        let splits = restored.splits(name, ctx.index, ctx.workers)?;
        match splits.iter().map(|s| decode_part::<T>(s)).collect() {
            Ok(records) => Some((restored.epoch(), records)),
            Err(e) => {
                ctx.fail_build(WeirError::Checkpoint(format!(
                    "cannot restore the records in flight on `{name}`: {e}"
                )));
                None
            }
        }
    }

    fn record(&self, epoch: Epoch, records: &[T]) {
        self.sent
            .borrow_mut()
            .entry(epoch)
            .or_default()
            .extend_from_slice(records);
    }

    /// Forgets the records sent before the epoch just below the frontier `below`: a
    /// checkpoint at `below - 1` may still need those sent at it.
    fn prune(&self, below: Epoch) {
        let mut sent = self.sent.borrow_mut();
        let keep_from = below.saturating_sub(1);
        *sent = sent.split_off(&keep_from);
    }
}

impl<T: Data> Checkpointed for InFlight<T> {
    /// The records sent at the barrier's epoch: they arrive after it.
    fn snapshot(&self, barrier: Barrier) -> Result<StatePart, StateError> {
        let sent = self.sent.borrow();
        let records = sent.get(&barrier.epoch).map(Vec::as_slice).unwrap_or(&[]);
        Ok(StatePart::Splits(
            records.iter().map(encode_part).collect::<Result<_, _>>()?,
        ))
    }
}
