//! The lead list: filters in the URL, the search in the session (it is personal data), keyset
//! pages newest first, and the same list as CSV.

use std::time::Instant;

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;

use super::page::{Frame, moment, render};
use crate::domain::{Lead, LeadId, LeadStatus, Phone, SourceId};
use crate::http::admin::Operator;
use crate::http::error::ConsoleError;
use crate::http::state::AppState;
use crate::store::overview::{LeadQuery, LeadSearch};

const PAGE_SIZE: usize = 50;
/// A CSV export stops here; narrower filters export the rest.
const EXPORT_LIMIT: usize = 100_000;
const STATUSES: [LeadStatus; 7] = [
    LeadStatus::Pending,
    LeadStatus::Processing,
    LeadStatus::Approved,
    LeadStatus::Rejected,
    LeadStatus::Skipped,
    LeadStatus::Dead,
    LeadStatus::Unrouted,
];

/// The list's filters as the URL carries them: none of them is personal data.
#[derive(Debug, Default, Deserialize)]
pub struct Filters {
    #[serde(default)]
    source: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    destination: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    before: String,
}

impl Filters {
    /// The filters as a query string, without the cursor.
    fn query_string(&self) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("source", &self.source),
            ("status", &self.status),
            ("destination", &self.destination),
            ("from", &self.from),
            ("to", &self.to),
        ] {
            if !value.is_empty() {
                query.append_pair(name, value);
            }
        }
        query.finish()
    }

    /// Only what the form's controls can hold: a configured source and destination, a status,
    /// dates. Anything else typed into a posted form is dropped, so it never reaches a URL.
    fn known_only(self, state: &AppState) -> Self {
        let sources = &state.source_keys.0;
        let keep = |value: String, known: bool| if known { value } else { String::new() };
        let source_known = sources.iter().any(|source| source.id.0 == self.source);
        let destination_known = sources.iter().any(|source| source.route.destination == self.destination);
        let status_known = LeadStatus::parse(&self.status).is_some();
        let from_known = day_start(&self.from, 0).is_some();
        let to_known = day_start(&self.to, 0).is_some();
        Self {
            source: keep(self.source, source_known),
            status: keep(self.status, status_known),
            destination: keep(self.destination, destination_known),
            from: keep(self.from, from_known),
            to: keep(self.to, to_known),
            before: String::new(),
        }
    }
}

#[derive(Deserialize)]
pub struct SearchForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    q: String,
    #[serde(flatten)]
    filters: Filters,
}

pub struct Row {
    pub id: i64,
    pub received: String,
    pub source: String,
    pub name: String,
    pub phone: String,
    pub status: &'static str,
    pub status_class: &'static str,
    /// `Some(true)` delivered, `Some(false)` dead or rejected, `None` still on its way.
    pub sent: Option<bool>,
    pub deal_number: Option<String>,
    pub deal_url: Option<String>,
    pub last_error: String,
}

pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "console/leads.html")]
struct LeadsPage {
    frame: Frame,
    rows: Vec<Row>,
    search: String,
    sources: Vec<Choice>,
    statuses: Vec<Choice>,
    destinations: Vec<Choice>,
    from: String,
    to: String,
    filters: String,
    older: Option<String>,
    first_page: bool,
}

/// `GET /admin/leads`
pub async fn list(
    State(state): State<AppState>,
    operator: Operator,
    Query(filters): Query<Filters>,
) -> Result<Response, ConsoleError> {
    let mut query = lead_query(&state, &filters, operator.session.search.as_deref());
    query.limit = PAGE_SIZE + 1;
    let started = Instant::now();
    let mut leads = state.store.search_leads(&query).await?;
    let elapsed = started.elapsed();
    let more = leads.len() > PAGE_SIZE;
    leads.truncate(PAGE_SIZE);
    let frame = Frame::new(&state, &operator).timed(elapsed);
    let query_string = filters.query_string();
    let older = more.then(|| {
        let last = leads.last().map_or(0, |lead| lead.id.0);
        let separator = if query_string.is_empty() { "" } else { "&" };
        format!("/admin/leads?{query_string}{separator}before={last}")
    });
    let t = frame.t;
    let choice =
        |value: &str, label: String, chosen: &str| Choice { value: value.to_owned(), label, selected: value == chosen };
    let sources = state.source_keys.0.iter().map(|source| source.id.0.as_str());
    let mut destinations: Vec<&str> =
        state.source_keys.0.iter().map(|source| source.route.destination.as_str()).collect();
    destinations.sort_unstable();
    destinations.dedup();
    let page = LeadsPage {
        rows: leads.iter().map(|lead| row(lead, t)).collect(),
        search: operator.session.search.clone().unwrap_or_default(),
        sources: sources.map(|id| choice(id, id.to_owned(), &filters.source)).collect(),
        statuses: STATUSES
            .iter()
            .map(|status| choice(status.as_str(), t.status(*status).to_owned(), &filters.status))
            .collect(),
        destinations: destinations
            .into_iter()
            .map(|name| choice(name, name.to_owned(), &filters.destination))
            .collect(),
        from: filters.from.clone(),
        to: filters.to.clone(),
        filters: query_string,
        older,
        first_page: filters.before.is_empty(),
        frame,
    };
    render(&page)
}

/// `POST /admin/leads/search`: the search goes into the session, the filters into the URL.
pub async fn search(
    State(state): State<AppState>,
    operator: Operator,
    Form(form): Form<SearchForm>,
) -> Result<Redirect, ConsoleError> {
    operator.check_csrf(&form.csrf)?;
    let text: String = form.q.trim().chars().take(200).collect();
    state.store.set_console_search(&operator.token_hash, (!text.is_empty()).then_some(text.as_str())).await?;
    let query = form.filters.known_only(&state).query_string();
    Ok(Redirect::to(&if query.is_empty() { "/admin/leads".to_owned() } else { format!("/admin/leads?{query}") }))
}

/// `GET /admin/leads.csv`: the filtered list (and the session's search), admins only.
pub async fn export(
    State(state): State<AppState>,
    operator: Operator,
    Query(filters): Query<Filters>,
) -> Result<Response, ConsoleError> {
    operator.require_admin()?;
    let mut query = lead_query(&state, &filters, operator.session.search.as_deref());
    query.limit = 1000;
    let mut csv = csv::Writer::from_writer(Vec::new());
    let header =
        ["id", "received_utc", "source", "name", "phone", "email", "status", "crm_deal", "crm_url", "last_error"];
    let mut written = 0;
    let csv_error = |error: csv::Error| ConsoleError::Invalid(error.to_string());
    csv.write_record(header).map_err(csv_error)?;
    loop {
        let leads = state.store.search_leads(&query).await?;
        for lead in &leads {
            let deal = lead.outcome.as_ref().and_then(|outcome| outcome.deal());
            let record = [
                lead.id.to_string(),
                moment(lead.created_at),
                lead.fields.source.0.clone(),
                lead.fields.name.clone(),
                lead.fields.phone.e164().to_owned(),
                lead.fields.email.as_ref().map(|email| email.as_str().to_owned()).unwrap_or_default(),
                lead.status.as_str().to_owned(),
                lead.outcome.as_ref().and_then(|outcome| outcome.deal_number()).unwrap_or_default().to_owned(),
                deal.and_then(|deal| deal.url.clone()).unwrap_or_default(),
                lead.last_error.clone().unwrap_or_default(),
            ];
            csv.write_record(record.iter().map(|cell| spreadsheet_safe(cell))).map_err(csv_error)?;
        }
        written += leads.len();
        match leads.last() {
            Some(last) if leads.len() == query.limit && written < EXPORT_LIMIT => query.before = Some(last.id),
            _ => break,
        }
    }
    let searched = if operator.session.search.is_some() { " with a search" } else { "" };
    let detail = format!("{written} leads; filters «{}»{searched}", filters.query_string());
    state.store.audit(operator.username(), "export_csv", Some(&detail)).await?;
    let body = csv.into_inner().map_err(|error| ConsoleError::Invalid(error.to_string()))?;
    let headers =
        [(CONTENT_TYPE, "text/csv; charset=utf-8"), (CONTENT_DISPOSITION, "attachment; filename=\"leads.csv\"")];
    Ok((headers, body).into_response())
}

/// A spreadsheet runs a cell that starts like a formula; such cells get a leading apostrophe.
/// Phones (`+7…`) and negative numbers stay as they are.
fn spreadsheet_safe(cell: &str) -> String {
    let mut chars = cell.chars();
    let risky = match chars.next() {
        Some('=' | '@' | '\t' | '\r') => true,
        Some('+' | '-') => !chars.next().is_some_and(|next| next.is_ascii_digit()),
        _ => false,
    };
    if risky { format!("'{cell}") } else { cell.to_owned() }
}

fn lead_query(state: &AppState, filters: &Filters, search: Option<&str>) -> LeadQuery {
    let non_empty = |text: &str| (!text.is_empty()).then(|| text.to_owned());
    let destination = non_empty(&filters.destination);
    let destination_sources = state
        .source_keys
        .0
        .iter()
        .filter(|source| destination.as_ref() == Some(&source.route.destination))
        .map(|source| source.id.clone())
        .collect();
    LeadQuery {
        status: LeadStatus::parse(&filters.status),
        source: non_empty(&filters.source).map(SourceId),
        destination,
        destination_sources,
        from: day_start(&filters.from, 0),
        until: day_start(&filters.to, 1),
        search: search.and_then(|text| understand(text, state)),
        before: filters.before.parse::<i64>().ok().map(LeadId),
        limit: PAGE_SIZE,
    }
}

/// The start of the day `date` (`YYYY-MM-DD`, UTC) plus `days`.
fn day_start(date: &str, days: u64) -> Option<DateTime<Utc>> {
    let day = NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?.checked_add_days(chrono::Days::new(days))?;
    Some(day.and_hms_opt(0, 0, 0)?.and_utc())
}

/// What the search box holds: a lead number (up to nine digits), an e-mail, a phone in any
/// spelling (normalized as intake does, with the configured region), or else part of a name.
fn understand(text: &str, state: &AppState) -> Option<LeadSearch> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let digits = text.trim_start_matches('#');
    if !digits.is_empty() && digits.len() <= 9 && digits.chars().all(|c| c.is_ascii_digit()) {
        return digits.parse().ok().map(|id| LeadSearch::Id(LeadId(id)));
    }
    if text.contains('@') {
        return Some(LeadSearch::Email(text.to_owned()));
    }
    let phone_like = text.chars().all(|c| c.is_ascii_digit() || " +-().".contains(c));
    if phone_like && let Ok(phone) = Phone::parse(text, state.phone_region) {
        return Some(LeadSearch::Phone(phone.e164().to_owned()));
    }
    Some(LeadSearch::Name(text.to_owned()))
}

fn row(lead: &Lead, t: &super::texts::Texts) -> Row {
    let deal = lead.outcome.as_ref().and_then(|outcome| outcome.deal());
    let sent = match lead.status {
        LeadStatus::Approved => Some(true),
        LeadStatus::Dead | LeadStatus::Rejected => Some(false),
        _ => None,
    };
    Row {
        id: lead.id.0,
        received: moment(lead.created_at),
        source: lead.fields.source.0.clone(),
        name: if lead.erased_at.is_some() { t.erased.to_owned() } else { lead.fields.name.clone() },
        phone: lead.fields.phone.e164().to_owned(),
        status: t.status(lead.status),
        status_class: lead.status.as_str(),
        sent,
        deal_number: lead.outcome.as_ref().and_then(|outcome| outcome.deal_number()).map(str::to_owned),
        deal_url: deal.and_then(|deal| deal.url.clone()),
        last_error: lead.last_error.clone().unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_defused_and_phones_kept() {
        assert_eq!(spreadsheet_safe("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(spreadsheet_safe("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(spreadsheet_safe("+79991234567"), "+79991234567");
        assert_eq!(spreadsheet_safe("-cmd"), "'-cmd");
        assert_eq!(spreadsheet_safe("Анна"), "Анна");
    }

    #[test]
    fn a_day_filter_covers_the_whole_day() {
        assert_eq!(day_start("2026-03-01", 1).unwrap().to_rfc3339(), "2026-03-02T00:00:00+00:00");
        assert_eq!(day_start("not a date", 0), None);
    }
}
