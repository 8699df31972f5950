//! Processes of one job that misbehave, as OS processes on 127.0.0.1: a stopped (SIGSTOP)
//! process fails the others after the peer timeout instead of hanging them, and one busy in
//! a call longer than that timeout does not; a killed one
//! (SIGKILL) fails them with an error that names it; garbage on a
//! process's port while the job forms crashes nothing; a process with another job secret
//! cannot join. A worker stuck in an operator's code does not keep a failed job from ending,
//! in one process or in another (the cancellation timeout).

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use weir::prelude::*;
use weir::{JobSecret, LocalCluster};

const ARGS_ENV: &str = "WEIR_TEST_PEER_ARGS";
const STARTED_ENV: &str = "WEIR_TEST_PEER_STARTED";
const RECORDS_ENV: &str = "WEIR_TEST_PEER_RECORDS";
const SLOW_START_ENV: &str = "WEIR_TEST_PEER_SLOW_START_MS";
const NAP_ENV: &str = "WEIR_TEST_PEER_NAP_MS";
/// A file: once it exists, the process's `nap` gets stuck (and writes `<file>.stuck`).
const STICK_ENV: &str = "WEIR_TEST_PEER_STICK";
/// A file: once it exists, the process's `nap` waits for `<file>.stuck` (another process
/// stuck), then panics.
const FAIL_ENV: &str = "WEIR_TEST_PEER_FAIL";

/// Exit codes of the child, by how its job ended.
fn exit_code(result: &Result<JobReport, WeirError>) -> i32 {
    match result {
        Ok(_) => 0,
        Err(WeirError::PeerStalled { .. }) => 5,
        Err(WeirError::Communication(_)) => 4,
        Err(_) => 3,
    }
}

/// One process of a job of the tests below (does nothing when run directly): a paced
/// keyed count, endless unless `RECORDS_ENV` bounds it.
#[test]
fn peer_child() {
    let Ok(args) = std::env::var(ARGS_ENV) else {
        return;
    };
    let argv = std::iter::once("child".to_string()).chain(args.split(' ').map(String::from));
    let config = Config::from_args(argv).unwrap().with_verbose(false);
    let records = std::env::var(RECORDS_ENV).ok().map(|n| n.parse().unwrap());
    if let Ok(ms) = std::env::var(SLOW_START_ENV) {
        // Loading data or a model before the job starts, say.
        std::thread::sleep(Duration::from_millis(ms.parse().unwrap()));
    }
    let started = std::env::var(STARTED_ENV).ok();
    let nap = std::env::var(NAP_ENV)
        .ok()
        .map(|ms| Duration::from_millis(ms.parse().unwrap()));
    let stick = std::env::var(STICK_ENV).ok();
    let fail = std::env::var(FAIL_ENV).ok();
    let result = execute(config, move |job| {
        let started = started.clone();
        let (stick, fail) = (stick.clone(), fail.clone());
        let mut napped = false;
        job.generate(op("ticks").rate(20_000.0), records, |i| i)
            .map("nap", move |x| {
                // One long call (a big model batch, a training step), once.
                if let Some(nap) = nap.filter(|_| !std::mem::replace(&mut napped, true)) {
                    std::thread::sleep(nap);
                }
                if let Some(stick) = stick.as_deref().filter(|f| Path::new(f).exists()) {
                    stick_forever(Path::new(&format!("{stick}.stuck")));
                }
                if let Some(fail) = fail.as_deref().filter(|f| Path::new(f).exists()) {
                    let stuck = format!("{fail}.stuck");
                    while !Path::new(&stuck).exists() {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    panic!("injected failure");
                }
                x
            })
            .key_by(|x| x % 8)
            .count("count")
            .for_each("mark", move |_| {
                if let Some(path) = &started {
                    let _ = std::fs::write(path, "running");
                }
            });
        Ok(())
    });
    eprintln!("job ended: {result:?}");
    std::process::exit(exit_code(&result));
}

/// A user function that never returns (a loop waiting for something that never comes), once
/// it wrote `marker`.
fn stick_forever(marker: &Path) -> ! {
    std::fs::write(marker, "stuck").unwrap();
    loop {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts processes 0 and 1 of a job of `peer_child` on listeners they inherit.
fn spawn_pair(
    dir: &Path,
    cluster: &LocalCluster,
    extra: impl Fn(usize, &mut Command),
) -> Vec<Child> {
    let hosts = dir.join("hosts.txt");
    std::fs::write(&hosts, cluster.hostfile()).unwrap();
    (0..2)
        .map(|p| spawn_one(&hosts, cluster, p, &extra))
        .collect()
}

fn spawn_one(
    hosts: &Path,
    cluster: &LocalCluster,
    p: usize,
    extra: &impl Fn(usize, &mut Command),
) -> Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "peer_child",
        "--nocapture",
        "--test-threads",
        "1",
    ])
    .env(
        ARGS_ENV,
        format!(
            "-w 1 -n 2 -p {p} -h {} --peer-timeout-ms 2000 --cancellation-timeout-ms 1000",
            hosts.display()
        ),
    )
    .stdout(Stdio::null());
    cluster.pass_listener(p, &mut cmd);
    extra(p, &mut cmd);
    cmd.spawn().unwrap()
}

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

/// Starts processes 0 and 1 of an endless job and returns once both are running.
fn start_pair(dir: &Path, extra: impl Fn(usize, &mut Command)) -> Vec<Child> {
    let cluster = LocalCluster::bind(2).unwrap();
    let marker = |p: usize| dir.join(format!("started-{p}"));
    let children = spawn_pair(dir, &cluster, |p, cmd| {
        cmd.env(STARTED_ENV, marker(p));
        extra(p, cmd);
    });
    drop(cluster);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !marker(0).exists() || !marker(1).exists() {
        assert!(Instant::now() < deadline, "the 2-process job never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    children
}

fn signal(child: &Child, signal: i32) {
    // SAFETY: kill(2) on a child process of this test.
    assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
}

#[test]
fn a_stopped_process_fails_the_other_after_the_peer_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let mut children = start_pair(dir.path(), |_, _| {});
    // Both run and have heard from each other (heartbeats go out twice a second).
    std::thread::sleep(Duration::from_secs(1));
    signal(&children[1], libc::SIGSTOP); // stalled: alive, connected, silent
    let status = wait_until(
        &mut children[0],
        Instant::now() + Duration::from_secs(60),
        "process 0 after its peer was stopped",
    );
    signal(&children[1], libc::SIGKILL);
    children[1].wait().unwrap();
    assert_eq!(
        status.code(),
        Some(5),
        "process 0 must fail with WeirError::PeerStalled"
    );
}

/// A process whose only worker is in one call three times as long as the peer timeout is
/// busy, not stalled: heartbeats go on a connection of their own, sent by a thread of their
/// own. Before, they went between the worker's steps, and the other process failed the job
/// with `PeerStalled` two seconds into the call.
#[test]
fn a_process_busy_in_one_long_call_is_not_taken_for_stalled() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = LocalCluster::bind(2).unwrap();
    let mut children = spawn_pair(dir.path(), &cluster, |p, cmd| {
        cmd.env(RECORDS_ENV, "20000");
        if p == 1 {
            cmd.env(NAP_ENV, "6000");
        }
    });
    drop(cluster);
    let deadline = Instant::now() + Duration::from_secs(90);
    for (p, child) in children.iter_mut().enumerate() {
        let status = wait_until(child, deadline, &format!("process {p}"));
        assert_eq!(status.code(), Some(0), "process {p}: busy is not stalled");
    }
}

#[test]
fn garbage_on_a_port_while_the_job_forms_crashes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = LocalCluster::bind(2).unwrap();
    let hosts = dir.path().join("hosts.txt");
    std::fs::write(&hosts, cluster.hostfile()).unwrap();
    let bounded = |_: usize, cmd: &mut Command| {
        cmd.env(RECORDS_ENV, "2000");
    };
    // Process 0 waits for process 1 to connect; a port scanner and a peer that claims to
    // be process 2^64-1 get there first.
    let mut first = spawn_one(&hosts, &cluster, 0, &bounded);
    let address = cluster.addresses()[0].clone();
    for garbage in [
        &u64::MAX.to_le_bytes()[..],
        b"GET / HTTP/1.1\r\n\r\n",
        &[0u8; 200],
    ] {
        let mut s = std::net::TcpStream::connect(&address).unwrap();
        let _ = s.write_all(garbage);
    }
    std::thread::sleep(Duration::from_millis(300));
    let mut second = spawn_one(&hosts, &cluster, 1, &bounded);
    drop(cluster);
    let deadline = Instant::now() + Duration::from_secs(60);
    let statuses = [
        wait_until(&mut first, deadline, "process 0"),
        wait_until(&mut second, deadline, "process 1"),
    ];
    assert!(
        statuses.iter().all(ExitStatus::success),
        "the job must succeed: {statuses:?}"
    );
}

#[test]
fn a_process_with_another_job_secret_cannot_join() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = LocalCluster::bind(2).unwrap();
    let secrets = [
        JobSecret::generate().unwrap(),
        JobSecret::generate().unwrap(),
    ];
    let mut children = spawn_pair(dir.path(), &cluster, |p, cmd| {
        cmd.env(RECORDS_ENV, "2000")
            .env("WEIR_JOB_SECRET", secrets[p].to_hex())
            .stderr(Stdio::piped());
    });
    drop(cluster);
    let deadline = Instant::now() + Duration::from_secs(60);
    // Process 1 is refused at once; process 0 is left waiting until it is stopped.
    let status = wait_until(&mut children[1], deadline, "process 1");
    assert_eq!(status.code(), Some(4), "a communication error");
    let mut stderr = String::new();
    std::io::Read::read_to_string(children[1].stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(
        stderr.contains("refused this process 1") && stderr.contains("not part of this job"),
        "{stderr}"
    );
    let _ = children[0].kill();
    children[0].wait().unwrap();
}

#[test]
fn a_process_that_starts_slowly_is_waited_for() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = LocalCluster::bind(2).unwrap();
    // Process 0 takes longer to reach the job than a handshake may take; its listener is
    // bound all along (inherited), so process 1's connection waits in its backlog.
    let mut children = spawn_pair(dir.path(), &cluster, |p, cmd| {
        cmd.env(RECORDS_ENV, "2000");
        if p == 0 {
            cmd.env(SLOW_START_ENV, "7000");
        }
    });
    drop(cluster);
    let deadline = Instant::now() + Duration::from_secs(90);
    for (p, child) in children.iter_mut().enumerate() {
        let status = wait_until(child, deadline, &format!("process {p}"));
        assert!(status.success(), "process {p}: {status}");
    }
}

/// A process killed outright (SIGKILL) fails the other with a communication error that
/// names it: the error said "another process", or a worker's panic on a channel to the dead
/// process ("MergeQueue poisoned") came out as the cause.
#[test]
fn a_killed_process_fails_the_other_with_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut children = start_pair(dir.path(), |p, cmd| {
        if p == 0 {
            cmd.stderr(Stdio::piped());
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    signal(&children[1], libc::SIGKILL);
    children[1].wait().unwrap();
    let status = wait_until(&mut children[0], deadline, "process 0 after its peer died");
    let mut stderr = String::new();
    std::io::Read::read_to_string(children[0].stderr.as_mut().unwrap(), &mut stderr).unwrap();
    let ended = stderr
        .lines()
        .find(|l| l.starts_with("job ended"))
        .unwrap_or_default();
    assert_eq!(status.code(), Some(4), "a communication error: {stderr}");
    assert!(
        ended.contains("process 1") && !ended.contains("poisoned"),
        "{ended}"
    );
}

/// Process 1's only worker gets stuck in `nap` (it never returns), then process 0's worker
/// fails. Process 1 hears of the failure on its heartbeat connection (its worker never reads
/// the control dataflow again) and gives up on the stuck worker after the cancellation
/// timeout: it exits with an error naming the worker and the operator. Before, it ran
/// forever.
#[test]
fn a_process_whose_worker_is_stuck_ends_after_the_cancellation_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let stick = dir.path().join("stick");
    let mut children = start_pair(dir.path(), |p, cmd| {
        cmd.stderr(Stdio::piped());
        if p == 1 {
            cmd.env(STICK_ENV, &stick);
        } else {
            // Fails once process 1 is stuck.
            cmd.env(FAIL_ENV, &stick);
        }
    });
    std::fs::write(&stick, "").unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let failed = wait_until(&mut children[0], deadline, "process 0 after it failed");
    assert_eq!(failed.code(), Some(3), "process 0 failed in `nap`");
    let status = wait_until(
        &mut children[1],
        deadline,
        "process 1 with its stuck worker",
    );
    let mut stderr = String::new();
    std::io::Read::read_to_string(children[1].stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert_ne!(status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("worker 1 (in operator `nap`) did not stop within 1s"),
        "{stderr}"
    );
}

/// The same in one process: worker 1 is stuck in `stuck`, worker 0 fails; `execute` returns
/// the failure after the cancellation timeout while worker 1 is still stuck.
#[test]
fn a_worker_stuck_in_user_code_does_not_keep_a_failed_job_from_ending() {
    use std::sync::atomic::{AtomicBool, Ordering};
    static STUCK: AtomicBool = AtomicBool::new(false);
    static RELEASE: AtomicBool = AtomicBool::new(false);
    let config = Config::threads(2)
        .with_verbose(false)
        .with_cancellation_timeout(Duration::from_millis(300));
    let (done, ended) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let result = execute(config, |job| {
            job.generate(op("numbers").parallelism(2), Some(10_000), |k| k)
                .map("stuck", |k| {
                    // Instance 1 takes the odd numbers, instance 0 the even ones.
                    if k == 1 {
                        STUCK.store(true, Ordering::SeqCst);
                        while !RELEASE.load(Ordering::SeqCst) {
                            std::thread::sleep(Duration::from_millis(10));
                        }
                    }
                    if k == 0 {
                        while !STUCK.load(Ordering::SeqCst) {
                            std::thread::sleep(Duration::from_millis(10));
                        }
                        panic!("injected failure");
                    }
                    k
                })
                .for_each("sink", |_| {});
            Ok(())
        });
        let _ = done.send(result);
    });
    // A guard against a hung test, not a timing assertion.
    let result = ended
        .recv_timeout(Duration::from_secs(60))
        .expect("execute returned while worker 1 is stuck");
    assert!(STUCK.load(Ordering::SeqCst) && !RELEASE.load(Ordering::SeqCst));
    RELEASE.store(true, Ordering::SeqCst);
    let e = result.unwrap_err();
    assert!(
        e.to_string().contains("injected failure"),
        "the root cause: {e}"
    );
}
