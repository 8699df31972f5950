//! A small HTTP endpoint for a running job's metrics: `GET /metrics` in Prometheus' text
//! format, rendered on each request.

use std::sync::Arc;
use std::thread::JoinHandle;

/// Serves `/metrics` until dropped.
pub struct MetricsServer {
    server: Arc<tiny_http::Server>,
    address: String,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Listens on `address` (`host:port`; port 0 picks a free one) and answers `GET /metrics`
    /// with `render()`.
    pub fn start(
        address: &str,
        render: impl Fn() -> String + Send + Sync + 'static,
    ) -> std::io::Result<MetricsServer> {
        let server = tiny_http::Server::http(address)
            .map(Arc::new)
            .map_err(|e| std::io::Error::other(format!("metrics endpoint on {address}: {e}")))?;
        let address = server
            .server_addr()
            .to_ip()
            .map_or_else(|| address.to_string(), |a| a.to_string());
        let requests = Arc::clone(&server);
        let thread = std::thread::Builder::new()
            .name("weir-metrics".into())
            .spawn(move || {
                for request in requests.incoming_requests() {
                    let response = if request.url() == "/metrics" {
                        let content_type = tiny_http::Header::from_bytes(
                            "Content-Type",
                            "text/plain; version=0.0.4; charset=utf-8",
                        )
                        .expect("a valid header");
                        tiny_http::Response::from_string(render()).with_header(content_type)
                    } else {
                        tiny_http::Response::from_string("not found: try /metrics\n")
                            .with_status_code(404)
                    };
                    let _ = request.respond(response);
                }
            })?;
        Ok(MetricsServer {
            server,
            address,
            thread: Some(thread),
        })
    }

    /// `host:port` the endpoint listens on.
    pub fn address(&self) -> &str {
        &self.address
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
