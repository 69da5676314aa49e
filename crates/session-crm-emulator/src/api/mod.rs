//! The CRM's REST routes under `/api/`, and what their handlers share.

mod auth;
mod body;
mod contacts;
mod files;
mod tickets;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use crate::error::ApiError;
use crate::{LOGIN_PATH, SessionCrmConfig, Shared};

/// Room above the upload limit for the multipart framing and for reading out an oversized
/// upload, so the 413 reaches the client instead of a reset connection.
const UPLOAD_BODY_ALLOWANCE: usize = 16 * 1024 * 1024;

pub fn routes(config: &SessionCrmConfig) -> Router<Arc<Shared>> {
    let upload_body_limit = DefaultBodyLimit::max(config.max_upload_bytes.saturating_add(UPLOAD_BODY_ALLOWANCE));
    Router::new()
        .route(LOGIN_PATH, get(auth::login_page).post(auth::login))
        .route("/api/organizations", post(contacts::create_organization))
        .route("/api/contacts", get(contacts::search).post(contacts::create))
        .route("/api/tickets", post(tickets::create))
        .route("/api/tickets/{id}", get(tickets::show))
        .route("/api/tickets/{id}/messages", post(tickets::add_message))
        .route("/api/tickets/{id}/files", post(files::upload).layer(upload_body_limit))
}

pub async fn unknown_route() -> ApiError {
    ApiError::NotFound("route")
}

/// A path id; anything that is not one names no record, so it is a 404 like an unknown id.
fn parse_id(text: &str, what: &'static str) -> Result<u64, ApiError> {
    text.parse().map_err(|_| ApiError::NotFound(what))
}
