//! The operator console at `/admin`: server-rendered pages over the store, for people.
//!
//! Every page needs a session (`http::admin::Operator`); every form carries the session's CSRF
//! token; every answer carries the security headers below. Nothing here needs JavaScript.

mod advertisers;
mod calls;
mod chart;
mod dashboard;
mod dead;
mod leads;
mod login;
mod page;
mod range;
mod sources;
mod texts;
mod timeline;

use axum::Router;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::http::state::AppState;

pub fn router() -> Router<AppState> {
    let pages = Router::new()
        .route("/admin", get(|| async { axum::response::Redirect::to("/admin/leads") }))
        .route("/admin/login", get(login::page).post(login::submit))
        .route("/admin/logout", axum::routing::post(login::logout))
        .route("/admin/leads", get(leads::list))
        .route("/admin/leads/search", axum::routing::post(leads::search))
        .route("/admin/leads.csv", get(leads::export))
        .route("/admin/leads/{id}", get(timeline::show))
        .route("/admin/leads/{id}/resend", get(timeline::confirm_resend).post(timeline::resend))
        .route("/admin/leads/{id}/route", axum::routing::post(timeline::route))
        .route("/admin/dead", get(dead::page))
        .route("/admin/dead/preview", axum::routing::post(dead::preview))
        .route("/admin/dead/resend", axum::routing::post(dead::resend))
        .route("/admin/audit", get(dead::audit))
        .route("/admin/dashboard", get(dashboard::page))
        .route("/admin/sources", get(sources::page))
        .route("/admin/calls", get(calls::page))
        .route("/admin/advertisers", get(advertisers::page))
        .route("/admin/advertisers/add", axum::routing::post(advertisers::add))
        .route("/admin/advertisers/enabled", axum::routing::post(advertisers::set_enabled))
        .route("/admin/advertisers/export.csv", get(advertisers::export))
        .route("/admin/advertisers/import", axum::routing::post(advertisers::import))
        .route("/admin/static/console.css", get(stylesheet))
        .route("/admin/static/console.js", get(script));
    pages.layer(axum::middleware::map_response(security_headers))
}

/// The CSS is part of the binary: the console works without internet, and the CSP allows no
/// inline style.
async fn stylesheet() -> Response {
    let headers = [(CONTENT_TYPE, "text/css; charset=utf-8"), (CACHE_CONTROL, "max-age=3600")];
    (headers, include_str!("../../assets/console/console.css")).into_response()
}

/// The console's one script: the live call card and the call buttons; pages work without it.
async fn script() -> Response {
    let headers = [(CONTENT_TYPE, "text/javascript; charset=utf-8"), (CACHE_CONTROL, "max-age=3600")];
    (headers, include_str!("../../assets/console/console.js")).into_response()
}

/// No inline script or style may run, no other site may frame a page, no address leaves with a
/// click, and pages with personal data are not cached.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let set = [
        (
            "content-security-policy",
            "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        ("referrer-policy", "no-referrer"),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
    ];
    for (name, value) in set {
        headers.insert(HeaderName::from_static(name), HeaderValue::from_static(value));
    }
    if !headers.contains_key(CACHE_CONTROL) {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
