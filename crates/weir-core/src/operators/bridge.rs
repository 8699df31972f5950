//! Bridges between the dataflow and work that runs on threads of its own (an ML node, an
//! external process, a client of another system): each instance waits for a record of a
//! broadcast side stream (e.g. the address of a coordinator), starts a task with it, feeds
//! the task its input records through a channel, and emits what the task sends back, until
//! the task finishes. A task failure fails the job.

use std::rc::Rc;
use std::sync::mpsc;
use std::time::Instant;

use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::operator::empty;
use timely::dataflow::operators::generic::Operator;
use timely::scheduling::SyncActivator;

use crate::error::WeirError;
use crate::job::{Job, JobContext, Op};
use crate::plan::Partitioning;
use crate::stream::{Data, DataStream, VecBuilder};

/// What a bridge task sends back to its operator.
enum BridgeMessage<O> {
    Record(O),
    Finished,
    Failed(String),
}

/// The output side of a bridge task: records for the dataflow, then `finish` or `fail`.
/// Dropping it without either (e.g. when the task's thread panics) fails the task.
pub struct BridgeOutput<O> {
    sender: mpsc::Sender<BridgeMessage<O>>,
    waker: SyncActivator,
    ended: bool,
}

impl<O> BridgeOutput<O> {
    fn send_message(&self, message: BridgeMessage<O>) -> bool {
        let sent = self.sender.send(message).is_ok();
        let _ = self.waker.activate();
        sent
    }

    /// Emits a record downstream. Returns `false` once the job has gone away.
    pub fn send(&self, record: O) -> bool {
        self.send_message(BridgeMessage::Record(record))
    }

    /// The task is done: the operator instance finishes once its input has ended too.
    pub fn finish(mut self) {
        self.ended = true;
        self.send_message(BridgeMessage::Finished);
    }

    /// The task failed: the job fails with this message.
    pub fn fail(mut self, message: impl Into<String>) {
        self.ended = true;
        self.send_message(BridgeMessage::Failed(message.into()));
    }
}

impl<O> Drop for BridgeOutput<O> {
    fn drop(&mut self) {
        if !self.ended {
            let message = if std::thread::panicking() {
                "the task panicked"
            } else {
                "the task ended without finishing"
            };
            self.send_message(BridgeMessage::Failed(message.into()));
        }
    }
}

/// Everything a started bridge task gets.
pub struct BridgeTask<I, O> {
    /// This instance's index among the operator's instances.
    pub instance: usize,
    /// The operator's parallelism.
    pub instances: usize,
    /// The instance's input records; disconnected when the input has ended (at once for
    /// a bridge without input).
    pub input: mpsc::Receiver<I>,
    /// Where the task's records go.
    pub output: BridgeOutput<O>,
}

impl<'s> Job<'s> {
    /// A bridge without a data input (see [`DataStream::bridge`]): a source whose records come
    /// from tasks started by the records of `side`. The task's input type `I` is free (use
    /// `()`): its input channel is disconnected from the start.
    pub fn bridge_source<I: Data, S: Data, O: Data>(
        &mut self,
        op: impl Into<Op>,
        side: DataStream<'s, S>,
        start: impl FnMut(S, BridgeTask<I, O>) + 'static,
    ) -> DataStream<'s, O> {
        bridge(&self.ctx, op.into(), None::<DataStream<'s, I>>, side, start)
    }
}

impl<'s, I: Data> DataStream<'s, I> {
    /// Bridges this stream to tasks on threads of their own. Every instance waits for the
    /// first record of `side` (broadcast to all instances; later ones are ignored), then calls
    /// `start(side_record, task)` on the worker thread, which must not block: it spawns the
    /// work and hands it the [`BridgeTask`]. The instance forwards its input records to the
    /// task (buffering what arrived before the start), emits the task's records as they
    /// come, and ends when the task has finished and the input has ended. A task that fails
    /// (or whose output is dropped unfinished) fails the job with
    /// [`WeirError::Operator`]; so does a side stream that ends without a record.
    pub fn bridge<S: Data, O: Data>(
        self,
        op: impl Into<Op>,
        side: DataStream<'s, S>,
        start: impl FnMut(S, BridgeTask<I, O>) + 'static,
    ) -> DataStream<'s, O> {
        let ctx = Rc::clone(&self.ctx);
        bridge(&ctx, op.into(), Some(self), side, start)
    }
}

fn bridge<'s, I: Data, S: Data, O: Data>(
    ctx: &Rc<JobContext<'s>>,
    op: Op,
    input: Option<DataStream<'s, I>>,
    side: DataStream<'s, S>,
    mut start: impl FnMut(S, BridgeTask<I, O>) + 'static,
) -> DataStream<'s, O> {
    let mut edges = vec![(side.node, Partitioning::Broadcast)];
    let main_edge = input.as_ref().map(|i| i.edge_to(&op));
    if let (Some(i), Some(edge)) = (&input, main_edge) {
        edges.insert(0, (i.node, edge));
    }
    let kind = if input.is_some() {
        "bridge"
    } else {
        "bridge:source"
    };
    let handle = ctx.add_operator(&op, kind, &edges);
    ctx.refuse_checkpoints(&handle.name, "a bridge");
    let main = match (&input, main_edge) {
        (Some(i), Some(edge)) => i.routed(edge, &handle.placement),
        _ => empty(ctx.scope),
    };
    let side_stream = side.routed(Partitioning::Broadcast, &handle.placement);
    let metrics = Rc::clone(&handle.metrics);
    let (node, name) = (handle.node, handle.name.clone());
    let failure = Rc::clone(&ctx.failure);
    let instance = handle.instance;
    let instances = handle.placement.len();
    let max_delay = ctx.config.epoch_max_delay;
    let has_input = input.is_some();
    let worker = ctx.scope.worker();
    let out = main.binary_frontier::<_, VecBuilder<O>, _, _, _, _>(
        side_stream,
        Pipeline,
        Pipeline,
        &handle.name,
        move |cap, info| {
            let waker = worker.sync_activator_for(info.address.to_vec());
            let mut cap = instance.map(|_| cap);
            let mut to_task: Option<mpsc::Sender<I>> = None;
            let mut from_task: Option<mpsc::Receiver<BridgeMessage<O>>> = None;
            let mut buffered: Vec<I> = Vec::new();
            let mut finished = false;
            let mut epoch_started = Instant::now();
            let fail = move |message: String| {
                JobContext::fail(
                    &failure,
                    WeirError::Operator {
                        operator: name.clone(),
                        message,
                    },
                )
            };
            move |(input, input_frontier), (side, side_frontier), output| {
                let _busy = metrics.busy_in(node);
                let Some(instance) = instance else {
                    input.for_each(|_, _| {});
                    side.for_each(|_, _| {});
                    return;
                };
                side.for_each(|_, data| {
                    if from_task.is_none() && cap.is_some() {
                        if let Some(first) = data.drain(..).next() {
                            let (input_tx, input_rx) = mpsc::channel();
                            let (output_tx, output_rx) = mpsc::channel();
                            for record in buffered.drain(..) {
                                let _ = input_tx.send(record);
                            }
                            start(
                                first,
                                BridgeTask {
                                    instance,
                                    instances,
                                    input: input_rx,
                                    output: BridgeOutput {
                                        sender: output_tx,
                                        waker: waker.clone(),
                                        ended: false,
                                    },
                                },
                            );
                            to_task = Some(input_tx);
                            from_task = Some(output_rx);
                        }
                    }
                });
                input.for_each(|_, data| {
                    metrics.add_in(data.len());
                    match (&to_task, finished) {
                        (_, true) => {}
                        (Some(tx), false) => {
                            for record in data.drain(..) {
                                let _ = tx.send(record);
                            }
                        }
                        (None, false) => buffered.append(data),
                    }
                });
                if input_frontier.is_empty() {
                    // The input has ended: the task sees its channel disconnect.
                    to_task = None;
                }
                let Some(c) = cap.as_mut() else { return };
                if from_task.is_none() && side_frontier.is_empty() {
                    fail("its side input ended before any record started the task".into());
                    cap = None;
                    return;
                }
                // Outputs carry a time the input has not passed yet; without input (or after
                // it), a new epoch starts at the latency bound.
                if let Some(t) = input_frontier.frontier().iter().min() {
                    if *t > *c.time() {
                        c.downgrade(t);
                        epoch_started = Instant::now();
                    }
                }
                if let Some(rx) = &from_task {
                    let mut emitted = 0;
                    let mut session = output.session(c);
                    loop {
                        match rx.try_recv() {
                            Ok(BridgeMessage::Record(o)) => {
                                session.give(o);
                                emitted += 1;
                            }
                            Ok(BridgeMessage::Finished) => finished = true,
                            Ok(BridgeMessage::Failed(message)) => {
                                fail(message);
                                finished = true;
                            }
                            Err(_) => break,
                        }
                    }
                    drop(session);
                    metrics.add_out(emitted);
                    if emitted > 0
                        && (!has_input || input_frontier.is_empty())
                        && epoch_started.elapsed() >= max_delay
                    {
                        let next = *c.time() + 1;
                        c.downgrade(&next);
                        epoch_started = Instant::now();
                    }
                }
                if finished && (input_frontier.is_empty() || !has_input) {
                    cap = None;
                }
            }
        },
    );
    DataStream::from_parts(Rc::clone(ctx), out, handle.node, handle.placement)
}
