//! Recovery across real OS processes: a keyed job (running count in `map_with_state`, a join,
//! totals from `aggregate_all`, part-file sinks) runs on 2 processes × 2 workers under
//! `weir launch`, one process is SIGKILLed at a chosen point (before the first checkpoint,
//! half-way through writing a checkpoint file, after several checkpoints, at random
//! moments), the launcher restarts the job, and the committed output, as a multiset of
//! lines, is the output of a run without failure. Also restored at other worker counts, and
//! the `exactly_once` example under `weir launch`.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

mod common;

use common::{committed_lines, finish, kill, read_when_there};

const WEIR: &str = env!("CARGO_BIN_EXE_weir");

/// Orders in the input, and users they are spread over.
const ORDERS: u64 = 24_000;
const USERS: u64 = 50;

/// Set for the child processes: the test directory, and the job flags.
const CHILD_DIR: &str = "WEIR_TEST_RECOVERY_DIR";
const CHILD_ARGS: &str = "WEIR_TEST_RECOVERY_ARGS";
/// Set for a child whose process 1 pauses half-way through this (1-based) checkpoint file
/// write of its first attempt.
const PAUSE_AT_WRITE: &str = "WEIR_TEST_RECOVERY_PAUSE_AT_WRITE";

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Order {
    id: u64,
    user: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct CountLine {
    user: u64,
    count: u64,
}

/// The job each launched process runs (nothing when run directly): orders are read at a
/// pace, counted per user, joined with the users and totalled per user.
#[test]
fn recovery_child() {
    let (Ok(dir), Ok(args)) = (std::env::var(CHILD_DIR), std::env::var(CHILD_ARGS)) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let argv = std::iter::once("child".to_string()).chain(args.split(' ').map(String::from));
    let config = weir_core::Config::from_args(argv).unwrap();
    let process = config.process_index();
    std::fs::write(
        dir.join(format!("pid-{process}")),
        std::process::id().to_string(),
    )
    .unwrap();
    if let Ok(nth) = std::env::var(PAUSE_AT_WRITE) {
        pause_at_checkpoint_write(&dir, process, nth.parse().unwrap());
    }
    let started = dir.join(format!("started-{process}"));
    let result = weir_core::execute(config, move |job| {
        let started = started.clone();
        let orders = job
            .read_jsonl::<Order>(
                weir_core::op("orders").rate(3_000.0),
                dir.join("orders.jsonl"),
            )
            .inspect("started", move |_| {
                if !started.exists() {
                    let _ = std::fs::write(&started, "");
                }
            });
        let users = job.read_jsonl::<(u64, String)>("users", dir.join("users.jsonl"));
        let out = dir.join("out");
        orders
            .clone()
            .key_by(|o: &Order| o.user)
            .map_with_state("running", |n: &mut u64, o: Order| {
                *n += 1;
                CountLine {
                    user: o.user,
                    count: *n,
                }
            })
            .write_jsonl("write_counts", out.join("counts"));
        orders
            .clone()
            .map("by_user", |o: Order| (o.user, o.id))
            .join("join", users)
            .write_jsonl("write_joined", out.join("joined"));
        orders
            .key_by(|o: &Order| o.user)
            .aggregate_all(
                "totals",
                |_| (0u64, 0u64),
                |(n, ids), o: Order| {
                    *n += 1;
                    *ids += o.id;
                },
            )
            .write_jsonl("write_totals", out.join("totals"));
        Ok(())
    });
    match result {
        Ok(_) => std::process::exit(0),
        Err(e) => {
            eprintln!("job failed: {e}");
            std::process::exit(3)
        }
    }
}

/// On process 1 of the first attempt: the `nth` checkpoint file this process writes stops
/// half-way, after saying so in `paused` (with the pid), until the test kills the process.
fn pause_at_checkpoint_write(dir: &Path, process: usize, nth: u64) {
    let paused = dir.join("paused");
    if process != 1 || paused.exists() {
        return;
    }
    let writes = Arc::new(AtomicU64::new(0));
    fail::cfg_callback("checkpoint-worker-file-half-written", move || {
        if writes.fetch_add(1, Ordering::SeqCst) + 1 == nth {
            std::fs::write(&paused, std::process::id().to_string()).unwrap();
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    })
    .unwrap();
}

/// A test directory with the inputs.
struct Scenario {
    dir: tempfile::TempDir,
}

impl Scenario {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let orders: String = (0..ORDERS)
            .map(|id| {
                serde_json::to_string(&Order {
                    id,
                    user: id * 7 % USERS,
                })
                .unwrap()
                    + "\n"
            })
            .collect();
        std::fs::write(dir.path().join("orders.jsonl"), orders).unwrap();
        let users: String = (0..USERS)
            .filter(|u| u % 2 == 0)
            .map(|u| serde_json::to_string(&(u, format!("user{u}"))).unwrap() + "\n")
            .collect();
        std::fs::write(dir.path().join("users.jsonl"), users).unwrap();
        Scenario { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `weir launch -n {processes} --restarts {restarts}` of the child job at `-w {workers}`.
    fn launch(
        &self,
        processes: usize,
        workers: usize,
        restarts: u32,
        extra: &[(&str, &str)],
    ) -> Child {
        let exe = std::env::current_exe().unwrap();
        let flags = format!(
            "--checkpoint-dir {} --checkpoint-interval 200ms --epoch-ms 20 --peer-timeout-ms 3000",
            self.path("ckpt").display()
        );
        // The launcher appends the cluster flags; the shell hands them to the test binary.
        let script = format!(
            r#"{CHILD_ARGS}="{flags} $*" exec {} --exact recovery_child --nocapture --test-threads 1"#,
            exe.display()
        );
        let mut launch = Command::new(WEIR);
        launch
            .args([
                "launch",
                "-n",
                &processes.to_string(),
                "-w",
                &workers.to_string(),
            ])
            .args([
                "--restarts",
                &restarts.to_string(),
                "--backoff-ms",
                "100",
                "--",
            ])
            .args(["sh", "-c", &script, "sh"])
            .env(CHILD_DIR, self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            // A group of its own, which `finish` kills whole if it hangs.
            .process_group(0);
        for (k, v) in extra {
            launch.env(k, v);
        }
        launch.spawn().unwrap()
    }

    /// The pid of the current attempt's process `p`.
    fn pid(&self, p: usize) -> i32 {
        read_when_there(&self.path(&format!("pid-{p}")))
            .trim()
            .parse()
            .unwrap()
    }

    fn manifests(&self) -> usize {
        std::fs::read_dir(self.path("ckpt"))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().join("MANIFEST").exists())
            .count()
    }

    /// Waits until `ready` holds (polling), within a minute.
    fn wait_for(&self, what: &str, ready: impl Fn(&Self) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !ready(self) {
            assert!(Instant::now() < deadline, "waited a minute for {what}");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Every line of the committed part files under `out/`, per output.
    fn committed(&self) -> BTreeMap<String, BTreeMap<String, usize>> {
        ["counts", "joined", "totals"]
            .into_iter()
            .map(|name| {
                (
                    name.to_string(),
                    committed_lines(&self.path("out").join(name)),
                )
            })
            .collect()
    }
}

/// What a run without failure commits, computed sequentially.
fn expected() -> BTreeMap<String, BTreeMap<String, usize>> {
    let mut out: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    let mut add = |name: &str, line: String| {
        *out.entry(name.to_string())
            .or_default()
            .entry(line)
            .or_insert(0) += 1;
    };
    let mut totals = vec![(0u64, 0u64); USERS as usize];
    for id in 0..ORDERS {
        let user = id * 7 % USERS;
        let t = &mut totals[user as usize];
        t.0 += 1;
        t.1 += id;
        add(
            "counts",
            serde_json::to_string(&CountLine { user, count: t.0 }).unwrap(),
        );
        if user % 2 == 0 {
            let joined = serde_json::json!({"data": [user, id, format!("user{user}")], "diff": 1});
            add("joined", joined.to_string());
        }
    }
    for (user, t) in totals.iter().enumerate() {
        add("totals", serde_json::json!([user, [t.0, t.1]]).to_string());
    }
    out
}

/// Compares what was committed with what a run without failure commits, naming a few
/// differences.
fn assert_exactly_once(s: &Scenario, log: &str) {
    let committed = s.committed();
    for (name, want) in expected() {
        let got = &committed[&name];
        let differ: Vec<String> = want
            .keys()
            .chain(got.keys())
            .filter(|l| got.get(*l) != want.get(*l))
            .take(5)
            .map(|l| format!("{l}: {:?} times, expected {:?}", got.get(l), want.get(l)))
            .collect();
        assert!(
            differ.is_empty(),
            "{name}: {} lines committed, {} expected; e.g.\n{}\n--- launcher log ---\n{log}",
            got.values().sum::<usize>(),
            want.values().sum::<usize>(),
            differ.join("\n")
        );
    }
}

/// A relaunched job that restored a checkpoint says so.
fn assert_restored(log: &str) {
    assert!(
        log.contains("restarting") || log.contains("relaunching"),
        "the job was not relaunched:\n{log}"
    );
    assert!(
        log.contains("restoring from checkpoint"),
        "the relaunched job did not restore a checkpoint:\n{log}"
    );
}

#[test]
fn killed_before_the_first_checkpoint_the_job_starts_over_exactly_once() {
    let s = Scenario::new();
    let launcher = s.launch(2, 2, 1, &[]);
    s.wait_for("process 1 to read orders", |s| s.path("started-1").exists());
    let pid = s.pid(1);
    let manifests = s.manifests();
    kill(pid);
    let (ok, log) = finish(launcher);
    assert!(ok, "{log}");
    assert!(log.contains("relaunching"), "{log}");
    assert_eq!(manifests, 0, "a checkpoint completed before the kill");
    assert_exactly_once(&s, &log);
}

#[test]
fn killed_half_way_through_a_checkpoint_write_the_job_resumes_exactly_once() {
    let s = Scenario::new();
    let launcher = s.launch(2, 2, 1, &[(PAUSE_AT_WRITE, "5")]);
    let pid: i32 = read_when_there(&s.path("paused")).trim().parse().unwrap();
    // The checkpoint whose file it was writing: half-written, not complete.
    let half_written: Vec<PathBuf> = std::fs::read_dir(s.path("ckpt"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|chk| {
            std::fs::read_dir(chk)
                .unwrap()
                .flatten()
                .any(|f| f.file_name().to_string_lossy().ends_with(".state.tmp"))
        })
        .collect();
    assert_eq!(half_written.len(), 1, "{half_written:?}");
    let chk = &half_written[0];
    assert!(!chk.join("MANIFEST").exists());
    let id: u64 = chk
        .to_string_lossy()
        .rsplit('-')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(id > 1, "the paused checkpoint is not the first one");
    kill(pid);
    let (ok, log) = finish(launcher);
    assert!(ok, "{log}");
    assert_restored(&log);
    assert!(
        log.contains(&format!("restoring from checkpoint {}", id - 1)),
        "{log}"
    );
    assert!(
        !chk.exists() || chk.join("MANIFEST").exists(),
        "the half-written checkpoint was left"
    );
    assert_exactly_once(&s, &log);
}

#[test]
fn killed_after_several_checkpoints_the_job_resumes_exactly_once() {
    let s = Scenario::new();
    let launcher = s.launch(2, 2, 1, &[]);
    s.wait_for("three checkpoints", |s| s.manifests() >= 3);
    kill(s.pid(0));
    let (ok, log) = finish(launcher);
    assert!(ok, "{log}");
    assert_restored(&log);
    assert_exactly_once(&s, &log);
}

#[test]
fn a_checkpoint_of_two_processes_restores_at_other_worker_counts() {
    for (processes, workers) in [(1, 3), (2, 1)] {
        let s = Scenario::new();
        let launcher = s.launch(2, 2, 0, &[]);
        s.wait_for("three checkpoints", |s| s.manifests() >= 3);
        kill(s.pid(1));
        let (ok, log) = finish(launcher);
        assert!(!ok, "the job without restarts failed: {log}");
        let (ok, log) = finish(s.launch(processes, workers, 0, &[]));
        assert!(ok, "-n {processes} -w {workers}: {log}");
        assert!(log.contains("restoring from checkpoint"), "{log}");
        assert_exactly_once(&s, &log);
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: 3,
        failure_persistence: None,
        ..Default::default()
    })]

    /// Kills at random moments (one or two kills, either process) still give exactly-once
    /// output.
    #[test]
    fn kills_at_random_moments_give_exactly_once_output(
        kills in proptest::collection::vec((0u64..2_500, 0usize..2), 1..=2)
    ) {
        let s = Scenario::new();
        let mut launcher = s.launch(2, 2, 2, &[]);
        for (after_ms, process) in &kills {
            // The attempt runs (or the job is already done: nothing left to kill).
            let started = s.path(&format!("started-{process}"));
            let deadline = Instant::now() + Duration::from_secs(60);
            while !started.exists() && launcher.try_wait().unwrap().is_none() {
                assert!(Instant::now() < deadline, "the attempt never started");
                std::thread::sleep(Duration::from_millis(2));
            }
            if launcher.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(*after_ms));
            let pid = s.pid(*process);
            // The next attempt's processes write these again.
            for name in ["started-0", "started-1", "pid-0", "pid-1"] {
                let _ = std::fs::remove_file(s.path(name));
            }
            // SAFETY: kill(2) on a process this test launched (it may have ended already).
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let (ok, log) = finish(launcher);
        proptest::prop_assert!(ok, "{}", log);
        assert_exactly_once(&s, &log);
    }
}

/// The `exactly_once` example, built next to the `weir` binary.
fn exactly_once_example() -> PathBuf {
    let path = Path::new(WEIR)
        .parent()
        .unwrap()
        .join("examples/exactly_once");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build --example exactly_once` (scripts/test.sh does; \
         `cargo test --all-targets` builds examples only as test harnesses)",
        path.display()
    );
    path
}

/// Runs the `exactly_once` example without checkpoints or failures, in one process.
fn exactly_once_reference(input: &Path, output: &Path) -> BTreeMap<String, usize> {
    let o = Command::new(exactly_once_example())
        .args(["--input", input.to_str().unwrap()])
        .args(["--output", output.to_str().unwrap(), "-w", "1", "--quiet"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut lines = committed_lines(output);
    for (line, n) in committed_lines(&output.join("totals")) {
        *lines.entry(line).or_insert(0) += n;
    }
    lines
}

#[test]
fn the_exactly_once_example_survives_a_kill_under_weir_launch() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input.jsonl");
    let mut text = String::new();
    for i in 0..30_000u64 {
        text += &match i % 997 {
            0 => "not json\n".to_string(),
            1 => "[1, 2]\n".to_string(),
            _ => format!("{{\"i\": {}, \"word\": \"w{}\"}}\n", i, i % 321),
        };
    }
    std::fs::write(&input, text).unwrap();
    let expected = exactly_once_reference(&input, &dir.path().join("reference"));
    let reference_dead = std::fs::read_to_string(dir.path().join("reference.errors.jsonl"))
        .unwrap()
        .lines()
        .count();
    assert_eq!(reference_dead, 2 * 31, "bad lines are dead letters");

    let out = dir.path().join("out");
    let ckpt = dir.path().join("ckpt");
    let launcher = Command::new(WEIR)
        .args([
            "launch",
            "-n",
            "2",
            "-w",
            "2",
            "--restarts",
            "1",
            "--backoff-ms",
            "100",
            "--",
        ])
        .arg(exactly_once_example())
        .args([
            "--input",
            input.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
        ])
        .args(["--checkpoint-dir", ckpt.to_str().unwrap()])
        .args([
            "--checkpoint-interval",
            "100ms",
            "--epoch-ms",
            "10",
            "--rate",
            "4000",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let manifests = || {
        std::fs::read_dir(&ckpt)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().join("MANIFEST").exists())
            .count()
    };
    while manifests() < 2 {
        assert!(Instant::now() < deadline, "no checkpoints");
        std::thread::sleep(Duration::from_millis(5));
    }
    // The launcher's children: kill one of them (the launcher restarts all).
    let children = std::fs::read_to_string(format!(
        "/proc/{}/task/{}/children",
        launcher.id(),
        launcher.id()
    ))
    .unwrap();
    let child: i32 = children.split_whitespace().next().unwrap().parse().unwrap();
    kill(child);
    let (ok, log) = finish(launcher);
    assert!(ok, "{log}");
    assert_restored(&log);
    let mut got = committed_lines(&out);
    for (line, n) in committed_lines(&out.join("totals")) {
        *got.entry(line).or_insert(0) += n;
    }
    assert!(
        got == expected,
        "the output differs from a run without failure:\n{log}"
    );
}
