//! A portal's advertisers: the list, adding one, switching one off or on, and the portal's batch file.

use std::time::Instant;

use askama::Template;
use axum::Form;
use axum::extract::{Multipart, Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::page::{Frame, render};
use crate::config::SourceKind;
use crate::domain::SourceId;
use crate::domain::advertiser::AdvertiserId;
use crate::domain::advertiser_file::{self, FileProblems};
use crate::domain::advertiser_form::AdvertiserFields;
use crate::http::admin::Operator;
use crate::http::error::ConsoleError;
use crate::http::state::AppState;
use crate::store::advertisers::Saved;

pub struct Row {
    pub source: String,
    pub id: String,
    pub name: String,
    /// CPF or CNPJ and e-mail: personal data of a person advertising, shown to admins only.
    pub document: String,
    pub email: String,
    pub listings: usize,
    pub pipeline: String,
    pub enabled: bool,
}

#[derive(Template)]
#[template(path = "console/advertisers.html")]
struct AdvertisersPage {
    frame: Frame,
    rows: Vec<Row>,
    sources: Vec<String>,
    /// Portal sources, where an admin may import a file.
    portal_sources: Vec<String>,
    can_export: bool,
    flash: Option<String>,
    /// Why an uploaded file was refused, each line with its problem.
    problems: Vec<String>,
    /// The add form's values: empty, or as sent when it was refused.
    add: AddForm,
    /// Why the add form was refused.
    add_problem: Option<String>,
}

/// `POST /admin/advertisers/add`: one advertiser, as `leadgate advertisers add` takes it.
#[derive(Debug, Default, Deserialize)]
pub struct AddForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub document: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub email: String,
    /// clientListingIds separated by `;`, `,` or spaces.
    #[serde(default)]
    pub listings: String,
    #[serde(default)]
    pub send_lead_email: Option<String>,
    #[serde(default)]
    pub pipeline: String,
    #[serde(default)]
    pub status: String,
}

impl AddForm {
    /// The form as the command line's options: an empty field leaves the stored value.
    fn fields(&self) -> AdvertiserFields {
        let given = |text: &str| Some(text.trim().to_owned()).filter(|text| !text.is_empty());
        AdvertiserFields {
            id: self.id.trim().to_owned(),
            document: given(&self.document),
            name: given(&self.name),
            email: given(&self.email),
            listings: self.listings.split([';', ',', ' ', '\n']).filter_map(given).collect(),
            send_lead_email: Some(self.send_lead_email.is_some()),
            destination: None,
            pipeline: given(&self.pipeline),
            status: given(&self.status),
        }
    }
}

#[derive(Deserialize)]
pub struct Imported {
    imported: Option<usize>,
    new: Option<usize>,
    added: Option<String>,
    updated: Option<String>,
}

#[derive(Deserialize)]
pub struct ToggleForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    enabled: String,
}

#[derive(Deserialize)]
pub struct ExportQuery {
    #[serde(default)]
    source: String,
}

/// `GET /admin/advertisers`
pub async fn page(
    State(state): State<AppState>,
    operator: Operator,
    Query(imported): Query<Imported>,
) -> Result<Response, ConsoleError> {
    let t = super::texts::texts(state.console.config.language);
    let flash = imported
        .imported
        .map(|count| format!("{} {count} ({} {})", t.imported, t.of_them_new, imported.new.unwrap_or_default()))
        .or_else(|| imported.added.map(|id| format!("{}: {id}", t.advertiser_added)))
        .or_else(|| imported.updated.map(|id| format!("{}: {id}", t.advertiser_updated)));
    list_page(&state, &operator, flash, Vec::new(), AddForm::default(), None).await
}

async fn list_page(
    state: &AppState,
    operator: &Operator,
    flash: Option<String>,
    problems: Vec<String>,
    add: AddForm,
    add_problem: Option<String>,
) -> Result<Response, ConsoleError> {
    let started = Instant::now();
    let advertisers = state.store.list_advertisers(None, true).await?;
    let frame = Frame::new(state, operator).timed(started.elapsed());
    let admin = operator.is_admin();
    let mut sources: Vec<String> = advertisers.iter().map(|advertiser| advertiser.source.0.clone()).collect();
    sources.dedup();
    let rows = advertisers
        .into_iter()
        .map(|advertiser| Row {
            source: advertiser.source.0,
            id: advertiser.id.as_str().to_owned(),
            name: advertiser.name,
            document: if admin { advertiser.document.as_str().to_owned() } else { String::new() },
            email: if admin {
                advertiser.email.map(|email| email.as_str().to_owned()).unwrap_or_default()
            } else {
                String::new()
            },
            listings: advertiser.listings.len(),
            pipeline: advertiser.route.pipeline.unwrap_or_default(),
            enabled: advertiser.enabled,
        })
        .collect();
    let can_export = admin && state.console.public_url.is_some();
    let portal_sources = state
        .source_keys
        .0
        .iter()
        .filter(|source| admin && matches!(source.kind, SourceKind::Zap(_)))
        .map(|source| source.id.0.clone())
        .collect();
    render(&AdvertisersPage { frame, rows, sources, portal_sources, can_export, flash, problems, add, add_problem })
}

/// `POST /admin/advertisers/add`: adds the advertiser, or changes the one with its id (fields
/// left empty keep their value), with the checks of `leadgate advertisers add`.
pub async fn add(
    State(state): State<AppState>,
    operator: Operator,
    Form(form): Form<AddForm>,
) -> Result<Response, ConsoleError> {
    operator.require_admin()?;
    operator.check_csrf(&form.csrf)?;
    let portal =
        state.source_keys.0.iter().any(|known| known.id.0 == form.source && matches!(known.kind, SourceKind::Zap(_)));
    let source = SourceId(form.source.clone());
    let outcome = if portal {
        match form.fields().change() {
            Ok(change) => state.store.save_advertiser(&source, change, None).await?,
            Err(problem) => Saved::Refused(problem),
        }
    } else {
        Saved::Refused(format!("«source»: «{}» is not a portal source", form.source))
    };
    let (action, verb, id) = match outcome {
        Saved::Added(id) => ("advertiser_added", "added", id),
        Saved::Updated(id) => ("advertiser_updated", "updated", id),
        Saved::Refused(problem) => {
            let mut page = list_page(&state, &operator, None, Vec::new(), form, Some(problem)).await?;
            *page.status_mut() = axum::http::StatusCode::BAD_REQUEST;
            return Ok(page);
        }
    };
    state.store.audit(operator.username(), action, Some(&format!("{id} of source {source}"))).await?;
    let query = url::form_urlencoded::Serializer::new(String::new()).append_pair(verb, id.as_str()).finish();
    Ok(Redirect::to(&format!("/admin/advertisers?{query}")).into_response())
}

/// Rows of a refused file shown on the page; the rest are counted.
const PROBLEMS_SHOWN: usize = 100;

/// `POST /admin/advertisers/import` (multipart: `csrf`, `source`, `file`): the same checks as
/// `leadgate advertisers import`; every row good, or nothing written and every bad row shown.
pub async fn import(
    State(state): State<AppState>,
    operator: Operator,
    mut multipart: Multipart,
) -> Result<Response, ConsoleError> {
    operator.require_admin()?;
    let (mut csrf, mut source, mut file) = (String::new(), String::new(), Vec::new());
    let unreadable = |error: axum::extract::multipart::MultipartError| ConsoleError::Invalid(error.body_text());
    while let Some(field) = multipart.next_field().await.map_err(unreadable)? {
        match field.name().unwrap_or_default() {
            "csrf" => csrf = field.text().await.map_err(unreadable)?,
            "source" => source = field.text().await.map_err(unreadable)?,
            "file" => file = field.bytes().await.map_err(unreadable)?.to_vec(),
            _ => {}
        }
    }
    operator.check_csrf(&csrf)?;
    let portal =
        state.source_keys.0.iter().any(|known| known.id.0 == source && matches!(known.kind, SourceKind::Zap(_)));
    if !portal {
        return Err(ConsoleError::Invalid(format!("«source»: «{source}» is not a portal source")));
    }
    let source = SourceId(source);
    let stored = state.store.list_advertisers(Some(&source), true).await?;
    match advertiser_file::check(file.as_slice(), &source, stored, &mut |_| {}) {
        Ok(checked) => {
            state.store.upsert_advertisers(&checked.advertisers).await?;
            let count = checked.advertisers.len();
            let detail = format!("{count} advertisers of source {source} ({} new)", checked.new);
            state.store.audit(operator.username(), "advertisers_imported", Some(&detail)).await?;
            Ok(Redirect::to(&format!("/admin/advertisers?imported={count}&new={}", checked.new)).into_response())
        }
        Err(problems) => {
            let mut shown = match problems {
                FileProblems::Header(problem) => vec![problem],
                FileProblems::Rows(rows) => {
                    rows.into_iter().map(|(line, problem)| format!("{line}: {problem}")).collect()
                }
            };
            let more = shown.len().saturating_sub(PROBLEMS_SHOWN);
            shown.truncate(PROBLEMS_SHOWN);
            if more > 0 {
                shown.push(format!("… +{more}"));
            }
            let mut page = list_page(&state, &operator, None, shown, AddForm::default(), None).await?;
            *page.status_mut() = axum::http::StatusCode::BAD_REQUEST;
            Ok(page)
        }
    }
}

/// `POST /admin/advertisers/enabled`: a disabled advertiser's URL answers the portal 404 ("the
/// integration is gone") and leaves the batch file; enabling it brings both back.
pub async fn set_enabled(
    State(state): State<AppState>,
    operator: Operator,
    Form(form): Form<ToggleForm>,
) -> Result<Redirect, ConsoleError> {
    operator.require_admin()?;
    operator.check_csrf(&form.csrf)?;
    let id = AdvertiserId::parse(&form.id).map_err(|_| ConsoleError::NotFound)?;
    let enabled = form.enabled == "true";
    if !state.store.set_advertiser_enabled(&SourceId(form.source.clone()), &id, enabled).await? {
        return Err(ConsoleError::NotFound);
    }
    let action = if enabled { "advertiser_enabled" } else { "advertiser_disabled" };
    state.store.audit(operator.username(), action, Some(&format!("{} of source {}", form.id, form.source))).await?;
    Ok(Redirect::to("/admin/advertisers"))
}

/// `GET /admin/advertisers/export.csv?source=…`: the portal's batch file (DOCUMENT, URL,
/// SEND_LEAD_EMAIL) of the enabled advertisers, as `leadgate advertisers export-zap` writes it.
pub async fn export(
    State(state): State<AppState>,
    operator: Operator,
    Query(query): Query<ExportQuery>,
) -> Result<Response, ConsoleError> {
    operator.require_admin()?;
    let public_url = state.console.public_url.as_ref().ok_or_else(|| {
        ConsoleError::Invalid("the URLs need the gateway's address: set [server] public_url".to_owned())
    })?;
    let source = (!query.source.is_empty()).then(|| SourceId(query.source.clone()));
    let advertisers = state.store.list_advertisers(source.as_ref(), false).await?;
    let mut csv = csv::Writer::from_writer(Vec::new());
    let csv_error = |error: csv::Error| ConsoleError::Invalid(error.to_string());
    csv.write_record(["DOCUMENT", "URL", "SEND_LEAD_EMAIL"]).map_err(csv_error)?;
    for advertiser in &advertisers {
        let flag = if advertiser.send_lead_email { "true" } else { "false" };
        let url = advertiser.id.lead_url(public_url);
        csv.write_record([advertiser.document.as_str(), url.as_str(), flag]).map_err(csv_error)?;
    }
    let detail =
        format!("{} advertisers of {}", advertisers.len(), source.map_or("every source".to_owned(), |source| source.0));
    state.store.audit(operator.username(), "advertisers_exported", Some(&detail)).await?;
    let body = csv.into_inner().map_err(|error| ConsoleError::Invalid(error.to_string()))?;
    let headers =
        [(CONTENT_TYPE, "text/csv; charset=utf-8"), (CONTENT_DISPOSITION, "attachment; filename=\"advertisers.csv\"")];
    Ok((headers, body).into_response())
}
