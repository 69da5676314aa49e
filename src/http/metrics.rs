//! `GET /metrics` for a Prometheus server behind `[admin] metrics_token`, and the count of every request by route.

use std::time::Instant;

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

/// Counts the request under its route's template (`/api/v1/leads/{id}`), so that neither ids
/// nor keys in paths become labels.
pub async fn count(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map(|path| path.as_str().to_owned());
    let method = request.method().clone();
    let started = Instant::now();
    let response = next.run(request).await;
    if let Some(route) = route {
        crate::metrics::http_request(&route, method.as_str(), response.status().as_u16(), started.elapsed());
    }
    response
}
