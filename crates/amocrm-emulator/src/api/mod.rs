//! The `/api/v4` routes and what their handlers share: links, paging, HAL answers.

mod account;
mod complex;
pub mod contacts;
pub mod hal;
pub mod leads;
mod notes;
mod users;

use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Shared;
use crate::catalog::SUBDOMAIN;
use crate::problem::{Problem, with_content_type};

const HAL_JSON: &str = "application/hal+json";
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 250;

pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/api/v4/account", get(account::show))
        .route("/api/v4/users", get(users::list))
        .route("/api/v4/leads/pipelines", get(account::pipelines))
        .route("/api/v4/leads/custom_fields", get(account::lead_fields))
        .route("/api/v4/contacts/custom_fields", get(account::contact_fields))
        .route("/api/v4/leads/pipelines/{id}", get(account::pipeline))
        .route("/api/v4/leads/pipelines/{id}/statuses", get(account::statuses))
        .route("/api/v4/contacts", get(contacts::list).post(contacts::create).patch(contacts::update_many))
        .route("/api/v4/contacts/{id}", get(contacts::show).patch(contacts::update_one))
        .route("/api/v4/leads", get(leads::list).post(leads::create).patch(leads::update_many))
        .route("/api/v4/leads/{id}", get(leads::show).patch(leads::update_one))
        .route("/api/v4/leads/complex", post(complex::create))
        .route("/api/v4/leads/notes", get(notes::list_for_leads).post(notes::add_to_leads))
        .route("/api/v4/contacts/notes", get(notes::list_for_contacts).post(notes::add_to_contacts))
        .route("/api/v4/leads/{id}/notes", get(notes::list_of_lead).post(notes::add_to_lead))
        .route("/api/v4/contacts/{id}/notes", get(notes::list_of_contact).post(notes::add_to_contact))
        .method_not_allowed_fallback(method_not_allowed)
}

pub async fn unknown_route() -> Problem {
    Problem::NotFound
}

async fn method_not_allowed() -> Problem {
    Problem::MethodNotAllowed
}

/// The scheme and host links point at: the host the client called, so `next` links work
/// against the emulator; the real account domain when there is no `Host` header.
pub struct Base(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Base {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let host = parts.headers.get(header::HOST).and_then(|value| value.to_str().ok());
        Ok(Base(match host {
            Some(host) => format!("http://{host}"),
            None => format!("https://{SUBDOMAIN}.amocrm.ru"),
        }))
    }
}

/// A path id; anything that is not a number names no entity.
pub fn entity_id(raw: &str) -> Result<u64, Problem> {
    raw.parse().map_err(|_| Problem::NotFound)
}

pub fn hal(body: Value) -> Response {
    with_content_type(StatusCode::OK, HAL_JSON, body.to_string())
}

/// amoCRM answers an empty search, an empty page and a missing entity with 204 and no body.
pub fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// The list parameters amoCRM's GET endpoints share; `filter[…]` and `order[…]` are ignored.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    query: Option<String>,
    with: Option<String>,
    limit: Option<String>,
    page: Option<String>,
}

impl ListQuery {
    pub fn with(&self, relation: &str) -> bool {
        self.with.as_deref().is_some_and(|list| list.split(',').any(|item| item.trim() == relation))
    }

    /// The search text, lower-cased for the case-insensitive match; empty means no search.
    pub fn folded_query(&self) -> Option<String> {
        self.query.as_deref().filter(|query| !query.is_empty()).map(str::to_lowercase)
    }

    /// Limits above 250 are cut to 250 rather than rejected.
    fn paging(&self) -> Result<(usize, usize), Problem> {
        let number = |raw: &Option<String>, name: &str, default: usize| match raw {
            None => Ok(default),
            Some(text) => text
                .parse::<usize>()
                .ok()
                .filter(|value| *value > 0)
                .ok_or_else(|| Problem::BadRequest(format!("Invalid {name} parameter"))),
        };
        let page = number(&self.page, "page", 1)?;
        let limit = number(&self.limit, "limit", DEFAULT_LIMIT)?.min(MAX_LIMIT);
        Ok((page, limit))
    }

    fn link(&self, base: &str, path: &str, page: usize, limit: usize) -> Value {
        let mut pairs = vec![("page", page.to_string()), ("limit", limit.to_string())];
        if let Some(with) = &self.with {
            pairs.push(("with", with.clone()));
        }
        if let Some(query) = &self.query {
            pairs.push(("query", query.clone()));
        }
        let query_string: Vec<String> =
            pairs.into_iter().map(|(key, value)| format!("{key}={}", percent_encode(&value))).collect();
        json!({"href": format!("{base}{path}?{}", query_string.join("&"))})
    }
}

fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~,".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// One page of a list answer: `{"_page", "_links", "_embedded": {key: [...]}}`, or 204
/// when the page is empty.
pub fn page_of(query: &ListQuery, base: &str, path: &str, key: &str, items: Vec<Value>) -> Result<Response, Problem> {
    let (page, limit) = query.paging()?;
    let skip = (page - 1).saturating_mul(limit);
    let has_next = items.len() > skip.saturating_add(limit);
    let items: Vec<Value> = items.into_iter().skip(skip).take(limit).collect();
    if items.is_empty() {
        return Ok(no_content());
    }
    let mut links = json!({"self": query.link(base, path, page, limit)});
    if has_next {
        links["next"] = query.link(base, path, page + 1, limit);
    }
    if page > 1 {
        links["prev"] = query.link(base, path, page - 1, limit);
    }
    Ok(hal(json!({
        "_page": page,
        "_links": links,
        "_embedded": {key: items},
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plus_sign_and_cyrillic_are_encoded_in_links() {
        assert_eq!(percent_encode("+7 99"), "%2B7%2099");
        assert_eq!(percent_encode("я"), "%D1%8F");
    }

    #[test]
    fn with_accepts_a_comma_separated_list() {
        let query = ListQuery { with: Some("contacts,leads".to_owned()), ..ListQuery::default() };
        assert!(query.with("leads"));
        assert!(!query.with("companies"));
    }
}
