//! The control dataflow: a tiny broadcast channel next to the job's dataflow, through which
//! a failing worker tells every other worker (in every process) to stop, and through which
//! the workers of a multi-process job send heartbeats. Without it, a process whose workers
//! wait for progress from a peer that has exited cleanly, or that is stalled (stopped,
//! partitioned), would wait forever. Workers also announce how far their sources are, so
//! that an idle source instance elsewhere follows them (see `state/gate.rs`).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::vec::Broadcast;
use timely::dataflow::operators::{Input, Inspect};
use timely::dataflow::InputHandle;
use timely::worker::Worker;

/// What a worker tells the others.
#[derive(Clone, Debug, Serialize, Deserialize)]
enum Signal {
    /// It failed, and why.
    Failed(String),
    /// It is alive.
    Alive,
    /// A step of the checkpointing protocol.
    Checkpoint(CheckpointSignal),
    /// The epoch its sources lead to (`SourceGate::local_leading_epoch`).
    SourceEpoch(u64),
}

/// The steps of the checkpointing protocol (see `runtime/checkpointing.rs`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) enum CheckpointSignal {
    /// The worker has prepared its state (and its sinks' files) and may start; it restored
    /// checkpoint `restored` (0: none).
    Ready { restored: u64 },
    /// The coordinator begins checkpoint `id`.
    Begin { id: u64, full: bool },
    /// The highest epoch the worker's sources are in.
    Propose { id: u64, epoch: u64 },
    /// The worker has taken its snapshot (its sources may go on once all have).
    Snapshotted { id: u64 },
    /// The worker's file is written.
    Written {
        id: u64,
        file: crate::state::store::FileEntry,
        operators: Vec<crate::state::store::OperatorSummary>,
    },
    /// The worker's file could not be written.
    WriteFailed { id: u64, reason: String },
    /// The coordinator wrote the manifest: checkpoint `id` is complete.
    Committed { id: u64 },
    /// The coordinator wrote the final manifest, `id`, once every worker had finished: the
    /// job is done. (A worker may get it before another worker's `Finished`: signals from
    /// different workers can overtake each other.)
    FinalCommitted { id: u64 },
    /// Checkpoint `id` failed; the job goes on.
    Aborted { id: u64, reason: String },
    /// The worker's part of the job is done.
    Finished,
}

type Message = (usize, Signal);

/// How often a worker of a multi-process job sends a heartbeat.
const HEARTBEAT_EVERY: Duration = Duration::from_millis(500);

/// How often at most a worker announces its sources' epoch while none of them waits for
/// the sinks (one that waits has it announced at once).
const SOURCE_EPOCH_EVERY: Duration = Duration::from_millis(5);

/// The source epoch this worker announced last, and when.
struct SourceEpochSent {
    /// Whether the job has other workers to tell.
    shared: bool,
    epoch: u64,
    at: Instant,
}

/// When each process was last heard from, and since when this worker has been listening.
struct Liveness {
    /// Worker threads per process: worker `w` is in process `w / threads`.
    threads: usize,
    /// `None` until a first heartbeat: a process may still be building its dataflow.
    last_heard: Vec<Option<Instant>>,
    /// Reset after this worker was busy for a long stretch, so that heartbeats that queued up
    /// meanwhile are not mistaken for silence.
    listening_since: Instant,
}

pub(crate) struct Control {
    input: Option<InputHandle<u64, CapacityContainerBuilder<Vec<Message>>>>,
    /// Checkpoint signals received, with the worker that sent them, in arrival order.
    inbox: Rc<RefCell<Vec<(usize, CheckpointSignal)>>>,
    dataflow: usize,
    cause: Rc<RefCell<Option<String>>>,
    liveness: Rc<RefCell<Liveness>>,
    /// Whether this job has other processes to watch.
    watch: bool,
    last_beat: Instant,
    last_step: Instant,
    /// The highest source epoch the workers announced.
    source_epoch: Rc<Cell<u64>>,
    sent: SourceEpochSent,
}

impl Control {
    /// Installs the control dataflow on this worker (every worker must, in the same order).
    /// `threads` is the number of workers per process and `processes` the number of processes.
    pub(crate) fn install(worker: &mut Worker, threads: usize, processes: usize) -> Self {
        let mut input = InputHandle::new();
        let cause: Rc<RefCell<Option<String>>> = Rc::default();
        let now = Instant::now();
        let liveness = Rc::new(RefCell::new(Liveness {
            threads: threads.max(1),
            last_heard: vec![None; processes.max(1)],
            listening_since: now,
        }));
        let (seen, heard) = (Rc::clone(&cause), Rc::clone(&liveness));
        let inbox: Rc<RefCell<Vec<(usize, CheckpointSignal)>>> = Rc::default();
        let mailbox = Rc::clone(&inbox);
        let source_epoch: Rc<Cell<u64>> = Rc::default();
        let announced = Rc::clone(&source_epoch);
        let dataflow = worker.next_dataflow_index();
        worker.dataflow_named::<u64, _, _>("weir-control", |scope| {
            scope
                .input_from(&mut input)
                .container::<Vec<Message>>()
                .broadcast()
                .inspect(move |(w, signal)| {
                    let mut heard = heard.borrow_mut();
                    let process = w / heard.threads;
                    if let Some(t) = heard.last_heard.get_mut(process) {
                        *t = Some(Instant::now());
                    }
                    match signal {
                        Signal::Failed(m) => {
                            seen.borrow_mut()
                                .get_or_insert_with(|| format!("worker {w} failed: {m}"));
                        }
                        Signal::Checkpoint(c) => mailbox.borrow_mut().push((*w, c.clone())),
                        Signal::SourceEpoch(e) => announced.set(announced.get().max(*e)),
                        Signal::Alive => {}
                    }
                });
        });
        Control {
            input: Some(input),
            inbox,
            dataflow,
            cause,
            liveness,
            watch: processes > 1,
            // The first heartbeat goes out at the first tick.
            last_beat: now.checked_sub(HEARTBEAT_EVERY).unwrap_or(now),
            last_step: now,
            source_epoch,
            sent: SourceEpochSent {
                shared: threads * processes > 1,
                epoch: 0,
                at: now,
            },
        }
    }

    /// Tells every worker that this worker's sources lead to `epoch`, if it is higher than
    /// what this worker announced before: at once when `urgent` (a source waits for the
    /// sinks), otherwise at most every [`SOURCE_EPOCH_EVERY`].
    pub(crate) fn announce_source_epoch(&mut self, index: usize, epoch: u64, urgent: bool) {
        if !self.sent.shared || epoch <= self.sent.epoch {
            return;
        }
        let now = Instant::now();
        if !urgent && now - self.sent.at < SOURCE_EPOCH_EVERY {
            return;
        }
        if let Some(input) = self.input.as_mut() {
            input.send((index, Signal::SourceEpoch(epoch)));
            input.flush();
            self.sent.epoch = epoch;
            self.sent.at = now;
        }
    }

    /// The highest source epoch the workers announced.
    pub(crate) fn announced_source_epoch(&self) -> u64 {
        self.source_epoch.get()
    }

    /// Between two steps of the worker: sends a heartbeat when one is due, and notes how
    /// long the worker was away (a long step hides the heartbeats that arrived meanwhile).
    pub(crate) fn tick(&mut self, index: usize) {
        if !self.watch {
            return;
        }
        let now = Instant::now();
        if now - self.last_step > HEARTBEAT_EVERY * 2 {
            self.liveness.borrow_mut().listening_since = now;
        }
        self.last_step = now;
        if now - self.last_beat >= HEARTBEAT_EVERY {
            self.last_beat = now;
            if let Some(input) = self.input.as_mut() {
                input.send((index, Signal::Alive));
                input.flush();
            }
        }
    }

    /// Notes what the heartbeat connections heard (`heartbeats.rs`): `heard(process)` is
    /// when each process was last heard from there. They beat from threads of their own, so
    /// a process whose workers are all in one long call is still heard.
    pub(crate) fn note_heartbeats(&self, heard: impl Fn(usize) -> Option<Instant>) {
        let mut liveness = self.liveness.borrow_mut();
        for (process, last) in liveness.last_heard.iter_mut().enumerate() {
            if let Some(at) = heard(process) {
                *last = Some(last.map_or(at, |l| l.max(at)));
            }
        }
    }

    /// A process (other than `own`) not heard from for longer than `timeout` while this
    /// worker was listening: its index, how long it has been silent, and the limit it
    /// passed. A process never heard from yet (still building its dataflow, say) gets
    /// `first_timeout` instead.
    pub(crate) fn silent_process(
        &self,
        own: usize,
        timeout: Duration,
        first_timeout: Duration,
    ) -> Option<(usize, Duration, Duration)> {
        if !self.watch {
            return None;
        }
        let liveness = self.liveness.borrow();
        let now = Instant::now();
        liveness
            .last_heard
            .iter()
            .enumerate()
            .filter(|(p, _)| *p != own)
            .map(|(p, heard)| match heard {
                Some(t) => (p, now - (*t).max(liveness.listening_since), timeout),
                None => (
                    p,
                    now - liveness.listening_since,
                    first_timeout.max(timeout),
                ),
            })
            .find(|(_, silent, limit)| silent > limit)
    }

    /// Tells every worker (itself included) a step of the checkpointing protocol.
    pub(crate) fn send_checkpoint(&mut self, index: usize, signal: CheckpointSignal) {
        if let Some(input) = self.input.as_mut() {
            input.send((index, Signal::Checkpoint(signal)));
            input.flush();
        }
    }

    /// The checkpoint signals received since the last call.
    pub(crate) fn take_checkpoint_signals(&self) -> Vec<(usize, CheckpointSignal)> {
        std::mem::take(&mut *self.inbox.borrow_mut())
    }

    /// Where the first failure another worker announced appears.
    pub(crate) fn remote_failure(&self) -> Rc<RefCell<Option<String>>> {
        Rc::clone(&self.cause)
    }

    /// Ends this worker's part of the control dataflow (the job finished here).
    pub(crate) fn close(&mut self) {
        self.input = None;
    }

    /// Drops this worker's job dataflows and tells every worker that this one failed.
    pub(crate) fn announce(&mut self, worker: &mut Worker, index: usize, message: String) {
        for id in worker.installed_dataflows() {
            if id != self.dataflow {
                worker.drop_dataflow(id);
            }
        }
        if let Some(mut input) = self.input.take() {
            input.send((index, Signal::Failed(message)));
            input.advance_to(1);
        }
        // A few steps push the message into the channels (and onto the wire); the send
        // threads deliver it before they shut down.
        for _ in 0..8 {
            worker.step_or_park(Some(Duration::from_millis(1)));
        }
        worker.drop_dataflow(self.dataflow);
    }
}
