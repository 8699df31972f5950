//! Checkpoints and recovery in one process: a keyed job that fails part-way resumes from
//! its last checkpoint, and its committed output is the output of a run without failure,
//! as a multiset of lines; also at another parallelism.

use std::collections::BTreeMap;
use std::path::Path;
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
/// (once) when that record passes.
fn run(
    workers: usize,
    out: &Path,
    checkpoints: &Path,
    fail_at: Option<u64>,
) -> Result<JobReport, WeirError> {
    let armed = Arc::new(AtomicBool::new(fail_at.is_some()));
    let out = out.to_path_buf();
    let config = Config::threads(workers)
        .with_epochs(EpochPolicy::Records(500))
        .with_checkpoints(CheckpointConfig::new(checkpoints).interval(Duration::from_millis(50)));
    execute(config, move |job| {
        let armed = Arc::clone(&armed);
        job.generate(op("numbers").rate(100_000.0), Some(N), |i| i)
            .map("maybe_fail", move |i| {
                if Some(i) == fail_at && armed.swap(false, Ordering::SeqCst) {
                    panic!("injected failure at record {i}");
                }
                i
            })
            .key_by(|i: &u64| i % KEYS)
            .map_with_state("count", |n: &mut u64, i: u64| {
                *n += 1;
                Count {
                    key: i % KEYS,
                    count: *n,
                }
            })
            .write_jsonl("write", out.clone());
        Ok(())
    })
}

/// Every line of the committed part files, counted.
fn committed(dir: &Path) -> BTreeMap<String, usize> {
    let mut lines = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".inprogress") {
            continue;
        }
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            *lines.entry(line.to_string()).or_insert(0) += 1;
        }
    }
    lines
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
    assert_eq!(committed(&out), expected());
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
    assert_eq!(committed(&out), expected());
}

#[test]
fn a_checkpoint_restores_at_another_parallelism() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, ckpt) = (tmp.path().join("out"), tmp.path().join("ckpt"));
    run(2, &out, &ckpt, Some(N / 2)).unwrap_err();
    run(3, &out, &ckpt, None).unwrap();
    assert_eq!(committed(&out), expected());
    let tmp = tempfile::tempdir().unwrap();
    let (out, ckpt) = (tmp.path().join("out"), tmp.path().join("ckpt"));
    run(3, &out, &ckpt, Some(N / 2)).unwrap_err();
    run(1, &out, &ckpt, None).unwrap();
    assert_eq!(committed(&out), expected());
}
