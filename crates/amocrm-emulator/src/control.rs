//! The control API under `/_emulator`: inspect state, inject faults and latency, seed, reset.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::hal;
use crate::catalog::SUBDOMAIN;
use crate::seed::{self, SeedContact};
use crate::state::Crm;
use crate::traffic::{Fault, FaultLimit, Latency};
use crate::{Emulator, Shared};

pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_emulator/state", get(state))
        .route("/_emulator/requests", get(requests))
        .route("/_emulator/stats", get(stats))
        .route("/_emulator/faults", post(add_fault).delete(clear_faults))
        .route("/_emulator/latency", post(set_latency))
        .route("/_emulator/tokens/expire", post(expire_tokens))
        .route("/_emulator/contacts", post(seed_contact))
        .route("/_emulator/reset", post(reset))
}

/// The whole account, with every relation expanded, for assertions and demos.
pub fn snapshot(crm: &Crm) -> Value {
    let base = format!("https://{SUBDOMAIN}.amocrm.ru");
    let pipelines: Vec<Value> = crm.pipelines.iter().map(|p| hal::pipeline(&base, p)).collect();
    let contacts: Vec<Value> = crm.contacts.values().map(|contact| hal::contact(crm, &base, contact, true)).collect();
    let leads: Vec<Value> = crm.leads.values().map(|lead| hal::lead(crm, &base, lead, true)).collect();
    let companies: Vec<Value> = crm.companies.values().map(|c| hal::company(crm, &base, c)).collect();
    let notes: Vec<Value> = crm.notes.values().map(|note| hal::note(crm, &base, note)).collect();
    let users: Vec<Value> =
        crm.users.iter().enumerate().map(|(index, user)| hal::user(&base, user, index == 0)).collect();
    json!({
        "account": hal::account(crm, &base),
        "users": users,
        "pipelines": pipelines,
        "contacts": contacts,
        "leads": leads,
        "companies": companies,
        "notes": notes,
    })
}

/// Control requests travel without the gate, so they carry the emulator handle directly.
fn emulator(shared: Arc<Shared>) -> Emulator {
    Emulator::from_shared(shared)
}

fn rejected(message: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": message.into()}))).into_response()
}

async fn state(State(shared): State<Arc<Shared>>) -> Json<Value> {
    Json(snapshot(&shared.lock().crm))
}

async fn requests(State(shared): State<Arc<Shared>>) -> Json<Value> {
    Json(json!(emulator(shared).requests()))
}

async fn stats(State(shared): State<Arc<Shared>>) -> Json<Value> {
    Json(emulator(shared).stats())
}

#[derive(Debug, Deserialize)]
struct FaultRequest {
    status: u16,
    count: Option<u32>,
    seconds: Option<f64>,
    body: Option<String>,
    path_prefix: Option<String>,
}

/// Without `count` or `seconds` a fault lasts until `DELETE /_emulator/faults`.
async fn add_fault(State(shared): State<Arc<Shared>>, Json(request): Json<FaultRequest>) -> Response {
    if !(100..=599).contains(&request.status) {
        return rejected("status must be an HTTP status code");
    }
    let limit = match (request.count, request.seconds) {
        (Some(_), Some(_)) => return rejected("give either count or seconds, not both"),
        (Some(count), None) => FaultLimit::Count(count),
        (None, Some(seconds)) => match Duration::try_from_secs_f64(seconds) {
            Ok(duration) => FaultLimit::For(duration),
            Err(_) => return rejected("seconds must be a non-negative number"),
        },
        (None, None) => FaultLimit::UntilCleared,
    };
    emulator(shared).inject_fault(Fault {
        status: request.status,
        limit,
        body: request.body,
        path_prefix: request.path_prefix,
    });
    StatusCode::NO_CONTENT.into_response()
}

async fn clear_faults(State(shared): State<Arc<Shared>>) -> StatusCode {
    emulator(shared).clear_faults();
    StatusCode::NO_CONTENT
}

#[derive(Debug, Deserialize)]
struct LatencyRequest {
    millis: u64,
    path_prefix: Option<String>,
    method: Option<String>,
}

async fn set_latency(State(shared): State<Arc<Shared>>, Json(request): Json<LatencyRequest>) -> StatusCode {
    emulator(shared).set_latency(Some(Latency {
        delay: Duration::from_millis(request.millis),
        path_prefix: request.path_prefix,
        method: request.method,
    }));
    StatusCode::NO_CONTENT
}

#[derive(Debug, Default, Deserialize)]
struct ExpireRequest {
    #[serde(default)]
    include_long_lived: bool,
}

/// The body is optional: an empty POST expires the OAuth access tokens only.
async fn expire_tokens(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let request = if body.iter().all(u8::is_ascii_whitespace) {
        ExpireRequest::default()
    } else {
        match serde_json::from_slice::<ExpireRequest>(&body) {
            Ok(request) => request,
            Err(error) => return rejected(error.to_string()),
        }
    };
    emulator(shared).expire_access_tokens(request.include_long_lived);
    StatusCode::NO_CONTENT.into_response()
}

async fn seed_contact(State(shared): State<Arc<Shared>>, Json(request): Json<SeedContact>) -> Response {
    match seed::seed(&mut shared.lock().crm, &request) {
        Ok(seeded) => Json(json!(seeded)).into_response(),
        Err(error) => rejected(error.to_string()),
    }
}

async fn reset(State(shared): State<Arc<Shared>>) -> StatusCode {
    emulator(shared).reset();
    StatusCode::NO_CONTENT
}
