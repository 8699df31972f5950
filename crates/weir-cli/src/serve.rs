//! `weir serve`: serves the newest model of a model store over HTTP (JSON), reloading it as
//! a training job checkpoints new versions, without dropping requests; or (`--model`) any
//! ONNX model over TensorFlow Serving's REST API and KServe's v2 protocol
//! (`model_serving/`).
//!
//! The HTTP layer is hyper's HTTP/1 server on a tokio runtime (`server.rs`), with every
//! phase of a connection bounded; `request.rs` reads a request within the limits and turns a
//! panicking route into a 500; `routes.rs` and `predict.rs` answer; `state.rs` holds the
//! served model.

mod answer;
mod model_serving;
mod predict;
mod request;
mod routes;
mod server;
mod stall_limit;
mod state;

use std::convert::Infallible;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use weir_ml::open_store;

use server::{Limits, Server};
use state::Serving;

/// Largest request body accepted, in bytes (a batch of about 30,000 digits).
const MAX_BODY: usize = 4 << 20;
/// Largest request head (request line and headers) accepted, in bytes.
const MAX_HEADER: usize = 16 << 10;

/// `weir serve`'s flags.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// The model store: a directory or `redis://host:port[/db]` (online learning's models).
    #[arg(long, required_unless_present = "model", conflicts_with = "model")]
    pub store: Option<String>,
    /// Any ONNX model: a `.onnx` file, or a `NAME/` directory of numbered `VERSION/`
    /// directories (TensorFlow Serving's layout; the highest version is served). Served at
    /// `/v1/models/NAME` (TensorFlow Serving REST) and `/v2/models/NAME` (KServe v2).
    #[arg(long)]
    pub model: Option<std::path::PathBuf>,
    /// The name clients use for `--model` (default: the file's or directory's name).
    #[arg(long)]
    pub name: Option<String>,
    /// Most rows of concurrent requests scored in one `Session::run` (`--model`).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_batch: u64,
    /// Microseconds the batcher waits for more requests before running a batch (`--model`).
    /// With 0 it runs what is queued at once; under load requests queue up while a batch
    /// runs, so batches grow by themselves.
    #[arg(long, default_value_t = 0)]
    pub batch_wait_us: u64,
    /// Most rows one request may hold (`--model`; more is 413).
    #[arg(long, default_value_t = 4096)]
    pub max_rows: usize,
    /// ONNX Runtime intra-op threads (`--model`).
    #[arg(long, default_value_t = 1)]
    pub intra_threads: usize,
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// How often to look for a newer model, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub reload_ms: u64,
    /// Request handler threads.
    #[arg(long, default_value_t = 4)]
    pub threads: usize,
    /// Connections served at once; a client past them is answered 503.
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// Milliseconds a client has to send a request's headers, from connecting or from the
    /// previous answer (so idle keep-alive connections are closed after it too).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub header_timeout_ms: u64,
    /// Milliseconds a client has to send a request's body once its headers are in (408 after
    /// it); also how long writing an answer may make no progress before the connection is
    /// dropped.
    #[arg(long, default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub body_timeout_ms: u64,
}

impl ServeArgs {
    fn limits(&self) -> Limits {
        Limits {
            max_connections: self.max_connections as usize,
            header_timeout: Duration::from_millis(self.header_timeout_ms),
            body_timeout: Duration::from_millis(self.body_timeout_ms),
            max_body: MAX_BODY,
            max_header: MAX_HEADER,
        }
    }
}

/// Polls the store for newer models every `every`, on a thread of its own (stores block).
fn spawn_reloader(serving: Arc<Serving>, every: Duration) {
    std::thread::spawn(move || loop {
        std::thread::sleep(every);
        if catch_unwind(AssertUnwindSafe(|| serving.reload())).is_err() {
            stderr_line!(
                "weir serve: reloading the model panicked; still serving the previous one"
            );
        }
    });
}

/// Serves until the process is stopped. Prints `serving on http://ADDRESS` first. Returns
/// only on an error (so the process exits non-zero).
pub fn serve(args: ServeArgs) -> Result<()> {
    let (server, start) = match (&args.store, &args.model) {
        (_, Some(model)) => {
            let serving = model_serving::ModelServingArgs {
                model,
                name: args.name.as_deref(),
                max_batch: args.max_batch as usize,
                batch_wait: Duration::from_micros(args.batch_wait_us),
                max_rows: args.max_rows,
                intra_threads: args.intra_threads,
            };
            (model_serving::server(&serving, args.limits())?, None)
        }
        (Some(store), None) => {
            let store = open_store(store)
                .with_context(|| format!("cannot open the model store {store}"))?;
            let serving = Arc::new(Serving::new(store));
            serving.reload();
            let reloading = Arc::clone(&serving);
            let server = Server {
                limits: args.limits(),
                stats: Arc::clone(&serving.http),
                handler: Box::new(move |method, path, body| {
                    routes::route(&serving, method, path, body)
                }),
            };
            (server, Some(reloading))
        }
        (None, None) => anyhow::bail!("give --store (a model store) or --model (an ONNX model)"),
    };
    let listener = std::net::TcpListener::bind(&args.listen)
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    listener.set_nonblocking(true)?;
    println!("serving on http://{}", listener.local_addr()?);
    if let Some(serving) = start {
        spawn_reloader(serving, Duration::from_millis(args.reload_ms));
    }
    let server = Arc::new(server);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .thread_name("weir-serve")
        .enable_all()
        .build()
        .context("cannot start the HTTP runtime")?;
    let stopped: Infallible = runtime.block_on(async {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        anyhow::Ok(server.run(listener).await)
    })?;
    match stopped {}
}
