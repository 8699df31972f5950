//! The checkpointing protocol, run by every worker between steps of the dataflow.
//!
//! Worker 0 coordinates. A checkpoint `k` goes:
//! 1. **Begin.** The coordinator announces `k` (full, or only the keys that changed).
//! 2. **Propose.** Every worker *freezes* its sources (they may fill their current epoch
//!    but not start the next) and proposes the highest epoch they are in.
//! 3. **Align.** With every proposal in, each worker knows the checkpoint's epoch `L`, the
//!    highest proposed. Its sources finish their current epoch and wait at `L + 1`.
//! 4. **Snapshot.** Once its sources wait past `L` and every operator instance it hosts has
//!    applied every epoch up to `L`, the worker snapshots their state on its own thread
//!    (no record after `L` exists anywhere yet), hands the bytes to a writer thread, and
//!    says so. When every worker has, the sources go on.
//! 5. **Commit.** Each worker's file is written and fsynced; the coordinator then writes
//!    the manifest, the commit, and tells every worker, whose sinks make the files of the
//!    epochs up to `L` visible. A write that fails aborts checkpoint `k` (the job goes on,
//!    up to the tolerable number of failures in a row).
//!
//! At the start, every worker prepares (its sinks finish or discard the files of the
//! checkpoint it restored from) before any source emits. At the end, a *final* manifest
//! commits the files written after the last checkpoint.

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use timely::scheduling::Activator;

use crate::config::CheckpointConfig;
use crate::error::WeirError;
use crate::job::Epoch;
use crate::report::LiveMetrics;
use crate::runtime::control::{CheckpointSignal, Control};
use crate::state::gate::{GateMode, SourceGate};
use crate::state::registry::{Barrier, StateRegistry};
use crate::state::snapshot::{StatePart, WorkerSnapshot};
use crate::state::store::{CheckpointDir, FileEntry, Manifest, OperatorSummary, FORMAT};

/// One checkpoint as the job report and `/metrics` show it.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CheckpointStats {
    /// Its number.
    pub id: u64,
    /// The epoch it covers.
    pub epoch: u64,
    /// Milliseconds from its start to its manifest.
    pub duration_ms: u64,
    /// Milliseconds the sources took to align on its epoch.
    pub alignment_ms: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Whether it holds all state (else the changes since the last).
    pub full: bool,
}

/// Where this worker is in the protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Preparing; sources wait until every worker is ready.
    Starting,
    /// Between checkpoints.
    Idle,
    /// Sources frozen; waiting for every worker's proposal.
    Proposing,
    /// Waiting for the sources to reach the epoch after `L` and the operators to apply `L`.
    Aligning(Epoch),
    /// Snapshot taken; waiting for every worker's (sources still held).
    Snapshotted,
    /// Sources going on; waiting for the commit.
    Committing,
}

/// The checkpoint in progress.
struct Round {
    id: u64,
    full: bool,
    started: Instant,
    proposals: BTreeMap<usize, Epoch>,
    epoch: Epoch,
    aligned: Option<Instant>,
    snapshotted: BTreeSet<usize>,
    /// Coordinator: the workers' files and summaries, and the first failure.
    written: BTreeMap<usize, (FileEntry, Vec<OperatorSummary>)>,
    failure: Option<String>,
}

/// What the writer thread reports.
type WriteOutcome = (u64, Result<(FileEntry, Vec<OperatorSummary>), String>);

/// One worker's side of the protocol.
pub(crate) struct Checkpointer {
    config: CheckpointConfig,
    dir: CheckpointDir,
    worker: usize,
    workers: usize,
    registry: Rc<StateRegistry>,
    gate: Rc<SourceGate>,
    sources: Vec<Activator>,
    phase: Phase,
    ready: BTreeSet<usize>,
    round: Option<Round>,
    next_id: u64,
    /// The full checkpoint incremental ones build on (coordinator).
    base: Option<u64>,
    idle_since: Instant,
    writes: (mpsc::Sender<WriteOutcome>, mpsc::Receiver<WriteOutcome>),
    /// The threads writing this worker's snapshots: joined when the checkpointer drops, so
    /// that a job that failed leaves no writer behind to collide with the next run's files.
    writers: Vec<std::thread::JoinHandle<()>>,
    failures_in_a_row: u32,
    /// Workers whose part of the job is done; whether this one is, and said so.
    finished: BTreeSet<usize>,
    finishing: bool,
    finish_sent: bool,
    final_committed: bool,
    stats: Vec<CheckpointStats>,
    job: Vec<String>,
    /// The process's live metrics (coordinator): checkpoints completed and failed.
    live: Option<LiveMetrics>,
    /// Signals of a round this worker has not begun yet: signals from different workers
    /// may overtake each other, so another worker's proposal can arrive before the
    /// coordinator's `Begin`. They are applied when the round begins.
    early: Vec<(usize, CheckpointSignal)>,
}

/// The round a signal belongs to, if it belongs to one.
fn signal_round(signal: &CheckpointSignal) -> Option<u64> {
    match signal {
        CheckpointSignal::Propose { id, .. }
        | CheckpointSignal::Snapshotted { id }
        | CheckpointSignal::Written { id, .. }
        | CheckpointSignal::WriteFailed { id, .. }
        | CheckpointSignal::Begin { id, .. }
        | CheckpointSignal::Committed { id }
        | CheckpointSignal::FinalCommitted { id }
        | CheckpointSignal::Aborted { id, .. } => Some(*id),
        CheckpointSignal::Ready { .. } | CheckpointSignal::Finished => None,
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Checkpointer {
    /// The protocol for this worker; `next_id` follows the restored checkpoint.
    pub(crate) fn new(
        config: CheckpointConfig,
        worker: usize,
        workers: usize,
        registry: Rc<StateRegistry>,
        gate: Rc<SourceGate>,
        sources: Vec<Activator>,
        live: Option<LiveMetrics>,
    ) -> Result<Self, WeirError> {
        let dir = CheckpointDir::open(&config.dir).map_err(checkpoint_error)?;
        // Only the coordinator knows about every checkpoint.
        let live = live.filter(|_| worker == 0);
        if let Some(live) = &live {
            live.checkpoints_started();
        }
        let next_id = registry
            .restored
            .as_ref()
            .map_or(1, |r| r.manifest().id + 1);
        let job = registry.claimed.borrow().iter().cloned().collect();
        let base = registry.restored.as_ref().map(|r| r.manifest().base);
        Ok(Checkpointer {
            config,
            dir,
            worker,
            workers,
            registry,
            gate,
            sources,
            phase: Phase::Starting,
            ready: BTreeSet::new(),
            round: None,
            next_id,
            // Increments go on from the restored chain's full checkpoint.
            base,
            idle_since: Instant::now(),
            writes: mpsc::channel(),
            writers: Vec::new(),
            failures_in_a_row: 0,
            finished: BTreeSet::new(),
            finishing: false,
            finish_sent: false,
            final_committed: false,
            stats: Vec::new(),
            job,
            live,
            early: Vec::new(),
        })
    }

    fn coordinator(&self) -> bool {
        self.worker == 0
    }

    /// The checkpoints completed so far (as the coordinator saw them).
    pub(crate) fn stats(&self) -> &[CheckpointStats] {
        &self.stats
    }

    /// Whether the final commit has happened (the job's output is all visible).
    pub(crate) fn done(&self) -> bool {
        self.final_committed
    }

    fn set_gate(&self, mode: GateMode) {
        self.gate.set(mode);
        self.sources.iter().for_each(Activator::activate);
        self.gate.wake_waiters();
    }

    /// Prepares this worker (its sinks settle the files of earlier runs) and says it is
    /// ready; called once, after the job is built.
    pub(crate) fn start(&mut self, control: &mut Control) -> Result<(), WeirError> {
        let restored = self
            .registry
            .restored
            .as_ref()
            .map_or(0, |r| r.manifest().id);
        if self.coordinator() {
            // No worker writes a checkpoint before every worker is ready.
            let gone = self
                .dir
                .discard_from(self.next_id)
                .map_err(checkpoint_error)?;
            if !gone.is_empty() {
                tracing::info!(
                    "removed checkpoints {gone:?} of {}: a failed run began them after the one restored",
                    self.config.dir.display()
                );
            }
        }
        self.registry.prepare(restored).map_err(checkpoint_error)?;
        control.send_checkpoint(self.worker, CheckpointSignal::Ready { restored });
        Ok(())
    }

    /// This worker's part of the job is done: once every worker's is, the final manifest
    /// commits what the sinks wrote after the last checkpoint.
    pub(crate) fn finish(&mut self) {
        self.finishing = true;
    }

    /// One turn of the protocol, between two steps of the worker.
    pub(crate) fn tick(&mut self, control: &mut Control) -> Result<(), WeirError> {
        for (from, signal) in control.take_checkpoint_signals() {
            self.on_signal(control, from, signal)?;
        }
        self.poll_writer(control);
        match self.phase {
            Phase::Idle if self.finishing && !self.finish_sent => {
                control.send_checkpoint(self.worker, CheckpointSignal::Finished);
                self.finish_sent = true;
            }
            Phase::Idle if self.coordinator() && !self.finishing && self.due() => {
                self.begin(control);
            }
            Phase::Aligning(epoch) => self.try_snapshot(control, epoch)?,
            _ => {}
        }
        Ok(())
    }

    fn due(&self) -> bool {
        self.idle_since.elapsed() >= self.config.interval && self.finished.is_empty()
    }

    fn begin(&mut self, control: &mut Control) {
        let id = self.next_id;
        let full = self.base.is_none() || (id - self.base.unwrap_or(id)) >= self.config.full_every;
        control.send_checkpoint(self.worker, CheckpointSignal::Begin { id, full });
        // Not again until this one is over.
        self.idle_since = Instant::now() + std::time::Duration::from_secs(3600);
    }

    /// Every worker must have restored the checkpoint this one did.
    fn check_same_restore(&self, from: usize, theirs: u64) -> Result<(), WeirError> {
        let ours = self
            .registry
            .restored
            .as_ref()
            .map_or(0, |r| r.manifest().id);
        if theirs == ours {
            return Ok(());
        }
        let name = |id: u64| match id {
            0 => "no checkpoint".to_string(),
            id => format!("checkpoint {id}"),
        };
        Err(WeirError::Checkpoint(format!(
            "worker {from} restored {} but worker {} restored {} from {}: every process of a \
             job must see the same checkpoint directory (a shared file system for several hosts)",
            name(theirs),
            self.worker,
            name(ours),
            self.config.dir.display()
        )))
    }

    fn on_signal(
        &mut self,
        control: &mut Control,
        from: usize,
        signal: CheckpointSignal,
    ) -> Result<(), WeirError> {
        match signal {
            CheckpointSignal::Ready { restored } => {
                self.check_same_restore(from, restored)?;
                self.ready.insert(from);
                if self.phase == Phase::Starting && self.ready.len() == self.workers {
                    self.phase = Phase::Idle;
                    self.idle_since = Instant::now();
                    self.set_gate(GateMode::Open);
                }
            }
            CheckpointSignal::Begin { id, full } => self.on_begin(control, id, full)?,
            CheckpointSignal::Propose { id, .. }
            | CheckpointSignal::Snapshotted { id }
            | CheckpointSignal::Written { id, .. }
            | CheckpointSignal::WriteFailed { id, .. }
                if self.is_early(id) =>
            {
                self.early.push((from, signal));
            }
            CheckpointSignal::Propose { id, epoch } => self.on_propose(id, from, epoch),
            CheckpointSignal::Snapshotted { id } => self.on_snapshotted(id, from),
            CheckpointSignal::Written {
                id,
                file,
                operators,
            } => self.on_written(control, id, from, Ok((file, operators)))?,
            CheckpointSignal::WriteFailed { id, reason } => {
                self.on_written(control, id, from, Err(reason))?
            }
            CheckpointSignal::Committed { id } => self.on_committed(id)?,
            CheckpointSignal::FinalCommitted { id } => self.on_final_committed(id)?,
            CheckpointSignal::Aborted { id, reason } => self.on_aborted(id, &reason)?,
            CheckpointSignal::Finished => {
                if let Some(done) = self.on_finished(from)? {
                    control.send_checkpoint(self.worker, done);
                }
            }
        }
        Ok(())
    }

    /// Whether a signal of round `id` arrived before this worker began the round (it may
    /// still be finishing the previous one).
    fn is_early(&self, id: u64) -> bool {
        id >= self.next_id && self.round.as_ref().is_none_or(|r| r.id < id)
    }

    fn on_begin(&mut self, control: &mut Control, id: u64, full: bool) -> Result<(), WeirError> {
        self.start_round(control, id, full);
        // What other workers sent for this round before its `Begin` reached this one.
        let (now, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.early)
            .into_iter()
            .partition(|(_, signal)| signal_round(signal) == Some(id));
        self.early = later;
        for (from, signal) in now {
            self.on_signal(control, from, signal)?;
        }
        Ok(())
    }

    fn start_round(&mut self, control: &mut Control, id: u64, full: bool) {
        self.gate.set(GateMode::Freeze);
        self.round = Some(Round {
            id,
            full,
            started: Instant::now(),
            proposals: BTreeMap::new(),
            epoch: 0,
            aligned: None,
            snapshotted: BTreeSet::new(),
            written: BTreeMap::new(),
            failure: None,
        });
        self.phase = Phase::Proposing;
        let epoch = self.gate.highest_epoch();
        control.send_checkpoint(self.worker, CheckpointSignal::Propose { id, epoch });
    }

    fn round_for(&mut self, id: u64) -> Option<&mut Round> {
        self.round.as_mut().filter(|r| r.id == id)
    }

    fn on_propose(&mut self, id: u64, from: usize, epoch: Epoch) {
        let workers = self.workers;
        let Some(round) = self.round_for(id) else {
            return;
        };
        round.proposals.insert(from, epoch);
        if round.proposals.len() == workers {
            let limit = round.proposals.values().copied().max().unwrap_or(0);
            round.epoch = limit;
            round.aligned = Some(Instant::now());
            self.phase = Phase::Aligning(limit);
            self.set_gate(GateMode::Limit(limit));
        }
    }

    /// Snapshots once the sources wait past `epoch` and every instance applied it.
    fn try_snapshot(&mut self, control: &mut Control, epoch: Epoch) -> Result<(), WeirError> {
        if !self.gate.all_past(epoch) || !self.registry.applied_through(epoch) {
            return Ok(());
        }
        let (id, full) = match &self.round {
            Some(r) => (r.id, r.full),
            None => return Ok(()),
        };
        let barrier = Barrier {
            checkpoint: id,
            epoch,
            full,
        };
        let snapshot = self
            .registry
            .snapshot(barrier, self.worker)
            .map_err(checkpoint_error)?;
        self.write_in_background(id, snapshot);
        self.phase = Phase::Snapshotted;
        control.send_checkpoint(self.worker, CheckpointSignal::Snapshotted { id });
        Ok(())
    }

    /// Encodes and writes the snapshot on a thread of its own, so the dataflow goes on.
    fn write_in_background(&mut self, id: u64, snapshot: WorkerSnapshot) {
        let (dir, worker, done) = (self.dir.clone(), self.worker, self.writes.0.clone());
        let summaries = summarize(&snapshot);
        self.writers.retain(|w| !w.is_finished());
        self.writers.push(std::thread::spawn(move || {
            let outcome = snapshot
                .encode()
                .and_then(|bytes| dir.write_worker(id, worker, &bytes))
                .map(|file| (file, summaries))
                .map_err(|e| e.to_string());
            let _ = done.send((id, outcome));
        }));
    }

    fn poll_writer(&mut self, control: &mut Control) {
        self.writers.retain(|w| !w.is_finished());
        while let Ok((id, outcome)) = self.writes.1.try_recv() {
            let signal = match outcome {
                Ok((file, operators)) => CheckpointSignal::Written {
                    id,
                    file,
                    operators,
                },
                Err(reason) => CheckpointSignal::WriteFailed { id, reason },
            };
            control.send_checkpoint(self.worker, signal);
        }
    }

    fn on_snapshotted(&mut self, id: u64, from: usize) {
        let workers = self.workers;
        let Some(round) = self.round_for(id) else {
            return;
        };
        round.snapshotted.insert(from);
        if round.snapshotted.len() == workers {
            // No worker holds anything after the epoch any more: the sources go on.
            self.phase = Phase::Committing;
            self.set_gate(GateMode::Open);
        }
    }

    fn on_written(
        &mut self,
        control: &mut Control,
        id: u64,
        from: usize,
        outcome: Result<(FileEntry, Vec<OperatorSummary>), String>,
    ) -> Result<(), WeirError> {
        if !self.coordinator() {
            return Ok(());
        }
        let workers = self.workers;
        let Some(round) = self.round_for(id) else {
            return Ok(());
        };
        match outcome {
            Ok(written) => {
                round.written.insert(from, written);
            }
            Err(reason) => {
                let reason = format!("worker {from}: {reason}");
                round.failure.get_or_insert(reason);
                round.written.insert(
                    from,
                    (
                        FileEntry {
                            worker: from,
                            bytes: 0,
                            crc32: 0,
                        },
                        Vec::new(),
                    ),
                );
            }
        }
        if round.written.len() < workers {
            return Ok(());
        }
        match self.commit(id) {
            Ok(()) => control.send_checkpoint(self.worker, CheckpointSignal::Committed { id }),
            Err(reason) => {
                control.send_checkpoint(self.worker, CheckpointSignal::Aborted { id, reason })
            }
        }
        Ok(())
    }

    /// Writes the manifest of the round (coordinator).
    fn commit(&mut self, id: u64) -> Result<(), String> {
        let round = self.round.as_ref().expect("the round being committed");
        if let Some(reason) = &round.failure {
            return Err(reason.clone());
        }
        let base = if round.full {
            id
        } else {
            self.base.unwrap_or(id)
        };
        let manifest = Manifest {
            format: FORMAT,
            job: self.job.clone(),
            id,
            epoch: round.epoch,
            workers: self.workers,
            base,
            files: round.written.values().map(|(f, _)| f.clone()).collect(),
            operators: merge_summaries(round.written.values().map(|(_, s)| s)),
            completed_ms: now_ms(),
            duration_ms: round.started.elapsed().as_millis() as u64,
            alignment_ms: round
                .aligned
                .map_or(0, |a| (a - round.started).as_millis() as u64),
            final_: false,
        };
        self.dir.commit(&manifest).map_err(|e| e.to_string())?;
        if round.full {
            self.base = Some(id);
        }
        let stats = CheckpointStats {
            id,
            epoch: round.epoch,
            duration_ms: manifest.duration_ms,
            alignment_ms: manifest.alignment_ms,
            bytes: manifest.bytes(),
            full: round.full,
        };
        if let Some(live) = &self.live {
            live.checkpoint_completed(&stats);
        }
        self.stats.push(stats);
        if let Err(e) = self.dir.retain(self.config.retain) {
            tracing::warn!("cannot delete old checkpoints: {e}");
        }
        Ok(())
    }

    fn end_round(&mut self, id: u64) {
        if self.round.as_ref().is_some_and(|r| r.id == id) {
            self.round = None;
        }
        self.next_id = self.next_id.max(id + 1);
        self.phase = Phase::Idle;
        self.idle_since = Instant::now();
        // A round that failed before its snapshot must not leave the sources held.
        self.set_gate(GateMode::Open);
    }

    fn on_committed(&mut self, id: u64) -> Result<(), WeirError> {
        self.failures_in_a_row = 0;
        self.registry.committed(id).map_err(checkpoint_error)?;
        self.end_round(id);
        Ok(())
    }

    /// The final manifest is written: everything the sinks wrote is visible now, and this
    /// worker is done, whether or not every other worker's `Finished` has reached it yet (the
    /// coordinator had them all). Waiting for them too hung a worker whose `FinalCommitted`
    /// overtook another worker's `Finished`.
    fn on_final_committed(&mut self, id: u64) -> Result<(), WeirError> {
        self.on_committed(id)?;
        self.final_committed = true;
        Ok(())
    }

    fn all_finished(&self) -> bool {
        (0..self.workers).all(|w| self.finished.contains(&w))
    }

    fn on_aborted(&mut self, id: u64, reason: &str) -> Result<(), WeirError> {
        self.failures_in_a_row += 1;
        tracing::error!("checkpoint {id} failed: {reason}");
        if let Some(live) = &self.live {
            live.checkpoint_failed();
        }
        // The failed snapshot took the changed keys with it: the next checkpoint is full.
        self.base = None;
        self.end_round(id);
        if self.failures_in_a_row > self.config.tolerable_failures {
            return Err(WeirError::Checkpoint(format!(
                "checkpoint {id} failed ({reason}), {} failure(s) in a row, more than the {} tolerated (--tolerable-checkpoint-failures)",
                self.failures_in_a_row, self.config.tolerable_failures
            )));
        }
        Ok(())
    }

    /// Worker `from` has finished; once every worker has, the coordinator writes the final
    /// manifest and returns the signal that says so.
    fn on_finished(&mut self, from: usize) -> Result<Option<CheckpointSignal>, WeirError> {
        self.finished.insert(from);
        if !self.all_finished() || self.final_committed {
            return Ok(None);
        }
        let id = self.next_id;
        if self.coordinator() {
            let manifest = Manifest {
                format: FORMAT,
                job: self.job.clone(),
                id,
                epoch: Epoch::MAX,
                workers: self.workers,
                base: self.base.unwrap_or(id),
                files: Vec::new(),
                operators: Vec::new(),
                completed_ms: now_ms(),
                duration_ms: 0,
                alignment_ms: 0,
                final_: true,
            };
            self.dir.commit(&manifest).map_err(checkpoint_error)?;
            return Ok(Some(CheckpointSignal::FinalCommitted { id }));
        }
        Ok(None)
    }
}

fn checkpoint_error(e: crate::state::StateError) -> WeirError {
    WeirError::Checkpoint(e.to_string())
}

/// Entries and bytes per operator in one worker's snapshot.
fn summarize(snapshot: &WorkerSnapshot) -> Vec<OperatorSummary> {
    let mut by_name: BTreeMap<String, OperatorSummary> = BTreeMap::new();
    for o in &snapshot.operators {
        let s = by_name
            .entry(o.operator.clone())
            .or_insert_with(|| OperatorSummary {
                name: o.operator.clone(),
                ..OperatorSummary::default()
            });
        let (entries, bytes) = match &o.part {
            StatePart::Keyed { entries, .. } => (entries.len() as u64, entries.bytes()),
            StatePart::Splits(s) => (s.len() as u64, s.iter().map(|x| x.len() as u64).sum()),
            StatePart::Instance(b) => (1, b.len() as u64),
        };
        s.entries += entries;
        s.bytes += bytes;
    }
    by_name.into_values().collect()
}

fn merge_summaries<'a>(
    all: impl Iterator<Item = &'a Vec<OperatorSummary>>,
) -> Vec<OperatorSummary> {
    let mut by_name: BTreeMap<String, OperatorSummary> = BTreeMap::new();
    for s in all.flatten() {
        let m = by_name
            .entry(s.name.clone())
            .or_insert_with(|| OperatorSummary {
                name: s.name.clone(),
                ..OperatorSummary::default()
            });
        m.entries += s.entries;
        m.bytes += s.bytes;
    }
    by_name.into_values().collect()
}

impl Drop for Checkpointer {
    /// Waits for the snapshot writers: after a failure, a writer still renaming its file
    /// into a checkpoint directory would collide with the restored run's writer of the same
    /// checkpoint id (the same temporary file).
    fn drop(&mut self) {
        for writer in self.writers.drain(..) {
            let _ = writer.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    fn checkpointer(dir: &std::path::Path, worker: usize, workers: usize) -> Checkpointer {
        let registry = Rc::new(StateRegistry {
            enabled: true,
            restored: None,
            entries: RefCell::default(),
            claimed: RefCell::default(),
            watched: RefCell::default(),
        });
        let gate = Rc::new(SourceGate::new(GateMode::Closed));
        Checkpointer::new(
            CheckpointConfig::new(dir),
            worker,
            workers,
            registry,
            gate,
            Vec::new(),
            None,
        )
        .expect("a checkpointer")
    }

    /// The coordinator writes the final manifest once every worker has finished and says so;
    /// another worker is done when that word arrives, also before a third worker's
    /// `Finished` has reached it (signals from different workers overtake each other). It
    /// waited for every `Finished` too, and so hung for good in that order.
    #[test]
    fn a_worker_is_done_at_the_final_commit_even_before_every_finished_reached_it() {
        let tmp = tempfile::tempdir().unwrap();
        let mut coordinator = checkpointer(tmp.path(), 0, 3);
        assert!(coordinator.on_finished(2).unwrap().is_none());
        assert!(coordinator.on_finished(0).unwrap().is_none());
        let Some(CheckpointSignal::FinalCommitted { id }) = coordinator.on_finished(1).unwrap()
        else {
            panic!("the coordinator writes the final manifest once all have finished");
        };
        let (chain, _) = CheckpointDir::open(tmp.path())
            .unwrap()
            .restorable()
            .unwrap();
        assert!(
            chain.unwrap().last().unwrap().final_,
            "the final manifest is written"
        );
        coordinator.on_final_committed(id).unwrap();
        assert!(coordinator.done());

        // Worker 1 has its own and worker 0's `Finished`; worker 2's is still on its way.
        let mut worker = checkpointer(tmp.path(), 1, 3);
        assert!(worker.on_finished(1).unwrap().is_none());
        assert!(worker.on_finished(0).unwrap().is_none());
        assert!(!worker.done());
        worker.on_final_committed(id).unwrap();
        assert!(worker.done());
        assert!(
            worker.on_finished(2).unwrap().is_none(),
            "only the coordinator commits"
        );
        assert!(worker.done());
    }
}
