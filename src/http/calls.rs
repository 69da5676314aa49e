//! Operators' view of calls, behind `[admin] token`: one call with its events, or a client's calls.

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::admin::Admin;
use super::error::ApiError;
use super::lead_status::report;
use crate::domain::{Lead, LeadId, Phone};

/// The most calls one answer lists.
const LIMIT: usize = 100;

/// `GET /api/v1/calls/{id}`: the call (a telephony source's lead) with its decision, CRM calls,
/// history, and the PBX's events as they arrived.
pub async fn show(State(state): State<AppState>, _: Admin, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let id = id.parse::<i64>().map(LeadId).map_err(|_| ApiError::NotFound)?;
    let lead = state.store.find_lead(id).await?.filter(|lead| lead.fields.call.is_some()).ok_or(ApiError::NotFound)?;
    let history = state.store.history(id).await?;
    let events = state.store.call_events_of_lead(id).await?;
    let mut body = call_report(&lead, report(&lead, &history));
    body["events"] =
        events.into_iter().map(|stored| json!({ "received_at": stored.received_at, "event": stored.event })).collect();
    Ok(Json(body))
}

#[derive(Deserialize)]
pub struct ByPhone {
    phone: String,
}

/// `GET /api/v1/calls?phone=…`: the client's calls, newest first; the number in any spelling.
pub async fn by_phone(
    State(state): State<AppState>,
    _: Admin,
    Query(query): Query<ByPhone>,
) -> Result<Json<Value>, ApiError> {
    let phone =
        Phone::parse(&query.phone, state.phone_region).map_err(|error| ApiError::Invalid(format!("phone: {error}")))?;
    let calls = state.store.calls_of_phone(phone.e164(), LIMIT).await?;
    let listed: Vec<Value> = calls.iter().map(|lead| call_report(lead, report(lead, &[]))).collect();
    Ok(Json(json!({ "phone": phone.e164(), "calls": listed })))
}

/// A lead's report with its call's record beside it.
fn call_report(lead: &Lead, mut body: Value) -> Value {
    body["call"] = json!(lead.fields.call);
    if body["history"].as_array().is_some_and(Vec::is_empty) {
        body.as_object_mut().map(|object| object.remove("history"));
    }
    body
}
