//! What a session CRM's templates see: the lead, its route, and the ids of the steps done before.

use std::collections::BTreeMap;

use minijinja::value::{Serde, Value};
use serde::Serialize;

use crate::config::Route;
use crate::domain::Lead;

/// A lead as the templates of every call see it: `lead.*` and `route.*`. A value the lead lacks
/// is absent rather than empty, so a lookup that needs it is skipped instead of searching for "".
#[derive(Debug, Clone)]
pub struct LeadContext {
    lead: LeadView,
    route: RouteView,
}

#[derive(Debug, Clone, Serialize)]
struct LeadView {
    id: i64,
    source: String,
    name: String,
    /// E.164.
    phone: String,
    /// As the sender wrote it.
    phone_raw: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    /// The visitor's own comment; the flow's text for a message is `message`.
    #[serde(skip_serializing_if = "Option::is_none")]
    comment: Option<String>,
    /// The payload as received.
    fields: serde_json::Map<String, serde_json::Value>,
    /// Every received field, one `name: value` line each: the seed puts the whole form in the ticket.
    description: String,
}

#[derive(Debug, Clone, Serialize)]
struct RouteView {
    #[serde(skip_serializing_if = "Option::is_none")]
    service: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<String>,
}

/// The ids and texts a call adds to the lead's context; `None` leaves the name undefined.
#[derive(Debug, Default)]
pub(super) struct Extras<'a> {
    pub organization_id: Option<&'a str>,
    pub contact_id: Option<&'a str>,
    pub ticket_id: Option<&'a str>,
    pub message: Option<&'a str>,
    pub file_name: Option<&'a str>,
}

impl LeadContext {
    pub fn new(lead: &Lead, route: &Route) -> Self {
        let fields = match &lead.fields.payload {
            serde_json::Value::Object(fields) => fields.clone(),
            _ => serde_json::Map::new(),
        };
        let present = |text: Option<&str>| text.map(str::trim).filter(|text| !text.is_empty()).map(str::to_owned);
        let view = LeadView {
            id: lead.id.0,
            source: lead.fields.source.0.clone(),
            name: lead.fields.name.clone(),
            phone: lead.fields.phone.e164().to_owned(),
            phone_raw: lead.fields.phone.raw().to_owned(),
            email: present(lead.fields.email.as_ref().map(|email| email.as_str())),
            comment: present(lead.fields.comment.as_deref()),
            description: describe(&fields),
            fields,
        };
        let route =
            RouteView { service: present(route.service.as_deref()), subject: present(route.subject.as_deref()) };
        Self { lead: view, route }
    }

    pub(super) fn with(&self, extras: &Extras<'_>) -> Value {
        let mut context = BTreeMap::new();
        context.insert("lead".to_owned(), Value::from(Serde(&self.lead)));
        context.insert("route".to_owned(), Value::from(Serde(&self.route)));
        let named = [
            ("organization_id", extras.organization_id),
            ("contact_id", extras.contact_id),
            ("ticket_id", extras.ticket_id),
            ("message", extras.message),
            ("file_name", extras.file_name),
        ];
        for (name, value) in named {
            if let Some(value) = value.filter(|value| !value.is_empty()) {
                context.insert(name.to_owned(), Value::from(value));
            }
        }
        Value::from(context)
    }
}

/// One `name: value` line per field that holds something.
fn describe(fields: &serde_json::Map<String, serde_json::Value>) -> String {
    let mut lines = Vec::new();
    for (name, value) in fields {
        let text = match value {
            serde_json::Value::Null => continue,
            serde_json::Value::String(text) => text.trim().to_owned(),
            other => other.to_string(),
        };
        if text.is_empty() {
            continue;
        }
        lines.push(format!("{name}: {text}"));
    }
    lines.join("\n")
}
