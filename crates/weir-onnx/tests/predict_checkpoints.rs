//! The predict operator in a job that checkpoints: the models it holds are part of the
//! checkpoint, so a job that fails after a model swap resumes scoring with the swapped-in
//! version (the model stream is not read again), with exactly-once output, also at another
//! parallelism.

#[path = "../../../tests/support/committed_lines.rs"]
mod committed_lines;
use committed_lines::committed_lines as committed;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use weir_core::{execute, op, CheckpointConfig, Config, EpochPolicy, WeirError};
use weir_onnx::{ModelUpdate, PredictConfig, PredictExt};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Digit {
    id: u64,
    x: Vec<f32>,
    y: i64,
}

/// What is written per record: its id, the label and the model version that scored it.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Scored {
    id: u64,
    label: i64,
    version: u64,
}

fn model(version: u64, file: &str) -> ModelUpdate {
    ModelUpdate::from_path("digits", version, fixtures().join("models").join(file))
}

/// Dead letters of the runs of one test.
static DEAD: AtomicU64 = AtomicU64::new(0);

/// digits (paced) → predict with v1 at the models' epoch 0 and v2 at epoch 1 → part files.
/// `fail_at` fails the job once, at the first record from that id on after a checkpoint.
fn run(workers: usize, out: &Path, ckpt: &Path, fail_at: Option<u64>) -> Result<(), WeirError> {
    let armed = Arc::new(AtomicBool::new(fail_at.is_some()));
    let (out, dir) = (out.to_path_buf(), ckpt.to_path_buf());
    // Epochs of exactly 100 records (no bound on how long one may take to fill), so that the
    // uninterrupted and the restored run hold the same epochs even on a busy machine.
    let config = Config::threads(workers)
        .with_epochs(EpochPolicy::Records(100))
        .with_epoch_max_delay(Duration::from_secs(3600))
        .with_checkpoints(CheckpointConfig::new(ckpt).interval(Duration::from_millis(40)));
    execute(config, move |job| {
        let armed = Arc::clone(&armed);
        let dir = dir.clone();
        let digits = job.read_jsonl::<Digit>(
            op("digits").rate(3_000.0),
            fixtures().join("data/digits.jsonl"),
        );
        let models = job.from_vec(
            op("models").parallelism(1).epochs(EpochPolicy::Records(1)),
            vec![
                model(1, "digits_logreg.onnx"),
                model(2, "digits_logreg_v2.onnx"),
            ],
        );
        let (scored, dead) = digits.predict(
            "predict",
            models,
            |d: &Digit, row: &mut Vec<f32>| row.extend_from_slice(&d.x),
            PredictConfig::default(),
        );
        dead.for_each("count_dead", |_| {
            DEAD.fetch_add(1, Ordering::SeqCst);
        });
        scored
            .map("maybe_fail", move |p| {
                // Records from `fail_at` on are slowed down until a checkpoint completes,
                // so that the job fails even on a loaded machine.
                let failing =
                    fail_at.is_some_and(|at| p.record.id >= at) && armed.load(Ordering::SeqCst);
                if failing && !has_checkpoint(&dir) {
                    std::thread::sleep(std::time::Duration::from_micros(200));
                } else if failing && armed.swap(false, Ordering::SeqCst) {
                    panic!("injected failure at record {}", p.record.id);
                }
                Scored {
                    id: p.record.id,
                    label: p.label,
                    version: p.model_version,
                }
            })
            .write_jsonl("write", out.join("scored"));
        Ok(())
    })
    .map(|_| ())
}

fn has_checkpoint(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| e.path().join("MANIFEST").exists())
}

fn scored(lines: &BTreeMap<String, usize>) -> Vec<(Scored, usize)> {
    lines
        .iter()
        .map(|(l, n)| (serde_json::from_str(l).unwrap(), *n))
        .collect()
}

#[test]
fn a_restored_job_scores_with_the_models_it_had_loaded() {
    let tmp = tempfile::tempdir().unwrap();
    let records = std::fs::read_to_string(fixtures().join("data/digits.jsonl"))
        .unwrap()
        .lines()
        .count();
    let reference = tmp.path().join("reference");
    run(2, &reference, &tmp.path().join("ckpt0"), None).unwrap();
    let want = committed(&reference.join("scored"));
    assert_eq!(want.values().sum::<usize>(), records);
    assert!(
        scored(&want).iter().any(|(s, _)| s.version == 2),
        "v2 scored the later epochs"
    );
    for (before, after) in [(2, 2), (2, 3)] {
        DEAD.store(0, Ordering::SeqCst);
        let out = tmp.path().join(format!("out-{before}-{after}"));
        let ckpt = tmp.path().join(format!("ckpt-{before}-{after}"));
        let e = run(before, &out, &ckpt, Some(records as u64 * 2 / 3)).unwrap_err();
        assert!(e.to_string().contains("injected failure"), "{e}");
        run(after, &out, &ckpt, None).unwrap();
        let got = committed(&out.join("scored"));
        let label = format!("{before} -> {after} workers");
        assert_eq!(
            DEAD.load(Ordering::SeqCst),
            0,
            "{label}: no record went unscored"
        );
        let mut ids: Vec<u64> = scored(&got)
            .iter()
            .flat_map(|(s, n)| std::iter::repeat_n(s.id, *n))
            .collect();
        ids.sort();
        assert_eq!(ids.len(), records, "{label}: every record once");
        ids.dedup();
        assert_eq!(ids.len(), records, "{label}: every record once");
        if before == after {
            // Same epochs: the same models scored the same records.
            // The first lines each run has and the other has not, to say what differs.
            let only_got: Vec<&String> = got
                .keys()
                .filter(|k| !want.contains_key(*k))
                .take(5)
                .collect();
            let only_want: Vec<&String> = want
                .keys()
                .filter(|k| !got.contains_key(*k))
                .take(5)
                .collect();
            assert!(
                got == want,
                "{label}: output differs from the uninterrupted run: only restored {only_got:?}, only uninterrupted {only_want:?}"
            );
        }
    }
}
