//! The HTTP surface: routes, shared state, and the request limits every endpoint shares.

mod admin;
pub mod error;
pub mod lead_status;
pub mod source_auth;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef};
use axum::routing::{get, post};

use secrecy::SecretString;

use crate::config::SourceConfig;
use crate::domain::PhoneRegion;
use crate::intake;
use crate::notify::address_guard::AddressGuard;
use crate::store::{LeadWriter, Store};
use source_auth::SourceKeys;

/// Larger bodies are refused with 413 before they are read.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub writer: LeadWriter,
    pub phone_region: PhoneRegion,
    pub source_keys: SourceKeys,
    pub callback_guard: AddressGuard,
    pub admin_token: Option<SecretString>,
}

impl FromRef<AppState> for SourceKeys {
    fn from_ref(state: &AppState) -> Self {
        state.source_keys.clone()
    }
}

impl AppState {
    pub fn new(
        store: Store,
        writer: LeadWriter,
        phone_region: PhoneRegion,
        sources: Vec<SourceConfig>,
        callback_guard: AddressGuard,
        admin_token: Option<SecretString>,
    ) -> Self {
        Self { store, writer, phone_region, source_keys: SourceKeys(Arc::new(sources)), callback_guard, admin_token }
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/leads", post(intake::partner::accept))
        .route("/api/v1/leads/{id}", get(lead_status::show))
        .route("/api/v1/leads/{id}/retry", post(admin::retry))
        .route("/grupozap/lead", post(intake::zap::accept_by_listing))
        .route("/grupozap/lead/{advertiser}", post(intake::zap::accept_for_advertiser))
        .route("/healthz", get(|| async { "ok" }))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}
