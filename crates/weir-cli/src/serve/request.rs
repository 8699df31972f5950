//! One HTTP request: its body read within the limits, then answered by the routes, with a
//! panic in a route answered 500 instead of taking the connection (or the server) down.

use std::convert::Infallible;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Body, Incoming};
use hyper::{Request, Response};

use super::answer::Answer;
use super::server::Server;

/// Answers `request`; `overloaded` connections get 503 without their body being read.
pub(super) async fn handle(
    server: &Server,
    request: Request<Incoming>,
    overloaded: bool,
) -> Result<Response<Full<Bytes>>, Infallible> {
    server.stats.requests.fetch_add(1, Ordering::Relaxed);
    let answer = if overloaded {
        Answer::error(
            503,
            format!(
                "too many connections (--max-connections {}); try again",
                server.limits.max_connections
            ),
        )
    } else {
        answer(server, request).await
    };
    if answer.status >= 400 {
        server.stats.errors.fetch_add(1, Ordering::Relaxed);
    }
    Ok(answer.into_response())
}

async fn answer(server: &Server, request: Request<Incoming>) -> Answer {
    let (head, body) = request.into_parts();
    let body = match read_body(server, body).await {
        Ok(body) => body,
        Err(answer) => return answer,
    };
    let (method, path) = (head.method.as_str(), head.uri.path());
    catch_unwind(AssertUnwindSafe(|| (server.handler)(method, path, &body))).unwrap_or_else(
        |panic| {
            let why = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            stderr_line!("weir serve: answering {method} {path} panicked: {why}");
            Answer::error(
                500,
                format!("internal error while answering {method} {path}: {why}"),
            )
        },
    )
}

/// The whole body as UTF-8, or the error answer: 413 past the size limit, 408 past the
/// body timeout, 400 for a broken or non-UTF-8 body.
async fn read_body(server: &Server, body: Incoming) -> Result<String, Answer> {
    let max = server.limits.max_body;
    let too_large = || {
        Answer::error(
            413,
            format!("the request body is larger than the limit of {max} bytes"),
        )
    };
    if body.size_hint().lower() > max as u64 {
        return Err(too_large());
    }
    let timeout = server.limits.body_timeout;
    let bytes = match tokio::time::timeout(timeout, Limited::new(body, max).collect()).await {
        Err(_) => {
            return Err(Answer::error(
                408,
                format!(
                    "the request body did not arrive within {} ms",
                    timeout.as_millis()
                ),
            ))
        }
        Ok(Err(e)) if e.is::<LengthLimitError>() => return Err(too_large()),
        Ok(Err(e)) => {
            return Err(Answer::bad_request(format!(
                "cannot read the request body: {e}"
            )))
        }
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    String::from_utf8(Vec::from(bytes))
        .map_err(|e| Answer::bad_request(format!("the request body is not UTF-8: {e}")))
}
