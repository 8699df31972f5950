//! Online learning on the digits stream: prequential accuracy against scikit-learn's
//! SGDClassifier, FTRL and the scaler, checkpoints in a directory and in a real Redis, corrupt
//! checkpoints skipped, and a killed job resuming from its checkpoint.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use weir_core::{execute, op, Collector, Config};
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

/// The stream of the reference script: record i = digit (i mod 1797), features / 16.
fn stream(range: std::ops::Range<usize>) -> Vec<(u64, LabeledPoint)> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/data/digits.jsonl");
    let digits: Vec<Digit> = std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    range
        .map(|i| {
            let d = &digits[i % digits.len()];
            let x = d.x.iter().map(|v| v / 16.0).collect();
            (i as u64, LabeledPoint { x, y: d.y })
        })
        .collect()
}

/// Runs the trainer over `records` on 2 workers; returns predictions in stream order.
fn learn<C: OnlineClassifier + Clone + Sync>(
    records: Vec<(u64, LabeledPoint)>,
    classifier: C,
    options: OnlineOptions,
) -> Vec<OnlinePrediction> {
    let out = Collector::new();
    let sink = out.clone();
    execute(Config::threads(2), move |job| {
        job.from_vec(op("digits").parallelism(1), records.clone())
            .learn_online(
                "train",
                classifier.clone(),
                |r: (u64, LabeledPoint)| r.1,
                options.clone(),
            )
            .predictions
            .collect("predictions", &sink);
        Ok(())
    })
    .unwrap();
    let mut p = out.take();
    p.sort_by_key(|p| p.index);
    p
}

fn accuracy(p: &[OnlinePrediction]) -> f64 {
    p.iter().filter(|p| p.label == p.truth).count() as f64 / p.len() as f64
}

/// scikit-learn 1.9.1 `SGDClassifier(loss="log_loss", random_state=0)`, `partial_fit` per
/// record on the same 20,000-record stream, prequential: from `python3 scripts/online_reference.py`.
const SKLEARN_PREQUENTIAL_ACCURACY: f64 = 0.95395;

#[test]
fn per_record_sgd_is_within_two_points_of_scikit_learn() {
    let predictions = learn(
        stream(0..20_000),
        SgdClassifier::new(10, 64, 0.5, 1e-4, 1e-5),
        OnlineOptions::default(),
    );
    assert_eq!(predictions.len(), 20_000);
    assert!(predictions
        .iter()
        .enumerate()
        .all(|(i, p)| p.index == i as u64));
    let acc = accuracy(&predictions);
    assert!(
        (acc - SKLEARN_PREQUENTIAL_ACCURACY).abs() <= 0.02,
        "prequential accuracy {acc} vs scikit-learn {SKLEARN_PREQUENTIAL_ACCURACY}"
    );
    println!("SGD prequential accuracy {acc}");
}

#[test]
fn ftrl_and_the_scaler_learn_the_stream_too() {
    let options = OnlineOptions {
        scale: true,
        ..OnlineOptions::default()
    };
    let acc = accuracy(&learn(
        stream(0..10_000),
        FtrlClassifier::new(10, 64, 0.5, 1.0, 0.0, 1e-3),
        options,
    ));
    println!("FTRL prequential accuracy {acc}");
    assert!(acc > 0.9, "FTRL prequential accuracy {acc}");
}

fn checkpoint(version: u64) -> Checkpoint {
    let mut model = LogisticModel::zeros(3, 2);
    model.bias[0] = version as f32;
    Checkpoint {
        version,
        records: version * 100,
        metrics: [("accuracy".to_string(), 0.5)].into(),
        learner: "sgd".into(),
        model,
        scaler: None,
    }
}

/// Saves v1 and v2, corrupts v2 with `corrupt`, and checks the store falls back to v1.
fn round_trip_and_fallback(store: &dyn ModelStore, corrupt: impl Fn(u64, Vec<u8>)) {
    store.save(&checkpoint(1)).unwrap();
    store.save(&checkpoint(2)).unwrap();
    assert_eq!(store.versions().unwrap(), vec![1, 2]);
    assert_eq!(store.latest().unwrap(), Some(checkpoint(2)));
    let bytes = store.read(2).unwrap().unwrap();
    corrupt(2, bytes[..bytes.len() - 3].to_vec()); // truncated
    assert_eq!(
        store.latest().unwrap(),
        Some(checkpoint(1)),
        "a truncated v2 is skipped"
    );
    let mut flipped = store.read(1).unwrap().unwrap();
    let last = flipped.len() - 1;
    flipped[last] ^= 0xff;
    corrupt(2, flipped); // right length, wrong checksum
    assert_eq!(store.latest().unwrap(), Some(checkpoint(1)));
}

#[test]
fn the_directory_store_round_trips_and_skips_corrupt_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let store = DirStore::open(dir.path()).unwrap();
    let corrupt = |v: u64, bytes: Vec<u8>| std::fs::write(store.path(v), bytes).unwrap();
    round_trip_and_fallback(&store, corrupt);
}

/// A real `redis-server` on a free port, without persistence; stopped on drop.
struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    /// Starts it on a free port; redis-server binds the port itself, so a port taken in
    /// between (it exits at once) is retried with another.
    fn start() -> Redis {
        for _ in 0..5 {
            if let Some(redis) = Self::start_on_a_free_port() {
                return redis;
            }
        }
        panic!("redis-server did not start on any of 5 free ports");
    }

    fn start_on_a_free_port() -> Option<Redis> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start redis-server ({e}): install it with `apt-get install -y redis-server` (scripts/test.sh does)")
            });
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if child.try_wait().unwrap().is_some() {
                return None; // the port was taken: it could not bind
            }
            if pong(port) && child.try_wait().unwrap().is_none() {
                return Some(Redis { child, port });
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Whether a Redis server answers PING on `port`.
fn pong(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut reply = [0u8; 7];
    s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_redis_store_round_trips_and_skips_corrupt_checkpoints() {
    let redis = Redis::start();
    let store = RedisStore::open(&format!("redis://127.0.0.1:{}/", redis.port), "test").unwrap();
    round_trip_and_fallback(&store, |v, bytes| store.put_raw(v, &bytes).unwrap());
}

const CHILD_ENV: &str = "WEIR_TEST_ONLINE_STORE";

/// Options that checkpoint every 1000 records into the directory store `dir`.
fn checkpointing(dir: &std::path::Path) -> OnlineOptions {
    OnlineOptions {
        store: Some(Arc::new(DirStore::open(dir).unwrap())),
        checkpoint_records: 1000,
        ..OnlineOptions::default()
    }
}

/// The job that `a_killed_job_resumes_from_its_checkpoint` kills: the whole stream, paced.
#[test]
fn online_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let records = stream(0..20_000);
    let options = checkpointing(std::path::Path::new(&dir));
    execute(Config::threads(1).with_verbose(false), move |job| {
        let data = records.clone();
        job.generate(
            op("digits").parallelism(1).rate(5_000.0),
            Some(data.len() as u64),
            move |k| data[k as usize].clone(),
        )
        .learn_online(
            "train",
            SgdClassifier::new(10, 64, 0.5, 1e-4, 1e-5),
            |r: (u64, LabeledPoint)| r.1,
            options.clone(),
        )
        .predictions
        .for_each("drop", |_| {});
        Ok(())
    })
    .unwrap();
}

#[test]
fn a_killed_job_resumes_from_its_checkpoint_and_its_accuracy_continues() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "online_child", "--nocapture"])
        .env(CHILD_ENV, dir.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let store = DirStore::open(dir.path()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while store.versions().unwrap().len() < 3 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the child ended before it was killed"
        );
        assert!(Instant::now() < deadline, "no checkpoints from the child");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap(); // SIGKILL: no final checkpoint, no clean shutdown
    child.wait().unwrap();
    let saved = store.latest().unwrap().expect("a checkpoint");
    let resume_at = saved.records as usize;
    assert!((3000..20_000).contains(&resume_at), "{resume_at}");
    // The restarted job reads the stream from where the checkpoint was taken.
    let resumed = learn(
        stream(resume_at..resume_at + 2000),
        SgdClassifier::new(10, 64, 0.5, 1e-4, 1e-5),
        checkpointing(dir.path()),
    );
    assert_eq!(
        resumed[0].index, resume_at as u64,
        "record numbering continues"
    );
    assert_eq!(
        resumed[0].model_version, saved.version,
        "the first prediction uses the checkpoint"
    );
    let fresh = learn(
        stream(resume_at..resume_at + 2000),
        SgdClassifier::new(10, 64, 0.5, 1e-4, 1e-5),
        OnlineOptions::default(),
    );
    let (resumed_acc, fresh_acc) = (accuracy(&resumed[..500]), accuracy(&fresh[..500]));
    assert!(
        resumed_acc > 0.9 && resumed_acc > fresh_acc + 0.05,
        "resumed {resumed_acc} vs from scratch {fresh_acc}"
    );
    assert!(
        store.latest().unwrap().unwrap().version > saved.version,
        "training went on checkpointing"
    );
}

/// Trains `learn_online_parallel` with one instance per worker of `config`; returns the
/// predictions and merged versions gathered on process 0.
fn learn_parallel(config: Config) -> (Vec<OnlinePrediction>, Vec<u64>) {
    let workers = config.total_workers();
    let out = Collector::new();
    let models = Collector::new();
    let (sink, model_sink) = (out.clone(), models.clone());
    let records = stream(0..20_000);
    let config = config.with_epochs(weir_core::EpochPolicy::Records(1000));
    execute(config, move |job| {
        let points = job
            .from_vec(op("digits").parallelism(1), records.clone())
            .map("point", |r: (u64, LabeledPoint)| r.1)
            .rebalance();
        let trained = weir_ml::learn_online_parallel(
            job,
            points,
            op("train").parallelism(workers),
            SgdClassifier::new(10, 64, 0.5, 1e-4, 1e-5),
            |p| p,
        );
        trained
            .predictions
            .collect(op("predictions").parallelism(1), &sink);
        trained
            .models
            .collect(op("models").parallelism(1), &model_sink);
        Ok(())
    })
    .unwrap();
    (
        out.take(),
        models.take().iter().map(|c| c.version).collect(),
    )
}

const PARALLEL_ENV: &str = "WEIR_TEST_ONLINE_PARALLEL";

/// One process of `parallel_training_merges_across_two_processes` (nothing when run directly).
#[test]
fn parallel_child() {
    let Ok(args) = std::env::var(PARALLEL_ENV) else {
        return;
    };
    let (hosts, process, result) = {
        let mut parts = args.split(' ');
        (
            parts.next().unwrap().to_string(),
            parts.next().unwrap().to_string(),
            parts.next().unwrap().to_string(),
        )
    };
    let argv = ["child", "-w", "1", "-n", "2", "-p", &process, "-h", &hosts].map(String::from);
    let config = Config::from_args(argv).unwrap().with_verbose(false);
    let (predictions, versions) = learn_parallel(config);
    if process == "0" {
        std::fs::write(
            result,
            format!(
                "{} {} {}",
                predictions.len(),
                accuracy(&predictions),
                versions.len()
            ),
        )
        .unwrap();
    }
}

#[test]
fn parallel_training_merges_across_two_processes() {
    let dir = tempfile::tempdir().unwrap();
    // Listeners bound here and inherited by the processes: no port race.
    let cluster = weir_core::LocalCluster::bind(2).unwrap();
    let hosts = dir.path().join("hosts.txt");
    std::fs::write(&hosts, cluster.hostfile()).unwrap();
    let result = dir.path().join("result.txt");
    let mut children: Vec<Child> = (0..2)
        .map(|p| {
            let mut command = Command::new(std::env::current_exe().unwrap());
            cluster.pass_listener(p, &mut command);
            command
                .args(["--exact", "parallel_child", "--nocapture"])
                .env(
                    PARALLEL_ENV,
                    format!("{} {p} {}", hosts.display(), result.display()),
                )
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    for child in &mut children {
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "a process failed: {status}");
                break;
            }
            assert!(Instant::now() < deadline, "the 2-process training hung");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let text = std::fs::read_to_string(result).unwrap();
    let parts: Vec<&str> = text.split(' ').collect();
    assert_eq!(parts[0], "20000", "every record predicted once");
    let acc: f64 = parts[1].parse().unwrap();
    assert!(acc > 0.93, "prequential accuracy {acc}");
    assert_eq!(parts[2], "20", "one merge per epoch");
}

#[test]
fn parallel_instances_merge_their_models_every_epoch_and_learn_as_well() {
    for workers in [1, 2] {
        let (predictions, versions) = learn_parallel(Config::threads(workers));
        assert_eq!(predictions.len(), 20_000, "-w {workers}");
        let acc = accuracy(&predictions);
        println!("-w {workers}: prequential accuracy {acc}");
        assert!(acc > 0.93, "-w {workers}: {acc}");
        assert_eq!(
            versions.len(),
            20,
            "one merge per 1000-record epoch: {versions:?}"
        );
        // Every instance switched to each merged version: predictions carry merged versions.
        let max_used = predictions.iter().map(|p| p.model_version).max().unwrap();
        assert_eq!(max_used, 19, "the last epoch was scored by the 19th merge");
    }
}
