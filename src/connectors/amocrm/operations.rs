//! The contract's operations in amoCRM's API v4: contacts found by phone or e-mail, deals in pipelines, notes.

use std::collections::BTreeMap;

use serde_json::json;

use super::AmoCrm;
use super::wire::{AmoContact, AmoDeal, ContactsPage, Created, EntityRef, NotesPage};
use crate::config::Route;
use crate::connectors::{Caller, Calls, ClientFound, DeliveryError, NamedRecord, Operation, Search};
use crate::domain::{CrmRef, EntityKind, Lead, Phone};

/// amoCRM's fixed ids of the "won" and "lost" stages, the same in every pipeline.
const CLOSED_STATUSES: [i64; 2] = [142, 143];
/// A caller's card shows this many open deals, found among this many newest deals.
const MOST_OPEN_DEALS: usize = 5;
const MOST_DEALS_LOOKED_AT: usize = 10;

impl AmoCrm {
    /// amoCRM has companies, but the gateway has never made them, and files live in its own
    /// file storage API; notes carry links to the gateway's copies instead.
    pub fn supports(operation: Operation) -> bool {
        !matches!(operation, Operation::CreateOrganization | Operation::AttachFile)
    }

    pub async fn find_client(
        &self,
        lead: &Lead,
        route: &Route,
        search: Search,
        calls: &mut Calls,
    ) -> Result<Option<ClientFound>, DeliveryError> {
        let mut contacts = self.matching_contacts(&lead.fields.phone, calls).await?;
        if contacts.is_empty()
            && search.by_email
            && let Some(email) = &lead.fields.email
        {
            contacts = self.contacts_with_email(email.as_str(), calls).await?;
        }
        let Some(first) = contacts.first() else {
            return Ok(None);
        };
        let found = |contact: &AmoContact, deal: Option<i64>| ClientFound {
            contact: contact_ref(contact.id),
            organization: None,
            deal: deal.map(deal_ref),
            responsible: contact.responsible_user_id.map(user_ref),
        };
        if search.with_deal {
            let pipeline_id = self.placement(route, calls).await?.pipeline_id;
            for contact in &contacts {
                if let Some(deal_id) = self.pick_deal(contact, pipeline_id, calls).await? {
                    return Ok(Some(found(contact, Some(deal_id))));
                }
            }
        }
        Ok(Some(found(first, None)))
    }

    pub async fn find_deal_of(
        &self,
        contact: &CrmRef,
        route: &Route,
        calls: &mut Calls,
    ) -> Result<Option<CrmRef>, DeliveryError> {
        let pipeline_id = self.placement(route, calls).await?.pipeline_id;
        let path = format!("/api/v4/contacts/{}", numeric(contact)?);
        let found: Option<AmoContact> = self.client.get(calls, &path, &[("with", "leads")]).await?;
        match found {
            Some(found) => Ok(self.pick_deal(&found, pipeline_id, calls).await?.map(deal_ref)),
            None => Ok(None),
        }
    }

    pub async fn find_note(
        &self,
        deal: &CrmRef,
        first_line: &str,
        calls: &mut Calls,
    ) -> Result<Option<CrmRef>, DeliveryError> {
        let path = format!("/api/v4/leads/{}/notes", numeric(deal)?);
        let page: Option<NotesPage> = self.client.get(calls, &path, &[]).await?;
        Ok(page.into_iter().flat_map(|page| page.embedded.notes).find_map(|note| {
            note.params
                .get("text")
                .and_then(|text| text.as_str())
                .filter(|text| text.starts_with(first_line))
                .map(|_| CrmRef::new(EntityKind::Note, note.id.to_string()))
        }))
    }

    pub async fn create_contact(
        &self,
        lead: &Lead,
        _organization: Option<&CrmRef>,
        calls: &mut Calls,
    ) -> Result<CrmRef, DeliveryError> {
        let fields = &lead.fields;
        let mut custom_fields =
            vec![json!({ "field_code": "PHONE", "values": [{ "value": fields.phone.e164(), "enum_code": "WORK" }] })];
        if let Some(email) = &fields.email {
            custom_fields
                .push(json!({ "field_code": "EMAIL", "values": [{ "value": email.as_str(), "enum_code": "WORK" }] }));
        }
        let contact_fields =
            self.contact_fields.keep_known(&self.client, fields.deal.contact_fields.clone(), calls).await?;
        custom_fields.extend(custom_field_values(&contact_fields));
        let body =
            json!([{ "name": fields.name, "custom_fields_values": custom_fields, "request_id": lead.id.to_string() }]);
        let created: Created = self.client.post(calls, "/api/v4/contacts", &body).await?;
        first_id(created.embedded.contacts, "contacts").map(contact_ref)
    }

    pub async fn create_deal(
        &self,
        lead: &Lead,
        route: &Route,
        contact: &CrmRef,
        _organization: Option<&CrmRef>,
        calls: &mut Calls,
    ) -> Result<CrmRef, DeliveryError> {
        let placement = self.placement(route, calls).await?;
        let spec = &lead.fields.deal;
        let mut tags = vec![json!({ "name": format!("leadgate:{}", lead.fields.source) })];
        tags.extend(spec.tags.iter().map(|tag| json!({ "name": tag })));
        // The request's own values win over the route's for the same field.
        let mut deal_fields = deal_field_values(lead, route);
        deal_fields.extend(spec.deal_fields.iter().map(|(id, value)| (*id, value.clone())));
        let deal_fields = self.deal_fields.keep_known(&self.client, deal_fields, calls).await?;
        let mut deal = json!({
            "name": spec.title.clone().unwrap_or_else(|| format!("{}, {}", lead.fields.name, lead.fields.phone)),
            "pipeline_id": spec.pipeline_id.unwrap_or(placement.pipeline_id),
            "request_id": lead.id.to_string(),
            "custom_fields_values": custom_field_values(&deal_fields),
            "_embedded": { "contacts": [{ "id": numeric(contact)?, "is_main": true }], "tags": tags },
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
        first_id(created.embedded.leads, "leads").map(deal_ref)
    }

    pub async fn move_deal(&self, deal: &CrmRef, route: &Route, calls: &mut Calls) -> Result<(), DeliveryError> {
        let placement = self.placement(route, calls).await?;
        let change = json!({ "pipeline_id": placement.pipeline_id, "status_id": placement.status_id });
        self.client.patch(calls, &format!("/api/v4/leads/{}", numeric(deal)?), &change).await
    }

    pub async fn add_note(&self, deal: &CrmRef, text: &str, calls: &mut Calls) -> Result<CrmRef, DeliveryError> {
        let body = json!([{ "entity_id": numeric(deal)?, "note_type": "common", "params": { "text": text } }]);
        let created: Created = self.client.post(calls, "/api/v4/leads/notes", &body).await?;
        first_id(created.embedded.notes, "notes").map(|id| CrmRef::new(EntityKind::Note, id.to_string()))
    }

    /// The oldest contact with the phone, as `find_client` picks it, with up to five of its
    /// open deals, newest first.
    pub async fn caller(&self, phone: &Phone, calls: &mut Calls) -> Result<Option<Caller>, DeliveryError> {
        let contacts = self.matching_contacts(phone, calls).await?;
        let Some(contact) = contacts.into_iter().next() else {
            return Ok(None);
        };
        let mut deal_ids: Vec<i64> =
            contact.embedded.iter().flat_map(|links| &links.leads).map(|deal| deal.id).collect();
        deal_ids.sort_unstable_by(|a, b| b.cmp(a));
        let mut open_deals = Vec::new();
        // Each deal is one request; a caller with a long history is shown their recent deals.
        for deal_id in deal_ids.into_iter().take(MOST_DEALS_LOOKED_AT) {
            let deal: Option<AmoDeal> = self.client.get(calls, &format!("/api/v4/leads/{deal_id}"), &[]).await?;
            if let Some(deal) = deal.filter(|deal| !CLOSED_STATUSES.contains(&deal.status_id)) {
                open_deals.push(NamedRecord { record: deal_ref(deal.id), name: deal.name });
            }
            if open_deals.len() == MOST_OPEN_DEALS {
                break;
            }
        }
        Ok(Some(Caller { contact: contact_ref(contact.id), name: contact.name, open_deals }))
    }

    /// Contacts holding exactly this phone. amoCRM's search is fuzzy and matches any field, so
    /// it is asked for the last ten digits and every answer is checked on normalized numbers.
    async fn matching_contacts(&self, phone: &Phone, calls: &mut Calls) -> Result<Vec<AmoContact>, DeliveryError> {
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
    async fn contacts_with_email(&self, email: &str, calls: &mut Calls) -> Result<Vec<AmoContact>, DeliveryError> {
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

    /// The contact's deal in the pipeline: the newest open one, else the newest closed one.
    async fn pick_deal(
        &self,
        contact: &AmoContact,
        pipeline_id: i64,
        calls: &mut Calls,
    ) -> Result<Option<i64>, DeliveryError> {
        let mut deal_ids: Vec<i64> =
            contact.embedded.iter().flat_map(|links| &links.leads).map(|deal| deal.id).collect();
        deal_ids.sort_unstable_by(|a, b| b.cmp(a));
        let mut newest_closed = None;
        for deal_id in deal_ids {
            let deal: Option<AmoDeal> = self.client.get(calls, &format!("/api/v4/leads/{deal_id}"), &[]).await?;
            match deal {
                Some(deal) if deal.pipeline_id == pipeline_id && !CLOSED_STATUSES.contains(&deal.status_id) => {
                    return Ok(Some(deal.id));
                }
                Some(deal) if deal.pipeline_id == pipeline_id => {
                    newest_closed = newest_closed.or(Some(deal.id));
                }
                _ => {}
            }
        }
        Ok(newest_closed)
    }
}

pub(super) fn contact_ref(id: i64) -> CrmRef {
    CrmRef::new(EntityKind::Contact, id.to_string())
}

pub(super) fn deal_ref(id: i64) -> CrmRef {
    CrmRef::new(EntityKind::Deal, id.to_string())
}

pub(super) fn user_ref(id: i64) -> CrmRef {
    CrmRef::new(EntityKind::User, id.to_string())
}

/// amoCRM numbers every record; a record of another CRM cannot be one of its own.
pub(super) fn numeric(record: &CrmRef) -> Result<i64, DeliveryError> {
    record.id.parse().map_err(|_| DeliveryError::Misconfigured(format!("{record} is not an amoCRM id")))
}

/// The deal's custom field values by field id: each configured received field that has a value.
fn deal_field_values(lead: &Lead, route: &Route) -> BTreeMap<i64, String> {
    route
        .deal_fields
        .iter()
        .filter_map(|(name, field_id)| {
            let value = match lead.fields.payload.get(name)? {
                serde_json::Value::String(text) if !text.trim().is_empty() => text.trim().to_owned(),
                serde_json::Value::Number(number) => number.to_string(),
                _ => return None,
            };
            Some((*field_id, value))
        })
        .collect()
}

fn custom_field_values(values: &BTreeMap<i64, String>) -> Vec<serde_json::Value> {
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

pub(super) fn first_id(created: Vec<EntityRef>, what: &str) -> Result<i64, DeliveryError> {
    created
        .first()
        .map(|entity| entity.id)
        .ok_or_else(|| DeliveryError::Unavailable(format!("amoCRM created no {what} and gave no reason")))
}
