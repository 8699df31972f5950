//! `weir launch`: runs a Weir (timely) program as a cluster of processes, locally on
//! 127.0.0.1 or on hosts through a remote-command template, with prefixed output, fail-stop
//! of the whole job, restarts and Ctrl-C handling. The processes end with the launcher: it
//! holds their standard input open, and they exit when it closes
//! (`--exit-when-stdin-closes`).

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use weir_core::{JobSecret, LocalCluster};
use weir_ml::output_forwarding::{forward_lines, Destination, LastLines};

/// Output lines kept per process for the failure report.
const LAST_LINES: usize = 10;

/// What `weir launch` was asked to do.
#[derive(Clone, Debug)]
pub struct LaunchOptions {
    /// Number of processes.
    pub processes: usize,
    /// Worker threads per process.
    pub threads: usize,
    /// `host:port` lines; without it, processes run locally on 127.0.0.1 with free ports.
    pub hosts: Option<PathBuf>,
    /// How to start a process on a host: `{host}` and `{index}` are replaced.
    pub remote: String,
    /// Relaunches of the whole job after a failure.
    pub restarts: u32,
    /// Pause before a relaunch (doubles each time).
    pub backoff: Duration,
    /// A local process stopped (SIGSTOP, a debugger) for this long counts as failed.
    pub stall: Duration,
    /// The program and its arguments.
    pub program: Vec<String>,
}

/// One running process of the job.
struct Process {
    child: Child,
    /// The process's standard input, held open while it runs: the process was given
    /// `--exit-when-stdin-closes`, so closing this (or the launcher's death) ends it, also
    /// on another host, where killing the local `ssh` does not reach it.
    lifeline: Option<ChildStdin>,
    output: Vec<JoinHandle<()>>,
    last_lines: LastLines,
}

impl Process {
    /// Stops the process: closes its standard input, then kills its process group.
    fn stop(&mut self) {
        self.lifeline = None;
        kill_group(&mut self.child);
    }
}

/// Kills a process and everything it started (each process leads its own process group).
fn kill_group(child: &mut Child) {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    // SAFETY: plain kill(2) on the process group the child leads.
    unsafe {
        libc::kill(-(child.id() as i32), libc::SIGKILL);
    }
    let _ = child.wait();
}

/// Where the job's processes listen: on this machine, listeners bound by the launcher and
/// inherited by the processes (no port race); on hosts, the hostfile's addresses.
enum Placement {
    Local(LocalCluster),
    Remote(Vec<String>),
}

impl Placement {
    fn addresses(&self) -> &[String] {
        match self {
            Placement::Local(cluster) => cluster.addresses(),
            Placement::Remote(addresses) => addresses,
        }
    }
}

/// The addresses of the job's processes.
fn placement(options: &LaunchOptions) -> Result<Placement> {
    match &options.hosts {
        None => Ok(Placement::Local(
            LocalCluster::bind(options.processes).context("cannot bind ports on 127.0.0.1")?,
        )),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the hostfile {}", path.display()))?;
            let hosts: Vec<String> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(String::from)
                .collect();
            for (i, h) in hosts.iter().enumerate() {
                if h.rsplit_once(':')
                    .and_then(|(_, p)| p.parse::<u16>().ok())
                    .is_none()
                {
                    bail!("{} line {}: `{h}` is not host:port", path.display(), i + 1);
                }
            }
            if hosts.len() < options.processes {
                bail!(
                    "{} has {} host(s), but -n is {}",
                    path.display(),
                    hosts.len(),
                    options.processes
                );
            }
            Ok(Placement::Remote(hosts[..options.processes].to_vec()))
        }
    }
}

/// Starts process `index` of the job. Every process gets the job secret: locally in its
/// environment, on a host as the first line of its standard input (`--job-secret-stdin`),
/// which reaches it through the remote command where environment variables would not. Every
/// process ends when its standard input closes (`--exit-when-stdin-closes`), which the
/// launcher holds open until it stops the process.
fn spawn(
    options: &LaunchOptions,
    index: usize,
    placement: &Placement,
    hostfile: &std::path::Path,
    secret: &JobSecret,
) -> Result<Process> {
    let mut argv: Vec<String> = Vec::new();
    let addresses = placement.addresses();
    let remote = matches!(placement, Placement::Remote(_));
    if remote {
        let host = addresses[index].rsplit_once(':').map_or("", |(h, _)| h);
        argv.extend(options.remote.split_whitespace().map(|t| {
            t.replace("{host}", host)
                .replace("{index}", &index.to_string())
        }));
    }
    argv.extend(options.program.iter().cloned());
    argv.extend([
        "-w".into(),
        options.threads.to_string(),
        "-n".into(),
        options.processes.to_string(),
        "-p".into(),
        index.to_string(),
        "--exit-when-stdin-closes".into(),
    ]);
    let mut command = Command::new(&argv[0]);
    match placement {
        // A local hostfile would not exist on the other machine: pass the list inline.
        Placement::Remote(_) => {
            argv.extend([
                "--addresses".into(),
                addresses.join(","),
                "--job-secret-stdin".into(),
            ]);
        }
        Placement::Local(cluster) => {
            argv.extend(["-h".into(), hostfile.display().to_string()]);
            cluster.pass_listener(index, &mut command);
            command.env(weir_core::job_secret::SECRET_ENV, secret.to_hex());
        }
    }
    let mut child = command
        .args(&argv[1..])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::piped())
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot start process p{index}: `{}`", argv.join(" ")))?;
    let mut lifeline = child.stdin.take();
    if let (Some(stdin), true) = (lifeline.as_mut(), remote) {
        // A process that exits before reading it fails on its own; that is reported then.
        let _ = writeln!(stdin, "{}", secret.to_hex());
    }
    let last_lines = LastLines::new(LAST_LINES);
    let prefix = format!("[p{index}]");
    let mut output = Vec::new();
    if let Some(out) = child.stdout.take() {
        let last = Some(last_lines.clone());
        output.push(forward_lines(
            out,
            prefix.clone(),
            Destination::Stdout,
            last,
        ));
    }
    if let Some(err) = child.stderr.take() {
        let last = Some(last_lines.clone());
        output.push(forward_lines(err, prefix, Destination::Stderr, last));
    }
    Ok(Process {
        child,
        lifeline,
        output,
        last_lines,
    })
}

/// How one attempt ended.
enum Outcome {
    Success,
    /// Process `index` failed: how, and the exit code the launcher ends with if it is
    /// not relaunched.
    Failed {
        index: usize,
        how: String,
        code: i32,
    },
    Interrupted,
}

impl Outcome {
    fn exited(index: usize, status: ExitStatus) -> Self {
        Outcome::Failed {
            index,
            how: format!("failed ({status})"),
            code: status.code().filter(|c| *c != 0).unwrap_or(1),
        }
    }
}

/// Whether process `pid` is stopped (state `T` or `t` in `/proc/PID/stat`).
fn is_stopped(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        // The state follows the command name, which is in parentheses and may hold spaces.
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state == "T" || state == "t")
    })
}

/// When each local process was first seen stopped; reports one stopped for too long.
struct StallWatch {
    stopped_since: Vec<Option<std::time::Instant>>,
    limit: Duration,
}

impl StallWatch {
    fn check(&mut self, index: usize, pid: u32) -> Option<Outcome> {
        if !is_stopped(pid) {
            self.stopped_since[index] = None;
            return None;
        }
        let since = *self.stopped_since[index].get_or_insert_with(std::time::Instant::now);
        (since.elapsed() > self.limit).then(|| Outcome::Failed {
            index,
            how: format!("has been stopped for {:.1?} (stalled)", since.elapsed()),
            code: 1,
        })
    }
}

/// Runs every process until all succeed, one fails (the others are then killed), or
/// Ctrl-C.
fn run_once(options: &LaunchOptions, interrupted: &AtomicBool) -> Result<(Outcome, Vec<Process>)> {
    let placement = placement(options)?;
    // A fresh private directory (random name, mode 0700) that nobody else can prepare.
    let dir = tempfile::Builder::new()
        .prefix("weir-launch-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir()
        .context("cannot create a private directory for the hostfile")?;
    let hostfile = dir.path().join("hosts.txt");
    std::fs::write(&hostfile, placement.addresses().join("\n") + "\n")?;
    let secret = JobSecret::generate().context("cannot generate the job secret")?;
    let mut processes = Vec::new();
    for index in 0..options.processes {
        match spawn(options, index, &placement, &hostfile, &secret) {
            Ok(p) => processes.push(p),
            Err(e) => {
                processes.iter_mut().for_each(Process::stop);
                return Err(e);
            }
        }
    }
    // The processes hold their listeners now; ours would only keep dead ports open.
    drop(placement);
    let mut done = vec![false; processes.len()];
    let mut stalls = StallWatch {
        stopped_since: vec![None; processes.len()],
        limit: options.stall,
    };
    let outcome = loop {
        if interrupted.load(Ordering::SeqCst) {
            break Outcome::Interrupted;
        }
        let mut failed = None;
        for (i, p) in processes.iter_mut().enumerate() {
            if done[i] {
                continue;
            }
            if let Some(status) = p.child.try_wait()? {
                done[i] = true;
                if !status.success() && failed.is_none() {
                    failed = Some(Outcome::exited(i, status));
                }
            } else if failed.is_none() && options.hosts.is_none() {
                failed = stalls.check(i, p.child.id());
            }
        }
        if let Some(outcome) = failed {
            break outcome;
        }
        if done.iter().all(|d| *d) {
            break Outcome::Success;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    for p in &mut processes {
        p.stop();
    }
    for p in &mut processes {
        for handle in p.output.drain(..) {
            let _ = handle.join();
        }
    }
    drop(dir);
    Ok((outcome, processes))
}

/// Runs the job, relaunching it after failures as allowed. Returns the exit code.
pub fn launch(options: &LaunchOptions) -> Result<i32> {
    if options.program.is_empty() {
        bail!("no program to launch: give it after `--`, e.g. `weir launch -n 2 -- ./my_job`");
    }
    if options.processes == 0 || options.threads == 0 {
        bail!("-n and -w must be at least 1");
    }
    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let interrupted = Arc::clone(&interrupted);
        // Only the first handler of a process can be installed; later launches share it.
        let _ = ctrlc::set_handler(move || interrupted.store(true, Ordering::SeqCst));
    }
    let attempts = options.restarts.saturating_add(1);
    let mut backoff = options.backoff;
    for attempt in 1..=attempts {
        let (outcome, processes) = run_once(options, &interrupted)?;
        match outcome {
            Outcome::Success => return Ok(0),
            Outcome::Interrupted => {
                stderr_line!(
                    "weir launch: interrupted; stopped all {} process(es)",
                    processes.len()
                );
                return Ok(130);
            }
            Outcome::Failed { index, how, code } => {
                stderr_line!(
                    "weir launch: process p{index} {how}; stopped the others. Its last output:"
                );
                for line in processes[index].last_lines.lines() {
                    stderr_line!("weir launch:   [p{index}] {line}");
                }
                if attempt < attempts {
                    stderr_line!(
                        "weir launch: relaunching the job in {backoff:?} (restart {attempt} of {})",
                        options.restarts
                    );
                    std::thread::sleep(backoff);
                    backoff *= 2;
                    continue;
                }
                return Ok(code);
            }
        }
    }
    unreachable!("the last attempt returns")
}
