//! Batches requests across concurrent clients: handler threads hand their rows to one
//! scoring thread, which waits a little for more (up to `max_batch` rows or `wait`), scores
//! them together with the predict operator's scorer, and answers each handler with its rows.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use weir_onnx::{ModelRunner, Value};

use crate::scoring::request::ScoreRequest;

/// What scoring one row gave: every output's value, or why the row failed.
pub type RowResult = Result<Vec<Value>, String>;

/// A handler's rows waiting to be scored, and where to send the results.
struct Pending {
    rows: Vec<ScoreRequest>,
    reply: SyncSender<Vec<RowResult>>,
}

/// Counters the batcher keeps for `/metrics`.
#[derive(Default)]
pub struct BatchStats {
    /// Rows scored (or failed).
    pub rows: AtomicU64,
    /// `Session::run` batches formed.
    pub batches: AtomicU64,
}

/// The handle handlers score through.
pub struct Batcher {
    requests: Sender<Pending>,
    /// Counters.
    pub stats: Arc<BatchStats>,
}

impl Batcher {
    /// Starts the scoring thread with `runner`.
    pub fn start(runner: ModelRunner, max_batch: usize, wait: Duration) -> Batcher {
        let (requests, inbox) = mpsc::channel();
        let stats = Arc::new(BatchStats::default());
        let thread_stats = Arc::clone(&stats);
        std::thread::Builder::new()
            .name("weir-serve-batcher".into())
            .spawn(move || {
                BatchLoop {
                    runner,
                    inbox,
                    max_batch: max_batch.max(1),
                    wait,
                    stats: thread_stats,
                }
                .run()
            })
            .expect("spawn the batcher thread");
        Batcher { requests, stats }
    }

    /// Scores `rows` together with other clients' rows; one result per row, in order.
    pub fn score(&self, rows: Vec<ScoreRequest>) -> Result<Vec<RowResult>, String> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.requests
            .send(Pending { rows, reply })
            .map_err(|_| "the scoring thread has stopped".to_string())?;
        answer
            .recv()
            .map_err(|_| "the scoring thread has stopped".to_string())
    }
}

struct BatchLoop {
    runner: ModelRunner,
    inbox: Receiver<Pending>,
    max_batch: usize,
    wait: Duration,
    stats: Arc<BatchStats>,
}

impl BatchLoop {
    fn run(mut self) {
        while let Ok(first) = self.inbox.recv() {
            let batch = self.gather(first);
            self.score(batch);
        }
    }

    /// `first` and the requests already queued behind it, then whatever else arrives within
    /// `wait` (none with a wait of 0: under load the queue fills while a batch runs, so
    /// batches grow without anyone waiting), up to `max_batch` rows.
    fn gather(&self, first: Pending) -> Vec<Pending> {
        let deadline = Instant::now() + self.wait;
        let mut rows = first.rows.len();
        let mut batch = vec![first];
        while rows < self.max_batch {
            let next = match self.inbox.try_recv() {
                Ok(next) => next,
                Err(_) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    match self.inbox.recv_timeout(left) {
                        Ok(next) => next,
                        Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
                    }
                }
            };
            rows += next.rows.len();
            batch.push(next);
        }
        batch
    }

    /// Scores every row of `batch` in one call and answers each handler.
    fn score(&mut self, batch: Vec<Pending>) {
        let mut tagged = Vec::new();
        let mut replies = Vec::with_capacity(batch.len());
        for (handler, pending) in batch.into_iter().enumerate() {
            replies.push((pending.reply, vec![None; pending.rows.len()]));
            tagged.extend(
                pending
                    .rows
                    .into_iter()
                    .enumerate()
                    .map(|(row, r)| ((handler, row), r)),
            );
        }
        self.stats
            .rows
            .fetch_add(tagged.len() as u64, Ordering::Relaxed);
        self.stats.batches.fetch_add(1, Ordering::Relaxed);
        let results = self.runner.score(
            tagged,
            |(_, request), rows| crate::predict_file::feed(request, rows),
            |(tag, _), out| (tag, out.values()),
        );
        for result in results {
            let ((handler, row), value) = match result {
                Ok((tag, values)) => (tag, Ok(values)),
                Err(((tag, _), reason)) => (tag, Err(reason)),
            };
            replies[handler].1[row] = Some(value);
        }
        for (reply, rows) in replies {
            let rows = rows
                .into_iter()
                .map(|r| r.unwrap_or_else(|| Err("not scored".into())))
                .collect();
            let _ = reply.send(rows);
        }
    }
}
