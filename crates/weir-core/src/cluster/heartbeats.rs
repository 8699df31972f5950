//! Heartbeats between the processes of a job, on connections of their own (made and
//! authenticated with the data connections, see `peer_network.rs`) and sent and received by
//! threads of their own: a process whose workers are all busy in one long call (a large model
//! batch, a training step) keeps beating, while a stopped or hung process falls silent.
//!
//! A beat is one byte, every [`BEAT_EVERY`]. A thread per peer reads them and notes when it
//! last heard from that peer; the workers compare that with the peer timeout.
//!
//! A process whose job failed also says so on these connections ([`FAILED`]): the others
//! then know it without their workers, one of which may be stuck in an operator's code and
//! never read the failure the control dataflow carries (see `runtime/cancellation.rs`).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often a process beats.
pub(crate) const BEAT_EVERY: Duration = Duration::from_millis(250);
/// How long a beat may take to write before the peer is skipped until the next one (a
/// stopped peer whose receive buffer is full must not hold the others' beats up).
const WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// A beat.
const BEAT: u8 = 1;
/// What a process whose job failed sends instead of a beat (it counts as one).
const FAILED: u8 = 2;

/// This process's heartbeat threads and what they heard; stops them when dropped.
pub(crate) struct Heartbeats {
    started: Instant,
    /// Per process: milliseconds after `started` when it was last heard from, plus one (0:
    /// never).
    heard: Arc<[AtomicU64]>,
    /// Set once a peer said its job failed.
    peer_failed: Arc<AtomicBool>,
    done: Arc<AtomicBool>,
    /// Clones of the connections, to shut them down.
    sockets: Vec<TcpStream>,
}

impl Heartbeats {
    /// Starts beating to, and listening to, the processes of `connections` (indexed by
    /// process; `None` for this one).
    pub(crate) fn start(connections: Vec<Option<TcpStream>>) -> Heartbeats {
        let started = Instant::now();
        let heard: Arc<[AtomicU64]> = connections.iter().map(|_| AtomicU64::new(0)).collect();
        let peer_failed = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicBool::new(false));
        let mut writers = Vec::new();
        let mut sockets = Vec::new();
        for (process, connection) in connections.into_iter().enumerate() {
            let Some(stream) = connection else { continue };
            if let Ok(clone) = stream.try_clone() {
                sockets.push(clone);
            }
            if let Ok(writer) = stream.try_clone() {
                let _ = writer.set_write_timeout(Some(WRITE_TIMEOUT));
                writers.push(writer);
            }
            let listener = Listener {
                process,
                stream,
                started,
                heard: Arc::clone(&heard),
                peer_failed: Arc::clone(&peer_failed),
            };
            let spawned = std::thread::Builder::new()
                .name(format!("weir-heartbeat-from-{process}"))
                .spawn(move || listener.run());
            if let Err(e) = spawned {
                tracing::warn!("cannot start the heartbeat listener of process {process}: {e}");
            }
        }
        let beating = Arc::clone(&done);
        let spawned = std::thread::Builder::new()
            .name("weir-heartbeat".into())
            .spawn(move || beat(writers, &beating));
        if let Err(e) = spawned {
            tracing::warn!("cannot start the heartbeat thread: {e}");
        }
        Heartbeats {
            started,
            heard,
            peer_failed,
            done,
            sockets,
        }
    }

    /// Tells every peer that this process's job failed, at once (the process may exit before
    /// the next beat).
    pub(crate) fn announce_failure(&self) {
        for mut socket in &self.sockets {
            // Best effort: a peer that is gone or stalled learns it otherwise.
            let _ = socket.write_all(&[FAILED]);
        }
    }

    /// Whether a peer said its job failed.
    pub(crate) fn peer_failed(&self) -> bool {
        self.peer_failed.load(Ordering::SeqCst)
    }

    /// When `process` was last heard from on its heartbeat connection, if ever.
    pub(crate) fn heard(&self, process: usize) -> Option<Instant> {
        let at = self.heard.get(process)?.load(Ordering::Relaxed);
        (at > 0).then(|| self.started + Duration::from_millis(at - 1))
    }
}

impl Heartbeats {
    /// Stops beating and listening: the peers stop hearing this process.
    pub(crate) fn stop(&self) {
        self.done.store(true, Ordering::SeqCst);
        for socket in &self.sockets {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Heartbeats {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The beating thread: a byte to every peer every [`BEAT_EVERY`] until `done`. A peer whose
/// connection failed is dropped from the round.
fn beat(mut writers: Vec<TcpStream>, done: &AtomicBool) {
    while !done.load(Ordering::SeqCst) && !writers.is_empty() {
        writers.retain_mut(|w| match w.write_all(&[BEAT]) {
            Ok(()) => true,
            // Too slow this time (a full buffer): it gets the next beat.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                true
            }
            Err(_) => false,
        });
        std::thread::sleep(BEAT_EVERY);
    }
}

/// Reads one peer's beats until its connection ends.
struct Listener {
    process: usize,
    stream: TcpStream,
    started: Instant,
    heard: Arc<[AtomicU64]>,
    peer_failed: Arc<AtomicBool>,
}

impl Listener {
    fn run(mut self) {
        let mut buffer = [0u8; 64];
        loop {
            match self.stream.read(&mut buffer) {
                Ok(0) => return,
                Ok(n) => {
                    let at = self.started.elapsed().as_millis() as u64 + 1;
                    self.heard[self.process].store(at, Ordering::Relaxed);
                    if buffer[..n].contains(&FAILED) {
                        self.peer_failed.store(true, Ordering::SeqCst);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// Two ends of a loopback connection.
    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (b, _) = listener.accept().unwrap();
        (a, b)
    }

    /// Each side hears the other within a few beats, and the threads end when the heartbeats
    /// are dropped (the peer reads the end of its connection).
    #[test]
    fn two_processes_hear_each_other_and_stop_when_dropped() {
        let (a, b) = pair();
        let zero = Heartbeats::start(vec![None, Some(a)]);
        let one = Heartbeats::start(vec![Some(b), None]);
        let deadline = Instant::now() + Duration::from_secs(10);
        while zero.heard(1).is_none() || one.heard(0).is_none() {
            assert!(Instant::now() < deadline, "no beat heard");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(zero.heard(0), None, "a process does not beat to itself");
        assert!(!one.peer_failed());
        zero.announce_failure();
        while !one.peer_failed() {
            assert!(Instant::now() < deadline, "the failure was not heard");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!zero.peer_failed(), "only the other side hears it");
        assert_eq!(zero.heard(7), None, "no such process");
        drop(zero);
        // The beats from 0 stop: what 1 heard last stays put.
        std::thread::sleep(BEAT_EVERY * 2);
        let last = one.heard(0);
        std::thread::sleep(BEAT_EVERY * 3);
        assert_eq!(one.heard(0), last);
    }
}
