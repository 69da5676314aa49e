//! Telphin's API: the client-credentials token, the call-back command and recordings (storage URL or the mp3 itself).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde_json::{Value, json};

use super::{ApiError, base_url, follow_link, mp3};
use crate::Shared;
use crate::account::{Provider, ProviderKind, TelphinAccount};
use crate::render::random_hex;
use crate::state::{CallbackRequest, Recording};

pub(super) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/oauth/token", post(token))
        .route("/api/ver1.0/client/{client_id}/extension/", get(extensions))
        .route("/api/ver1.0/extension/{extension_id}/callback/", post(callback))
        .route("/api/ver1.0/client/{client_id}/record/{record_uuid}/storage_url/", get(storage_url))
        .route("/api/ver1.0/client/{client_id}/record/{record_uuid}", get(record))
        .route("/storage/{token}", get(storage))
}

fn account(shared: &Shared) -> Result<&TelphinAccount, ApiError> {
    match &shared.config.provider {
        Provider::Telphin(account) => Ok(account),
        _ => Err(ApiError::NotFound("route")),
    }
}

/// `grant_type=client_credentials` with the application's id and secret; no refresh token.
async fn token(
    State(shared): State<Arc<Shared>>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let account = account(&shared)?;
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return Err(ApiError::UnsupportedGrant);
    }
    let id_matches = form.get("client_id") == Some(&account.client_id);
    let secret_matches = form.get("client_secret") == Some(&account.client_secret);
    if !(id_matches && secret_matches) {
        return Err(ApiError::InvalidClient);
    }
    let access_token = random_hex(40, false);
    let mut state = shared.lock();
    state.tokens.insert(access_token.clone(), Instant::now() + account.token_lifetime);
    state.tokens_issued += 1;
    Ok(Json(json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": account.token_lifetime.as_secs(),
    })))
}

fn authorize(shared: &Shared, headers: &HeaderMap) -> Result<(), ApiError> {
    let value = headers.get(header::AUTHORIZATION).and_then(|value| value.to_str().ok()).unwrap_or_default();
    let token = match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => return Err(ApiError::Unauthorized),
    };
    if shared.lock().token_valid(token, Instant::now()) { Ok(()) } else { Err(ApiError::Unauthorized) }
}

/// The account's extensions: `[{id, name: "prefix*number", type}]`, as the Go SDK reads them.
async fn extensions(
    State(shared): State<Arc<Shared>>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authorize(&shared, &headers)?;
    let account = account(&shared)?;
    if client_id != "@me" && client_id != account.customer_id.to_string() {
        return Err(ApiError::NotFound("client"));
    }
    let listed: Vec<Value> = account
        .extensions
        .iter()
        .map(|number| {
            let kind = match number.as_str() {
                crate::IVR => "ivr",
                crate::QUEUE => "queue",
                _ => "phone",
            };
            let name = format!("{}*{number}", account.extension_prefix);
            json!({ "id": account.extension_id(number), "name": name, "type": kind })
        })
        .collect();
    Ok(Json(Value::Array(listed)))
}

/// `{src_num: […], dst_num, …}`: ring the sources, then connect the destination.
async fn callback(
    State(shared): State<Arc<Shared>>,
    Path(extension_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    authorize(&shared, &headers)?;
    let account = account(&shared)?;
    let known = account.extensions.iter().any(|number| account.extension_id(number).to_string() == extension_id);
    if !known {
        return Err(ApiError::NotFound("extension"));
    }
    let request: Value =
        serde_json::from_slice(&body).map_err(|error| ApiError::Invalid(format!("malformed JSON: {error}")))?;
    let sources: Vec<String> = request["src_num"]
        .as_array()
        .map(|numbers| numbers.iter().filter_map(|number| number.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    if sources.is_empty() || request["src_num"].as_array().is_some_and(|numbers| numbers.len() != sources.len()) {
        return Err(ApiError::Invalid("src_num must be a non-empty list of numbers".to_owned()));
    }
    let destination = request["dst_num"].as_str().unwrap_or_default().to_owned();
    if destination.is_empty() {
        return Err(ApiError::Invalid("dst_num is required".to_owned()));
    }
    // Telphin's own example answers the same id twice.
    let call_api_id = random_hex(32, false);
    shared.lock().callbacks.push(CallbackRequest {
        provider: ProviderKind::Telphin,
        extension: extension_id,
        sources,
        destination,
        request,
        call_id: call_api_id.clone(),
    });
    Ok(Json(json!({"call_api_id": call_api_id, "call_id": call_api_id})))
}

/// The recording `record_uuid` of customer `client_id` (or `@me`), after the token check.
fn find_recording(
    shared: &Shared,
    headers: &HeaderMap,
    client_id: &str,
    record_uuid: &str,
) -> Result<Recording, ApiError> {
    authorize(shared, headers)?;
    let account = account(shared)?;
    if client_id != "@me" && client_id != account.customer_id.to_string() {
        return Err(ApiError::NotFound("client"));
    }
    shared.lock().recording(record_uuid).cloned().ok_or(ApiError::NotFound("record"))
}

async fn storage_url(
    State(shared): State<Arc<Shared>>,
    Path((client_id, record_uuid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let recording = find_recording(&shared, &headers, &client_id, &record_uuid)?;
    let base = base_url(&shared, &headers);
    let mut state = shared.lock();
    // The real link's lifetime is not documented; the emulator's lasts until a reset.
    let token = state.link(&recording.id, None);
    state.note_served(&recording.id, "storage_url");
    Ok(Json(json!({"record_url": format!("{base}/storage/{token}")})))
}

async fn record(
    State(shared): State<Arc<Shared>>,
    Path((client_id, record_uuid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let recording = find_recording(&shared, &headers, &client_id, &record_uuid)?;
    shared.lock().note_served(&recording.id, "file");
    Ok(mp3(&recording))
}

async fn storage(State(shared): State<Arc<Shared>>, Path(token): Path<String>) -> Result<Response, ApiError> {
    follow_link(&shared, &token)
}
