//! The HTTP/1 server under `weir serve`: hyper on tokio, with every phase of a connection
//! bounded (headers and keep-alive idling, the body, writing the answer), sizes capped
//! (headers, body) and at most `max_connections` connections served at once.

use std::convert::Infallible;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::answer::Answer;
use super::request;
use super::stall_limit::StallLimit;

/// Connections past `max_connections` that are still answered 503 at the same time; more
/// are closed unanswered.
const MAX_TURNING_AWAY: usize = 64;
/// How long a closed connection keeps reading (and dropping) what the client still sends,
/// so that the client sees the answer (say a 413) rather than a reset.
const LINGER: Duration = Duration::from_secs(1);
/// Bytes read at most while lingering.
const LINGER_BYTES: usize = 1 << 20;
/// The pause after a failed `accept` (for instance when out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The bounds every connection is held to.
#[derive(Clone, Debug)]
pub(super) struct Limits {
    /// Connections served at once; more are answered 503.
    pub max_connections: usize,
    /// Time to send a request's headers, from the connection opening or the previous answer
    /// (so it also closes idle keep-alive connections).
    pub header_timeout: Duration,
    /// Time to send a request's body once its headers are in; also how long writing an
    /// answer may make no progress.
    pub body_timeout: Duration,
    /// Largest request body, in bytes (413 past it).
    pub max_body: usize,
    /// Largest request head (request line and headers), in bytes (431 past it).
    pub max_header: usize,
}

/// What the HTTP layer counts.
#[derive(Debug, Default)]
pub(super) struct HttpStats {
    /// Requests.
    pub requests: AtomicU64,
    /// Requests answered with a status of 400 or more.
    pub errors: AtomicU64,
    /// Connections being served.
    pub connections_open: AtomicU64,
    /// Connections turned away at the connection cap.
    pub connections_rejected: AtomicU64,
}

impl HttpStats {
    /// The counters as Prometheus metrics: `(name, counter|gauge, help, value)`.
    pub fn metrics(&self) -> [(&'static str, &'static str, &'static str, u64); 4] {
        [
            (
                "weir_serve_requests_total",
                "counter",
                "HTTP requests.",
                self.requests.load(Ordering::Relaxed),
            ),
            (
                "weir_serve_errors_total",
                "counter",
                "Requests answered with an error.",
                self.errors.load(Ordering::Relaxed),
            ),
            (
                "weir_serve_connections_open",
                "gauge",
                "Connections being served (within --max-connections).",
                self.connections_open.load(Ordering::Relaxed),
            ),
            (
                "weir_serve_connections_rejected_total",
                "counter",
                "Connections turned away because --max-connections were open.",
                self.connections_rejected.load(Ordering::Relaxed),
            ),
        ]
    }
}

/// Answers a request from its method, path and whole body.
pub(super) type Handler = dyn Fn(&str, &str, &str) -> Answer + Send + Sync;

/// The server: its limits, counters and routes.
pub(super) struct Server {
    /// The bounds.
    pub limits: Limits,
    /// The counters.
    pub stats: Arc<HttpStats>,
    /// The routes.
    pub handler: Box<Handler>,
}

/// A connection's place: within the cap, or turned away with a 503; held until it closes.
struct Place {
    turned_away: bool,
    _permit: OwnedSemaphorePermit,
}

/// Counts a served connection as open until dropped.
struct Open(Arc<HttpStats>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.connections_open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Server {
    /// Accepts connections until the process stops.
    pub async fn run(self: Arc<Self>, listener: TcpListener) -> Infallible {
        let served = Arc::new(Semaphore::new(self.limits.max_connections));
        let turning_away = Arc::new(Semaphore::new(MAX_TURNING_AWAY));
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    stderr_line!("weir serve: cannot accept a connection: {e}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            };
            let place = match Arc::clone(&served).try_acquire_owned() {
                Ok(permit) => Place {
                    turned_away: false,
                    _permit: permit,
                },
                Err(_) => {
                    self.stats
                        .connections_rejected
                        .fetch_add(1, Ordering::Relaxed);
                    match Arc::clone(&turning_away).try_acquire_owned() {
                        Ok(permit) => Place {
                            turned_away: true,
                            _permit: permit,
                        },
                        Err(_) => continue, // dropping the stream closes it
                    }
                }
            };
            tokio::spawn(Arc::clone(&self).connection(stream, place));
        }
    }

    /// Serves one connection, then closes it gently.
    async fn connection(self: Arc<Self>, stream: TcpStream, place: Place) {
        let overloaded = place.turned_away;
        let _open = (!overloaded).then(|| {
            self.stats.connections_open.fetch_add(1, Ordering::Relaxed);
            Open(Arc::clone(&self.stats))
        });
        let _ = stream.set_nodelay(true);
        let linger = stream.as_fd().try_clone_to_owned().ok();
        let io = TokioIo::new(StallLimit::new(stream, self.limits.body_timeout));
        let server = Arc::clone(&self);
        let service = service_fn(move |request| {
            let server = Arc::clone(&server);
            async move { request::handle(&server, request, overloaded).await }
        });
        // Errors are the client's (timeouts, malformed requests, resets): hyper has answered
        // what can be answered (400, 431); nothing to report.
        let _ = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(self.limits.header_timeout)
            .max_header_size(self.limits.max_header)
            .keep_alive(!overloaded)
            .serve_connection(io, service)
            .await;
        if let Some(fd) = linger {
            linger_close(fd).await;
        }
        drop(place);
    }
}

/// Ends a connection whose other descriptor hyper has dropped: sends FIN after the answer,
/// then reads what the client still sends until it closes (or [`LINGER`] / [`LINGER_BYTES`]),
/// so that closing with unread request bytes does not reset the connection before the
/// client has read the answer.
async fn linger_close(fd: OwnedFd) {
    let stream = std::net::TcpStream::from(fd);
    let _ = stream.shutdown(std::net::Shutdown::Write);
    if stream.set_nonblocking(true).is_err() {
        return;
    }
    let Ok(stream) = TcpStream::from_std(stream) else {
        return;
    };
    let drain = async {
        let mut buffer = [0; 8192];
        let mut total = 0;
        while total < LINGER_BYTES && stream.readable().await.is_ok() {
            match stream.try_read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => total += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => break,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, drain).await;
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use serde_json::json;

    use super::*;

    /// `GET path` with `Connection: close`; the whole response.
    fn get(address: std::net::SocketAddr, path: &str) -> String {
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: weir\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    }

    /// The safety net on its own, independent of any model: a route that panics is answered
    /// 500 with a JSON error, as often as it panics, and the server goes on serving.
    #[test]
    fn a_panicking_route_is_answered_500_and_the_server_keeps_serving() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let address = listener.local_addr().unwrap();
        let server = Arc::new(Server {
            limits: Limits {
                max_connections: 8,
                header_timeout: Duration::from_secs(10),
                body_timeout: Duration::from_secs(10),
                max_body: 1 << 20,
                max_header: 16 << 10,
            },
            stats: Arc::default(),
            handler: Box::new(|_, path, _| match path {
                "/panic" => panic!("a bug in a route"),
                _ => Answer::json(200, json!({"ok": true})),
            }),
        });
        runtime.spawn(Arc::clone(&server).run(listener));
        for _ in 0..4 {
            let response = get(address, "/panic");
            assert!(response.starts_with("HTTP/1.1 500"), "{response}");
            assert!(
                response.ends_with(
                    r#"{"error":"internal error while answering GET /panic: a bug in a route"}"#
                ),
                "{response}"
            );
        }
        let response = get(address, "/fine");
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert_eq!(server.stats.errors.load(Ordering::Relaxed), 4);
    }
}
