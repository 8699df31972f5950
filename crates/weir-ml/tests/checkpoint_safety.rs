//! Checkpoints that must not be trusted: a file whose bincode claims 2^40 bytes, a model of
//! another shape or learner, one with too few weights; and a store that cannot be read at
//! resume. Each is skipped with a reason or fails the job; none aborts, panics, trains on
//! silently or overwrites versions.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use weir_core::{execute, op, Collector, Config, WeirError};
use weir_ml::{
    Checkpoint, DirStore, FtrlClassifier, LabeledPoint, LogisticModel, ModelStore,
    OnlineClassifier, OnlineLearnExt, OnlineOptions, OnlinePrediction, RedisStore, SgdClassifier,
};

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Digit {
    id: u64,
    x: Vec<f32>,
    y: usize,
}

fn stream(n: usize) -> Vec<LabeledPoint> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/data/digits.jsonl");
    let digits: Vec<Digit> = std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (0..n)
        .map(|i| {
            let d = &digits[i % digits.len()];
            LabeledPoint {
                x: d.x.iter().map(|v| v / 16.0).collect(),
                y: d.y,
            }
        })
        .collect()
}

/// Runs the online trainer over `points`; the predictions in order, or the job's error.
fn learn<C: OnlineClassifier + Clone + Sync>(
    points: Vec<LabeledPoint>,
    classifier: C,
    options: OnlineOptions,
) -> Result<Vec<OnlinePrediction>, WeirError> {
    let out = Collector::new();
    let sink = out.clone();
    execute(Config::threads(1).with_verbose(false), move |job| {
        job.from_vec(op("points").parallelism(1), points.clone())
            .learn_online("train", classifier.clone(), |p| p, options.clone())
            .predictions
            .collect("predictions", &sink);
        Ok(())
    })?;
    let mut p = out.take();
    p.sort_by_key(|p| p.index);
    Ok(p)
}

fn accuracy(p: &[OnlinePrediction]) -> f64 {
    p.iter().filter(|p| p.label == p.truth).count() as f64 / p.len().max(1) as f64
}

fn sgd() -> SgdClassifier {
    SgdClassifier::new(10, 64, 0.5, 1e-4, 1e-5)
}

fn options(store: Arc<dyn ModelStore>) -> OnlineOptions {
    OnlineOptions {
        store: Some(store),
        checkpoint_records: 1000,
        store_retries: 2,
        store_backoff: Duration::from_millis(10),
        ..OnlineOptions::default()
    }
}

/// A trained 10 x 64 checkpoint of `version`.
fn trained_checkpoint(version: u64) -> Checkpoint {
    let mut learner = sgd();
    for p in stream(3000) {
        learner.learn(&p.x, p.y);
    }
    Checkpoint {
        version,
        records: 3000,
        metrics: Default::default(),
        learner: "sgd".into(),
        model: learner.model(),
        scaler: None,
    }
}

/// A 2.6 KB checkpoint file with a valid header and checksum whose payload says its first
/// metric name is 2^40 bytes long.
fn length_bomb() -> Vec<u8> {
    // version 9, records 0, one metric, then the name's length as a u64 varint.
    let mut payload = vec![9u8, 0, 1, 253];
    payload.extend_from_slice(&(1u64 << 40).to_le_bytes());
    payload.resize(2600, b'x');
    let mut bytes = b"WEIRCKP2".to_vec();
    bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    bytes.extend_from_slice(&payload);
    bytes
}

#[test]
fn a_checkpoint_claiming_two_to_the_forty_bytes_is_skipped_not_allocated() {
    let dir = tempfile::tempdir().unwrap();
    let store = DirStore::open(dir.path()).unwrap();
    store.save(&trained_checkpoint(1)).unwrap();
    std::fs::write(store.path(2), length_bomb()).unwrap();
    let reason = Checkpoint::decode(&length_bomb()).unwrap_err();
    assert!(reason.contains("undecodable"), "{reason}");
    assert_eq!(store.latest().unwrap().unwrap().version, 1);
    // The trainer resumes from v1 and numbers its versions after the bomb.
    let store: Arc<dyn ModelStore> = Arc::new(store);
    let p = learn(stream(1500), sgd(), options(Arc::clone(&store))).unwrap();
    assert_eq!(p[0].model_version, 1, "resumed from v1");
    assert!(
        store.latest().unwrap().unwrap().version >= 3,
        "after the bomb's v2"
    );
    assert_eq!(
        store.read(2).unwrap().unwrap(),
        length_bomb(),
        "v2 untouched"
    );
}

#[test]
fn a_checkpoint_of_another_shape_is_skipped_and_its_versions_are_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(DirStore::open(dir.path()).unwrap());
    // Another job's 3-class, 4-feature model, at v1 and v2.
    for version in 1..=2 {
        store
            .save(&Checkpoint {
                version,
                records: 10,
                metrics: Default::default(),
                learner: "sgd".into(),
                model: LogisticModel::zeros(3, 4),
                scaler: None,
            })
            .unwrap();
    }
    let before = std::fs::read(store.path(1)).unwrap();
    let p = learn(stream(3000), sgd(), options(store.clone())).unwrap();
    assert_eq!(p[0].model_version, 0, "started fresh");
    assert!(accuracy(&p) > 0.85, "accuracy {}", accuracy(&p));
    assert_eq!(
        std::fs::read(store.path(1)).unwrap(),
        before,
        "v1 untouched"
    );
    let latest = store.latest().unwrap().unwrap();
    assert!(latest.version >= 3, "new versions come after v2");
    assert_eq!((latest.model.classes, latest.model.features), (10, 64));
}

#[test]
fn a_checkpoint_of_another_learner_or_scaling_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(DirStore::open(dir.path()).unwrap());
    store.save(&trained_checkpoint(1)).unwrap();
    // FTRL does not resume from SGD's weights.
    let ftrl = FtrlClassifier::new(10, 64, 0.5, 1.0, 0.0, 1e-3);
    let p = learn(stream(100), ftrl, options(store.clone())).unwrap();
    assert_eq!(p[0].model_version, 0);
    // A trainer with a scaler does not resume from a model trained without one.
    let mut scaled = options(store.clone());
    scaled.scale = true;
    let p = learn(stream(100), sgd(), scaled).unwrap();
    assert_eq!(p[0].model_version, 0);
    // The SGD trainer without a scaler does.
    let p = learn(stream(100), sgd(), options(store.clone())).unwrap();
    assert!(p[0].model_version >= 1);
}

#[test]
fn a_checkpoint_with_too_few_weights_is_refused_at_load() {
    let mut c = trained_checkpoint(1);
    c.model.weights.truncate(3);
    let bytes = c.encode().unwrap();
    let reason = Checkpoint::decode(&bytes).unwrap_err();
    assert!(reason.contains("3 weights"), "{reason}");
    let mut c = trained_checkpoint(1);
    c.model.bias[4] = f32::NAN;
    let reason = Checkpoint::decode(&c.encode().unwrap()).unwrap_err();
    assert!(reason.contains("bias 4 is NaN"), "{reason}");
    // Learners refuse a model of another shape instead of panicking.
    let mut ftrl = FtrlClassifier::new(10, 64, 0.5, 1.0, 0.0, 1e-3);
    assert!(ftrl.restore(&LogisticModel::zeros(3, 4), 0).is_err());
    assert!(sgd().restore(&LogisticModel::zeros(10, 63), 0).is_err());
}

#[test]
fn a_store_that_cannot_be_read_at_resume_fails_the_job() {
    // Nothing listens on port 1: the store is down.
    let store = RedisStore::open("redis://127.0.0.1:1/", "down").unwrap();
    let error = learn(stream(100), sgd(), options(Arc::new(store)))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("operator `train` failed")
            && error.contains("cannot read the model store")
            && error.contains("after 3 tries"),
        "{error}"
    );
}

#[test]
fn special_files_and_absurd_versions_in_the_store_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let store = DirStore::open(dir.path()).unwrap();
    store.save(&trained_checkpoint(1)).unwrap();
    // A FIFO (opening it for reading would block), a directory, a junk file at the largest
    // version, and a valid frame whose record count and version are u64::MAX.
    let fifo = std::ffi::CString::new(store.path(2).to_str().unwrap()).unwrap();
    // SAFETY: mkfifo on a path in the test's own temporary directory.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    std::fs::create_dir(store.path(3)).unwrap();
    std::fs::write(store.path(u64::MAX), b"junk").unwrap();
    let mut absurd = trained_checkpoint(4);
    absurd.records = u64::MAX;
    std::fs::write(store.path(4), framed_unchecked(&absurd)).unwrap();
    let mut misnamed = trained_checkpoint(9);
    misnamed.version = 5;
    store.save(&misnamed).unwrap();
    std::fs::rename(store.path(5), store.path(6)).unwrap();
    let store: Arc<dyn ModelStore> = Arc::new(store);
    let p = learn(stream(1500), sgd(), options(Arc::clone(&store))).unwrap();
    assert_eq!(
        p[0].model_version, 1,
        "resumed from v1, past everything else"
    );
}

/// A checkpoint file as `Checkpoint::encode` frames it, without the validation a save would
/// not do anyway (the fields are what the test wants on disk).
fn framed_unchecked(c: &Checkpoint) -> Vec<u8> {
    c.encode().unwrap()
}

#[test]
fn a_redis_that_accepts_and_never_answers_is_an_error_not_a_hang() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    // Accept connections and never answer them.
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = std::sync::Arc::clone(&held);
    std::thread::spawn(move || {
        for s in silent.incoming().flatten() {
            keep.lock().unwrap().push(s);
        }
    });
    let store = RedisStore::open(&format!("redis://127.0.0.1:{port}/"), "silent").unwrap();
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(store.versions().map(|_| ()));
    });
    let outcome = result
        .recv_timeout(Duration::from_secs(60))
        .expect("versions() hung on a silent Redis");
    assert!(outcome.is_err(), "a silent Redis is an error");
}
