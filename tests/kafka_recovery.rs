//! Kill and resume a job reading Kafka: the `kafka_exactly_once` example reads a 4-partition
//! topic of a real tansu broker (filled by kafka-python), keeps a running count per key and
//! writes part files that commit with its checkpoints. It is SIGKILLed after a checkpoint
//! completed, then restarted (at another parallelism, or from two processes to one); the
//! committed output holds every event exactly once, and every key's counts are exactly
//! 1..=n (state restored with the offsets it was taken with).

#[path = "../crates/weir-kafka/tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Broker;

const EVENTS: u64 = 6_000;
const KEYS: u64 = 37;

fn example() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/kafka_exactly_once");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build --examples` (scripts/test.sh does)",
        path.display()
    );
    path
}

fn fill(broker: &Broker) {
    broker.create_topic("events", 4);
    let lines: Vec<String> = (0..EVENTS)
        .map(|id| format!(r#"{{"id":{id},"key":{},"p":{}}}"#, (id * 7) % KEYS, id % 4))
        .collect();
    broker.produce_python("events", &lines, Some("p"));
}

fn run(broker: &Broker, dir: &Path, flags: &[&str], rate: Option<u64>) -> Child {
    let mut cmd = Command::new(example());
    cmd.args(["--bootstrap", &broker.bootstrap(), "--topic", "events"])
        .arg("--output")
        .arg(dir.join("out"))
        .arg("--checkpoint-dir")
        .arg(dir.join("ckpt"))
        .args(["--checkpoint-interval", "100ms", "--quiet"])
        .args(flags)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(r) = rate {
        cmd.args(["--rate", &r.to_string()]);
    }
    cmd.spawn().unwrap()
}

fn manifests(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("ckpt"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join("MANIFEST").exists())
        .count()
}

/// Waits for `n` completed checkpoints while the job runs.
fn wait_for_checkpoints(dir: &Path, n: usize, running: &mut [Child]) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while manifests(dir) < n {
        assert!(
            Instant::now() < deadline,
            "no {n} checkpoints in two minutes"
        );
        for c in running.iter_mut() {
            if let Some(status) = c.try_wait().unwrap() {
                let mut err = String::new();
                std::io::Read::read_to_string(c.stderr.as_mut().unwrap(), &mut err).unwrap();
                panic!("the job ended ({status}) before {n} checkpoints: {err}");
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn finish(child: Child) {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "resumed job failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The committed output: ids, and each key's counts.
fn assert_exactly_once(dir: &Path) {
    let mut ids = Vec::new();
    let mut counts: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for entry in std::fs::read_dir(dir.join("out")).unwrap().flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("jsonl") {
            continue;
        }
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            ids.push(v["id"].as_u64().unwrap());
            counts
                .entry(v["key"].as_u64().unwrap())
                .or_default()
                .push(v["count"].as_u64().unwrap());
        }
    }
    ids.sort_unstable();
    assert_eq!(ids.len() as u64, EVENTS, "events in the committed output");
    assert_eq!(ids, (0..EVENTS).collect::<Vec<u64>>());
    for (key, mut c) in counts {
        c.sort_unstable();
        let n = c.len() as u64;
        assert_eq!(c, (1..=n).collect::<Vec<u64>>(), "counts of key {key}");
    }
}

#[test]
fn killed_after_a_checkpoint_resumes_from_its_offsets_at_another_parallelism() {
    let broker = Broker::start();
    fill(&broker);
    let dir = tempfile::tempdir().unwrap();
    let mut first = run(&broker, dir.path(), &["-w", "2"], Some(3_000));
    wait_for_checkpoints(dir.path(), 3, std::slice::from_mut(&mut first));
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    assert!(
        first_committed_below(dir.path()),
        "the kill came before the end"
    );
    finish(run(&broker, dir.path(), &["-w", "3"], None));
    assert_exactly_once(dir.path());
}

#[test]
fn two_processes_killed_resume_as_one() {
    let broker = Broker::start();
    fill(&broker);
    let dir = tempfile::tempdir().unwrap();
    let ports: Vec<u16> = (0..2)
        .map(|_| {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        })
        .collect();
    let addresses = format!("127.0.0.1:{},127.0.0.1:{}", ports[0], ports[1]);
    let mut processes: Vec<Child> = (0..2)
        .map(|p| {
            let p = p.to_string();
            let flags = ["-n", "2", "-p", &p, "--addresses", &addresses, "-w", "1"];
            run(&broker, dir.path(), &flags, Some(3_000))
        })
        .collect();
    wait_for_checkpoints(dir.path(), 3, &mut processes);
    for c in &mut processes {
        c.kill().unwrap();
        c.wait().unwrap();
    }
    finish(run(&broker, dir.path(), &["-w", "2"], None));
    assert_exactly_once(dir.path());
}

/// Whether the first run stopped before reading everything (the kill came mid-job).
fn first_committed_below(dir: &Path) -> bool {
    let mut lines = 0u64;
    for entry in std::fs::read_dir(dir.join("out"))
        .into_iter()
        .flatten()
        .flatten()
    {
        if entry.path().extension().and_then(|e| e.to_str()) == Some("jsonl") {
            lines += std::fs::read_to_string(entry.path())
                .unwrap()
                .lines()
                .count() as u64;
        }
    }
    lines < EVENTS
}
