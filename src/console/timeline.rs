//! A lead's timeline: what it carried, what was decided and why, every CRM call and feedback
//! attempt in order; and re-sending a dead lead after a confirmation that says what will happen.

use std::time::Instant;

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{Redirect, Response};
use serde::Deserialize;
use serde_json::Value;

use super::page::{CsrfOnly, Frame, moment, render};
use crate::domain::advertiser::AdvertiserId;
use crate::domain::{HistoryEvent, Lead, LeadId, LeadStatus, Routing};
use crate::http::admin::Operator;
use crate::http::error::ConsoleError;
use crate::http::state::AppState;
use crate::store::Requeue;

/// Keys whose values are secrets wherever they appear in a payload or an event.
const SECRET_KEYS: [&str; 15] = [
    "password",
    "access_token",
    "refresh_token",
    "client_secret",
    "key",
    "api_key",
    "api_salt",
    "secret",
    "secret_key",
    "callback_secret",
    "callback_secrets",
    "token",
    "authorization",
    "cookie",
    "sign",
];
/// What a viewer does not see in events: the personal data a lead carried beyond the list's
/// name and phone.
const PERSONAL_KEYS: [&str; 9] = ["payload", "email", "comment", "text", "body", "to", "message", "note", "url"];

pub struct Event {
    pub at: String,
    pub title: String,
    /// A CRM call's one line (method, path, status, duration), when the event is one.
    pub summary: Option<String>,
    pub failed: bool,
    pub details: Vec<(String, String)>,
}

pub struct Feedback {
    pub kind: &'static str,
    pub status: String,
    pub attempts: i64,
    pub last_error: String,
}

pub struct File {
    pub name: String,
    pub url: String,
    pub size: u64,
}

#[derive(Template)]
#[template(path = "console/lead.html")]
struct LeadPage {
    frame: Frame,
    id: i64,
    source: String,
    status: &'static str,
    status_class: &'static str,
    received: String,
    /// When the person's data was erased; the lead keeps only its tombstone.
    erased: Option<String>,
    name: String,
    phone: String,
    phone_raw: String,
    email: String,
    comment: String,
    decision: String,
    deal_number: Option<String>,
    deal_url: Option<String>,
    last_error: String,
    request: Option<String>,
    events: Vec<Event>,
    feedback: Vec<Feedback>,
    files: Vec<File>,
    can_resend: bool,
    /// An unrouted portal lead, for an admin: the source's enabled advertisers to route it to.
    advertisers: Option<Vec<(String, String)>>,
    flash: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "console/resend.html")]
struct ResendPage {
    frame: Frame,
    id: i64,
    name: String,
    journaled: bool,
}

#[derive(Deserialize)]
pub struct Flash {
    #[serde(default)]
    done: String,
}

/// `GET /admin/leads/{id}`
pub async fn show(
    State(state): State<AppState>,
    operator: Operator,
    Path(id): Path<String>,
    Query(flash): Query<Flash>,
) -> Result<Response, ConsoleError> {
    let started = Instant::now();
    let lead = find(&state, &id).await?;
    let history = state.store.history(lead.id).await?;
    let owed = state.store.owed_feedback(lead.id).await?;
    let frame = Frame::new(&state, &operator).timed(started.elapsed());
    let admin = operator.is_admin();
    let t = frame.t;
    let fields = &lead.fields;
    let deal = lead.outcome.as_ref().and_then(|outcome| outcome.deal());
    let page = LeadPage {
        id: lead.id.0,
        source: fields.source.0.clone(),
        status: t.status(lead.status),
        status_class: lead.status.as_str(),
        received: moment(lead.created_at),
        erased: lead.erased_at.map(moment),
        name: fields.name.clone(),
        phone: fields.phone.e164().to_owned(),
        phone_raw: if admin { fields.phone.raw().to_owned() } else { String::new() },
        email: if admin {
            fields.email.as_ref().map(|email| email.as_str().to_owned()).unwrap_or_default()
        } else {
            String::new()
        },
        comment: if admin { fields.comment.clone().unwrap_or_default() } else { String::new() },
        decision: lead.outcome.as_ref().map(|outcome| outcome.decision.as_str().to_owned()).unwrap_or_default(),
        deal_number: lead.outcome.as_ref().and_then(|outcome| outcome.deal_number()).map(str::to_owned),
        deal_url: deal.and_then(|deal| deal.url.clone()),
        last_error: lead.last_error.clone().unwrap_or_default(),
        request: admin.then(|| serde_json::to_string_pretty(&masked(&fields.payload, false)).unwrap_or_default()),
        events: history.iter().map(|event| timeline_event(event, t, admin)).collect(),
        feedback: owed
            .iter()
            .map(|owed| Feedback {
                kind: owed.kind.as_str(),
                status: owed.status.clone(),
                attempts: owed.attempts,
                last_error: owed.last_error.clone().unwrap_or_default(),
            })
            .collect(),
        files: if admin {
            let attachments = fields.deal.attachments.iter();
            attachments.map(|file| File { name: file.name.clone(), url: file.url.clone(), size: file.size }).collect()
        } else {
            Vec::new()
        },
        can_resend: admin && lead.status == LeadStatus::Dead,
        advertisers: if admin && lead.status == LeadStatus::Unrouted {
            let advertisers = state.store.list_advertisers(Some(&fields.source), false).await?;
            Some(
                advertisers
                    .into_iter()
                    .map(|advertiser| (advertiser.id.as_str().to_owned(), advertiser.name))
                    .collect(),
            )
        } else {
            None
        },
        flash: match flash.done.as_str() {
            "resent" => Some(t.resent),
            "not_dead" => Some(t.not_dead),
            "routed" => Some(t.routed),
            "not_unrouted" => Some(t.not_unrouted),
            _ => None,
        },
        frame,
    };
    render(&page)
}

/// `GET /admin/leads/{id}/resend`: what a re-send will do, and the button that does it.
pub async fn confirm_resend(
    State(state): State<AppState>,
    operator: Operator,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    operator.require_admin()?;
    let lead = find(&state, &id).await?;
    let history = state.store.history(lead.id).await?;
    // A CRM write that succeeded was journaled, and the re-send reuses it instead of repeating it.
    let journaled = history.iter().any(|event| {
        let detail = &event.detail;
        event.kind == "crm_call"
            && detail["method"].as_str().is_some_and(|method| method != "GET")
            && detail["status"].as_u64().is_some_and(|status| status < 400)
    });
    let page =
        ResendPage { frame: Frame::new(&state, &operator), id: lead.id.0, name: lead.fields.name.clone(), journaled };
    render(&page)
}

/// `POST /admin/leads/{id}/resend`: the store's re-send, as `leads retry` and the API do it.
pub async fn resend(
    State(state): State<AppState>,
    operator: Operator,
    Path(id): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Result<Redirect, ConsoleError> {
    operator.require_admin()?;
    operator.check_csrf(&form.csrf)?;
    let id = id.parse::<i64>().map(LeadId).map_err(|_| ConsoleError::NotFound)?;
    let actor = format!("console:{}", operator.username());
    let done = match state.store.resend(id, &actor).await? {
        Requeue::Queued => {
            state.store.audit(operator.username(), "resend", Some(&format!("lead {id}"))).await?;
            "resent"
        }
        Requeue::WrongStatus(_) => "not_dead",
        Requeue::NotFound => return Err(ConsoleError::NotFound),
    };
    Ok(Redirect::to(&format!("/admin/leads/{id}?done={done}")))
}

#[derive(Deserialize)]
pub struct RouteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    advertiser: String,
}

/// `POST /admin/leads/{id}/route`: an unrouted portal lead gets the chosen advertiser's route and
/// is queued, as `leadgate leads route` does it.
pub async fn route(
    State(state): State<AppState>,
    operator: Operator,
    Path(id): Path<String>,
    Form(form): Form<RouteForm>,
) -> Result<Redirect, ConsoleError> {
    operator.require_admin()?;
    operator.check_csrf(&form.csrf)?;
    let lead = find(&state, &id).await?;
    let advertiser = match AdvertiserId::parse(&form.advertiser) {
        Ok(advertiser) => state.store.find_advertiser(&lead.fields.source, &advertiser).await?,
        Err(_) => None,
    };
    let advertiser = advertiser
        .filter(|advertiser| advertiser.enabled)
        .ok_or_else(|| ConsoleError::Invalid(format!("«advertiser»: no enabled advertiser «{}»", form.advertiser)))?;
    let chosen = advertiser.id.as_str().to_owned();
    let actor = format!("console:{}", operator.username());
    let done = match state.store.route_lead(lead.id, &Routing::from(advertiser), &actor).await? {
        Requeue::Queued => {
            let detail = format!("lead {} to advertiser {chosen}", lead.id);
            state.store.audit(operator.username(), "route", Some(&detail)).await?;
            "routed"
        }
        Requeue::WrongStatus(_) => "not_unrouted",
        Requeue::NotFound => return Err(ConsoleError::NotFound),
    };
    Ok(Redirect::to(&format!("/admin/leads/{}?done={done}", lead.id)))
}

async fn find(state: &AppState, id: &str) -> Result<Lead, ConsoleError> {
    let id = id.parse::<i64>().map(LeadId).map_err(|_| ConsoleError::NotFound)?;
    state.store.find_lead(id).await?.ok_or(ConsoleError::NotFound)
}

fn timeline_event(event: &HistoryEvent, t: &super::texts::Texts, admin: bool) -> Event {
    let detail = masked(&event.detail, !admin);
    let summary = (event.kind == "crm_call").then(|| {
        let text =
            |key: &str| detail.get(key).map(|value| value.as_str().map_or_else(|| value.to_string(), str::to_owned));
        let outcome = text("status").or_else(|| text("error")).unwrap_or_default();
        format!(
            "{} {} → {outcome} ({} ms)",
            text("method").unwrap_or_default(),
            text("path").unwrap_or_default(),
            text("duration_ms").unwrap_or_default()
        )
    });
    let failed = detail.get("error").is_some()
        || detail.get("status").and_then(Value::as_u64).is_some_and(|status| status >= 400)
        || event.kind.ends_with("failed")
        || event.kind == "dead";
    let details = match (&summary, &detail) {
        (Some(_), _) => Vec::new(),
        (None, Value::Object(map)) => map
            .iter()
            .map(|(key, value)| (key.clone(), value.as_str().map_or_else(|| value.to_string(), str::to_owned)))
            .collect(),
        (None, Value::Null) => Vec::new(),
        (None, other) => vec![(String::new(), other.to_string())],
    };
    Event { at: moment(event.at), title: t.event(&event.kind).to_owned(), summary, failed, details }
}

/// `value` with every secret replaced by `***`, and for a viewer every personal field by `—`.
fn masked(value: &Value, for_viewer: bool) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, value)| {
                    let lower = key.to_ascii_lowercase();
                    let shown = if SECRET_KEYS.contains(&lower.as_str()) {
                        Value::String("***".to_owned())
                    } else if for_viewer && PERSONAL_KEYS.contains(&lower.as_str()) {
                        Value::String("—".to_owned())
                    } else {
                        masked(value, for_viewer)
                    };
                    (key.clone(), shown)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|item| masked(item, for_viewer)).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn secrets_are_masked_at_any_depth_and_personal_data_for_viewers() {
        let payload = json!({ "name": "Анна", "key": "abc", "auth": { "Password": "x" }, "email": "a@b.ru" });
        assert_eq!(
            masked(&payload, false),
            json!({ "name": "Анна", "key": "***", "auth": { "Password": "***" }, "email": "a@b.ru" })
        );
        assert_eq!(masked(&payload, true)["email"], "—");
    }
}
