//! What the benchmarks share: this process's memory figures and a timed run with its peak
//! memory, the clock of a job whose workers build their own input, the pinned Python of the
//! baselines against scikit-learn, and reading arguments.
//! Included by each benchmark with `#[path = "support/bench_process.rs"] mod bench_process;`.

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The four sides of a bench against a hand-written program, in the order their runs
/// alternate: the hand-written program on 1 and 2 threads, Weir at `-w 1` and `-w 2`.
pub const FOUR_SIDES: [&str; 4] = ["hand1", "hand2", "w1", "w2"];

/// The best time of each of the [`FOUR_SIDES`] and the peak memory of that run.
pub struct FourSides {
    pub ms: [f64; 4],
    pub peak_mib: [f64; 4],
}

impl FourSides {
    /// No run yet.
    pub fn new() -> Self {
        FourSides {
            ms: [f64::INFINITY; 4],
            peak_mib: [0.0; 4],
        }
    }

    /// Keeps side `i`'s run if it is the fastest so far.
    pub fn keep(&mut self, i: usize, took: Duration, peak: Option<u64>) {
        let ms = took.as_secs_f64() * 1e3;
        if ms < self.ms[i] {
            self.ms[i] = ms;
            self.peak_mib[i] = peak.unwrap_or(0) as f64 / (1024.0 * 1024.0);
        }
    }

    /// Side `i` as a table cell: `ms (peak MiB)`.
    pub fn cell(&self, i: usize) -> String {
        format!("{:.1} ({:.0})", self.ms[i], self.peak_mib[i])
    }

    /// The four cells, `|`-separated, for a Markdown row.
    pub fn cells(&self) -> String {
        (0..4).map(|i| self.cell(i)).collect::<Vec<_>>().join(" | ")
    }

    /// `{"ms": {side: ms}, "peak_mib": {side: MiB}}` for a bench's JSON.
    pub fn json(&self) -> serde_json::Value {
        let by_side = |values: &[f64; 4]| -> serde_json::Map<String, serde_json::Value> {
            FOUR_SIDES
                .iter()
                .zip(values)
                .map(|(side, v)| (side.to_string(), serde_json::json!(v)))
                .collect()
        };
        serde_json::json!({"ms": by_side(&self.ms), "peak_mib": by_side(&self.peak_mib)})
    }
}

/// Resets the kernel's peak-RSS mark of this process (Linux), so that each run's peak is its
/// own (as `weir bench` does). glibc's allocator first returns the free memory it keeps, which
/// an earlier run or check left and which would otherwise be the floor of this run's peak.
pub fn reset_peak_memory() {
    // SAFETY: `malloc_trim` only releases free heap memory; it is safe to call at any time.
    unsafe {
        libc::malloc_trim(0);
    }
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// One timed run: how long it took and this process's peak memory (`VmHWM`) during it.
#[derive(Clone, Copy, Debug)]
pub struct Run {
    pub took: Duration,
    pub peak: Option<u64>,
}

impl Run {
    /// Starts a run: resets the peak-memory mark and returns the start.
    pub fn start() -> Instant {
        reset_peak_memory();
        Instant::now()
    }

    /// Ends a run started at `start` (with [`Run::start`], or after [`reset_peak_memory`]).
    pub fn end(start: Instant) -> Run {
        Run {
            took: start.elapsed(),
            peak: status_bytes("VmHWM:"),
        }
    }

    /// No run yet: slower than any.
    pub const NONE: Run = Run {
        took: Duration::MAX,
        peak: None,
    };

    /// The faster of two runs.
    pub fn min(self, other: Run) -> Run {
        if other.took < self.took {
            other
        } else {
            self
        }
    }

    /// The peak in MiB (0 when unknown).
    pub fn peak_mib(&self) -> f64 {
        self.peak.unwrap_or(0) as f64 / (1024.0 * 1024.0)
    }
}

/// A memory figure of `/proc/self/status` (`VmHWM`, `VmRSS`), in bytes.
pub fn status_bytes(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The clock of one benchmarked job whose workers build their input shares in the job's
/// build closure: it counts the job's start (from the `execute` call until the last worker
/// enters its build closure) and everything after the shares are built (building and running
/// the dataflow, shutting down), but not the building of the input shares.
pub struct JobClock {
    called: Instant,
    /// When the last worker entered the build closure.
    entered: Mutex<Option<Instant>>,
    /// When every share was built, and the RSS then.
    started: Mutex<Option<(Instant, Option<u64>)>>,
}

impl JobClock {
    /// A clock for a job about to be started with `execute`.
    pub fn new() -> Arc<JobClock> {
        Arc::new(JobClock {
            called: Instant::now(),
            entered: Mutex::new(None),
            started: Mutex::new(None),
        })
    }

    /// A worker entered the build closure (call it first thing there).
    pub fn entered(&self) {
        let now = Instant::now();
        let mut entered = self.entered.lock().unwrap();
        *entered = Some(entered.map_or(now, |e| e.max(now)));
    }

    /// Every share is built (call it once, after a barrier of all workers).
    pub fn start(&self) {
        *self.started.lock().unwrap() = Some((Instant::now(), status_bytes("VmRSS:")));
    }

    /// The job's time so far (its start plus the time since [`JobClock::start`]) and the RSS
    /// at the start.
    pub fn stop(&self) -> (Duration, Option<u64>) {
        let (at, rss) = self.started.lock().unwrap().expect("the workers started");
        let entered = self.entered.lock().unwrap().expect("the workers entered");
        (entered.duration_since(self.called) + at.elapsed(), rss)
    }
}

/// The pinned Python that imports `modules` (numpy, sklearn, ...), or a message saying how
/// to get it: `$WEIR_BENCH_PYTHON`, else `~/.cache/weir/bench-venv/bin/python`.
pub fn bench_python(modules: &[&str]) -> Result<PathBuf, String> {
    let python = std::env::var_os("WEIR_BENCH_PYTHON")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join(".cache/weir/bench-venv/bin/python"))
        })
        .ok_or("neither WEIR_BENCH_PYTHON nor HOME is set")?;
    let list = modules.join(", ");
    let hint = format!(
        "run `bash scripts/install-bench-python.sh` (or set WEIR_BENCH_PYTHON to a python \
         with {list})"
    );
    if !python.exists() {
        return Err(format!("no bench python at {}: {hint}", python.display()));
    }
    let ok = Command::new(&python)
        .args(["-c", &format!("import {list}")])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        return Err(format!("{} cannot import {list}: {hint}", python.display()));
    }
    Ok(python)
}

/// The value after `flag` in `args`.
pub fn arg_value(args: &[String], flag: &str) -> Option<String> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

/// Whether this is a benchmark run, and the positional arguments. `cargo bench` passes
/// `--bench`; `cargo test --all-targets` runs a bench binary without it, and then a quick smoke
/// run (same code, small input) is enough.
#[allow(dead_code)] // the benches that take `--flag value` arguments use `arg_value`
pub fn bench_args() -> (bool, Vec<String>) {
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let args = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    (benchmarking, args)
}

/// The `index`-th of `args` (from [`bench_args`]) as a number, or `default` when it is
/// missing or not a number.
pub fn number_arg<N: std::str::FromStr>(args: &[String], index: usize, default: N) -> N {
    args.get(index)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}
