//! Process nodes: a pure-Python program gets the cluster context in its environment, reads its
//! input records through the shared-memory ring, writes results back; a non-zero exit fails
//! the node and the AM restarts it.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use weir_core::{execute, op, Collector, Config, WeirError};
use weir_ml::{add_am_role, add_role, ClusterConfig, FailoverStrategy, Liveness, ProcessRunner};

/// What the program reports (its JSON). `serde_json::Value` is fine here: these jobs run in
/// one process, so records are never bincode-encoded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Summary {
    node: String,
    attempt: u32,
    sum: i64,
    count: u64,
    address: String,
    tf_config: Value,
    master: String,
    world_size: usize,
    rank: usize,
    workers: Vec<String>,
}

fn script() -> String {
    let python = Command::new("python3").arg("--version").output();
    assert!(
        python.is_ok_and(|o| o.status.success()),
        "these tests run a Python 3 program: install it (apt-get install -y python3)"
    );
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python/sum_records.py")
        .display()
        .to_string()
}

/// Runs 2 `worker` process nodes; with `numbers`, they are the role's input stream.
fn run(
    numbers: Option<u64>,
    fail_until: u32,
    max_attempts: u32,
) -> (Result<(), WeirError>, Vec<Summary>) {
    let cluster = ClusterConfig::new().role("worker", 2).failover(
        FailoverStrategy::RestartAll,
        max_attempts,
        Duration::from_millis(50),
    );
    let runner = ProcessRunner::new("python3", [script()])
        .env("FAIL_UNTIL_ATTEMPT", fail_until.to_string())
        .ring_bytes(4096);
    run_with(cluster, runner, numbers)
}

/// Runs the `worker` role of `cluster` as process nodes.
fn run_with(
    cluster: ClusterConfig,
    runner: ProcessRunner,
    numbers: Option<u64>,
) -> (Result<(), WeirError>, Vec<Summary>) {
    let out: Collector<Summary> = Collector::new();
    let sink = out.clone();
    let result = execute(Config::threads(2), move |job| {
        let am = add_am_role(job, &cluster);
        let input =
            numbers.map(|n| job.generate(op("numbers").parallelism(2), Some(n), |k| k as i64 + 1));
        add_role(job, &cluster, &am, "worker", input, runner.clone()).collect("summaries", &sink);
        Ok(())
    })
    .map(|_| ());
    let mut summaries = out.take();
    summaries.sort_by(|a, b| (a.attempt, &a.node).cmp(&(b.attempt, &b.node)));
    (result, summaries)
}

#[test]
fn a_python_node_sums_its_records_through_the_rings_and_sees_the_cluster() {
    let (result, summaries) = run(Some(10_000), 0, 1);
    result.unwrap();
    assert_eq!(summaries.len(), 2, "{summaries:?}");
    assert_eq!(summaries.iter().map(|s| s.count).sum::<u64>(), 10_000);
    assert_eq!(
        summaries.iter().map(|s| s.sum).sum::<i64>(),
        10_000 * 10_001 / 2
    );
    let workers = &summaries[0].workers;
    for (i, s) in summaries.iter().enumerate() {
        assert_eq!(s.node, format!("worker:{i}"));
        assert_eq!(s.address, workers[i]);
        // PyTorch: worker 0 is the master, the workers are the world.
        assert_eq!(s.master, workers[0]);
        assert_eq!((s.world_size, s.rank), (2, i));
        // TensorFlow: worker 0 is promoted to chief.
        let tf = &s.tf_config;
        assert_eq!(tf["cluster"]["chief"], serde_json::json!([workers[0]]));
        assert_eq!(tf["cluster"]["worker"], serde_json::json!([workers[1]]));
        let task = if i == 0 {
            serde_json::json!({"type": "chief", "index": 0})
        } else {
            serde_json::json!({"type": "worker", "index": 0})
        };
        assert_eq!(tf["task"], task);
    }
}

#[test]
fn a_non_zero_exit_fails_the_node_and_the_cluster_restarts() {
    let (result, summaries) = run(None, 1, 2);
    result.unwrap();
    let attempts: Vec<(u32, String)> = summaries
        .iter()
        .map(|s| (s.attempt, s.node.clone()))
        .collect();
    assert!(attempts.contains(&(1, "worker:0".into())), "{attempts:?}");
    assert!(attempts.contains(&(1, "worker:1".into())), "{attempts:?}");
}

#[test]
fn a_program_that_always_fails_ends_the_job_with_its_exit_status_and_stderr() {
    let (result, _) = run(None, 10, 2);
    let error = result.unwrap_err().to_string();
    assert!(
        error.contains("exit status: 3") && error.contains("failing on purpose on attempt 1"),
        "{error}"
    );
}

#[test]
fn a_hung_python_node_is_timed_out_by_its_heartbeats_killed_and_restarted() {
    let cluster = ClusterConfig::new()
        .role("worker", 2)
        .failover(FailoverStrategy::RestartAll, 2, Duration::from_millis(50))
        .heartbeats(Duration::from_millis(50), Duration::from_millis(800))
        .liveness(Liveness::Runner);
    let runner = ProcessRunner::new("python3", [script()]).env("HANG_UNTIL_ATTEMPT", "1");
    let (result, summaries) = run_with(cluster, runner, Some(100));
    result.unwrap();
    // Attempt 0 hung before reading anything: its records were never consumed by it, and the
    // restarted nodes read what was left of the input.
    assert!(summaries.iter().all(|s| s.attempt == 1), "{summaries:?}");
    assert_eq!(summaries.len(), 2);
}

#[test]
fn a_program_printing_invalid_utf8_is_passed_through_and_keeps_running() {
    let cluster = ClusterConfig::new().role("worker", 2);
    let runner = ProcessRunner::new("python3", [script()]).env("PRINT_INVALID_UTF8", "1");
    let (result, summaries) = run_with(cluster, runner, Some(1000));
    result.unwrap();
    assert_eq!(summaries.iter().map(|s| s.count).sum::<u64>(), 1000);
}

#[test]
fn the_rings_and_their_directory_are_private_to_the_user() {
    let cluster = ClusterConfig::new().role("worker", 2);
    let runner = ProcessRunner::new("python3", [script()]).env("CHECK_PRIVATE", "1");
    let (result, summaries) = run_with(cluster, runner, Some(10));
    result.unwrap();
    assert_eq!(summaries.len(), 2);
}
