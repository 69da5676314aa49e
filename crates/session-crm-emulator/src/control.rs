//! The control API under `/_control/`, without authentication: dump state, expire, rotate, fail, refuse, delay, reset.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{SessionCrm, Shared};

pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_control/state", get(state))
        .route("/_control/sessions/expire", post(expire_sessions))
        .route("/_control/csrf/rotate", post(rotate_csrf))
        .route("/_control/fail-next", post(fail_next))
        .route("/_control/refuse-next", post(refuse_next))
        .route("/_control/latency", post(set_latency))
        .route("/_control/reset", post(reset))
}

/// Control requests travel without the gate, so they carry the CRM handle directly.
fn crm(shared: Arc<Shared>) -> SessionCrm {
    SessionCrm { shared }
}

async fn state(State(shared): State<Arc<Shared>>) -> Json<Value> {
    Json(crm(shared).snapshot())
}

async fn expire_sessions(State(shared): State<Arc<Shared>>) -> StatusCode {
    crm(shared).expire_sessions();
    StatusCode::NO_CONTENT
}

async fn rotate_csrf(State(shared): State<Arc<Shared>>) -> StatusCode {
    crm(shared).rotate_csrf();
    StatusCode::NO_CONTENT
}

#[derive(Debug, Deserialize)]
struct FailNextRequest {
    count: u32,
    status: u16,
}

async fn fail_next(State(shared): State<Arc<Shared>>, Json(request): Json<FailNextRequest>) -> Response {
    match crm(shared).fail_next(request.count, request.status) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => (StatusCode::BAD_REQUEST, Json(json!({"message": error.to_string()}))).into_response(),
    }
}

/// The same body as `fail-next`, with a 4xx status.
async fn refuse_next(State(shared): State<Arc<Shared>>, Json(request): Json<FailNextRequest>) -> Response {
    match crm(shared).refuse_next(request.count, request.status) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => (StatusCode::BAD_REQUEST, Json(json!({"message": error.to_string()}))).into_response(),
    }
}

#[derive(Debug, Deserialize)]
struct LatencyRequest {
    millis: u64,
}

/// `{"millis": 0}` removes the latency.
async fn set_latency(State(shared): State<Arc<Shared>>, Json(request): Json<LatencyRequest>) -> StatusCode {
    crm(shared).set_latency(Duration::from_millis(request.millis));
    StatusCode::NO_CONTENT
}

async fn reset(State(shared): State<Arc<Shared>>) -> StatusCode {
    crm(shared).reset();
    StatusCode::NO_CONTENT
}
