//! Error answers: amoCRM's problem+json bodies and the HTML pages its front proxy sends.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// One entry of `errors` in a `validation-errors` item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub code: &'static str,
    pub path: String,
    pub detail: String,
}

impl FieldError {
    /// The only code the facts document quotes; used for every unknown reference.
    pub fn not_supported_choice(path: impl Into<String>) -> Self {
        FieldError {
            code: "NotSupportedChoice",
            path: path.into(),
            detail: "The value you selected is not a valid choice.".to_owned(),
        }
    }

    pub fn invalid_type(path: impl Into<String>, expected: &str) -> Self {
        FieldError {
            code: "InvalidType",
            path: path.into(),
            detail: format!("This value should be of type {expected}."),
        }
    }

    pub fn too_many(path: impl Into<String>, max: usize) -> Self {
        FieldError {
            code: "Count",
            path: path.into(),
            detail: format!("This collection should contain {max} element or less."),
        }
    }

    pub fn not_blank(path: impl Into<String>) -> Self {
        FieldError { code: "NotBlank", path: path.into(), detail: "This value should not be blank.".to_owned() }
    }
}

/// The errors of one batch item, keyed by its `request_id`.
#[derive(Clone, Debug)]
pub struct ItemErrors {
    pub request_id: String,
    pub errors: Vec<FieldError>,
}

pub const PROBLEM_JSON: &str = "application/problem+json";
const OAUTH_PROBLEM_TYPE: &str = "https://developers.amocrm.ru/v3/errors/OAuthProblemJson";
const OAUTH_TITLE: &str = "Некорректный запрос";
const OAUTH_DETAIL: &str = "В запросе отсутствует ряд параметров или параметры невалидны";

/// Every error the API and the token endpoint answer with.
#[derive(Debug)]
pub enum Problem {
    /// Missing, unknown, expired or revoked bearer token.
    Unauthorized,
    /// A 400 that is not about fields: malformed body, batch too large.
    BadRequest(String),
    Validation(Vec<ItemErrors>),
    NotFound,
    MethodNotAllowed,
    /// Token endpoint failure; `hint` is league/oauth2-server's wording, which amoCRM echoes.
    OAuth {
        status: StatusCode,
        hint: &'static str,
    },
}

impl Problem {
    /// A single-item validation failure, the common case for the one-entity endpoints.
    pub fn invalid(request_id: impl Into<String>, error: FieldError) -> Self {
        Problem::Validation(vec![ItemErrors { request_id: request_id.into(), errors: vec![error] }])
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Problem::Unauthorized => StatusCode::UNAUTHORIZED,
            Problem::BadRequest(_) | Problem::Validation(_) => StatusCode::BAD_REQUEST,
            Problem::NotFound => StatusCode::NOT_FOUND,
            Problem::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Problem::OAuth { status, .. } => *status,
        }
    }

    pub fn body(&self) -> Value {
        match self {
            Problem::Unauthorized => generic(StatusCode::UNAUTHORIZED, "Unauthorized", "Неверный логин или пароль"),
            Problem::BadRequest(detail) => generic(StatusCode::BAD_REQUEST, "Bad Request", detail),
            Problem::Validation(items) => validation_body(items),
            Problem::NotFound => generic(StatusCode::NOT_FOUND, "Not Found", "Not Found"),
            Problem::MethodNotAllowed => {
                generic(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed", "Method Not Allowed")
            }
            Problem::OAuth { status, hint } => json!({
                "hint": hint,
                "title": OAUTH_TITLE,
                "type": OAUTH_PROBLEM_TYPE,
                "status": status.as_u16(),
                "detail": OAUTH_DETAIL,
            }),
        }
    }
}

fn generic(status: StatusCode, title: &str, detail: &str) -> Value {
    json!({
        "title": title,
        "type": format!("https://httpstatus.es/{}", status.as_u16()),
        "status": status.as_u16(),
        "detail": detail,
    })
}

fn validation_body(items: &[ItemErrors]) -> Value {
    let items: Vec<Value> = items
        .iter()
        .map(|item| {
            let errors: Vec<Value> = item
                .errors
                .iter()
                .map(|error| json!({"code": error.code, "path": error.path, "detail": error.detail}))
                .collect();
            json!({"request_id": item.request_id, "errors": errors})
        })
        .collect();
    json!({
        "validation-errors": items,
        "title": "Bad Request",
        "type": "https://httpstatus.es/400",
        "status": 400,
        "detail": "Request validation failed",
    })
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let content_type = match self {
            // The token endpoint answers errors as plain JSON, like its successes.
            Problem::OAuth { .. } => "application/json",
            _ => PROBLEM_JSON,
        };
        with_content_type(self.status(), content_type, self.body().to_string())
    }
}

pub fn with_content_type(status: StatusCode, content_type: &str, body: String) -> Response {
    let mut response = (status, body).into_response();
    if let Ok(value) = HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}

/// The page nginx in front of amoCRM answers with: 429 and 403 bodies are not JSON.
pub fn html_page(status: StatusCode) -> String {
    let code = status.as_u16();
    let reason = status.canonical_reason().unwrap_or("Error");
    format!(
        "<html>\r\n<head><title>{code} {reason}</title></head>\r\n<body>\r\n\
         <center><h1>{code} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n\
         </body>\r\n</html>\r\n"
    )
}

/// The default body of an injected fault: the documented shapes for 400 and 401,
/// the proxy's HTML page for the rest.
pub fn fault_response(status: StatusCode, body: Option<&str>) -> Response {
    match body {
        Some(text) => {
            let is_json = serde_json::from_str::<Value>(text).is_ok();
            let content_type = if is_json { PROBLEM_JSON } else { "text/html" };
            with_content_type(status, content_type, text.to_owned())
        }
        None if status == StatusCode::BAD_REQUEST => {
            Problem::invalid("0", FieldError::not_supported_choice("status_id")).into_response()
        }
        None if status == StatusCode::UNAUTHORIZED => Problem::Unauthorized.into_response(),
        None => with_content_type(status, "text/html", html_page(status)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_body_has_the_documented_envelope() {
        let body = Problem::invalid("0", FieldError::not_supported_choice("status_id")).body();
        assert_eq!(
            body,
            json!({"validation-errors":[{"request_id":"0","errors":[{"code":"NotSupportedChoice",
                "path":"status_id","detail":"The value you selected is not a valid choice."}]}],
                "title":"Bad Request","type":"https://httpstatus.es/400","status":400,
                "detail":"Request validation failed"})
        );
    }

    #[test]
    fn too_many_requests_page_is_html() {
        let page = html_page(StatusCode::TOO_MANY_REQUESTS);
        assert!(page.starts_with("<html>"));
        assert!(page.contains("<title>429 Too Many Requests</title>"));
    }
}
