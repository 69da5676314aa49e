//! The provider API leadgate calls (token, call-back, recordings), mounted for the configured provider only, and its request log.

mod error;
mod mango;
mod telphin;
mod zadarma;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::Shared;
use crate::account::ProviderKind;
use crate::audio::silent_mp3;
use crate::state::{Recording, RequestRecord};

pub(crate) use error::ApiError;

pub(crate) fn routes(provider: ProviderKind) -> Router<Arc<Shared>> {
    match provider {
        ProviderKind::Telphin => telphin::routes(),
        ProviderKind::Zadarma => zadarma::routes(),
        ProviderKind::Mango => mango::routes(),
    }
}

/// Logs method, path and status of every API request (never the query, which may carry keys).
pub(crate) async fn log_request(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    shared.lock().requests.push(RequestRecord { method, path, status });
    response
}

/// `http://host:port` of this PBX, for links to itself.
fn base_url(shared: &Shared, headers: &HeaderMap) -> String {
    if let Some(base) = shared.base_url.get() {
        return base.clone();
    }
    let host = headers.get(header::HOST).and_then(|host| host.to_str().ok()).unwrap_or("localhost");
    format!("http://{host}")
}

/// A recording as a downloadable mp3.
fn mp3(recording: &Recording) -> Response {
    let mut response = silent_mp3(recording.seconds).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("audio/mpeg"));
    let disposition = format!("attachment; filename=\"{}.mp3\"", recording.id);
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

/// Serves the recording behind a temporary link, or 404 for an unknown or expired one.
fn follow_link(shared: &Shared, token: &str) -> Result<Response, ApiError> {
    let mut state = shared.lock();
    let recording = state.follow(token, std::time::Instant::now()).cloned().ok_or(ApiError::NotFound("record"))?;
    state.note_served(&recording.id, "link");
    Ok(mp3(&recording))
}
