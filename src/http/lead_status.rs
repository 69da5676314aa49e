//! Report: `GET /api/v1/leads/{id}`, a lead's status, outcome and history for its own source (or an operator).

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use super::AppState;
use super::admin::LeadReader;
use super::error::ApiError;
use crate::domain::{HistoryEvent, Lead, LeadId, LeadStatus};

/// A lead's status, outcome and history, for the source that sent it or an operator.
#[utoipa::path(get, path = "/api/v1/leads/{id}", tag = "partner",
    security(("source_key" = []), ("source_key_header" = []), ("source_key_query" = []), ("admin_token" = [])),
    params(("id" = i64, Path)),
    responses(
        (status = 200, description = "Fields, status, outcome and the full history"),
        (status = 401, description = "No key", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No lead of that id for this caller", body = crate::http::openapi::ErrorBody),
    ))]
pub async fn show(
    State(state): State<AppState>,
    reader: LeadReader,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = id.parse::<i64>().map(LeadId).map_err(|_| ApiError::NotFound)?;
    // Another source's lead answers exactly like a missing one, so ids reveal nothing.
    let readable = |lead: &Lead| match &reader {
        LeadReader::Source(source) => &lead.fields.source == source,
        LeadReader::Operator => true,
    };
    let lead = state.store.find_lead(id).await?.filter(readable).ok_or(ApiError::NotFound)?;
    let history = state.store.history(id).await?;
    Ok(Json(report(&lead, &history)))
}

/// A lead as operators and senders read it: fields, status, outcome and full history.
pub fn report(lead: &Lead, history: &[HistoryEvent]) -> Value {
    let fields = &lead.fields;
    let outcome = lead.outcome.as_ref().map(|outcome| {
        json!({
            "decision": outcome.decision,
            "unique": outcome.decision.is_unique_client(),
            "contact_id": outcome.contact().map(|contact| contact.record.id_json()),
            "deal_id": outcome.deal().map(|deal| deal.record.id_json()),
            "deal_number": outcome.deal().and_then(|deal| deal.record.number.as_ref()),
            "entities": outcome.entities,
        })
    });
    let waiting = matches!(lead.status, LeadStatus::Pending);
    json!({
        "id": lead.id,
        "source": fields.source,
        "status": lead.status,
        "outcome": outcome,
        "name": fields.name,
        "phone": fields.phone.e164(),
        "phone_raw": fields.phone.raw(),
        "email": fields.email.as_ref().map(|email| email.as_str()),
        "comment": fields.comment,
        "callback_url": fields.callback_url,
        "failed_attempts": lead.attempt,
        "next_attempt_at": waiting.then_some(lead.run_at),
        "last_error": lead.last_error,
        "created_at": lead.created_at,
        "updated_at": lead.updated_at,
        "erased": lead.erased_at.is_some(),
        "erased_at": lead.erased_at,
        "received": fields.payload,
        "history": history,
    })
}
