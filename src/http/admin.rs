//! Operators' endpoints, behind `[admin] token`: re-sending a dead lead.

use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use super::AppState;
use super::error::ApiError;
use super::source_auth::authorization;
use crate::domain::LeadId;
use crate::store::Requeue;

/// A request carrying the configured admin token as `Authorization: Bearer`. Without an
/// `[admin] token` in the configuration, every admin request is refused.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let presented = authorization(&parts.headers, "Bearer")?.ok_or(ApiError::AdminUnauthorized)?;
        let expected = state.admin_token.as_ref().ok_or(ApiError::AdminUnauthorized)?;
        if bool::from(expected.expose_secret().as_bytes().ct_eq(presented.as_bytes())) {
            Ok(Self)
        } else {
            Err(ApiError::AdminUnauthorized)
        }
    }
}

/// `POST /api/v1/leads/{id}/retry`: a dead lead back in the queue, or a pending one that waits
/// for its next attempt, due now.
pub async fn retry(State(state): State<AppState>, _: Admin, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let id = id.parse::<i64>().map(LeadId).map_err(|_| ApiError::NotFound)?;
    match state.store.resend(id, "api").await? {
        Requeue::Queued => Ok(Json(json!({ "id": id, "status": "pending" }))),
        Requeue::WrongStatus(status) => Err(ApiError::Conflict(format!(
            "заявка {id} в статусе {}; повторно отправляются только dead и pending",
            status.as_str()
        ))),
        Requeue::NotFound => Err(ApiError::NotFound),
    }
}
