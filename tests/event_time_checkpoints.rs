//! Event-time state in checkpoints: a job that fails with windows, timers and interval-join
//! buffers open resumes from its last checkpoint, and what it commits is exactly what a run
//! without failure commits (as a multiset of lines), also at another parallelism.

#[path = "support/committed_lines.rs"]
mod committed_lines;
use committed_lines::committed_lines;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use weir::prelude::*;
use weir::time::{
    KeyedProcessFunction, ProcessContext, Stamped, Timer, WatermarkStrategy, Windows,
};
use weir::CheckpointConfig;

const N: u64 = 12_000;
const KEYS: u64 = 41;

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Ev {
    id: u64,
    key: u64,
    ts: i64,
}

/// Event `i`: about 10 ms apart, up to 300 ms out of order; one in 61 held back 5 s (late),
/// one in 37 held back 1.5 s (within the allowed lateness: a correction).
fn event(i: u64) -> Ev {
    let mut h = i.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    h = (h ^ (h >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h = (h ^ (h >> 27)) >> 20;
    let held_back = match (i % 61, i % 37) {
        (60, _) => 5_000,
        (_, 36) => 1_500,
        _ => 0,
    };
    let ts = i as i64 * 10 - (h % 300) as i64 - held_back;
    Ev {
        id: i,
        key: (h >> 8) % KEYS,
        ts,
    }
}

/// Counts a key's records and emits the count every time an event-time timer 1 s after
/// a record fires (one timer per key and second).
struct TimedCounts;

impl KeyedProcessFunction<u64, Ev> for TimedCounts {
    type State = u64;
    type Out = (u64, i64, u64);

    fn process_element(
        &mut self,
        r: Stamped<Ev>,
        ctx: &mut ProcessContext<'_, u64, u64, Self::Out>,
    ) {
        *ctx.state() += 1;
        ctx.register_event_time_timer((r.ts.div_euclid(1_000) + 1) * 1_000);
    }

    fn on_timer(&mut self, timer: Timer, ctx: &mut ProcessContext<'_, u64, u64, Self::Out>) {
        let (key, n) = (*ctx.key(), *ctx.state());
        ctx.emit((key, timer.time, n));
    }
}

#[derive(Clone)]
struct FailOnce {
    at: Option<u64>,
    dir: PathBuf,
    armed: Arc<AtomicBool>,
}

impl FailOnce {
    /// Fails once at record `at` or later, after a checkpoint in `checkpoints` completed.
    fn new(at: Option<u64>, checkpoints: &Path) -> Self {
        FailOnce {
            at,
            dir: checkpoints.to_path_buf(),
            armed: Arc::new(AtomicBool::new(at.is_some())),
        }
    }

    /// Records from `at` on are slowed down until a checkpoint completes, so that the job
    /// fails even on a machine too loaded to complete one before the input ends.
    fn check(&self, i: u64) {
        if self.at.is_none_or(|at| i < at) || !self.armed.load(Ordering::SeqCst) {
            return;
        }
        let checkpointed = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| e.path().join("MANIFEST").exists());
        if !checkpointed {
            std::thread::sleep(std::time::Duration::from_micros(200));
        } else if self.armed.swap(false, Ordering::SeqCst) {
            panic!("injected failure at record {i}");
        }
    }
}

fn run(
    workers: usize,
    out: &Path,
    checkpoints: &Path,
    fail_at: Option<u64>,
) -> Result<JobReport, WeirError> {
    let fail = FailOnce::new(fail_at, checkpoints);
    let out = out.to_path_buf();
    let config = Config::threads(workers)
        .with_verbose(false)
        .with_epochs(EpochPolicy::Records(300))
        .with_checkpoints(CheckpointConfig::new(checkpoints).interval(Duration::from_millis(40)));
    execute(config, move |job| {
        let fail = fail.clone();
        let strategy = WatermarkStrategy::for_bounded_out_of_orderness(Duration::from_millis(300))
            .with_timestamp_assigner(|e: &Ev| e.ts);
        let events = job
            .generate(op("events").parallelism(1).rate(60_000.0), Some(N), event)
            .map(op("maybe_fail").parallelism(1), move |e: Ev| {
                fail.check(e.id);
                e
            })
            .assign_timestamps(op("ts").parallelism(1), strategy);
        let (windows, late) = events
            .clone()
            .key_by(|e: &Ev| e.key)
            .window(Windows::sliding(
                Duration::from_millis(2_000),
                Duration::from_millis(1_000),
            ))
            .allowed_lateness(Duration::from_millis(1_500))
            .aggregate(
                "windows",
                || (0u64, 0u64),
                |a, e: &Ev| {
                    a.0 += 1;
                    a.1 += e.id
                },
                |a, b| {
                    a.0 += b.0;
                    a.1 += b.1
                },
            )
            .with_late_data();
        windows
            .map("window-lines", |r| {
                (r.key, r.window.start, r.pane.index, r.value)
            })
            .write_jsonl("write-windows", out.join("windows"));
        late.map("late-ids", |s: Stamped<Ev>| s.data.id)
            .write_jsonl("write-late", out.join("late"));
        events
            .clone()
            .key_by(|e: &Ev| e.key)
            .process("timed-counts", TimedCounts)
            .records()
            .write_jsonl("write-timed", out.join("timed"));
        let odd = events.clone().filter("odd", |e: &Ev| e.id % 2 == 1);
        events
            .filter("even", |e: &Ev| e.id % 2 == 0)
            .key_by(|e: &Ev| e.key)
            .interval_join(
                "pairs",
                odd.key_by(|e: &Ev| e.key),
                -50,
                50,
                |_, a: &Ev, b: &Ev| (a.id, b.id),
            )
            .records()
            .write_jsonl("write-pairs", out.join("pairs"));
        Ok(())
    })
}

/// Every committed line of each output, counted.
fn committed(out: &Path) -> BTreeMap<String, BTreeMap<String, usize>> {
    ["windows", "late", "timed", "pairs"]
        .iter()
        .map(|name| (name.to_string(), committed_lines(&out.join(name))))
        .collect()
}

fn assert_same(
    got: &BTreeMap<String, BTreeMap<String, usize>>,
    want: &BTreeMap<String, BTreeMap<String, usize>>,
) {
    for (name, lines) in want {
        let g = &got[name];
        let missing: Vec<_> = lines
            .iter()
            .filter(|(l, n)| g.get(*l) != Some(n))
            .take(5)
            .collect();
        let extra: Vec<_> = g
            .iter()
            .filter(|(l, n)| lines.get(*l) != Some(n))
            .take(5)
            .collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{name}: missing or miscounted {missing:?}, extra {extra:?}"
        );
    }
}

#[test]
fn event_time_state_resumes_from_a_checkpoint_with_exactly_once_output() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, ckpt) = (tmp.path().join("reference"), tmp.path().join("ckpt-ref"));
    run(2, &out, &ckpt, None).unwrap();
    let reference = committed(&out);
    let sizes: Vec<_> = reference
        .iter()
        .map(|(k, v)| (k.clone(), v.len()))
        .collect();
    assert!(
        !reference["late"].is_empty() && !reference["pairs"].is_empty(),
        "{sizes:?}"
    );
    assert!(
        reference["windows"].keys().any(|l| !l.contains(",0,[")),
        "corrections were emitted"
    );

    for (first, second) in [(2, 2), (2, 3), (3, 1)] {
        let (out, ckpt) = (
            tmp.path().join(format!("out-{first}-{second}")),
            tmp.path().join(format!("ckpt-{first}-{second}")),
        );
        let error = run(first, &out, &ckpt, Some(N / 2)).unwrap_err();
        assert!(error.to_string().contains("injected failure"), "{error}");
        let report = run(second, &out, &ckpt, None).unwrap();
        let read = report.operator("events").unwrap().records_out;
        assert!(
            read < N,
            "the second run went on from a checkpoint: it read {read} of {N}"
        );
        assert_same(&committed(&out), &reference);
    }
}

/// A time-ordered file read by two instances in blocks of 4 KiB (about 90 of them).
fn write_time_ordered_file(path: &Path, events: u64) {
    let mut text = String::new();
    for i in 0..events {
        let e = Ev {
            id: i,
            key: i % KEYS,
            ts: 10 * i as i64,
        };
        text += &serde_json::to_string(&e).unwrap();
        text += "\n";
    }
    std::fs::write(path, text).unwrap();
}

/// Windows over a time-ordered file with a watermark that allows no disorder: any record
/// an instance reads after going back in the file would be late.
fn run_file(
    workers: usize,
    input: &Path,
    out: &Path,
    checkpoints: &Path,
    fail_at: Option<u64>,
) -> Result<JobReport, WeirError> {
    let fail = FailOnce::new(fail_at, checkpoints);
    let (input, out) = (input.to_path_buf(), out.to_path_buf());
    let config = Config::threads(workers)
        .with_verbose(false)
        .with_file_block_bytes(4096)
        .with_epochs(EpochPolicy::Records(100))
        .with_checkpoints(CheckpointConfig::new(checkpoints).interval(Duration::from_millis(40)));
    execute(config, move |job| {
        let fail = fail.clone();
        let strategy =
            WatermarkStrategy::for_monotonous_timestamps().with_timestamp_assigner(|e: &Ev| e.ts);
        let (windows, late) = job
            .read_jsonl::<Ev>(op("events").parallelism(2), &input)
            .map(op("maybe_fail").parallelism(2), move |e: Ev| {
                fail.check(e.id);
                e
            })
            .assign_timestamps(op("ts").parallelism(2), strategy)
            .key_by(|e: &Ev| e.key)
            .window(Windows::tumbling(Duration::from_millis(1_000)))
            .aggregate("windows", || 0u64, |n, _: &Ev| *n += 1, |n, m| *n += m)
            .with_late_data();
        windows
            .map("window-lines", |r| (r.key, r.window.start, r.value))
            .write_jsonl("write-windows", out.join("windows"));
        late.map("late-ids", |s: Stamped<Ev>| s.data.id)
            .write_jsonl("write-late", out.join("late"));
        Ok(())
    })
}

#[test]
fn a_restored_file_source_takes_turns_along_the_file_again_so_nothing_turns_late() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("events.jsonl");
    write_time_ordered_file(&input, 6_000);
    let count = |out: &Path, name: &str| committed_lines(&out.join(name));
    let reference = tmp.path().join("reference");
    run_file(2, &input, &reference, &tmp.path().join("ckpt-ref"), None).unwrap();
    let windows = count(&reference, "windows");
    assert_eq!(
        windows.len(),
        60 * KEYS as usize,
        "one window per key and second"
    );
    assert!(count(&reference, "late").is_empty());
    for second in [2, 3] {
        let out = tmp.path().join(format!("out-{second}"));
        let ckpt = tmp.path().join(format!("ckpt-{second}"));
        let error = run_file(2, &input, &out, &ckpt, Some(3_000)).unwrap_err();
        assert!(error.to_string().contains("injected failure"), "{error}");
        let report = run_file(second, &input, &out, &ckpt, None).unwrap();
        assert!(report.operator("events").unwrap().records_out < 6_000);
        let late: Vec<String> = count(&out, "late").into_keys().collect();
        assert!(
            late.is_empty(),
            "restored at {second}: {} late records, ids {:?}",
            late.len(),
            &late[..late.len().min(5)]
        );
        assert_eq!(count(&out, "windows"), windows, "restored at {second}");
    }
}
