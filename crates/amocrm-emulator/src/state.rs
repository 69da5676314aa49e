//! In-memory CRM records (users, contacts, leads, companies, notes, tags) and their id counters.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::catalog::{AccountUser, CONTACT_FIELDS, FieldDefinition, LEAD_FIELDS, Pipeline, USER_ID};

const FIRST_CONTACT_ID: u64 = 1001;
const FIRST_LEAD_ID: u64 = 5001;
const FIRST_COMPANY_ID: u64 = 7001;
const FIRST_NOTE_ID: u64 = 9001;
const FIRST_TAG_ID: u64 = 301;

pub fn now_unix() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs() as i64)
}

#[derive(Clone, Debug)]
pub struct FieldValue {
    pub value: Value,
    pub enum_id: Option<u64>,
    pub enum_code: Option<&'static str>,
}

#[derive(Clone, Debug)]
pub struct CustomField {
    pub definition: &'static FieldDefinition,
    pub values: Vec<FieldValue>,
}

impl CustomField {
    /// Values as the search index sees them: numbers and booleans as their text.
    pub fn texts(&self) -> impl Iterator<Item = String> + '_ {
        self.values.iter().map(|field_value| match &field_value.value {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        })
    }
}

/// Applies an update the way amoCRM does: a field named in the update replaces that
/// field's values, fields not named stay, and an empty value list removes the field.
/// A custom field as saved: its definition by id, its values with their enum by id and code.
#[derive(Serialize, Deserialize)]
struct SavedField {
    field_id: u64,
    values: Vec<SavedValue>,
}

#[derive(Serialize, Deserialize)]
struct SavedValue {
    value: Value,
    enum_id: Option<u64>,
    enum_code: Option<String>,
}

impl Serialize for CustomField {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let values = self
            .values
            .iter()
            .map(|value| SavedValue {
                value: value.value.clone(),
                enum_id: value.enum_id,
                enum_code: value.enum_code.map(str::to_owned),
            })
            .collect();
        SavedField { field_id: self.definition.id, values }.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for CustomField {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let saved = SavedField::deserialize(deserializer)?;
        let definition = CONTACT_FIELDS
            .iter()
            .chain(LEAD_FIELDS)
            .find(|definition| definition.id == saved.field_id)
            .ok_or_else(|| serde::de::Error::custom(format!("no custom field {}", saved.field_id)))?;
        let values = saved
            .values
            .into_iter()
            .map(|value| FieldValue {
                value: value.value,
                enum_id: value.enum_id,
                // The catalog's own string: codes are `&'static` there.
                enum_code: value.enum_code.and_then(|code| {
                    definition.enums.iter().find(|(_, known)| *known == code).map(|(_, known)| *known)
                }),
            })
            .collect();
        Ok(CustomField { definition, values })
    }
}

pub fn merge_fields(existing: &mut Vec<CustomField>, updates: Vec<CustomField>) {
    for update in updates {
        existing.retain(|field| field.definition.id != update.definition.id);
        if !update.values.is_empty() {
            existing.push(update);
        }
    }
}

/// A tag reference from a request body: amoCRM accepts either an existing id or a name.
#[derive(Clone, Debug)]
pub enum TagRef {
    Id(u64),
    Name(String),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Tag {
    pub id: u64,
    pub name: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Contact {
    pub id: u64,
    pub name: String,
    pub first_name: String,
    pub last_name: String,
    pub responsible_user_id: u64,
    pub created_at: i64,
    pub updated_at: i64,
    pub custom_fields: Vec<CustomField>,
    pub tag_ids: Vec<u64>,
    pub company_ids: Vec<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeadContact {
    pub contact_id: u64,
    pub is_main: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Lead {
    pub id: u64,
    pub name: String,
    pub price: u64,
    pub responsible_user_id: u64,
    pub status_id: u64,
    pub pipeline_id: u64,
    pub loss_reason_id: Option<u64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub closed_at: Option<i64>,
    pub custom_fields: Vec<CustomField>,
    pub tag_ids: Vec<u64>,
    pub contacts: Vec<LeadContact>,
    pub company_ids: Vec<u64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Company {
    pub id: u64,
    pub name: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub custom_fields: Vec<CustomField>,
}

/// The entity types notes can be attached to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntityKind {
    Leads,
    Contacts,
}

impl EntityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::Leads => "leads",
            EntityKind::Contacts => "contacts",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Note {
    pub id: u64,
    pub entity_kind: EntityKind,
    pub entity_id: u64,
    pub note_type: String,
    pub params: Value,
    pub responsible_user_id: u64,
    pub created_at: i64,
}

fn contains_folded(haystack: &str, folded_needle: &str) -> bool {
    haystack.to_lowercase().contains(folded_needle)
}

fn fields_contain(fields: &[CustomField], folded_needle: &str) -> bool {
    fields
        .iter()
        .flat_map(CustomField::texts)
        .any(|text| contains_folded(&text, folded_needle) || digits_contain(&text, folded_needle))
}

/// Phones are matched on their digits, so `8 (999) 100-00-03` is found by `9991000003`; the
/// formatting a person typed does not hide a number from amoCRM's search (UNCONFIRMED in the
/// facts, chosen because the documented advice "search by the last ten digits" presumes it).
fn digits_contain(text: &str, needle: &str) -> bool {
    let only_digits = |value: &str| value.chars().filter(char::is_ascii_digit).collect::<String>();
    let needle_digits = only_digits(needle);
    needle_digits.len() >= 5 && needle_digits.len() == needle.len() && only_digits(text).contains(&needle_digits)
}

impl Contact {
    /// amoCRM's `query` search is deliberately fuzzy: any substring of the name or of any
    /// field value matches, so a phone query can also hit an e-mail or another phone.
    pub fn matches(&self, folded_query: &str) -> bool {
        [&self.name, &self.first_name, &self.last_name].iter().any(|text| contains_folded(text, folded_query))
            || fields_contain(&self.custom_fields, folded_query)
    }
}

impl Lead {
    pub fn matches(&self, folded_query: &str) -> bool {
        contains_folded(&self.name, folded_query) || fields_contain(&self.custom_fields, folded_query)
    }
}

#[derive(Serialize, Deserialize)]
struct SavedRecords {
    contacts: BTreeMap<u64, Contact>,
    leads: BTreeMap<u64, Lead>,
    companies: BTreeMap<u64, Company>,
    notes: BTreeMap<u64, Note>,
    tags: Vec<Tag>,
    counters: Counters,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Counters {
    contact: u64,
    lead: u64,
    company: u64,
    note: u64,
    tag: u64,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            contact: FIRST_CONTACT_ID,
            lead: FIRST_LEAD_ID,
            company: FIRST_COMPANY_ID,
            note: FIRST_NOTE_ID,
            tag: FIRST_TAG_ID,
        }
    }
}

fn take(counter: &mut u64) -> u64 {
    let id = *counter;
    *counter += 1;
    id
}

/// Everything the account holds. Links between leads and contacts live on the lead only,
/// so a contact's lead list is always derived and can never disagree with it.
#[derive(Debug)]
pub struct Crm {
    pub pipelines: Vec<Pipeline>,
    /// Fixed by the configuration; the first one is the account's default responsible user.
    pub users: Vec<AccountUser>,
    pub contacts: BTreeMap<u64, Contact>,
    pub leads: BTreeMap<u64, Lead>,
    pub companies: BTreeMap<u64, Company>,
    pub notes: BTreeMap<u64, Note>,
    pub tags: Vec<Tag>,
    counters: Counters,
}

impl Crm {
    pub fn new(pipelines: Vec<Pipeline>, users: Vec<AccountUser>) -> Self {
        Crm {
            pipelines,
            users,
            contacts: BTreeMap::new(),
            leads: BTreeMap::new(),
            companies: BTreeMap::new(),
            notes: BTreeMap::new(),
            tags: Vec::new(),
            counters: Counters::default(),
        }
    }

    /// Every record and the id counters, for [`Crm::restore`]; pipelines and users come from
    /// the configuration and are not included.
    pub fn records(&self) -> Value {
        let saved = SavedRecords {
            contacts: self.contacts.clone(),
            leads: self.leads.clone(),
            companies: self.companies.clone(),
            notes: self.notes.clone(),
            tags: self.tags.clone(),
            counters: self.counters,
        };
        serde_json::to_value(saved).unwrap_or_default()
    }

    /// Replaces every record and the id counters with what [`Crm::records`] gave.
    ///
    /// # Errors
    /// When `saved` is not such a value.
    pub fn restore(&mut self, saved: Value) -> Result<(), serde_json::Error> {
        let saved: SavedRecords = serde_json::from_value(saved)?;
        self.contacts = saved.contacts;
        self.leads = saved.leads;
        self.companies = saved.companies;
        self.notes = saved.notes;
        self.tags = saved.tags;
        self.counters = saved.counters;
        Ok(())
    }

    /// Drops every record and restarts the id counters; pipelines and users stay.
    pub fn clear(&mut self) {
        *self = Crm::new(std::mem::take(&mut self.pipelines), std::mem::take(&mut self.users));
    }

    /// Who is responsible for a record created without a responsible user, and who creates
    /// everything: the account's first user, as in amoCRM, where it is the account's owner.
    pub fn default_user_id(&self) -> u64 {
        self.users.first().map_or(USER_ID, |user| user.id)
    }

    pub fn next_contact_id(&mut self) -> u64 {
        take(&mut self.counters.contact)
    }

    pub fn next_lead_id(&mut self) -> u64 {
        take(&mut self.counters.lead)
    }

    pub fn next_company_id(&mut self) -> u64 {
        take(&mut self.counters.company)
    }

    pub fn next_note_id(&mut self) -> u64 {
        take(&mut self.counters.note)
    }

    pub fn pipeline(&self, id: u64) -> Option<&Pipeline> {
        self.pipelines.iter().find(|pipeline| pipeline.id == id)
    }

    pub fn pipeline_named(&self, name: &str) -> Option<&Pipeline> {
        self.pipelines.iter().find(|pipeline| pipeline.name == name)
    }

    pub fn main_pipeline(&self) -> Option<&Pipeline> {
        self.pipelines.iter().find(|pipeline| pipeline.is_main)
    }

    /// The pipeline a bare `status_id` belongs to. 142/143 exist in every pipeline; the
    /// main pipeline comes first in the list, so it wins for them.
    pub fn pipeline_owning(&self, status_id: u64) -> Option<&Pipeline> {
        self.pipelines.iter().find(|pipeline| pipeline.status(status_id).is_some())
    }

    pub fn tag_exists(&self, id: u64) -> bool {
        self.tags.iter().any(|tag| tag.id == id)
    }

    /// Resolves tag references, creating tags given by a new name.
    pub fn resolve_tags(&mut self, refs: &[TagRef]) -> Vec<u64> {
        let mut ids = Vec::new();
        for tag_ref in refs {
            let id = match tag_ref {
                TagRef::Id(id) => *id,
                TagRef::Name(name) => match self.tags.iter().find(|tag| &tag.name == name) {
                    Some(tag) => tag.id,
                    None => {
                        let id = take(&mut self.counters.tag);
                        self.tags.push(Tag { id, name: name.clone() });
                        id
                    }
                },
            };
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        ids
    }

    pub fn tag(&self, id: u64) -> Option<&Tag> {
        self.tags.iter().find(|tag| tag.id == id)
    }

    pub fn lead_ids_of_contact(&self, contact_id: u64) -> Vec<u64> {
        self.leads
            .values()
            .filter(|lead| lead.contacts.iter().any(|link| link.contact_id == contact_id))
            .map(|lead| lead.id)
            .collect()
    }

    pub fn entity_exists(&self, kind: EntityKind, id: u64) -> bool {
        match kind {
            EntityKind::Leads => self.leads.contains_key(&id),
            EntityKind::Contacts => self.contacts.contains_key(&id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{CONTACT_FIELDS, EMAIL_FIELD_ID, PHONE_FIELD_ID};

    fn field(id: u64, values: &[&str]) -> CustomField {
        CustomField {
            definition: CONTACT_FIELDS.iter().find(|d| d.id == id).unwrap(),
            values: values
                .iter()
                .map(|v| FieldValue { value: Value::String((*v).to_owned()), enum_id: None, enum_code: Some("WORK") })
                .collect(),
        }
    }

    fn contact(name: &str, fields: Vec<CustomField>) -> Contact {
        Contact {
            id: 1,
            name: name.to_owned(),
            first_name: String::new(),
            last_name: String::new(),
            responsible_user_id: 1,
            created_at: 0,
            updated_at: 0,
            custom_fields: fields,
            tag_ids: Vec::new(),
            company_ids: Vec::new(),
        }
    }

    #[test]
    fn contact_search_matches_substrings_of_names_and_any_field_value() {
        let anna = contact(
            "Анна Иванова",
            vec![field(PHONE_FIELD_ID, &["+79991112233"]), field(EMAIL_FIELD_ID, &["Anna@Example.com"])],
        );
        assert!(anna.matches("9991112233"));
        assert!(anna.matches("анна"));
        assert!(anna.matches("anna@example"));
        assert!(!anna.matches("89991112233"));
    }

    #[test]
    fn merging_fields_replaces_named_ones_and_removes_emptied_ones() {
        let mut fields = vec![field(PHONE_FIELD_ID, &["1"]), field(EMAIL_FIELD_ID, &["a@b"])];
        merge_fields(&mut fields, vec![field(PHONE_FIELD_ID, &["2"]), field(EMAIL_FIELD_ID, &[])]);
        assert_eq!(fields.len(), 1);
        assert_eq!(fields[0].texts().collect::<Vec<_>>(), vec!["2".to_owned()]);
    }

    #[test]
    fn saved_records_restore_the_same_account_and_its_next_ids() {
        let mut crm = Crm::new(Vec::new(), Vec::new());
        let id = crm.next_contact_id();
        let mut saved_contact = contact("Анна", vec![field(EMAIL_FIELD_ID, &["anna@example.com"])]);
        saved_contact.id = id;
        crm.contacts.insert(id, saved_contact);
        let lead_id = crm.next_lead_id();

        let mut restored = Crm::new(Vec::new(), Vec::new());
        restored.restore(serde_json::from_str(&crm.records().to_string()).unwrap()).unwrap();
        let contact = &restored.contacts[&id];
        assert_eq!(contact.name, "Анна");
        assert_eq!(contact.custom_fields[0].definition.id, EMAIL_FIELD_ID);
        assert_eq!(contact.custom_fields[0].values[0].enum_code, Some("WORK"));
        assert_eq!(restored.next_contact_id(), id + 1, "ids go on where they were");
        assert_eq!(restored.next_lead_id(), lead_id + 1);
    }
}
