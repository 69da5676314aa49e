//! The partner flow against amoCRM: look the client up by phone, then create, leave, or move.
//!
//! Each create is journaled before the next call; the journal also names the create that was
//! about to be sent, so a lead resumed after a crash first looks for what that call may have
//! made instead of making it twice.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::wire::{AmoContact, AmoDeal, ContactsPage, Created, NotesPage};
use super::{AmoCrm, Placement};
use crate::config::Route;
use crate::connectors::{DeliveryError, Flow};
use crate::delivery::Journal;
use crate::domain::{Decision, HistoryEvent, Lead, Outcome, Phone};

/// amoCRM's fixed ids of the "won" and "lost" stages, the same in every pipeline.
const CLOSED_STATUSES: [i64; 2] = [142, 143];

/// What the look-up found, journaled so that a resumed lead never decides twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "client", rename_all = "snake_case")]
enum Found {
    New,
    KnownWithoutDeal { contact_id: i64 },
    KnownWithDeal { contact_id: i64, deal_id: i64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Create {
    Contact,
    Deal,
    Note,
}

impl Progress {
    /// Records the look-up and what it leaves to create: everything for a new client; for the
    /// portal, a deal and note for a known client, or only a note on the deal it has.
    fn plan(&mut self, found: Found, flow: Flow) {
        self.found = Some(found);
        self.started = match (found, flow) {
            (Found::New, _) => Some(Create::Contact),
            (Found::KnownWithoutDeal { contact_id }, Flow::Portal) => {
                self.contact_id = Some(contact_id);
                Some(Create::Deal)
            }
            (Found::KnownWithDeal { contact_id, deal_id }, Flow::Portal) => {
                self.contact_id = Some(contact_id);
                self.deal_id = Some(deal_id);
                Some(Create::Note)
            }
            (Found::KnownWithoutDeal { contact_id } | Found::KnownWithDeal { contact_id, .. }, Flow::Website) => {
                self.contact_id = Some(contact_id);
                Some(Create::Deal)
            }
            (_, Flow::Partner) => None,
        };
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Progress {
    found: Option<Found>,
    contact_id: Option<i64>,
    deal_id: Option<i64>,
    note_id: Option<i64>,
    /// The create about to be sent when this was journaled.
    started: Option<Create>,
}

impl AmoCrm {
    pub async fn deliver(
        &self,
        lead: &Lead,
        route: &Route,
        flow: Flow,
        journal: &mut Journal<'_>,
    ) -> Result<Outcome, DeliveryError> {
        let resumed: Option<Progress> = journal.earlier_progress();
        let interrupted = resumed.as_ref().and_then(|progress| progress.started);
        let mut progress = resumed.unwrap_or_default();
        let mut placement = self.placement(route, journal.calls()).await?;
        placement.deal_fields = deal_field_values(lead, route);
        let found = match progress.found {
            Some(Found::New) if interrupted == Some(Create::Contact) => {
                self.decide_again(lead, &placement, flow, &mut progress, journal).await?
            }
            Some(found) => found,
            None => {
                let found = self.look_up(lead, &placement, flow, journal.calls()).await?;
                journal.note(HistoryEvent::now("client_looked_up", serde_json::to_value(found).unwrap_or_default()));
                progress.plan(found, flow);
                journal.record_step(&progress).await?;
                found
            }
        };
        let decision = match (found, flow) {
            (Found::New, _) => Decision::NewClient,
            (Found::KnownWithoutDeal { .. }, Flow::Portal)
            | (Found::KnownWithoutDeal { .. } | Found::KnownWithDeal { .. }, Flow::Website) => {
                Decision::KnownClientNewDeal
            }
            (Found::KnownWithDeal { .. }, Flow::Portal) => Decision::KnownClientDealNoted,
            (Found::KnownWithoutDeal { contact_id }, Flow::Partner) => {
                return Ok(Outcome {
                    decision: Decision::KnownClientWithoutDeal,
                    contact_id: Some(contact_id),
                    deal_id: None,
                });
            }
            (Found::KnownWithDeal { contact_id, deal_id }, Flow::Partner) => {
                // Moving a deal to a stage is idempotent, so it needs no journal entry of its own.
                let change = json!({ "pipeline_id": placement.pipeline_id, "status_id": placement.status_id });
                self.client.patch(journal.calls(), &format!("/api/v4/leads/{deal_id}"), &change).await?;
                return Ok(Outcome {
                    decision: Decision::KnownClientDealMoved,
                    contact_id: Some(contact_id),
                    deal_id: Some(deal_id),
                });
            }
        };
        self.create_client(lead, &placement, &mut progress, interrupted, decision, journal).await
    }

    /// Makes whatever of contact, deal and note the plan still lacks, each journaled before the next.
    async fn create_client(
        &self,
        lead: &Lead,
        placement: &Placement,
        progress: &mut Progress,
        interrupted: Option<Create>,
        decision: Decision,
        journal: &mut Journal<'_>,
    ) -> Result<Outcome, DeliveryError> {
        let contact_id = match progress.contact_id {
            Some(id) => id,
            None => {
                let id = self.create_contact(lead, journal.calls()).await?;
                progress.contact_id = Some(id);
                progress.started = Some(Create::Deal);
                journal.record_step(progress).await?;
                id
            }
        };
        let deal_id = match progress.deal_id {
            Some(id) => id,
            None => {
                let earlier = match interrupted {
                    Some(Create::Deal) => self.deal_in_pipeline(contact_id, placement, journal.calls()).await?,
                    _ => None,
                };
                let id = match earlier {
                    Some(id) => id,
                    None => self.create_deal(lead, contact_id, placement, journal.calls()).await?,
                };
                progress.deal_id = Some(id);
                progress.started = Some(Create::Note);
                journal.record_step(progress).await?;
                id
            }
        };
        if progress.note_id.is_none() {
            let earlier = match interrupted {
                Some(Create::Note) => self.find_note(lead, deal_id, journal.calls()).await?,
                _ => None,
            };
            let id = match earlier {
                Some(id) => id,
                None => self.create_note(lead, deal_id, journal.calls()).await?,
            };
            progress.note_id = Some(id);
            progress.started = None;
            journal.record_step(progress).await?;
        }
        Ok(Outcome { decision, contact_id: Some(contact_id), deal_id: Some(deal_id) })
    }

    /// A "new client" lead whose contact create was cut short: the create may have happened,
    /// and while the lead waited for its retry, other leads of the same client may have been
    /// delivered. Acting on the old look-up could make a second deal, so the CRM is asked again:
    /// a contact without a deal in the pipeline is taken as this lead's (it is ours, or creating
    /// our deal for it duplicates nothing); a contact with such a deal makes this a known client.
    async fn decide_again(
        &self,
        lead: &Lead,
        placement: &Placement,
        flow: Flow,
        progress: &mut Progress,
        journal: &mut Journal<'_>,
    ) -> Result<Found, DeliveryError> {
        let now = self.look_up(lead, placement, flow, journal.calls()).await?;
        journal.note(HistoryEvent::now("client_looked_up_again", serde_json::to_value(now).unwrap_or_default()));
        let found = match now {
            Found::New => return Ok(Found::New),
            Found::KnownWithoutDeal { contact_id } => {
                progress.contact_id = Some(contact_id);
                progress.started = Some(Create::Deal);
                Found::New
            }
            Found::KnownWithDeal { .. } => {
                progress.plan(now, flow);
                now
            }
        };
        journal.record_step(progress).await?;
        Ok(found)
    }

    async fn look_up(
        &self,
        lead: &Lead,
        placement: &Placement,
        flow: Flow,
        calls: &mut Vec<HistoryEvent>,
    ) -> Result<Found, DeliveryError> {
        let mut contacts = self.matching_contacts(lead, calls).await?;
        if contacts.is_empty()
            && flow != Flow::Partner
            && let Some(email) = &lead.fields.email
        {
            contacts = self.contacts_with_email(email.as_str(), calls).await?;
        }
        let Some(first) = contacts.first() else {
            return Ok(Found::New);
        };
        if flow == Flow::Website {
            // Every website lead makes its own deal, so the client's deals need not be read.
            return Ok(Found::KnownWithoutDeal { contact_id: first.id });
        }
        for contact in &contacts {
            if let Some(deal_id) = self.pick_deal(contact, placement, calls).await? {
                return Ok(Found::KnownWithDeal { contact_id: contact.id, deal_id });
            }
        }
        Ok(Found::KnownWithoutDeal { contact_id: first.id })
    }

    /// Contacts holding exactly this phone. amoCRM's search is fuzzy and matches any field, so
    /// it is asked for the last ten digits and every answer is checked on normalized numbers.
    async fn matching_contacts(
        &self,
        lead: &Lead,
        calls: &mut Vec<HistoryEvent>,
    ) -> Result<Vec<AmoContact>, DeliveryError> {
        let phone = &lead.fields.phone;
        let query = [("query", phone.last_ten_digits()), ("with", "leads"), ("limit", "250")];
        let page: Option<ContactsPage> = self.client.get(calls, "/api/v4/contacts", &query).await?;
        let mut contacts: Vec<AmoContact> = page
            .map(|page| page.embedded.contacts)
            .unwrap_or_default()
            .into_iter()
            .filter(|contact| self.has_phone(contact, phone))
            .collect();
        contacts.sort_by_key(|contact| contact.id);
        Ok(contacts)
    }

    /// Contacts holding exactly this e-mail address (the search is fuzzy here too).
    async fn contacts_with_email(
        &self,
        email: &str,
        calls: &mut Vec<HistoryEvent>,
    ) -> Result<Vec<AmoContact>, DeliveryError> {
        let query = [("query", email), ("with", "leads"), ("limit", "250")];
        let page: Option<ContactsPage> = self.client.get(calls, "/api/v4/contacts", &query).await?;
        let mut contacts: Vec<AmoContact> = page
            .map(|page| page.embedded.contacts)
            .unwrap_or_default()
            .into_iter()
            .filter(|contact| field_texts(contact, "EMAIL").any(|text| text.trim().eq_ignore_ascii_case(email)))
            .collect();
        contacts.sort_by_key(|contact| contact.id);
        Ok(contacts)
    }

    fn has_phone(&self, contact: &AmoContact, phone: &Phone) -> bool {
        field_texts(contact, "PHONE")
            .any(|text| Phone::parse(&text, self.phone_region).is_ok_and(|stored| stored.e164() == phone.e164()))
    }

    /// The contact's deal in the route's pipeline: the newest open one, else the newest closed one.
    async fn pick_deal(
        &self,
        contact: &AmoContact,
        placement: &Placement,
        calls: &mut Vec<HistoryEvent>,
    ) -> Result<Option<i64>, DeliveryError> {
        let mut deal_ids: Vec<i64> =
            contact.embedded.iter().flat_map(|links| &links.leads).map(|deal| deal.id).collect();
        deal_ids.sort_unstable_by(|a, b| b.cmp(a));
        let mut newest_closed = None;
        for deal_id in deal_ids {
            let deal: Option<AmoDeal> = self.client.get(calls, &format!("/api/v4/leads/{deal_id}"), &[]).await?;
            match deal {
                Some(deal)
                    if deal.pipeline_id == placement.pipeline_id && !CLOSED_STATUSES.contains(&deal.status_id) =>
                {
                    return Ok(Some(deal.id));
                }
                Some(deal) if deal.pipeline_id == placement.pipeline_id => {
                    newest_closed = newest_closed.or(Some(deal.id));
                }
                _ => {}
            }
        }
        Ok(newest_closed)
    }

    async fn deal_in_pipeline(
        &self,
        contact_id: i64,
        placement: &Placement,
        calls: &mut Vec<HistoryEvent>,
    ) -> Result<Option<i64>, DeliveryError> {
        let contact: Option<AmoContact> =
            self.client.get(calls, &format!("/api/v4/contacts/{contact_id}"), &[("with", "leads")]).await?;
        match contact {
            Some(contact) => self.pick_deal(&contact, placement, calls).await,
            None => Ok(None),
        }
    }

    async fn create_contact(&self, lead: &Lead, calls: &mut Vec<HistoryEvent>) -> Result<i64, DeliveryError> {
        let fields = &lead.fields;
        let mut custom_fields =
            vec![json!({ "field_code": "PHONE", "values": [{ "value": fields.phone.e164(), "enum_code": "WORK" }] })];
        if let Some(email) = &fields.email {
            custom_fields
                .push(json!({ "field_code": "EMAIL", "values": [{ "value": email.as_str(), "enum_code": "WORK" }] }));
        }
        custom_fields.extend(custom_field_values(&fields.deal.contact_fields));
        let body =
            json!([{ "name": fields.name, "custom_fields_values": custom_fields, "request_id": lead.id.to_string() }]);
        let created: Created = self.client.post(calls, "/api/v4/contacts", &body).await?;
        first_id(created.embedded.contacts, "contacts")
    }

    async fn create_deal(
        &self,
        lead: &Lead,
        contact_id: i64,
        placement: &Placement,
        calls: &mut Vec<HistoryEvent>,
    ) -> Result<i64, DeliveryError> {
        let spec = &lead.fields.deal;
        let mut tags = vec![json!({ "name": format!("leadgate:{}", lead.fields.source) })];
        tags.extend(spec.tags.iter().map(|tag| json!({ "name": tag })));
        let mut custom_fields = placement.deal_fields.clone();
        custom_fields.extend(custom_field_values(&spec.deal_fields));
        let mut deal = json!({
            "name": spec.title.clone().unwrap_or_else(|| format!("{}, {}", lead.fields.name, lead.fields.phone)),
            "pipeline_id": spec.pipeline_id.unwrap_or(placement.pipeline_id),
            "request_id": lead.id.to_string(),
            "custom_fields_values": custom_fields,
            "_embedded": { "contacts": [{ "id": contact_id, "is_main": true }], "tags": tags },
        });
        // A pipeline chosen by id without a stage starts the deal at that pipeline's first stage.
        match (spec.status_id, spec.pipeline_id) {
            (Some(status_id), _) => deal["status_id"] = json!(status_id),
            (None, None) => deal["status_id"] = json!(placement.status_id),
            (None, Some(_)) => {}
        }
        if let Some(price) = spec.price {
            deal["price"] = json!(price);
        }
        if let Some(user) = spec.responsible_user_id {
            deal["responsible_user_id"] = json!(user);
        }
        let body = json!([deal]);
        let created: Created = self.client.post(calls, "/api/v4/leads", &body).await?;
        first_id(created.embedded.leads, "leads")
    }

    async fn create_note(
        &self,
        lead: &Lead,
        deal_id: i64,
        calls: &mut Vec<HistoryEvent>,
    ) -> Result<i64, DeliveryError> {
        self.post_note(deal_id, &note_text(lead), calls).await
    }

    pub(crate) async fn post_note(
        &self,
        deal_id: i64,
        text: &str,
        calls: &mut Vec<HistoryEvent>,
    ) -> Result<i64, DeliveryError> {
        let body = json!([{ "entity_id": deal_id, "note_type": "common", "params": { "text": text } }]);
        let created: Created = self.client.post(calls, "/api/v4/leads/notes", &body).await?;
        first_id(created.embedded.notes, "notes")
    }

    async fn find_note(
        &self,
        lead: &Lead,
        deal_id: i64,
        calls: &mut Vec<HistoryEvent>,
    ) -> Result<Option<i64>, DeliveryError> {
        let page: Option<NotesPage> = self.client.get(calls, &format!("/api/v4/leads/{deal_id}/notes"), &[]).await?;
        let marker = note_marker(lead);
        Ok(page.into_iter().flat_map(|page| page.embedded.notes).find_map(|note| {
            note.params
                .get("text")
                .and_then(|text| text.as_str())
                .filter(|text| text.starts_with(&marker))
                .map(|_| note.id)
        }))
    }
}

/// The deal's custom field values: each configured received field that has a value.
fn deal_field_values(lead: &Lead, route: &Route) -> Vec<serde_json::Value> {
    route
        .deal_fields
        .iter()
        .filter_map(|(name, field_id)| {
            let value = match lead.fields.payload.get(name)? {
                serde_json::Value::String(text) if !text.trim().is_empty() => text.trim().to_owned(),
                serde_json::Value::Number(number) => number.to_string(),
                _ => return None,
            };
            Some(custom_field(*field_id, &value))
        })
        .collect()
}

fn custom_field_values(values: &std::collections::BTreeMap<i64, String>) -> Vec<serde_json::Value> {
    values.iter().map(|(field_id, value)| custom_field(*field_id, value)).collect()
}

/// One custom field with one value, as amoCRM takes it for contacts and deals alike.
fn custom_field(field_id: i64, value: &str) -> serde_json::Value {
    json!({ "field_id": field_id, "values": [{ "value": value }] })
}

/// The values of a contact's system field (`PHONE`, `EMAIL`) as text.
fn field_texts<'a>(contact: &'a AmoContact, code: &'a str) -> impl Iterator<Item = String> + 'a {
    contact
        .custom_fields_values
        .iter()
        .flatten()
        .filter(move |field| field.field_code.as_deref() == Some(code))
        .flat_map(|field| &field.values)
        .filter_map(|value| match &value.value {
            serde_json::Value::String(text) => Some(text.clone()),
            serde_json::Value::Number(number) => Some(number.to_string()),
            _ => None,
        })
}

fn first_id(created: Vec<super::wire::EntityRef>, what: &str) -> Result<i64, DeliveryError> {
    created
        .first()
        .map(|entity| entity.id)
        .ok_or_else(|| DeliveryError::Unavailable(format!("amoCRM created no {what} and gave no reason")))
}

/// The note's first line; it lets a resumed lead recognise a note it already wrote.
fn note_marker(lead: &Lead) -> String {
    format!("Заявка leadgate #{} (источник «{}»)", lead.id, lead.fields.source)
}

/// Every field the sender gave, so nobody has to open the gateway to read the lead.
fn note_text(lead: &Lead) -> String {
    let fields = &lead.fields;
    let mut lines = vec![
        note_marker(lead),
        format!("Имя: {}", fields.name),
        format!("Телефон: {} (получен как «{}»)", fields.phone, fields.phone.raw()),
    ];
    if let Some(email) = &fields.email {
        lines.push(format!("E-mail: {email}"));
    }
    if let Some(comment) = &fields.comment {
        lines.push(format!("Комментарий: {comment}"));
    }
    if !fields.deal.attachments.is_empty() {
        lines.push("Файлы:".to_owned());
        for file in &fields.deal.attachments {
            lines.push(format!("  {} ({}, {} байт): {}", file.name, file.content_type, file.size, file.url));
        }
    }
    if let Some(object) = fields.payload.as_object() {
        lines.push("Все поля заявки:".to_owned());
        for (key, value) in object {
            let value = match value {
                serde_json::Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            lines.push(format!("  {key}: {value}"));
        }
    }
    lines.join("\n")
}
