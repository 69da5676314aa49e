//! Reading a JSON request body field by field, so each problem is reported under its field's name.

use serde_json::{Map, Value};

use crate::error::ApiError;

pub struct JsonObject(Map<String, Value>);

impl JsonObject {
    /// # Errors
    /// 400 when the body is not a JSON object.
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        match serde_json::from_slice(body) {
            Ok(Value::Object(fields)) => Ok(JsonObject(fields)),
            Ok(_) => Err(ApiError::MalformedBody("The body must be a JSON object.".to_owned())),
            Err(error) => Err(ApiError::MalformedBody(format!("The body is not valid JSON: {error}."))),
        }
    }

    /// Absent, `null` and blank all mean "not given", as form-backed CRMs treat them.
    pub fn optional_text(&self, field: &str) -> Result<Option<String>, ApiError> {
        match self.0.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) if text.trim().is_empty() => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(_) => Err(ApiError::invalid(field, "must be a string")),
        }
    }

    pub fn required_text(&self, field: &str) -> Result<String, ApiError> {
        self.optional_text(field)?.ok_or_else(|| ApiError::invalid(field, "is required"))
    }

    pub fn optional_id(&self, field: &str) -> Result<Option<u64>, ApiError> {
        match self.0.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => value
                .as_u64()
                .filter(|id| *id > 0)
                .map(Some)
                .ok_or_else(|| ApiError::invalid(field, "must be a positive integer")),
        }
    }

    pub fn required_id(&self, field: &str) -> Result<u64, ApiError> {
        self.optional_id(field)?.ok_or_else(|| ApiError::invalid(field, "is required"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(json: &str) -> JsonObject {
        JsonObject::parse(json.as_bytes()).unwrap_or_else(|_| panic!("{json} is an object"))
    }

    #[test]
    fn blank_text_counts_as_missing_and_ids_must_be_positive_integers() {
        let body = object(r#"{"subject": "  ", "contact_id": "7", "partner_id": 0, "service": "Support"}"#);
        assert!(matches!(body.required_text("subject"), Err(ApiError::Invalid { field, .. }) if field == "subject"));
        assert!(body.optional_id("contact_id").is_err());
        assert!(body.optional_id("partner_id").is_err());
        assert_eq!(body.required_text("service").ok().as_deref(), Some("Support"));
    }

    #[test]
    fn a_body_that_is_not_an_object_is_malformed() {
        assert!(matches!(JsonObject::parse(b"[1]"), Err(ApiError::MalformedBody(_))));
        assert!(matches!(JsonObject::parse(b"{"), Err(ApiError::MalformedBody(_))));
    }
}
