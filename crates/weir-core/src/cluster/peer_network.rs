//! The TCP connections between the processes of a job, made by Weir instead of timely so
//! that they can be trusted and ended:
//!
//! - **Listening.** Process `p` listens on its address, or on a listener it inherited from
//!   its launcher (`WEIR_LISTEN_FD`, see [`crate::LocalCluster`]), so that no port is picked
//!   by bind-and-release; a bind that finds the address in use is retried for a while.
//! - **Handshake.** Process `p` connects to every process `q < p` and accepts every `q > p`,
//!   twice: a connection for timely's data and one for heartbeats (`heartbeats.rs`). Each
//!   connection starts with a greeting naming the job (a fingerprint of its address list),
//!   the two processes, the connection's kind and a nonce each way, and proofs
//!   `HMAC(secret, label | from | to | job | nonces)` in both directions (the label names
//!   the kind, so that a proof for one kind does not pass for the other). With a job secret
//!   ([`crate::Config::job_secret`]) that authenticates every process; without one the
//!   proofs only check integrity, and a warning says so. A connection that is not a process
//!   of this job (garbage, a port scan, another job, a duplicate) is refused and logged; it
//!   can neither crash nor join the job.
//! - **Deadline.** Peers that cannot be reached or do not connect within
//!   [`crate::Config::connect_timeout`] fail the job with their addresses.
//! - **Cut-off.** [`PeerSockets::cut_off`] shuts a peer's connection down, so that timely's
//!   communication threads end instead of waiting forever for a stalled process.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use crate::cluster::heartbeats::Heartbeats;
use crate::cluster::io_deadline::read_exact_before;
use crate::cluster::job_secret::{mac, random_bytes, verify, JobSecret};
use crate::error::WeirError;

/// The environment variable naming an inherited listening socket's file descriptor.
pub const LISTEN_FD_ENV: &str = "WEIR_LISTEN_FD";

const GREETING: &[u8; 8] = b"WEIRPEER";
/// What a process sends instead of an answer when it refuses a connection for want of room
/// for another handshake ([`MAX_HANDSHAKES`]): the connecting process tries again.
const BUSY: &[u8; 8] = b"WEIRBUSY";
const VERSION: u8 = 2;
/// Greeting: magic, version, processes, from, to, kind, job fingerprint, nonce.
const HELLO: usize = 8 + 1 + 4 + 4 + 4 + 1 + 32 + 32;
/// Answer: magic, version, nonce, proof.
const ANSWER: usize = 8 + 1 + 32 + 32;
/// How long a connecting peer has for the handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// What a connection between two processes carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Timely's data and progress.
    Data,
    /// Heartbeats (`heartbeats.rs`).
    Beats,
}

impl Kind {
    fn byte(self) -> u8 {
        match self {
            Kind::Data => 0,
            Kind::Beats => 1,
        }
    }

    fn of(byte: u8) -> Option<Kind> {
        match byte {
            0 => Some(Kind::Data),
            1 => Some(Kind::Beats),
            _ => None,
        }
    }

    /// The labels of the accepting and the connecting side's proofs.
    fn labels(self) -> (&'static [u8], &'static [u8]) {
        match self {
            Kind::Data => (b"weir accept", b"weir connect"),
            Kind::Beats => (b"weir beats accept", b"weir beats connect"),
        }
    }
}

/// Who this process is in the job, and what it needs to check its peers.
#[derive(Clone)]
pub(crate) struct PeerPlan {
    pub(crate) process: usize,
    pub(crate) addresses: Vec<String>,
    pub(crate) secret: Option<JobSecret>,
    pub(crate) connect_timeout: Duration,
}

impl PeerPlan {
    /// What every process of the job agrees on: its address list.
    fn fingerprint(&self) -> [u8; 32] {
        let joined = self.addresses.join("\n");
        mac(b"weir job", &[joined.as_bytes()])
    }

    fn key(&self) -> [u8; 32] {
        match &self.secret {
            Some(s) => s.mac(&[b"weir peer key"]),
            None => [0u8; 32],
        }
    }
}

/// Set once Weir shuts a connection down on purpose: the panics of timely's communication
/// threads that follow are expected and not printed.
pub(crate) static CUT_OFF: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Clones of the connections handed to timely, to shut them down, and the heartbeats.
#[derive(Clone, Default)]
pub(crate) struct PeerSockets {
    sockets: Arc<Mutex<Vec<Option<TcpStream>>>>,
    heartbeats: Option<Arc<Heartbeats>>,
}

impl PeerSockets {
    /// When process `process` was last heard from on its heartbeat connection, if ever.
    pub(crate) fn heard(&self, process: usize) -> Option<Instant> {
        self.heartbeats.as_ref()?.heard(process)
    }

    /// Tells the other processes that this one's job failed (see `heartbeats.rs`).
    pub(crate) fn announce_failure(&self) {
        if let Some(heartbeats) = &self.heartbeats {
            heartbeats.announce_failure();
        }
    }

    /// Whether another process said its job failed.
    pub(crate) fn peer_failed(&self) -> bool {
        self.heartbeats.as_ref().is_some_and(|h| h.peer_failed())
    }

    /// Shuts down every connection, the heartbeats' too.
    pub(crate) fn cut_off_all(&self) {
        CUT_OFF.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(heartbeats) = &self.heartbeats {
            heartbeats.stop();
        }
        let sockets = self.sockets.lock().unwrap_or_else(|e| e.into_inner());
        for socket in sockets.iter().flatten() {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }

    /// Shuts down the connection to `process`; timely's threads for it end.
    pub(crate) fn cut_off(&self, process: usize) {
        CUT_OFF.store(true, std::sync::atomic::Ordering::SeqCst);
        let sockets = self.sockets.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(Some(socket)) = sockets.get(process) {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }
}

/// Connects this process to all others; returns the sockets in process order (`None` for
/// this process), as timely's `initialize_networking_from_sockets` wants them, and handles to
/// cut them off later.
pub(crate) fn connect_peers(
    plan: &PeerPlan,
) -> Result<(Vec<Option<TcpStream>>, PeerSockets), WeirError> {
    if plan.secret.is_none() {
        tracing::warn!(
            "the processes of this job do not authenticate each other (no WEIR_JOB_SECRET); \
             `weir launch` sets one; see docs/security.md"
        );
    }
    let deadline = Instant::now() + plan.connect_timeout;
    let listener = listen(plan, deadline)?;
    let accepted = {
        let plan = plan.clone();
        std::thread::spawn(move || accept_peers(&plan, &listener, deadline))
    };
    let mut sockets: Vec<Option<TcpStream>> = Vec::new();
    let mut beats: Vec<Option<TcpStream>> = Vec::new();
    for q in 0..plan.process {
        sockets.push(Some(connect_to(plan, q, deadline, Kind::Data)?));
        beats.push(Some(connect_to(plan, q, deadline, Kind::Beats)?));
    }
    sockets.push(None);
    beats.push(None);
    let higher = accepted
        .join()
        .map_err(|_| WeirError::Communication("the accepting thread panicked".into()))??;
    for (data, beat) in higher {
        sockets.push(Some(data));
        beats.push(Some(beat));
    }
    let clones = sockets
        .iter()
        .map(|s| s.as_ref().and_then(|s| s.try_clone().ok()))
        .collect();
    Ok((
        sockets,
        PeerSockets {
            sockets: Arc::new(Mutex::new(clones)),
            heartbeats: Some(Arc::new(Heartbeats::start(beats))),
        },
    ))
}

fn network_error(message: String) -> WeirError {
    WeirError::Communication(message)
}

/// The listener: inherited, or bound to this process's address (retrying while the
/// address is in use, until `deadline`).
fn listen(plan: &PeerPlan, deadline: Instant) -> Result<TcpListener, WeirError> {
    if let Some(listener) = inherited_listener()? {
        return Ok(listener);
    }
    let address = &plan.addresses[plan.process];
    loop {
        match TcpListener::bind(address.as_str()) {
            Ok(l) => return Ok(l),
            Err(e) if e.kind() == ErrorKind::AddrInUse && Instant::now() < deadline => {
                tracing::warn!("{address} is in use; retrying");
                std::thread::sleep(Duration::from_millis(500));
            }
            Err(e) => {
                return Err(network_error(format!(
                    "process {} cannot listen on {address}: {e}",
                    plan.process
                )))
            }
        }
    }
}

/// The listening socket named by `WEIR_LISTEN_FD`, taken once per process.
fn inherited_listener() -> Result<Option<TcpListener>, WeirError> {
    use std::os::fd::FromRawFd;
    use std::sync::atomic::{AtomicBool, Ordering};
    static TAKEN: AtomicBool = AtomicBool::new(false);
    let Ok(text) = std::env::var(LISTEN_FD_ENV) else {
        return Ok(None);
    };
    if TAKEN.swap(true, Ordering::SeqCst) {
        return Ok(None);
    }
    let fd: i32 = text
        .trim()
        .parse()
        .map_err(|_| network_error(format!("{LISTEN_FD_ENV}={text} is not a file descriptor")))?;
    // SAFETY: fstat on any integer is safe; it fails for descriptors that are not open.
    let is_socket = unsafe {
        let mut stat: libc::stat = std::mem::zeroed();
        libc::fstat(fd, &mut stat) == 0 && (stat.st_mode & libc::S_IFMT) == libc::S_IFSOCK
    };
    if !is_socket {
        return Err(network_error(format!(
            "{LISTEN_FD_ENV}={fd} is not an open socket"
        )));
    }
    // SAFETY: the descriptor is an open socket that the launcher handed to this process for
    // this purpose; TAKEN makes sure it is owned once.
    let listener = unsafe { TcpListener::from_raw_fd(fd) };
    listener
        .local_addr()
        .map_err(|e| network_error(format!("{LISTEN_FD_ENV}={fd} is not a TCP listener: {e}")))?;
    Ok(Some(listener))
}

/// Connects to process `q` (lower than this one) and completes the handshake; retries
/// while nothing listens, until `deadline`.
fn connect_to(
    plan: &PeerPlan,
    q: usize,
    deadline: Instant,
    kind: Kind,
) -> Result<TcpStream, WeirError> {
    let address = &plan.addresses[q];
    let mut pause = Duration::from_millis(50);
    let mut last_note = Instant::now();
    loop {
        let connected = connect_any(address).map_err(Refusal::Unreachable);
        // The peer may not have started accepting yet (its listener can be bound before it
        // runs): wait for its answer until the deadline.
        match connected.and_then(|stream| greet(plan, q, stream, deadline, kind)) {
            Ok(stream) => return Ok(stream),
            Err(Refusal::Refused(reason)) => {
                return Err(network_error(format!(
                    "process {} at {address} refused this process {}: {reason}",
                    q, plan.process
                )))
            }
            Err(e) if Instant::now() >= deadline => {
                return Err(network_error(format!(
                    "cannot reach process {q} at {address} within {:?}: {e}",
                    plan.connect_timeout
                )))
            }
            Err(e) => {
                if last_note.elapsed() >= Duration::from_secs(5) {
                    tracing::info!("waiting for process {q} at {address} ({e})");
                    last_note = Instant::now();
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// Why a connection to a peer did not become a peer connection.
#[derive(Debug)]
enum Refusal {
    /// Nothing accepted it (yet).
    Unreachable(String),
    /// The peer had no room for another handshake ([`BUSY`]): try again.
    Busy,
    /// The handshake failed.
    Refused(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Unreachable(reason) | Refusal::Refused(reason) => f.write_str(reason),
            Refusal::Busy => f.write_str("it was busy with other handshakes"),
        }
    }
}

/// Connects to the first address `address` resolves to that accepts.
fn connect_any(address: &str) -> Result<TcpStream, String> {
    let mut last = "it resolves to nothing".to_string();
    for a in address.to_socket_addrs().map_err(|e| e.to_string())? {
        match TcpStream::connect_timeout(&a, HANDSHAKE_TIMEOUT) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}

/// The connecting side of the handshake (this process is `from`, the peer `to`); the
/// peer's answer may take until `deadline`.
fn greet(
    plan: &PeerPlan,
    to: usize,
    mut stream: TcpStream,
    deadline: Instant,
    kind: Kind,
) -> Result<TcpStream, Refusal> {
    let refused = Refusal::Refused;
    set_handshake_timeouts(&stream).map_err(refused)?;
    let (from, job, key) = (plan.process as u32, plan.fingerprint(), plan.key());
    let nc = random_bytes().map_err(|e| refused(e.to_string()))?;
    let mut hello = Vec::with_capacity(HELLO);
    hello.extend_from_slice(GREETING);
    hello.push(VERSION);
    hello.extend_from_slice(&(plan.addresses.len() as u32).to_le_bytes());
    hello.extend_from_slice(&from.to_le_bytes());
    hello.extend_from_slice(&(to as u32).to_le_bytes());
    hello.push(kind.byte());
    hello.extend_from_slice(&job);
    hello.extend_from_slice(&nc);
    // A busy peer may have closed the connection before the greeting was written.
    let sent = stream.write_all(&hello);
    let mut answer = [0u8; ANSWER];
    let no_answer = |e| refused(format!("no answer to the greeting ({e})"));
    read_exact_before(&mut stream, &mut answer[..8], deadline).map_err(|e| {
        // Reset before any answer: the peer closed it with the greeting unread (refusing it
        // while busy, or ending); tried again until the deadline.
        if e.kind() == ErrorKind::ConnectionReset {
            Refusal::Unreachable(format!("the connection was reset before an answer ({e})"))
        } else {
            no_answer(e)
        }
    })?;
    if &answer[..8] == BUSY {
        return Err(Refusal::Busy);
    }
    sent.map_err(|e| refused(e.to_string()))?;
    read_exact_before(&mut stream, &mut answer[8..], deadline).map_err(no_answer)?;
    if &answer[..8] != GREETING || answer[8] != VERSION {
        return Err(refused("not a Weir process of this version".into()));
    }
    let (na, proof) = (&answer[9..41], &answer[41..]);
    let ids = [from.to_le_bytes(), (to as u32).to_le_bytes()];
    let (accept, connect) = kind.labels();
    if !verify(&key, &[accept, &ids[0], &ids[1], &job, &nc, na], proof) {
        let reason = "it is not part of this job (another job, or another job secret)";
        return Err(refused(reason.into()));
    }
    let mine = mac(&key, &[connect, &ids[0], &ids[1], &job, &nc, na]);
    stream
        .write_all(&mine)
        .map_err(|e| refused(e.to_string()))?;
    clear_timeouts(&stream).map_err(refused)?;
    Ok(stream)
}

fn set_handshake_timeouts(stream: &TcpStream) -> Result<(), String> {
    stream
        .set_nodelay(true)
        .and_then(|_| stream.set_read_timeout(Some(HANDSHAKE_TIMEOUT)))
        .and_then(|_| stream.set_write_timeout(Some(HANDSHAKE_TIMEOUT)))
        .map_err(|e| e.to_string())
}

fn clear_timeouts(stream: &TcpStream) -> Result<(), String> {
    stream
        .set_read_timeout(None)
        .and_then(|_| stream.set_write_timeout(None))
        .map_err(|e| e.to_string())
}

/// The data and the heartbeat connection of a process above this one, as they arrive.
#[derive(Default)]
struct Accepted {
    data: Option<TcpStream>,
    beats: Option<TcpStream>,
}

impl Accepted {
    /// Takes a connection; false (and the connection is dropped) if one of its kind came
    /// already: the first one stays.
    fn take(&mut self, kind: Kind, stream: TcpStream) -> bool {
        let slot = match kind {
            Kind::Data => &mut self.data,
            Kind::Beats => &mut self.beats,
        };
        if slot.is_some() {
            return false;
        }
        *slot = Some(stream);
        true
    }

    fn complete(&self) -> bool {
        self.data.is_some() && self.beats.is_some()
    }
}

/// Accepts the processes above this one, each proving it belongs to the job; anything else
/// is refused and logged. Returns their data and heartbeat connections in process order.
fn accept_peers(
    plan: &PeerPlan,
    listener: &TcpListener,
    deadline: Instant,
) -> Result<Vec<(TcpStream, TcpStream)>, WeirError> {
    let expected = plan.addresses.len() - plan.process - 1;
    let mut peers: Vec<Accepted> = (0..expected).map(|_| Accepted::default()).collect();
    listener
        .set_nonblocking(true)
        .map_err(|e| network_error(format!("listener: {e}")))?;
    let (done, results) = mpsc::channel();
    // Handshakes under way, each on a thread of its own for at most the handshake timeout.
    let mut handshaking = 0usize;
    let mut last_error: Option<std::io::Error> = None;
    while !peers.iter().all(Accepted::complete) {
        // What is waiting to be accepted (a bounded number, so that a flood of connections
        // does not keep this loop from its deadline), then the handshakes' results.
        for _ in 0..ACCEPTS_PER_ROUND {
            match listener.accept() {
                Ok((stream, from)) => {
                    if start_welcome(plan, stream, from, handshaking, &done) {
                        handshaking += 1;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if accept_error_passes(&e) => {
                    tracing::warn!("accepting peers: {e} (retrying)");
                    last_error = Some(e);
                    break;
                }
                Err(e) => return Err(network_error(format!("accepting peers: {e}"))),
            }
        }
        while let Ok((from, result)) = results.try_recv() {
            handshaking -= 1;
            match result {
                Ok((q, kind, stream)) => {
                    if !peers[q - plan.process - 1].take(kind, stream) {
                        tracing::warn!(
                            "refused a second {kind:?} connection from process {q} ({from})"
                        )
                    }
                }
                Err(reason) => tracing::warn!("refused a connection from {from}: {reason}"),
            }
        }
        if Instant::now() >= deadline {
            let missing: Vec<String> = (0..expected)
                .filter(|i| !peers[*i].complete())
                .map(|i| {
                    let q = plan.process + 1 + i;
                    format!("process {q} ({})", plan.addresses[q])
                })
                .collect();
            let last = last_error.map_or(String::new(), |e| format!(" (last accept error: {e})"));
            return Err(network_error(format!(
                "{} did not connect within {:?}{last}",
                missing.join(", "),
                plan.connect_timeout
            )));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(peers
        .into_iter()
        .map(|p| (p.data.expect("complete"), p.beats.expect("complete")))
        .collect())
}

/// What a handshake on its own thread reports: where the connection came from, and the
/// peer's process index and connection kind, or why it was refused.
type Welcomed = (SocketAddr, Result<(usize, Kind, TcpStream), String>);

/// Starts the handshake of an accepted connection on a thread of its own, unless
/// [`MAX_HANDSHAKES`] are under way or no thread can be started: then the connection is
/// refused (closed). Returns whether a handshake started.
fn start_welcome(
    plan: &PeerPlan,
    stream: TcpStream,
    from: SocketAddr,
    handshaking: usize,
    done: &mpsc::Sender<Welcomed>,
) -> bool {
    if handshaking >= MAX_HANDSHAKES {
        tracing::warn!("refused a connection from {from}: {handshaking} handshakes under way");
        // Without waiting (the bytes fit in a new socket's buffer, or the peer is gone). A
        // greeting that already arrived is read first: closing a socket with unread bytes
        // resets the connection, and the peer might not see the answer.
        let _ = stream.set_nonblocking(true);
        let _ = (&stream).read(&mut [0u8; HELLO]);
        let _ = (&stream).write(BUSY);
        return false;
    }
    let (plan, done) = (plan.clone(), done.clone());
    let started = std::thread::Builder::new()
        .name("weir-handshake".into())
        .spawn(move || {
            let _ = done.send((from, welcome(&plan, stream)));
        });
    if let Err(e) = started {
        tracing::warn!("refused a connection from {from}: no thread for its handshake ({e})");
        return false;
    }
    true
}

/// Connections accepted per round of the accepting loop, between its looks at the
/// handshakes' results and at the deadline.
const ACCEPTS_PER_ROUND: usize = 64;

/// Connections whose handshake may be under way at once while accepting peers: more are
/// refused, so that a flood of connections cannot start a thread each.
const MAX_HANDSHAKES: usize = 256;

/// Whether an error of `accept` concerns one connection or a passing shortage, not the
/// listener: the connection was aborted or reset, a network error was pending on it (Linux
/// reports those from `accept`, which should then be retried: accept(2)), the call was
/// interrupted, or descriptors or memory ran short for a moment. Then accepting goes on
/// until the connect deadline; an unusable listener (`EBADF`, `EINVAL`, `ENOTSOCK`,
/// `EFAULT`) fails at once.
fn accept_error_passes(e: &std::io::Error) -> bool {
    match e.raw_os_error() {
        Some(code) => !matches!(
            code,
            libc::EBADF | libc::EINVAL | libc::ENOTSOCK | libc::EFAULT
        ),
        None => matches!(
            e.kind(),
            ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::Interrupted
        ),
    }
}

/// The accepting side of the handshake; returns the peer's process index and what the
/// connection carries.
fn welcome(plan: &PeerPlan, mut stream: TcpStream) -> Result<(usize, Kind, TcpStream), String> {
    stream.set_nonblocking(false).map_err(|e| e.to_string())?;
    set_handshake_timeouts(&stream)?;
    // The whole handshake, however the bytes trickle in, within the handshake timeout.
    let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
    let mut hello = [0u8; HELLO];
    read_exact_before(&mut stream, &mut hello, deadline)
        .map_err(|e| format!("no greeting ({e})"))?;
    if &hello[..8] != GREETING || hello[8] != VERSION {
        return Err("not a Weir process of this version (bad greeting)".into());
    }
    let word = |at: usize| u32::from_le_bytes(hello[at..at + 4].try_into().expect("4 bytes"));
    let (processes, from, to) = (word(9), word(13), word(17));
    let kind =
        Kind::of(hello[21]).ok_or_else(|| format!("unknown connection kind {}", hello[21]))?;
    let (job, nc) = (&hello[22..54], &hello[54..86]);
    let me = plan.process as u32;
    if processes as usize != plan.addresses.len() || job != plan.fingerprint() {
        return Err("it belongs to another job (other processes or addresses)".into());
    }
    if to != me || from <= me || from >= processes {
        return Err(format!(
            "it claims to be process {from} connecting to process {to}"
        ));
    }
    let key = plan.key();
    let na = random_bytes().map_err(|e| e.to_string())?;
    let ids = [from.to_le_bytes(), to.to_le_bytes()];
    let (accept, connect) = kind.labels();
    let mut answer = Vec::with_capacity(ANSWER);
    answer.extend_from_slice(GREETING);
    answer.push(VERSION);
    answer.extend_from_slice(&na);
    answer.extend_from_slice(&mac(&key, &[accept, &ids[0], &ids[1], job, nc, &na]));
    stream.write_all(&answer).map_err(|e| e.to_string())?;
    let mut proof = [0u8; 32];
    read_exact_before(&mut stream, &mut proof, deadline).map_err(|e| format!("no proof ({e})"))?;
    if !verify(&key, &[connect, &ids[0], &ids[1], job, nc, &na], &proof) {
        return Err("wrong job secret".into());
    }
    clear_timeouts(&stream)?;
    Ok((from as usize, kind, stream))
}

/// What timely's workers run on: allocators, the guard of the communication threads, and
/// (between processes) the sockets to cut off a stalled peer.
pub(crate) struct Communication {
    pub(crate) builders: Vec<timely::communication::AllocatorBuilder>,
    pub(crate) guard: Box<dyn std::any::Any + Send>,
    pub(crate) peers: Option<PeerSockets>,
}

/// Threads of one process, or processes connected by [`connect_peers`].
pub(crate) fn communication(config: &crate::Config) -> Result<Communication, WeirError> {
    use timely::communication::allocator::zero_copy::initialize::initialize_networking_from_sockets;
    use timely::communication::allocator::ProcessBuilder;
    use timely::communication::{AllocatorBuilder, Hooks};
    let threads = config.threads_per_process();
    let Some(plan) = config.peer_plan() else {
        let local = if threads == 1 {
            timely::CommunicationConfig::Thread
        } else {
            timely::CommunicationConfig::Process(threads)
        };
        let (builders, guard) = local.try_build().map_err(WeirError::Communication)?;
        return Ok(Communication {
            builders,
            guard,
            peers: None,
        });
    };
    let (sockets, peers) = connect_peers(&plan)?;
    let hooks = Hooks::default();
    let local =
        ProcessBuilder::new_typed_vector(threads, hooks.refill.clone(), hooks.spill.clone());
    let (builders, guard) =
        initialize_networking_from_sockets(local, sockets, plan.process, threads, hooks)
            .map_err(|e| network_error(format!("cannot start the communication threads: {e}")))?;
    Ok(Communication {
        builders: builders.into_iter().map(AllocatorBuilder::Tcp).collect(),
        guard: Box::new(guard),
        peers: Some(peers),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Threads of this process that run a handshake (named `weir-handshake`).
    fn handshake_threads() -> usize {
        std::fs::read_dir("/proc/self/task")
            .expect("/proc/self/task")
            .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
            .filter(|name| name.trim() == "weir-handshake")
            .count()
    }

    /// Errors about one connection, or a passing shortage, are retried; an unusable listener
    /// is not.
    #[test]
    fn accept_errors_of_one_connection_are_retried() {
        let os = std::io::Error::from_raw_os_error;
        for code in [
            libc::ECONNABORTED,
            libc::EINTR,
            libc::EMFILE,
            libc::ENFILE,
            libc::ENOBUFS,
            libc::ENOMEM,
            libc::EPROTO,
            libc::ENETDOWN,
            libc::EHOSTUNREACH,
            libc::ENETUNREACH,
        ] {
            assert!(accept_error_passes(&os(code)), "{}", os(code));
        }
        for code in [libc::EBADF, libc::EINVAL, libc::ENOTSOCK, libc::EFAULT] {
            assert!(!accept_error_passes(&os(code)), "{}", os(code));
        }
        assert!(accept_error_passes(&ErrorKind::ConnectionAborted.into()));
        assert!(!accept_error_passes(&ErrorKind::Other.into()));
    }

    /// The flood tests count this process's handshake threads: one at a time.
    static FLOODS: std::sync::Mutex<()> = std::sync::Mutex::new(());

    /// `MAX_HANDSHAKES` connections that never greet, opened in groups, so that the listen
    /// queue (128) does not overflow and a connect does not wait a second for its retry.
    fn flood(address: &str, connections: usize) -> Vec<TcpStream> {
        let mut flood: Vec<TcpStream> = Vec::new();
        while flood.len() < connections {
            flood.push(TcpStream::connect(address).unwrap());
            if flood.len() % 32 == 0 {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        flood
    }

    /// A peer that connects while `MAX_HANDSHAKES` silent connections hold every handshake
    /// is told the listener is busy, tries again, and gets in once their handshakes time out.
    #[test]
    fn a_peer_refused_while_the_listener_is_busy_tries_again() {
        let _one = FLOODS.lock().unwrap_or_else(|e| e.into_inner());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let plan = |process| PeerPlan {
            process,
            addresses: vec![address.clone(), "127.0.0.1:9".into()],
            secret: None,
            connect_timeout: Duration::from_secs(15),
        };
        let (zero, one) = (plan(0), plan(1));
        let accepting = std::thread::spawn(move || {
            let deadline = Instant::now() + zero.connect_timeout;
            accept_peers(&zero, &listener, deadline).map(|peers| peers.len())
        });
        let _flood = flood(&address, MAX_HANDSHAKES);
        let full = Instant::now() + Duration::from_secs(3);
        while handshake_threads() < MAX_HANDSHAKES && Instant::now() < full {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(handshake_threads(), MAX_HANDSHAKES);
        let deadline = Instant::now() + one.connect_timeout;
        for kind in [Kind::Data, Kind::Beats] {
            if let Err(e) = connect_to(&one, 0, deadline, kind) {
                panic!("{kind:?}: {e}");
            }
        }
        assert_eq!(accepting.join().unwrap().unwrap(), 1);
    }

    /// A flood of connections that never greet starts at most `MAX_HANDSHAKES` threads; the
    /// rest are told the listener is busy and closed at once, and the accepting side still
    /// ends at its deadline with the processes that did not connect.
    #[test]
    fn a_flood_of_connections_is_refused_past_the_handshake_bound() {
        let _one = FLOODS.lock().unwrap_or_else(|e| e.into_inner());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let plan = PeerPlan {
            process: 0,
            addresses: vec![address.clone(), "127.0.0.1:9".into()],
            secret: None,
            connect_timeout: Duration::from_secs(3),
        };
        let accepting = std::thread::spawn(move || {
            let deadline = Instant::now() + plan.connect_timeout;
            accept_peers(&plan, &listener, deadline).map(|peers| peers.len())
        });
        let extra = 40;
        let mut flood = flood(&address, MAX_HANDSHAKES + extra);
        std::thread::sleep(Duration::from_millis(500));
        let during = handshake_threads();
        assert_eq!(
            during,
            MAX_HANDSHAKES,
            "handshake threads with {} connections open",
            flood.len()
        );
        // Refused: the read sees `BUSY`, then the end; open (a handshake waiting for the
        // greeting): it would block. Looked at without waiting, well within the handshake
        // timeout.
        let mut closed = 0;
        for stream in &mut flood {
            stream.set_nonblocking(true).unwrap();
            let mut told = [0u8; 16];
            if matches!(stream.read(&mut told), Ok(8)) && &told[..8] == BUSY {
                assert!(matches!(stream.read(&mut told), Ok(0)), "closed after BUSY");
                closed += 1;
            }
        }
        assert!(
            (extra..extra + 8).contains(&closed),
            "{closed} of {} connections refused as busy",
            flood.len()
        );
        let error = accepting.join().unwrap().unwrap_err().to_string();
        assert!(error.contains("did not connect within"), "{error}");
    }
}
