//! Accept: channel endpoints that validate a lead, commit it, and answer at once.

pub mod partner;
pub mod zap;

use serde_json::{Map, Value};

use crate::http::error::ApiError;

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
