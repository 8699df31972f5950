//! A bound on the connections a server of the cluster serves at once, each on a thread of its
//! own (the AM's control server, a ps shard, the metrics endpoint): a client that opens
//! connections and sends nothing cannot make the server start a thread each, nor make it
//! panic when the system refuses one more thread. A connection holds its [`Slot`] as long as
//! its server wants: the whole connection (the metrics endpoint), or its handshake (the AM
//! and the ps shards, whose clients prove the job secret and then stay connected; so that
//! connections that never finish a handshake cannot lock the nodes out).

use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// How many connections are being served, out of at most `max`.
#[derive(Clone, Debug)]
pub(crate) struct ConnectionSlots {
    taken: Arc<AtomicUsize>,
    max: usize,
}

/// One served connection; its slot is free again when this is dropped.
#[derive(Debug)]
pub(crate) struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl ConnectionSlots {
    /// At most `max` connections at once.
    pub(crate) fn new(max: usize) -> Self {
        ConnectionSlots {
            taken: Arc::new(AtomicUsize::new(0)),
            max,
        }
    }

    /// A slot, unless all `max` are taken.
    pub(crate) fn take(&self) -> Option<Slot> {
        if self.taken.fetch_add(1, Ordering::SeqCst) >= self.max {
            self.taken.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(Slot(Arc::clone(&self.taken)))
    }

    /// Serves `stream` with `serve` on a thread named `name` if a slot is free and a thread
    /// starts; otherwise closes the connection (the client sees it end) and says why. `serve`
    /// gets the slot, and frees it by dropping it.
    pub(crate) fn serve(
        &self,
        stream: TcpStream,
        name: &str,
        serve: impl FnOnce(TcpStream, Slot) + Send + 'static,
    ) {
        let Some(slot) = self.take() else {
            tracing::warn!(
                "{name}: refused a connection: {} are being served",
                self.max
            );
            return;
        };
        let started = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || serve(stream, slot));
        // A thread that cannot start drops the stream and its slot with the closure.
        if let Err(e) = started {
            tracing::warn!("{name}: refused a connection: no thread for it ({e})");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::sync::mpsc;

    #[test]
    fn connections_beyond_the_bound_are_closed_and_slots_come_back() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let slots = ConnectionSlots::new(2);
        let (release, released) = mpsc::channel::<()>();
        let released = Arc::new(std::sync::Mutex::new(released));
        let (served, serving) = mpsc::channel::<()>();
        let clients: Vec<TcpStream> = (0..3)
            .map(|_| TcpStream::connect(address).unwrap())
            .collect();
        for _ in 0..3 {
            let (stream, _) = listener.accept().unwrap();
            let (released, served) = (Arc::clone(&released), served.clone());
            slots.serve(stream, "test-connection", move |_stream, _slot| {
                served.send(()).unwrap();
                let _ = released.lock().unwrap().recv();
            });
        }
        serving.recv().unwrap();
        serving.recv().unwrap();
        // The third was closed at once: its client reads the end.
        use std::io::Read;
        let mut third = &clients[2];
        assert_eq!(third.read(&mut [0u8; 1]).unwrap(), 0);
        assert!(slots.take().is_none(), "both slots are taken");
        release.send(()).unwrap();
        release.send(()).unwrap();
        // Each slot is free once its thread ends.
        let free = loop {
            if let Some(slot) = slots.take() {
                break slot;
            }
            std::thread::yield_now();
        };
        drop(free);
    }
}
