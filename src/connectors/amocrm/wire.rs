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
    pub name: Option<String>,
    #[serde(default)]
    pub responsible_user_id: Option<i64>,
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
    #[serde(default)]
    pub name: Option<String>,
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
    pub note_type: String,
    #[serde(default)]
    pub params: serde_json::Value,
}

/// One page of a list: `_embedded` with the items, `_links.next` when another page follows.
#[derive(Debug, Deserialize)]
pub struct Page<E> {
    #[serde(rename = "_embedded")]
    pub embedded: E,
    #[serde(rename = "_links", default)]
    pub links: PageLinks,
}

#[derive(Debug, Default, Deserialize)]
pub struct PageLinks {
    #[serde(default)]
    pub next: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
pub struct CustomFieldsEmbedded {
    pub custom_fields: Vec<CustomFieldDefinition>,
}

#[derive(Debug, Deserialize)]
pub struct CustomFieldDefinition {
    pub id: i64,
}

#[derive(Debug, Deserialize)]
pub struct UsersEmbedded {
    pub users: Vec<AmoUser>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AmoUser {
    pub id: i64,
    pub name: String,
}

/// `POST /api/v4/contacts` item of an auto-contact.
#[derive(Debug, Serialize)]
pub struct NewContact<'a> {
    pub name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub responsible_user_id: Option<i64>,
    pub custom_fields_values: Vec<NewFieldValues<'a>>,
    #[serde(rename = "_embedded", skip_serializing_if = "NewTags::is_empty")]
    pub embedded: NewTags<'a>,
}

/// A system field filled by its code: `{"field_code":"PHONE","values":[{"value","enum_code":"WORK"}]}`.
#[derive(Debug, Serialize)]
pub struct NewFieldValues<'a> {
    pub field_code: &'static str,
    pub values: Vec<NewFieldValue<'a>>,
}

#[derive(Debug, Serialize)]
pub struct NewFieldValue<'a> {
    pub value: &'a str,
    pub enum_code: &'static str,
}

#[derive(Debug, Serialize)]
pub struct NewTags<'a> {
    pub tags: Vec<TagName<'a>>,
}

impl NewTags<'_> {
    fn is_empty(&self) -> bool {
        self.tags.is_empty()
    }
}

/// A tag by name: amoCRM makes it when the account does not have it yet.
#[derive(Debug, Serialize)]
pub struct TagName<'a> {
    pub name: &'a str,
}

/// `POST /api/v4/leads` item of an auto-deal, linked to its contact on creation.
#[derive(Debug, Serialize)]
pub struct NewDeal<'a> {
    pub name: &'a str,
    pub pipeline_id: i64,
    pub status_id: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub responsible_user_id: Option<i64>,
    #[serde(rename = "_embedded")]
    pub embedded: DealContacts,
}

#[derive(Debug, Serialize)]
pub struct DealContacts {
    pub contacts: Vec<LinkedContact>,
}

#[derive(Debug, Serialize)]
pub struct LinkedContact {
    pub id: i64,
    pub is_main: bool,
}

/// `POST /api/v4/contacts/notes` item of a call: `note_type` `call_in` or `call_out`.
#[derive(Debug, Serialize)]
pub struct NewCallNote<'a> {
    pub entity_id: i64,
    pub note_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub responsible_user_id: Option<i64>,
    pub params: CallParams<'a>,
}

/// A call note's `params`, in the keys amoCRM's PHP client writes.
#[derive(Debug, Serialize)]
pub struct CallParams<'a> {
    pub uniq: &'a str,
    pub phone: &'a str,
    pub duration: u32,
    pub source: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<&'a str>,
    pub call_status: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_responsible: Option<i64>,
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
