//! Organizations and contacts: create them, and find contacts by e-mail or phone.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::body::JsonObject;
use crate::Shared;
use crate::error::ApiError;
use crate::records::NewContact;

pub async fn create_organization(
    State(shared): State<Arc<Shared>>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let name = JsonObject::parse(&body)?.required_text("name")?;
    let organization = shared.lock().records.add_organization(name);
    Ok((StatusCode::CREATED, Json(json!(organization))))
}

pub async fn create(State(shared): State<Arc<Shared>>, body: Bytes) -> Result<(StatusCode, Json<Value>), ApiError> {
    let fields = JsonObject::parse(&body)?;
    let new = NewContact {
        name: fields.required_text("name")?,
        email: fields.optional_text("email")?,
        phone: fields.optional_text("phone")?,
        organization_id: fields.optional_id("organization_id")?,
    };
    let mut state = shared.lock();
    if new.organization_id.is_some_and(|id| !state.records.organizations.contains_key(&id)) {
        return Err(ApiError::invalid("organization_id", "names no organization"));
    }
    let contact = state.records.add_contact(new);
    Ok((StatusCode::CREATED, Json(json!(contact))))
}

#[derive(Debug, Deserialize)]
pub struct ContactSearch {
    email: Option<String>,
    phone: Option<String>,
}

/// Without filters every contact is listed; a filter given empty is refused rather than
/// read as "no filter", so a client that lost a value does not get someone else's contact.
pub async fn search(
    State(shared): State<Arc<Shared>>,
    Query(search): Query<ContactSearch>,
) -> Result<Json<Value>, ApiError> {
    for (field, value) in [("email", &search.email), ("phone", &search.phone)] {
        if value.as_deref().is_some_and(|value| value.trim().is_empty()) {
            return Err(ApiError::invalid(field, "may not be empty"));
        }
    }
    let found = shared.lock().records.find_contacts(search.email.as_deref(), search.phone.as_deref());
    Ok(Json(json!({"items": found})))
}
