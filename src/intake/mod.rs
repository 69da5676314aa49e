//! Accept: channel endpoints that validate a lead, commit it, and answer at once (or once the CRM
//! answered, where the sender asked to wait).

pub mod calls;
pub mod form;
pub mod form_page;
pub mod limits;
pub mod partner;
pub mod proxy;
pub mod telephony;
mod variables;
pub mod wait;
pub mod zap;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use serde_json::{Map, Value};

use crate::http::error::ApiError;

/// The body, or the error that says why it could not be read.
fn read_body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
        _ => ApiError::Invalid(format!("тело запроса не прочитано: {rejection}")),
    })
}

/// Refuses a field holding a character that cannot be stored; the field's name is shown without
/// such characters, so the answer itself stays clean.
fn forbidden_char_error(field: &str, character: char) -> ApiError {
    ApiError::Invalid(format!(
        "{}: недопустимый управляющий символ {}",
        crate::domain::text::strip_forbidden(field),
        crate::domain::text::code(character)
    ))
}

/// A known field as text: strings trimmed, numbers spelt out (phones often arrive as numbers),
/// blank and `null` taken as absent.
fn text_field(fields: &Map<String, Value>, name: &str) -> Result<Option<String>, ApiError> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.trim().to_owned()).filter(|text| !text.is_empty())),
        Some(Value::Number(number)) => Ok(Some(number.to_string())),
        Some(_) => Err(ApiError::Invalid(format!("поле {name} должно быть строкой"))),
    }
}
