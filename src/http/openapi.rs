//! `GET /api/openapi.json`: the OpenAPI 3.1 description of every machine endpoint, built from the handlers' own annotations.
//!
//! Each route is registered through `utoipa_axum::routes!`, which takes its path and method from
//! the handler's `#[utoipa::path]`: a route cannot exist without its description, nor the other
//! way round. The console (`/admin/…`) is HTML for people and is left out.
//!
//! The request bodies of the intake channels are parsed by hand, field by field, so each refusal
//! can name its field in the sender's contract; the schemas below describe those contracts.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use bytes::Bytes;
use serde::Serialize;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, PathItem};
use utoipa::{Modify, OpenApi, ToSchema};

/// The document's frame: title, version, tags and how callers authenticate. Paths are added by
/// the router as it registers them.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "leadgate",
        description = "A self-hosted lead gateway: channel endpoints that accept leads, the operators' API, \
                       and the endpoints of monitoring. The guides are in docs/ of the repository."
    ),
    modifiers(&Credentials),
    tags(
        (name = "partner", description = "The partner contract (TrendAgent)"),
        (name = "portal", description = "The Grupo ZAP lead contract"),
        (name = "proxy", description = "Roistat's proxy-lead API"),
        (name = "forms", description = "Website forms"),
        (name = "telephony", description = "A cloud PBX's call events (Telphin, Zadarma, Mango Office)"),
        (name = "operators", description = "Reading leads and calls, re-sending, starting calls"),
        (name = "monitoring", description = "Health, readiness and metrics"),
    )
)]
pub struct Frame;

/// The ways of proving who calls.
struct Credentials;

impl Modify for Credentials {
    fn modify(&self, document: &mut Document) {
        let components = document.components.get_or_insert_with(Default::default);
        let bearer = || SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build());
        components.add_security_scheme("source_key", bearer());
        components.add_security_scheme(
            "source_key_header",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Api-Key"))),
        );
        components
            .add_security_scheme("source_key_query", SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::new("key"))));
        components.add_security_scheme("admin_token", bearer());
        components.add_security_scheme("metrics_token", bearer());
        components.add_security_scheme(
            "portal_basic",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Basic).build()),
        );
    }
}

/// Finishes what the router collected: axum's catch-all `{*kind}` is written `{kind}` in
/// OpenAPI, whose parameters are described as free text.
pub fn finish(mut document: Document) -> Document {
    let catch_all: Vec<(String, PathItem)> = document
        .paths
        .paths
        .iter()
        .filter(|(path, _)| path.contains("{*"))
        .map(|(path, item)| (path.replace("{*", "{"), item.clone()))
        .collect();
    document.paths.paths.retain(|path, _| !path.contains("{*"));
    document.paths.paths.extend(catch_all);
    document
}

/// The document, rendered once at start; each answer shares its bytes.
#[derive(Clone)]
pub struct Rendered(Bytes);

impl Rendered {
    pub fn of(document: &Document) -> Self {
        Self(Bytes::from(document.to_pretty_json().expect("an OpenAPI document always serializes")))
    }
}

/// `GET /api/openapi.json`.
#[utoipa::path(get, path = "/api/openapi.json", tag = "monitoring",
    responses((status = 200, description = "This document", content_type = "application/json")))]
pub async fn document(State(rendered): State<Rendered>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], rendered.0)
}

/// Every error answer of the JSON endpoints.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// What was wrong, naming the field or the header.
    pub error: String,
}

/// A partner lead (`POST /api/v1/leads`). Fields beyond these are kept in the lead's payload.
#[derive(Serialize, ToSchema)]
#[allow(dead_code, non_snake_case)]
pub struct PartnerLead {
    name: String,
    /// In any usual spelling; normalized to E.164.
    phone: String,
    email: Option<String>,
    comment: Option<String>,
    /// Where the outcome is posted; checked against private networks.
    callbackUrl: Option<String>,
}

/// A lead the gateway has stored.
#[derive(Serialize, ToSchema)]
pub struct Accepted {
    pub id: i64,
}

/// A Grupo ZAP lead: the fields the gateway reads; the rest is kept in the payload.
#[derive(Serialize, ToSchema)]
#[allow(dead_code, non_snake_case)]
pub struct PortalLead {
    /// The portal's id of the lead; a repeat of it stores nothing new.
    originLeadId: Option<String>,
    /// The advertiser's own listing code; finds the advertiser on `POST /grupozap/lead`.
    clientListingId: Option<String>,
    name: Option<String>,
    email: Option<String>,
    /// The area code, with `phone`; or the whole number in `phoneNumber`.
    ddd: Option<String>,
    phone: Option<String>,
    phoneNumber: Option<String>,
    message: Option<String>,
    /// When the visitor sent it, in the source's time zone.
    timestamp: Option<String>,
}
