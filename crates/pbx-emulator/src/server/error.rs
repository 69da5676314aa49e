//! Every refusal of the provider APIs, and the one place each becomes a response in its provider's shape.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug)]
pub(crate) enum ApiError {
    /// Telphin: no bearer token, or one that is unknown or expired.
    Unauthorized,
    /// Telphin's token endpoint: wrong client id or secret.
    InvalidClient,
    UnsupportedGrant,
    /// Telphin: a body the API cannot use.
    Invalid(String),
    NotFound(&'static str),
    /// Zadarma's `{"status":"error","message":…}`.
    Zadarma(StatusCode, String),
    /// Mango's `{"result": code}` with a code from its result table.
    Mango(StatusCode, u32),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                Json(json!({"message": "Authentication credentials were not provided or expired."})),
            )
                .into_response(),
            ApiError::InvalidClient => {
                (StatusCode::UNAUTHORIZED, Json(json!({"error": "invalid_client"}))).into_response()
            }
            ApiError::UnsupportedGrant => {
                (StatusCode::BAD_REQUEST, Json(json!({"error": "unsupported_grant_type"}))).into_response()
            }
            ApiError::Invalid(message) => (StatusCode::BAD_REQUEST, Json(json!({"message": message}))).into_response(),
            ApiError::NotFound(what) => {
                (StatusCode::NOT_FOUND, Json(json!({"message": format!("{what} not found")}))).into_response()
            }
            ApiError::Zadarma(status, message) => {
                (status, Json(json!({"status": "error", "message": message}))).into_response()
            }
            ApiError::Mango(status, code) => (status, Json(json!({"result": code}))).into_response(),
        }
    }
}
