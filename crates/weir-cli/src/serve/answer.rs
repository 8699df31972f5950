//! What a route answers: a status and a body with its content type.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use serde_json::{json, Value};

/// An HTTP answer: status and JSON (or another body with its content type).
pub(super) struct Answer {
    /// The HTTP status code.
    pub status: u16,
    /// The body.
    pub body: String,
    /// The body's `Content-Type`.
    pub content_type: &'static str,
}

impl Answer {
    /// `body` as JSON.
    pub fn json(status: u16, body: Value) -> Answer {
        Answer {
            status,
            body: body.to_string(),
            content_type: "application/json",
        }
    }

    /// `{"error": message}`.
    pub fn error(status: u16, message: impl Into<String>) -> Answer {
        Answer::json(status, json!({ "error": message.into() }))
    }

    /// 400 with `{"error": message}`.
    pub fn bad_request(message: impl Into<String>) -> Answer {
        Answer::error(400, message)
    }

    /// Prometheus text of `metrics`: `(name, counter|gauge, help, value)` each.
    pub fn prometheus(metrics: &[(&str, &str, &str, u64)]) -> Answer {
        let mut body = String::new();
        for (name, kind, help, value) in metrics {
            body += &format!("# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n");
        }
        Answer {
            status: 200,
            body,
            content_type: "text/plain; version=0.0.4; charset=utf-8",
        }
    }

    /// The hyper response.
    pub fn into_response(self) -> Response<Full<Bytes>> {
        let mut response = Response::new(Full::new(Bytes::from(self.body)));
        *response.status_mut() =
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(self.content_type));
        response
    }
}
