//! HAL JSON of every entity, shaped like amoCRM's own responses.

use serde_json::{Value, json};

use crate::catalog::{ACCOUNT_ID, ACCOUNT_NAME, AccountUser, Pipeline, SUBDOMAIN, Status, StatusKind};
use crate::state::{Company, Contact, Crm, CustomField, Lead, Note};

/// `{"self":{"href":…}}`, the `_links` every amoCRM entity carries.
pub fn links(base: &str, path: &str) -> Value {
    json!({"self": {"href": format!("{base}{path}")}})
}

/// The token's user is the account's first user: tokens carry the administrator's rights.
pub fn account(crm: &Crm, base: &str) -> Value {
    json!({
        "id": ACCOUNT_ID,
        "name": ACCOUNT_NAME,
        "subdomain": SUBDOMAIN,
        "current_user_id": crm.default_user_id(),
        "country": "RU",
        "currency": "RUB",
        "currency_symbol": "₽",
        "customers_mode": "disabled",
        "is_unsorted_on": true,
        "mobile_feature_version": 0,
        "is_loss_reason_enabled": true,
        "is_helpbot_enabled": false,
        "is_technical_account": false,
        "contact_name_display_order": 1,
        "_links": links(base, "/api/v4/account"),
    })
}

/// A user as `GET /api/v4/users` lists it; only the first user is an administrator.
pub fn user(base: &str, user: &AccountUser, is_admin: bool) -> Value {
    json!({
        "id": user.id,
        "name": user.name,
        "email": user.email,
        "lang": "ru",
        "rights": {
            "is_admin": is_admin,
            "is_free": false,
            "is_active": true,
            "group_id": null,
            "role_id": null,
        },
        "_links": links(base, &format!("/api/v4/users/{}", user.id)),
    })
}

pub fn status(base: &str, pipeline_id: u64, status: &Status) -> Value {
    json!({
        "id": status.id,
        "name": status.name,
        "sort": status.sort,
        "is_editable": status.is_editable,
        "pipeline_id": pipeline_id,
        "color": status.color,
        "type": if status.kind == StatusKind::Unsorted { 1 } else { 0 },
        "account_id": ACCOUNT_ID,
        "_links": links(base, &format!("/api/v4/leads/pipelines/{pipeline_id}/statuses/{}", status.id)),
    })
}

pub fn pipeline(base: &str, pipeline: &Pipeline) -> Value {
    let statuses: Vec<Value> = pipeline.statuses.iter().map(|entry| status(base, pipeline.id, entry)).collect();
    json!({
        "id": pipeline.id,
        "name": pipeline.name,
        "sort": pipeline.sort,
        "is_main": pipeline.is_main,
        "is_unsorted_on": true,
        "is_archive": false,
        "account_id": ACCOUNT_ID,
        "_links": links(base, &format!("/api/v4/leads/pipelines/{}", pipeline.id)),
        "_embedded": {"statuses": statuses},
    })
}

/// `custom_fields_values` is `null`, not `[]`, when an entity has none.
pub fn custom_fields(fields: &[CustomField]) -> Value {
    if fields.is_empty() {
        return Value::Null;
    }
    let rendered: Vec<Value> = fields
        .iter()
        .map(|field| {
            let values: Vec<Value> = field
                .values
                .iter()
                .map(|entry| match (entry.enum_id, entry.enum_code) {
                    (Some(enum_id), Some(enum_code)) => {
                        json!({"value": entry.value, "enum_id": enum_id, "enum_code": enum_code})
                    }
                    _ => json!({"value": entry.value}),
                })
                .collect();
            json!({
                "field_id": field.definition.id,
                "field_name": field.definition.name,
                "field_code": field.definition.code,
                "field_type": field.definition.kind,
                "values": values,
            })
        })
        .collect();
    Value::Array(rendered)
}

fn tags(crm: &Crm, ids: &[u64]) -> Value {
    ids.iter().filter_map(|id| crm.tag(*id)).map(|tag| json!({"id": tag.id, "name": tag.name, "color": null})).collect()
}

fn company_refs(base: &str, ids: &[u64]) -> Value {
    ids.iter().map(|id| json!({"id": id, "_links": links(base, &format!("/api/v4/companies/{id}"))})).collect()
}

pub fn contact(crm: &Crm, base: &str, contact: &Contact, with_leads: bool) -> Value {
    let mut embedded = json!({
        "tags": tags(crm, &contact.tag_ids),
        "companies": company_refs(base, &contact.company_ids),
    });
    if with_leads {
        let leads: Vec<Value> = crm
            .lead_ids_of_contact(contact.id)
            .into_iter()
            .map(|id| json!({"id": id, "_links": links(base, &format!("/api/v4/leads/{id}"))}))
            .collect();
        embedded["leads"] = Value::Array(leads);
    }
    json!({
        "id": contact.id,
        "name": contact.name,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "responsible_user_id": contact.responsible_user_id,
        "group_id": 0,
        "created_by": crm.default_user_id(),
        "updated_by": crm.default_user_id(),
        "created_at": contact.created_at,
        "updated_at": contact.updated_at,
        "closest_task_at": null,
        "is_deleted": false,
        "is_unsorted": false,
        "custom_fields_values": custom_fields(&contact.custom_fields),
        "account_id": ACCOUNT_ID,
        "_links": links(base, &format!("/api/v4/contacts/{}", contact.id)),
        "_embedded": embedded,
    })
}

pub fn lead(crm: &Crm, base: &str, lead: &Lead, with_contacts: bool) -> Value {
    let mut embedded = json!({
        "tags": tags(crm, &lead.tag_ids),
        "companies": company_refs(base, &lead.company_ids),
    });
    if with_contacts {
        let contacts: Vec<Value> = lead
            .contacts
            .iter()
            .map(|link| {
                let path = format!("/api/v4/contacts/{}", link.contact_id);
                json!({"id": link.contact_id, "is_main": link.is_main, "_links": links(base, &path)})
            })
            .collect();
        embedded["contacts"] = Value::Array(contacts);
    }
    json!({
        "id": lead.id,
        "name": lead.name,
        "price": lead.price,
        "responsible_user_id": lead.responsible_user_id,
        "group_id": 0,
        "status_id": lead.status_id,
        "pipeline_id": lead.pipeline_id,
        "loss_reason_id": lead.loss_reason_id,
        "source_id": null,
        "created_by": crm.default_user_id(),
        "updated_by": crm.default_user_id(),
        "created_at": lead.created_at,
        "updated_at": lead.updated_at,
        "closed_at": lead.closed_at,
        "closest_task_at": null,
        "is_deleted": false,
        "custom_fields_values": custom_fields(&lead.custom_fields),
        "score": null,
        "account_id": ACCOUNT_ID,
        "labor_cost": null,
        "_links": links(base, &format!("/api/v4/leads/{}", lead.id)),
        "_embedded": embedded,
    })
}

pub fn company(crm: &Crm, base: &str, company: &Company) -> Value {
    json!({
        "id": company.id,
        "name": company.name,
        "responsible_user_id": crm.default_user_id(),
        "created_at": company.created_at,
        "updated_at": company.updated_at,
        "custom_fields_values": custom_fields(&company.custom_fields),
        "account_id": ACCOUNT_ID,
        "_links": links(base, &format!("/api/v4/companies/{}", company.id)),
    })
}

pub fn note(crm: &Crm, base: &str, note: &Note) -> Value {
    let path = format!("/api/v4/{}/{}/notes/{}", note.entity_kind.as_str(), note.entity_id, note.id);
    json!({
        "id": note.id,
        "entity_id": note.entity_id,
        "created_by": crm.default_user_id(),
        "updated_by": crm.default_user_id(),
        "created_at": note.created_at,
        "updated_at": note.created_at,
        "responsible_user_id": note.responsible_user_id,
        "group_id": 0,
        "note_type": note.note_type,
        "params": note.params,
        "account_id": ACCOUNT_ID,
        "_links": links(base, &path),
    })
}
