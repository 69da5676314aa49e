//! The checks in front of every `/api/` route: request log, latency, injected failures, session, CSRF.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::{API_PREFIX, LOGIN_PATH, Shared, cookies};

/// Logs the request, then runs it through the checks in the order a real deployment applies
/// them: the network's latency, a failing upstream, then the application's session and CSRF
/// checks. A request dropped by its client stays logged as 499 and changes nothing.
pub async fn gate(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    if !path.starts_with(API_PREFIX) {
        return next.run(request).await;
    }
    let method = request.method().as_str().to_owned();
    let entry = shared.lock().traffic.open_entry(&method, &path);
    let response = admit(&shared, request, next).await;
    let status = response.status().as_u16();
    shared.lock().traffic.close_entry(entry, status);
    tracing::debug!(%method, %path, status, "session CRM emulator answered");
    response
}

async fn admit(shared: &Shared, request: Request, next: Next) -> Response {
    let latency = shared.lock().traffic.delay_for(request.method().as_str(), request.uri().path());
    if let Some(delay) = latency {
        tokio::time::sleep(delay).await;
    }
    let failure = shared.lock().traffic.take_failure();
    if let Some(status) = failure {
        return ApiError::Injected(StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE))
            .into_response();
    }
    // The login opens sessions rather than needing one; it is CSRF-exempt here because
    // the API shape logs in with one request, unlike Django's stock login view.
    if request.uri().path() == LOGIN_PATH {
        return next.run(request).await;
    }
    let is_unsafe = !request.method().is_safe();
    let session_id = match check_session(shared, request.headers(), is_unsafe) {
        Ok(session_id) => session_id,
        Err(SessionProblem::LoggedOut) => return logged_out(shared, &request).into_response(),
        Err(SessionProblem::CsrfMismatch) => return ApiError::CsrfMismatch.into_response(),
    };
    let mut response = next.run(request).await;
    announce_rotation(shared, &session_id, is_unsafe, &mut response);
    response
}

enum SessionProblem {
    LoggedOut,
    CsrfMismatch,
}

/// The live session's id, its idle clock restarted.
fn check_session(shared: &Shared, headers: &HeaderMap, is_unsafe: bool) -> Result<String, SessionProblem> {
    let session_id = cookies::read(headers, cookies::SESSION_COOKIE).ok_or(SessionProblem::LoggedOut)?;
    let mut state = shared.lock();
    let session = state.sessions.resume(&session_id, Instant::now()).ok_or(SessionProblem::LoggedOut)?;
    let csrf_header = headers.get(cookies::CSRF_HEADER).and_then(|value| value.to_str().ok());
    if is_unsafe && !session.accepts_csrf(csrf_header) {
        return Err(SessionProblem::CsrfMismatch);
    }
    Ok(session_id)
}

/// The server cannot tell an expired session from none at all (an expired id is simply
/// unknown), so both get the same answer.
fn logged_out(shared: &Shared, request: &Request) -> ApiError {
    if shared.config.redirect_to_login {
        let next = request.uri().path_and_query().map_or(LOGIN_PATH, |path| path.as_str()).to_owned();
        ApiError::RedirectToLogin { next }
    } else {
        ApiError::Unauthenticated
    }
}

/// Counts an unsafe request towards rotation and hands a rotated token to the client. Only
/// answers that passed the checks carry it: neither Django nor Laravel sets the CSRF cookie
/// on the refusal itself, so a client learns of a rotation from its next accepted request
/// or a fresh login.
fn announce_rotation(shared: &Shared, session_id: &str, is_unsafe: bool, response: &mut Response) {
    let mut state = shared.lock();
    let Some(session) = state.sessions.get_mut(session_id) else {
        return;
    };
    if is_unsafe {
        session.count_unsafe(shared.config.rotate_csrf_every);
    }
    if let Some(token) = session.take_unannounced_token() {
        response.headers_mut().append(header::SET_COOKIE, cookies::csrf(&token));
    }
}
