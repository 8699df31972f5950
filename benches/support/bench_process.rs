//! What the benchmarks against scikit-learn share: this process's memory figures, the time
//! of an empty job, the pinned Python of the baselines, and reading `--flag value` arguments.
//! Included by each benchmark with `#[path = "support/bench_process.rs"] mod bench_process;`.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use weir::prelude::*;

/// Resets the kernel's peak-RSS mark of this process (Linux), so that each run's peak is its
/// own (as `weir bench` does).
pub fn reset_peak_memory() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// A memory figure of `/proc/self/status` (`VmHWM`, `VmRSS`), in bytes.
pub fn status_bytes(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The time to run an empty job at `workers` workers (threads, dataflow, shutdown): the
/// median of 5.
pub fn job_startup(workers: usize) -> Duration {
    let mut times: Vec<Duration> = (0..5)
        .map(|_| {
            let started = Instant::now();
            execute(Config::threads(workers).with_verbose(false), |job| {
                job.from_vec("empty", Vec::<u64>::new())
                    .for_each("drop", |_| {});
                Ok(())
            })
            .expect("an empty job");
            started.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
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
