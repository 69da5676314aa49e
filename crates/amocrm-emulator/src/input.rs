//! Reading request bodies the way amoCRM validates them: per-item errors with dot paths.

use serde_json::{Map, Value};

use crate::catalog::FieldDefinition;
use crate::problem::Problem;
pub use crate::problem::{FieldError, ItemErrors};
use crate::state::{CustomField, FieldValue, TagRef};

/// Parses a body that must be a non-empty JSON array, as every amoCRM batch write is.
pub fn batch(body: &[u8]) -> Result<Vec<Value>, Problem> {
    let value: Value =
        serde_json::from_slice(body).map_err(|_| Problem::BadRequest("Request body is not valid JSON".to_owned()))?;
    match value {
        Value::Array(items) if !items.is_empty() => Ok(items),
        Value::Array(_) => Err(Problem::BadRequest("Request body is empty".to_owned())),
        _ => Err(Problem::BadRequest("Request body must be an array of entities".to_owned())),
    }
}

/// Parses a body that must be one JSON object (the single-entity PATCH forms).
pub fn object(body: &[u8]) -> Result<Value, Problem> {
    match serde_json::from_slice(body) {
        Ok(value @ Value::Object(_)) => Ok(value),
        _ => Err(Problem::BadRequest("Request body must be a JSON object".to_owned())),
    }
}

/// Collects the validation errors of a whole batch; any error rejects the whole request,
/// so nothing is written unless every item is valid.
#[derive(Default)]
pub struct Verdicts {
    items: Vec<ItemErrors>,
}

impl Verdicts {
    pub fn record(&mut self, item: Item<'_>) {
        if !item.errors.is_empty() {
            self.items.push(ItemErrors { request_id: item.request_id, errors: item.errors });
        }
    }

    pub fn into_result(self) -> Result<(), Problem> {
        if self.items.is_empty() { Ok(()) } else { Err(Problem::Validation(self.items)) }
    }
}

static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);

/// One object of a batch body, with the errors found while reading it.
pub struct Item<'a> {
    pub request_id: String,
    pub root: &'a Map<String, Value>,
    pub errors: Vec<FieldError>,
}

impl<'a> Item<'a> {
    /// `request_id` is echoed back; clients that do not set one get the item's index.
    pub fn new(value: &'a Value, index: usize) -> Self {
        let mut errors = Vec::new();
        let root = match value {
            Value::Object(map) => map,
            _ => {
                errors.push(FieldError::invalid_type("", "object"));
                &EMPTY
            }
        };
        let request_id = match root.get("request_id") {
            Some(Value::String(text)) => text.clone(),
            Some(Value::Number(number)) => number.to_string(),
            _ => index.to_string(),
        };
        Item { request_id, root, errors }
    }

    pub fn fail(&mut self, error: FieldError) {
        self.errors.push(error);
    }

    pub fn string(&mut self, key: &str) -> Option<String> {
        self.string_in(self.root, "", key)
    }

    pub fn u64(&mut self, key: &str) -> Option<u64> {
        self.u64_in(self.root, "", key)
    }

    pub fn string_in(&mut self, object: &Map<String, Value>, prefix: &str, key: &str) -> Option<String> {
        match object.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => Some(text.clone()),
            Some(_) => {
                self.fail(FieldError::invalid_type(format!("{prefix}{key}"), "string"));
                None
            }
        }
    }

    pub fn u64_in(&mut self, object: &Map<String, Value>, prefix: &str, key: &str) -> Option<u64> {
        match object.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::Number(number)) if number.as_u64().is_some() => number.as_u64(),
            Some(_) => {
                self.fail(FieldError::invalid_type(format!("{prefix}{key}"), "int"));
                None
            }
        }
    }

    pub fn bool_in(&mut self, object: &Map<String, Value>, prefix: &str, key: &str) -> Option<bool> {
        match object.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::Bool(flag)) => Some(*flag),
            Some(_) => {
                self.fail(FieldError::invalid_type(format!("{prefix}{key}"), "bool"));
                None
            }
        }
    }

    /// An array of objects under `key`; other element types are reported and skipped.
    pub fn objects_in(
        &mut self,
        object: &'a Map<String, Value>,
        prefix: &str,
        key: &str,
    ) -> Vec<&'a Map<String, Value>> {
        match object.get(key) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => {
                let mut objects = Vec::new();
                for (index, item) in items.iter().enumerate() {
                    match item {
                        Value::Object(map) => objects.push(map),
                        _ => self.fail(FieldError::invalid_type(format!("{prefix}{key}.{index}"), "object")),
                    }
                }
                objects
            }
            Some(_) => {
                self.fail(FieldError::invalid_type(format!("{prefix}{key}"), "array"));
                Vec::new()
            }
        }
    }

    /// The root item's `_embedded` object, or an empty one.
    pub fn embedded(&mut self) -> &'a Map<String, Value> {
        self.embedded_in(self.root, "")
    }

    /// `_embedded` of an entity object found at `prefix`, or an empty one.
    pub fn embedded_in(&mut self, object: &'a Map<String, Value>, prefix: &str) -> &'a Map<String, Value> {
        match object.get("_embedded") {
            Some(Value::Object(map)) => map,
            None | Some(Value::Null) => &EMPTY,
            Some(_) => {
                self.fail(FieldError::invalid_type(format!("{prefix}_embedded"), "object"));
                &EMPTY
            }
        }
    }

    /// `_embedded.tags` of the entity at `prefix`: each `{id}` must exist (checked by
    /// `tag_exists`), otherwise the tag must carry a `name`.
    pub fn tags_in(
        &mut self,
        object: &'a Map<String, Value>,
        prefix: &str,
        tag_exists: impl Fn(u64) -> bool,
    ) -> Vec<TagRef> {
        let embedded_prefix = format!("{prefix}_embedded.");
        let embedded = self.embedded_in(object, prefix);
        let mut refs = Vec::new();
        let tags = self.objects_in(embedded, &embedded_prefix, "tags");
        for (index, tag) in tags.into_iter().enumerate() {
            let tag_prefix = format!("{embedded_prefix}tags.{index}.");
            if let Some(id) = self.u64_in(tag, &tag_prefix, "id") {
                if tag_exists(id) {
                    refs.push(TagRef::Id(id));
                } else {
                    self.fail(FieldError::not_supported_choice(format!("{tag_prefix}id")));
                }
            } else if let Some(name) = self.string_in(tag, &tag_prefix, "name") {
                refs.push(TagRef::Name(name));
            } else {
                self.fail(FieldError::not_blank(format!("{tag_prefix}name")));
            }
        }
        refs
    }

    /// `custom_fields_values` of the entity at `prefix`, checked against its field catalog.
    pub fn custom_fields_in(
        &mut self,
        object: &'a Map<String, Value>,
        prefix: &str,
        catalog: &'static [FieldDefinition],
    ) -> Vec<CustomField> {
        let mut fields = Vec::new();
        let entries = self.objects_in(object, prefix, "custom_fields_values");
        for (index, entry) in entries.into_iter().enumerate() {
            let path = format!("{prefix}custom_fields_values.{index}.");
            if let Some(field) = self.custom_field(entry, &path, catalog) {
                fields.push(field);
            }
        }
        fields
    }

    fn custom_field(
        &mut self,
        entry: &'a Map<String, Value>,
        path: &str,
        catalog: &'static [FieldDefinition],
    ) -> Option<CustomField> {
        let definition = if let Some(id) = self.u64_in(entry, path, "field_id") {
            catalog.iter().find(|definition| definition.id == id).or_else(|| {
                self.fail(FieldError::not_supported_choice(format!("{path}field_id")));
                None
            })?
        } else if let Some(code) = self.string_in(entry, path, "field_code") {
            let found = catalog.iter().find(|definition| definition.code == Some(code.as_str()));
            found.or_else(|| {
                self.fail(FieldError::not_supported_choice(format!("{path}field_code")));
                None
            })?
        } else {
            self.fail(FieldError::not_blank(format!("{path}field_id")));
            return None;
        };
        let mut values = Vec::new();
        for (index, raw) in self.objects_in(entry, path, "values").into_iter().enumerate() {
            let value_path = format!("{path}values.{index}.");
            if let Some(value) = self.field_value(raw, &value_path, definition) {
                values.push(value);
            }
        }
        Some(CustomField { definition, values })
    }

    fn field_value(
        &mut self,
        raw: &Map<String, Value>,
        path: &str,
        definition: &'static FieldDefinition,
    ) -> Option<FieldValue> {
        let value = match raw.get("value") {
            Some(value @ (Value::String(_) | Value::Number(_) | Value::Bool(_))) => value.clone(),
            None | Some(Value::Null) => {
                self.fail(FieldError::not_blank(format!("{path}value")));
                return None;
            }
            Some(_) => {
                self.fail(FieldError::invalid_type(format!("{path}value"), "string"));
                return None;
            }
        };
        if definition.enums.is_empty() {
            return Some(FieldValue { value, enum_id: None, enum_code: None });
        }
        let chosen = if let Some(id) = self.u64_in(raw, path, "enum_id") {
            definition.enum_by_id(id).or_else(|| {
                self.fail(FieldError::not_supported_choice(format!("{path}enum_id")));
                None
            })?
        } else if let Some(code) = self.string_in(raw, path, "enum_code") {
            definition.enum_by_code(&code).or_else(|| {
                self.fail(FieldError::not_supported_choice(format!("{path}enum_code")));
                None
            })?
        } else {
            // amoCRM files a phone or e-mail given without an enum under the first one (WORK).
            definition.enums[0]
        };
        Some(FieldValue { value, enum_id: Some(chosen.0), enum_code: Some(chosen.1) })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::catalog::CONTACT_FIELDS;

    #[test]
    fn request_id_defaults_to_the_item_index() {
        let value = json!({"name": "x"});
        assert_eq!(Item::new(&value, 3).request_id, "3");
        let value = json!({"request_id": "abc"});
        assert_eq!(Item::new(&value, 3).request_id, "abc");
    }

    #[test]
    fn unknown_field_code_is_reported_with_its_dot_path() {
        let value = json!({"custom_fields_values": [
            {"field_code": "PHONE", "values": [{"value": "+7999", "enum_code": "MOB"}]},
            {"field_code": "SKYPE", "values": [{"value": "x"}]}
        ]});
        let mut item = Item::new(&value, 0);
        let root = item.root;
        let fields = item.custom_fields_in(root, "", CONTACT_FIELDS);
        assert_eq!(fields.len(), 1);
        assert_eq!(fields[0].values[0].enum_code, Some("MOB"));
        assert_eq!(item.errors, vec![FieldError::not_supported_choice("custom_fields_values.1.field_code")]);
    }

    #[test]
    fn wrong_scalar_type_is_an_invalid_type_error() {
        let value = json!({"price": "1000"});
        let mut item = Item::new(&value, 0);
        assert_eq!(item.u64("price"), None);
        assert_eq!(item.errors[0].code, "InvalidType");
        assert_eq!(item.errors[0].path, "price");
    }

    #[test]
    fn batch_body_must_be_a_non_empty_array() {
        assert!(batch(b"[{}]").is_ok());
        assert!(batch(b"[]").is_err());
        assert!(batch(b"{}").is_err());
        assert!(batch(b"not json").is_err());
    }
}
