//! The one error type of the core.

use std::path::PathBuf;

/// Everything that can go wrong while building or running a Weir job.
#[derive(Debug, thiserror::Error)]
pub enum WeirError {
    /// The command line or a `Config` value is not usable.
    #[error("configuration error: {0}")]
    Config(String),
    /// An operator asked for more instances than the job has workers.
    #[error("operator `{operator}` asks for parallelism {requested}, but the job has {available} worker(s) (-w threads x -n processes); lower it or add workers")]
    Parallelism {
        /// The operator's name.
        operator: String,
        /// The parallelism asked for.
        requested: usize,
        /// Total number of timely workers.
        available: usize,
    },
    /// The job graph is malformed (e.g. two operators with the same name).
    #[error("job graph error at operator `{operator}`: {message}")]
    Build {
        /// The operator's name.
        operator: String,
        /// What is wrong.
        message: String,
    },
    /// A file could not be read or written.
    #[error("{operator}: I/O error on {}: {source}", path.display())]
    Io {
        /// The operator's name.
        operator: String,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A directory file sink (`write_jsonl`, `write_csv`) found output of an earlier run in
    /// its directory and may not replace it.
    #[error("{operator}: output directory {} already holds {found}; pass --overwrite (or Config::with_overwrite / op(\"{operator}\").overwrite(true)) to replace its contents, or write to another directory", dir.display())]
    OutputExists {
        /// The sink's name.
        operator: String,
        /// The output directory.
        dir: PathBuf,
        /// What was found there, e.g. `part-00001.jsonl`.
        found: String,
    },
    /// A malformed input record, raised instead of dead-lettered because fail-fast is on.
    #[error("{operator}: malformed record at {location}: {reason}")]
    BadRecord {
        /// The operator's name.
        operator: String,
        /// `file:line` or another position.
        location: String,
        /// What the decoder said.
        reason: String,
    },
    /// A user function or a worker panicked.
    #[error("worker {worker} panicked{}: {message}", operator.as_ref().map(|o| format!(" in operator `{o}`")).unwrap_or_default())]
    WorkerPanic {
        /// Global worker index.
        worker: usize,
        /// The operator that was running, when known.
        operator: Option<String>,
        /// The panic payload.
        message: String,
    },
    /// A worker thread ended without returning (it died outside Weir's control).
    #[error("a worker thread ended abnormally: {0}")]
    WorkerLost(String),
    /// A worker of a failed job did not stop within the cancellation timeout (stuck in an
    /// operator's code, say); it was left running.
    #[error("worker {worker}{} did not stop within {timeout:?} of the job's failure; left running", operator.as_ref().map(|o| format!(" (in operator `{o}`)")).unwrap_or_default())]
    WorkerStuck {
        /// The worker's index.
        worker: usize,
        /// The operator it was running, if any.
        operator: Option<String>,
        /// [`crate::Config::cancellation_timeout`].
        timeout: std::time::Duration,
    },
    /// Another worker of the job failed first; this worker stopped because of it.
    #[error("worker {worker} stopped because {cause}")]
    Aborted {
        /// Global worker index.
        worker: usize,
        /// The failure that stopped the job, as far as this worker knows it.
        cause: String,
    },
    /// An operator's own work failed (a bridge task, a source that gave up).
    #[error("operator `{operator}` failed: {message}")]
    Operator {
        /// The operator's name.
        operator: String,
        /// What went wrong.
        message: String,
    },
    /// An operator failed for want of an input that ended empty: the side input of a
    /// [`with_broadcast`](crate::DataStream::with_broadcast) (a model's data, say). When an
    /// operator upstream failed, that is usually why the input is empty, so a job that has
    /// both errors reports the upstream one.
    #[error("operator `{operator}` failed: {message}")]
    WithoutInput {
        /// The operator's name.
        operator: String,
        /// What went wrong.
        message: String,
    },
    /// Another process of the job sent nothing (not even a heartbeat) for longer than the
    /// peer timeout: it is stopped, hung or cut off by the network.
    #[error("process {process} ({address}) has not been heard from for {silent:.1?} (peer timeout {timeout:?}): it is stalled or cut off; stopping the job")]
    PeerStalled {
        /// The silent process.
        process: usize,
        /// Its address.
        address: String,
        /// How long it has been silent.
        silent: std::time::Duration,
        /// [`crate::Config::peer_timeout`].
        timeout: std::time::Duration,
    },
    /// Checkpoints could not be taken or restored.
    #[error("checkpoint error: {0}")]
    Checkpoint(String),
    /// Timely's communication layer failed (e.g. a peer process died).
    #[error("timely communication error: {0}")]
    Communication(String),
}

/// Result alias used throughout the core.
pub type Result<T, E = WeirError> = std::result::Result<T, E>;
