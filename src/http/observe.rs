//! Every request counted and logged once, by route template, and `GET /metrics` for a Prometheus server behind `[admin] metrics_token`.

use std::time::Instant;

use tracing::Instrument;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use subtle::ConstantTimeEq;

use super::AppState;
use super::error::ApiError;
use super::source_auth::authorization;

/// The Prometheus text format's content type.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Everything counted so far, with the queue and the outbox counted now.
#[utoipa::path(get, path = "/metrics", tag = "monitoring", security(("metrics_token" = [])),
    responses(
        (status = 200, description = "The Prometheus text format", content_type = "text/plain"),
        (status = 401, description = "No metrics token, or a wrong one", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "Metrics are off: no `[admin] metrics_token`", body = crate::http::openapi::ErrorBody),
    ))]
pub async fn render(State(state): State<AppState>, request: Request) -> Result<Response, ApiError> {
    let expected = state.metrics_token.as_ref().ok_or(ApiError::MetricsOff)?;
    let presented = authorization(request.headers(), "Bearer")?.ok_or(ApiError::MetricsUnauthorized)?;
    if !bool::from(expected.expose_secret().as_bytes().ct_eq(presented.as_bytes())) {
        return Err(ApiError::MetricsUnauthorized);
    }
    let (leads, outbox) = state.store.queue_counts().await?;
    let sources: Vec<&str> = state.source_keys.0.iter().map(|source| source.id.0.as_str()).collect();
    crate::metrics::queue(&sources, &leads, &outbox);
    let text = crate::metrics::install().render();
    Ok(([(header::CONTENT_TYPE, TEXT_FORMAT)], text).into_response())
}

/// Counts the request and writes its access-log line under its route's template
/// (`/api/v1/leads/{id}`): neither ids nor keys in paths and queries reach a label or a log.
/// The line carries the source the request was for, once a handler has named it
/// (`telemetry::note_source`).
pub async fn count_and_log(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str).to_owned();
    let method = request.method().clone();
    let span = tracing::info_span!("request", %method, %route, source = tracing::field::Empty);
    let started = Instant::now();
    let response = next.run(request).instrument(span.clone()).await;
    let took = started.elapsed();
    let status = response.status().as_u16();
    crate::metrics::http_request(&route, method.as_str(), status, took);
    let duration_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
    span.in_scope(|| tracing::info!(target: "leadgate::access", status, duration_ms, "answered"));
    response
}
