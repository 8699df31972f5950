//! Every operator and join against its sequential reference: parallelism 1 and 2, one and
//! two worker threads, and two OS processes talking TCP on 127.0.0.1.

mod common;

use std::path::PathBuf;
use std::process::Command;
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

/// Runs as one process of a multi-process job when started by
/// `two_processes_match_reference` (cluster arguments in the environment); run directly,
/// it runs the scenarios in this process.
#[test]
fn conformance_child() {
    let Ok(args) = std::env::var(CHILD_ENV) else {
        check(
            run_in_process(Config::threads(1), 1),
            1,
            "child run in-process",
        );
        return;
    };
    let argv = std::iter::once("child".to_string()).chain(args.split(' ').map(String::from));
    let config = Config::from_args(argv).unwrap().with_verbose(false);
    let process = config.process_index();
    let results = run_in_process(config, 2);
    if process == 0 {
        let path = std::env::var(CHILD_OUT).unwrap();
        std::fs::write(path, serde_json::to_string(&results).unwrap()).unwrap();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn two_processes_match_reference() {
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("hosts.txt");
    std::fs::write(
        &hosts,
        format!("127.0.0.1:{}\n127.0.0.1:{}\n", free_port(), free_port()),
    )
    .unwrap();
    let out: PathBuf = dir.path().join("results.json");
    let exe = std::env::current_exe().unwrap();
    let mut children: Vec<_> = (0..2)
        .map(|p| {
            Command::new(&exe)
                .args([
                    "--exact",
                    "conformance_child",
                    "--nocapture",
                    "--test-threads",
                    "1",
                ])
                .env(
                    CHILD_ENV,
                    format!("-w 2 -n 2 -p {p} -h {}", hosts.display()),
                )
                .env(CHILD_OUT, &out)
                .spawn()
                .unwrap()
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    for child in &mut children {
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(
                    status.success(),
                    "a process of the 2-process job failed: {status}"
                );
                break;
            }
            if Instant::now() > deadline {
                children.iter_mut().for_each(|c| {
                    let _ = c.kill();
                });
                panic!("2-process job did not finish within 120 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let results: Vec<Vec<String>> =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    check(results, 2, "-w 2 -n 2 (two processes)");
}

const PANIC_ENV: &str = "WEIR_TEST_PANIC_ARGS";

/// One process of `a_panic_in_one_process_fails_both`: the worker with global index 3
/// (on process 1) panics mid-stream. Run directly, it checks the same in one process.
#[test]
fn panicking_child() {
    let config = match std::env::var(PANIC_ENV) {
        Ok(args) => {
            let argv =
                std::iter::once("child".to_string()).chain(args.split(' ').map(String::from));
            Config::from_args(argv).unwrap().with_verbose(false)
        }
        Err(_) => Config::threads(4).with_verbose(false),
    };
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
    if std::env::var(PANIC_ENV).is_err() {
        assert!(
            matches!(err, WeirError::WorkerPanic { worker: 3, .. }),
            "{err}"
        );
    } else {
        // Exit non-zero so the parent sees this process failed (and did not hang).
        eprintln!("job failed as expected: {err}");
        std::process::exit(3);
    }
}

#[test]
fn a_panic_in_one_process_fails_both_processes() {
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("hosts.txt");
    std::fs::write(
        &hosts,
        format!("127.0.0.1:{}\n127.0.0.1:{}\n", free_port(), free_port()),
    )
    .unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut children: Vec<_> = (0..2)
        .map(|p| {
            Command::new(&exe)
                .args([
                    "--exact",
                    "panicking_child",
                    "--nocapture",
                    "--test-threads",
                    "1",
                ])
                .env(
                    PANIC_ENV,
                    format!("-w 2 -n 2 -p {p} -h {}", hosts.display()),
                )
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    for (p, child) in children.iter_mut().enumerate() {
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(
                    !status.success(),
                    "process {p} should fail when a worker anywhere panics"
                );
                break;
            }
            assert!(
                Instant::now() < deadline,
                "process {p} hung after a peer's worker panicked"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

const ENDLESS_ENV: &str = "WEIR_TEST_ENDLESS_ARGS";
const STARTED_ENV: &str = "WEIR_TEST_STARTED_FILE";

/// One process of `a_killed_process_fails_the_other`: an endless paced job that marks a
/// file once records flow. Run directly, it checks that a bounded version completes.
#[test]
fn endless_child() {
    let (config, count) = match std::env::var(ENDLESS_ENV) {
        Ok(args) => {
            let argv =
                std::iter::once("child".to_string()).chain(args.split(' ').map(String::from));
            (Config::from_args(argv).unwrap().with_verbose(false), None)
        }
        Err(_) => (Config::threads(2).with_verbose(false), Some(2_000)),
    };
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
    if std::env::var(ENDLESS_ENV).is_ok() {
        eprintln!("job ended: {result:?}");
        std::process::exit(if result.is_err() { 3 } else { 0 });
    }
    result.unwrap();
}

#[test]
fn a_killed_process_fails_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("hosts.txt");
    std::fs::write(
        &hosts,
        format!("127.0.0.1:{}\n127.0.0.1:{}\n", free_port(), free_port()),
    )
    .unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut children: Vec<_> = (0..2)
        .map(|p| {
            Command::new(&exe)
                .args([
                    "--exact",
                    "endless_child",
                    "--nocapture",
                    "--test-threads",
                    "1",
                ])
                .env(
                    ENDLESS_ENV,
                    format!("-w 1 -n 2 -p {p} -h {}", hosts.display()),
                )
                .env(STARTED_ENV, dir.path().join(format!("started-{p}")))
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !dir.path().join("started-0").exists() && !dir.path().join("started-1").exists() {
        assert!(Instant::now() < deadline, "the 2-process job never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    children[1].kill().unwrap(); // SIGKILL: no chance to announce anything
    children[1].wait().unwrap();
    loop {
        if let Some(status) = children[0].try_wait().unwrap() {
            assert!(
                !status.success(),
                "process 0 must fail when its peer is killed"
            );
            break;
        }
        if Instant::now() > deadline {
            let _ = children[0].kill();
            panic!("process 0 hung after its peer was killed");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
