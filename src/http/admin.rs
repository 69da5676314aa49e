//! Operators' credentials, checked in one place: the `[admin] token` for scripts, a console
//! session for people; and the endpoint that re-sends a dead lead.

use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use axum_extra::extract::CookieJar;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::AppState;
use super::error::{ApiError, ConsoleError};
use super::source_auth::{AuthenticatedSource, authorization};
use crate::domain::LeadId;
use crate::domain::operator::Role;
use crate::store::Requeue;
use crate::store::console::ConsoleSession;

/// The console's session cookie; its value is a random token, stored only as its SHA-256.
pub const SESSION_COOKIE: &str = "leadgate_console";
/// The header a script in a console page sends its session's CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A request from a script holding `[admin] token` as `Authorization: Bearer`, or from a
/// logged-in console admin. Without the token in the configuration, only sessions get in.
/// A session's request that changes something must carry its CSRF token in `X-CSRF-Token`.
pub struct Admin {
    /// Who asked, for the lead's history and the audit: `api`, or the console user's name.
    pub actor: String,
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(presented) = authorization(&parts.headers, "Bearer")? {
            let expected = state.admin_token.as_ref().ok_or(ApiError::AdminUnauthorized)?;
            return if bool::from(expected.expose_secret().as_bytes().ct_eq(presented.as_bytes())) {
                Ok(Self { actor: "api".to_owned() })
            } else {
                Err(ApiError::AdminUnauthorized)
            };
        }
        let session = session_of(&parts.headers, state).await?.ok_or(ApiError::AdminUnauthorized)?;
        if session.user.role != Role::Admin {
            return Err(ApiError::Forbidden("Ошибка! Это доступно только администраторам консоли".to_owned()));
        }
        let safe = matches!(parts.method, Method::GET | Method::HEAD);
        let header = parts.headers.get(CSRF_HEADER).and_then(|value| value.to_str().ok()).unwrap_or_default();
        if !safe && !same_secret(header, &session.csrf_token) {
            return Err(ApiError::Forbidden("Ошибка! Нет CSRF-токена сессии (X-CSRF-Token)".to_owned()));
        }
        Ok(Self { actor: format!("console:{}", session.user.username) })
    }
}

/// Who may watch the calls in progress (`GET /api/v1/calls/live`): a script with the
/// `[admin] token`, or any console user, viewers included: the person whose phone rings needs
/// the card, and it shows no more than the lead list does.
pub struct CallWatcher;

impl FromRequestParts<AppState> for CallWatcher {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if authorization(&parts.headers, "Bearer")?.is_some() {
            return Admin::from_request_parts(parts, state).await.map(|_| Self);
        }
        session_of(&parts.headers, state).await?.map(|_| Self).ok_or(ApiError::AdminUnauthorized)
    }
}

/// Who may read a lead's report (`GET /api/v1/leads/{id}`): the lead's own source by its key, or
/// an operator as `Admin` admits them (the admin token, or a console admin's session).
pub enum LeadReader {
    Source(crate::domain::SourceId),
    Operator,
}

impl FromRequestParts<AppState> for LeadReader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let source_refused = match AuthenticatedSource::from_request_parts(parts, state).await {
            Ok(AuthenticatedSource(source)) => return Ok(Self::Source(source.id)),
            Err(refused) => refused,
        };
        match Admin::from_request_parts(parts, state).await {
            Ok(_) => Ok(Self::Operator),
            // A console viewer is told so; anyone else keeps the partner contract's 401.
            Err(forbidden @ ApiError::Forbidden(_)) => Err(forbidden),
            Err(_) => Err(source_refused),
        }
    }
}

/// A logged-in console user, for the console's pages.
pub struct Operator {
    pub session: ConsoleSession,
    /// The SHA-256 of the session cookie: the session's key in the store.
    pub token_hash: String,
}

impl Operator {
    pub fn is_admin(&self) -> bool {
        self.session.user.role.is_admin()
    }

    /// # Errors
    /// `Forbidden` for a viewer.
    pub fn require_admin(&self) -> Result<(), ConsoleError> {
        if self.is_admin() { Ok(()) } else { Err(ConsoleError::Forbidden) }
    }

    /// Every console form carries the session's CSRF token; a POST without it changes nothing.
    ///
    /// # Errors
    /// `CsrfRejected` when `presented` is not this session's token.
    pub fn check_csrf(&self, presented: &str) -> Result<(), ConsoleError> {
        if same_secret(presented, &self.session.csrf_token) { Ok(()) } else { Err(ConsoleError::CsrfRejected) }
    }

    pub fn username(&self) -> &str {
        self.session.user.username.as_str()
    }
}

impl FromRequestParts<AppState> for Operator {
    type Rejection = ConsoleError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ConsoleError> {
        let Some(token) = session_token(&parts.headers) else { return Err(ConsoleError::SignInRequired) };
        let token_hash = hash_token(&token);
        let session = state.store.console_session(&token_hash).await?.ok_or(ConsoleError::SignInRequired)?;
        Ok(Self { session, token_hash })
    }
}

async fn session_of(headers: &HeaderMap, state: &AppState) -> Result<Option<ConsoleSession>, ApiError> {
    let Some(token) = session_token(headers) else { return Ok(None) };
    Ok(state.store.console_session(&hash_token(&token)).await?)
}

fn session_token(headers: &HeaderMap) -> Option<String> {
    let jar = CookieJar::from_headers(headers);
    jar.get(SESSION_COOKIE).map(|cookie| cookie.value().to_owned()).filter(|value| !value.is_empty())
}

/// The key a session is stored under.
pub fn hash_token(token: &str) -> String {
    format!("{:x}", Sha256::digest(token.as_bytes()))
}

fn same_secret(presented: &str, expected: &str) -> bool {
    !expected.is_empty() && bool::from(presented.as_bytes().ct_eq(expected.as_bytes()))
}

/// `POST /api/v1/leads/{id}/retry`: a dead lead back in the queue, or a pending one that waits
/// for its next attempt, due now.
#[utoipa::path(post, path = "/api/v1/leads/{id}/retry", tag = "operators", security(("admin_token" = [])),
    params(("id" = i64, Path)),
    responses(
        (status = 200, description = "`{id, status: \"pending\"}`: queued to be sent now"),
        (status = 401, description = "No admin token", body = crate::http::openapi::ErrorBody),
        (status = 404, description = "No lead of that id", body = crate::http::openapi::ErrorBody),
        (status = 409, description = "The lead is neither dead nor waiting", body = crate::http::openapi::ErrorBody),
    ))]
pub async fn retry(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = id.parse::<i64>().map(LeadId).map_err(|_| ApiError::NotFound)?;
    match state.store.resend(id, &admin.actor).await? {
        Requeue::Queued => {
            state.store.audit(&admin.actor, "resend", Some(&format!("lead {id}"))).await?;
            Ok(Json(json!({ "id": id, "status": "pending" })))
        }
        Requeue::WrongStatus(status) => Err(ApiError::Conflict(format!(
            "заявка {id} в статусе {}; повторно отправляются только dead и pending",
            status.as_str()
        ))),
        Requeue::NotFound => Err(ApiError::NotFound),
    }
}
