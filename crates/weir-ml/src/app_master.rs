//! The Application Manager: a TCP control server and the state machine that tracks node
//! registrations, heartbeats, finishes and failures, publishes the cluster spec and runs
//! failover. Every decision is logged on stderr with node, attempt and reason.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{TcpListener, TcpStream};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use crate::cluster_config::{ClusterConfig, FailoverStrategy};
use crate::connection_slots::{ConnectionSlots, Slot};
use crate::protocol::{AmAddress, AmMessage, ClusterSpec, NodeId, NodeMessage};
use crate::state_machine::{AmEvent, AmState, ClusterView};
use crate::wire::{
    FrameReader, FrameWriter, JobSecret, SecureChannel, WireError, CONTROL_FRAME_LIMIT,
};

/// The host name nodes and the AM advertise: `WEIR_ADVERTISE_HOST`, else 127.0.0.1.
pub(crate) fn advertised_host() -> String {
    std::env::var("WEIR_ADVERTISE_HOST").unwrap_or_else(|_| "127.0.0.1".into())
}

/// Binds a listening port on the host this process advertises (`WEIR_BIND_HOST` overrides
/// it, e.g. `0.0.0.0` behind NAT), never on every interface by default.
pub(crate) fn bind_advertised() -> std::io::Result<(TcpListener, String)> {
    let host = advertised_host();
    let bind = std::env::var("WEIR_BIND_HOST").unwrap_or_else(|_| host.clone());
    let listener = TcpListener::bind((bind.as_str(), 0))?;
    let address = format!("{host}:{}", listener.local_addr()?.port());
    Ok((listener, address))
}

fn log(message: String) {
    tracing::info!("{message}");
}

/// Where the AM answers a node: the sending half of its connection.
type Reply = Arc<Mutex<FrameWriter>>;

enum Event {
    Message(NodeMessage, Reply),
}

/// A running AM. It ends by itself when the cluster is finished or failed.
pub struct AppMaster {
    address: AmAddress,
    outcome: mpsc::Receiver<Result<(), String>>,
    result: Option<Result<(), String>>,
}

impl AppMaster {
    /// Binds a control port (any free one, on the advertised host) and starts the AM's
    /// threads. Connections must prove the job secret: the configured one, else
    /// `WEIR_JOB_SECRET`, else a fresh one that [`AppMaster::address`] carries to the nodes.
    pub fn start(config: ClusterConfig) -> std::io::Result<AppMaster> {
        let known = config.known_secret().map_err(std::io::Error::other)?;
        let secret = match &known {
            Some(s) => s.clone(),
            None => JobSecret::generate().map_err(std::io::Error::other)?,
        };
        let (listener, address) = bind_advertised()?;
        let (events, inbox) = mpsc::channel();
        {
            let secret = secret.clone();
            std::thread::Builder::new()
                .name("weir-am-accept".into())
                .spawn(move || accept(listener, secret, events))?;
        }
        let (done, outcome) = mpsc::channel();
        let log_address = address.clone();
        std::thread::Builder::new()
            .name("weir-am".into())
            .spawn(move || {
                log(format!(
                    "listening on {log_address}; cluster {:?}",
                    config.roles
                ));
                let result = Master::new(config).run(inbox);
                let _ = done.send(result);
            })?;
        Ok(AppMaster {
            // A secret the nodes do not know already travels with the address.
            address: AmAddress::new(address, known.is_none().then_some(secret)),
            outcome,
            result: None,
        })
    }

    /// `host:port` of the control server.
    pub fn address(&self) -> &str {
        &self.address.address
    }

    /// What the nodes need to reach the AM: its address and, unless every process already
    /// knows it, the job secret.
    pub fn am_address(&self) -> &AmAddress {
        &self.address
    }

    /// `None` while the cluster runs; then `Ok` (finished) or the failure.
    pub fn outcome(&mut self) -> Option<Result<(), String>> {
        if self.result.is_none() {
            self.result = match self.outcome.try_recv() {
                Ok(r) => Some(r),
                Err(mpsc::TryRecvError::Empty) => None,
                Err(mpsc::TryRecvError::Disconnected) => Some(Err("the AM thread died".into())),
            };
        }
        self.result.clone()
    }
}

/// Control connections in their handshake at once: more are closed. A node's connection
/// that proved the job secret no longer counts.
const MAX_CONTROL_HANDSHAKES: usize = 256;

fn accept(listener: TcpListener, secret: JobSecret, events: mpsc::Sender<Event>) {
    let slots = ConnectionSlots::new(MAX_CONTROL_HANDSHAKES);
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(stream) => stream,
            // Out of file descriptors, say: do not spin.
            Err(_) => {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
        };
        let (events, secret) = (events.clone(), secret.clone());
        slots.serve(stream, "weir-am-connection", move |stream, handshake| {
            serve_connection(stream, handshake, &secret, &events)
        });
    }
}

/// One node's control connection: the handshake, then its messages. A connection speaks
/// for one node, the one its first message (a registration) names; a connection that breaks
/// that rule, or sends a frame that fails its check, is closed.
fn serve_connection(
    stream: TcpStream,
    handshake: Slot,
    secret: &JobSecret,
    events: &mpsc::Sender<Event>,
) {
    let channel = match SecureChannel::accept(stream, secret, CONTROL_FRAME_LIMIT) {
        Ok(c) => c,
        Err(e) => return log(format!("refused a connection: {e}")),
    };
    drop(handshake);
    let peer = channel.peer().to_string();
    let (mut reader, writer) = channel.split();
    let reply: Reply = Arc::new(Mutex::new(writer));
    if let Err(reason) = relay(&mut reader, &reply, events) {
        log(format!("dropped the connection of {peer}: {reason}"));
    }
    reply.lock().unwrap_or_else(|e| e.into_inner()).shutdown();
}

/// Passes a connection's messages to the state machine until it closes; `Err` says why it
/// must be dropped.
fn relay(
    reader: &mut FrameReader,
    reply: &Reply,
    events: &mpsc::Sender<Event>,
) -> Result<(), String> {
    let mut speaks_for: Option<NodeId> = None;
    loop {
        let message = match reader.recv::<NodeMessage>() {
            Ok(m) => m,
            Err(WireError::Closed { .. }) => return Ok(()),
            Err(e) => return Err(e.to_string()),
        };
        match &speaks_for {
            None if !matches!(message, NodeMessage::Register { .. }) => {
                return Err("its first message is not a registration".into())
            }
            None => speaks_for = Some(message.node().clone()),
            Some(node) if node != message.node() => {
                return Err(format!("{node} sent a message as {}", message.node()))
            }
            Some(_) => {}
        }
        // A refused registration shut the connection down; what it sends afterwards (data
        // can still arrive on Linux) must not speak for the node it named.
        if reply.lock().unwrap_or_else(|e| e.into_inner()).is_shut() {
            return Err("the connection was refused".into());
        }
        if events
            .send(Event::Message(message, Arc::clone(reply)))
            .is_err()
        {
            return Ok(());
        }
    }
}

struct Master {
    config: ClusterConfig,
    state: AmState,
    /// Cluster version: the attempt every node of a restart-all cluster is on.
    attempt: u32,
    /// Per node, the attempt it is on (restart-node moves nodes one by one).
    node_attempt: HashMap<NodeId, u32>,
    /// Failures so far (restart-all: of the cluster; restart-node: of each node).
    failures: HashMap<NodeId, u32>,
    cluster_failures: u32,
    registered: BTreeMap<NodeId, (String, Reply)>,
    last_seen: HashMap<NodeId, Instant>,
    finished: BTreeSet<NodeId>,
    waiting_since: Instant,
}

impl Master {
    fn new(config: ClusterConfig) -> Self {
        Master {
            config,
            state: AmState::Init,
            attempt: 0,
            node_attempt: HashMap::new(),
            failures: HashMap::new(),
            cluster_failures: 0,
            registered: BTreeMap::new(),
            last_seen: HashMap::new(),
            finished: BTreeSet::new(),
            waiting_since: Instant::now(),
        }
    }

    fn event(&mut self, event: AmEvent) {
        let view = ClusterView {
            finished: &self.finished,
            roles: &self.config.roles,
        };
        let next = self.config.transitions.next(self.state, &event, &view);
        if next != self.state {
            log(format!(
                "attempt {}: {:?} -> {:?} on {:?}",
                self.attempt, self.state, next, event
            ));
        }
        self.state = next;
    }

    fn expected_attempt(&self, node: &NodeId) -> u32 {
        match self.config.failover.strategy {
            FailoverStrategy::RestartAll => self.attempt,
            FailoverStrategy::RestartNode => *self.node_attempt.get(node).unwrap_or(&0),
        }
    }

    fn valid(&self, node: &NodeId) -> bool {
        node.index < self.config.nodes(&node.role)
    }

    fn send(reply: &Reply, message: &AmMessage) {
        let mut writer = reply.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = writer.send(message) {
            // The node is gone or stalled; its heartbeats stop and the timeout fails it.
            log(format!("cannot send to a node: {e}"));
            writer.shutdown();
        }
    }

    /// Answers a refusal; a refused registration also ends its connection, which would
    /// otherwise go on speaking for the node it named.
    fn refuse(reply: &Reply, reason: String, registering: bool) {
        let mut writer = reply.lock().unwrap_or_else(|e| e.into_inner());
        if registering {
            // Marked shut before the node can read the refusal: its relay drops whatever the
            // connection sends once it has (it checks under the same lock).
            writer.mark_shut();
        }
        if let Err(e) = writer.send(&AmMessage::Rejected { reason }) {
            log(format!("cannot send to a node: {e}"));
        }
        if registering {
            writer.shutdown();
        }
    }

    /// Whether `reply` is the connection `node` registered on (a node speaks on its own
    /// connection only; another connection naming it is an impostor or a leftover).
    fn registered_on(&self, node: &NodeId, reply: &Reply) -> bool {
        self.registered
            .get(node)
            .is_some_and(|(_, registered)| Arc::ptr_eq(registered, reply))
    }

    fn broadcast(&self, message: &AmMessage) {
        for (_, stream) in self.registered.values() {
            Self::send(stream, message);
        }
    }

    fn spec(&self) -> ClusterSpec {
        let mut nodes: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (role, count) in &self.config.roles {
            let addresses = (0..*count)
                .map(|i| {
                    self.registered
                        .get(&NodeId::new(role, i))
                        .map(|(a, _)| a.clone())
                        .unwrap_or_default()
                })
                .collect();
            nodes.insert(role.clone(), addresses);
        }
        ClusterSpec {
            version: self.attempt,
            nodes,
            properties: self.config.properties.clone(),
        }
    }

    fn run(mut self, inbox: mpsc::Receiver<Event>) -> Result<(), String> {
        let tick = self
            .config
            .heartbeat_interval
            .min(Duration::from_millis(100));
        loop {
            match inbox.recv_timeout(tick) {
                Ok(Event::Message(message, reply)) => {
                    if let Some(outcome) = self.on_message(message, reply) {
                        return outcome;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err("the AM's control server stopped".into())
                }
            }
            if let Some(outcome) = self.check_timeouts() {
                return outcome;
            }
        }
    }

    fn on_message(&mut self, message: NodeMessage, reply: Reply) -> Option<Result<(), String>> {
        let node = message.node().clone();
        let expected = self.expected_attempt(&node);
        let registering = matches!(message, NodeMessage::Register { .. });
        if !self.valid(&node) {
            let reason = format!("no node {node} in this cluster ({:?})", self.config.roles);
            log(format!("rejected a message: {reason}"));
            Self::refuse(&reply, reason, registering);
            return None;
        }
        if message.attempt() != expected {
            let reason = format!(
                "stale message from {node}: attempt {} but the current attempt is {expected}",
                message.attempt()
            );
            log(format!("rejected: {reason}"));
            Self::refuse(&reply, reason, registering);
            return None;
        }
        if let (NodeMessage::Register { .. }, Some((address, _))) =
            (&message, self.registered.get(&node))
        {
            let reason =
                format!("{node} is already registered at {address} for attempt {expected}");
            log(format!("rejected a registration: {reason}"));
            Self::refuse(&reply, reason, true);
            return None;
        }
        if !registering && !self.registered_on(&node, &reply) {
            let reason = format!("{node} did not register on this connection");
            log(format!("rejected a message: {reason}"));
            Self::refuse(&reply, reason, true);
            return None;
        }
        self.last_seen.insert(node.clone(), Instant::now());
        match message {
            NodeMessage::Register { address, .. } => {
                log(format!(
                    "{node} registered at {address} (attempt {expected})"
                ));
                self.registered.insert(node.clone(), (address, reply));
                self.event(AmEvent::RegisterNode(node.clone()));
                if self.state == AmState::Init && self.registered.len() == self.config.total_nodes()
                {
                    let spec = self.spec();
                    log(format!(
                        "all {} nodes registered; spec {:?}",
                        spec_len(&spec),
                        spec.nodes
                    ));
                    self.broadcast(&AmMessage::Spec(spec));
                    self.event(AmEvent::CompleteCluster);
                } else if self.state == AmState::Running {
                    // A node restarted on its own (restart-node): it gets the current spec.
                    let spec = self.spec();
                    if let Some((_, stream)) = self.registered.get(&node) {
                        Self::send(stream, &AmMessage::Spec(spec));
                    }
                }
                None
            }
            NodeMessage::Heartbeat { .. } => None,
            NodeMessage::Finished { .. } => {
                log(format!("{node} finished (attempt {expected})"));
                self.finished.insert(node.clone());
                self.event(AmEvent::NodeFinished(node));
                self.check_end()
            }
            NodeMessage::StopCluster { .. } => {
                log(format!(
                    "{node} asked to stop the cluster (attempt {expected})"
                ));
                self.finished.insert(node);
                self.event(AmEvent::StopJob);
                self.check_end()
            }
            NodeMessage::Failed { cause, .. } => self.on_failure(node, cause),
        }
    }

    fn check_end(&mut self) -> Option<Result<(), String>> {
        if self.state == AmState::Finished {
            log("cluster finished; stopping every node".into());
            self.broadcast(&AmMessage::Stop);
            return Some(Ok(()));
        }
        None
    }

    fn fail_cluster(&mut self, error: String) -> Option<Result<(), String>> {
        self.state = AmState::Failed;
        log(format!("cluster failed: {error}"));
        self.broadcast(&AmMessage::Stop);
        Some(Err(error))
    }

    fn on_failure(&mut self, node: NodeId, cause: String) -> Option<Result<(), String>> {
        let attempt = self.expected_attempt(&node);
        log(format!("{node} failed on attempt {attempt}: {cause}"));
        self.event(AmEvent::NodeFailed {
            node: node.clone(),
            cause: cause.clone(),
        });
        let max = self.config.failover.max_attempts;
        let failures = match self.config.failover.strategy {
            FailoverStrategy::RestartAll => {
                self.cluster_failures += 1;
                self.cluster_failures
            }
            FailoverStrategy::RestartNode => {
                let f = self.failures.entry(node.clone()).or_default();
                *f += 1;
                *f
            }
        };
        if failures >= max {
            return self.fail_cluster(format!(
                "node {node} failed on attempt {} of {max}, the last allowed: {cause}",
                attempt + 1
            ));
        }
        let backoff_ms = self.config.failover.backoff.as_millis() as u64;
        match self.config.failover.strategy {
            FailoverStrategy::RestartAll => {
                self.attempt += 1;
                log(format!(
                    "restarting all nodes as attempt {} in {backoff_ms} ms",
                    self.attempt
                ));
                self.broadcast(&AmMessage::Restart {
                    attempt: self.attempt,
                    backoff_ms,
                });
                self.registered.clear();
                self.finished.clear();
                self.last_seen.clear();
                self.waiting_since = Instant::now() + self.config.failover.backoff;
                self.event(AmEvent::RestartCluster);
            }
            FailoverStrategy::RestartNode => {
                let next = attempt + 1;
                self.node_attempt.insert(node.clone(), next);
                log(format!(
                    "restarting {node} as attempt {next} in {backoff_ms} ms"
                ));
                if let Some((_, stream)) = self.registered.remove(&node) {
                    Self::send(
                        &stream,
                        &AmMessage::Restart {
                            attempt: next,
                            backoff_ms,
                        },
                    );
                }
                self.last_seen.remove(&node);
                // The rest of the cluster keeps running.
                self.state = AmState::Running;
            }
        }
        None
    }

    fn check_timeouts(&mut self) -> Option<Result<(), String>> {
        let now = Instant::now();
        if self.state == AmState::Init
            && now > self.waiting_since
            && now - self.waiting_since > self.config.registration_timeout
        {
            let missing: Vec<String> = self
                .config
                .roles
                .iter()
                .flat_map(|(r, n)| (0..*n).map(move |i| NodeId::new(r, i)))
                .filter(|n| !self.registered.contains_key(n))
                .map(|n| n.to_string())
                .collect();
            return self.fail_cluster(format!(
                "registration timeout after {:?}: no registration from {}",
                self.config.registration_timeout,
                missing.join(", ")
            ));
        }
        if self.state == AmState::Running {
            let timeout = self.config.heartbeat_timeout;
            let silent = self
                .registered
                .keys()
                .filter(|n| !self.finished.contains(*n))
                .find(|n| self.last_seen.get(*n).is_none_or(|t| now - *t > timeout))
                .cloned();
            if let Some(node) = silent {
                return self.on_failure(
                    node,
                    format!("heartbeat timeout: silent for more than {timeout:?}"),
                );
            }
        }
        None
    }
}

fn spec_len(spec: &ClusterSpec) -> usize {
    spec.nodes.values().map(Vec::len).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node_channel(am: &AppMaster, secret: &JobSecret) -> SecureChannel {
        SecureChannel::connect(am.address(), secret, CONTROL_FRAME_LIMIT).unwrap()
    }

    /// An AM of one worker and one ps, with a secret.
    fn worker_and_ps() -> (AppMaster, JobSecret) {
        let secret = JobSecret::generate().unwrap();
        let config = ClusterConfig::new()
            .role("worker", 1)
            .role("ps", 1)
            .secret(secret.clone());
        (AppMaster::start(config).unwrap(), secret)
    }

    /// A registration of `node` for `attempt`.
    fn register(node: NodeId, attempt: u32) -> NodeMessage {
        NodeMessage::Register {
            node,
            attempt,
            address: "127.0.0.1:9".into(),
        }
    }

    /// Registers `node` on `channel` and returns once the AM has taken the registration.
    /// Connections are served by threads of their own, so a registration sent later on
    /// another connection (an impostor's) could reach the AM first and rightly own the node.
    /// A stale heartbeat on the node's own connection is answered, without closing it, after
    /// its registration: once the answer is in, the node is registered.
    fn registered(channel: &mut SecureChannel, node: &NodeId) {
        channel.send(&register(node.clone(), 0)).unwrap();
        channel
            .send(&NodeMessage::Heartbeat {
                node: node.clone(),
                attempt: 99,
            })
            .unwrap();
        let reason = rejection(channel);
        assert!(reason.contains("stale"), "{reason}");
    }

    fn rejection(channel: &mut SecureChannel) -> String {
        match channel.recv::<AmMessage>().unwrap() {
            AmMessage::Rejected { reason } => reason,
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn messages_of_a_stale_attempt_an_unknown_node_or_a_second_registration_are_rejected() {
        let (am, secret) = worker_and_ps();
        assert!(
            am.am_address().secret.is_none(),
            "a configured secret is not sent along"
        );
        let mut stale = node_channel(&am, &secret);
        stale.send(&register(NodeId::new("worker", 0), 5)).unwrap();
        let reason = rejection(&mut stale);
        assert!(
            reason.contains("stale") && reason.contains("attempt 5"),
            "{reason}"
        );
        let mut stranger = node_channel(&am, &secret);
        stranger
            .send(&register(NodeId::new("evaluator", 0), 0))
            .unwrap();
        assert!(rejection(&mut stranger).contains("no node evaluator:0"));
        let mut worker = node_channel(&am, &secret);
        registered(&mut worker, &NodeId::new("worker", 0));
        let mut impostor = node_channel(&am, &secret);
        impostor
            .send(&register(NodeId::new("worker", 0), 0))
            .unwrap();
        assert!(rejection(&mut impostor).contains("already registered"));
        // The refused connection is closed: it cannot go on speaking for worker:0.
        let _ = impostor.send(&NodeMessage::StopCluster {
            node: NodeId::new("worker", 0),
            attempt: 0,
        });
        assert!(
            impostor.recv::<AmMessage>().is_err(),
            "the connection is closed"
        );
        // The ps completes the cluster: both get the spec.
        let mut ps = node_channel(&am, &secret);
        ps.send(&register(NodeId::new("ps", 0), 0)).unwrap();
        for channel in [&mut worker, &mut ps] {
            match channel.recv::<AmMessage>().unwrap() {
                AmMessage::Spec(spec) => {
                    assert_eq!(spec.address("worker", 0), Some("127.0.0.1:9"))
                }
                other => panic!("expected the spec, got {other:?}"),
            }
        }
    }

    /// Regression: a message sent right behind a refused registration (before the refusal
    /// arrives) could reach the AM as the node's own and stop the cluster.
    #[test]
    fn messages_behind_a_refused_registration_do_not_speak_for_the_node() {
        let (am, secret) = worker_and_ps();
        let worker_0 = NodeId::new("worker", 0);
        let mut worker = node_channel(&am, &secret);
        registered(&mut worker, &worker_0);
        for _ in 0..20 {
            let mut impostor = node_channel(&am, &secret);
            impostor.send(&register(worker_0.clone(), 0)).unwrap();
            let _ = impostor.send(&NodeMessage::StopCluster {
                node: worker_0.clone(),
                attempt: 0,
            });
        }
        let mut ps = node_channel(&am, &secret);
        ps.send(&register(NodeId::new("ps", 0), 0)).unwrap();
        for channel in [&mut worker, &mut ps] {
            match channel.recv::<AmMessage>().unwrap() {
                AmMessage::Spec(_) => {}
                other => panic!("expected the spec, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_connection_may_only_speak_for_the_node_it_registered() {
        let secret = JobSecret::generate().unwrap();
        let config = ClusterConfig::new()
            .role("worker", 2)
            .secret(secret.clone());
        let am = AppMaster::start(config).unwrap();
        let mut channel = node_channel(&am, &secret);
        channel
            .send(&NodeMessage::Register {
                node: NodeId::new("worker", 0),
                attempt: 0,
                address: "127.0.0.1:9".into(),
            })
            .unwrap();
        channel
            .send(&NodeMessage::Failed {
                node: NodeId::new("worker", 1),
                attempt: 0,
                cause: "forged".into(),
            })
            .unwrap();
        // The AM closes the connection instead of failing worker:1.
        assert!(matches!(
            channel.recv::<AmMessage>(),
            Err(WireError::Closed { .. } | WireError::Io { .. })
        ));
    }

    #[test]
    fn without_a_configured_secret_the_am_generates_one_and_hands_it_out() {
        let am = AppMaster::start(ClusterConfig::new().role("worker", 1)).unwrap();
        let secret = am.am_address().secret.clone().expect("a generated secret");
        let mut channel = node_channel(&am, &secret);
        channel
            .send(&NodeMessage::Register {
                node: NodeId::new("worker", 0),
                attempt: 0,
                address: "127.0.0.1:9".into(),
            })
            .unwrap();
        assert!(matches!(
            channel.recv::<AmMessage>().unwrap(),
            AmMessage::Spec(_)
        ));
        let wrong = SecureChannel::connect(
            am.address(),
            &JobSecret::generate().unwrap(),
            CONTROL_FRAME_LIMIT,
        );
        assert!(wrong.is_err());
    }
}
