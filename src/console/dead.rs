//! Dead leads and failed feedback grouped by cause; re-sending "everything dead since T for
//! source S" after a preview of how many; and the audit log.

use std::time::Instant;

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::response::{Redirect, Response};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;

use super::page::{Frame, moment, render};
use crate::domain::SourceId;
use crate::http::admin::Operator;
use crate::http::error::ConsoleError;
use crate::http::state::AppState;
use crate::store::Requeue;
use crate::store::overview::FailureGroup;

/// How many audit entries the audit page shows.
const AUDIT_PAGE: usize = 200;

pub struct Group {
    pub group: String,
    pub cause: String,
    pub count: i64,
    pub latest: String,
}

#[derive(Template)]
#[template(path = "console/dead.html")]
struct DeadPage {
    frame: Frame,
    dead: Vec<Group>,
    failed: Vec<Group>,
    sources: Vec<String>,
    flash: Option<String>,
}

#[derive(Template)]
#[template(path = "console/bulk.html")]
struct BulkPage {
    frame: Frame,
    source: String,
    since: String,
    since_shown: String,
    count: usize,
}

#[derive(Deserialize)]
pub struct BulkForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    source: String,
    /// `YYYY-MM-DDTHH:MM` (a `datetime-local` input), UTC.
    #[serde(default)]
    since: String,
}

#[derive(Deserialize)]
pub struct Done {
    #[serde(default)]
    queued: Option<usize>,
}

/// `GET /admin/dead`
pub async fn page(
    State(state): State<AppState>,
    operator: Operator,
    Query(done): Query<Done>,
) -> Result<Response, ConsoleError> {
    let started = Instant::now();
    let (dead, failed) = state.store.failure_groups().await?;
    let frame = Frame::new(&state, &operator).timed(started.elapsed());
    let flash = done.queued.map(|count| format!("{} {count}", frame.t.bulk_done));
    let page = DeadPage {
        dead: dead.into_iter().map(group).collect(),
        failed: failed.into_iter().map(group).collect(),
        sources: state.source_keys.0.iter().map(|source| source.id.0.clone()).collect(),
        flash,
        frame,
    };
    render(&page)
}

/// `POST /admin/dead/preview`: how many leads the bulk re-send would take, and its confirmation.
pub async fn preview(
    State(state): State<AppState>,
    operator: Operator,
    Form(form): Form<BulkForm>,
) -> Result<Response, ConsoleError> {
    operator.require_admin()?;
    operator.check_csrf(&form.csrf)?;
    let since = parse_since(&form.since)?;
    let source = (!form.source.is_empty()).then(|| SourceId(form.source.clone()));
    let count = state.store.dead_since(source.as_ref(), since).await?.len();
    let page = BulkPage {
        frame: Frame::new(&state, &operator),
        source: form.source,
        since_shown: moment(since),
        since: form.since,
        count,
    };
    render(&page)
}

/// `POST /admin/dead/resend`: every lead dead since the moment (of the source, if one is given)
/// back in the queue, each as a single re-send would.
pub async fn resend(
    State(state): State<AppState>,
    operator: Operator,
    Form(form): Form<BulkForm>,
) -> Result<Redirect, ConsoleError> {
    operator.require_admin()?;
    operator.check_csrf(&form.csrf)?;
    let since = parse_since(&form.since)?;
    let source = (!form.source.is_empty()).then(|| SourceId(form.source.clone()));
    let actor = format!("console:{}", operator.username());
    let mut queued = 0;
    for id in state.store.dead_since(source.as_ref(), since).await? {
        // A lead re-sent meanwhile by someone else is simply no longer dead.
        if state.store.resend(id, &actor).await? == Requeue::Queued {
            queued += 1;
        }
    }
    let scope = if form.source.is_empty() { "every source".to_owned() } else { format!("source {}", form.source) };
    let detail = format!("{queued} dead leads since {} UTC, {scope}", moment(since));
    state.store.audit(operator.username(), "bulk_resend", Some(&detail)).await?;
    Ok(Redirect::to(&format!("/admin/dead?queued={queued}")))
}

pub struct AuditRow {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct AuditPage {
    frame: Frame,
    entries: Vec<AuditRow>,
}

/// `GET /admin/audit`: admins only, newest first.
pub async fn audit(State(state): State<AppState>, operator: Operator) -> Result<Response, ConsoleError> {
    operator.require_admin()?;
    let started = Instant::now();
    let entries = state.store.audit_log(AUDIT_PAGE).await?;
    let frame = Frame::new(&state, &operator).timed(started.elapsed());
    let entries = entries
        .into_iter()
        .map(|entry| AuditRow {
            at: moment(entry.at),
            actor: entry.actor,
            action: entry.action,
            detail: entry.detail.unwrap_or_default(),
        })
        .collect();
    render(&AuditPage { frame, entries })
}

fn group(group: FailureGroup) -> Group {
    Group { group: group.group, cause: group.cause, count: group.count, latest: moment(group.latest) }
}

fn parse_since(text: &str) -> Result<DateTime<Utc>, ConsoleError> {
    ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text.trim(), format).ok())
        .map(|moment| moment.and_utc())
        .ok_or_else(|| {
            ConsoleError::Invalid(format!("«since»: «{text}» is not a date and time such as 2026-03-01T09:00"))
        })
}
