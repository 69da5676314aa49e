//! Tickets (with their human numbers) and the messages posted to them.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::body::JsonObject;
use super::parse_id;
use crate::Shared;
use crate::error::ApiError;
use crate::records::NewTicket;

pub async fn create(State(shared): State<Arc<Shared>>, body: Bytes) -> Result<(StatusCode, Json<Value>), ApiError> {
    let fields = JsonObject::parse(&body)?;
    let new = NewTicket {
        service: fields.required_text("service")?,
        subject: fields.required_text("subject")?,
        description: fields.optional_text("description")?.unwrap_or_default(),
        contact_id: fields.required_id("contact_id")?,
        partner_id: fields.optional_id("partner_id")?,
    };
    let mut state = shared.lock();
    if !state.records.contacts.contains_key(&new.contact_id) {
        return Err(ApiError::invalid("contact_id", "names no contact"));
    }
    if new.partner_id.is_some_and(|id| !state.records.organizations.contains_key(&id)) {
        return Err(ApiError::invalid("partner_id", "names no organization"));
    }
    let ticket = state.records.add_ticket(new);
    Ok((StatusCode::CREATED, Json(json!(ticket))))
}

pub async fn show(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id, "ticket")?;
    let state = shared.lock();
    let ticket = state.records.tickets.get(&id).ok_or(ApiError::NotFound("ticket"))?;
    Ok(Json(json!(ticket)))
}

/// An unknown ticket is a 404 before the body is looked at, as route-model binding does.
pub async fn add_message(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let ticket_id = parse_id(&id, "ticket")?;
    if !shared.lock().records.tickets.contains_key(&ticket_id) {
        return Err(ApiError::NotFound("ticket"));
    }
    let text = JsonObject::parse(&body)?.required_text("text")?;
    let message = shared.lock().records.add_message(ticket_id, text).ok_or(ApiError::NotFound("ticket"))?;
    Ok((StatusCode::CREATED, Json(json!({"id": message.id, "ticket_id": ticket_id, "text": message.text}))))
}
