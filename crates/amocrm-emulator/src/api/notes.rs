//! Notes on leads and contacts: batch add (by `entity_id` or by path) and listing.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::{Base, ListQuery, entity_id, hal, hal::links, page_of};
use crate::Shared;
use crate::input::{self, FieldError, Item, Verdicts};
use crate::problem::Problem;
use crate::state::{Crm, EntityKind, Note, now_unix};

/// The note types a client may create; the rest (system notes, attachments…) are refused.
const WRITABLE_TYPES: &[&str] = &["common", "call_in", "call_out", "service_message", "sms_in", "sms_out"];

/// The `params` of a call note the PHP client writes: five base keys it always sends, then
/// `call_result`, `call_status` and `call_responsible` when set.
const CALL_PARAMS: &[&str] =
    &["uniq", "duration", "source", "link", "phone", "call_result", "call_status", "call_responsible"];

/// `call_status` codes of the PHP client's `CallInterface`: 1 voice message … 4 talked … 8 undefined.
const CALL_STATUSES: std::ops::RangeInclusive<u64> = 1..=8;

struct NoteDraft {
    request_id: String,
    entity_id: u64,
    note_type: String,
    params: Value,
    responsible_user_id: Option<u64>,
}

/// Checks one note. Text notes must carry `params.text` (and service messages a
/// `params.service`); which call parameters amoCRM insists on is not known, so calls need
/// none of them, but each one given must have its type, and `call_status` its range.
fn read_note(item: &mut Item<'_>, crm: &Crm, kind: EntityKind, path_entity: Option<u64>) -> Option<NoteDraft> {
    let entity_id = match path_entity.or_else(|| item.u64("entity_id")) {
        Some(id) if crm.entity_exists(kind, id) => Some(id),
        Some(_) => {
            item.fail(FieldError::not_supported_choice("entity_id"));
            None
        }
        None => {
            item.fail(FieldError::not_blank("entity_id"));
            None
        }
    };
    let note_type = match item.string("note_type") {
        Some(note_type) if WRITABLE_TYPES.contains(&note_type.as_str()) => Some(note_type),
        Some(_) => {
            item.fail(FieldError::not_supported_choice("note_type"));
            None
        }
        None => {
            item.fail(FieldError::not_blank("note_type"));
            None
        }
    };
    let params = match item.root.get("params") {
        Some(params @ Value::Object(_)) => Some(params.clone()),
        None | Some(Value::Null) => {
            item.fail(FieldError::not_blank("params"));
            None
        }
        Some(_) => {
            item.fail(FieldError::invalid_type("params", "object"));
            None
        }
    };
    let required: &[&str] = match note_type.as_deref() {
        Some("common" | "sms_in" | "sms_out") => &["text"],
        Some("service_message") => &["service", "text"],
        _ => &[],
    };
    if let (Some("call_in" | "call_out"), Some(Value::Object(params))) = (note_type.as_deref(), &params) {
        check_call_params(item, params);
    }
    let responsible_user_id = item.u64("responsible_user_id");
    if let Some(params) = &params {
        for key in required {
            let present = params.get(key).and_then(Value::as_str).is_some_and(|text| !text.is_empty());
            if !present {
                item.fail(FieldError::not_blank(format!("params.{key}")));
            }
        }
    }
    Some(NoteDraft {
        request_id: item.request_id.clone(),
        entity_id: entity_id?,
        note_type: note_type?,
        params: params?,
        responsible_user_id,
    })
}

/// A key outside the client's set is refused (an UNCONFIRMED choice), so a misspelt key
/// fails a test instead of vanishing; a `call_status` outside 1–8 is refused on its path.
/// `call_responsible` is a user id or, as the PHP client allows, a name.
fn check_call_params(item: &mut Item<'_>, params: &Map<String, Value>) {
    for (key, value) in params {
        let path = format!("params.{key}");
        if !CALL_PARAMS.contains(&key.as_str()) {
            item.fail(FieldError::not_supported_choice(path));
            continue;
        }
        if value.is_null() {
            continue;
        }
        match key.as_str() {
            "call_status" => match value.as_u64() {
                None => item.fail(FieldError::invalid_type(path, "int")),
                Some(code) if !CALL_STATUSES.contains(&code) => item.fail(FieldError::not_supported_choice(path)),
                Some(_) => {}
            },
            "duration" if !value.is_u64() => item.fail(FieldError::invalid_type(path, "int")),
            "call_responsible" if !value.is_u64() && !value.is_string() => {
                item.fail(FieldError::invalid_type(path, "int"));
            }
            "uniq" | "source" | "link" | "phone" | "call_result" if !value.is_string() => {
                item.fail(FieldError::invalid_type(path, "string"));
            }
            _ => {}
        }
    }
}

fn add(
    shared: &Shared,
    base: &str,
    kind: EntityKind,
    path_entity: Option<u64>,
    body: &[u8],
) -> Result<Response, Problem> {
    let items = input::batch(body)?;
    let mut state = shared.lock();
    let crm = &mut state.crm;
    let mut verdicts = Verdicts::default();
    let mut drafts = Vec::new();
    for (index, value) in items.iter().enumerate() {
        let mut item = Item::new(value, index);
        drafts.extend(read_note(&mut item, crm, kind, path_entity));
        verdicts.record(item);
    }
    verdicts.into_result()?;
    let entity = kind.as_str();
    let created: Vec<Value> = drafts
        .into_iter()
        .map(|draft| {
            let id = crm.next_note_id();
            let responsible_user_id = draft.responsible_user_id.unwrap_or_else(|| crm.default_user_id());
            crm.notes.insert(
                id,
                Note {
                    id,
                    entity_kind: kind,
                    entity_id: draft.entity_id,
                    note_type: draft.note_type,
                    params: draft.params,
                    responsible_user_id,
                    created_at: now_unix(),
                },
            );
            let path = format!("/api/v4/{entity}/{}/notes/{id}", draft.entity_id);
            json!({
                "id": id,
                "entity_id": draft.entity_id,
                "request_id": draft.request_id,
                "_links": links(base, &path),
            })
        })
        .collect();
    let self_path = match path_entity {
        Some(id) => format!("/api/v4/{entity}/{id}/notes"),
        None => format!("/api/v4/{entity}/notes"),
    };
    Ok(hal(json!({
        "_links": links(base, &self_path),
        "_embedded": {"notes": created},
    })))
}

fn list(
    shared: &Shared,
    base: &str,
    query: &ListQuery,
    kind: EntityKind,
    entity: Option<u64>,
) -> Result<Response, Problem> {
    let state = shared.lock();
    let crm = &state.crm;
    let notes: Vec<Value> = crm
        .notes
        .values()
        .filter(|note| note.entity_kind == kind && entity.is_none_or(|id| note.entity_id == id))
        .map(|note| super::hal::note(crm, base, note))
        .collect();
    let path = match entity {
        Some(id) => format!("/api/v4/{}/{id}/notes", kind.as_str()),
        None => format!("/api/v4/{}/notes", kind.as_str()),
    };
    page_of(query, base, &path, "notes", notes)
}

pub async fn add_to_leads(
    State(shared): State<Arc<Shared>>,
    Base(base): Base,
    body: Bytes,
) -> Result<Response, Problem> {
    add(&shared, &base, EntityKind::Leads, None, &body)
}

pub async fn add_to_contacts(
    State(shared): State<Arc<Shared>>,
    Base(base): Base,
    body: Bytes,
) -> Result<Response, Problem> {
    add(&shared, &base, EntityKind::Contacts, None, &body)
}

pub async fn add_to_lead(
    State(shared): State<Arc<Shared>>,
    Base(base): Base,
    Path(raw_id): Path<String>,
    body: Bytes,
) -> Result<Response, Problem> {
    add(&shared, &base, EntityKind::Leads, Some(entity_id(&raw_id)?), &body)
}

pub async fn add_to_contact(
    State(shared): State<Arc<Shared>>,
    Base(base): Base,
    Path(raw_id): Path<String>,
    body: Bytes,
) -> Result<Response, Problem> {
    add(&shared, &base, EntityKind::Contacts, Some(entity_id(&raw_id)?), &body)
}

pub async fn list_for_leads(
    State(shared): State<Arc<Shared>>,
    Base(base): Base,
    Query(query): Query<ListQuery>,
) -> Result<Response, Problem> {
    list(&shared, &base, &query, EntityKind::Leads, None)
}

pub async fn list_for_contacts(
    State(shared): State<Arc<Shared>>,
    Base(base): Base,
    Query(query): Query<ListQuery>,
) -> Result<Response, Problem> {
    list(&shared, &base, &query, EntityKind::Contacts, None)
}

pub async fn list_of_lead(
    State(shared): State<Arc<Shared>>,
    Base(base): Base,
    Path(raw_id): Path<String>,
    Query(query): Query<ListQuery>,
) -> Result<Response, Problem> {
    list(&shared, &base, &query, EntityKind::Leads, Some(entity_id(&raw_id)?))
}

pub async fn list_of_contact(
    State(shared): State<Arc<Shared>>,
    Base(base): Base,
    Path(raw_id): Path<String>,
    Query(query): Query<ListQuery>,
) -> Result<Response, Problem> {
    list(&shared, &base, &query, EntityKind::Contacts, Some(entity_id(&raw_id)?))
}
