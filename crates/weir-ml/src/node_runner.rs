//! Node runners and the host that runs them: register with the AM, wait for the spec, run
//! the runner with heartbeats going, report how it ended, and follow the AM's restarts.

use std::net::{TcpListener, TcpStream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use weir_core::{BridgeOutput, BridgeTask};

use crate::app_master::bind_advertised;
use crate::cluster_config::{ClusterConfig, Liveness};
use crate::protocol::{AmAddress, AmMessage, ClusterSpec, NodeId, NodeMessage};
use crate::wire::{
    FrameWriter, JobSecret, SecureChannel, WireError, CONTROL_FRAME_LIMIT, DATA_FRAME_LIMIT,
};

/// Set when the AM stops the node (cluster finished, or a restart). Runners that loop should
/// check it and return.
#[derive(Clone, Debug, Default)]
pub struct StopSignal(Arc<AtomicBool>);

impl StopSignal {
    /// Whether the node has been asked to stop.
    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    fn stop(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// What a runner gets: who it is, the cluster, its data and its controls.
pub struct NodeContext<'a, I, O> {
    /// This node.
    pub node: NodeId,
    /// The attempt (0 for the first run).
    pub attempt: u32,
    /// Every node's address and the cluster's properties.
    pub spec: ClusterSpec,
    /// The `host:port` this node registered with (its entry in the spec).
    pub address: String,
    /// Input records (stream roles); disconnected when the input ends.
    pub input: &'a mpsc::Receiver<I>,
    /// Set when the AM stops the node.
    pub stop: StopSignal,
    listener: Option<TcpListener>,
    pub(crate) output: &'a BridgeOutput<O>,
    pub(crate) signs_of_life: Arc<AtomicU64>,
    stop_cluster: bool,
    secret: JobSecret,
}

impl<I, O> NodeContext<'_, I, O> {
    /// The bound, listening socket of [`NodeContext::address`], for the node's own service.
    ///
    /// # Panics
    /// After [`NodeContext::release_port`].
    pub fn listener(&self) -> &TcpListener {
        self.listener
            .as_ref()
            .expect("the node's port was released with release_port")
    }

    /// A sign of life. With [`Liveness::Runner`] heartbeats go out only while the runner
    /// gives these (more often than the heartbeat timeout); otherwise it is free to call.
    pub fn alive(&self) {
        self.signs_of_life.fetch_add(1, Ordering::Relaxed);
    }

    /// Closes the node's socket so that another program (a process node) can bind
    /// [`NodeContext::address`] itself.
    pub fn release_port(&mut self) {
        self.listener = None;
    }

    /// Sends a record downstream into the dataflow.
    pub fn emit(&self, record: O) -> bool {
        self.output.send(record)
    }

    /// A cluster property.
    pub fn property(&self, key: &str) -> Option<&str> {
        self.spec.properties.get(key).map(String::as_str)
    }

    /// Connects to another node of the job (e.g. a parameter server at an address of the
    /// spec) over an authenticated channel (see [`crate::wire`]); frames from it may be up
    /// to 64 MiB.
    pub fn connect_peer(&self, address: &str) -> Result<SecureChannel, WireError> {
        SecureChannel::connect(address, &self.secret, DATA_FRAME_LIMIT)
    }

    /// Completes the handshake on a connection accepted on [`NodeContext::listener`]: the
    /// peer must hold the job secret. Call it on the connection's own thread (it waits up to
    /// the handshake timeout).
    pub fn accept_peer(&self, stream: TcpStream) -> Result<SecureChannel, WireError> {
        SecureChannel::accept(stream, &self.secret, DATA_FRAME_LIMIT)
    }

    /// The job secret, for a runner that authenticates connections of its own kind.
    pub fn job_secret(&self) -> &JobSecret {
        &self.secret
    }

    /// Ends the whole cluster when this runner returns (`stop_node`).
    pub fn stop_cluster(&mut self) {
        self.stop_cluster = true;
    }
}

/// A node's work. Closures `Fn(&mut NodeContext<I, O>) -> Result<(), String>` are runners.
pub trait NodeRunner<I, O>: Send + Sync + 'static {
    /// Runs the node; an `Err` (or a panic) fails it.
    fn run(&self, ctx: &mut NodeContext<'_, I, O>) -> Result<(), String>;
}

impl<I, O, F> NodeRunner<I, O> for F
where
    F: Fn(&mut NodeContext<'_, I, O>) -> Result<(), String> + Send + Sync + 'static,
{
    fn run(&self, ctx: &mut NodeContext<'_, I, O>) -> Result<(), String> {
        self(ctx)
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into())
}

/// Connects to the AM and completes the handshake, retrying until `deadline` while nothing
/// listens yet. A failed handshake (another job's AM, a wrong secret) is not retried.
fn connect(address: &str, secret: &JobSecret, deadline: Instant) -> Result<SecureChannel, String> {
    loop {
        match SecureChannel::connect(address, secret, CONTROL_FRAME_LIMIT) {
            Ok(channel) => return Ok(channel),
            Err(e @ WireError::Handshake { .. }) => {
                return Err(format!("the AM at {address} refused this node: {e}"))
            }
            Err(e) if Instant::now() >= deadline => {
                return Err(format!(
                    "registration timeout: cannot reach the AM at {address}: {e}"
                ))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// The job secret a node uses: the one the AM sent along, else the one this process knows.
fn node_secret(config: &ClusterConfig, am: &AmAddress) -> Result<JobSecret, String> {
    if let Some(secret) = &am.secret {
        return Ok(secret.clone());
    }
    config.known_secret().map_err(|e| e.to_string())?.ok_or_else(|| {
        "the AM expects a job secret from WEIR_JOB_SECRET or ClusterConfig::secret, and this process has none".to_string()
    })
}

/// Runs node `node` of the cluster until the AM stops it or the cluster fails; the bridge
/// task's output is finished or failed accordingly.
pub(crate) fn host_node<I: Send + 'static, O: Send + 'static>(
    node: NodeId,
    config: ClusterConfig,
    am: AmAddress,
    runner: Arc<dyn NodeRunner<I, O>>,
    task: BridgeTask<I, O>,
) {
    let BridgeTask { input, output, .. } = task;
    match run_attempts(&node, &config, &am, runner.as_ref(), &input, &output) {
        Ok(()) => output.finish(),
        Err(e) => output.fail(format!("node {node}: {e}")),
    }
}

/// What a registration ended with.
enum Registration {
    /// The spec: run.
    Spec(ClusterSpec),
    /// Register again for this attempt.
    Restart(u32),
    /// The cluster is over.
    Stop,
}

/// One attempt's connection to the AM: the sending half shared with the heartbeat thread.
struct AmLink {
    writer: Arc<Mutex<FrameWriter>>,
    reader: crate::wire::FrameReader,
}

impl AmLink {
    fn send(&self, message: &NodeMessage) -> Result<(), String> {
        self.writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(message)
            .map_err(|e| e.to_string())
    }

    /// Registers `node` for `attempt` with `address` and waits for the AM's answer.
    fn register(
        &mut self,
        node: &NodeId,
        attempt: u32,
        address: String,
        config: &ClusterConfig,
        am: &AmAddress,
    ) -> Result<Registration, String> {
        self.send(&NodeMessage::Register {
            node: node.clone(),
            attempt,
            address,
        })?;
        self.reader
            .set_timeout(Some(config.registration_timeout))
            .map_err(|e| e.to_string())?;
        let answer = match self.reader.recv::<AmMessage>() {
            Ok(AmMessage::Spec(spec)) => Registration::Spec(spec),
            Ok(AmMessage::Restart {
                attempt: next,
                backoff_ms,
            }) => {
                std::thread::sleep(Duration::from_millis(backoff_ms));
                Registration::Restart(next)
            }
            Ok(AmMessage::Stop) => Registration::Stop,
            Ok(AmMessage::Rejected { reason }) => {
                return Err(format!("the AM rejected it: {reason}"))
            }
            Err(e) => {
                return Err(format!(
                    "registration timeout: no cluster spec from the AM at {} within {:?} ({e})",
                    am.address, config.registration_timeout
                ))
            }
        };
        self.reader.set_timeout(None).map_err(|e| e.to_string())?;
        Ok(answer)
    }
}

/// Forwards the AM's messages while the runner runs; a restart or stop raises `stop`.
fn listen_to_am(
    mut reader: crate::wire::FrameReader,
    stop: StopSignal,
    node: NodeId,
) -> mpsc::Receiver<AmMessage> {
    let (am_tx, am_rx) = mpsc::channel();
    std::thread::spawn(move || loop {
        match reader.recv::<AmMessage>() {
            Ok(message) => {
                if matches!(message, AmMessage::Restart { .. } | AmMessage::Stop) {
                    stop.stop();
                }
                if am_tx.send(message).is_err() {
                    return;
                }
            }
            Err(WireError::Closed { .. }) => return,
            Err(e) => {
                tracing::warn!("node {node}: lost the AM: {e}");
                return;
            }
        }
    });
    am_rx
}

/// Sends heartbeats while `beating` is set (with [`Liveness::Runner`], only after the
/// runner's signs of life).
fn beat(
    writer: Arc<Mutex<FrameWriter>>,
    node: NodeId,
    attempt: u32,
    config: &ClusterConfig,
    beating: Arc<AtomicBool>,
    signs: Arc<AtomicU64>,
) {
    let (interval, liveness) = (config.heartbeat_interval, config.liveness);
    std::thread::spawn(move || {
        let mut last_sign = 0;
        while beating.load(Ordering::SeqCst) {
            if liveness == Liveness::Runner {
                let sign = signs.load(Ordering::Relaxed);
                if sign == last_sign {
                    // No sign of life from the runner since the last beat.
                    std::thread::sleep(interval);
                    continue;
                }
                last_sign = sign;
            }
            let beat = NodeMessage::Heartbeat {
                node: node.clone(),
                attempt,
            };
            let sent = writer.lock().unwrap_or_else(|e| e.into_inner()).send(&beat);
            if sent.is_err() {
                return;
            }
            std::thread::sleep(interval);
        }
    });
}

/// How the runner ended, as the AM is told.
fn report(
    node: &NodeId,
    attempt: u32,
    result: &Result<(), String>,
    stop_cluster: bool,
) -> NodeMessage {
    let node = node.clone();
    match (result, stop_cluster) {
        (Ok(()), true) => NodeMessage::StopCluster { node, attempt },
        (Ok(()), false) => NodeMessage::Finished { node, attempt },
        (Err(cause), _) => NodeMessage::Failed {
            node,
            attempt,
            cause: cause.clone(),
        },
    }
}

/// What the AM decided after the runner ended.
enum Verdict {
    Restart(u32),
    Stop,
}

/// Waits for the AM's verdict on this attempt.
fn await_verdict(
    am_rx: &mpsc::Receiver<AmMessage>,
    node: &NodeId,
    result: Result<(), String>,
) -> Result<Verdict, String> {
    loop {
        match am_rx.recv() {
            Ok(AmMessage::Restart {
                attempt: next,
                backoff_ms,
            }) => {
                std::thread::sleep(Duration::from_millis(backoff_ms));
                return Ok(Verdict::Restart(next));
            }
            Ok(AmMessage::Stop) => return Ok(Verdict::Stop),
            Ok(AmMessage::Rejected { reason }) => {
                tracing::warn!("node {node}: the AM rejected a message: {reason}")
            }
            Ok(AmMessage::Spec(_)) => {}
            Err(_) => {
                return match result {
                    Ok(()) => Ok(Verdict::Stop),
                    Err(cause) => Err(format!("failed and the AM is gone: {cause}")),
                }
            }
        }
    }
}

fn run_attempts<I: 'static, O: 'static>(
    node: &NodeId,
    config: &ClusterConfig,
    am: &AmAddress,
    runner: &dyn NodeRunner<I, O>,
    input: &mpsc::Receiver<I>,
    output: &BridgeOutput<O>,
) -> Result<(), String> {
    let secret = node_secret(config, am)?;
    let mut attempt = 0u32;
    loop {
        let (listener, address) =
            bind_advertised().map_err(|e| format!("cannot bind a port: {e}"))?;
        let channel = connect(
            &am.address,
            &secret,
            Instant::now() + config.registration_timeout,
        )?;
        let (reader, writer) = channel.split();
        let mut link = AmLink {
            writer: Arc::new(Mutex::new(writer)),
            reader,
        };
        let spec = match link.register(node, attempt, address.clone(), config, am)? {
            Registration::Spec(spec) => spec,
            Registration::Restart(next) => {
                attempt = next;
                continue;
            }
            Registration::Stop => return Ok(()),
        };
        let AmLink { writer, reader } = link;
        let stop = StopSignal::default();
        let am_rx = listen_to_am(reader, stop.clone(), node.clone());
        let beating = Arc::new(AtomicBool::new(true));
        let signs_of_life = Arc::new(AtomicU64::new(0));
        beat(
            Arc::clone(&writer),
            node.clone(),
            attempt,
            config,
            Arc::clone(&beating),
            Arc::clone(&signs_of_life),
        );
        let mut ctx = NodeContext {
            node: node.clone(),
            attempt,
            spec,
            address,
            listener: Some(listener),
            input,
            stop: stop.clone(),
            output,
            signs_of_life,
            stop_cluster: false,
            secret: secret.clone(),
        };
        let result = catch_unwind(AssertUnwindSafe(|| runner.run(&mut ctx)))
            .unwrap_or_else(|p| Err(format!("runner panicked: {}", panic_message(p))));
        beating.store(false, Ordering::SeqCst);
        if !stop.is_stopped() {
            let message = report(node, attempt, &result, ctx.stop_cluster);
            writer
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .send(&message)
                .map_err(|e| e.to_string())?;
        }
        let verdict = await_verdict(&am_rx, node, result);
        // This attempt's connection is done: its reader thread (and the AM's) end with it.
        writer.lock().unwrap_or_else(|e| e.into_inner()).shutdown();
        match verdict? {
            Verdict::Restart(next) => attempt = next,
            Verdict::Stop => return Ok(()),
        }
    }
}
