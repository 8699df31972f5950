//! Nodes that run an external program (a Python trainer, say): the cluster context goes in
//! the environment (`WEIR_*`, TensorFlow's `TF_CONFIG`, PyTorch's `MASTER_ADDR` …), records
//! flow through two shared-memory rings (JSON payloads in binary frames), and the program's
//! output lines are prefixed `[role:index]`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use crate::node_runner::{NodeContext, NodeRunner};
use crate::output_forwarding::{forward_lines, Destination, LastLines};
use crate::protocol::{ClusterSpec, NodeId};
use crate::shm_ring::{ShmRing, PYTHON_HELPER};

/// Lines of the program's stderr kept for the failure message.
const STDERR_TAIL: usize = 20;

/// Runs a command as the node. Input records are sent to it as JSON through the input ring;
/// every frame it writes to the output ring is decoded (JSON) into an output record. The
/// program is killed when the AM stops or restarts the node; a non-zero exit fails the node.
/// The Python helper `weir_node.py` is put on the program's `PYTHONPATH`.
#[derive(Clone, Debug)]
pub struct ProcessRunner {
    program: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    ring_bytes: usize,
}

impl ProcessRunner {
    /// `program` with `args`.
    pub fn new<S: Into<String>>(
        program: impl Into<String>,
        args: impl IntoIterator<Item = S>,
    ) -> Self {
        ProcessRunner {
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
            env: Vec::new(),
            ring_bytes: 1 << 20,
        }
    }

    /// An extra environment variable for the program.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Data bytes of each ring (default 1 MiB); a record must fit in one.
    pub fn ring_bytes(mut self, bytes: usize) -> Self {
        self.ring_bytes = bytes.max(64);
        self
    }
}

/// TensorFlow's `TF_CONFIG` for `node`: worker 0 is promoted to `chief`, the other workers
/// move down one index, as TensorFlow's multi-worker strategies expect.
pub fn tf_config(spec: &ClusterSpec, node: &NodeId) -> Value {
    let mut cluster = BTreeMap::new();
    for (role, addresses) in &spec.nodes {
        if role == "worker" && !addresses.is_empty() {
            cluster.insert("chief".to_string(), addresses[..1].to_vec());
            if addresses.len() > 1 {
                cluster.insert("worker".to_string(), addresses[1..].to_vec());
            }
        } else {
            cluster.insert(role.clone(), addresses.clone());
        }
    }
    let task = match (node.role.as_str(), node.index) {
        ("worker", 0) => json!({"type": "chief", "index": 0}),
        ("worker", i) => json!({"type": "worker", "index": i - 1}),
        (role, i) => json!({"type": role, "index": i}),
    };
    json!({"cluster": cluster, "task": task})
}

/// The environment a process node gets.
fn node_env(
    spec: &ClusterSpec,
    node: &NodeId,
    attempt: u32,
    address: &str,
) -> Vec<(String, String)> {
    let mut env = vec![
        ("WEIR_ROLE".to_string(), node.role.clone()),
        ("WEIR_INDEX".to_string(), node.index.to_string()),
        ("WEIR_ATTEMPT".to_string(), attempt.to_string()),
        ("WEIR_NODE_ADDRESS".to_string(), address.to_string()),
        (
            "WEIR_CLUSTER_SPEC".to_string(),
            serde_json::to_string(spec).expect("a spec is JSON"),
        ),
        ("TF_CONFIG".to_string(), tf_config(spec, node).to_string()),
    ];
    // PyTorch's rendezvous: worker 0 is the master; the workers are the world.
    if let Some((host, port)) = spec.address("worker", 0).and_then(|a| a.rsplit_once(':')) {
        env.push(("MASTER_ADDR".to_string(), host.to_string()));
        env.push(("MASTER_PORT".to_string(), port.to_string()));
        let world = spec.nodes.get("worker").map_or(0, Vec::len);
        env.push(("WORLD_SIZE".to_string(), world.to_string()));
        env.push(("RANK".to_string(), node.index.to_string()));
    }
    env
}

/// A fresh private directory for the rings and the helper (mode 0700, so that other users
/// cannot read or write the records): in `/dev/shm` when there is one (memory, not disk).
/// It is removed when dropped.
fn ring_dir(node: &NodeId, attempt: u32) -> std::io::Result<tempfile::TempDir> {
    let base = Path::new("/dev/shm");
    let base = if base.is_dir() {
        base.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    use std::os::unix::fs::PermissionsExt;
    tempfile::Builder::new()
        .prefix(&format!("weir-{}-{}-{attempt}-", node.role, node.index))
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir_in(base)
}

/// The program, killed if the runner unwinds before it has exited.
struct KillOnDrop(Child);

impl std::ops::Deref for KillOnDrop {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // A no-op once the exit status has been collected.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sets its flag when dropped.
struct SetOnDrop<'a>(&'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn exited(child: &mut Child) -> Option<ExitStatus> {
    child.try_wait().ok().flatten()
}

impl<I, O> NodeRunner<I, O> for ProcessRunner
where
    I: Serialize + 'static,
    O: DeserializeOwned + Send + 'static,
{
    fn run(&self, ctx: &mut NodeContext<'_, I, O>) -> Result<(), String> {
        let dir = ring_dir(&ctx.node, ctx.attempt).map_err(|e| format!("ring directory: {e}"))?;
        self.run_in(ctx, dir.path())
    }
}

impl ProcessRunner {
    fn run_in<I: Serialize, O: DeserializeOwned + Send>(
        &self,
        ctx: &mut NodeContext<'_, I, O>,
        dir: &Path,
    ) -> Result<(), String> {
        let io = |what: &str, e: std::io::Error| format!("{what}: {e}");
        std::fs::write(dir.join("weir_node.py"), PYTHON_HELPER)
            .map_err(|e| io("python helper", e))?;
        let (input_path, output_path) = (dir.join("input.ring"), dir.join("output.ring"));
        let mut input_ring =
            ShmRing::create(&input_path, self.ring_bytes).map_err(|e| io("input ring", e))?;
        let output_ring =
            ShmRing::create(&output_path, self.ring_bytes).map_err(|e| io("output ring", e))?;
        // The program binds the registered address itself.
        ctx.release_port();
        let python_path = match std::env::var("PYTHONPATH") {
            Ok(p) if !p.is_empty() => format!("{}:{p}", dir.display()),
            _ => dir.display().to_string(),
        };
        let child = Command::new(&self.program)
            .args(&self.args)
            .envs(node_env(&ctx.spec, &ctx.node, ctx.attempt, &ctx.address))
            .env("WEIR_INPUT_RING", &input_path)
            .env("WEIR_OUTPUT_RING", &output_path)
            .env("PYTHONPATH", python_path)
            .envs(self.env.iter().cloned())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start `{}`: {e}", self.program))?;
        let mut child = KillOnDrop(child);
        let prefix = format!("[{}]", ctx.node);
        let tail = LastLines::new(STDERR_TAIL);
        if let Some(out) = child.stdout.take() {
            forward_lines(out, prefix.clone(), Destination::Stdout, None);
        }
        if let Some(err) = child.stderr.take() {
            forward_lines(err, prefix, Destination::Stderr, Some(tail.clone()));
        }
        let child_done = AtomicBool::new(false);
        let (input, output, stop) = (ctx.input, ctx.output, ctx.stop.clone());
        let signs_of_life = Arc::clone(&ctx.signs_of_life);
        // The program's signs of life (bumped by weir_node in the output ring) become the
        // node's.
        let mut last_sign = 0;
        let mut pass_on_signs = |ring: &ShmRing| {
            let sign = ring.signs_of_life();
            if sign != last_sign {
                last_sign = sign;
                signs_of_life.fetch_add(1, Ordering::Relaxed);
            }
        };
        let mut stopped = false;
        let mut feed_error = None;
        let (status, decoded) = std::thread::scope(|scope| {
            // However this scope ends (even by a panic), the reader thread must stop waiting.
            let _release_reader = SetOnDrop(&child_done);
            let reader = scope.spawn(|| -> Result<(), String> {
                let mut abort = || child_done.load(Ordering::SeqCst);
                while let Some(frame) = output_ring.read(&mut abort).map_err(|e| e.to_string())? {
                    let record = serde_json::from_slice::<O>(&frame).map_err(|e| {
                        format!(
                            "output record `{}` is not what the job expects: {e}",
                            String::from_utf8_lossy(&frame)
                        )
                    })?;
                    output.send(record);
                }
                Ok(())
            });
            // Feed the input until it ends, the program exits, or the AM stops the node.
            loop {
                pass_on_signs(&output_ring);
                if stop.is_stopped() || exited(&mut child).is_some() {
                    break;
                }
                match input.recv_timeout(Duration::from_millis(20)) {
                    Ok(record) => {
                        let bytes = serde_json::to_vec(&record).map_err(|e| e.to_string());
                        let written = bytes.and_then(|b| {
                            input_ring
                                .write(&b, &mut || {
                                    stop.is_stopped() || exited(&mut child).is_some()
                                })
                                .map_err(|e| e.to_string())
                        });
                        if let Err(e) = written {
                            if !stop.is_stopped() && exited(&mut child).is_none() {
                                feed_error = Some(format!("cannot pass an input record on: {e}"));
                                let _ = child.kill();
                            }
                            break;
                        }
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
            }
            input_ring.close();
            let status = loop {
                pass_on_signs(&output_ring);
                if stop.is_stopped() && !stopped {
                    stopped = true;
                    let _ = child.kill();
                }
                if let Some(status) = exited(&mut child) {
                    break status;
                }
                std::thread::sleep(Duration::from_millis(5));
            };
            child_done.store(true, Ordering::SeqCst);
            let decoded = reader
                .join()
                .unwrap_or_else(|_| Err("the output reader panicked".into()));
            (status, decoded)
        });
        if stopped {
            return Ok(());
        }
        if let Some(error) = feed_error {
            return Err(error);
        }
        if !status.success() {
            let tail = tail.lines();
            return Err(format!(
                "`{}` exited with {status}; last stderr lines: {}",
                self.program,
                if tail.is_empty() {
                    "(none)".to_string()
                } else {
                    tail.join(" | ")
                }
            ));
        }
        decoded
    }
}
