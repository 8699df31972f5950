//! What checkpoints cost, as ratios measured in one run:
//!
//! - **overhead**: a keyed running sum (`map_with_state`) over 200M records (by default) with 100k keys at
//!   `-w 2`, checkpointing every second (and every 200 ms) against the same job without
//!   checkpoints (the issue asks for at least 0.9x throughput at 1 s);
//! - **restore**: a job that restores 1M keys of state from a checkpoint against rebuilding
//!   that state from its input (1M JSON lines parsed, keyed and folded);
//! - **incremental size**: checkpoints of a job where about 1% of 100k keys change per
//!   interval, incremental against full.
//!
//! Each line also gives peak memory (VmHWM, reset right before each run), in MiB: of the
//! fastest run of each overhead configuration (JSON `plain_peak_mib`,
//! `checkpoint_1s_peak_mib`, `checkpoint_200ms_peak_mib`), of the rebuild and the restore
//! (`rebuild_peak_mib`, `restore_peak_mib`), and of the full and incremental size runs
//! (`full_peak_mib`, `incremental_peak_mib`). The overhead job generates its input as it
//! goes (its state is `keys` sums); the restore comparison's state grows with its keys.
//!
//! `cargo bench --bench checkpoints [-- [overhead|restore|sizes]... [RECORDS]]` (RECORDS: the
//! overhead comparison's, default 200M) prints the table and writes
//! `target/bench/checkpoints.json`. Under `cargo test` it does a small smoke run.

#[path = "support/bench_process.rs"]
#[allow(dead_code)]
mod bench_process;

use bench_process::Run;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use weir::prelude::*;
use weir::CheckpointConfig;

/// Sizes of one run.
struct Sizes {
    records: u64,
    keys: u64,
    /// Keys of the restore comparison.
    restore_keys: u64,
    /// Pairs of runs of the overhead comparison.
    runs: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Event {
    key: u64,
    value: u64,
}

/// generate → key_by → running sum per key → a counting sink, on 2 workers; with
/// checkpoints every `interval` when given. Returns the run and the checkpoints taken.
fn keyed_sum(sizes: &Sizes, checkpoints: Option<(&Path, Duration)>) -> (Run, usize) {
    let mut config = Config::threads(2).with_verbose(false);
    if let Some((dir, interval)) = checkpoints {
        config = config.with_checkpoints(CheckpointConfig::new(dir).interval(interval));
    }
    let (records, keys) = (sizes.records, sizes.keys);
    let seen = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&seen);
    let start = Run::start();
    let report = execute(config, move |job| {
        let counter = Arc::clone(&counter);
        job.generate("events", Some(records), |i| i)
            .key_by(move |i: &u64| i.wrapping_mul(0x9e37_79b9_7f4a_7c15) % keys)
            .map_with_state("sum", |sum: &mut u64, i: u64| {
                *sum += i;
                *sum
            })
            .for_each("count", move |_| {
                counter.fetch_add(1, Ordering::Relaxed);
            });
        Ok(())
    })
    .unwrap();
    let run = Run::end(start);
    assert_eq!(seen.load(Ordering::Relaxed), records);
    (run, report.checkpoints.len())
}

/// Writes `keys` JSON lines, one per key.
fn write_input(path: &Path, keys: u64) {
    let mut text = String::with_capacity(keys as usize * 32);
    for key in 0..keys {
        text += &serde_json::to_string(&Event {
            key,
            value: key % 1000,
        })
        .unwrap();
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
}

/// Records of the tail source in [`build_state`].
const TAIL: u64 = 100_000;

/// What a [`build_state`] run does about checkpoints.
#[derive(Clone, Copy, PartialEq)]
enum Checkpoints {
    /// None: the state is built from the input alone.
    Off,
    /// Every 20 ms (full), failing once a checkpoint holds every key.
    FailWhenAllIn,
    /// Restore from the directory, then go on (checkpoints every 2 s).
    Restore,
}

/// read_jsonl → key_by → running sum per key, on 2 workers; returns the run and the
/// records the source read.
fn build_state(input: &Path, dir: &Path, keys: u64, checkpoints: Checkpoints) -> (Run, u64) {
    let mut config = Config::threads(2)
        .with_verbose(false)
        .with_epochs(EpochPolicy::Records(50_000));
    match checkpoints {
        Checkpoints::Off => {}
        Checkpoints::FailWhenAllIn => {
            config = config.with_checkpoints(
                CheckpointConfig::new(dir)
                    .interval(Duration::from_millis(20))
                    .full_every(1),
            )
        }
        // As a job would run: a checkpoint every 2 s.
        Checkpoints::Restore => config = config.with_checkpoints(CheckpointConfig::new(dir)),
    }
    let input = input.to_path_buf();
    let ckpt = dir.to_path_buf();
    let failing = checkpoints == Checkpoints::FailWhenAllIn;
    let start = Run::start();
    let result = execute(config, move |job| {
        let ckpt = ckpt.clone();
        job.read_jsonl::<Event>("events", &input)
            .key_by(|e: &Event| e.key)
            .map_with_state("sum", |sum: &mut u64, e: Event| {
                *sum += e.value;
                *sum
            })
            .for_each("drop", |_| {});
        // A tail that keeps the failing run alive until a checkpoint holds every key, then
        // fails it; in the other runs it passes at once.
        let rate = if failing { 500.0 } else { f64::INFINITY };
        let mut ticks = 0u64;
        job.generate(op("tail").rate(rate), Some(TAIL), |i| i)
            .for_each("check", move |_| {
                ticks += 1;
                if failing && ticks % 25 == 0 && newest_checkpoint_keys(&ckpt) >= keys {
                    panic!("stop after a checkpoint of every key");
                }
            });
        Ok(())
    });
    let run = Run::end(start);
    match result {
        Ok(report) => (run, report.operator("events").unwrap().records_out),
        Err(_) => (run, 0),
    }
}

/// Keys of the `sum` operator in the newest complete checkpoint of `dir`.
fn newest_checkpoint_keys(dir: &Path) -> u64 {
    let store = weir::state::store::CheckpointDir::open(dir).unwrap();
    let Ok((complete, _)) = store.complete() else {
        return 0;
    };
    complete
        .first()
        .and_then(|m| m.operators.iter().find(|o| o.name == "sum"))
        .map_or(0, |o| o.entries)
}

/// The restore comparison: (rebuild run, restore run, records read after the restore).
fn restore_vs_rebuild(sizes: &Sizes, tmp: &Path) -> (Run, Run, u64) {
    let input = tmp.join("events.jsonl");
    write_input(&input, sizes.restore_keys);
    // Rebuild: the whole input into state.
    let (rebuild, read) = build_state(
        &input,
        &tmp.join("none"),
        sizes.restore_keys,
        Checkpoints::Off,
    );
    assert_eq!(read, sizes.restore_keys);
    // A run that stops once a checkpoint holds every key, then the restore.
    let dir = tmp.join("restore");
    build_state(&input, &dir, sizes.restore_keys, Checkpoints::FailWhenAllIn);
    assert!(newest_checkpoint_keys(&dir) >= sizes.restore_keys);
    let (restore, read_after) = build_state(&input, &dir, sizes.restore_keys, Checkpoints::Restore);
    (rebuild, restore, read_after)
}

/// A table of `keys` keys loaded at once, then changes to about 1% of the keys per
/// checkpoint interval; returns the bytes of the checkpoints taken (full, incremental) and
/// the run's peak memory.
fn checkpoint_sizes(sizes: &Sizes, dir: &Path, full_every: u64) -> (Vec<(bool, u64)>, Run) {
    let keys = sizes.keys;
    let interval = Duration::from_millis(100);
    // 1% of the keys per interval.
    let rate = keys as f64 / 100.0 / interval.as_secs_f64();
    let changes = (rate * 2.0) as u64;
    let config = Config::threads(2)
        .with_verbose(false)
        .with_epochs(EpochPolicy::Interval(Duration::from_millis(10)))
        .with_checkpoints(
            CheckpointConfig::new(dir)
                .interval(interval)
                .full_every(full_every),
        );
    let start = Run::start();
    let report = execute(config, move |job| {
        let table = job.generate("table", Some(keys), |k| k);
        let updates = job.generate(op("updates").rate(rate), Some(changes), move |i| {
            i.wrapping_mul(7919) % keys
        });
        table
            .union("all", updates)
            .key_by(|k: &u64| *k)
            .map_with_state("latest", |n: &mut u64, _k: u64| {
                *n += 1;
                *n
            })
            .for_each("drop", |_| {});
        Ok(())
    })
    .unwrap();
    let run = Run::end(start);
    let taken = report
        .checkpoints
        .iter()
        .map(|c| (c.full, c.bytes))
        .collect();
    (taken, run)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    // The failing run of the restore comparison panics on purpose: keep its noise out.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info.payload().downcast_ref::<&str>().copied().unwrap_or("");
        if !message.starts_with("stop after a checkpoint") {
            default_hook(info);
        }
    }));
    let benchmarking = std::env::args().any(|a| a == "--bench");
    // `cargo bench --bench checkpoints -- restore` runs one part (overhead, restore, sizes);
    // a number is the overhead comparison's records.
    let (numbers, parts): (Vec<String>, Vec<String>) = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .partition(|a| a.parse::<u64>().is_ok());
    let part = |name: &str| parts.is_empty() || parts.iter().any(|p| p == name);
    let mut sizes = if benchmarking {
        // 1M records of a keyed sum take ~20 ms here, less than any checkpoint interval:
        // the overhead is measured over enough records to span several checkpoints.
        Sizes {
            records: 200_000_000,
            keys: 100_000,
            restore_keys: 1_000_000,
            runs: 3,
        }
    } else {
        Sizes {
            records: 20_000,
            keys: 2_000,
            restore_keys: 20_000,
            runs: 1,
        }
    };
    if let Some(records) = numbers.first() {
        sizes.records = records.parse().unwrap();
    }
    let tmp = tempfile::tempdir().unwrap();

    let mut results = serde_json::Map::new();
    if part("overhead") {
        overhead(&sizes, tmp.path(), &mut results);
    }
    // Before the restore comparison: the memory its million keys leave with the allocator
    // would count in these runs' peaks.
    if part("sizes") {
        incremental_sizes(&sizes, tmp.path(), &mut results);
    }
    if part("restore") {
        restore(&sizes, tmp.path(), &mut results);
    }
    if benchmarking {
        std::fs::create_dir_all("target/bench").unwrap();
        let json = serde_json::Value::Object(results).to_string();
        std::fs::write("target/bench/checkpoints.json", json).unwrap();
    }
}

type Results = serde_json::Map<String, serde_json::Value>;

/// Alternate runs with and without checkpoints; the median of the per-pair ratios.
fn overhead(sizes: &Sizes, tmp: &Path, results: &mut Results) {
    let (mut at_1s, mut at_200ms) = (Vec::new(), Vec::new());
    let (mut taken_1s, mut taken_200ms) = (0, 0);
    // The fastest run of each configuration (plain, every 1 s, every 200 ms).
    let mut best = [Run::NONE; 3];
    for run in 0..sizes.runs {
        let (plain, _) = keyed_sum(sizes, None);
        let dir = tmp.join(format!("overhead-1s-{run}"));
        let (with_1s, n1) = keyed_sum(sizes, Some((&dir, Duration::from_secs(1))));
        let dir = tmp.join(format!("overhead-200ms-{run}"));
        let (with_200ms, n2) = keyed_sum(sizes, Some((&dir, Duration::from_millis(200))));
        at_1s.push(plain.took.as_secs_f64() / with_1s.took.as_secs_f64());
        at_200ms.push(plain.took.as_secs_f64() / with_200ms.took.as_secs_f64());
        (taken_1s, taken_200ms) = (n1, n2);
        for (b, r) in best.iter_mut().zip([plain, with_1s, with_200ms]) {
            *b = b.min(r);
        }
    }
    let (ratio_1s, ratio_200ms) = (median(at_1s), median(at_200ms));
    let [plain_mib, mib_1s, mib_200ms] = best.map(|r| r.peak_mib());
    println!(
        "keyed running sum, {} records, {} keys, -w 2: {:.0} records/s without checkpoints (peak {plain_mib:.0} MiB)",
        sizes.records,
        sizes.keys,
        sizes.records as f64 / best[0].took.as_secs_f64()
    );
    println!(
        "  checkpoint every 1 s:    {ratio_1s:.3}x the throughput without ({taken_1s} checkpoints, median of {} pairs; peak {mib_1s:.0} MiB)",
        sizes.runs
    );
    println!(
        "  checkpoint every 200 ms: {ratio_200ms:.3}x ({taken_200ms} checkpoints; peak {mib_200ms:.0} MiB)"
    );
    results.insert("records".into(), sizes.records.into());
    results.insert("keys".into(), sizes.keys.into());
    results.insert("overhead_ratio_1s".into(), ratio_1s.into());
    results.insert("overhead_ratio_200ms".into(), ratio_200ms.into());
    results.insert("checkpoints_1s".into(), taken_1s.into());
    results.insert("checkpoints_200ms".into(), taken_200ms.into());
    results.insert("plain_peak_mib".into(), plain_mib.into());
    results.insert("checkpoint_1s_peak_mib".into(), mib_1s.into());
    results.insert("checkpoint_200ms_peak_mib".into(), mib_200ms.into());
}

/// Restore against rebuild.
fn restore(sizes: &Sizes, tmp: &Path, results: &mut Results) {
    let (rebuild, restore, read_after) = restore_vs_rebuild(sizes, tmp);
    let ratio = restore.took.as_secs_f64() / rebuild.took.as_secs_f64();
    let (rebuild_mib, restore_mib) = (rebuild.peak_mib(), restore.peak_mib());
    println!(
        "restore of {} keys: {:.3} s, rebuilding them from {} JSON lines: {:.3} s; restore/rebuild {ratio:.3} ({read_after} records read after the restore); peak MiB: restore {restore_mib:.0}, rebuild {rebuild_mib:.0}",
        sizes.restore_keys,
        restore.took.as_secs_f64(),
        sizes.restore_keys,
        rebuild.took.as_secs_f64()
    );
    results.insert("restore_keys".into(), sizes.restore_keys.into());
    results.insert("restore_s".into(), restore.took.as_secs_f64().into());
    results.insert("rebuild_s".into(), rebuild.took.as_secs_f64().into());
    results.insert("restore_over_rebuild".into(), ratio.into());
    results.insert("restore_peak_mib".into(), restore_mib.into());
    results.insert("rebuild_peak_mib".into(), rebuild_mib.into());
}

/// Incremental against full checkpoint sizes.
fn incremental_sizes(sizes: &Sizes, tmp: &Path, results: &mut Results) {
    let (full, full_run) = checkpoint_sizes(sizes, &tmp.join("sizes-full"), 1);
    let (incremental, incremental_run) =
        checkpoint_sizes(sizes, &tmp.join("sizes-incremental"), 1_000_000);
    let (full_mib, incremental_mib) = (full_run.peak_mib(), incremental_run.peak_mib());
    let full_bytes = full.iter().map(|(_, b)| *b).max().unwrap_or(0);
    let increments: Vec<f64> = incremental
        .iter()
        .filter(|(f, _)| !f)
        .map(|(_, b)| *b as f64)
        .collect();
    let increment_bytes = if increments.is_empty() {
        0.0
    } else {
        median(increments.clone())
    };
    let ratio = increment_bytes / full_bytes.max(1) as f64;
    println!(
        "checkpoint sizes, {} keys, ~1% changing per 100 ms interval: full {full_bytes} bytes, incremental (median of {}) {increment_bytes:.0} bytes, {:.2}% of full; peak MiB: full {full_mib:.0}, incremental {incremental_mib:.0}",
        sizes.keys,
        increments.len(),
        ratio * 100.0
    );
    results.insert("full_checkpoint_bytes".into(), full_bytes.into());
    results.insert(
        "incremental_checkpoint_bytes_median".into(),
        increment_bytes.into(),
    );
    results.insert("incremental_over_full".into(), ratio.into());
    results.insert("full_peak_mib".into(), full_mib.into());
    results.insert("incremental_peak_mib".into(), incremental_mib.into());
}
