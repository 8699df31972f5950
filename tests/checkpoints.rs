//! Checkpoints and recovery in one process: a keyed job that fails part-way resumes from
//! its last checkpoint, and its committed output is the output of a run without failure,
//! as a multiset of lines; also at another parallelism.

#[path = "support/committed_lines.rs"]
mod committed_lines;
use committed_lines::committed_lines as committed;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use weir::prelude::*;
use weir::CheckpointConfig;

const N: u64 = 20_000;
const KEYS: u64 = 97;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
struct Count {
    key: u64,
    count: u64,
}

/// generate → key_by → running count per key → part files. `fail_at` makes the job fail
/// (once) at the first record from there on that passes after a checkpoint completed.
fn run(
    workers: usize,
    out: &Path,
    checkpoints: &Path,
    fail_at: Option<u64>,
) -> Result<JobReport, WeirError> {
    let fail = FailOnce::new(fail_at, checkpoints);
    let out = out.to_path_buf();
    let config = checkpointed(workers, checkpoints, 500, 50);
    execute(config, move |job| {
        let fail = fail.clone();
        let numbers = job
            .generate(op("numbers").rate(100_000.0), Some(N), |i| i)
            .map("maybe_fail", move |i| {
                fail.check(i, "record");
                i
            });
        // Combined before the exchange: partials merged into the owners' state.
        numbers
            .clone()
            .key_by(|i: &u64| i % KEYS)
            .count("combined_counts")
            .write_jsonl("write_combined", out.join("combined"));
        let counts =
            numbers
                .key_by(|i: &u64| i % KEYS)
                .map_with_state("count", |n: &mut u64, i: u64| {
                    *n += 1;
                    Count {
                        key: i % KEYS,
                        count: *n,
                    }
                });
        counts.clone().write_jsonl("write", out.join("counts"));
        counts
            .key_by(|c: &Count| c.key)
            .aggregate_all(
                "totals",
                |_| (0u64, 0u64),
                |(n, max), c: Count| {
                    *n += 1;
                    *max = (*max).max(c.count);
                },
            )
            .write_jsonl("write_totals", out.join("totals"));
        Ok(())
    })
}

/// A job at `workers` threads with epochs of `records` records that checkpoints into
/// `checkpoints` every `every_ms` milliseconds.
fn checkpointed(workers: usize, checkpoints: &Path, records: u64, every_ms: u64) -> Config {
    Config::threads(workers)
        .with_epochs(EpochPolicy::Records(records))
        .with_checkpoints(
            CheckpointConfig::new(checkpoints).interval(Duration::from_millis(every_ms)),
        )
}

/// Records before a failure point that are slowed down (by [`SLOWED_BY`] each) while no
/// checkpoint is complete: up to 5 s for a loaded machine to complete one.
const SLOWED_BEFORE: u64 = 5_000;
/// How long a slowed record waits.
const SLOWED_BY: Duration = Duration::from_millis(1);

/// Fails the job once: at the first record from `at` on that passes after a checkpoint
/// completed in `dir` (so that the failure tests a restore, not a fresh start).
#[derive(Clone)]
struct FailOnce {
    at: Option<u64>,
    dir: PathBuf,
    armed: Arc<AtomicBool>,
}

impl FailOnce {
    fn new(at: Option<u64>, dir: &Path) -> Self {
        FailOnce {
            at,
            dir: dir.to_path_buf(),
            armed: Arc::new(AtomicBool::new(at.is_some())),
        }
    }

    /// Panics (once) if record `i`, a `what`, is where the job fails. Records from
    /// [`SLOWED_BEFORE`] before `at` on are slowed down until a checkpoint completes, so that
    /// the job fails even on a machine too loaded to complete a checkpoint before the input
    /// ends (with `at` at the last record, slowing that record alone was not always enough).
    fn check(&self, i: u64, what: &str) {
        let Some(at) = self.at else {
            return;
        };
        if i + SLOWED_BEFORE < at || !self.armed.load(Ordering::SeqCst) {
            return;
        }
        if i < at {
            if !has_checkpoint(&self.dir) {
                std::thread::sleep(SLOWED_BY);
            }
            return;
        }
        if !has_checkpoint(&self.dir) {
            std::thread::sleep(SLOWED_BY);
        } else if self.armed.swap(false, Ordering::SeqCst) {
            panic!("injected failure at {what} {i}");
        }
    }
}

/// Whether a checkpoint is complete in `dir` (so that an injected failure after it tests a
/// restore, not a fresh start).
fn has_checkpoint(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| e.path().join("MANIFEST").exists())
}

/// Checks what a run committed: each key's counts 1..n exactly once, and one total per key.
fn assert_committed(out: &Path) {
    assert_same_lines(&committed(&out.join("counts")), &expected(), "counts");
    let totals: BTreeMap<String, usize> = (0..KEYS)
        .map(|k| {
            let n = N / KEYS + u64::from(k < N % KEYS);
            (serde_json::json!([k, [n, n]]).to_string(), 1)
        })
        .collect();
    assert_same_lines(&committed(&out.join("totals")), &totals, "totals");
    assert_combined_counts(&committed(&out.join("combined")));
}

/// Checks the running counts of the combined `count`: which counts a key shows depends on
/// the epochs, but each is committed once, and each key's last is its number of records
/// (a state lost or counted twice across the restore shows in both).
fn assert_combined_counts(lines: &BTreeMap<String, usize>) {
    let mut last = BTreeMap::new();
    for (line, times) in lines {
        assert_eq!(*times, 1, "combined count {line} committed {times} times");
        let (key, count): (u64, u64) = serde_json::from_str(line).unwrap();
        let max = last.entry(key).or_insert(0);
        *max = count.max(*max);
    }
    let want: BTreeMap<u64, u64> = (0..KEYS)
        .map(|k| (k, N / KEYS + u64::from(k < N % KEYS)))
        .collect();
    assert_eq!(last, want, "each key's last combined count");
}

/// What every run must give: each key's counts 1..n exactly once.
fn expected() -> BTreeMap<String, usize> {
    let mut per_key = vec![0u64; KEYS as usize];
    let mut lines = BTreeMap::new();
    for i in 0..N {
        let key = i % KEYS;
        per_key[key as usize] += 1;
        let line = serde_json::to_string(&Count {
            key,
            count: per_key[key as usize],
        })
        .unwrap();
        *lines.entry(line).or_insert(0) += 1;
    }
    lines
}

#[test]
fn a_run_without_failure_commits_everything_once() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, ckpt) = (tmp.path().join("out"), tmp.path().join("ckpt"));
    run(2, &out, &ckpt, None).unwrap();
    assert_committed(&out);
}

#[test]
fn a_failed_run_resumes_from_its_checkpoint_with_exactly_once_output() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, ckpt) = (tmp.path().join("out"), tmp.path().join("ckpt"));
    let error = run(2, &out, &ckpt, Some(N * 2 / 3)).unwrap_err();
    assert!(error.to_string().contains("injected failure"), "{error}");
    let manifests = std::fs::read_dir(&ckpt).unwrap().count();
    assert!(manifests > 0, "checkpoints were taken before the failure");
    let report = run(2, &out, &ckpt, None).unwrap();
    let read = report.operator("numbers").unwrap().records_out;
    assert!(
        read < N,
        "the second run went on from a checkpoint: it read {read} of {N}"
    );
    assert_committed(&out);
}

#[test]
fn a_checkpoint_restores_at_another_parallelism() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, ckpt) = (tmp.path().join("out"), tmp.path().join("ckpt"));
    run(2, &out, &ckpt, Some(N / 2)).unwrap_err();
    run(3, &out, &ckpt, None).unwrap();
    assert_committed(&out);
    let tmp = tempfile::tempdir().unwrap();
    let (out, ckpt) = (tmp.path().join("out"), tmp.path().join("ckpt"));
    run(3, &out, &ckpt, Some(N / 2)).unwrap_err();
    run(1, &out, &ckpt, None).unwrap();
    assert_committed(&out);
}

/// orders (generated) ⋈ users (a collection), ⟕ users, and enriched from a table: the joins'
/// inputs are checkpointed state, so a restored job matches later orders with users it
/// read before the failure. `fail_at` as in [`run`].
fn run_joins(
    workers: usize,
    out: &Path,
    checkpoints: &Path,
    fail_at: Option<u64>,
) -> Result<JobReport, WeirError> {
    let fail = FailOnce::new(fail_at, checkpoints);
    let out = out.to_path_buf();
    let config = checkpointed(workers, checkpoints, 500, 50);
    execute(config, move |job| {
        let fail = fail.clone();
        let orders = job
            .generate(op("orders").rate(100_000.0), Some(N), |i| i)
            .map("maybe_fail", move |i| {
                fail.check(i, "order");
                (i % KEYS, i)
            });
        let users = job.from_vec(
            "users",
            (0..KEYS)
                .filter(|k| k % 2 == 0)
                .map(|k| (k, format!("user{k}")))
                .collect(),
        );
        let prices = job.from_vec(
            "prices",
            (0..KEYS)
                .filter(|k| k % 3 == 0)
                .map(|k| TableUpdate::Upsert(k, k * 10))
                .collect(),
        );
        orders
            .clone()
            .join("inner", users.clone())
            .write_jsonl("write_inner", out.join("inner"));
        orders
            .clone()
            .left_join("left", users)
            .write_jsonl("write_left", out.join("left"));
        orders
            .enrich("enrich", prices)
            .write_jsonl("write_enriched", out.join("enriched"));
        Ok(())
    })
}

/// Compares two multisets of lines, naming a few differences (not all of them).
fn assert_same_lines(
    actual: &BTreeMap<String, usize>,
    expected: &BTreeMap<String, usize>,
    what: &str,
) {
    let differ: Vec<String> = expected
        .keys()
        .chain(actual.keys())
        .filter(|l| actual.get(*l) != expected.get(*l))
        .take(5)
        .map(|l| {
            format!(
                "{l}: {:?} times, expected {:?}",
                actual.get(l),
                expected.get(l)
            )
        })
        .collect();
    assert!(
        differ.is_empty(),
        "{what}: {} lines committed, {} expected; e.g.\n{}",
        actual.values().sum::<usize>(),
        expected.values().sum::<usize>(),
        differ.join("\n")
    );
}

/// What the join job must commit, per output directory.
fn expected_joins() -> BTreeMap<&'static str, BTreeMap<String, usize>> {
    let mut expected: BTreeMap<&str, BTreeMap<String, usize>> = BTreeMap::new();
    let mut line = |dir, value: serde_json::Value| {
        *expected
            .entry(dir)
            .or_default()
            .entry(value.to_string())
            .or_insert(0) += 1;
    };
    for i in 0..N {
        let k = i % KEYS;
        let user = (k % 2 == 0).then(|| format!("user{k}"));
        if let Some(user) = &user {
            line(
                "inner",
                serde_json::json!({"data": [k, i, user], "diff": 1}),
            );
        }
        line("left", serde_json::json!({"data": [k, i, user], "diff": 1}));
        let price = (k % 3 == 0).then_some(k * 10);
        line("enriched", serde_json::json!([k, i, price]));
    }
    expected
}

fn committed_joins(out: &Path) -> BTreeMap<&'static str, BTreeMap<String, usize>> {
    ["inner", "left", "enriched"]
        .into_iter()
        .map(|dir| (dir, committed(&out.join(dir))))
        .collect()
}

#[test]
fn joins_resume_from_their_checkpointed_inputs() {
    let expected = expected_joins();
    let tmp = tempfile::tempdir().unwrap();
    let (out, ckpt) = (tmp.path().join("out"), tmp.path().join("ckpt"));
    run_joins(2, &out, &ckpt, None).unwrap();
    let committed = committed_joins(&out);
    for (dir, lines) in &expected {
        assert_same_lines(&committed[dir], lines, &format!("{dir} without failure"));
    }

    for (before, after) in [(2, 2), (2, 3), (3, 1)] {
        let tmp = tempfile::tempdir().unwrap();
        let (out, ckpt) = (tmp.path().join("out"), tmp.path().join("ckpt"));
        let error = run_joins(before, &out, &ckpt, Some(N * 2 / 3)).unwrap_err();
        assert!(error.to_string().contains("injected failure"), "{error}");
        let report = run_joins(after, &out, &ckpt, None).unwrap();
        let read = report.operator("orders").unwrap().records_out;
        assert!(read < N, "the second run resumed: it read {read} of {N}");
        let committed = committed_joins(&out);
        for (dir, lines) in &expected {
            assert_same_lines(
                &committed[dir],
                lines,
                &format!("{dir}, -w {before} then -w {after}"),
            );
        }
    }
}

/// The sum of what each epoch holds, per epoch, from two sources of different speeds.
fn epoch_sums(checkpoints: Option<&Path>) -> Vec<(u64, u64)> {
    let out = Collector::new();
    let sink = out.clone();
    let mut config = Config::threads(2)
        .with_epochs(EpochPolicy::Records(100))
        .with_epoch_max_delay(Duration::from_secs(10));
    if let Some(dir) = checkpoints {
        config =
            config.with_checkpoints(CheckpointConfig::new(dir).interval(Duration::from_millis(20)));
    }
    let report = execute(config, move |job| {
        let fast = job.generate(op("fast").parallelism(1).rate(40_000.0), Some(4_000), |i| i);
        let slow = job.generate(op("slow").parallelism(1).rate(10_000.0), Some(4_000), |i| {
            i * 1_000_000
        });
        fast.union("both", slow)
            .key_by(|_| 0u8)
            .aggregate(
                "per_epoch",
                |_| (0u64, 0u64),
                |(n, sum), i| {
                    *n += 1;
                    *sum += i;
                },
            )
            .map("sums", |(_, sums)| sums)
            .collect("out", &sink);
        Ok(())
    })
    .unwrap();
    if checkpoints.is_some() {
        // The sources take at least 0.4 s at their rates and checkpoints come every 20 ms,
        // but how many complete depends on the machine's load: at least one must.
        assert!(
            !report.checkpoints.is_empty(),
            "no checkpoint completed: {report:?}"
        );
    }
    let mut sums = out.take();
    sums.sort();
    sums
}

#[test]
fn checkpoints_do_not_change_what_record_count_epochs_hold() {
    let tmp = tempfile::tempdir().unwrap();
    assert_eq!(epoch_sums(Some(tmp.path())), epoch_sums(None));
}

/// What the instances of the counting loop emit: a record with the total of all epochs
/// before its own as the instance knew it, or the size of an epoch's batch.
#[derive(Clone, Debug, Serialize, Deserialize)]
enum LoopEvent {
    Record(u64, u64),
    Batch(u64, u64),
}

/// A loop through a feedback edge: every instance of `counted` (checkpointed instance
/// state: the running total it was last told) processes its epoch with the running total
/// of all instances through the previous epoch, which comes back from `sum` over a
/// feedback edge. Writes each record with the total it saw, and the running totals.
/// `fail_at` as in [`run`].
fn run_loop(
    workers: usize,
    out: &Path,
    checkpoints: &Path,
    fail_at: Option<u64>,
) -> Result<JobReport, WeirError> {
    let fail = FailOnce::new(fail_at, checkpoints);
    let out = out.to_path_buf();
    let config = checkpointed(workers, checkpoints, 300, 30);
    execute(config, move |job| {
        let fail = fail.clone();
        let (loopback, totals) = job.feedback::<u64>("totals_back");
        let numbers = job
            .generate(op("numbers").rate(100_000.0), Some(N), |i| i)
            .map("maybe_fail", move |i| {
                fail.check(i, "record");
                i
            });
        let (events, _dead) = numbers.map_batch_with_broadcast_checkpointed(
            "counted",
            totals,
            |_waker| 0u64,
            |known, total| *known = total,
            |known, batch: Vec<u64>, _metrics| {
                let mut out: Vec<Result<LoopEvent, DeadLetter>> =
                    vec![Ok(LoopEvent::Batch(batch.len() as u64, *known))];
                out.extend(batch.into_iter().map(|i| Ok(LoopEvent::Record(i, *known))));
                weir::BatchOutcome::Done(out)
            },
            weir::state::InstanceCheckpoint::new(
                |known: &u64| *known,
                |known, parts: Vec<u64>| *known = parts.into_iter().max().unwrap_or(0),
            ),
        );
        events
            .clone()
            .flat_map("records", |e| match e {
                LoopEvent::Record(i, known) => Some((i, known)),
                LoopEvent::Batch(..) => None,
            })
            .write_jsonl("write_records", out.join("records"));
        let running = events
            .flat_map("batches", |e| match e {
                LoopEvent::Batch(n, known) => Some((n, known)),
                LoopEvent::Record(..) => None,
            })
            .key_by(|_| 0u8)
            .aggregate_per_epoch(
                op("sum").parallelism(1),
                |_| (0u64, 0u64),
                |(n, known), (m, k)| {
                    *n += m;
                    *known = (*known).max(k);
                },
            )
            .map(op("running").parallelism(1), |(_, (n, known))| known + n);
        loopback.connect(running.clone());
        running.write_jsonl("write_running", out.join("running"));
        Ok(())
    })
}

#[test]
fn a_feedback_loop_with_broadcast_state_resumes_exactly_once() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, ckpt) = (tmp.path().join("reference"), tmp.path().join("ckpt0"));
    run_loop(2, &out, &ckpt, None).unwrap();
    let reference = (
        committed(&out.join("records")),
        committed(&out.join("running")),
    );
    assert_eq!(reference.0.len(), N as usize);
    assert!(
        reference.1.contains_key(&N.to_string()),
        "the last running total is N"
    );
    // Same parallelism: the same records with the same totals seen, the same totals.
    let (out, ckpt) = (tmp.path().join("same"), tmp.path().join("ckpt1"));
    run_loop(2, &out, &ckpt, Some(N / 2)).unwrap_err();
    run_loop(2, &out, &ckpt, None).unwrap();
    assert_same_lines(&committed(&out.join("records")), &reference.0, "records");
    assert_same_lines(&committed(&out.join("running")), &reference.1, "running");
    // Another parallelism (epochs differ): every record once, the running totals distinct
    // and ending at N (a total in flight on the loop lost or doubled would show).
    for (before, after) in [(2, 3), (3, 1)] {
        let (out, ckpt) = (
            tmp.path().join(format!("{before}-{after}")),
            tmp.path().join(format!("ckpt-{before}-{after}")),
        );
        run_loop(before, &out, &ckpt, Some(N / 2)).unwrap_err();
        run_loop(after, &out, &ckpt, None).unwrap();
        let records = committed(&out.join("records"));
        let mut seen: Vec<u64> = records
            .iter()
            .flat_map(|(line, n)| {
                let (i, _): (u64, u64) = serde_json::from_str(line).unwrap();
                std::iter::repeat_n(i, *n)
            })
            .collect();
        seen.sort();
        assert_eq!(
            seen,
            (0..N).collect::<Vec<_>>(),
            "{before} -> {after} workers"
        );
        let running = committed(&out.join("running"));
        assert!(running.values().all(|n| *n == 1), "{running:?}");
        let last = running.keys().map(|l| l.parse::<u64>().unwrap()).max();
        assert_eq!(last, Some(N), "{before} -> {after} workers");
    }
}

/// The job of [`run`] with the running count in a hand-written timely operator whose keyed
/// state is registered with [`Job::keyed_state`], and a per-worker record count in
/// [`Job::instance_state`].
fn run_custom(
    workers: usize,
    out: &Path,
    checkpoints: &Path,
    fail_at: Option<u64>,
) -> Result<JobReport, WeirError> {
    use weir::reexports::timely::container::CapacityContainerBuilder;
    use weir::reexports::timely::dataflow::channels::pact::Exchange;
    use weir::reexports::timely::dataflow::operators::generic::Operator;
    let fail = FailOnce::new(fail_at, checkpoints);
    let out = out.to_path_buf();
    let config = checkpointed(workers, checkpoints, 500, 50);
    execute(config, move |job| {
        let fail = fail.clone();
        let numbers = job
            .generate(op("numbers").rate(100_000.0), Some(N), |i| i)
            .map("maybe_fail", move |i| {
                fail.check(i, "record");
                i
            });
        let counts = job.keyed_state::<u64, u64>("custom_count");
        let seen = job.instance_state(
            "custom_seen",
            0u64,
            weir::state::InstanceCheckpoint::new(
                |n: &u64| *n,
                |n, parts: Vec<u64>| *n = parts.into_iter().sum(),
            ),
        );
        let seen_at_end = seen.clone();
        let pact = Exchange::new(|i: &u64| weir::key_hash(&(i % KEYS)));
        let stream = numbers
            .inner()
            .clone()
            .unary_frontier::<CapacityContainerBuilder<Vec<Count>>, _, _, _>(
                pact,
                "CustomCount",
                move |_, _| {
                    move |(input, frontier), output| {
                        input.for_each(|cap, data| {
                            let mut state = counts.borrow_mut();
                            *seen.borrow_mut() += data.len() as u64;
                            let out: Vec<Count> = data
                                .iter()
                                .map(|i| {
                                    let n = state.entry(i % KEYS);
                                    *n += 1;
                                    Count {
                                        key: i % KEYS,
                                        count: *n,
                                    }
                                })
                                .collect();
                            output.session(&cap).give_iterator(out.into_iter());
                        });
                        counts.applied(frontier);
                        seen.applied(frontier);
                        if frontier.is_empty() {
                            SEEN_AT_END.fetch_add(*seen_at_end.borrow(), Ordering::SeqCst);
                        }
                    }
                },
            );
        DataStream::from_timely(job, "custom_count", &[&numbers], stream)
            .write_jsonl("write", out.join("counts"));
        Ok(())
    })
}

/// What the custom operator's instances had counted when the input ended, summed.
static SEEN_AT_END: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

#[test]
fn a_hand_written_operator_keeps_its_registered_state_across_a_restore() {
    for (before, after) in [(2, 2), (2, 3), (3, 1)] {
        let tmp = tempfile::tempdir().unwrap();
        let (out, ckpt) = (tmp.path().join("out"), tmp.path().join("ckpt"));
        run_custom(before, &out, &ckpt, Some(N / 2)).unwrap_err();
        SEEN_AT_END.store(0, Ordering::SeqCst);
        run_custom(after, &out, &ckpt, None).unwrap();
        let label = format!("counts, {before} -> {after} workers");
        assert_same_lines(&committed(&out.join("counts")), &expected(), &label);
        assert_eq!(
            SEEN_AT_END.load(Ordering::SeqCst),
            N,
            "{label}: records seen"
        );
    }
}

/// A state that holds every batch until a side record says "go": the side record comes
/// from record `N / 2` of the main input, so batches of many epochs are held across
/// checkpoints. `fail_at` as in [`run`].
fn run_held(
    workers: usize,
    out: &Path,
    checkpoints: &Path,
    fail_at: Option<u64>,
) -> Result<JobReport, WeirError> {
    let fail = FailOnce::new(fail_at, checkpoints);
    let out = out.to_path_buf();
    let config = checkpointed(workers, checkpoints, 200, 20);
    execute(config, move |job| {
        let fail = fail.clone();
        let numbers = job
            .generate(op("numbers").rate(50_000.0), Some(N), |i| i)
            .map("maybe_fail", move |i| {
                fail.check(i, "record");
                i
            });
        let go = numbers.clone().filter("go", |i| *i == N / 2);
        let (out_stream, _dead) = numbers.map_batch_with_broadcast_checkpointed(
            "held",
            go,
            |_waker| false,
            |ready, _go: u64| *ready = true,
            |ready, batch: Vec<u64>, _metrics| {
                if *ready {
                    weir::BatchOutcome::Done(batch.into_iter().map(Ok).collect())
                } else {
                    weir::BatchOutcome::Hold(batch, "not yet".into())
                }
            },
            weir::state::InstanceCheckpoint::shared(
                |ready: &bool| *ready,
                |ready, saved| *ready = saved,
            ),
        );
        out_stream.write_jsonl("write", out.join("numbers"));
        Ok(())
    })
}

#[test]
fn batches_a_state_holds_are_saved_and_held_again_after_a_restore() {
    let all: BTreeMap<String, usize> = (0..N).map(|i| (i.to_string(), 1)).collect();
    for (before, after) in [(2, 2), (2, 3)] {
        let tmp = tempfile::tempdir().unwrap();
        let (out, ckpt) = (tmp.path().join("out"), tmp.path().join("ckpt"));
        let e = run_held(before, &out, &ckpt, Some(N / 4)).unwrap_err();
        assert!(e.to_string().contains("injected failure"), "{e}");
        run_held(after, &out, &ckpt, None).unwrap();
        let label = format!("{before} -> {after} workers");
        assert_same_lines(&committed(&out.join("numbers")), &all, &label);
    }
}

/// A running sum and count of the numbers, a new version every `SUM_BATCH` numbers over all
/// instances (an online iteration).
#[derive(Clone, Default)]
struct RunningSum {
    rows: Vec<u64>,
}

const SUM_BATCH: usize = 64;

impl weir::OnlineBody for RunningSum {
    type Record = u64;
    type Model = (u64, u64);
    type Partial = (u64, u64);
    type Buffer = Vec<u64>;

    fn push(&mut self, x: u64) -> Result<(), String> {
        self.rows.push(x);
        Ok(())
    }

    fn buffered(&self) -> usize {
        self.rows.len()
    }

    fn batch_rows(&self, round: weir::Round) -> usize {
        let n = round.instances;
        SUM_BATCH / n + usize::from(SUM_BATCH % n > round.instance)
    }

    fn partial(
        &mut self,
        _: weir::Round,
        _: &(u64, u64),
        rows: usize,
    ) -> Result<(u64, u64), String> {
        Ok((self.rows.drain(..rows).sum(), rows as u64))
    }

    fn merge(&mut self, total: &mut (u64, u64), other: (u64, u64)) {
        total.0 += other.0;
        total.1 += other.1;
    }

    fn update(&mut self, m: (u64, u64), p: (u64, u64)) -> Result<(u64, u64), String> {
        Ok((m.0 + p.0, m.1 + p.1))
    }

    fn save_buffer(&self) -> Vec<u64> {
        self.rows.clone()
    }

    fn restore_buffer(&mut self, rows: Vec<u64>) -> Result<(), String> {
        self.rows = rows;
        Ok(())
    }
}

/// generate → an online iteration of running sums → the versions in part files. `fail_at`
/// as in [`run`].
fn run_online(
    workers: usize,
    out: &Path,
    checkpoints: &Path,
    fail_at: Option<u64>,
) -> Result<JobReport, WeirError> {
    let fail = FailOnce::new(fail_at, checkpoints);
    let out = out.to_path_buf();
    let config = checkpointed(workers, checkpoints, 300, 30);
    execute(config, move |job| {
        let fail = fail.clone();
        let numbers = job
            .generate(op("numbers").rate(100_000.0), Some(N), |i| i)
            .map("maybe_fail", move |i| {
                fail.check(i, "record");
                i
            });
        let init = job.from_vec("init", vec![(0u64, 0u64)]);
        numbers
            .iterate_online("sums", init, RunningSum::default())
            .write_jsonl("write", out.join("versions"));
        Ok(())
    })
}

/// The versions a plain loop over the numbers in order makes: one per `SUM_BATCH`, and the
/// last with the rest.
fn sequential_sums() -> BTreeMap<String, usize> {
    let mut versions = vec![(0u64, 0u64)];
    let mut current = (0u64, 0u64);
    for block in (0..N).collect::<Vec<_>>().chunks(SUM_BATCH) {
        current = (
            current.0 + block.iter().sum::<u64>(),
            current.1 + block.len() as u64,
        );
        versions.push(current);
    }
    versions
        .into_iter()
        .map(|v| (serde_json::to_string(&v).unwrap(), 1))
        .collect()
}

#[test]
fn an_online_iteration_resumes_from_its_checkpoint_with_the_versions_of_a_run_without_failure() {
    let tmp = tempfile::tempdir().unwrap();
    let expected = sequential_sums();
    for workers in [1, 2] {
        let (out, ckpt) = (
            tmp.path().join(format!("reference-{workers}")),
            tmp.path().join(format!("ckpt-reference-{workers}")),
        );
        run_online(workers, &out, &ckpt, None).unwrap();
        let reference = committed(&out.join("versions"));
        if workers == 1 {
            assert_same_lines(&reference, &expected, "versions at 1 worker");
        }
        let counts: Vec<u64> = reference
            .keys()
            .map(|l| serde_json::from_str::<(u64, u64)>(l).unwrap().1)
            .collect();
        assert!(
            reference.values().all(|n| *n == 1) && counts.len() == expected.len(),
            "{workers} workers: every version once, one per {SUM_BATCH} numbers: {counts:?}"
        );
        assert!(reference.contains_key(&serde_json::to_string(&(N * (N - 1) / 2, N)).unwrap()));
        for fail_at in [N / 3, N * 2 / 3] {
            let (out, ckpt) = (
                tmp.path().join(format!("failed-{workers}-{fail_at}")),
                tmp.path().join(format!("ckpt-{workers}-{fail_at}")),
            );
            let error = run_online(workers, &out, &ckpt, Some(fail_at)).unwrap_err();
            assert!(error.to_string().contains("injected failure"), "{error}");
            let report = run_online(workers, &out, &ckpt, None).unwrap();
            let read = report.operator("numbers").unwrap().records_out;
            assert!(
                read < N,
                "the second run went on from a checkpoint: it read {read} of {N}"
            );
            assert_same_lines(
                &committed(&out.join("versions")),
                &reference,
                &format!("versions at {workers} workers, failed at {fail_at}"),
            );
        }
    }
}

#[test]
fn an_online_iteration_refuses_a_restore_at_another_parallelism() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, ckpt) = (tmp.path().join("out"), tmp.path().join("ckpt"));
    run_online(2, &out, &ckpt, Some(N / 2)).unwrap_err();
    let error = run_online(3, &out, &ckpt, None).unwrap_err().to_string();
    assert!(
        error.contains("sums") && error.contains("with 2 instances") && error.contains("3"),
        "{error}"
    );
}

/// A labelled row for [`run_online_lr`]: 5 features from a hash of its index, labelled by a
/// fixed hyperplane.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct LabelledRow {
    features: Vec<f64>,
    label: f64,
}

const LR_ROWS: u64 = 2_000;

fn labelled_row(i: u64) -> LabelledRow {
    let features: Vec<f64> = (0..5u64)
        .map(|j| {
            let h = (i * 5 + j + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            ((h >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        })
        .collect();
    let label = f64::from(features[0] - 2.0 * features[1] + 0.5 * features[3] > 0.1);
    LabelledRow { features, label }
}

/// Flink ML's OnlineLogisticRegression fitted on a generated stream in a job that
/// checkpoints; every model version (version, coefficients) goes to part files. `fail_at`
/// as in [`run`].
fn run_online_lr(
    workers: usize,
    out: &Path,
    checkpoints: &Path,
    fail_at: Option<u64>,
) -> Result<JobReport, WeirError> {
    use weir::flink_ml::api::{Stage, TableData};
    use weir::flink_ml::classification::{LogisticRegressionModelData, OnlineLogisticRegression};
    use weir::flink_ml::param::WithParams;
    use weir::flink_ml::table::{DataType, Schema, Table};

    let fail = FailOnce::new(fail_at, checkpoints);
    let out = out.to_path_buf();
    let config = checkpointed(workers, checkpoints, 100, 30);
    let mut stage = OnlineLogisticRegression::new();
    let params = stage.param_map_mut();
    params
        .set_json("globalBatchSize", serde_json::json!(100))
        .unwrap();
    params.set_json("reg", serde_json::json!(0.2)).unwrap();
    let init = LogisticRegressionModelData {
        coefficient: vec![0.0; 5],
        model_version: Some(0),
    };
    let data = TableData {
        schema: LogisticRegressionModelData::schema(true),
        batches: vec![init.to_batch()],
    };
    stage.set_model_data(vec![data]).unwrap();
    execute(config, move |job| {
        let fail = fail.clone();
        let rows = job
            .generate(op("rows").rate(20_000.0), Some(LR_ROWS), |i| i)
            .map("maybe_fail", move |i| {
                fail.check(i, "row");
                labelled_row(i)
            });
        let schema = Schema::new([
            ("features", DataType::DenseVector),
            ("label", DataType::Double),
        ]);
        let train = Table::from_stream("to_table", schema, rows);
        let fitted = stage.fit(job, vec![train])?;
        let versions = fitted.model_data.into_iter().next().expect("model data");
        let schema = versions.schema.clone();
        versions
            .stream
            .map("decode", move |batch| {
                let v = LogisticRegressionModelData::from_batches("test", &schema, &[batch])
                    .expect("a model version");
                (v.model_version, v.coefficient)
            })
            .write_jsonl("write", out.join("versions"));
        Ok(())
    })
}

#[test]
fn online_logistic_regression_resumes_from_its_checkpoint_with_the_versions_of_a_run_without_failure(
) {
    let tmp = tempfile::tempdir().unwrap();
    for workers in [1, 2] {
        let (out, ckpt) = (
            tmp.path().join(format!("lr-reference-{workers}")),
            tmp.path().join(format!("lr-ckpt-reference-{workers}")),
        );
        run_online_lr(workers, &out, &ckpt, None).unwrap();
        let reference = committed(&out.join("versions"));
        assert_eq!(
            reference.len() as u64,
            LR_ROWS / 100 + 1,
            "{workers} workers: the initial version and one per global batch"
        );
        let (out, ckpt) = (
            tmp.path().join(format!("lr-failed-{workers}")),
            tmp.path().join(format!("lr-ckpt-{workers}")),
        );
        let error = run_online_lr(workers, &out, &ckpt, Some(LR_ROWS / 2)).unwrap_err();
        assert!(error.to_string().contains("injected failure"), "{error}");
        let report = run_online_lr(workers, &out, &ckpt, None).unwrap();
        let read = report.operator("rows").unwrap().records_out;
        assert!(
            read < LR_ROWS,
            "the second run went on from a checkpoint: it read {read}"
        );
        assert_same_lines(
            &committed(&out.join("versions")),
            &reference,
            &format!("OnlineLogisticRegression versions at {workers} workers"),
        );
    }
}

/// Gradient descent on `sum (x - m)^2`: each round moves the model halfway to the mean of
/// the cached numbers, for `MEAN_ROUNDS` rounds (a bounded iteration).
#[derive(Clone)]
struct HalfwayToMean;

const MEAN_ROUNDS: u64 = 10;

impl weir::IterationBody for HalfwayToMean {
    type Record = u64;
    type Cached = u64;
    type Model = f64;
    type Partial = (u64, u64);

    fn cache(&mut self, x: u64) -> Result<Option<u64>, String> {
        Ok(Some(x))
    }

    fn weigh(_: &u64) -> usize {
        8
    }

    fn partial(
        &mut self,
        _: weir::Round,
        _: &f64,
        data: &mut weir::DataCache<u64>,
    ) -> Result<(u64, u64), String> {
        let mut sum = (0, 0);
        data.for_each_ref(|x| sum = (sum.0 + x, sum.1 + 1))
            .map_err(|e| e.to_string())?;
        Ok(sum)
    }

    fn merge(&mut self, total: &mut (u64, u64), other: (u64, u64)) {
        total.0 += other.0;
        total.1 += other.1;
    }

    fn update(
        &mut self,
        round: u64,
        m: f64,
        (sum, n): (u64, u64),
    ) -> Result<weir::Step<f64>, String> {
        let next = m + (sum as f64 / n as f64 - m) / 2.0;
        Ok(if round + 1 == MEAN_ROUNDS {
            weir::Step::Finish(next)
        } else {
            weir::Step::Continue(next)
        })
    }
}

/// generate → a bounded iteration over the numbers → its result in a part file. `fail_at`
/// as in [`run`].
fn run_bounded(
    workers: usize,
    out: &Path,
    checkpoints: &Path,
    fail_at: Option<u64>,
) -> Result<JobReport, WeirError> {
    let fail = FailOnce::new(fail_at, checkpoints);
    let out = out.to_path_buf();
    let config = checkpointed(workers, checkpoints, 300, 30);
    execute(config, move |job| {
        let fail = fail.clone();
        let numbers = job
            .generate(op("numbers").rate(50_000.0), Some(N), |i| i)
            .map("maybe_fail", move |i| {
                fail.check(i, "record");
                i
            });
        let init = job.from_vec("init", vec![0.0f64]);
        numbers
            .iterate_bounded("mean", init, HalfwayToMean)
            .write_jsonl("write", out.join("result"));
        Ok(())
    })
}

#[test]
fn a_bounded_iteration_resumes_from_its_checkpointed_cache_at_any_parallelism() {
    let mean = (N - 1) as f64 / 2.0;
    let expected = (0..MEAN_ROUNDS).fold(0.0f64, |m, _| m + (mean - m) / 2.0);
    let expected: BTreeMap<String, usize> = [(serde_json::to_string(&expected).unwrap(), 1)].into();
    let tmp = tempfile::tempdir().unwrap();
    for (before, after) in [(1, 1), (2, 2), (2, 3), (3, 1)] {
        for fail_at in [N / 2, N - 1] {
            let name = format!("{before}-{after}-{fail_at}");
            let (out, ckpt) = (
                tmp.path().join(&name),
                tmp.path().join(format!("ckpt-{name}")),
            );
            let Err(error) = run_bounded(before, &out, &ckpt, Some(fail_at)) else {
                panic!(
                    "{name}: the first run did not fail (checkpoints: {})",
                    has_checkpoint(&ckpt)
                );
            };
            assert!(error.to_string().contains("injected failure"), "{error}");
            let report = run_bounded(after, &out, &ckpt, None).unwrap();
            let read = report.operator("numbers").unwrap().records_out;
            assert!(
                read < N,
                "{name}: the second run went on from a checkpoint: it read {read}"
            );
            assert_same_lines(&committed(&out.join("result")), &expected, &name);
        }
    }
}
