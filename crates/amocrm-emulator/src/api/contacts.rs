//! Contacts: fuzzy search, lookup by id, batch create and update.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::{Base, ListQuery, entity_id, hal, hal::links, no_content, page_of};
use crate::Shared;
use crate::catalog::CONTACT_FIELDS;
use crate::input::{self, FieldError, Item, Verdicts};
use crate::problem::Problem;
use crate::state::{Contact, Crm, CustomField, TagRef, merge_fields, now_unix};

/// The writable fields of a contact as read from a request; `None` means "not given".
#[derive(Debug, Default)]
pub struct ContactDraft {
    pub name: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub responsible_user_id: Option<u64>,
    pub custom_fields: Vec<CustomField>,
    pub tags: Vec<TagRef>,
}

/// Reads a contact found at `prefix` inside `item` (the root, or a complex lead's contact).
pub fn read_contact<'a>(item: &mut Item<'a>, object: &'a Map<String, Value>, prefix: &str, crm: &Crm) -> ContactDraft {
    ContactDraft {
        name: item.string_in(object, prefix, "name"),
        first_name: item.string_in(object, prefix, "first_name"),
        last_name: item.string_in(object, prefix, "last_name"),
        responsible_user_id: item.u64_in(object, prefix, "responsible_user_id"),
        custom_fields: item.custom_fields_in(object, prefix, CONTACT_FIELDS),
        tags: item.tags_in(object, prefix, |id| crm.tag_exists(id)),
    }
}

/// Stores a new contact. Like amoCRM, a contact given only first/last name is named by them,
/// and one given no responsible user belongs to the account's first user.
pub fn insert_contact(crm: &mut Crm, draft: ContactDraft) -> u64 {
    let id = crm.next_contact_id();
    let now = now_unix();
    let first_name = draft.first_name.unwrap_or_default();
    let last_name = draft.last_name.unwrap_or_default();
    let name = draft.name.unwrap_or_else(|| {
        [first_name.as_str(), last_name.as_str()]
            .iter()
            .filter(|part| !part.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(" ")
    });
    let tag_ids = crm.resolve_tags(&draft.tags);
    let responsible_user_id = draft.responsible_user_id.unwrap_or_else(|| crm.default_user_id());
    crm.contacts.insert(
        id,
        Contact {
            id,
            name,
            first_name,
            last_name,
            responsible_user_id,
            created_at: now,
            updated_at: now,
            custom_fields: draft.custom_fields,
            tag_ids,
            company_ids: Vec::new(),
        },
    );
    id
}

pub async fn list(
    State(shared): State<Arc<Shared>>,
    Base(base): Base,
    Query(query): Query<ListQuery>,
) -> Result<Response, Problem> {
    let state = shared.lock();
    let crm = &state.crm;
    let folded = query.folded_query();
    let with_leads = query.with("leads");
    let found: Vec<Value> = crm
        .contacts
        .values()
        .filter(|contact| folded.as_deref().is_none_or(|text| contact.matches(text)))
        .map(|contact| super::hal::contact(crm, &base, contact, with_leads))
        .collect();
    page_of(&query, &base, "/api/v4/contacts", "contacts", found)
}

pub async fn show(
    State(shared): State<Arc<Shared>>,
    Base(base): Base,
    Path(raw_id): Path<String>,
    Query(query): Query<ListQuery>,
) -> Result<Response, Problem> {
    let id = entity_id(&raw_id)?;
    let state = shared.lock();
    Ok(match state.crm.contacts.get(&id) {
        Some(contact) => hal(super::hal::contact(&state.crm, &base, contact, query.with("leads"))),
        None => no_content(),
    })
}

pub async fn create(State(shared): State<Arc<Shared>>, Base(base): Base, body: Bytes) -> Result<Response, Problem> {
    let items = input::batch(&body)?;
    let mut state = shared.lock();
    let crm = &mut state.crm;
    let mut verdicts = Verdicts::default();
    let mut drafts = Vec::new();
    for (index, value) in items.iter().enumerate() {
        let mut item = Item::new(value, index);
        let root = item.root;
        let draft = read_contact(&mut item, root, "", crm);
        drafts.push((item.request_id.clone(), draft));
        verdicts.record(item);
    }
    verdicts.into_result()?;
    let created: Vec<Value> = drafts
        .into_iter()
        .map(|(request_id, draft)| {
            let id = insert_contact(crm, draft);
            let path = format!("/api/v4/contacts/{id}");
            json!({"id": id, "request_id": request_id, "_links": links(&base, &path)})
        })
        .collect();
    Ok(hal(json!({
        "_links": links(&base, "/api/v4/contacts"),
        "_embedded": {"contacts": created},
    })))
}

/// Reads one update. An id that names no contact is a validation error on `id`: amoCRM's
/// answer for it is not documented, and 400 is the answer a client must already handle.
fn read_update<'a>(item: &mut Item<'a>, crm: &Crm, path_id: Option<u64>) -> Option<(u64, ContactDraft)> {
    let id = path_id.or_else(|| item.u64("id"));
    let root = item.root;
    let draft = read_contact(item, root, "", crm);
    match id {
        Some(id) if crm.contacts.contains_key(&id) => Some((id, draft)),
        Some(_) => {
            item.fail(FieldError::not_supported_choice("id"));
            None
        }
        None => {
            item.fail(FieldError::not_blank("id"));
            None
        }
    }
}

fn apply_update(crm: &mut Crm, id: u64, draft: ContactDraft) -> i64 {
    let tag_ids = crm.resolve_tags(&draft.tags);
    let now = now_unix();
    if let Some(contact) = crm.contacts.get_mut(&id) {
        if let Some(name) = draft.name {
            contact.name = name;
        }
        if let Some(first_name) = draft.first_name {
            contact.first_name = first_name;
        }
        if let Some(last_name) = draft.last_name {
            contact.last_name = last_name;
        }
        if let Some(responsible) = draft.responsible_user_id {
            contact.responsible_user_id = responsible;
        }
        merge_fields(&mut contact.custom_fields, draft.custom_fields);
        // `_embedded.tags` in an update replaces the tag set (unconfirmed choice); an absent or
        // empty list leaves the tags alone.
        if !tag_ids.is_empty() {
            contact.tag_ids = tag_ids;
        }
        contact.updated_at = now;
    }
    now
}

pub async fn update_one(
    State(shared): State<Arc<Shared>>,
    Base(base): Base,
    Path(raw_id): Path<String>,
    body: Bytes,
) -> Result<Response, Problem> {
    let id = entity_id(&raw_id)?;
    let value = input::object(&body)?;
    let mut state = shared.lock();
    let crm = &mut state.crm;
    let mut item = Item::new(&value, 0);
    let update = read_update(&mut item, crm, Some(id));
    let mut verdicts = Verdicts::default();
    verdicts.record(item);
    verdicts.into_result()?;
    let Some((id, draft)) = update else {
        return Err(Problem::invalid("0", FieldError::not_supported_choice("id")));
    };
    let updated_at = apply_update(crm, id, draft);
    let path = format!("/api/v4/contacts/{id}");
    Ok(hal(json!({"id": id, "updated_at": updated_at, "_links": links(&base, &path)})))
}

pub async fn update_many(
    State(shared): State<Arc<Shared>>,
    Base(base): Base,
    body: Bytes,
) -> Result<Response, Problem> {
    let items = input::batch(&body)?;
    let mut state = shared.lock();
    let crm = &mut state.crm;
    let mut verdicts = Verdicts::default();
    let mut updates = Vec::new();
    for (index, value) in items.iter().enumerate() {
        let mut item = Item::new(value, index);
        updates.extend(read_update(&mut item, crm, None));
        verdicts.record(item);
    }
    verdicts.into_result()?;
    let updated: Vec<Value> = updates
        .into_iter()
        .map(|(id, draft)| {
            let updated_at = apply_update(crm, id, draft);
            let path = format!("/api/v4/contacts/{id}");
            json!({"id": id, "updated_at": updated_at, "_links": links(&base, &path)})
        })
        .collect();
    Ok(hal(json!({
        "_links": links(&base, "/api/v4/contacts"),
        "_embedded": {"contacts": updated},
    })))
}
