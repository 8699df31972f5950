//! Job configuration: timely's cluster arguments plus Weir's own options.

use std::path::PathBuf;
use std::time::Duration;

use crate::cluster::job_secret::JobSecret;
use crate::error::{Result, WeirError};

/// Default of [`Config::file_block_bytes`]: 4 MiB.
pub const DEFAULT_FILE_BLOCK_BYTES: u64 = 4 << 20;

/// Default of [`Config::max_line_bytes`]: 16 MiB.
pub const DEFAULT_MAX_LINE_BYTES: usize = 16 << 20;

/// How a source cuts its records into timely epochs (timestamps).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EpochPolicy {
    /// Close an epoch after this many records per source instance.
    Records(u64),
    /// Processing-time epochs: epoch `k` holds the records a source instance emits in the
    /// `k`-th interval since it started. Sources with the same interval advance together,
    /// also while idle, so a slow or pending source (a model stream) does not hold others back.
    Interval(Duration),
}

impl Default for EpochPolicy {
    fn default() -> Self {
        EpochPolicy::Records(4096)
    }
}

/// Where and how a job checkpoints its state (`--checkpoint-dir DIR`), to resume after a
/// failure with exactly-once state and output; see `docs/state-and-checkpoints.md`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointConfig {
    /// The checkpoint directory (a shared file system path for jobs across hosts).
    pub dir: PathBuf,
    /// Time between the end of one checkpoint and the start of the next
    /// (`--checkpoint-interval 2s`).
    pub interval: Duration,
    /// Complete checkpoints kept (`--checkpoint-retain N`); older ones are deleted.
    pub retain: usize,
    /// Every this many checkpoints one holds all state; the others hold only the keys that
    /// changed (`--checkpoint-full-every N`; 1: always full).
    pub full_every: u64,
    /// Failed checkpoints in a row the job goes on after (`--tolerable-checkpoint-failures
    /// N`); one more fails the job.
    pub tolerable_failures: u32,
    /// Restore even when state in the checkpoint has no operator of that name in the job
    /// (`--allow-non-restored-state`); otherwise that is an error.
    pub allow_non_restored_state: bool,
}

impl CheckpointConfig {
    /// Checkpoints in `dir` every 2 seconds, the last 3 kept, a full one every 10.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        CheckpointConfig {
            dir: dir.into(),
            interval: Duration::from_secs(2),
            retain: 3,
            full_every: 10,
            tolerable_failures: 0,
            allow_non_restored_state: false,
        }
    }

    /// Sets the time between checkpoints.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Sets how many complete checkpoints are kept.
    pub fn retain(mut self, checkpoints: usize) -> Self {
        self.retain = checkpoints;
        self
    }

    /// Sets how often a checkpoint holds all state (1: every one).
    pub fn full_every(mut self, checkpoints: u64) -> Self {
        self.full_every = checkpoints.max(1);
        self
    }

    /// Sets how many failed checkpoints in a row the job goes on after.
    pub fn tolerable_failures(mut self, failures: u32) -> Self {
        self.tolerable_failures = failures;
        self
    }

    /// Restores even when state in the checkpoint has no operator of that name in the job.
    pub fn allow_non_restored_state(mut self, allow: bool) -> Self {
        self.allow_non_restored_state = allow;
        self
    }
}

/// Format of the job graph printed by `--explain`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExplainFormat {
    /// Human-readable text.
    Text,
    /// JSON, as [`crate::Plan::to_json`].
    Json,
    /// Graphviz DOT, as [`crate::Plan::to_dot`].
    Dot,
}

/// How the job is laid out on timely workers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cluster {
    /// All workers are threads of this process.
    Local {
        /// Worker threads.
        threads: usize,
    },
    /// Several processes, each with the same number of threads (timely's cluster mode).
    Processes {
        /// Worker threads per process.
        threads: usize,
        /// This process's index.
        process: usize,
        /// `host:port` of every process, in process order.
        addresses: Vec<String>,
    },
}

/// Configuration of one Weir job.
///
/// [`Config::from_args`] understands timely's standard cluster arguments
/// (`-w THREADS`, `-n PROCESSES`, `-p PROCESS`, `-h HOSTFILE`, or `--addresses H:P,H:P` in
/// place of a hostfile) and Weir's own
/// (`--explain[=json|dot|text]`, `--fail-fast`, `--epoch-records N`, `--epoch-ms MS`,
/// `--epoch-max-ms MS`, `--max-epochs-in-flight N`, `--dead-letters PATH`, `--overwrite`,
/// `--max-line-bytes N`, `--file-block-bytes N`, `--peer-timeout-ms MS`, `--cancellation-timeout-ms MS`, `--connect-timeout-ms MS`,
/// `--job-secret-stdin`, `--exit-when-stdin-closes`, `--quiet`); the job secret also comes
/// from `WEIR_JOB_SECRET`.
/// Anything else is left in
/// [`Config::program_args`] for the program.
#[derive(Clone, Debug)]
pub struct Config {
    /// Worker layout.
    pub cluster: Cluster,
    /// Default epoch policy of sources.
    pub epochs: EpochPolicy,
    /// Latency bound of record-count epochs: a source closes an epoch that has records and has
    /// been open this long, even if it is not full, so a slow stream's records do not wait
    /// for the epoch to fill up (batching operators flush at epoch ends).
    pub epoch_max_delay: Duration,
    /// Flow control: a source instance may not run more than this many epochs ahead of the
    /// slowest sink.
    pub max_epochs_in_flight: u64,
    /// Stop the job on the first malformed record instead of dead-lettering it.
    pub fail_fast: bool,
    /// Where unclaimed dead letters go. Default: next to the first file sink's output
    /// (`OUTPUT.errors.jsonl`), otherwise a count and a warning on stderr. A run without
    /// dead letters writes no file, and removes the one an earlier run left there.
    pub dead_letters: Option<PathBuf>,
    /// Let `write_jsonl` / `write_csv` replace what their output directory holds; without it
    /// a directory that already holds output is a job error ([`WeirError::OutputExists`]).
    /// Per sink: [`crate::Op::overwrite`].
    pub overwrite: bool,
    /// Longest line a file source reads, in bytes (newline excluded); a longer line is
    /// skipped without being buffered and becomes a dead letter.
    pub max_line_bytes: usize,
    /// Largest block of a file that one file source instance reads before the next
    /// instance's block: the instances read a file's blocks in turn, so they move through it
    /// together (default 4 MiB; see `docs/architecture.md`, file sources).
    pub file_block_bytes: u64,
    /// Print the job graph in this format and exit without running.
    pub explain: Option<ExplainFormat>,
    /// Print the report table at the end and show progress on a terminal.
    pub verbose: bool,
    /// Where workers publish their operator counters while the job runs (for a metrics
    /// endpoint); `None` publishes nothing.
    pub live_metrics: Option<crate::report::LiveMetrics>,
    /// Arguments not consumed by Weir, for the program itself.
    pub program_args: Vec<String>,
    /// A process not heard from for this long (stalled, cut off) fails the job on the
    /// others, instead of hanging them. Every worker sends a heartbeat twice a second.
    pub peer_timeout: Duration,
    /// How long the workers of a failing job have to stop (Flink's
    /// `task.cancellation.timeout`): a worker that has not returned after this (stuck in an
    /// operator's code, say) is logged with the operator it is in and left behind, and the
    /// job's failure is returned. Without it, a worker stuck in user code kept a failed job
    /// from ever ending.
    pub cancellation_timeout: Duration,
    /// How long the processes of a job have to connect to each other at the start.
    pub connect_timeout: Duration,
    /// The secret with which the processes of a job prove to each other that they belong to
    /// it (`WEIR_JOB_SECRET`, set by `weir launch`); without it their connections are not
    /// authenticated.
    pub job_secret: Option<JobSecret>,
    /// End the process when its standard input closes (`--exit-when-stdin-closes`, which
    /// `weir launch` passes: it holds each process's standard input open, so that the
    /// processes end with the launcher, also over `ssh` and when the launcher is killed).
    pub exit_when_stdin_closes: bool,
    /// Checkpoints of the job's state (`--checkpoint-dir DIR`); `None`: none.
    pub checkpoint: Option<CheckpointConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            cluster: Cluster::Local { threads: 1 },
            epochs: EpochPolicy::default(),
            epoch_max_delay: Duration::from_millis(100),
            max_epochs_in_flight: 8,
            fail_fast: false,
            dead_letters: None,
            overwrite: false,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            file_block_bytes: DEFAULT_FILE_BLOCK_BYTES,
            explain: None,
            verbose: false,
            live_metrics: None,
            program_args: Vec::new(),
            peer_timeout: Duration::from_secs(30),
            cancellation_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(120),
            job_secret: None,
            exit_when_stdin_closes: false,
            checkpoint: None,
        }
    }
}

impl Config {
    /// A configuration with `threads` local worker threads and defaults otherwise.
    pub fn threads(threads: usize) -> Self {
        Config {
            cluster: Cluster::Local {
                threads: threads.max(1),
            },
            ..Config::default()
        }
    }

    /// Reads the configuration from command-line arguments (including the program name,
    /// as `std::env::args()` yields them).
    pub fn from_args<I: IntoIterator<Item = String>>(args: I) -> Result<Self> {
        crate::logging::init();
        let mut config = Config {
            verbose: true,
            job_secret: JobSecret::from_env().map_err(|e| WeirError::Config(e.to_string()))?,
            ..Config::default()
        };
        let mut checkpoint_options = CheckpointOptions::default();
        let mut threads: Option<usize> = None;
        let mut processes: Option<usize> = None;
        let mut process: Option<usize> = None;
        let mut hostfile: Option<String> = None;
        let mut inline_addresses: Option<String> = None;
        let mut args = args.into_iter();
        let _program = args.next();
        while let Some(arg) = args.next() {
            // Split `--name=value` and `-wN` forms.
            let (flag, inline): (String, Option<String>) =
                if let Some(rest) = arg.strip_prefix("--") {
                    match rest.split_once('=') {
                        Some((f, v)) => (format!("--{f}"), Some(v.to_string())),
                        None => (arg.clone(), None),
                    }
                } else if let Some((short, rest)) = split_short_flag(&arg) {
                    (short.to_string(), Some(rest.to_string()))
                } else {
                    (arg.clone(), None)
                };
            let mut value = |name: &str| -> Result<String> {
                match inline.clone() {
                    Some(v) => Ok(v),
                    None => args
                        .next()
                        .ok_or_else(|| WeirError::Config(format!("{name} needs a value"))),
                }
            };
            match flag.as_str() {
                "-w" | "--threads" => {
                    set_once(&mut threads, "-w", parse_num(&flag, &value(&flag)?)?)?
                }
                "-n" | "--processes" => {
                    set_once(&mut processes, "-n", parse_num(&flag, &value(&flag)?)?)?
                }
                "-p" | "--process" => {
                    set_once(&mut process, "-p", parse_num(&flag, &value(&flag)?)?)?
                }
                "-h" | "--hostfile" => hostfile = Some(value(&flag)?),
                "--addresses" => inline_addresses = Some(value(&flag)?),
                "--fail-fast" => config.fail_fast = true,
                "--quiet" => config.verbose = false,
                "--epoch-records" => {
                    config.epochs = EpochPolicy::Records(parse_num(&flag, &value(&flag)?)? as u64)
                }
                "--epoch-ms" => {
                    config.epochs = EpochPolicy::Interval(Duration::from_millis(parse_num(
                        &flag,
                        &value(&flag)?,
                    )?
                        as u64))
                }
                "--epoch-max-ms" => {
                    config.epoch_max_delay =
                        Duration::from_millis(parse_num(&flag, &value(&flag)?)? as u64)
                }
                "--max-epochs-in-flight" => {
                    config.max_epochs_in_flight = parse_num(&flag, &value(&flag)?)? as u64
                }
                "--dead-letters" => config.dead_letters = Some(PathBuf::from(value(&flag)?)),
                "--overwrite" => config.overwrite = true,
                "--peer-timeout-ms" => config.peer_timeout = parse_ms(&flag, &value(&flag)?)?,
                "--cancellation-timeout-ms" => {
                    config.cancellation_timeout = parse_ms(&flag, &value(&flag)?)?
                }
                "--connect-timeout-ms" => config.connect_timeout = parse_ms(&flag, &value(&flag)?)?,
                "--job-secret-stdin" => config.job_secret = Some(secret_from_stdin()?),
                "--exit-when-stdin-closes" => config.exit_when_stdin_closes = true,
                "--checkpoint-dir" => {
                    let dir = PathBuf::from(value(&flag)?);
                    let old = config.checkpoint.take();
                    config.checkpoint = Some(match old {
                        Some(c) => CheckpointConfig { dir, ..c },
                        None => CheckpointConfig::new(dir),
                    });
                }
                "--checkpoint-interval" => {
                    checkpoint_options.interval = Some(parse_duration(&flag, &value(&flag)?)?)
                }
                "--checkpoint-retain" => {
                    checkpoint_options.retain = Some(parse_num(&flag, &value(&flag)?)?.max(1))
                }
                "--checkpoint-full-every" => {
                    checkpoint_options.full_every =
                        Some(parse_num(&flag, &value(&flag)?)?.max(1) as u64)
                }
                "--tolerable-checkpoint-failures" => {
                    checkpoint_options.tolerable = Some(parse_num(&flag, &value(&flag)?)? as u32)
                }
                "--allow-non-restored-state" => checkpoint_options.allow_non_restored = true,
                "--max-line-bytes" => {
                    config.max_line_bytes = parse_num(&flag, &value(&flag)?)?;
                    if config.max_line_bytes == 0 {
                        return Err(WeirError::Config(
                            "--max-line-bytes must be at least 1".into(),
                        ));
                    }
                }
                "--file-block-bytes" => {
                    config.file_block_bytes = parse_num(&flag, &value(&flag)?)? as u64;
                    if config.file_block_bytes == 0 {
                        return Err(WeirError::Config(
                            "--file-block-bytes must be at least 1".into(),
                        ));
                    }
                }
                "--explain" => {
                    config.explain = Some(match inline.as_deref() {
                        None | Some("text") => ExplainFormat::Text,
                        Some("json") => ExplainFormat::Json,
                        Some("dot") => ExplainFormat::Dot,
                        Some(other) => {
                            return Err(WeirError::Config(format!(
                                "--explain={other}: expected one of text, json, dot"
                            )))
                        }
                    })
                }
                _ => config.program_args.push(arg),
            }
        }
        config.checkpoint = checkpoint_options.apply(config.checkpoint.take())?;
        let (threads, processes, process) = (
            threads.unwrap_or(1),
            processes.unwrap_or(1),
            process.unwrap_or(0),
        );
        if threads == 0 || processes == 0 {
            return Err(WeirError::Config("-w and -n must be at least 1".into()));
        }
        if process >= processes {
            return Err(WeirError::Config(format!(
                "-p {process} is out of range for -n {processes}"
            )));
        }
        config.cluster = if processes > 1 {
            // `--addresses a:1,b:2` is a hostfile given inline (for remote launches, where a
            // local file would not exist on the other machine).
            let source = match (hostfile, inline_addresses) {
                (Some(path), _) => Some((
                    format!("hostfile {path}"),
                    std::fs::read_to_string(&path).map_err(|e| {
                        WeirError::Config(format!("cannot read hostfile {path}: {e}"))
                    })?,
                )),
                (None, Some(list)) => Some(("--addresses".to_string(), list.replace(',', "\n"))),
                (None, None) => None,
            };
            let addresses = match source {
                Some((path, text)) => {
                    let addresses: Vec<String> = text
                        .lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty() && !l.starts_with('#'))
                        .map(String::from)
                        .collect();
                    if addresses.len() < processes {
                        return Err(WeirError::Config(format!(
                            "{path} has {} address(es), but -n is {processes}",
                            addresses.len()
                        )));
                    }
                    addresses.into_iter().take(processes).collect()
                }
                None => (0..processes)
                    .map(|i| format!("localhost:{}", 2101 + i))
                    .collect(),
            };
            Cluster::Processes {
                threads,
                process,
                addresses,
            }
        } else {
            Cluster::Local { threads }
        };
        Ok(config)
    }

    /// Reads the configuration from `std::env::args()`.
    pub fn from_env() -> Result<Self> {
        Self::from_args(std::env::args())
    }

    /// Total number of timely workers in the job (threads x processes).
    pub fn total_workers(&self) -> usize {
        match &self.cluster {
            Cluster::Local { threads } => *threads,
            Cluster::Processes {
                threads, addresses, ..
            } => threads * addresses.len(),
        }
    }

    /// Global index of this process's first worker (0 for local jobs).
    pub fn first_worker_index(&self) -> usize {
        match &self.cluster {
            Cluster::Local { .. } => 0,
            Cluster::Processes {
                threads, process, ..
            } => threads * process,
        }
    }

    /// Worker threads in each process.
    pub fn threads_per_process(&self) -> usize {
        match &self.cluster {
            Cluster::Local { threads } | Cluster::Processes { threads, .. } => (*threads).max(1),
        }
    }

    /// Index of this process (0 for local jobs).
    pub fn process_index(&self) -> usize {
        match &self.cluster {
            Cluster::Local { .. } => 0,
            Cluster::Processes { process, .. } => *process,
        }
    }

    /// Builder-style: sets the source epoch policy.
    pub fn with_epochs(mut self, epochs: EpochPolicy) -> Self {
        self.epochs = epochs;
        self
    }

    /// Builder-style: publishes live operator counters to `metrics`.
    pub fn with_live_metrics(mut self, metrics: crate::report::LiveMetrics) -> Self {
        self.live_metrics = Some(metrics);
        self
    }

    /// Builder-style: sets [`Config::peer_timeout`].
    pub fn with_peer_timeout(mut self, timeout: Duration) -> Self {
        self.peer_timeout = timeout;
        self
    }

    /// Builder-style: sets [`Config::cancellation_timeout`].
    ///
    /// ```
    /// use std::time::Duration;
    /// let config = weir_core::Config::threads(2).with_cancellation_timeout(Duration::from_secs(5));
    /// assert_eq!(config.cancellation_timeout, Duration::from_secs(5));
    /// ```
    pub fn with_cancellation_timeout(mut self, timeout: Duration) -> Self {
        self.cancellation_timeout = timeout;
        self
    }

    /// Builder-style: checkpoints as `checkpoint` says.
    pub fn with_checkpoints(mut self, checkpoint: CheckpointConfig) -> Self {
        self.checkpoint = Some(checkpoint);
        self
    }

    /// Builder-style: sets [`Config::job_secret`].
    pub fn with_job_secret(mut self, secret: JobSecret) -> Self {
        self.job_secret = Some(secret);
        self
    }

    /// Builder-style: sets [`Config::epoch_max_delay`].
    pub fn with_epoch_max_delay(mut self, delay: Duration) -> Self {
        self.epoch_max_delay = delay;
        self
    }

    /// Builder-style: sets the flow-control bound (at least 1).
    pub fn with_max_epochs_in_flight(mut self, epochs: u64) -> Self {
        self.max_epochs_in_flight = epochs.max(1);
        self
    }

    /// Builder-style: fail on the first malformed record.
    pub fn with_fail_fast(mut self, fail_fast: bool) -> Self {
        self.fail_fast = fail_fast;
        self
    }

    /// Builder-style: report table and progress output.
    pub fn with_verbose(mut self, verbose: bool) -> Self {
        self.verbose = verbose;
        self
    }

    /// Builder-style: where unclaimed dead letters are written.
    pub fn with_dead_letters(mut self, path: impl Into<PathBuf>) -> Self {
        self.dead_letters = Some(path.into());
        self
    }

    /// Builder-style: lets directory file sinks replace existing output ([`Config::overwrite`]).
    ///
    /// ```
    /// use weir_core::Config;
    /// assert!(Config::threads(1).with_overwrite(true).overwrite);
    /// ```
    pub fn with_overwrite(mut self, overwrite: bool) -> Self {
        self.overwrite = overwrite;
        self
    }

    /// Builder-style: sets [`Config::max_line_bytes`] (at least 1).
    ///
    /// ```
    /// use weir_core::Config;
    /// assert_eq!(Config::threads(1).with_max_line_bytes(1 << 20).max_line_bytes, 1 << 20);
    /// ```
    pub fn with_max_line_bytes(mut self, bytes: usize) -> Self {
        self.max_line_bytes = bytes.max(1);
        self
    }

    /// Builder-style: sets [`Config::file_block_bytes`] (at least 1).
    ///
    /// ```
    /// use weir_core::Config;
    /// assert_eq!(Config::threads(2).with_file_block_bytes(1 << 20).file_block_bytes, 1 << 20);
    /// ```
    pub fn with_file_block_bytes(mut self, bytes: u64) -> Self {
        self.file_block_bytes = bytes.max(1);
        self
    }

    /// Who this process is among the job's processes, for [`crate::cluster::peer_network`]; `None`
    /// for a one-process job.
    pub(crate) fn peer_plan(&self) -> Option<crate::cluster::peer_network::PeerPlan> {
        match &self.cluster {
            Cluster::Local { .. } => None,
            Cluster::Processes {
                process, addresses, ..
            } => Some(crate::cluster::peer_network::PeerPlan {
                process: *process,
                addresses: addresses.clone(),
                secret: self.job_secret.clone(),
                connect_timeout: self.connect_timeout,
            }),
        }
    }

    /// The address of process `process` in a multi-process job.
    pub fn address(&self, process: usize) -> Option<String> {
        match &self.cluster {
            Cluster::Local { .. } => None,
            Cluster::Processes { addresses, .. } => addresses.get(process).cloned(),
        }
    }
}

/// `-w4` as (`-w`, `4`) for the short flags that take a value; `None` for anything else
/// (including non-ASCII arguments, which are never cut inside a character).
fn split_short_flag(arg: &str) -> Option<(&str, &str)> {
    ["-w", "-n", "-p", "-h"].into_iter().find_map(|short| {
        arg.strip_prefix(short)
            .filter(|rest| !rest.is_empty())
            .map(|rest| (short, rest))
    })
}

/// The checkpoint flags other than the directory, which need it.
#[derive(Default)]
struct CheckpointOptions {
    interval: Option<Duration>,
    retain: Option<usize>,
    full_every: Option<u64>,
    tolerable: Option<u32>,
    allow_non_restored: bool,
}

impl CheckpointOptions {
    fn given(&self) -> bool {
        self.interval.is_some()
            || self.retain.is_some()
            || self.full_every.is_some()
            || self.tolerable.is_some()
            || self.allow_non_restored
    }

    fn apply(self, config: Option<CheckpointConfig>) -> Result<Option<CheckpointConfig>> {
        let Some(mut c) = config else {
            if self.given() {
                return Err(WeirError::Config(
                    "checkpoint options need --checkpoint-dir DIR".into(),
                ));
            }
            return Ok(None);
        };
        c.interval = self.interval.unwrap_or(c.interval);
        c.retain = self.retain.unwrap_or(c.retain);
        c.full_every = self.full_every.unwrap_or(c.full_every);
        c.tolerable_failures = self.tolerable.unwrap_or(c.tolerable_failures);
        c.allow_non_restored_state |= self.allow_non_restored;
        Ok(Some(c))
    }
}

/// `500ms`, `2s`, `1m`, `1h`.
fn parse_duration(flag: &str, value: &str) -> Result<Duration> {
    let bad = || {
        WeirError::Config(format!(
            "{flag} expects a duration such as 500ms, 2s or 1m, got `{value}`"
        ))
    };
    let digits = value.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let number: u64 = digits.parse().map_err(|_| bad())?;
    let duration = match &value[digits.len()..] {
        "ms" => Duration::from_millis(number),
        "s" => Duration::from_secs(number),
        "m" => Duration::from_secs(number.saturating_mul(60)),
        "h" => Duration::from_secs(number.saturating_mul(3600)),
        _ => return Err(bad()),
    };
    if duration.is_zero() {
        return Err(bad());
    }
    Ok(duration)
}

/// A positive number of milliseconds.
fn parse_ms(flag: &str, value: &str) -> Result<Duration> {
    match parse_num(flag, value)? {
        0 => Err(WeirError::Config(format!("{flag} must be at least 1"))),
        ms => Ok(Duration::from_millis(ms as u64)),
    }
}

/// The job secret as the first line of standard input (how `weir launch` hands it to
/// processes on other hosts, where an environment variable would not arrive).
fn secret_from_stdin() -> Result<JobSecret> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| WeirError::Config(format!("--job-secret-stdin: {e}")))?;
    JobSecret::from_hex(&line).map_err(|e| WeirError::Config(format!("--job-secret-stdin: {e}")))
}

/// Sets a cluster flag given once; the same flag again with another value is an error
/// (under `weir launch`, which passes `-w -n -p` itself, a program's own `-w` would
/// otherwise be overridden without a word).
fn set_once(slot: &mut Option<usize>, flag: &str, value: usize) -> Result<(), WeirError> {
    match *slot {
        Some(earlier) if earlier != value => Err(WeirError::Config(format!(
            "{flag} is given twice ({earlier}, then {value}); under `weir launch`, give {flag} to \
             the launcher (`weir launch -n N -w W -- program ...`), not to the program"
        ))),
        _ => {
            *slot = Some(value);
            Ok(())
        }
    }
}

fn parse_num(flag: &str, value: &str) -> Result<usize> {
    value.parse().map_err(|_| {
        WeirError::Config(format!(
            "{flag} expects a non-negative integer, got `{value}`"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        std::iter::once("prog".to_string())
            .chain(s.split_whitespace().map(String::from))
            .collect()
    }

    #[test]
    fn a_cluster_flag_given_twice_with_another_value_is_an_error() {
        // What `weir launch -w 1` appended to a program given `-w 2` looks like.
        let e = Config::from_args(args("-w 2 -w 1 -n 2 -p 0")).unwrap_err();
        assert!(
            e.to_string().contains("-w is given twice (2, then 1)"),
            "{e}"
        );
        assert!(e.to_string().contains("weir launch"), "{e}");
        let e = Config::from_args(args("-n 2 --processes 3")).unwrap_err();
        assert!(e.to_string().contains("-n is given twice"), "{e}");
        // The same value twice is harmless.
        assert!(Config::from_args(args("-w 2 -w 2")).is_ok());
    }

    #[test]
    fn parses_timely_and_weir_flags_and_keeps_the_rest() {
        let c = Config::from_args(args("-w 2 --explain=dot --rate 5 --fail-fast")).unwrap();
        assert_eq!(c.cluster, Cluster::Local { threads: 2 });
        assert_eq!(c.explain, Some(ExplainFormat::Dot));
        assert!(c.fail_fast);
        assert!(!c.exit_when_stdin_closes);
        assert_eq!(c.program_args, vec!["--rate", "5"]);
        let c = Config::from_args(args("-w 1 --exit-when-stdin-closes")).unwrap();
        assert!(c.exit_when_stdin_closes && c.program_args.is_empty());
        let c = Config::from_args(args("-w3 -n 2 -p 1")).unwrap();
        assert_eq!(c.total_workers(), 6);
        assert_eq!(c.process_index(), 1);
    }

    #[test]
    fn addresses_can_be_given_inline_instead_of_a_hostfile() {
        let c = Config::from_args(args(
            "-w 2 -n 2 -p 1 --addresses 10.0.0.1:2101,10.0.0.2:2101",
        ))
        .unwrap();
        assert_eq!(
            c.cluster,
            Cluster::Processes {
                threads: 2,
                process: 1,
                addresses: vec!["10.0.0.1:2101".into(), "10.0.0.2:2101".into()],
            }
        );
        let e = Config::from_args(args("-n 3 --addresses a:1,b:2")).unwrap_err();
        assert!(
            e.to_string()
                .contains("--addresses has 2 address(es), but -n is 3"),
            "{e}"
        );
    }

    #[test]
    fn non_ascii_arguments_do_not_panic_and_are_left_for_the_program() {
        for arg in ["-é", "-wé", "-", "é", "--é", "-日本", "--é=ü", "-w\u{301}"] {
            let c = Config::from_args(["prog".to_string(), arg.to_string()]);
            match arg {
                // `-w` followed by a non-number is a bad thread count, not a panic.
                "-wé" | "-w\u{301}" => assert!(c.is_err(), "{arg}"),
                _ => assert_eq!(c.unwrap().program_args, vec![arg.to_string()], "{arg}"),
            }
        }
        let c = Config::from_args(args(
            "-é -w2 --max-line-bytes 64 --file-block-bytes 4096 --overwrite",
        ))
        .unwrap();
        assert_eq!(c.file_block_bytes, 4096);
        assert_eq!(c.cluster, Cluster::Local { threads: 2 });
        assert_eq!(c.max_line_bytes, 64);
        assert!(c.overwrite);
    }

    #[test]
    fn rejects_bad_values() {
        assert!(Config::from_args(args("-w x")).is_err());
        assert!(Config::from_args(args("-n 2 -p 2")).is_err());
        assert!(Config::from_args(args("--explain=svg")).is_err());
    }
}
