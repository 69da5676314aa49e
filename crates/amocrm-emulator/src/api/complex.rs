//! `POST /api/v4/leads/complex`: a lead with its new or existing contact and company in one call.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::contacts::{ContactDraft, insert_contact, read_contact};
use super::hal;
use super::leads::{LeadDraft, Links, insert_lead, read_lead};
use crate::Shared;
use crate::catalog::CONTACT_FIELDS;
use crate::input::{self, FieldError, Item, Verdicts};
use crate::problem::Problem;
use crate::state::{Company, Crm, CustomField, LeadContact, now_unix};

/// amoCRM's documented ceiling for one complex request.
const MAX_COMPLEX_LEADS: usize = 50;

enum Part<New> {
    Absent,
    Existing(u64),
    New(New),
}

struct NewCompany {
    name: String,
    custom_fields: Vec<CustomField>,
}

struct ComplexDraft {
    request_id: String,
    lead: LeadDraft,
    contact: Part<ContactDraft>,
    company: Part<NewCompany>,
}

/// The single entry of `_embedded.{key}` (amoCRM allows at most one), with its path prefix.
fn single<'a>(
    item: &mut Item<'a>,
    embedded: &'a Map<String, Value>,
    key: &str,
) -> Option<(&'a Map<String, Value>, String)> {
    let entries = item.objects_in(embedded, "_embedded.", key);
    if entries.len() > 1 {
        item.fail(FieldError::too_many(format!("_embedded.{key}"), 1));
        return None;
    }
    let entry = entries.into_iter().next()?;
    Some((entry, format!("_embedded.{key}.0.")))
}

/// An `{id}` entry links an existing entity; it must exist.
fn existing_id(
    item: &mut Item<'_>,
    entry: &Map<String, Value>,
    prefix: &str,
    exists: impl Fn(u64) -> bool,
) -> Option<u64> {
    entry.get("id")?;
    let id = item.u64_in(entry, prefix, "id")?;
    if exists(id) {
        Some(id)
    } else {
        item.fail(FieldError::not_supported_choice(format!("{prefix}id")));
        None
    }
}

fn read_complex(item: &mut Item<'_>, crm: &Crm) -> ComplexDraft {
    let lead = read_lead(item, crm, None, Links::Ignored);
    let embedded = item.embedded();
    let contact = match single(item, embedded, "contacts") {
        None => Part::Absent,
        Some((entry, prefix)) if entry.contains_key("id") => {
            existing_id(item, entry, &prefix, |id| crm.contacts.contains_key(&id)).map_or(Part::Absent, Part::Existing)
        }
        Some((entry, prefix)) => Part::New(read_contact(item, entry, &prefix, crm)),
    };
    let company = match single(item, embedded, "companies") {
        None => Part::Absent,
        Some((entry, prefix)) if entry.contains_key("id") => {
            existing_id(item, entry, &prefix, |id| crm.companies.contains_key(&id)).map_or(Part::Absent, Part::Existing)
        }
        Some((entry, prefix)) => Part::New(NewCompany {
            name: item.string_in(entry, &prefix, "name").unwrap_or_default(),
            custom_fields: item.custom_fields_in(entry, &prefix, CONTACT_FIELDS),
        }),
    };
    ComplexDraft { request_id: item.request_id.clone(), lead, contact, company }
}

/// Creates what the draft asks for. A new contact and a new company are linked together,
/// as amoCRM does; duplicate control is off, so nothing is ever merged.
fn insert_complex(crm: &mut Crm, draft: ComplexDraft) -> Value {
    let company_id = match draft.company {
        Part::Absent => None,
        Part::Existing(id) => Some(id),
        Part::New(company) => {
            let id = crm.next_company_id();
            let now = now_unix();
            crm.companies.insert(
                id,
                Company {
                    id,
                    name: company.name,
                    created_at: now,
                    updated_at: now,
                    custom_fields: company.custom_fields,
                },
            );
            Some(id)
        }
    };
    let contact_id = match draft.contact {
        Part::Absent => None,
        Part::Existing(id) => Some(id),
        Part::New(contact) => {
            let id = insert_contact(crm, contact);
            if let (Some(company_id), Some(stored)) = (company_id, crm.contacts.get_mut(&id)) {
                stored.company_ids.push(company_id);
            }
            Some(id)
        }
    };
    let mut lead = draft.lead;
    lead.contacts = contact_id.map(|contact_id| LeadContact { contact_id, is_main: true }).into_iter().collect();
    lead.company_ids = company_id.into_iter().collect();
    let id = insert_lead(crm, lead);
    json!({
        "id": id,
        "contact_id": contact_id,
        "company_id": company_id,
        "request_id": [draft.request_id],
        "merged": false,
    })
}

pub async fn create(State(shared): State<Arc<Shared>>, body: Bytes) -> Result<Response, Problem> {
    let items = input::batch(&body)?;
    if items.len() > MAX_COMPLEX_LEADS {
        return Err(Problem::BadRequest(format!("No more than {MAX_COMPLEX_LEADS} leads may be added at once")));
    }
    let mut state = shared.lock();
    let crm = &mut state.crm;
    let mut verdicts = Verdicts::default();
    let mut drafts = Vec::new();
    for (index, value) in items.iter().enumerate() {
        let mut item = Item::new(value, index);
        drafts.push(read_complex(&mut item, crm));
        verdicts.record(item);
    }
    verdicts.into_result()?;
    let created: Vec<Value> = drafts.into_iter().map(|draft| insert_complex(crm, draft)).collect();
    // The complex answer is a bare array, unlike every other write.
    Ok(hal(Value::Array(created)))
}
