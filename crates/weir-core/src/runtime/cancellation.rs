//! The cancellation timeout (Flink's `task.cancellation.timeout`): once a job fails, its
//! workers stop at their next step, but a worker stuck in an operator's code (a loop, a
//! blocking call) never steps again, and waiting for it kept the failed job from ever ending.
//! [`Whereabouts`] knows which operator each worker of the process is running, and
//! [`wait_for_workers`] gives up on those still running [`Config::cancellation_timeout`]
//! after the failure: they are logged with their operator and left behind. Any worker that
//! has not returned counts, wherever it is (an operator's code, or between operators).
//!
//! [`Config::cancellation_timeout`]: crate::Config::cancellation_timeout

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::error::WeirError;
use crate::report::{CURRENT_OPERATOR, NO_OPERATOR};

/// Where the workers of this process are: the operator each is running, and which have
/// returned.
#[derive(Default)]
pub(crate) struct Whereabouts {
    workers: Mutex<Vec<WorkerPlace>>,
    /// The operators' names, by plan node (the same plan on every worker).
    names: OnceLock<Vec<String>>,
}

/// One worker: the operator its thread runs now ([`NO_OPERATOR`] for none), and whether its
/// closure returned.
struct WorkerPlace {
    worker: usize,
    operator: Arc<AtomicUsize>,
    returned: bool,
}

/// A worker that did not stop, and the operator it was running.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StuckWorker {
    pub(crate) worker: usize,
    pub(crate) operator: Option<String>,
}

impl StuckWorker {
    /// The error that says so.
    pub(crate) fn error(self, timeout: Duration) -> WeirError {
        WeirError::WorkerStuck {
            worker: self.worker,
            operator: self.operator,
            timeout,
        }
    }
}

impl Whereabouts {
    /// Called on worker `worker`'s own thread when it starts.
    pub(crate) fn enter(&self, worker: usize) {
        let operator = CURRENT_OPERATOR.with(Arc::clone);
        self.lock().push(WorkerPlace {
            worker,
            operator,
            returned: false,
        });
    }

    /// Called when worker `worker`'s closure returns.
    pub(crate) fn leave(&self, worker: usize) {
        for place in self.lock().iter_mut().filter(|p| p.worker == worker) {
            place.returned = true;
        }
    }

    /// Gives the operators' names (the first worker to build the job does).
    pub(crate) fn name_operators(&self, names: impl FnOnce() -> Vec<String>) {
        self.names.get_or_init(names);
    }

    /// The workers that have not returned, with the operator each is running.
    pub(crate) fn stuck(&self) -> Vec<StuckWorker> {
        let names = self.names.get();
        self.lock()
            .iter()
            .filter(|p| !p.returned)
            .map(|p| {
                let node = p.operator.load(Ordering::Relaxed);
                StuckWorker {
                    worker: p.worker,
                    operator: (node != NO_OPERATOR)
                        .then(|| names.and_then(|n| n.get(node)).cloned())
                        .flatten(),
                }
            })
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<WorkerPlace>> {
        self.workers.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What waiting for the workers gave.
pub(crate) enum Waited<T> {
    /// They all ended: what joining them gave.
    Joined(T),
    /// The job failed, and these workers were still running `timeout` later.
    GaveUp(Vec<StuckWorker>),
}

/// Waits for `joined` (the workers' join, done on another thread). Once `failing()` says the
/// job failed, waits at most `timeout` more for workers that have not returned; workers that
/// all returned are waited for without a bound (their connections have a watchdog of their
/// own).
pub(crate) fn wait_for_workers<T>(
    joined: &Receiver<T>,
    whereabouts: &Whereabouts,
    failing: impl Fn() -> bool,
    timeout: Duration,
) -> Waited<T> {
    let mut failed_at: Option<Instant> = None;
    loop {
        match joined.recv_timeout(Duration::from_millis(50)) {
            Ok(result) => return Waited::Joined(result),
            // The joining thread died: nothing more will come (its panic was logged).
            Err(RecvTimeoutError::Disconnected) => return Waited::GaveUp(whereabouts.stuck()),
            Err(RecvTimeoutError::Timeout) => {}
        }
        if failed_at.is_none() && failing() {
            failed_at = Some(Instant::now());
        }
        if failed_at.is_some_and(|at| at.elapsed() > timeout) {
            let stuck = whereabouts.stuck();
            if !stuck.is_empty() {
                return Waited::GaveUp(stuck);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn a_stuck_worker_is_named_with_its_operator_once_the_job_failed() {
        let whereabouts = Arc::new(Whereabouts::default());
        whereabouts.name_operators(|| vec!["source".into(), "stuck".into()]);
        let (release, released) = mpsc::channel::<()>();
        let (entered, wait_entered) = mpsc::channel::<()>();
        let w = Arc::clone(&whereabouts);
        let stuck = std::thread::spawn(move || {
            w.enter(1);
            CURRENT_OPERATOR.with(|c| c.store(1, Ordering::Relaxed));
            entered.send(()).unwrap();
            released.recv().unwrap();
            w.leave(1);
        });
        whereabouts.enter(0);
        whereabouts.leave(0);
        wait_entered.recv().unwrap();
        let (_done, joined) = mpsc::channel::<()>();
        // Not failing: waits on (checked once here through a failing() that flips).
        let calls = AtomicUsize::new(0);
        let waited = wait_for_workers(
            &joined,
            &whereabouts,
            || calls.fetch_add(1, Ordering::SeqCst) >= 2,
            Duration::ZERO,
        );
        let Waited::GaveUp(stuck_workers) = waited else {
            panic!("gave up on the stuck worker")
        };
        assert_eq!(
            stuck_workers,
            [StuckWorker {
                worker: 1,
                operator: Some("stuck".into())
            }]
        );
        assert_eq!(
            stuck_workers[0].clone().error(Duration::from_secs(1)).to_string(),
            "worker 1 (in operator `stuck`) did not stop within 1s of the job's failure; left running"
        );
        assert!(calls.load(Ordering::SeqCst) >= 3, "waited until it failed");
        release.send(()).unwrap();
        stuck.join().unwrap();
        assert_eq!(whereabouts.stuck(), []);
    }

    #[test]
    fn workers_that_end_are_joined() {
        let (done, joined) = mpsc::channel();
        done.send(7).unwrap();
        let waited = wait_for_workers(&joined, &Whereabouts::default(), || true, Duration::ZERO);
        assert!(matches!(waited, Waited::Joined(7)));
    }
}
