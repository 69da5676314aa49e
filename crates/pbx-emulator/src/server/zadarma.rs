//! Zadarma's API with its signed `Authorization` header: the expiring recording link and (UNCONFIRMED) the call-back.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use super::{ApiError, base_url, follow_link};
use crate::Shared;
use crate::account::{Provider, ProviderKind, ZadarmaAccount};
use crate::render::random_hex;
use crate::sign;
use crate::state::CallbackRequest;

const RECORD_PATH: &str = "/v1/pbx/record/request/";
/// Not in the facts: the path of Zadarma's public API documentation for call-backs.
const CALLBACK_PATH: &str = "/v1/request/callback/";
/// `lifetime` bounds and default (facts §2.4).
const LIFETIME_SECONDS: std::ops::RangeInclusive<u64> = 180..=5_184_000;
const DEFAULT_LIFETIME_SECONDS: u64 = 1_800;

pub(super) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(RECORD_PATH, get(record_request))
        .route(CALLBACK_PATH, get(callback))
        .route("/zadarma/records/{token}", get(record_file))
}

fn account(shared: &Shared) -> Result<&ZadarmaAccount, ApiError> {
    match &shared.config.provider {
        Provider::Zadarma(account) => Ok(account),
        _ => Err(ApiError::NotFound("route")),
    }
}

fn refuse(status: StatusCode, message: &str) -> ApiError {
    ApiError::Zadarma(status, message.to_owned())
}

/// Checks `Authorization: key:base64(hex(HMAC-SHA1(secret, path + params + md5(params))))`
/// and returns the decoded query parameters.
fn authorize(
    shared: &Shared,
    headers: &HeaderMap,
    path: &str,
    query: Option<&str>,
) -> Result<Vec<(String, String)>, ApiError> {
    let api = account(shared)?.api.as_ref().ok_or_else(|| refuse(StatusCode::UNAUTHORIZED, "API key is not set"))?;
    let params: Vec<(String, String)> = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect();
    let value = headers.get(header::AUTHORIZATION).and_then(|value| value.to_str().ok()).unwrap_or_default();
    let (key, signature) = value.split_once(':').unwrap_or_default();
    if key != api.key || signature != sign::zadarma_api(&api.secret, path, &params) {
        return Err(refuse(StatusCode::UNAUTHORIZED, "Not authorized"));
    }
    Ok(params)
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str()).filter(|value| !value.is_empty())
}

/// `call_id` (a `call_id_with_rec`) or `pbx_call_id`, optional `lifetime` → an expiring link.
async fn record_request(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let params = authorize(&shared, &headers, RECORD_PATH, query.as_deref())?;
    let lifetime = match param(&params, "lifetime") {
        None => DEFAULT_LIFETIME_SECONDS,
        Some(text) => text
            .parse()
            .ok()
            .filter(|seconds| LIFETIME_SECONDS.contains(seconds))
            .ok_or_else(|| refuse(StatusCode::BAD_REQUEST, "lifetime must be 180 to 5184000 seconds"))?,
    };
    let base = base_url(&shared, &headers);
    let offset = account(&shared)?.clone();
    let mut state = shared.lock();
    let recording = match (param(&params, "call_id"), param(&params, "pbx_call_id")) {
        (Some(call_id), _) => state.recording(call_id).cloned(),
        (None, Some(pbx_call_id)) => {
            state.recordings.values().find(|recording| recording.call_id == pbx_call_id).cloned()
        }
        (None, None) => return Err(refuse(StatusCode::BAD_REQUEST, "call_id or pbx_call_id is required")),
    }
    .ok_or_else(|| refuse(StatusCode::NOT_FOUND, "Record not found"))?;
    let token = state.link(&recording.id, Some(Instant::now() + Duration::from_secs(lifetime)));
    state.note_served(&recording.id, "record_request");
    Ok(Json(json!({
        "status": "success",
        "link": format!("{base}/zadarma/records/{token}"),
        "lifetime_till": offset.local_time(SystemTime::now() + Duration::from_secs(lifetime)),
    })))
}

/// UNCONFIRMED (not in the facts): `from` (an extension or number) is rung first, then `to`.
async fn callback(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let params = authorize(&shared, &headers, CALLBACK_PATH, query.as_deref())?;
    let (Some(from), Some(to)) = (param(&params, "from"), param(&params, "to")) else {
        return Err(refuse(StatusCode::BAD_REQUEST, "from and to are required"));
    };
    let (from, to) = (from.to_owned(), to.to_owned());
    let request: Map<String, Value> = params.iter().map(|(key, value)| (key.clone(), json!(value))).collect();
    let time =
        SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|elapsed| elapsed.as_secs()).unwrap_or_default();
    shared.lock().callbacks.push(CallbackRequest {
        provider: ProviderKind::Zadarma,
        extension: from.clone(),
        sources: vec![from.clone()],
        destination: to.clone(),
        request: Value::Object(request),
        call_id: random_hex(32, false),
    });
    Ok(Json(json!({"status": "success", "from": from, "to": to, "time": time})))
}

async fn record_file(State(shared): State<Arc<Shared>>, Path(token): Path<String>) -> Result<Response, ApiError> {
    follow_link(&shared, &token)
}
