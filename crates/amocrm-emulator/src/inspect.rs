//! Typed views and controls on `Emulator` for in-process tests, mirroring the control API.

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::Value;

use crate::Emulator;
use crate::catalog::{AccountUser, EMAIL_FIELD_ID, PHONE_FIELD_ID};
use crate::seed::{self, SeedContact, SeedError, SeededContact};
use crate::state::{Contact, Crm, CustomField, Lead};
use crate::traffic::{Fault, Latency, RequestRecord, TrafficStats};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContactSummary {
    pub id: u64,
    pub name: String,
    pub phones: Vec<String>,
    pub emails: Vec<String>,
    pub lead_ids: Vec<u64>,
    /// Every custom field by id, phone and e-mail included.
    pub custom_fields: BTreeMap<u64, Vec<String>>,
    pub responsible_user_id: u64,
    /// Tag names in the order they were attached.
    pub tags: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeadSummary {
    pub id: u64,
    pub name: String,
    pub price: u64,
    pub pipeline_id: u64,
    pub status_id: u64,
    /// Pipeline and stage names, as a person sees them in the CRM.
    pub pipeline: String,
    pub status: String,
    /// Linked contacts, the main one first.
    pub contact_ids: Vec<u64>,
    /// Tag names in the order they were attached.
    pub tags: Vec<String>,
    pub responsible_user_id: u64,
    /// Custom fields by id (`LISTING_FIELD_ID`, the UTM fields…).
    pub custom_fields: BTreeMap<u64, Vec<String>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteSummary {
    pub id: u64,
    /// `leads` or `contacts`.
    pub entity_type: String,
    pub entity_id: u64,
    pub note_type: String,
    pub text: Option<String>,
    /// `params` exactly as stored: a call note's `uniq`, `phone`, `call_status`…
    pub params: Value,
    pub responsible_user_id: u64,
}

fn field_texts(contact: &Contact, field_id: u64) -> Vec<String> {
    contact
        .custom_fields
        .iter()
        .filter(|field| field.definition.id == field_id)
        .flat_map(|field| field.texts())
        .collect()
}

/// Values as text, so a test can compare what it sent whatever JSON type it was sent as.
fn fields_by_id(fields: &[CustomField]) -> BTreeMap<u64, Vec<String>> {
    let mut by_id: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for field in fields {
        by_id.entry(field.definition.id).or_default().extend(field.texts());
    }
    by_id
}

fn contact_summary(crm: &Crm, contact: &Contact) -> ContactSummary {
    ContactSummary {
        id: contact.id,
        name: contact.name.clone(),
        phones: field_texts(contact, PHONE_FIELD_ID),
        emails: field_texts(contact, EMAIL_FIELD_ID),
        lead_ids: crm.lead_ids_of_contact(contact.id),
        custom_fields: fields_by_id(&contact.custom_fields),
        responsible_user_id: contact.responsible_user_id,
        tags: tag_names(crm, &contact.tag_ids),
    }
}

fn tag_names(crm: &Crm, ids: &[u64]) -> Vec<String> {
    ids.iter().filter_map(|id| crm.tag(*id)).map(|tag| tag.name.clone()).collect()
}

fn lead_summary(crm: &Crm, lead: &Lead) -> LeadSummary {
    let pipeline = crm.pipeline(lead.pipeline_id);
    let status = pipeline.and_then(|pipeline| pipeline.status(lead.status_id));
    let mut links = lead.contacts.clone();
    links.sort_by_key(|link| !link.is_main);
    LeadSummary {
        id: lead.id,
        name: lead.name.clone(),
        price: lead.price,
        pipeline_id: lead.pipeline_id,
        status_id: lead.status_id,
        pipeline: pipeline.map(|p| p.name.clone()).unwrap_or_default(),
        status: status.map(|s| s.name.clone()).unwrap_or_default(),
        contact_ids: links.iter().map(|link| link.contact_id).collect(),
        tags: tag_names(crm, &lead.tag_ids),
        responsible_user_id: lead.responsible_user_id,
        custom_fields: fields_by_id(&lead.custom_fields),
    }
}

impl Emulator {
    pub fn contacts(&self) -> Vec<ContactSummary> {
        let state = self.shared().lock();
        let crm = &state.crm;
        crm.contacts.values().map(|contact| contact_summary(crm, contact)).collect()
    }

    pub fn contacts_count(&self) -> usize {
        self.shared().lock().crm.contacts.len()
    }

    pub fn leads(&self) -> Vec<LeadSummary> {
        let state = self.shared().lock();
        let crm = &state.crm;
        crm.leads.values().map(|lead| lead_summary(crm, lead)).collect()
    }

    pub fn leads_count(&self) -> usize {
        self.shared().lock().crm.leads.len()
    }

    /// Leads standing in the pipeline with this name, in creation order.
    pub fn leads_in_pipeline(&self, pipeline: &str) -> Vec<LeadSummary> {
        self.leads().into_iter().filter(|lead| lead.pipeline == pipeline).collect()
    }

    pub fn notes(&self) -> Vec<NoteSummary> {
        let state = self.shared().lock();
        state
            .crm
            .notes
            .values()
            .map(|note| NoteSummary {
                id: note.id,
                entity_type: note.entity_kind.as_str().to_owned(),
                entity_id: note.entity_id,
                note_type: note.note_type.clone(),
                text: note.params.get("text").and_then(|t| t.as_str()).map(str::to_owned),
                params: note.params.clone(),
                responsible_user_id: note.responsible_user_id,
            })
            .collect()
    }

    /// The account's users, the default responsible one first.
    pub fn users(&self) -> Vec<AccountUser> {
        self.shared().lock().crm.users.clone()
    }

    /// The id of the user with this name, for tests that think in names as people do.
    pub fn user_named(&self, name: &str) -> Option<u64> {
        self.shared().lock().crm.users.iter().find(|user| user.name == name).map(|user| user.id)
    }

    /// Every `/api/v4` and `/oauth2` request so far; 499 marks one whose client went away.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared().lock().traffic.records()
    }

    pub fn traffic_stats(&self) -> TrafficStats {
        let limit = self.shared().config.requests_per_second;
        self.shared().lock().traffic.stats(limit)
    }

    pub fn inject_fault(&self, fault: Fault) {
        self.shared().lock().traffic.inject(fault, Instant::now());
    }

    pub fn clear_faults(&self) {
        self.shared().lock().traffic.clear_faults();
    }

    /// `None` (or a zero delay) removes the latency.
    pub fn set_latency(&self, latency: Option<Latency>) {
        self.shared().lock().traffic.set_latency(latency);
    }

    /// Every issued OAuth access token answers 401 from now on; refresh tokens stay usable.
    pub fn expire_access_tokens(&self, include_long_lived: bool) {
        self.shared().lock().tokens.expire_access_tokens(include_long_lived);
    }

    /// Refresh tokens not yet used, for tests that need one without the OAuth exchange.
    pub fn live_refresh_tokens(&self) -> Vec<String> {
        self.shared().lock().tokens.live_refresh_tokens()
    }

    /// Puts a contact and its deals into the account without going through the API.
    ///
    /// # Errors
    /// When a deal names an unknown pipeline or stage; nothing is created then.
    pub fn seed_contact(&self, contact: &SeedContact) -> Result<SeededContact, SeedError> {
        seed::seed(&mut self.shared().lock().crm, contact)
    }

    /// Forgets contacts, leads, companies, notes, the request log, faults, latency and
    /// stats. Pipelines and tokens stay.
    pub fn reset(&self) {
        let mut state = self.shared().lock();
        state.crm.clear();
        state.traffic.reset();
    }
}
