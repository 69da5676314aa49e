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

    /// A positive integer, given as a number or as a string of digits: Django REST's and
    /// Laravel's validation both take `"12"` for an integer field, and clients that fill JSON
    /// bodies from templates send every value as a string. An empty string is refused, as
    /// Django REST refuses it: a client without the id must leave the field out.
    pub fn optional_id(&self, field: &str) -> Result<Option<u64>, ApiError> {
        let id = match self.0.get(field) {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::String(text)) => {
                let text = text.trim();
                text.bytes().all(|byte| byte.is_ascii_digit()).then(|| text.parse::<u64>().ok()).flatten()
            }
            Some(value) => value.as_u64(),
        };
        id.filter(|id| *id > 0).map(Some).ok_or_else(|| ApiError::invalid(field, "must be a positive integer"))
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
        let body = object(r#"{"subject": "  ", "contact_id": 7, "partner_id": 0, "service": "Support"}"#);
        assert!(matches!(body.required_text("subject"), Err(ApiError::Invalid { field, .. }) if field == "subject"));
        assert_eq!(body.optional_id("contact_id").ok(), Some(Some(7)));
        assert!(body.optional_id("partner_id").is_err());
        assert_eq!(body.required_text("service").ok().as_deref(), Some("Support"));
    }

    #[test]
    fn an_id_may_be_a_string_of_digits_but_not_an_empty_string() {
        let body = object(r#"{"a": "12", "b": " 7 ", "c": "", "d": "0", "e": "-3", "f": "1e3", "g": "x1", "h": 2.5}"#);
        assert_eq!(body.optional_id("a").ok(), Some(Some(12)));
        assert_eq!(body.optional_id("b").ok(), Some(Some(7)));
        // An empty string is not "no id" (Django REST refuses it too): a client must leave the field out.
        for field in ["c", "d", "e", "f", "g", "h"] {
            assert!(body.optional_id(field).is_err(), "{field}");
        }
    }

    #[test]
    fn a_body_that_is_not_an_object_is_malformed() {
        assert!(matches!(JsonObject::parse(b"[1]"), Err(ApiError::MalformedBody(_))));
        assert!(matches!(JsonObject::parse(b"{"), Err(ApiError::MalformedBody(_))));
    }
}
