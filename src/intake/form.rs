//! Website forms: the page (`GET /forms/{form}`, `/embed.js`) and the submission (`POST /forms/{form}`),
//! multipart with files or urlencoded, from the form's allowed sites.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::{Value, json};
use tower_http::cors::{AllowOrigin, CorsLayer};
use url::Url;

use super::form_page::{self, FormMessages, FormPage, InputKind, PageConsent, PageField, PageFiles};
use super::variables::Variables;
use super::wait;
use crate::config::{CONSENT_FIELD, FormSource, SourceConfig, SourceKind};
use crate::domain::text;
use crate::domain::{CrmField, DealSpec, Email, NewLead, Phone, Routing};
use crate::http::error::ApiError;
use crate::http::state::{AppState, MAX_BODY_BYTES};
use crate::http::visitor::ClientIp;
use crate::store::files::{IncomingFile, ReceivedFile};

/// The name of the page's file input; files are taken from any part that carries a file name.
const FILES_FIELD: &str = "files";
const TEXT_LIMIT: usize = 4096;
const SHORT_TEXT_LIMIT: usize = 1024;

/// The largest body any form can legitimately send: its files and some text.
pub fn body_limit(sources: &[SourceConfig]) -> usize {
    let largest = sources
        .iter()
        .filter_map(|source| match &source.kind {
            SourceKind::Form(form) => Some(form.max_file_bytes.saturating_mul(form.max_files as u64)),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    usize::try_from(largest).unwrap_or(usize::MAX).saturating_add(MAX_BODY_BYTES)
}

/// CORS for the forms' routes: each form's allowed sites may call it from their pages; a form
/// with no list may be called from anywhere.
pub fn cors(sources: Arc<Vec<SourceConfig>>) -> CorsLayer {
    CorsLayer::new()
        .allow_methods([axum::http::Method::GET, axum::http::Method::POST])
        .allow_headers([header::ACCEPT, header::CONTENT_TYPE])
        .allow_origin(AllowOrigin::predicate(move |origin: &HeaderValue, parts| {
            let form = parts.uri.path().trim_start_matches("/forms/").split('/').next().unwrap_or_default();
            let host = origin.to_str().ok().and_then(|origin| Url::parse(origin).ok()).and_then(host_of);
            find_form(&sources, form).is_some_and(|(_, settings)| site_allowed(settings, host.as_deref(), None))
        }))
}

#[derive(serde::Deserialize)]
pub struct PageQuery {
    #[serde(default)]
    embed: Option<String>,
}

/// `GET /forms/{form}`.
#[utoipa::path(get, path = "/forms/{form}", tag = "forms",
    params(("form" = String, Path, description = "The form source's name"), ("embed" = Option<String>, Query, description = "Present: the page for a frame on the site")),
    responses(
        (status = 200, description = "The form's page", content_type = "text/html"),
        (status = 404, description = "No such form", body = crate::http::openapi::ErrorBody),
    ))]
pub async fn page(
    State(state): State<AppState>,
    Path(form): Path<String>,
    Query(query): Query<PageQuery>,
) -> Result<Response, ApiError> {
    let (source, settings) = find_form(&state.source_keys.0, &form).ok_or(ApiError::FormNotFound)?;
    let page = page_of(source, settings, query.embed.is_some());
    let html = form_page::render_page(&page).map_err(|error| ApiError::Page(error.to_string()))?;
    Ok(([(header::CONTENT_SECURITY_POLICY, frame_ancestors(settings))], Html(html)).into_response())
}

/// Only the form's own sites may show its page in a frame (any site, when it lists none).
fn frame_ancestors(settings: &FormSource) -> String {
    if settings.allowed_sites.is_empty() {
        return "frame-ancestors *".to_owned();
    }
    let sites = settings.allowed_sites.iter().map(|site| format!("{site} *.{site}"));
    format!("frame-ancestors 'self' {}", sites.collect::<Vec<_>>().join(" "))
}

/// `GET /forms/{form}/embed.js`.
#[utoipa::path(get, path = "/forms/{form}/embed.js", tag = "forms", params(("form" = String, Path, description = "The form source's name")),
    responses(
        (status = 200, description = "The script a site includes to show the form", content_type = "text/javascript"),
        (status = 404, description = "No such form", body = crate::http::openapi::ErrorBody),
    ))]
pub async fn embed_script(State(state): State<AppState>, Path(form): Path<String>) -> Result<Response, ApiError> {
    let (source, _) = find_form(&state.source_keys.0, &form).ok_or(ApiError::FormNotFound)?;
    let script = form_page::embed_script(&source.id.0);
    Ok(([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], script).into_response())
}

/// `POST /forms/{form}`. A browser without JavaScript gets an HTML page; the page's script, JSON.
/// With `wait_for_crm`, the answer gives the CRM's number for the request when it comes in time.
#[utoipa::path(post, path = "/forms/{form}", tag = "forms", params(("form" = String, Path, description = "The form source's name")),
    request_body(content_type = "multipart/form-data", description = "The form's fields and files; also `application/x-www-form-urlencoded`"),
    responses(
        (status = 200, description = "Stored: JSON `{status, message}` for the page's script, an HTML page for a browser without it"),
        (status = 400, description = "A field is missing or malformed: `errors.<field>` names each"),
        (status = 404, description = "No such form", body = crate::http::openapi::ErrorBody),
        (status = 413, description = "Too large: a file or the whole request"),
        (status = 429, description = "Too many submissions from this address"),
    ))]
pub async fn submit(
    State(state): State<AppState>,
    Path(form): Path<String>,
    ClientIp(client_ip): ClientIp,
    headers: HeaderMap,
    request: Request,
) -> Response {
    let Some((source, settings)) = find_form(&state.source_keys.0, &form) else {
        return ApiError::FormNotFound.into_response();
    };
    let accepted = accept(&state, source, settings, client_ip, &headers, request).await;
    // Only once the lead is committed, and only for a lead that goes to the CRM.
    let number = match (&accepted, &settings.wait_for_crm) {
        (Ok(Some(id)), Some(wait)) if settings.send_to_crm => wait::visitor_number(&state.store, *id, wait).await,
        _ => None,
    };
    let message = match (&number, &settings.wait_for_crm) {
        (Some(number), Some(wait)) => wait.registered(number),
        _ => settings.success_message.clone(),
    };
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html") && !accept.contains("application/json"));
    if !wants_html {
        return match accepted {
            Ok(id) => {
                let mut body = json!({ "status": "ok", "id": id, "message": message });
                if let Some(number) = number {
                    body["number"] = json!(number);
                }
                Json(body).into_response()
            }
            Err(error) => error.into_response(),
        };
    }
    let page = page_of(source, settings, false);
    let (ok, message, errors) = match &accepted {
        Ok(_) => (true, message, Vec::new()),
        Err(ApiError::FormRejected { message, errors }) => (false, message.clone(), errors.clone()),
        Err(error) => (false, error.to_string(), Vec::new()),
    };
    let status = accepted.err().map_or(axum::http::StatusCode::OK, |error| error.status());
    match form_page::render_result(&page, ok, &message, &errors) {
        Ok(html) => (status, Html(html)).into_response(),
        Err(error) => ApiError::Page(error.to_string()).into_response(),
    }
}

/// Checks and stores one submission; returns the lead's id (`None` for a submission dropped as spam).
async fn accept(
    state: &AppState,
    source: &SourceConfig,
    settings: &FormSource,
    client_ip: Option<IpAddr>,
    headers: &HeaderMap,
    request: Request,
) -> Result<Option<crate::domain::LeadId>, ApiError> {
    let sender = ["origin", "referer"]
        .into_iter()
        .find_map(|name| headers.get(name).and_then(|value| value.to_str().ok()).and_then(|text| Url::parse(text).ok()))
        .and_then(host_of);
    let own_host = headers.get(header::HOST).and_then(|value| value.to_str().ok()).map(host_without_port);
    if !site_allowed(settings, sender.as_deref(), own_host.as_deref()) {
        return Err(ApiError::Forbidden(format!(
            "форма «{}» принимает заявки только со своих сайтов, а запрос пришёл {}",
            source.id,
            sender.map_or_else(|| "без заголовков Origin и Referer".to_owned(), |host| format!("с «{host}»"))
        )));
    }
    state.intake_limits.admit(&source.id)?;
    state.intake_limits.admit_address(&source.id, client_ip)?;
    let mut submission = read_submission(state, settings, request).await?;
    let honeypot_filled = submission.values.get(&settings.honeypot).is_some_and(|value| !value.trim().is_empty());
    if honeypot_filled {
        state.files.discard(submission.files).await;
        // The visitor's address is personal data: counted by the per-address limit, never logged.
        tracing::info!(form = %source.id, "a submission filled the hidden field; dropped as spam");
        return Ok(None);
    }
    submission.values.remove(&settings.honeypot);
    let lead = match submission.to_lead(source, settings, headers, client_ip, state.phone_region) {
        Ok(lead) => lead,
        Err(error) => {
            state.files.discard(submission.files).await;
            return Err(error);
        }
    };
    // Files first: a committed lead must find its files. Should the commit fail, the files this
    // submission alone brought are removed again.
    let kept = state.files.keep(submission.files).await.map_err(file_error)?;
    match state.writer.insert(lead).await {
        Ok(inserted) => Ok(Some(inserted.id())),
        Err(error) => {
            kept.rolled_back();
            Err(error.into())
        }
    }
}

/// What a visitor sent: text fields by name, stored files, and what was wrong with the files.
struct Submission {
    values: BTreeMap<String, String>,
    files: Vec<ReceivedFile>,
    file_error: Option<String>,
}

async fn read_submission(state: &AppState, settings: &FormSource, request: Request) -> Result<Submission, ApiError> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let mut submission = Submission { values: BTreeMap::new(), files: Vec::new(), file_error: None };
    if !content_type.starts_with("multipart/form-data") {
        let body = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(|rejection| super::read_body(Err(rejection)).unwrap_err())?;
        submission.values = url::form_urlencoded::parse(&body)
            .map(|(name, text)| (name.into_owned(), text.replace("\r\n", "\n")))
            .collect();
        return Ok(submission);
    }
    let mut multipart = Multipart::from_request(request, state)
        .await
        .map_err(|rejection| ApiError::Invalid(format!("тело формы не прочитано: {rejection}")))?;
    let messages = FormMessages::default();
    let read = async {
        while let Some(mut part) = multipart.next_field().await.map_err(multipart_error)? {
            let name = part.name().unwrap_or_default().to_owned();
            // A file's name is only shown, never refused: what cannot be stored is left out of it.
            let Some(file_name) = part.file_name().map(|name| text::strip_forbidden(name).into_owned()) else {
                // Browsers send a textarea's line breaks as CRLF; the page counts them as one character.
                let text = part.text().await.map_err(multipart_error)?.replace("\r\n", "\n");
                submission.values.insert(name, text);
                continue;
            };
            let content_type = part.content_type().unwrap_or("application/octet-stream").to_owned();
            // A file input left empty is still sent, as a part with no name and no content.
            let mut incoming = state.files.receive().await.map_err(file_error)?;
            let too_many = submission.files.len() >= settings.max_files;
            let too_large = match receive_part(&mut part, &mut incoming, too_many, settings.max_file_bytes).await {
                Ok(too_large) => too_large,
                Err(error) => {
                    state.files.abandon(incoming).await;
                    return Err(error);
                }
            };
            if file_name.is_empty() && incoming.size() == 0 {
                state.files.abandon(incoming).await;
            } else if submission.files.len() >= settings.max_files {
                state.files.abandon(incoming).await;
                submission.file_error = Some(messages.too_many_files(settings.max_files));
            } else if too_large {
                state.files.abandon(incoming).await;
                submission.file_error = Some(messages.file_too_large(&file_name, settings.max_file_bytes));
            } else {
                submission
                    .files
                    .push(state.files.finish(incoming, &file_name, &content_type).await.map_err(file_error)?);
            }
        }
        Ok::<(), ApiError>(())
    }
    .await;
    if let Err(error) = read {
        state.files.discard(submission.files).await;
        return Err(error);
    }
    Ok(submission)
}

/// Writes one file part to disk unless it is over the limits (`skip`, or more than `max_bytes`);
/// returns whether it was. An oversized part is still read to its end, so the visitor gets an
/// answer naming the file instead of a broken connection.
async fn receive_part(
    part: &mut axum::extract::multipart::Field<'_>,
    incoming: &mut IncomingFile,
    skip: bool,
    max_bytes: u64,
) -> Result<bool, ApiError> {
    let mut too_large = skip;
    while let Some(chunk) = part.chunk().await.map_err(multipart_error)? {
        if too_large || incoming.size() + chunk.len() as u64 > max_bytes {
            too_large = true;
            continue;
        }
        incoming.write(&chunk).await.map_err(file_error)?;
    }
    Ok(too_large)
}

fn multipart_error(error: axum::extract::multipart::MultipartError) -> ApiError {
    if error.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::FormTooLarge("Файлы слишком большие для этой формы".to_owned())
    } else {
        ApiError::Invalid(format!("тело формы не прочитано: {error}"))
    }
}

fn file_error(error: std::io::Error) -> ApiError {
    ApiError::Files(error.to_string())
}

impl Submission {
    /// The lead the form describes, or every problem with it, each by its form field.
    fn to_lead(
        &self,
        source: &SourceConfig,
        settings: &FormSource,
        headers: &HeaderMap,
        client_ip: Option<IpAddr>,
        region: crate::domain::PhoneRegion,
    ) -> Result<NewLead, ApiError> {
        let messages = FormMessages::default();
        let mut errors: Vec<(String, String)> = Vec::new();
        let value =
            |form_field: &str| self.values.get(form_field).map(|text| text.trim()).filter(|text| !text.is_empty());
        for (name, text) in &self.values {
            if let Some(character) = text::forbidden_char(name).or_else(|| text::forbidden_char(text)) {
                errors.push((text::strip_forbidden(name).into_owned(), messages.forbidden_char(character)));
            }
        }
        for (target, form_field) in &settings.fields {
            let limit = if *target == CrmField::Comment { TEXT_LIMIT } else { SHORT_TEXT_LIMIT };
            match value(form_field) {
                None if settings.required.contains(form_field) => {
                    errors.push((form_field.clone(), messages.required.clone()))
                }
                Some(text) if text.chars().count() > limit => {
                    errors.push((form_field.clone(), messages.too_long(limit)))
                }
                _ => {}
            }
        }
        let mapped = |target: CrmField| {
            settings
                .fields
                .iter()
                .find(|(crm_field, _)| *crm_field == target)
                .map(|(_, form_field)| form_field.as_str())
        };
        let phone_field = mapped(CrmField::Phone).unwrap_or_default();
        let phone = value(phone_field).and_then(|text| match Phone::parse(text, region) {
            Ok(phone) => Some(phone),
            Err(_) => {
                errors.push((phone_field.to_owned(), messages.phone.clone()));
                None
            }
        });
        let email = mapped(CrmField::Email).and_then(|field| value(field).map(|text| (field, text))).and_then(
            |(field, text)| match Email::parse(text) {
                Ok(email) => Some(email),
                Err(_) => {
                    errors.push((field.to_owned(), messages.email.clone()));
                    None
                }
            },
        );
        if settings.require_file && self.files.is_empty() && self.file_error.is_none() {
            errors.push((FILES_FIELD.to_owned(), messages.file_required.clone()));
        }
        if let Some(problem) = &self.file_error {
            errors.push((FILES_FIELD.to_owned(), problem.clone()));
        }
        // Checked here, not only by the page: a site may post the form with a page of its own.
        let consent_given = value(CONSENT_FIELD).is_some();
        if settings.consent.is_some() && !consent_given {
            errors.push((CONSENT_FIELD.to_owned(), messages.consent.clone()));
        }
        let mut variables = Variables::from_request(headers, client_ip);
        for (name, text) in &self.values {
            variables.set_parameter(name, text);
        }
        for (target, name) in [(CrmField::Name, "name"), (CrmField::Phone, "phone"), (CrmField::Email, "email")] {
            if let Some(text) = mapped(target).and_then(value) {
                variables.set(name, text);
            }
        }
        let mut lead_texts: BTreeMap<CrmField, String> = BTreeMap::new();
        let mut deal = DealSpec::default();
        let statics = settings.statics.iter().filter_map(|(target, template)| {
            let limit = if *target == CrmField::Comment { TEXT_LIMIT } else { SHORT_TEXT_LIMIT };
            match variables.expand(template, limit) {
                Ok(text) => Some((*target, None, text)),
                Err(too_long) => {
                    errors.push((format!("static.{target}"), too_long.to_string()));
                    None
                }
            }
        });
        let statics: Vec<_> = statics.collect();
        let fills = statics.into_iter().chain(settings.fields.iter().filter_map(|(target, form_field)| {
            value(form_field).map(|text| (*target, Some(form_field), text.to_owned()))
        }));
        for (target, form_field, text) in fills {
            match target {
                CrmField::Name | CrmField::Comment => {
                    lead_texts.insert(target, text);
                }
                CrmField::Phone | CrmField::Email => {}
                _ => {
                    if let Err(problem) = deal.set(target, &text) {
                        let field = form_field.cloned().unwrap_or_else(|| format!("static.{target}"));
                        errors.push((field, problem));
                    }
                }
            }
        }
        if !errors.is_empty() {
            return Err(ApiError::FormRejected {
                message: "Проверьте поля формы".to_owned(), errors
            });
        }
        let Some(phone) = phone else {
            let error = (phone_field.to_owned(), messages.required.clone());
            return Err(ApiError::FormRejected {
                message: "Проверьте поля формы".to_owned(), errors: vec![error]
            });
        };
        deal.attachments = self.files.iter().map(|file| file.attachment.clone()).collect();
        let mut payload: serde_json::Map<String, Value> =
            self.values.iter().map(|(name, text)| (name.clone(), Value::String(text.clone()))).collect();
        if let Some(page) = headers.get(header::REFERER).and_then(|value| value.to_str().ok()) {
            payload.insert("page".to_owned(), Value::String(page.to_owned()));
        }
        // What the visitor agreed to, as it read at the time: the operator may reword it later.
        if let Some(consent) = &settings.consent {
            let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            payload.insert(
                CONSENT_FIELD.to_owned(),
                json!({ "given": true, "text": consent.text, "policy_url": consent.policy_url.as_str(), "at": at }),
            );
        }
        Ok(NewLead {
            source: source.id.clone(),
            external_id: None,
            name: lead_texts.remove(&CrmField::Name).unwrap_or_else(|| "Без имени".to_owned()),
            phone,
            email,
            comment: lead_texts.remove(&CrmField::Comment),
            callback_url: None,
            payload: Value::Object(payload),
            routing: Routing::default(),
            origin_time: None,
            deal,
            skip_sending: !settings.send_to_crm,
            duplicate_check: None,
            call: None,
        })
    }
}

/// The form source named `form`; the request's access-log line names it.
fn find_form<'a>(sources: &'a [SourceConfig], form: &str) -> Option<(&'a SourceConfig, &'a FormSource)> {
    let found = sources.iter().find(|source| source.id.0 == form).and_then(|source| match &source.kind {
        SourceKind::Form(settings) => Some((source, settings)),
        _ => None,
    });
    if let Some((source, _)) = found {
        crate::telemetry::note_source(&source.id);
    }
    found
}

/// A form with no list of sites takes any; otherwise the sender's host must be listed (or be a
/// subdomain of a listed one), or be this gateway itself, which serves the form's own page.
fn site_allowed(settings: &FormSource, sender: Option<&str>, own_host: Option<&str>) -> bool {
    if settings.allowed_sites.is_empty() {
        return true;
    }
    let Some(sender) = sender else { return false };
    own_host == Some(sender)
        || settings.allowed_sites.iter().any(|site| sender == site || sender.ends_with(&format!(".{site}")))
}

fn host_of(url: Url) -> Option<String> {
    url.host_str().map(str::to_ascii_lowercase)
}

fn host_without_port(host: &str) -> String {
    let host = if host.starts_with('[') { host.split(']').next().map(|h| format!("{h}]")) } else { None }
        .unwrap_or_else(|| host.rsplit_once(':').map_or(host, |(name, _)| name).to_owned());
    host.to_ascii_lowercase()
}

/// The page for a form: its fields in a natural order, name and phone first, the message last.
fn page_of(source: &SourceConfig, settings: &FormSource, embedded: bool) -> FormPage {
    let mut fields: Vec<(CrmField, &String)> = settings.fields.iter().map(|(target, name)| (*target, name)).collect();
    fields.sort_by_key(|(target, _)| (*target == CrmField::Comment, *target));
    let fields = fields
        .into_iter()
        .map(|(target, name)| {
            let (input, default_label, max_length) = match target {
                CrmField::Name => (InputKind::Text, "Имя", SHORT_TEXT_LIMIT),
                CrmField::Phone => (InputKind::Tel, "Телефон", SHORT_TEXT_LIMIT),
                CrmField::Email => (InputKind::Email, "E-mail", SHORT_TEXT_LIMIT),
                CrmField::Comment => (InputKind::Textarea, "Сообщение", TEXT_LIMIT),
                CrmField::Title => (InputKind::Text, "Тема", SHORT_TEXT_LIMIT),
                _ => (InputKind::Text, name.as_str(), SHORT_TEXT_LIMIT),
            };
            PageField {
                name: name.clone(),
                label: settings.labels.get(name).cloned().unwrap_or_else(|| default_label.to_owned()),
                input,
                required: settings.required.contains(name),
                max_length,
            }
        })
        .collect();
    let files = (settings.max_files > 0).then(|| PageFiles {
        name: FILES_FIELD.to_owned(),
        label: settings.labels.get(FILES_FIELD).cloned().unwrap_or_else(|| "Файлы".to_owned()),
        required: settings.require_file,
        max_files: settings.max_files,
        max_bytes: settings.max_file_bytes,
    });
    FormPage {
        form_id: source.id.0.clone(),
        heading: settings.heading.clone(),
        action: format!("/forms/{}", source.id),
        fields,
        files,
        consent: settings.consent.as_ref().map(|consent| PageConsent {
            name: CONSENT_FIELD.to_owned(),
            text: consent.text.clone(),
            policy_url: consent.policy_url.to_string(),
        }),
        honeypot: settings.honeypot.clone(),
        submit_label: "Отправить".to_owned(),
        success_message: settings.success_message.clone(),
        ok_label: "Хорошо".to_owned(),
        messages: FormMessages::default(),
        embedded,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(sites: &[&str]) -> FormSource {
        FormSource {
            heading: String::new(),
            fields: Vec::new(),
            statics: Vec::new(),
            required: Vec::new(),
            labels: BTreeMap::new(),
            require_file: false,
            max_files: 0,
            max_file_bytes: 0,
            send_to_crm: true,
            allowed_sites: sites.iter().map(|site| (*site).to_owned()).collect(),
            honeypot: "website".to_owned(),
            per_ip_per_minute: 1,
            success_message: String::new(),
            wait_for_crm: None,
            consent: None,
        }
    }

    #[test]
    fn only_listed_sites_their_subdomains_and_the_gateway_itself_may_post() {
        let listed = settings(&["example.ru"]);
        assert!(site_allowed(&listed, Some("example.ru"), None));
        assert!(site_allowed(&listed, Some("www.example.ru"), None));
        assert!(!site_allowed(&listed, Some("badexample.ru"), None));
        assert!(!site_allowed(&listed, None, Some("gate.local")));
        assert!(site_allowed(&listed, Some("gate.local"), Some("gate.local")));
        assert!(site_allowed(&settings(&[]), None, None));
    }

    #[test]
    fn the_host_header_loses_its_port() {
        assert_eq!(host_without_port("Gate.Local:8080"), "gate.local");
        assert_eq!(host_without_port("[::1]:8080"), "[::1]");
        assert_eq!(host_without_port("127.0.0.1"), "127.0.0.1");
    }
}
