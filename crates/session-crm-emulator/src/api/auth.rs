//! `POST /api/auth/login` (JSON or form body) opening a session, and the HTML page a redirect lands on.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, header};
use axum::response::{Html, IntoResponse, Response};
use axum::{Form, Json};
use serde_json::json;

use super::body::JsonObject;
use crate::error::ApiError;
use crate::{LOGIN_PATH, Shared, cookies};

struct Credentials {
    login: String,
    password: String,
}

/// A successful login closes the session the request came with, if any, and opens a new
/// one with a new CSRF token, as Django's `login()` and Laravel's `regenerate()` do: a token
/// read before the login is useless after it.
pub async fn login(State(shared): State<Arc<Shared>>, request: Request) -> Result<Response, ApiError> {
    let previous_session = cookies::read(request.headers(), cookies::SESSION_COOKIE);
    let credentials = read_credentials(request).await?;
    let config = &shared.config;
    let mut state = shared.lock();
    if credentials.login != config.username || credentials.password != config.password {
        state.failed_login_count += 1;
        return Err(ApiError::BadCredentials);
    }
    if let Some(previous) = previous_session {
        state.sessions.close(&previous);
    }
    let opened = state.sessions.open(Instant::now());
    state.login_count += 1;
    drop(state);
    let mut headers = HeaderMap::new();
    headers.append(header::SET_COOKIE, cookies::session(&opened.session_id, config.session_lifetime));
    headers.append(header::SET_COOKIE, cookies::csrf(&opened.csrf_token));
    Ok((headers, Json(json!({"login": credentials.login}))).into_response())
}

async fn read_credentials(request: Request) -> Result<Credentials, ApiError> {
    let is_form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/x-www-form-urlencoded"));
    if is_form {
        let Form(mut fields) = Form::<HashMap<String, String>>::from_request(request, &())
            .await
            .map_err(|rejection| ApiError::MalformedBody(rejection.body_text()))?;
        let mut required = |field: &'static str| {
            fields
                .remove(field)
                .filter(|value| !value.is_empty())
                .ok_or_else(|| ApiError::invalid(field, "is required"))
        };
        Ok(Credentials { login: required("login")?, password: required("password")? })
    } else {
        let body = Bytes::from_request(request, &())
            .await
            .map_err(|rejection| ApiError::MalformedBody(rejection.body_text()))?;
        let fields = JsonObject::parse(&body)?;
        Ok(Credentials { login: fields.required_text("login")?, password: fields.required_text("password")? })
    }
}

/// What a client that follows the login redirect receives: a 200 that is not the answer it
/// asked for, the trap the facts warn about.
pub async fn login_page() -> Html<String> {
    Html(format!(
        "<!doctype html><html><head><title>Sign in</title></head><body>\
         <form method=\"post\" action=\"{LOGIN_PATH}\">\
         <input name=\"login\"><input name=\"password\" type=\"password\"><button>Sign in</button>\
         </form></body></html>"
    ))
}
