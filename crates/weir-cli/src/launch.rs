//! `weir launch`: runs a Weir (timely) program as a cluster of processes, locally on
//! 127.0.0.1 or on hosts through a remote-command template, with prefixed output, fail-stop
//! of the whole job, restarts and Ctrl-C handling.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{bail, Context, Result};

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
    /// The program and its arguments.
    pub program: Vec<String>,
}

/// One running process of the job.
struct Process {
    child: Child,
    output: Vec<JoinHandle<()>>,
    last_lines: Arc<Mutex<VecDeque<String>>>,
}

/// Copies a stream's lines with a prefix, keeping the last ones.
fn forward(
    stream: impl Read + Send + 'static,
    prefix: String,
    to_stderr: bool,
    last: Arc<Mutex<VecDeque<String>>>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { return };
            if to_stderr {
                eprintln!("{prefix} {line}");
            } else {
                println!("{prefix} {line}");
            }
            let mut last = last.lock().unwrap();
            if last.len() == LAST_LINES {
                last.pop_front();
            }
            last.push_back(line);
        }
    })
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

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The addresses of the job's processes, and whether they are remote.
fn addresses(options: &LaunchOptions) -> Result<(Vec<String>, bool)> {
    match &options.hosts {
        None => {
            let ports = (0..options.processes)
                .map(|_| free_port())
                .collect::<Result<Vec<_>>>()?;
            Ok((
                ports.iter().map(|p| format!("127.0.0.1:{p}")).collect(),
                false,
            ))
        }
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
            Ok((hosts[..options.processes].to_vec(), true))
        }
    }
}

/// Starts process `index` of the job.
fn spawn(
    options: &LaunchOptions,
    index: usize,
    addresses: &[String],
    remote: bool,
    hostfile: &std::path::Path,
) -> Result<Process> {
    let mut argv: Vec<String> = Vec::new();
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
    ]);
    if remote {
        // A local hostfile would not exist on the other machine: pass the list inline.
        argv.extend(["--addresses".into(), addresses.join(",")]);
    } else {
        argv.extend(["-h".into(), hostfile.display().to_string()]);
    }
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot start process p{index}: `{}`", argv.join(" ")))?;
    let last_lines = Arc::new(Mutex::new(VecDeque::new()));
    let prefix = format!("[p{index}]");
    let mut output = Vec::new();
    if let Some(out) = child.stdout.take() {
        output.push(forward(out, prefix.clone(), false, Arc::clone(&last_lines)));
    }
    if let Some(err) = child.stderr.take() {
        output.push(forward(err, prefix, true, Arc::clone(&last_lines)));
    }
    Ok(Process {
        child,
        output,
        last_lines,
    })
}

/// How one attempt ended.
enum Outcome {
    Success,
    Failed { index: usize, status: ExitStatus },
    Interrupted,
}

/// Runs every process until all succeed, one fails (the others are then killed), or
/// Ctrl-C.
fn run_once(options: &LaunchOptions, interrupted: &AtomicBool) -> Result<(Outcome, Vec<Process>)> {
    let (addresses, remote) = addresses(options)?;
    let dir = std::env::temp_dir().join(format!("weir-launch-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let hostfile = dir.join("hosts.txt");
    std::fs::write(&hostfile, addresses.join("\n") + "\n")?;
    let mut processes = Vec::new();
    for index in 0..options.processes {
        match spawn(options, index, &addresses, remote, &hostfile) {
            Ok(p) => processes.push(p),
            Err(e) => {
                processes.iter_mut().for_each(|p| kill_group(&mut p.child));
                return Err(e);
            }
        }
    }
    let mut done = vec![false; processes.len()];
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
                    failed = Some((i, status));
                }
            }
        }
        if let Some((index, status)) = failed {
            break Outcome::Failed { index, status };
        }
        if done.iter().all(|d| *d) {
            break Outcome::Success;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    for p in &mut processes {
        kill_group(&mut p.child);
    }
    for p in &mut processes {
        for handle in p.output.drain(..) {
            let _ = handle.join();
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
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
    let attempts = options.restarts + 1;
    let mut backoff = options.backoff;
    for attempt in 1..=attempts {
        let (outcome, processes) = run_once(options, &interrupted)?;
        match outcome {
            Outcome::Success => return Ok(0),
            Outcome::Interrupted => {
                eprintln!(
                    "weir launch: interrupted; stopped all {} process(es)",
                    processes.len()
                );
                return Ok(130);
            }
            Outcome::Failed { index, status } => {
                eprintln!(
                    "weir launch: process p{index} failed ({status}); stopped the others. Its last output:"
                );
                for line in processes[index].last_lines.lock().unwrap().iter() {
                    eprintln!("weir launch:   [p{index}] {line}");
                }
                if attempt < attempts {
                    eprintln!(
                        "weir launch: relaunching the job in {backoff:?} (restart {attempt} of {})",
                        options.restarts
                    );
                    std::thread::sleep(backoff);
                    backoff *= 2;
                    continue;
                }
                return Ok(status.code().filter(|c| *c != 0).unwrap_or(1));
            }
        }
    }
    unreachable!("the last attempt returns")
}
