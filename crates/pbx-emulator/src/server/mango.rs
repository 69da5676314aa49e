//! Mango's VPBX API, signed like its events: call-back and recording download. Both paths and bodies are UNCONFIRMED.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde_json::{Value, json};

use super::{ApiError, base_url, follow_link, mp3};
use crate::Shared;
use crate::account::{MangoAccount, Provider, ProviderKind};
use crate::render::random_hex;
use crate::sign;
use crate::state::CallbackRequest;

/// Result codes from Mango's table (facts §3.4 source): success, wrong sign, missing
/// parameter, badly formatted parameter, wrong key, recording not found.
const SUCCESS: u32 = 1000;
const WRONG_SIGN: u32 = 3102;
const MISSING_PARAMETER: u32 = 3103;
const BAD_PARAMETER: u32 = 3104;
const WRONG_KEY: u32 = 3105;
const RECORDING_NOT_FOUND: u32 = 3320;

pub(super) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/vpbx/commands/callback", post(callback))
        .route("/vpbx/queries/recording/post", post(recording))
        .route("/mango/records/{token}", get(record_file))
}

fn account(shared: &Shared) -> Result<&MangoAccount, ApiError> {
    match &shared.config.provider {
        Provider::Mango(account) => Ok(account),
        _ => Err(ApiError::NotFound("route")),
    }
}

/// Checks `vpbx_api_key` and `sign = sha256(key + json + salt)`, then parses `json`.
fn authorize(shared: &Shared, form: &HashMap<String, String>) -> Result<Value, ApiError> {
    let account = account(shared)?;
    let (Some(key), Some(signature), Some(json)) = (form.get("vpbx_api_key"), form.get("sign"), form.get("json"))
    else {
        return Err(ApiError::Mango(StatusCode::BAD_REQUEST, MISSING_PARAMETER));
    };
    if *key != account.api_key {
        return Err(ApiError::Mango(StatusCode::UNAUTHORIZED, WRONG_KEY));
    }
    if *signature != sign::mango(&account.api_key, json, &account.api_salt) {
        return Err(ApiError::Mango(StatusCode::UNAUTHORIZED, WRONG_SIGN));
    }
    serde_json::from_str(json).map_err(|_| ApiError::Mango(StatusCode::BAD_REQUEST, BAD_PARAMETER))
}

/// `{command_id, from: {extension, number?}, to_number, line_number?}`: ring the employee, then the number.
async fn callback(
    State(shared): State<Arc<Shared>>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let request = authorize(&shared, &form)?;
    let extension = request["from"]["extension"].as_str().unwrap_or_default().to_owned();
    let destination = request["to_number"].as_str().unwrap_or_default().to_owned();
    if extension.is_empty() || destination.is_empty() {
        return Err(ApiError::Mango(StatusCode::BAD_REQUEST, MISSING_PARAMETER));
    }
    let command_id = request["command_id"].as_str().map(str::to_owned).unwrap_or_else(|| random_hex(16, false));
    shared.lock().callbacks.push(CallbackRequest {
        provider: ProviderKind::Mango,
        extension: extension.clone(),
        sources: vec![extension],
        destination,
        request,
        call_id: command_id,
    });
    Ok(Json(json!({"result": SUCCESS})))
}

/// `{recording_id, action: "download" | "play"}`: the mp3 itself, or a redirect to a link to it.
async fn recording(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let request = authorize(&shared, &form)?;
    let id = request["recording_id"].as_str().ok_or(ApiError::Mango(StatusCode::BAD_REQUEST, MISSING_PARAMETER))?;
    let base = base_url(&shared, &headers);
    let mut state = shared.lock();
    let recording = state.recording(id).cloned().ok_or(ApiError::Mango(StatusCode::NOT_FOUND, RECORDING_NOT_FOUND))?;
    if request["action"].as_str() == Some("play") {
        let token = state.link(&recording.id, None);
        state.note_served(&recording.id, "play");
        let mut response = StatusCode::FOUND.into_response();
        if let Ok(location) = HeaderValue::from_str(&format!("{base}/mango/records/{token}")) {
            response.headers_mut().insert(header::LOCATION, location);
        }
        return Ok(response);
    }
    state.note_served(&recording.id, "file");
    Ok(mp3(&recording))
}

async fn record_file(State(shared): State<Arc<Shared>>, Path(token): Path<String>) -> Result<Response, ApiError> {
    follow_link(&shared, &token)
}
