//! The account, its pipelines and its deal fields: `GET /api/v4/account`, `GET /api/v4/leads/pipelines[/{id}]`, `GET /api/v4/{leads,contacts}/custom_fields`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use serde_json::{Value, json};

use super::{Base, entity_id, hal, hal::links};
use crate::Shared;
use crate::problem::Problem;

pub async fn show(State(shared): State<Arc<Shared>>, Base(base): Base) -> Response {
    hal(super::hal::account(&shared.lock().crm, &base))
}

pub async fn pipelines(State(shared): State<Arc<Shared>>, Base(base): Base) -> Response {
    let state = shared.lock();
    let pipelines: Vec<Value> =
        state.crm.pipelines.iter().map(|pipeline| super::hal::pipeline(&base, pipeline)).collect();
    hal(json!({
        "_total_items": pipelines.len(),
        "_links": links(&base, "/api/v4/leads/pipelines"),
        "_embedded": {"pipelines": pipelines},
    }))
}

/// The deal fields of the account, on one page: the catalog is far smaller than a page.
pub async fn lead_fields(Base(base): Base) -> Response {
    field_list(&base, crate::catalog::LEAD_FIELDS, "leads")
}

/// The contact fields, the system ones (`PHONE`, `EMAIL`) among them.
pub async fn contact_fields(Base(base): Base) -> Response {
    field_list(&base, crate::catalog::CONTACT_FIELDS, "contacts")
}

fn field_list(base: &str, catalog: &[crate::catalog::FieldDefinition], entity_type: &str) -> Response {
    let fields: Vec<Value> = catalog
        .iter()
        .enumerate()
        .map(|(index, field)| {
            let enums: Vec<Value> = field
                .enums
                .iter()
                .enumerate()
                .map(|(sort, (id, value))| json!({"id": id, "value": value, "sort": sort}))
                .collect();
            json!({
                "id": field.id,
                "name": field.name,
                "type": field.kind,
                "code": field.code,
                "sort": index,
                "entity_type": entity_type,
                "enums": if enums.is_empty() { Value::Null } else { Value::Array(enums) },
            })
        })
        .collect();
    hal(json!({
        "_total_items": fields.len(),
        "_page": 1,
        "_links": links(base, &format!("/api/v4/{entity_type}/custom_fields")),
        "_embedded": {"custom_fields": fields},
    }))
}

/// An unknown pipeline id is a 404 here: unlike leads and contacts, amoCRM is not known to
/// answer 204 for pipelines.
pub async fn pipeline(
    State(shared): State<Arc<Shared>>,
    Base(base): Base,
    Path(raw_id): Path<String>,
) -> Result<Response, Problem> {
    let id = entity_id(&raw_id)?;
    let state = shared.lock();
    let pipeline = state.crm.pipeline(id).ok_or(Problem::NotFound)?;
    Ok(hal(super::hal::pipeline(&base, pipeline)))
}

pub async fn statuses(
    State(shared): State<Arc<Shared>>,
    Base(base): Base,
    Path(raw_id): Path<String>,
) -> Result<Response, Problem> {
    let id = entity_id(&raw_id)?;
    let state = shared.lock();
    let pipeline = state.crm.pipeline(id).ok_or(Problem::NotFound)?;
    let statuses: Vec<Value> =
        pipeline.statuses.iter().map(|status| super::hal::status(&base, pipeline.id, status)).collect();
    Ok(hal(json!({
        "_total_items": statuses.len(),
        "_links": links(&base, &format!("/api/v4/leads/pipelines/{id}/statuses")),
        "_embedded": {"statuses": statuses},
    })))
}
