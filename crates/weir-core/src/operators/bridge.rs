//! Bridges between the dataflow and work that runs on threads of its own (an ML node, an
//! external process, a client of another system): each instance waits for a record of a
//! broadcast side stream (e.g. the address of a coordinator), starts a task with it, feeds
//! the task its input records through a channel, and emits what the task sends back, until
//! the task finishes. A task failure fails the job.
//!
//! The channel to the task is bounded ([`BRIDGE_INPUT_CAPACITY`]): records the task has not
//! taken wait in the operator, which holds its output back at their epoch meanwhile, so that
//! the operators after it (and so the sinks that flow control watches) do not move on and the
//! sources stop within their window of epochs in flight. A slow task gets back-pressure.

use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::operator::empty;
use timely::dataflow::operators::generic::{Operator, OutputBuilderSession};
use timely::dataflow::operators::Capability;
use timely::progress::frontier::MutableAntichain;
use timely::scheduling::{Activator, SyncActivator};

use crate::error::WeirError;
use crate::job::{Epoch, Job, JobContext, Op};
use crate::plan::Partitioning;
use crate::stream::{Data, DataStream, VecBuilder};

/// How many input records a bridge task's channel holds; more wait in the operator (see the
/// module docs).
pub const BRIDGE_INPUT_CAPACITY: usize = 1024;

/// How soon an instance whose task's channel is full tries again.
const RETRY_FULL_CHANNEL: Duration = Duration::from_millis(1);

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
    /// The instance's input records (a bounded channel: see [`BRIDGE_INPUT_CAPACITY`]);
    /// disconnected when the input has ended (at once for a bridge without input).
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
    start: impl FnMut(S, BridgeTask<I, O>) + 'static,
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
    let node = handle.node;
    let worker = ctx.scope.worker();
    let setup = BridgeSetup {
        name: handle.name.clone(),
        failure: Rc::clone(&ctx.failure),
        instance: handle.instance,
        instances: handle.placement.len(),
        max_delay: ctx.config.epoch_max_delay,
        has_input: input.is_some(),
        metrics: Rc::clone(&metrics),
    };
    let out = main.binary_frontier::<_, VecBuilder<O>, _, _, _, _>(
        side_stream,
        Pipeline,
        Pipeline,
        &handle.name,
        move |cap, info| {
            let waker = worker.sync_activator_for(info.address.to_vec());
            let retry = worker.activator_for(Rc::clone(&info.address));
            let mut bridge = BridgeInstance::new(setup, cap, (waker, retry), start);
            move |(input, input_frontier), (side, side_frontier), output| {
                let _busy = metrics.busy_in(node);
                if bridge.setup.instance.is_none() {
                    input.for_each(|_, _| {});
                    side.for_each(|_, _| {});
                    return;
                }
                side.for_each(|_, data| bridge.receive_side(data));
                input.for_each(|cap, data| {
                    let epoch = cap.least().copied().unwrap_or_default();
                    bridge.receive_input(epoch, data)
                });
                bridge.feed_task();
                if input_frontier.is_empty() && bridge.pending.is_empty() {
                    // The input has ended: the task sees its channel disconnect.
                    bridge.to_task = None;
                }
                bridge.emit(input_frontier, side_frontier.is_empty(), output);
            }
        },
    );
    DataStream::from_parts(Rc::clone(ctx), out, handle.node, handle.placement)
}

/// What every instance of a bridge operator knows about it.
struct BridgeSetup {
    name: String,
    failure: Rc<std::cell::RefCell<Option<WeirError>>>,
    /// This worker's instance, if it hosts one.
    instance: Option<usize>,
    instances: usize,
    /// The latency bound: a bridge without (or after its) input starts a new epoch after it.
    max_delay: std::time::Duration,
    has_input: bool,
    metrics: Rc<crate::report::OperatorMetrics>,
}

/// One instance of a bridge operator: the task it started (once the first side record
/// came), the channels to and from it, and the output capability.
struct BridgeInstance<I, S, O, F> {
    setup: BridgeSetup,
    /// Released when the task has finished and the input ended (or the task never started).
    cap: Option<Capability<Epoch>>,
    waker: SyncActivator,
    /// Schedules this instance again while its task's channel is full.
    retry: Activator,
    start: F,
    to_task: Option<mpsc::SyncSender<I>>,
    from_task: Option<mpsc::Receiver<BridgeMessage<O>>>,
    /// Input the task has not taken yet (before it started, or while its channel is full),
    /// oldest first, with its epochs.
    pending: VecDeque<(Epoch, I)>,
    finished: bool,
    epoch_started: Instant,
    _side: std::marker::PhantomData<S>,
}

impl<I: Data, S: Data, O: Data, F: FnMut(S, BridgeTask<I, O>)> BridgeInstance<I, S, O, F> {
    fn new(
        setup: BridgeSetup,
        cap: Capability<Epoch>,
        (waker, retry): (SyncActivator, Activator),
        start: F,
    ) -> Self {
        let cap = setup.instance.map(|_| cap);
        BridgeInstance {
            setup,
            cap,
            waker,
            retry,
            start,
            to_task: None,
            from_task: None,
            pending: VecDeque::new(),
            finished: false,
            epoch_started: Instant::now(),
            _side: std::marker::PhantomData,
        }
    }

    /// The first side record starts the task; later ones are ignored.
    fn receive_side(&mut self, data: &mut Vec<S>) {
        if self.from_task.is_some() || self.cap.is_none() {
            return;
        }
        let (Some(first), Some(instance)) = (data.drain(..).next(), self.setup.instance) else {
            return;
        };
        let (input_tx, input_rx) = mpsc::sync_channel(BRIDGE_INPUT_CAPACITY);
        let (output_tx, output_rx) = mpsc::channel();
        let task = BridgeTask {
            instance,
            instances: self.setup.instances,
            input: input_rx,
            output: BridgeOutput {
                sender: output_tx,
                waker: self.waker.clone(),
                ended: false,
            },
        };
        (self.start)(first, task);
        self.to_task = Some(input_tx);
        self.from_task = Some(output_rx);
    }

    /// Input of `epoch` waits for the task; after the task finished, it is dropped.
    fn receive_input(&mut self, epoch: Epoch, data: &mut Vec<I>) {
        self.setup.metrics.add_in(data.len());
        if !self.finished {
            self.pending
                .extend(data.drain(..).map(|record| (epoch, record)));
        }
    }

    /// Hands the task what its channel takes; with records left over, tries again soon.
    fn feed_task(&mut self) {
        let Some(tx) = &self.to_task else { return };
        while let Some((epoch, record)) = self.pending.pop_front() {
            match tx.try_send(record) {
                Ok(()) => {}
                Err(mpsc::TrySendError::Full(record)) => {
                    self.pending.push_front((epoch, record));
                    self.retry.activate_after(RETRY_FULL_CHANNEL);
                    return;
                }
                // The task let its input go: it takes no more.
                Err(mpsc::TrySendError::Disconnected(_)) => self.pending.clear(),
            }
        }
    }

    /// Emits what the task sent, at a time the input has not passed yet (without input, or
    /// after it, a new epoch starts at the latency bound), and releases the capability once
    /// the task has finished.
    fn emit(
        &mut self,
        input_frontier: &MutableAntichain<Epoch>,
        side_ended: bool,
        output: &mut OutputBuilderSession<'_, Epoch, VecBuilder<O>>,
    ) {
        let Some(c) = self.cap.as_mut() else { return };
        if self.from_task.is_none() && side_ended {
            self.fail("its side input ended before any record started the task".into());
            self.cap = None;
            return;
        }
        // Not past the input's frontier, nor past records the task has not taken yet.
        let waiting = self.pending.front().map(|(epoch, _)| *epoch);
        let held = input_frontier.frontier().iter().min().copied().into_iter();
        if let Some(t) = held.chain(waiting).min() {
            if t > *c.time() {
                c.downgrade(&t);
                self.epoch_started = Instant::now();
            }
        }
        let (emitted, failed) = match &self.from_task {
            Some(rx) => drain_task(rx, c, output, &mut self.finished),
            None => (0, None),
        };
        if let Some(message) = failed {
            self.fail(message);
        }
        self.setup.metrics.add_out(emitted);
        let c = self.cap.as_mut().expect("checked above");
        if emitted > 0
            && (!self.setup.has_input || input_frontier.is_empty())
            && self.epoch_started.elapsed() >= self.setup.max_delay
        {
            let next = *c.time() + 1;
            c.downgrade(&next);
            self.epoch_started = Instant::now();
        }
        if self.finished && (input_frontier.is_empty() || !self.setup.has_input) {
            self.pending.clear();
            self.cap = None;
        }
    }

    fn fail(&self, message: String) {
        JobContext::fail(
            &self.setup.failure,
            WeirError::Operator {
                operator: self.setup.name.clone(),
                message,
            },
        )
    }
}

/// Emits every record the task has sent so far at `cap`; returns how many, and the task's
/// failure if it sent one (`finished` is set when it finished or failed).
fn drain_task<O: Data>(
    rx: &mpsc::Receiver<BridgeMessage<O>>,
    cap: &Capability<Epoch>,
    output: &mut OutputBuilderSession<'_, Epoch, VecBuilder<O>>,
    finished: &mut bool,
) -> (usize, Option<String>) {
    let mut emitted = 0;
    let mut failed = None;
    let mut session = output.session(cap);
    loop {
        match rx.try_recv() {
            Ok(BridgeMessage::Record(o)) => {
                session.give(o);
                emitted += 1;
            }
            Ok(BridgeMessage::Finished) => *finished = true,
            Ok(BridgeMessage::Failed(message)) => {
                failed.get_or_insert(message);
                *finished = true;
            }
            Err(_) => break,
        }
    }
    (emitted, failed)
}
