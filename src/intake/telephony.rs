//! Accept call events from a cloud PBX: check they are the PBX's own, keep them, answer at once.
//!
//! The answer never waits for the CRM (a PBX may hold the call on our answer); an event is
//! acknowledged only once stored, and its call becomes a lead when it is over (`intake::calls`).

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::config::{PbxAccess, SourceConfig, SourceKind, TelephonySource};
use crate::domain::{LegEvent, SourceId};
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::telephony::{ProviderError, mango, telphin, zadarma};
use secrecy::ExposeSecret;

/// `POST` (or `GET`) `/telephony/{source}/{key}`: Telphin, which signs nothing, so the key in
/// the URL is what proves the event is the PBX's.
#[utoipa::path(method(get, post), path = "/telephony/{source}/{key}", tag = "telephony",
    params(("source" = String, Path, description = "The telephony source's name"), ("key" = String, Path, description = "The source's key: Telphin signs nothing")),
    request_body(content_type = "application/x-www-form-urlencoded", description = "Telphin's event, as a form or in the query"),
    responses(
        (status = 200, description = "Kept"),
        (status = 400, description = "Not an event Telphin sends; the message names what is wrong", body = crate::http::openapi::ErrorBody),
        (status = 401, description = "A wrong key", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No Telphin source of that name", body = crate::http::openapi::ErrorBody),
    ))]
pub async fn telphin(
    State(state): State<AppState>,
    Path((source, key)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let (source, telephony) = telephony_source(&state, &source)?;
    let PbxAccess::Telphin { key: expected } = &telephony.access else {
        return Err(ApiError::TelephonySourceNotFound);
    };
    if !bool::from(expected.expose_secret().as_bytes().ct_eq(key.as_bytes())) {
        return Err(ApiError::Unauthorized);
    }
    let mut pairs = pairs_of(query.as_deref().unwrap_or_default().as_bytes());
    pairs.extend(pairs_of(&body));
    let events = telphin::parse(&pairs).map_err(refused)?;
    keep(&state, &source.id, &events).await
}

/// `GET /telephony/{source}?zd_echo=…`: Zadarma's check of the URL, which must echo the value.
#[utoipa::path(get, path = "/telephony/{source}", tag = "telephony",
    params(("source" = String, Path, description = "The telephony source's name"), ("zd_echo" = Option<String>, Query, description = "Echoed back as plain text")),
    responses(
        (status = 200, description = "The value of `zd_echo`", content_type = "text/plain"),
        (status = 404, description = "No Zadarma source of that name", body = crate::http::openapi::ErrorBody),
    ))]
pub async fn zadarma_echo(
    State(state): State<AppState>,
    Path(source): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let (_, telephony) = telephony_source(&state, &source)?;
    if !matches!(telephony.access, PbxAccess::Zadarma(_)) {
        return Err(ApiError::TelephonySourceNotFound);
    }
    let pairs = pairs_of(query.as_deref().unwrap_or_default().as_bytes());
    // Plain text, never HTML: the value is reflected back to whoever asked.
    let echo = zadarma::echo_reply(&pairs).unwrap_or_default().to_owned();
    Ok(([(axum::http::header::CONTENT_TYPE, "text/plain; charset=utf-8")], echo).into_response())
}

/// `POST /telephony/{source}`: Zadarma's notifications, signed in `Signature`; also Mango's
/// "check connection", an empty request to the base URL.
#[utoipa::path(post, path = "/telephony/{source}", tag = "telephony",
    params(("source" = String, Path, description = "The telephony source's name"), ("Signature" = Option<String>, Header, description = "Zadarma's signature of the notification")),
    request_body(content_type = "application/x-www-form-urlencoded", description = "A Zadarma notification; empty for Mango's check"),
    responses(
        (status = 200, description = "Kept"),
        (status = 400, description = "Not a notification Zadarma sends", body = crate::http::openapi::ErrorBody),
        (status = 401, description = "A wrong signature", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No Zadarma or Mango source of that name", body = crate::http::openapi::ErrorBody),
    ))]
pub async fn zadarma_or_check(
    State(state): State<AppState>,
    Path(source): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let (source, telephony) = telephony_source(&state, &source)?;
    let events = match &telephony.access {
        PbxAccess::Zadarma(account) => {
            let signature = headers.get("signature").and_then(|value| value.to_str().ok());
            zadarma::parse(&pairs_of(&body), signature, account, chrono::Utc::now()).map_err(refused)?
        }
        PbxAccess::Mango(_) if body.is_empty() => Vec::new(),
        _ => return Err(ApiError::TelephonySourceNotFound),
    };
    // An empty answer: Zadarma reads a JSON answer to some events as orders for the live call.
    keep(&state, &source.id, &events).await
}

/// `POST /telephony/{source}/events/{kind}`: Mango Office, signed with `sign`.
#[utoipa::path(post, path = "/telephony/{source}/events/{*kind}", tag = "telephony",
    params(("source" = String, Path, description = "The telephony source's name"), ("kind" = String, Path, description = "Mango's event: `call`, `summary`, `record/added`, …")),
    request_body(content_type = "application/x-www-form-urlencoded", description = "`vpbx_api_key`, `sign` and `json`"),
    responses(
        (status = 200, description = "Kept"),
        (status = 400, description = "Not an event Mango sends", body = crate::http::openapi::ErrorBody),
        (status = 401, description = "A wrong signature", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No Mango source of that name", body = crate::http::openapi::ErrorBody),
    ))]
pub async fn mango(
    State(state): State<AppState>,
    Path((source, kind)): Path<(String, String)>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let (source, telephony) = telephony_source(&state, &source)?;
    let PbxAccess::Mango(account) = &telephony.access else {
        return Err(ApiError::TelephonySourceNotFound);
    };
    let events = mango::parse(&format!("events/{kind}"), &pairs_of(&body), account).map_err(refused)?;
    keep(&state, &source.id, &events).await
}

fn telephony_source<'a>(state: &'a AppState, name: &str) -> Result<(&'a SourceConfig, &'a TelephonySource), ApiError> {
    let source = state.source_keys.0.iter().find(|source| source.id == SourceId(name.to_owned()));
    if let Some(source) = source {
        crate::telemetry::note_source(&source.id);
        state.intake_limits.admit(&source.id)?;
    }
    match source.map(|source| (source, &source.kind)) {
        Some((source, SourceKind::Telephony(telephony))) => Ok((source, telephony)),
        _ => Err(ApiError::TelephonySourceNotFound),
    }
}

async fn keep(state: &AppState, source: &SourceId, events: &[LegEvent]) -> Result<StatusCode, ApiError> {
    if !events.is_empty() {
        state.store.record_call_events(source, events).await?;
        crate::metrics::telephony_events(&source.0, events.len());
        state.call_wake.notify_one();
    }
    Ok(StatusCode::OK)
}

fn refused(error: ProviderError) -> ApiError {
    match error {
        ProviderError::MissingSignature(_) | ProviderError::BadSignature | ProviderError::ForeignApiKey => {
            ApiError::Unauthorized
        }
        other => ApiError::Invalid(other.to_string()),
    }
}

/// Form or query pairs, decoded; the providers send UTF-8.
fn pairs_of(bytes: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(bytes).into_owned().collect()
}
