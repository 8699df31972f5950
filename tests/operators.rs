//! Every operator and join against its sequential reference: parallelism 1 and 2, one and
//! two worker threads, and two OS processes talking TCP on 127.0.0.1.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::{build_all, normalize, reference_for, scenarios};
use weir::prelude::*;

fn run_in_process(config: Config, p: usize) -> Vec<Vec<String>> {
    let outs: Vec<Collector<String>> = scenarios().iter().map(|_| Collector::new()).collect();
    let sinks = outs.clone();
    execute(config, move |job| {
        build_all(job, p, &sinks);
        Ok(())
    })
    .expect("job runs");
    outs.iter().map(|c| normalize(c.take())).collect()
}

fn check(results: Vec<Vec<String>>, p: usize, what: &str) {
    for (s, got) in scenarios().iter().zip(results) {
        let want = reference_for(s, p);
        assert!(!want.is_empty(), "{}: empty reference", s.name);
        assert_eq!(
            got.len(),
            want.len(),
            "{what}: scenario {} at parallelism {p}: wrong number of records",
            s.name
        );
        assert_eq!(got, want, "{what}: scenario {} at parallelism {p}", s.name);
    }
}

#[test]
fn one_worker_parallelism_1() {
    check(run_in_process(Config::threads(1), 1), 1, "-w 1");
}

#[test]
fn two_threads_parallelism_1() {
    check(run_in_process(Config::threads(2), 1), 1, "-w 2");
}

#[test]
fn two_threads_parallelism_2() {
    check(run_in_process(Config::threads(2), 2), 2, "-w 2");
}

#[test]
fn four_threads_parallelism_3() {
    check(run_in_process(Config::threads(4), 3), 3, "-w 4");
}

const CHILD_ENV: &str = "WEIR_TEST_CHILD_ARGS";
const CHILD_OUT: &str = "WEIR_TEST_CHILD_OUT";
const PANIC_ENV: &str = "WEIR_TEST_PANIC_ARGS";
const ENDLESS_ENV: &str = "WEIR_TEST_ENDLESS_ARGS";
const STARTED_ENV: &str = "WEIR_TEST_STARTED_FILE";

/// The cluster configuration a parent test put into `env`, when this runs as a child.
fn child_config(env: &str) -> Option<Config> {
    let args = std::env::var(env).ok()?;
    let argv = std::iter::once("child".to_string()).chain(args.split(' ').map(String::from));
    Some(Config::from_args(argv).unwrap().with_verbose(false))
}

/// Starts this test binary twice, running only `test`, as processes 0 and 1 of a job with
/// `threads` workers each on 127.0.0.1 (cluster arguments in `env`).
fn spawn_pair(
    dir: &Path,
    test: &str,
    env: &str,
    threads: usize,
    extra: impl Fn(usize, &mut Command),
) -> Vec<Child> {
    // Listeners bound here and inherited by the processes: no port race.
    let cluster = weir::LocalCluster::bind(2).unwrap();
    let hosts = dir.join("hosts.txt");
    std::fs::write(&hosts, cluster.hostfile()).unwrap();
    let exe = std::env::current_exe().unwrap();
    (0..2)
        .map(|p| {
            let mut cmd = Command::new(&exe);
            cmd.args(["--exact", test, "--nocapture", "--test-threads", "1"])
                .env(
                    env,
                    format!("-w {threads} -n 2 -p {p} -h {}", hosts.display()),
                );
            cluster.pass_listener(p, &mut cmd);
            extra(p, &mut cmd);
            cmd.spawn().unwrap()
        })
        .collect()
}

/// Waits for `child` until `deadline`; kills it and fails the test if it does not exit.
fn wait_until(child: &mut Child, deadline: Instant, what: &str) -> ExitStatus {
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what} did not exit in time (hung)");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs as one process of a multi-process job when started by
/// `two_processes_match_reference`; run directly, it runs the scenarios in this process.
#[test]
fn conformance_child() {
    let Some(config) = child_config(CHILD_ENV) else {
        check(
            run_in_process(Config::threads(1), 1),
            1,
            "child run in-process",
        );
        return;
    };
    let process = config.process_index();
    let results = run_in_process(config, 2);
    if process == 0 {
        let path = std::env::var(CHILD_OUT).unwrap();
        std::fs::write(path, serde_json::to_string(&results).unwrap()).unwrap();
    }
}

#[test]
fn two_processes_match_reference() {
    let dir = tempfile::tempdir().unwrap();
    let out: PathBuf = dir.path().join("results.json");
    let mut children = spawn_pair(dir.path(), "conformance_child", CHILD_ENV, 2, |_, cmd| {
        cmd.env(CHILD_OUT, &out);
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    for (p, child) in children.iter_mut().enumerate() {
        let status = wait_until(
            child,
            deadline,
            &format!("process {p} of the 2-process job"),
        );
        assert!(
            status.success(),
            "process {p} of the 2-process job failed: {status}"
        );
    }
    let results: Vec<Vec<String>> =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    check(results, 2, "-w 2 -n 2 (two processes)");
}

/// One process of `a_panic_in_one_process_fails_both_processes`: the worker with global
/// index 3 (on process 1) panics mid-stream. Run directly, it checks the same in one process.
#[test]
fn panicking_child() {
    let child = child_config(PANIC_ENV);
    let config = child
        .clone()
        .unwrap_or_else(|| Config::threads(4).with_verbose(false));
    let result = execute(config, |job| {
        let me = job.worker_index();
        job.generate("numbers", Some(1_000_000), |i| i)
            .map("maybe_panic", move |x| {
                if me == 3 && x > 5_000 {
                    panic!("deliberate failure on worker 3");
                }
                x
            })
            .key_by(|x| x % 16)
            .count("count")
            .for_each("drop", |_| {});
        Ok(())
    });
    let err = result.expect_err("the job must fail");
    if child.is_none() {
        assert!(
            matches!(err, WeirError::WorkerPanic { worker: 3, .. }),
            "{err}"
        );
    } else {
        // Exit code 3 tells the parent that `execute` returned an error (a panic would be 101).
        eprintln!("job failed as expected: {err}");
        std::process::exit(3);
    }
}

#[test]
fn a_panic_in_one_process_fails_both_processes() {
    let dir = tempfile::tempdir().unwrap();
    let mut children = spawn_pair(dir.path(), "panicking_child", PANIC_ENV, 2, |_, cmd| {
        cmd.stderr(Stdio::null());
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    for (p, child) in children.iter_mut().enumerate() {
        let status = wait_until(
            child,
            deadline,
            &format!("process {p} after a worker panicked"),
        );
        assert_eq!(
            status.code(),
            Some(3),
            "process {p} must return an error when a worker anywhere panics"
        );
    }
}

/// One process of `a_killed_process_fails_the_other`: an endless paced job that marks a
/// file once records flow. Run directly, it checks that a bounded version completes.
#[test]
fn endless_child() {
    let child = child_config(ENDLESS_ENV);
    let count = if child.is_some() { None } else { Some(2_000) };
    let config = child
        .clone()
        .unwrap_or_else(|| Config::threads(2).with_verbose(false));
    let started = std::env::var(STARTED_ENV).ok();
    let result = execute(config, move |job| {
        let started = started.clone();
        job.generate(op("ticks").rate(20_000.0), count, |i| i)
            .key_by(|x| x % 8)
            .count("count")
            .for_each("mark", move |_| {
                if let Some(path) = &started {
                    let _ = std::fs::write(path, "running");
                }
            });
        Ok(())
    });
    if child.is_some() {
        eprintln!("job ended: {result:?}");
        std::process::exit(match result {
            Ok(_) => 0,
            Err(WeirError::Communication(_)) => 4,
            Err(_) => 3,
        });
    }
    result.unwrap();
}

#[test]
fn a_killed_process_fails_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let marker = |p: usize| dir.path().join(format!("started-{p}"));
    let mut children = spawn_pair(dir.path(), "endless_child", ENDLESS_ENV, 1, |p, cmd| {
        cmd.env(STARTED_ENV, marker(p)).stderr(Stdio::null());
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while !marker(0).exists() && !marker(1).exists() {
        assert!(Instant::now() < deadline, "the 2-process job never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    children[1].kill().unwrap(); // SIGKILL: no chance to announce anything
    children[1].wait().unwrap();
    let status = wait_until(
        &mut children[0],
        deadline,
        "process 0 after its peer was killed",
    );
    // Exit code 4: `execute` returned `WeirError::Communication`.
    assert_eq!(
        status.code(),
        Some(4),
        "process 0 must return a communication error when its peer is killed"
    );
}
