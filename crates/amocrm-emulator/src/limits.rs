//! The gate in front of the API: request log, rate window, latency, faults and bearer auth.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::problem::{Problem, fault_response, html_page, with_content_type};
use crate::traffic::Fault;
use crate::{API_PREFIX, Shared};

const OAUTH_PREFIX: &str = "/oauth2";

/// Runs every API and token-endpoint request through the checks in the order a real
/// deployment applies them: the proxy's rate limit, the network's latency, a failing
/// upstream (fault), then the API's own token check.
pub async fn gate(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let is_api = path.starts_with(API_PREFIX);
    if !is_api && !path.starts_with(OAUTH_PREFIX) {
        return next.run(request).await;
    }
    let method = request.method().as_str().to_owned();
    let logged_path = request
        .uri()
        .path_and_query()
        .map_or_else(|| path.clone(), |path_and_query| path_and_query.as_str().to_owned());
    let (entry, admitted, latency) = {
        let mut state = shared.lock();
        let entry = state.traffic.open_entry(&method, &logged_path, shared.elapsed_ms());
        let limit = shared.config.requests_per_second;
        let admitted = !is_api || state.traffic.admit(Instant::now(), limit);
        (entry, admitted, state.traffic.latency_for(&method, &path))
    };
    let response = if admitted {
        // Dropping this future mid-sleep (client gone) leaves the log entry at 499 and
        // writes nothing, which is what a timed-out client of the real API can rely on.
        if let Some(delay) = latency {
            tokio::time::sleep(delay).await;
        }
        let fault = shared.lock().traffic.take_fault(&path, Instant::now());
        match fault {
            Some(fault) => fault_answer(&shared, &fault),
            None if is_api && !authorized(&shared, request.headers()) => Problem::Unauthorized.into_response(),
            None => next.run(request).await,
        }
    } else {
        too_many_requests(&shared)
    };
    let status = response.status().as_u16();
    shared.lock().traffic.close_entry(entry, status);
    tracing::debug!(%method, path = %logged_path, status, "amoCRM emulator answered");
    response
}

fn authorized(shared: &Shared, headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Some((scheme, token)) = value.split_once(' ') else {
        return false;
    };
    scheme.eq_ignore_ascii_case("bearer") && shared.lock().tokens.accepts(token.trim(), Instant::now())
}

fn too_many_requests(shared: &Shared) -> Response {
    let status = StatusCode::TOO_MANY_REQUESTS;
    let response = with_content_type(status, "text/html", html_page(status));
    with_retry_after(shared, response)
}

fn fault_answer(shared: &Shared, fault: &Fault) -> Response {
    let status = StatusCode::from_u16(fault.status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let response = fault_response(status, fault.body.as_deref());
    if status == StatusCode::TOO_MANY_REQUESTS { with_retry_after(shared, response) } else { response }
}

fn with_retry_after(shared: &Shared, mut response: Response) -> Response {
    if let Some(seconds) = shared.config.retry_after_seconds {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}
