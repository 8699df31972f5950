//! A small HTTP endpoint for a running job's metrics: `GET /metrics` in Prometheus' text
//! format, rendered on each request.
//!
//! It lives inside a job's process, so nothing a client does may cost the job more than a
//! bounded amount: requests are parsed with `httparse` from at most [`MAX_HEADER`] bytes
//! (431 beyond), every read and write has a timeout, at most [`MAX_CONNECTIONS`] connections
//! are served at once (503 beyond), and every connection answers one request and closes.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::connection_slots::ConnectionSlots;

/// Largest request head (request line and headers) read from a client.
pub const MAX_HEADER: usize = 8 << 10;
/// Connections served at the same time.
pub const MAX_CONNECTIONS: usize = 32;
/// How long a client has to send its request, and to take the answer.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

type Render = dyn Fn() -> String + Send + Sync;

/// Serves `/metrics` until dropped.
pub struct MetricsServer {
    address: String,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Listens on `address` (`host:port`; port 0 picks a free one) and answers `GET /metrics`
    /// with `render()`.
    pub fn start(
        address: &str,
        render: impl Fn() -> String + Send + Sync + 'static,
    ) -> std::io::Result<MetricsServer> {
        let listener = TcpListener::bind(address)
            .map_err(|e| std::io::Error::other(format!("metrics endpoint on {address}: {e}")))?;
        let bound = listener.local_addr()?.to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let render: Arc<Render> = Arc::new(render);
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("weir-metrics".into())
                .spawn(move || accept(&listener, &stop, &render))?
        };
        Ok(MetricsServer {
            address: bound,
            stop,
            thread: Some(thread),
        })
    }

    /// `host:port` the endpoint listens on.
    pub fn address(&self) -> &str {
        &self.address
    }
}

impl Drop for MetricsServer {
    /// Stops at once: the accept loop blocks in `accept`, so a connection of our own wakes it
    /// to see `stop`. If that connection cannot be made, the thread is left to end with the
    /// process rather than blocking the drop.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let Some(thread) = self.thread.take() else {
            return;
        };
        let woken = wake_address(&self.address)
            .and_then(|a| TcpStream::connect_timeout(&a, Duration::from_secs(1)).ok())
            .is_some();
        if woken {
            let _ = thread.join();
        }
    }
}

/// Where to connect to reach a listener bound to `address` (its port on the loopback
/// interface when it listens on every interface).
fn wake_address(address: &str) -> Option<std::net::SocketAddr> {
    let mut a: std::net::SocketAddr = address.parse().ok()?;
    if a.ip().is_unspecified() {
        a.set_ip(if a.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    Some(a)
}

fn accept(listener: &TcpListener, stop: &AtomicBool, render: &Arc<Render>) {
    let slots = ConnectionSlots::new(MAX_CONNECTIONS);
    loop {
        let accepted = listener.accept();
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let stream = match accepted {
            Ok((stream, _)) => stream,
            // Out of file descriptors, say: do not spin.
            Err(_) => {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
        };
        if stream.set_read_timeout(Some(IO_TIMEOUT)).is_err()
            || stream.set_write_timeout(Some(IO_TIMEOUT)).is_err()
        {
            continue;
        }
        let Some(slot) = slots.take() else {
            answer(stream, 503, "too many connections; try again\n");
            continue;
        };
        let render = Arc::clone(render);
        let spawned = std::thread::Builder::new()
            .name("weir-metrics-client".into())
            .spawn(move || {
                let _slot = slot;
                serve(stream, render.as_ref());
            });
        // A thread that cannot start drops its slot with the closure.
        drop(spawned);
    }
}

/// What the request head said, as far as the endpoint cares.
enum Head {
    /// `method` and `path` of a complete request head.
    Request { get: bool, path: String },
    /// The head is larger than [`MAX_HEADER`].
    TooLarge,
    /// Not HTTP.
    Malformed,
}

/// Reads one request head, at most [`MAX_HEADER`] bytes within [`IO_TIMEOUT`] in all (a
/// client that trickles bytes is cut off too); `None` if the client went away or ran out
/// of time before finishing it.
fn read_head(stream: &mut TcpStream) -> Option<Head> {
    let deadline = std::time::Instant::now() + IO_TIMEOUT;
    let mut buf = vec![0u8; MAX_HEADER];
    let mut filled = 0;
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&buf[..filled]) {
            Ok(httparse::Status::Complete(_)) => {
                return Some(Head::Request {
                    get: request.method == Some("GET"),
                    path: request.path.unwrap_or("").to_string(),
                })
            }
            Ok(httparse::Status::Partial) if filled == buf.len() => return Some(Head::TooLarge),
            Ok(httparse::Status::Partial) => {}
            Err(httparse::Error::TooManyHeaders) => return Some(Head::TooLarge),
            Err(_) => return Some(Head::Malformed),
        }
        match weir_core::io_deadline::read_before(stream, &mut buf[filled..], deadline) {
            Ok(0) | Err(_) => return None,
            Ok(n) => filled += n,
        }
    }
}

fn serve(mut stream: TcpStream, render: &Render) {
    match read_head(&mut stream) {
        None => {}
        Some(Head::TooLarge) => answer(stream, 431, "request header fields too large\n"),
        Some(Head::Malformed) => answer(stream, 400, "not an HTTP request\n"),
        Some(Head::Request { get: false, .. }) => answer(stream, 405, "use GET /metrics\n"),
        Some(Head::Request { path, .. }) => {
            // The path without its query string.
            match path.split('?').next() {
                Some("/metrics") => answer(stream, 200, &render()),
                _ => answer(stream, 404, "not found: try /metrics\n"),
            }
        }
    }
}

fn answer(mut stream: TcpStream, status: u16, body: &str) {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        _ => "Service Unavailable",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream
        .write_all(head.as_bytes())
        .and_then(|_| stream.write_all(body.as_bytes()))
        .and_then(|_| stream.flush());
    let _ = stream.shutdown(std::net::Shutdown::Write);
    // Let the client read the answer before the socket closes (a close with unread request
    // bytes would reset the connection).
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let _ = stream.read(&mut [0u8; 1024]);
}
