//! `weir launch`: a job on 2 processes equals 1 process; a failing process stops the job;
//! restarts; and two "hosts" made of Linux network namespaces joined by a veth pair.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const WEIR: &str = env!("CARGO_BIN_EXE_weir");

fn run(args: &[&str]) -> Output {
    Command::new(WEIR).args(args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The wordcount input: the demo text as JSON string lines.
fn lines_file(dir: &Path) -> PathBuf {
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/data/pride_and_prejudice_ch1.txt");
    let text = std::fs::read_to_string(source).unwrap();
    let lines: String = text
        .lines()
        .map(|l| serde_json::to_string(l).unwrap() + "\n")
        .collect();
    let path = dir.join("lines.jsonl");
    std::fs::write(&path, lines).unwrap();
    path
}

/// All lines of the part files in `dir`, sorted.
fn result(dir: &Path) -> Vec<String> {
    let mut lines: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flat_map(|e| {
            let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
            text.lines().map(String::from).collect::<Vec<_>>()
        })
        .collect();
    lines.sort();
    lines
}

/// The last (largest) count of each word in `lines`, as `weir run wordcount` writes them.
fn last_counts(lines: &[String]) -> std::collections::BTreeMap<String, u64> {
    let mut last = std::collections::BTreeMap::new();
    for line in lines {
        let (word, n): (String, u64) = serde_json::from_str(line).unwrap();
        let seen = last.entry(word).or_insert(0);
        *seen = n.max(*seen);
    }
    last
}

/// The words of the wordcount input counted one by one (split on whitespace, lower case).
fn sequential_counts(input: &Path) -> std::collections::BTreeMap<String, u64> {
    let mut counts = std::collections::BTreeMap::new();
    for line in std::fs::read_to_string(input).unwrap().lines() {
        let line: String = serde_json::from_str(line).unwrap();
        for word in line.split_whitespace() {
            *counts.entry(word.to_lowercase()).or_insert(0) += 1;
        }
    }
    counts
}

fn one_process_result(dir: &Path, input: &Path) -> Vec<String> {
    let out = dir.join("one");
    let o = run(&[
        "run",
        "wordcount",
        "--input",
        input.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "-w",
        "2",
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    result(&out)
}

#[test]
fn two_launched_processes_give_the_same_result_as_one() {
    let dir = tempfile::tempdir().unwrap();
    let input = lines_file(dir.path());
    let expected = one_process_result(dir.path(), &input);
    assert!(expected.len() > 100);
    let out = dir.path().join("two");
    let o = run(&[
        "launch",
        "-n",
        "2",
        "-w",
        "1",
        "--",
        WEIR,
        "run",
        "wordcount",
        "--input",
        input.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let two = result(&out);
    assert_eq!(two, expected);
    assert_eq!(last_counts(&two), sequential_counts(&input));
}

#[test]
fn a_failing_process_stops_the_others_and_the_launcher_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("p0.pid");
    // p1 fails; p0 would wait 60 s and records its pid so that we can check it was stopped.
    // The pid is written beside the file and renamed in: killed between creating the file and
    // writing it, p0 would leave an empty file (which read as a running process).
    let script = format!(
        r#"case "$*" in *"-p 1"*) echo about to fail; exit 3;; *) echo $$ > {p}.new && mv {p}.new {p}; exec sleep 60;; esac"#,
        p = pid_file.display()
    );
    let o = run(&["launch", "-n", "2", "--", "sh", "-c", &script, "sh"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("process p1 failed (exit status: 3)") && err.contains("[p1] about to fail"),
        "{err}"
    );
    // p0 may not have started its sleep before the kill; if it did, it must be gone.
    if let Ok(pid) = std::fs::read_to_string(&pid_file) {
        assert!(
            !running(pid.trim()),
            "p0 (pid {}) was left running",
            pid.trim()
        );
    }
}

#[test]
fn restarts_relaunch_a_job_whose_first_attempt_fails() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("failed-once");
    let script = format!(
        r#"case "$*" in *"-p 0"*) if [ -e {m} ]; then echo second; else touch {m}; echo first; exit 1; fi;; esac"#,
        m = marker.display()
    );
    let o = run(&[
        "launch",
        "-n",
        "2",
        "--restarts",
        "1",
        "--backoff-ms",
        "50",
        "--",
        "sh",
        "-c",
        &script,
        "sh",
    ]);
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("relaunching the job") && err.contains("restart 1 of 1"),
        "{err}"
    );
    assert!(text(&o.stdout).contains("[p0] second"));
}

/// Whether process `pid` is still running (not gone, not a zombie).
fn running(pid: &str) -> bool {
    assert!(
        !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()),
        "not a pid: {pid:?}"
    );
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| !stat.contains(") Z "))
}

/// The pids two launched processes wrote to `p0.pid` and `p1.pid` in `dir`, once both
/// did (within a minute, while the launcher runs).
fn wait_for_pids(dir: &Path, launcher: &mut std::process::Child) -> Vec<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let pids: Vec<String> = ["p0", "p1"]
            .iter()
            .filter_map(|p| std::fs::read_to_string(dir.join(format!("{p}.pid"))).ok())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        if pids.len() == 2 {
            return pids;
        }
        assert!(
            launcher.try_wait().unwrap().is_none(),
            "the launcher ended early"
        );
        assert!(std::time::Instant::now() < deadline, "the job never ran");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn ctrl_c_stops_every_process() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let script = format!(
        r#"case "$*" in *"-p 0"*) echo $$ > {d}/p0.pid;; *) echo $$ > {d}/p1.pid;; esac; exec sleep 60"#
    );
    let mut launcher = Command::new(WEIR)
        .args(["launch", "-n", "2", "--", "sh", "-c", &script, "sh"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pids = wait_for_pids(dir.path(), &mut launcher);
    let kill = Command::new("kill")
        .args(["-INT", &launcher.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    assert_eq!(launcher.wait().unwrap().code(), Some(130));
    for pid in &pids {
        assert!(!running(pid), "process {pid} survived Ctrl-C");
    }
}

#[test]
fn a_missing_program_is_a_clear_error() {
    let o = run(&["launch", "-n", "2", "--", "/nonexistent/program"]);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("cannot start process p0"),
        "{}",
        text(&o.stderr)
    );
}

/// Two network namespaces joined by a veth pair, named in `/etc/netns/NAME/hosts` (which
/// `ip netns exec` mounts over `/etc/hosts`); removed on drop.
struct TwoHosts {
    names: [String; 2],
}

fn sh(command: &str) {
    let o = Command::new("sh").args(["-c", command]).output().unwrap();
    assert!(
        o.status.success(),
        "`{command}` failed: {}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
}

impl TwoHosts {
    fn new() -> Self {
        let ip = Command::new("ip").arg("-V").output();
        assert!(
            ip.is_ok_and(|o| o.status.success()),
            "this test needs iproute2's `ip`: apt-get install -y iproute2"
        );
        let uid = text(&Command::new("id").arg("-u").output().unwrap().stdout);
        assert_eq!(
            uid.trim(),
            "0",
            "this test makes network namespaces: run it as root"
        );
        let id = std::process::id() % 100_000;
        let names = [format!("weir{id}a"), format!("weir{id}b")];
        let hosts = Self { names };
        let [a, b] = &hosts.names;
        sh(&format!("ip netns add {a} && ip netns add {b}"));
        sh(&format!(
            "ip link add {a} type veth peer name {b} && ip link set {a} netns {a} && ip link set {b} netns {b}"
        ));
        sh(&format!(
            "ip -n {a} addr add 10.213.0.1/24 dev {a} && ip -n {b} addr add 10.213.0.2/24 dev {b}"
        ));
        sh(&format!(
            "ip -n {a} link set {a} up && ip -n {b} link set {b} up && ip -n {a} link set lo up && ip -n {b} link set lo up"
        ));
        let hosts_file = format!("127.0.0.1 localhost\n10.213.0.1 {a}\n10.213.0.2 {b}\n");
        for n in &hosts.names {
            std::fs::create_dir_all(format!("/etc/netns/{n}")).unwrap();
            std::fs::write(format!("/etc/netns/{n}/hosts"), &hosts_file).unwrap();
        }
        hosts
    }
}

impl Drop for TwoHosts {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = Command::new("ip").args(["netns", "del", n]).output();
            let _ = std::fs::remove_dir_all(format!("/etc/netns/{n}"));
        }
    }
}

#[test]
fn the_launcher_runs_one_process_in_each_of_two_network_namespaces() {
    let hosts = TwoHosts::new();
    let dir = tempfile::tempdir().unwrap();
    let input = lines_file(dir.path());
    let expected = one_process_result(dir.path(), &input);
    let hostfile = dir.path().join("hosts.txt");
    let [a, b] = &hosts.names;
    std::fs::write(&hostfile, format!("{a}:24101\n{b}:24101\n")).unwrap();
    // The two processes cannot reach each other except over the veth pair.
    let out = dir.path().join("netns");
    let o = run(&[
        "launch",
        "-n",
        "2",
        "-w",
        "2",
        "--hosts",
        hostfile.to_str().unwrap(),
        "--remote",
        "ip netns exec {host}",
        "--",
        WEIR,
        "run",
        "wordcount",
        "--input",
        input.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}{}", text(&o.stdout), text(&o.stderr));
    assert_eq!(result(&out), expected);
}

const LAUNCHED_ARGS: &str = "WEIR_TEST_LAUNCHED_ARGS";
const STALL_PID: &str = "WEIR_TEST_STALL_PID_FILE";

/// The configuration a launched child gets from the cluster flags the launcher gave it (in
/// `env`, put there by the test's shell wrapper); `None` when the test runs directly.
fn child_config(env: &str) -> Option<weir_core::Config> {
    let args = std::env::var(env).ok()?;
    let argv = std::iter::once("child".to_string()).chain(args.split(' ').map(String::from));
    Some(
        weir_core::Config::from_args(argv)
            .unwrap()
            .with_verbose(false),
    )
}

/// Runs a paced keyed count of `count` records (endless with `None`) at `rate` records/s;
/// `mark` sees each of its results.
fn run_paced_count(
    config: weir_core::Config,
    rate: f64,
    count: Option<u64>,
    mark: impl Fn() + Clone + Send + Sync + 'static,
) -> weir_core::Result<weir_core::JobReport> {
    weir_core::execute(config, move |job| {
        let mark = mark.clone();
        job.generate(weir_core::op("ticks").rate(rate), count, |i| i)
            .key_by(|x| x % 8)
            .count("count")
            .for_each("mark", move |_| mark());
        Ok(())
    })
}

/// A process launched by `a_stalled_process_is_killed_and_the_job_relaunched` (nothing when
/// run directly): a paced keyed count over 40,000 records. Process 1 of the first attempt
/// writes its pid, once the job runs, for the test to stop it.
#[test]
fn launched_child() {
    let Some(config) = child_config(LAUNCHED_ARGS) else {
        return;
    };
    let pid_file = std::env::var(STALL_PID).unwrap();
    // Once the job runs, process 1 of the first attempt says who it is.
    let report_pid = config.process_index() == 1 && !Path::new(&pid_file).exists();
    let result = run_paced_count(config, 20_000.0, Some(40_000), move || {
        if report_pid && !Path::new(&pid_file).exists() {
            std::fs::write(&pid_file, std::process::id().to_string()).unwrap();
        }
    });
    match result {
        Ok(_) => std::process::exit(0),
        Err(e) => {
            eprintln!("job failed: {e}");
            std::process::exit(3)
        }
    }
}

#[test]
fn a_stalled_process_is_killed_and_the_job_relaunched() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("p1.pid");
    let exe = std::env::current_exe().unwrap();
    // The launcher appends the cluster flags; the shell hands them to the test binary.
    let script = format!(
        r#"{LAUNCHED_ARGS}="$* --peer-timeout-ms 2000" exec {} --exact launched_child --nocapture --test-threads 1"#,
        exe.display()
    );
    let mut launcher = Command::new(WEIR)
        .args([
            "launch",
            "-n",
            "2",
            "--restarts",
            "1",
            "--backoff-ms",
            "50",
            "--",
        ])
        .args(["sh", "-c", &script, "sh"])
        .env(STALL_PID, &pid_file)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let pid = loop {
        if let Some(pid) = std::fs::read_to_string(&pid_file)
            .ok()
            .filter(|p| !p.is_empty())
        {
            break pid;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "process 1 never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    // The processes have heard from each other (heartbeats go out twice a second).
    std::thread::sleep(std::time::Duration::from_secs(1));
    // SAFETY: kill(2) on the launched process, which this test owns through the launcher.
    unsafe {
        libc::kill(pid.trim().parse().unwrap(), libc::SIGSTOP);
    }
    let (done, status) = std::sync::mpsc::channel();
    let mut stderr = launcher.stderr.take().unwrap();
    std::thread::spawn(move || {
        let mut err = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut err);
        let _ = done.send(err);
    });
    let err = status
        .recv_timeout(std::time::Duration::from_secs(120))
        .expect("the launcher hung on a stalled process");
    let status = launcher.wait().unwrap();
    assert!(status.success(), "launcher: {status}\n{err}");
    assert!(
        err.contains("has not been heard from") && err.contains("relaunching the job"),
        "{err}"
    );
    assert!(!running(pid.trim()), "the stopped process was left behind");
}

#[test]
fn output_that_is_not_utf8_is_forwarded_and_the_program_keeps_running() {
    // An invalid byte, then more output than a pipe holds: a launcher that stopped reading
    // would kill the program with a broken pipe.
    let script = r#"printf 'bad \377 byte\n'; i=0; while [ $i -lt 20000 ]; do echo "line $i"; i=$((i+1)); done; echo finished"#;
    let o = run(&["launch", "-n", "1", "--", "sh", "-c", script, "sh"]);
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert!(o.status.success(), "{err}");
    assert!(
        out.contains("[p0] bad") && out.contains("[p0] finished"),
        "{out}"
    );
    assert!(
        o.stdout.windows(2).any(|w| w == b" \xff"),
        "the byte is passed on as it is"
    );
}

#[test]
fn the_hostfile_is_private_and_each_process_inherits_its_listener() {
    // Each process reports its hostfile's directory and mode, and what its descriptor 3 is.
    let script = r#"while [ "$1" != "-h" ]; do shift; done; d=$(dirname "$2"); echo "dir=$d mode=$(stat -c %a "$d") fd=$WEIR_LISTEN_FD $(readlink /proc/$$/fd/3)""#;
    let o = run(&["launch", "-n", "2", "--", "sh", "-c", script, "sh"]);
    let out = text(&o.stdout);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    for line in lines {
        assert!(line.contains("mode=700"), "{line}");
        assert!(
            !line.contains(&format!("weir-launch-{}", std::process::id())),
            "{line}"
        );
        assert!(line.contains("fd=3 socket:["), "{line}");
    }
}

#[test]
fn a_stopped_single_process_is_killed_and_relaunched() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("p0.pid");
    // The first attempt records its pid and waits; the second finishes at once.
    let script = format!(
        r#"if [ -e {p} ]; then echo second; else echo $$ > {p}; exec sleep 60; fi"#,
        p = pid_file.display()
    );
    let launcher = Command::new(WEIR)
        .args(["launch", "-n", "1", "--restarts", "1", "--backoff-ms", "50"])
        .args(["--stall-ms", "500", "--", "sh", "-c", &script, "sh"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let pid = loop {
        if let Some(pid) = std::fs::read_to_string(&pid_file)
            .ok()
            .filter(|p| p.ends_with('\n'))
        {
            break pid;
        }
        assert!(std::time::Instant::now() < deadline, "p0 never started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    // SAFETY: kill(2) on the launched process.
    unsafe {
        libc::kill(pid.trim().parse().unwrap(), libc::SIGSTOP);
    }
    let (done, output) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(launcher.wait_with_output());
    });
    let o = output
        .recv_timeout(std::time::Duration::from_secs(120))
        .expect("the launcher hung on a stopped process")
        .unwrap();
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("process p0 has been stopped") && err.contains("relaunching the job"),
        "{err}"
    );
    assert!(text(&o.stdout).contains("[p0] second"));
    assert!(!running(pid.trim()), "the stopped process was left behind");
}

const LIFELINE_ARGS: &str = "WEIR_TEST_LIFELINE_ARGS";
const LIFELINE_DIR: &str = "WEIR_TEST_LIFELINE_DIR";

/// A process launched by the lifeline tests (nothing when run directly): an endless paced
/// job that writes its pid to `p<index>.pid` once it runs.
#[test]
fn lifeline_child() {
    let Some(config) = child_config(LIFELINE_ARGS) else {
        return;
    };
    let pid_file = PathBuf::from(std::env::var(LIFELINE_DIR).unwrap())
        .join(format!("p{}.pid", config.process_index()));
    let result = run_paced_count(config, 1_000.0, None, move || {
        if !pid_file.exists() {
            std::fs::write(&pid_file, std::process::id().to_string()).unwrap();
        }
    });
    eprintln!("the endless job ended: {result:?}");
    std::process::exit(3)
}

/// Starts `weir launch -n 2 [LAUNCH_ARGS] -- <lifeline_child>` and returns it with the pids
/// of its two processes once both run their job.
fn launch_endless_job(dir: &Path, launch_args: &[&str]) -> (std::process::Child, Vec<String>) {
    let exe = std::env::current_exe().unwrap();
    let script = format!(
        r#"{LIFELINE_ARGS}="$*" exec {} --exact lifeline_child --nocapture --test-threads 1"#,
        exe.display()
    );
    let mut launcher = Command::new(WEIR)
        .args(["launch", "-n", "2"])
        .args(launch_args)
        .args(["--", "sh", "-c", &script, "sh"])
        .env(LIFELINE_DIR, dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pids = wait_for_pids(dir, &mut launcher);
    (launcher, pids)
}

/// Kills the processes it names when dropped: a test that fails because they outlived
/// their launcher does not leave them running (nor a launcher waiting for their output).
struct KillOnDrop(Vec<String>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for pid in self.0.iter().filter(|p| running(p)) {
            // SAFETY: kill(2) on a process this test started through the launcher.
            unsafe {
                libc::kill(pid.parse().unwrap(), libc::SIGKILL);
            }
        }
    }
}

/// Waits up to 20 s for every process in `pids` to end.
fn assert_all_end(pids: &[String], what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while pids.iter().any(|p| running(p)) {
        assert!(
            std::time::Instant::now() < deadline,
            "processes {pids:?} outlived {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Two free ports on 127.0.0.1, as a hostfile in `dir`.
fn local_hostfile(dir: &Path) -> PathBuf {
    let listeners: Vec<_> = (0..2)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let lines: Vec<String> = listeners
        .iter()
        .map(|l| format!("127.0.0.1:{}", l.local_addr().unwrap().port()))
        .collect();
    let path = dir.join("hosts.txt");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

#[test]
fn processes_end_with_a_launcher_killed_by_sigkill() {
    // Locally each process leads its own process group, which a killed launcher cannot stop.
    let dir = tempfile::tempdir().unwrap();
    let (mut launcher, pids) = launch_endless_job(dir.path(), &[]);
    let _cleanup = KillOnDrop(pids.clone());
    // SAFETY: kill(2) on the launcher this test started.
    unsafe {
        libc::kill(launcher.id() as i32, libc::SIGKILL);
    }
    launcher.wait().unwrap();
    assert_all_end(&pids, "a launcher killed with SIGKILL");
}

#[test]
fn remote_processes_end_when_the_launcher_stops_or_dies() {
    // `setsid -w` stands for `ssh host`: the program runs in another session, which the
    // launcher's kill of the remote command's process group does not reach.
    for signal in [libc::SIGINT, libc::SIGKILL] {
        let dir = tempfile::tempdir().unwrap();
        let hostfile = local_hostfile(dir.path());
        let hosts = hostfile.to_str().unwrap();
        let args = ["--hosts", hosts, "--remote", "setsid -w"];
        let (mut launcher, pids) = launch_endless_job(dir.path(), &args);
        let cleanup = KillOnDrop(pids.clone());
        // SAFETY: kill(2) on the launcher this test started.
        unsafe {
            libc::kill(launcher.id() as i32, signal);
        }
        // Before waiting for the launcher: a stopping launcher waits for the processes'
        // output to end.
        assert_all_end(&pids, &format!("the launcher (signal {signal})"));
        drop(cleanup);
        let status = launcher.wait().unwrap();
        if signal == libc::SIGINT {
            assert_eq!(status.code(), Some(130));
        }
    }
}
