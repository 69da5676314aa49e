//! The HTTP surface: routes, shared state, and the request limits every endpoint shares.

pub mod admin;
mod calls;
mod drain;
mod erasures;
pub mod error;
mod files;
pub mod health;
pub mod lead_status;
pub mod observe;
pub mod source_auth;
pub mod state;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use crate::intake;
pub use state::{AppState, MAX_BODY_BYTES};

/// Every route of a node that accepts requests; `health` (`/healthz`, `/readyz`) comes with its
/// own state. Errors of the router itself (no such route, a wrong method) get the JSON shape.
pub fn router(state: AppState, health: Router) -> Router {
    let sources = Arc::clone(&state.source_keys.0);
    let forms = Router::new()
        .route("/forms/{form}", get(intake::form::page).post(intake::form::submit))
        .route("/forms/{form}/embed.js", get(intake::form::embed_script))
        .layer(DefaultBodyLimit::max(intake::form::body_limit(&sources)))
        .layer(intake::form::cors(sources));
    let proxy_lead = get(intake::proxy::add_lead).post(intake::proxy::add_lead);
    let proxy_message = get(intake::proxy::add_message).post(intake::proxy::add_message);
    Router::new()
        .route("/api/proxy/1.0/leads/add", proxy_lead)
        .route("/api/proxy/1.0/leads/messages/add", proxy_message)
        .route("/files/{sha256}/{token}/{name}", get(files::download))
        .route("/calls/{id}/recording", get(calls::recording))
        .route("/api/v1/leads", post(intake::partner::accept))
        .route("/api/v1/leads/{id}", get(lead_status::show))
        .route("/api/v1/leads/{id}/retry", post(admin::retry))
        .route("/api/v1/erasures", post(erasures::erase))
        .route("/api/v1/calls", get(calls::by_phone).post(calls::start))
        .route("/api/v1/calls/live", get(calls::live))
        .route("/api/v1/calls/{id}", get(calls::show))
        .route("/grupozap/lead", post(intake::zap::accept_by_listing))
        .route("/grupozap/lead/{advertiser}", post(intake::zap::accept_for_advertiser))
        .route("/metrics", get(observe::render))
        .route("/telephony/{source}", get(intake::telephony::zadarma_echo).post(intake::telephony::zadarma_or_check))
        .route("/telephony/{source}/{key}", get(intake::telephony::telphin).post(intake::telephony::telphin))
        .route("/telephony/{source}/events/{*kind}", post(intake::telephony::mango))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .merge(forms)
        .merge(crate::console::router())
        .route_layer(axum::middleware::from_fn(observe::count_and_log))
        .with_state(state)
        .merge(health)
        .layer(axum::middleware::map_response(error::json_errors))
        .layer(axum::middleware::from_fn(drain::drain_unread_body))
}
