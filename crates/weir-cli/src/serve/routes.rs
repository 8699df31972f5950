//! The routes of `weir serve`: the page, predictions, the stored versions and the metrics.

use std::sync::atomic::Ordering;

use serde_json::json;

use super::answer::Answer;
use super::predict::predict;
use super::state::Serving;

/// The digit-drawing page served at `/`.
const PAGE: &str = include_str!("page.html");

/// Answers `method path` with `body` (the request body, already read whole).
pub(super) fn route(serving: &Serving, method: &str, path: &str, body: &str) -> Answer {
    match (method, path) {
        ("GET", "/") => Answer {
            status: 200,
            body: PAGE.to_string(),
            content_type: "text/html; charset=utf-8",
        },
        ("POST", "/predict") => predict(serving, body),
        ("GET", "/models") => match serving.versions() {
            Ok(versions) => Answer::json(
                200,
                json!({"versions": versions, "serving": serving.version()}),
            ),
            Err(e) => Answer::error(500, e.to_string()),
        },
        ("GET", "/metrics") => metrics(serving),
        (_, "/predict") => Answer::error(405, "use POST /predict"),
        _ => Answer::error(
            404,
            format!(
                "no route {method} {path}; try GET /, POST /predict, GET /models, GET /metrics"
            ),
        ),
    }
}

/// Prometheus text: request, error, prediction, reload and connection counters.
fn metrics(serving: &Serving) -> Answer {
    let mut metrics = serving.http.metrics().to_vec();
    metrics.extend([
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
    ]);
    Answer::prometheus(&metrics)
}
