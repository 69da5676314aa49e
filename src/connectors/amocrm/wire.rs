//! amoCRM API v4 bodies, as far as leadgate reads and writes them.

use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
pub struct ContactsPage {
    #[serde(rename = "_embedded")]
    pub embedded: ContactsEmbedded,
}

#[derive(Debug, Deserialize)]
pub struct ContactsEmbedded {
    pub contacts: Vec<AmoContact>,
}

#[derive(Debug, Deserialize)]
pub struct AmoContact {
    pub id: i64,
    #[serde(default)]
    pub custom_fields_values: Option<Vec<CustomFieldValue>>,
    #[serde(rename = "_embedded", default)]
    pub embedded: Option<ContactLinks>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ContactLinks {
    #[serde(default)]
    pub leads: Vec<EntityRef>,
}

#[derive(Debug, Deserialize)]
pub struct EntityRef {
    pub id: i64,
}

#[derive(Debug, Deserialize)]
pub struct CustomFieldValue {
    #[serde(default)]
    pub field_code: Option<String>,
    #[serde(default)]
    pub values: Vec<FieldValue>,
}

#[derive(Debug, Deserialize)]
pub struct FieldValue {
    pub value: serde_json::Value,
}

#[derive(Debug, Deserialize)]
pub struct AmoDeal {
    pub id: i64,
    pub pipeline_id: i64,
    pub status_id: i64,
}

/// The answer to a batch create: `_embedded.<entity>[]` with the new ids.
#[derive(Debug, Deserialize)]
pub struct Created {
    #[serde(rename = "_embedded")]
    pub embedded: CreatedEmbedded,
}

#[derive(Debug, Deserialize)]
pub struct CreatedEmbedded {
    #[serde(default)]
    pub contacts: Vec<EntityRef>,
    #[serde(default)]
    pub leads: Vec<EntityRef>,
    #[serde(default)]
    pub notes: Vec<EntityRef>,
}

#[derive(Debug, Deserialize)]
pub struct NotesPage {
    #[serde(rename = "_embedded")]
    pub embedded: NotesEmbedded,
}

#[derive(Debug, Deserialize)]
pub struct NotesEmbedded {
    pub notes: Vec<AmoNote>,
}

#[derive(Debug, Deserialize)]
pub struct AmoNote {
    pub id: i64,
    #[serde(default)]
    pub params: serde_json::Value,
}

#[derive(Debug, Deserialize)]
pub struct PipelinesPage {
    #[serde(rename = "_embedded")]
    pub embedded: PipelinesEmbedded,
}

#[derive(Debug, Deserialize)]
pub struct PipelinesEmbedded {
    pub pipelines: Vec<AmoPipeline>,
}

#[derive(Debug, Deserialize)]
pub struct AmoPipeline {
    pub id: i64,
    pub name: String,
    #[serde(rename = "_embedded")]
    pub embedded: PipelineStatuses,
}

#[derive(Debug, Deserialize)]
pub struct PipelineStatuses {
    pub statuses: Vec<AmoStatus>,
}

#[derive(Debug, Deserialize)]
pub struct AmoStatus {
    pub id: i64,
    pub name: String,
}

#[derive(Debug, Serialize)]
pub struct TokenRefreshRequest<'a> {
    pub client_id: &'a str,
    pub client_secret: &'a str,
    pub grant_type: &'a str,
    pub refresh_token: &'a str,
    pub redirect_uri: &'a str,
}

#[derive(Debug, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: i64,
}

/// `{"validation-errors":[{"errors":[{"path","detail"}]}], "detail": …}` (400 answers).
#[derive(Debug, Deserialize)]
pub struct ProblemBody {
    #[serde(default)]
    pub detail: Option<String>,
    #[serde(rename = "validation-errors", default)]
    pub validation_errors: Vec<ValidationErrors>,
}

#[derive(Debug, Deserialize)]
pub struct ValidationErrors {
    #[serde(default)]
    pub errors: Vec<ValidationError>,
}

#[derive(Debug, Deserialize)]
pub struct ValidationError {
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub detail: String,
}

impl ProblemBody {
    /// The CRM's own words, for the lead's history.
    pub fn message(&self) -> String {
        let fields: Vec<String> = self
            .validation_errors
            .iter()
            .flat_map(|item| &item.errors)
            .map(|error| format!("{}: {}", error.path, error.detail))
            .collect();
        match (self.detail.as_deref(), fields.is_empty()) {
            (Some(detail), true) => detail.to_owned(),
            (detail, false) => format!("{} ({})", detail.unwrap_or("validation failed"), fields.join("; ")),
            (None, true) => "no details given".to_owned(),
        }
    }
}
