//! A portal's advertisers: the list, switching one off or on, and the portal's batch file.

use std::time::Instant;

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::page::{Frame, render};
use crate::domain::SourceId;
use crate::domain::advertiser::AdvertiserId;
use crate::http::AppState;
use crate::http::admin::Operator;
use crate::http::error::ConsoleError;

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
    can_export: bool,
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
pub async fn page(State(state): State<AppState>, operator: Operator) -> Result<Response, ConsoleError> {
    let started = Instant::now();
    let advertisers = state.store.list_advertisers(None, true).await?;
    let frame = Frame::new(&state, &operator).timed(started.elapsed());
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
    render(&AdvertisersPage { frame, rows, sources, can_export })
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
