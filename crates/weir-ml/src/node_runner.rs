//! Node runners and the host that runs them: register with the AM, wait for the spec, run
//! the runner with heartbeats going, report how it ended, and follow the AM's restarts.

use std::net::{TcpListener, TcpStream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use weir_core::{BridgeOutput, BridgeTask};

use crate::app_master::advertised_host;
use crate::cluster_config::{ClusterConfig, Liveness};
use crate::protocol::{
    read_frame, write_frame, AmAddress, AmMessage, ClusterSpec, NodeId, NodeMessage,
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

fn connect(address: &str, deadline: Instant) -> Result<TcpStream, String> {
    loop {
        match TcpStream::connect(address) {
            Ok(s) => return Ok(s),
            Err(e) if Instant::now() >= deadline => {
                return Err(format!(
                    "registration timeout: cannot reach the AM at {address}: {e}"
                ))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
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

fn run_attempts<I: 'static, O: 'static>(
    node: &NodeId,
    config: &ClusterConfig,
    am: &AmAddress,
    runner: &dyn NodeRunner<I, O>,
    input: &mpsc::Receiver<I>,
    output: &BridgeOutput<O>,
) -> Result<(), String> {
    let mut attempt = 0u32;
    loop {
        let listener =
            TcpListener::bind("0.0.0.0:0").map_err(|e| format!("cannot bind a port: {e}"))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let address = format!("{}:{port}", advertised_host());
        let registered = address.clone();
        let stream = connect(&am.0, Instant::now() + config.registration_timeout)?;
        let writer = Arc::new(Mutex::new(stream.try_clone().map_err(|e| e.to_string())?));
        let send =
            |m: &NodeMessage| write_frame(&*writer.lock().unwrap(), m).map_err(|e| e.to_string());
        send(&NodeMessage::Register {
            node: node.clone(),
            attempt,
            address,
        })?;
        stream
            .set_read_timeout(Some(config.registration_timeout))
            .map_err(|e| e.to_string())?;
        let spec = match read_frame::<AmMessage>(&stream) {
            Ok(AmMessage::Spec(spec)) => spec,
            Ok(AmMessage::Restart {
                attempt: next,
                backoff_ms,
            }) => {
                attempt = next;
                std::thread::sleep(Duration::from_millis(backoff_ms));
                continue;
            }
            Ok(AmMessage::Stop) => return Ok(()),
            Ok(AmMessage::Rejected { reason }) => {
                return Err(format!("the AM rejected it: {reason}"))
            }
            Err(e) => {
                return Err(format!(
                    "registration timeout: no cluster spec from the AM at {} within {:?} ({e})",
                    am.0, config.registration_timeout
                ))
            }
        };
        stream.set_read_timeout(None).map_err(|e| e.to_string())?;
        // AM messages while the runner runs: a restart or stop raises the stop signal.
        let stop = StopSignal::default();
        let (am_tx, am_rx) = mpsc::channel();
        {
            let (stop, stream) = (stop.clone(), stream.try_clone().map_err(|e| e.to_string())?);
            std::thread::spawn(move || {
                while let Ok(message) = read_frame::<AmMessage>(&stream) {
                    if matches!(message, AmMessage::Restart { .. } | AmMessage::Stop) {
                        stop.stop();
                    }
                    if am_tx.send(message).is_err() {
                        return;
                    }
                }
            });
        }
        let beating = Arc::new(AtomicBool::new(true));
        let signs_of_life = Arc::new(AtomicU64::new(0));
        {
            let (beating, writer, node) = (Arc::clone(&beating), Arc::clone(&writer), node.clone());
            let signs = Arc::clone(&signs_of_life);
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
                    if write_frame(&*writer.lock().unwrap(), &beat).is_err() {
                        return;
                    }
                    std::thread::sleep(interval);
                }
            });
        }
        let mut ctx = NodeContext {
            node: node.clone(),
            attempt,
            spec,
            address: registered,
            listener: Some(listener),
            input,
            stop: stop.clone(),
            output,
            signs_of_life,
            stop_cluster: false,
        };
        let result = catch_unwind(AssertUnwindSafe(|| runner.run(&mut ctx)))
            .unwrap_or_else(|p| Err(format!("runner panicked: {}", panic_message(p))));
        beating.store(false, Ordering::SeqCst);
        if !stop.is_stopped() {
            let report = match (&result, ctx.stop_cluster) {
                (Ok(()), true) => NodeMessage::StopCluster {
                    node: node.clone(),
                    attempt,
                },
                (Ok(()), false) => NodeMessage::Finished {
                    node: node.clone(),
                    attempt,
                },
                (Err(cause), _) => NodeMessage::Failed {
                    node: node.clone(),
                    attempt,
                    cause: cause.clone(),
                },
            };
            send(&report)?;
        }
        // Wait for the AM's verdict.
        loop {
            match am_rx.recv() {
                Ok(AmMessage::Restart {
                    attempt: next,
                    backoff_ms,
                }) => {
                    attempt = next;
                    std::thread::sleep(Duration::from_millis(backoff_ms));
                    break;
                }
                Ok(AmMessage::Stop) => return Ok(()),
                Ok(AmMessage::Rejected { reason }) => {
                    eprintln!("weir-node {node}: the AM rejected a message: {reason}")
                }
                Ok(AmMessage::Spec(_)) => {}
                Err(_) => {
                    return match result {
                        Ok(()) => Ok(()),
                        Err(cause) => Err(format!("failed and the AM is gone: {cause}")),
                    }
                }
            }
        }
    }
}
