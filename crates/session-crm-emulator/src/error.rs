//! Every refusal the emulated CRM answers with, and the one place each becomes a response.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::LOGIN_PATH;

/// Bodies follow Laravel's JSON shapes (`message`, and `errors` by field for 422), since
/// 419 is Laravel's status; the facts say clients must rely on statuses, not on these texts.
#[derive(Debug)]
pub enum ApiError {
    /// No live session: never logged in, logged out, or expired.
    Unauthenticated,
    /// The same situation on a stack that sends browsers to its login page instead.
    RedirectToLogin {
        next: String,
    },
    BadCredentials,
    CsrfMismatch,
    NotFound(&'static str),
    Invalid {
        field: String,
        problem: &'static str,
    },
    MalformedBody(String),
    TooLarge {
        limit: usize,
    },
    /// A failure (5xx) or refusal (4xx) injected through the control API.
    Injected(StatusCode),
}

impl ApiError {
    pub fn invalid(field: impl Into<String>, problem: &'static str) -> Self {
        ApiError::Invalid { field: field.into(), problem }
    }
}

fn message(status: StatusCode, text: impl Into<String>) -> Response {
    (status, Json(json!({"message": text.into()}))).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Unauthenticated => message(StatusCode::UNAUTHORIZED, "Unauthenticated."),
            ApiError::RedirectToLogin { next } => redirect_to_login(&next),
            ApiError::BadCredentials => {
                message(StatusCode::UNAUTHORIZED, "These credentials do not match our records.")
            }
            ApiError::CsrfMismatch => message(csrf_mismatch_status(), "CSRF token mismatch."),
            ApiError::NotFound(what) => message(StatusCode::NOT_FOUND, format!("No such {what}.")),
            ApiError::Invalid { field, problem } => {
                let text = format!("The {field} field {problem}.");
                let body = json!({"message": text, "errors": {field: [text]}});
                (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response()
            }
            ApiError::MalformedBody(reason) => message(StatusCode::BAD_REQUEST, reason),
            ApiError::TooLarge { limit } => {
                message(StatusCode::PAYLOAD_TOO_LARGE, format!("The file may not be greater than {limit} bytes."))
            }
            ApiError::Injected(status) if status.is_client_error() => injected_refusal(status),
            ApiError::Injected(status) => injected_page(status),
        }
    }
}

/// Laravel's "Page Expired" status; `StatusCode` has no constant for it.
fn csrf_mismatch_status() -> StatusCode {
    StatusCode::from_u16(419).unwrap_or(StatusCode::FORBIDDEN)
}

/// `LOGIN_URL?next=…` as Django's `login_required` sends it: `/` stays readable, the rest
/// of anything that would end or split the query is percent-encoded.
fn redirect_to_login(next: &str) -> Response {
    let mut encoded = String::with_capacity(next.len());
    for byte in next.bytes() {
        if byte.is_ascii_alphanumeric() || b"/-._~".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    let location = format!("{LOGIN_PATH}?next={encoded}");
    let mut response = StatusCode::FOUND.into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// An injected refusal comes from the application, so it is JSON like its other refusals; a 429
/// says when to come back, as rate limiters do.
fn injected_refusal(status: StatusCode) -> Response {
    let reason = status.canonical_reason().unwrap_or("Refused");
    let mut response = message(status, format!("{reason} (injected)."));
    if status == StatusCode::TOO_MANY_REQUESTS {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

/// An injected failure looks like a front proxy's error page, not like the CRM's JSON,
/// because that is what a client meets when the application behind the proxy is down.
fn injected_page(status: StatusCode) -> Response {
    let title = format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or("Error"));
    let page = format!("<html><head><title>{title}</title></head><body><h1>{title}</h1></body></html>");
    (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_login_redirect_keeps_slashes_and_encodes_query_characters() {
        let response = redirect_to_login("/api/contacts?email=a@b&x=1");
        assert_eq!(response.status(), StatusCode::FOUND);
        assert_eq!(response.headers()[header::LOCATION], "/api/auth/login?next=/api/contacts%3Femail%3Da%40b%26x%3D1");
    }
}
