//! Parameter-server training on the digits data: ps shards and workers as cluster roles,
//! asynchronous SGD over TCP, on threads and across two processes, with a failover.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use weir_core::{execute, op, Collector, Config};
use weir_ml::{
    add_am_role, add_role, assemble_model, ps_runner, worker_runner, BatchTransitions,
    ClusterConfig, FailoverStrategy, LabeledPoint, LogisticModel, NodeContext, NodeRunner,
    PsTrainingConfig, TrainingReport,
};

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Digit {
    id: u64,
    x: Vec<f32>,
    y: usize,
}

fn digits_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/data/digits.jsonl")
}

fn point(d: &Digit) -> LabeledPoint {
    LabeledPoint {
        x: d.x.iter().map(|v| v / 16.0).collect(),
        y: d.y,
    }
}

fn held_out() -> Vec<LabeledPoint> {
    std::fs::read_to_string(digits_file())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Digit>(l).unwrap())
        .filter(|d| d.id % 5 == 0)
        .map(|d| point(&d))
        .collect()
}

const TRAINING: PsTrainingConfig = PsTrainingConfig {
    classes: 10,
    features: 64,
    learning_rate: 0.5,
    l2: 1e-4,
    epochs: 20,
    batch_size: 16,
};

/// Trains with 2 workers and `ps` shards; worker 1 fails on its first attempt if `fail_once`.
/// Returns the reports (on process 0).
fn train(config: Config, ps: usize, fail_once: bool) -> Vec<TrainingReport> {
    let cluster = ClusterConfig::new()
        .role("worker", 2)
        .role("ps", ps)
        .failover(FailoverStrategy::RestartAll, 3, Duration::from_millis(50))
        .transitions(BatchTransitions);
    let reports = Collector::new();
    let sink = reports.clone();
    execute(config, move |job| {
        let am = add_am_role(job, &cluster);
        let stream = job
            .read_jsonl::<Digit>("digits", digits_file())
            .filter("training_split", |d| d.id % 5 != 0)
            .map("to_point", |d| point(&d));
        let runner = worker_runner(TRAINING);
        let worker = move |ctx: &mut NodeContext<'_, LabeledPoint, TrainingReport>| {
            if fail_once && ctx.node.index == 1 && ctx.attempt == 0 {
                return Err("injected failure".into());
            }
            runner.run(ctx)
        };
        let trained = add_role(job, &cluster, &am, "worker", Some(stream), worker);
        let shards = add_role(job, &cluster, &am, "ps", None, ps_runner(TRAINING));
        trained
            .union("reports", shards)
            .collect(op("collect").parallelism(1), &sink);
        Ok(())
    })
    .unwrap();
    reports.take()
}

fn workers_trained(reports: &[TrainingReport]) -> Vec<(usize, u32, usize)> {
    let mut w: Vec<_> = reports
        .iter()
        .filter_map(|r| match r {
            TrainingReport::Worker {
                worker,
                attempt,
                examples,
                ..
            } => Some((*worker, *attempt, *examples)),
            _ => None,
        })
        .collect();
    w.sort();
    w
}

#[test]
fn two_workers_and_two_ps_shards_train_digits_to_over_93_percent() {
    let reports = train(Config::threads(3), 2, false);
    let workers = workers_trained(&reports);
    assert_eq!(workers.len(), 2);
    assert_eq!(
        workers.iter().map(|w| w.2).sum::<usize>(),
        1437,
        "every training record, once"
    );
    let model = assemble_model(&reports, &TRAINING).expect("all shards reported");
    let accuracy = model.accuracy(&held_out());
    assert!(accuracy >= 0.93, "held-out accuracy {accuracy}");
    // Saved with bincode and loaded back, the model predicts the same.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.bin");
    model.save(&path).unwrap();
    assert_eq!(LogisticModel::load(&path).unwrap(), model);
}

#[test]
fn a_failed_worker_restarts_the_cluster_and_training_still_converges() {
    let reports = train(Config::threads(3), 1, true);
    let last: Vec<_> = workers_trained(&reports)
        .into_iter()
        .filter(|w| w.1 == 1)
        .collect();
    assert_eq!(
        last.len(),
        2,
        "both workers trained in attempt 1: {reports:?}"
    );
    assert_eq!(last.iter().map(|w| w.2).sum::<usize>(), 1437);
    let accuracy = assemble_model(&reports, &TRAINING)
        .unwrap()
        .accuracy(&held_out());
    assert!(accuracy >= 0.93, "held-out accuracy {accuracy}");
}

const CHILD_ENV: &str = "WEIR_TEST_PS_ARGS";
const RESULT_ENV: &str = "WEIR_TEST_PS_RESULT";

/// One process of `two_processes_train_with_a_failover` (does nothing when run directly).
#[test]
fn ps_child() {
    let Ok(args) = std::env::var(CHILD_ENV) else {
        return;
    };
    let argv = std::iter::once("child".to_string()).chain(args.split(' ').map(String::from));
    let config = Config::from_args(argv).unwrap().with_verbose(false);
    let first = config.process_index() == 0;
    let reports = train(config, 1, true);
    if first {
        let accuracy = assemble_model(&reports, &TRAINING)
            .unwrap()
            .accuracy(&held_out());
        let attempts = workers_trained(&reports)
            .iter()
            .map(|w| w.1 + 1)
            .max()
            .unwrap();
        std::fs::write(
            std::env::var(RESULT_ENV).unwrap(),
            format!("{accuracy} {attempts}"),
        )
        .unwrap();
    }
}

#[test]
fn two_processes_train_with_a_failover() {
    let dir = tempfile::tempdir().unwrap();
    // Listeners bound here and inherited by the processes: no port race.
    let cluster = weir_core::LocalCluster::bind(2).unwrap();
    let hosts = dir.path().join("hosts.txt");
    std::fs::write(&hosts, cluster.hostfile()).unwrap();
    let result = dir.path().join("result.txt");
    let exe = std::env::current_exe().unwrap();
    let mut children: Vec<_> = (0..2)
        .map(|p| {
            let mut command = Command::new(&exe);
            cluster.pass_listener(p, &mut command);
            command
                .args(["--exact", "ps_child", "--nocapture", "--test-threads", "1"])
                .env(
                    CHILD_ENV,
                    format!("-w 2 -n 2 -p {p} -h {}", hosts.display()),
                )
                .env(RESULT_ENV, &result)
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
            if Instant::now() > deadline {
                children.iter_mut().for_each(|c| drop(c.kill()));
                panic!("the 2-process training hung");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let text = std::fs::read_to_string(&result).unwrap();
    let (accuracy, attempts) = text.split_once(' ').unwrap();
    let accuracy: f64 = accuracy.parse().unwrap();
    assert!(accuracy >= 0.93, "held-out accuracy {accuracy}");
    assert_eq!(attempts, "2", "one failover");
}
