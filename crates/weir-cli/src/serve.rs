//! `weir serve`: serves the newest model of a model store over HTTP (JSON), reloading it as
//! a training job checkpoints new versions, without dropping requests.

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{json, Value};
use weir_ml::{open_store, Checkpoint, ModelStore};

/// The digit-drawing page served at `/`.
const PAGE: &str = include_str!("serve_page.html");

/// Largest request body accepted.
const MAX_BODY: u64 = 4 << 20;

/// The model being served, swapped whole on reload.
struct Serving {
    store: Box<dyn ModelStore>,
    current: RwLock<Option<Arc<Checkpoint>>>,
    requests: AtomicU64,
    errors: AtomicU64,
    predictions: AtomicU64,
    reloads: AtomicU64,
}

impl Serving {
    /// Loads the newest checkpoint if it is newer than the one served.
    fn reload(&self) {
        let served = self.version();
        match self.store.latest() {
            Ok(Some(c)) if Some(c.version) > served => {
                eprintln!(
                    "weir serve: serving model v{} ({} records trained)",
                    c.version, c.records
                );
                *self.current.write().unwrap() = Some(Arc::new(c));
                self.reloads.fetch_add(1, Ordering::Relaxed);
            }
            Ok(_) => {}
            Err(e) => eprintln!("weir serve: cannot read the model store: {e}"),
        }
    }

    fn version(&self) -> Option<u64> {
        self.current.read().unwrap().as_ref().map(|c| c.version)
    }

    fn model(&self) -> Option<Arc<Checkpoint>> {
        self.current.read().unwrap().clone()
    }
}

/// An HTTP answer: status and JSON (or another body with its content type).
struct Answer {
    status: u16,
    body: String,
    content_type: &'static str,
}

fn json_answer(status: u16, body: Value) -> Answer {
    Answer {
        status,
        body: body.to_string(),
        content_type: "application/json",
    }
}

fn bad_request(message: impl Into<String>) -> Answer {
    json_answer(400, json!({ "error": message.into() }))
}

/// Reads one feature vector, checking it against the model.
fn features(value: &Value, what: &str, width: usize) -> Result<Vec<f32>, String> {
    let items = value
        .as_array()
        .ok_or_else(|| format!("{what} must be an array of {width} numbers"))?;
    if items.len() != width {
        return Err(format!(
            "{what} has {} values, the model expects {width}",
            items.len()
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, v)| match v.as_f64() {
            Some(f) if f.is_finite() => Ok(f as f32),
            _ => Err(format!("{what}[{i}] is {v}, expected a finite number")),
        })
        .collect()
}

fn predict(serving: &Serving, body: &str) -> Answer {
    let Some(checkpoint) = serving.model() else {
        return json_answer(503, json!({"error": "no model in the store yet"}));
    };
    let request: Value = match serde_json::from_str(body) {
        Ok(v) => v,
        Err(e) => return bad_request(format!("invalid JSON: {e}")),
    };
    let model = &checkpoint.model;
    let one = |x: &[f32]| {
        let p = model.probabilities(x);
        json!({"label": model.predict(x), "probabilities": p})
    };
    if let Some(x) = request.get("x") {
        return match features(x, "x", model.features) {
            Ok(x) => {
                serving.predictions.fetch_add(1, Ordering::Relaxed);
                let mut answer = one(&x);
                answer["model_version"] = json!(checkpoint.version);
                json_answer(200, answer)
            }
            Err(e) => bad_request(e),
        };
    }
    if let Some(batch) = request.get("instances") {
        let Some(rows) = batch.as_array() else {
            return bad_request("instances must be an array of feature arrays");
        };
        let mut predictions = Vec::with_capacity(rows.len());
        for (i, row) in rows.iter().enumerate() {
            match features(row, &format!("instances[{i}]"), model.features) {
                Ok(x) => predictions.push(one(&x)),
                Err(e) => return bad_request(e),
            }
        }
        serving
            .predictions
            .fetch_add(rows.len() as u64, Ordering::Relaxed);
        return json_answer(
            200,
            json!({"predictions": predictions, "model_version": checkpoint.version}),
        );
    }
    bad_request("expected {\"x\": [numbers]} or {\"instances\": [[numbers], …]}")
}

fn metrics(serving: &Serving) -> Answer {
    let mut body = String::new();
    for (name, kind, help, value) in [
        (
            "weir_serve_requests_total",
            "counter",
            "HTTP requests.",
            serving.requests.load(Ordering::Relaxed),
        ),
        (
            "weir_serve_errors_total",
            "counter",
            "Requests answered with an error.",
            serving.errors.load(Ordering::Relaxed),
        ),
        (
            "weir_serve_predictions_total",
            "counter",
            "Feature vectors scored.",
            serving.predictions.load(Ordering::Relaxed),
        ),
        (
            "weir_serve_reloads_total",
            "counter",
            "Models loaded from the store.",
            serving.reloads.load(Ordering::Relaxed),
        ),
        (
            "weir_serve_model_version",
            "gauge",
            "Version of the served model.",
            serving.version().unwrap_or(0),
        ),
    ] {
        body += &format!("# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n");
    }
    Answer {
        status: 200,
        body,
        content_type: "text/plain; version=0.0.4; charset=utf-8",
    }
}

fn route(serving: &Serving, method: &str, url: &str, body: &str) -> Answer {
    match (method, url) {
        ("GET", "/") => Answer {
            status: 200,
            body: PAGE.to_string(),
            content_type: "text/html; charset=utf-8",
        },
        ("POST", "/predict") => predict(serving, body),
        ("GET", "/models") => match serving.store.versions() {
            Ok(versions) => json_answer(
                200,
                json!({"versions": versions, "serving": serving.version()}),
            ),
            Err(e) => json_answer(500, json!({"error": e.to_string()})),
        },
        ("GET", "/metrics") => metrics(serving),
        (_, "/predict") => json_answer(405, json!({"error": "use POST /predict"})),
        _ => json_answer(
            404,
            json!({"error": format!("no route {method} {url}; try GET /, POST /predict, GET /models, GET /metrics")}),
        ),
    }
}

fn handle(serving: &Serving, mut request: tiny_http::Request) {
    serving.requests.fetch_add(1, Ordering::Relaxed);
    let mut body = String::new();
    let read = request.as_reader().take(MAX_BODY).read_to_string(&mut body);
    let answer = match read {
        Err(e) => bad_request(format!("cannot read the request body as UTF-8: {e}")),
        Ok(_) => route(serving, request.method().as_str(), request.url(), &body),
    };
    if answer.status >= 400 {
        serving.errors.fetch_add(1, Ordering::Relaxed);
    }
    let header =
        tiny_http::Header::from_bytes("Content-Type", answer.content_type).expect("a valid header");
    let response = tiny_http::Response::from_string(answer.body)
        .with_status_code(answer.status)
        .with_header(header);
    let _ = request.respond(response);
}

/// Serves until the process is stopped. Prints `serving on http://ADDRESS` first.
pub fn serve(store: &str, listen: &str, reload_every: Duration, threads: usize) -> Result<()> {
    let serving = Arc::new(Serving {
        store: open_store(store).with_context(|| format!("cannot open the model store {store}"))?,
        current: RwLock::new(None),
        requests: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        predictions: AtomicU64::new(0),
        reloads: AtomicU64::new(0),
    });
    serving.reload();
    let server = tiny_http::Server::http(listen)
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    let server = Arc::new(server);
    let address = server
        .server_addr()
        .to_ip()
        .map_or_else(|| listen.to_string(), |a| a.to_string());
    println!("serving on http://{address}");
    {
        let serving = Arc::clone(&serving);
        std::thread::spawn(move || loop {
            std::thread::sleep(reload_every);
            serving.reload();
        });
    }
    let handlers: Vec<_> = (0..threads.max(1))
        .map(|_| {
            let (server, serving) = (Arc::clone(&server), Arc::clone(&serving));
            std::thread::spawn(move || {
                while let Ok(request) = server.recv() {
                    handle(&serving, request);
                }
            })
        })
        .collect();
    for h in handlers {
        let _ = h.join();
    }
    Ok(())
}
