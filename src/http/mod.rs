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
pub mod openapi;
pub mod source_auth;
pub mod state;
pub mod visitor;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::intake;
pub use state::{AppState, MAX_BODY_BYTES, StateParts};

/// Every route of a node that accepts requests; `health` (`/healthz`, `/readyz`) comes with its
/// own state. Errors of the router itself (no such route, a wrong method) get the JSON shape.
pub fn router(state: AppState, health: OpenApiRouter) -> Router {
    let sources = Arc::clone(&state.source_keys.0);
    let trusted_proxies = Arc::clone(&state.trusted_proxies);
    let forms = OpenApiRouter::new()
        .routes(routes!(intake::form::page, intake::form::submit))
        .routes(routes!(intake::form::embed_script))
        .layer(DefaultBodyLimit::max(intake::form::body_limit(&sources)))
        .layer(intake::form::cors(sources));
    let (api, document) = OpenApiRouter::with_openapi(openapi::Frame::openapi())
        .routes(routes!(intake::proxy::add_lead))
        .routes(routes!(intake::proxy::add_message))
        .routes(routes!(files::download))
        .routes(routes!(calls::recording))
        .routes(routes!(intake::partner::accept))
        .routes(routes!(lead_status::show))
        .routes(routes!(admin::retry))
        .routes(routes!(erasures::erase))
        .routes(routes!(calls::by_phone, calls::start))
        .routes(routes!(calls::search))
        .routes(routes!(calls::live))
        .routes(routes!(calls::show))
        .routes(routes!(intake::zap::accept_by_listing))
        .routes(routes!(intake::zap::accept_for_advertiser))
        .routes(routes!(observe::render))
        .routes(routes!(intake::telephony::zadarma_echo, intake::telephony::zadarma_or_check))
        .routes(routes!(intake::telephony::telphin))
        .routes(routes!(intake::telephony::mango))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .merge(forms)
        .split_for_parts();
    let (health, health_document) = health.split_for_parts();
    let (openapi_route, openapi_document) = OpenApiRouter::new().routes(routes!(openapi::document)).split_for_parts();
    let mut document = document;
    document.merge(health_document);
    document.merge(openapi_document);
    let rendered = openapi::Rendered::of(&openapi::finish(document));
    api.merge(crate::console::router())
        .route_layer(axum::middleware::from_fn(observe::count_and_log))
        .with_state(state)
        .merge(openapi_route.with_state(rendered))
        .merge(health)
        .layer(axum::middleware::map_response(error::json_errors))
        .layer(axum::middleware::from_fn_with_state(trusted_proxies, visitor::resolve))
        .layer(axum::middleware::from_fn(drain::drain_unread_body))
}
