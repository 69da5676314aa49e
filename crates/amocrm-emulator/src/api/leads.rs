//! Leads (deals): search, lookup by id, batch create, and moves between stages.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde_json::{Value, json};

use super::{Base, ListQuery, entity_id, hal, hal::links, no_content, page_of};
use crate::Shared;
use crate::catalog::{LEAD_FIELDS, LOST_STATUS_ID, WON_STATUS_ID};
use crate::input::{self, FieldError, Item, Verdicts};
use crate::problem::Problem;
use crate::state::{Crm, CustomField, Lead, LeadContact, TagRef, merge_fields, now_unix};

/// The writable fields of a lead as read from a request; `None` means "not given".
#[derive(Debug, Default)]
pub struct LeadDraft {
    pub name: Option<String>,
    pub price: Option<u64>,
    pub responsible_user_id: Option<u64>,
    /// `(pipeline_id, status_id)` after resolution; `None` on an update that moves nothing.
    pub placement: Option<(u64, u64)>,
    pub loss_reason_id: Option<u64>,
    pub custom_fields: Vec<CustomField>,
    pub tags: Vec<TagRef>,
    pub contacts: Vec<LeadContact>,
    pub company_ids: Vec<u64>,
}

/// Which of `_embedded.contacts` / `_embedded.companies` a request may carry as links.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Links {
    /// Plain `POST /leads`: `[{id, is_main}]` links existing entities.
    Existing,
    /// Updates and complex creation read (or ignore) them elsewhere.
    Ignored,
}

/// Resolves where a lead stands. Without a status a lead enters the first working stage of
/// the given (or main) pipeline; a bare `status_id` finds its pipeline, preferring the
/// lead's current one; a status outside the named pipeline is rejected on `status_id`.
fn place(
    crm: &Crm,
    pipeline_id: Option<u64>,
    status_id: Option<u64>,
    current: Option<(u64, u64)>,
) -> Result<Option<(u64, u64)>, FieldError> {
    let unknown_status = || FieldError::not_supported_choice("status_id");
    match (pipeline_id, status_id) {
        (Some(pipeline_id), status_id) => {
            let pipeline = crm.pipeline(pipeline_id).ok_or_else(|| FieldError::not_supported_choice("pipeline_id"))?;
            let status_id = match (status_id, current) {
                (Some(status_id), _) => status_id,
                (None, Some((current_pipeline, current_status))) if current_pipeline == pipeline_id => current_status,
                (None, _) => pipeline.entry_status().ok_or_else(unknown_status)?.id,
            };
            pipeline.status(status_id).ok_or_else(unknown_status)?;
            Ok(Some((pipeline_id, status_id)))
        }
        (None, Some(status_id)) => {
            let in_current = current
                .and_then(|(pipeline_id, _)| crm.pipeline(pipeline_id))
                .filter(|pipeline| pipeline.status(status_id).is_some());
            let pipeline = in_current.or_else(|| crm.pipeline_owning(status_id)).ok_or_else(unknown_status)?;
            Ok(Some((pipeline.id, status_id)))
        }
        (None, None) if current.is_some() => Ok(None),
        (None, None) => {
            let pipeline = crm.main_pipeline().ok_or_else(|| FieldError::not_supported_choice("pipeline_id"))?;
            let status = pipeline.entry_status().ok_or_else(unknown_status)?;
            Ok(Some((pipeline.id, status.id)))
        }
    }
}

/// Reads a lead from the root of `item`. `current` is the lead being updated, if any.
pub fn read_lead(item: &mut Item<'_>, crm: &Crm, current: Option<&Lead>, links: Links) -> LeadDraft {
    let pipeline_id = item.u64("pipeline_id");
    let status_id = item.u64("status_id");
    let placement = place(crm, pipeline_id, status_id, current.map(|lead| (lead.pipeline_id, lead.status_id)))
        .unwrap_or_else(|error| {
            item.fail(error);
            None
        });
    let root = item.root;
    let mut draft = LeadDraft {
        name: item.string("name"),
        price: item.u64("price"),
        responsible_user_id: item.u64("responsible_user_id"),
        placement,
        loss_reason_id: item.u64("loss_reason_id"),
        custom_fields: item.custom_fields_in(root, "", LEAD_FIELDS),
        tags: item.tags_in(root, "", |id| crm.tag_exists(id)),
        contacts: Vec::new(),
        company_ids: Vec::new(),
    };
    if links == Links::Existing {
        read_links(item, crm, &mut draft);
    }
    draft
}

fn read_links(item: &mut Item<'_>, crm: &Crm, draft: &mut LeadDraft) {
    let embedded = item.embedded();
    for (index, link) in item.objects_in(embedded, "_embedded.", "contacts").into_iter().enumerate() {
        let prefix = format!("_embedded.contacts.{index}.");
        let is_main = item.bool_in(link, &prefix, "is_main").unwrap_or(false);
        match item.u64_in(link, &prefix, "id") {
            Some(id) if crm.contacts.contains_key(&id) => draft.contacts.push(LeadContact { contact_id: id, is_main }),
            Some(_) => item.fail(FieldError::not_supported_choice(format!("{prefix}id"))),
            None => item.fail(FieldError::not_blank(format!("{prefix}id"))),
        }
    }
    // With no contact marked main, the first one is, so every linked lead has a main contact.
    if !draft.contacts.iter().any(|link| link.is_main)
        && let Some(first) = draft.contacts.first_mut()
    {
        first.is_main = true;
    }
    for (index, link) in item.objects_in(embedded, "_embedded.", "companies").into_iter().enumerate() {
        let prefix = format!("_embedded.companies.{index}.");
        match item.u64_in(link, &prefix, "id") {
            Some(id) if crm.companies.contains_key(&id) => draft.company_ids.push(id),
            Some(_) => item.fail(FieldError::not_supported_choice(format!("{prefix}id"))),
            None => item.fail(FieldError::not_blank(format!("{prefix}id"))),
        }
    }
}

fn closed_at_for(status_id: u64, now: i64) -> Option<i64> {
    (status_id == WON_STATUS_ID || status_id == LOST_STATUS_ID).then_some(now)
}

/// Stores a new lead; `draft.placement` must be set (creation always resolves one).
pub fn insert_lead(crm: &mut Crm, draft: LeadDraft) -> u64 {
    let id = crm.next_lead_id();
    let now = now_unix();
    let (pipeline_id, status_id) = draft.placement.unwrap_or_default();
    let tag_ids = crm.resolve_tags(&draft.tags);
    let responsible_user_id = draft.responsible_user_id.unwrap_or_else(|| crm.default_user_id());
    crm.leads.insert(
        id,
        Lead {
            id,
            name: draft.name.unwrap_or_else(|| format!("Сделка #{id}")),
            price: draft.price.unwrap_or(0),
            responsible_user_id,
            status_id,
            pipeline_id,
            loss_reason_id: draft.loss_reason_id,
            created_at: now,
            updated_at: now,
            closed_at: closed_at_for(status_id, now),
            custom_fields: draft.custom_fields,
            tag_ids,
            contacts: draft.contacts,
            company_ids: draft.company_ids,
        },
    );
    id
}

fn apply_update(crm: &mut Crm, id: u64, draft: LeadDraft) -> i64 {
    let tag_ids = crm.resolve_tags(&draft.tags);
    let now = now_unix();
    let Some(lead) = crm.leads.get_mut(&id) else {
        return now;
    };
    if let Some(name) = draft.name {
        lead.name = name;
    }
    if let Some(price) = draft.price {
        lead.price = price;
    }
    if let Some(responsible) = draft.responsible_user_id {
        lead.responsible_user_id = responsible;
    }
    if let Some(loss_reason_id) = draft.loss_reason_id {
        lead.loss_reason_id = Some(loss_reason_id);
    }
    if let Some((pipeline_id, status_id)) = draft.placement
        && (pipeline_id, status_id) != (lead.pipeline_id, lead.status_id)
    {
        lead.pipeline_id = pipeline_id;
        lead.status_id = status_id;
        lead.closed_at = closed_at_for(status_id, now);
    }
    merge_fields(&mut lead.custom_fields, draft.custom_fields);
    // `_embedded.tags` in an update replaces the tag set (unconfirmed choice); an absent or
    // empty list leaves the tags alone.
    if !tag_ids.is_empty() {
        lead.tag_ids = tag_ids;
    }
    lead.updated_at = now;
    now
}

pub async fn list(
    State(shared): State<Arc<Shared>>,
    Base(base): Base,
    Query(query): Query<ListQuery>,
) -> Result<Response, Problem> {
    let state = shared.lock();
    let crm = &state.crm;
    let folded = query.folded_query();
    let with_contacts = query.with("contacts");
    let found: Vec<Value> = crm
        .leads
        .values()
        .filter(|lead| folded.as_deref().is_none_or(|text| lead.matches(text)))
        .map(|lead| super::hal::lead(crm, &base, lead, with_contacts))
        .collect();
    page_of(&query, &base, "/api/v4/leads", "leads", found)
}

pub async fn show(
    State(shared): State<Arc<Shared>>,
    Base(base): Base,
    Path(raw_id): Path<String>,
    Query(query): Query<ListQuery>,
) -> Result<Response, Problem> {
    let id = entity_id(&raw_id)?;
    let state = shared.lock();
    Ok(match state.crm.leads.get(&id) {
        Some(lead) => hal(super::hal::lead(&state.crm, &base, lead, query.with("contacts"))),
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
        let draft = read_lead(&mut item, crm, None, Links::Existing);
        drafts.push((item.request_id.clone(), draft));
        verdicts.record(item);
    }
    verdicts.into_result()?;
    let created: Vec<Value> = drafts
        .into_iter()
        .map(|(request_id, draft)| {
            let id = insert_lead(crm, draft);
            let path = format!("/api/v4/leads/{id}");
            json!({"id": id, "request_id": request_id, "_links": links(&base, &path)})
        })
        .collect();
    Ok(hal(json!({
        "_links": links(&base, "/api/v4/leads"),
        "_embedded": {"leads": created},
    })))
}

/// Reads one update. An id that names no lead is a validation error on `id`: amoCRM's
/// answer for it is not documented, and 400 is the answer a client must already handle.
/// `_embedded` links are not changed by updates (amoCRM has the `/link` endpoints for that).
fn read_update(item: &mut Item<'_>, crm: &Crm, path_id: Option<u64>) -> Option<(u64, LeadDraft)> {
    let Some(id) = path_id.or_else(|| item.u64("id")) else {
        item.fail(FieldError::not_blank("id"));
        return None;
    };
    let Some(current) = crm.leads.get(&id) else {
        item.fail(FieldError::not_supported_choice("id"));
        return None;
    };
    Some((id, read_lead(item, crm, Some(current), Links::Ignored)))
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
    let path = format!("/api/v4/leads/{id}");
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
            let path = format!("/api/v4/leads/{id}");
            json!({"id": id, "updated_at": updated_at, "_links": links(&base, &path)})
        })
        .collect();
    Ok(hal(json!({
        "_links": links(&base, "/api/v4/leads"),
        "_embedded": {"leads": updated},
    })))
}
