//! Calls for operators, behind `[admin] token`: one call or a client's calls, a call started from here; and a call's recording, behind its signed link.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::admin::{Admin, CallWatcher};
use super::error::ApiError;
use super::lead_status::report;
use crate::config::{SourceConfig, SourceKind};
use crate::domain::{Lead, LeadId, Phone};
use crate::notify::live_calls::Board;
use crate::pbx::RecordingOf;

/// The most calls one answer lists.
const LIMIT: usize = 100;

/// `GET /api/v1/calls/{id}`: the call (a telephony source's lead) with its decision, CRM calls,
/// history, and the PBX's events as they arrived.
#[utoipa::path(get, path = "/api/v1/calls/{id}", tag = "operators", security(("admin_token" = [])),
    params(("id" = i64, Path, description = "The call's lead id")),
    responses(
        (status = 200, description = "The call, its decision, CRM calls, history and the PBX's events"),
        (status = 401, description = "No admin token", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No call of that id", body = crate::http::openapi::ErrorBody),
    ))]
pub async fn show(State(state): State<AppState>, _: Admin, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let id = id.parse::<i64>().map(LeadId).map_err(|_| ApiError::NotFound)?;
    let lead = state.store.find_lead(id).await?.filter(|lead| lead.fields.call.is_some()).ok_or(ApiError::NotFound)?;
    let history = state.store.history(id).await?;
    let events = state.store.call_events_of_lead(id).await?;
    let mut body = call_report(&lead, report(&lead, &history));
    body["events"] =
        events.into_iter().map(|stored| json!({ "received_at": stored.received_at, "event": stored.event })).collect();
    Ok(Json(body))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ByPhone {
    /// The client's number, in any usual spelling.
    phone: String,
}

/// `GET /api/v1/calls?phone=…`: the client's calls, newest first; the number in any spelling.
#[utoipa::path(get, path = "/api/v1/calls", tag = "operators", security(("admin_token" = [])),
    params(("phone" = String, Query, description = "The client's number, in any usual spelling")),
    responses(
        (status = 200, description = "`{phone, calls}`: the newest 100 calls"),
        (status = 400, description = "Not a phone number", body = crate::http::openapi::ErrorBody),
        (status = 401, description = "No admin token", body = crate::http::openapi::ErrorBody),
    ))]
pub async fn by_phone(
    State(state): State<AppState>,
    _: Admin,
    Query(query): Query<ByPhone>,
) -> Result<Json<Value>, ApiError> {
    calls_of(&state, &query.phone).await
}

/// `POST /api/v1/calls/search` `{"phone": "…"}`: the same list, with the number kept out of the
/// URL (and so out of proxies' access logs and shell histories).
#[utoipa::path(post, path = "/api/v1/calls/search", tag = "operators", security(("admin_token" = [])),
    request_body = ByPhone,
    responses(
        (status = 200, description = "`{phone, calls}`: the newest 100 calls"),
        (status = 400, description = "Not a phone number, or not JSON of this shape", body = crate::http::openapi::ErrorBody),
        (status = 401, description = "No admin token", body = crate::http::openapi::ErrorBody),
    ))]
pub async fn search(
    State(state): State<AppState>,
    _: Admin,
    body: Result<Json<ByPhone>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    // serde's own message may quote the value sent, which is a phone number.
    let Json(query) = body.map_err(|_| ApiError::Invalid("ожидается JSON {\"phone\": …}".into()))?;
    calls_of(&state, &query.phone).await
}

async fn calls_of(state: &AppState, phone: &str) -> Result<Json<Value>, ApiError> {
    let phone =
        Phone::parse(phone, state.phone_region).map_err(|error| ApiError::Invalid(format!("phone: {error}")))?;
    let calls = state.store.calls_of_phone(phone.e164(), LIMIT).await?;
    let listed: Vec<Value> = calls.iter().map(|lead| call_report(lead, report(lead, &[]))).collect();
    Ok(Json(json!({ "phone": phone.e164(), "calls": listed })))
}

/// `GET /api/v1/calls/live`: Server-Sent Events, one `call` event with a call's card each time
/// it appears or changes (ringing, answered, the caller found in the CRM), and `ended` with its
/// `id` when it is over. A new watcher first gets every call in progress.
#[utoipa::path(get, path = "/api/v1/calls/live", tag = "operators", security(("admin_token" = [])),
    responses(
        (status = 200, description = "Server-Sent Events: `call` with a card, `ended` with its id", content_type = "text/event-stream"),
        (status = 401, description = "No admin token or console session", body = crate::http::openapi::ErrorBody),
    ))]
pub async fn live(State(state): State<AppState>, _: CallWatcher) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let board = state.live_calls.subscribe();
    let start = (board, Arc::new(Board::new()), true);
    let changes = futures::stream::unfold(start, |(mut board, shown, first)| async move {
        // The first look is at the board as it is; after that, at each change.
        if !first {
            board.changed().await.ok()?;
        }
        let current = Arc::clone(&board.borrow_and_update());
        let events = differences(&shown, &current);
        Some((futures::stream::iter(events), (board, current, false)))
    });
    let until_shutdown = changes.flatten().map(Ok).take_until(state.live_calls.closed());
    Sse::new(until_shutdown).keep_alive(KeepAlive::default())
}

/// The events that bring a watcher who saw `shown` to `current`.
fn differences(shown: &Board, current: &Board) -> Vec<Event> {
    let ended = shown
        .keys()
        .filter(|id| !current.contains_key(*id))
        .map(|id| Event::default().event("ended").data(json!({ "id": id }).to_string()));
    let changed = current
        .values()
        .filter(|card| shown.get(&card.id) != Some(card))
        .filter_map(|card| Event::default().event("call").json_data(card).ok());
    ended.chain(changed).collect()
}

#[derive(Deserialize)]
pub struct SignedLink {
    sig: Option<String>,
}

/// `GET /calls/{id}/recording?sig=…`: the call's recording, fetched from its PBX while it is
/// played, so the link in the CRM outlives the PBX's own expiring one. A link this gateway did
/// not sign finds nothing.
#[utoipa::path(get, path = "/calls/{id}/recording", tag = "telephony",
    params(("id" = i64, Path, description = "The call's lead id"), ("sig" = String, Query, description = "The link's signature")),
    responses(
        (status = 200, description = "The recording, streamed from the PBX", content_type = "audio/mpeg"),
        (status = 404, description = "No recording under that link", body = crate::http::openapi::ErrorBody),
        (status = 502, description = "The PBX refused", body = crate::http::openapi::ErrorBody),
        (status = 504, description = "The PBX did not answer", body = crate::http::openapi::ErrorBody),
    ))]
pub async fn recording(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(link): Query<SignedLink>,
) -> Result<Response, ApiError> {
    let id = id.parse::<i64>().map(LeadId).map_err(|_| ApiError::NotFound)?;
    if !state.recording_links.verify(id, link.sig.as_deref().unwrap_or_default()) {
        return Err(ApiError::NotFound);
    }
    let lead = state.store.find_lead(id).await?.ok_or(ApiError::NotFound)?;
    let call = lead.fields.call.as_ref().ok_or(ApiError::NotFound)?;
    // Links are made only for calls whose recording was known when they were logged.
    let recording_id = call.recording.as_deref().ok_or(ApiError::RecordingNotFound)?;
    let pbx =
        state.pbx.get(&lead.fields.source).ok_or_else(|| ApiError::PbxApiMissing(lead.fields.source.0.clone()))?;
    let audio = pbx.recording(RecordingOf { call_id: &call.call_id, recording_id }).await?;
    let content_type = audio
        .headers()
        .get(header::CONTENT_TYPE)
        .filter(|value| value.as_bytes().starts_with(b"audio/"))
        .cloned()
        .unwrap_or(HeaderValue::from_static("audio/mpeg"));
    let length = audio.content_length();
    let mut response = Body::from_stream(audio.bytes_stream()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, content_type);
    let disposition = format!("inline; filename=\"call-{id}.mp3\"");
    headers.insert(header::CONTENT_DISPOSITION, HeaderValue::from_str(&disposition).expect("an id is ASCII digits"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=3600"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if let Some(length) = length {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    }
    Ok(response)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartCall {
    /// The operator's extension, its digits.
    extension: String,
    /// The client's number, in any usual spelling.
    phone: String,
    /// Needed only when several telephony sources have the extension.
    source: Option<String>,
}

/// `POST /api/v1/calls` `{"extension": "101", "phone": "+7…"}`: asks the PBX to ring the
/// extension and then the client. Answers 202 once the PBX has taken the request; the call
/// itself arrives later as events, like any other.
#[utoipa::path(post, path = "/api/v1/calls", tag = "operators", security(("admin_token" = [])), request_body = StartCall,
    responses(
        (status = 202, description = "The PBX took the request"),
        (status = 400, description = "A bad extension or phone, or an extension of several sources", body = crate::http::openapi::ErrorBody),
        (status = 401, description = "No admin token", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No such source, or the PBX has no such extension", body = crate::http::openapi::ErrorBody),
        (status = 409, description = "The source has no API credentials", body = crate::http::openapi::ErrorBody),
        (status = 502, description = "The PBX refused", body = crate::http::openapi::ErrorBody),
        (status = 504, description = "The PBX did not answer", body = crate::http::openapi::ErrorBody),
    ))]
pub async fn start(
    State(state): State<AppState>,
    _: Admin,
    Json(request): Json<StartCall>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let extension = request.extension.trim();
    if extension.is_empty() || !extension.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(ApiError::Invalid(format!("extension: «{extension}» is not an extension (its digits)")));
    }
    let phone = Phone::parse(&request.phone, state.phone_region)
        .map_err(|error| ApiError::Invalid(format!("phone: {error}")))?;
    let source = source_of_extension(&state.source_keys.0, extension, request.source.as_deref())?;
    let pbx = state.pbx.get(&source.id).ok_or_else(|| ApiError::PbxApiMissing(source.id.0.clone()))?;
    let started = pbx.call_back(extension, &phone).await?;
    tracing::info!(source = %source.id, extension, "the PBX took a call-back request");
    let body = json!({
        "source": source.id,
        "extension": extension,
        "phone": phone.e164(),
        "pbx_request_id": started.pbx_id,
    });
    Ok((StatusCode::ACCEPTED, Json(body)))
}

/// The telephony source a call from `extension` goes through: the one named, else the only
/// one whose `users` has the extension.
fn source_of_extension<'a>(
    sources: &'a [SourceConfig],
    extension: &str,
    named: Option<&str>,
) -> Result<&'a SourceConfig, ApiError> {
    let telephony = sources.iter().filter(|source| matches!(source.kind, SourceKind::Telephony(_)));
    let candidates: Vec<&SourceConfig> = match named {
        Some(name) => {
            let source =
                telephony.clone().find(|source| source.id.0 == name).ok_or(ApiError::TelephonySourceNotFound)?;
            vec![source]
        }
        None => telephony.collect(),
    };
    let mut having: Vec<&SourceConfig> = candidates
        .iter()
        .copied()
        .filter(|source| matches!(&source.kind, SourceKind::Telephony(pbx) if pbx.users.contains_key(extension)))
        .collect();
    match (having.len(), candidates.as_slice()) {
        (1, _) => Ok(having.remove(0)),
        (0, []) => Err(ApiError::TelephonySourceNotFound),
        (0, [only]) => Err(ApiError::Invalid(format!(
            "extension: {extension} is not in sources.{}.users, so its calls would not reach the CRM",
            only.id
        ))),
        (0, _) => Err(ApiError::Invalid(format!("extension: no telephony source has {extension} in its users"))),
        _ => Err(ApiError::Invalid(format!(
            "source: several telephony sources have extension {extension}; name one ({})",
            having.iter().map(|source| source.id.0.as_str()).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// A lead's report with its call's record beside it.
fn call_report(lead: &Lead, mut body: Value) -> Value {
    body["call"] = json!(lead.fields.call);
    if body["history"].as_array().is_some_and(Vec::is_empty) {
        body.as_object_mut().map(|object| object.remove("history"));
    }
    body
}
