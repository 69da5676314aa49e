//! Logging in and out of the console: passwords, lock-out, the session cookie.

use crate::http::visitor::ClientIp;
use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use chrono::Utc;
use secrecy::SecretString;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::page::{CsrfOnly, render};
use super::texts::{Texts, texts};
use crate::domain::operator::{Username, decoy_hash, password_matches};
use crate::http::admin::{Operator, SESSION_COOKIE, hash_token};
use crate::http::error::ConsoleError;
use crate::http::state::AppState;
use crate::store::console::NewSession;

/// The login form's CSRF token, until there is a session to hold one.
const LOGIN_COOKIE: &str = "leadgate_console_login";

#[derive(Template)]
#[template(path = "console/login.html")]
struct LoginPage {
    t: &'static Texts,
    csrf: String,
    problem: Option<&'static str>,
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
}

/// `GET /admin/login`: the form, with a fresh CSRF token in a cookie and in the form.
pub async fn page(State(state): State<AppState>, jar: CookieJar) -> Result<Response, ConsoleError> {
    login_page(&state, jar, None, StatusCode::OK)
}

fn login_page(
    state: &AppState,
    jar: CookieJar,
    problem: Option<&'static str>,
    status: StatusCode,
) -> Result<Response, ConsoleError> {
    let csrf = random_token();
    let cookie = cookie(state, LOGIN_COOKIE, csrf.clone(), "/admin/login");
    let page = LoginPage { t: texts(state.console.config.language), csrf, problem };
    Ok((status, jar.add(cookie), render(&page)?).into_response())
}

/// `POST /admin/login`: a session for the right password, unless the name or the address is locked.
pub async fn submit(
    State(state): State<AppState>,
    ClientIp(visitor): ClientIp,
    jar: CookieJar,
    Form(form): Form<LoginForm>,
) -> Result<Response, ConsoleError> {
    let expected = jar.get(LOGIN_COOKIE).map(|cookie| cookie.value().to_owned()).unwrap_or_default();
    if expected.is_empty() || !bool::from(form.csrf.as_bytes().ct_eq(expected.as_bytes())) {
        return Err(ConsoleError::CsrfRejected);
    }
    let config = &state.console.config;
    let t = texts(config.language);
    let typed_name: String = form.username.trim().to_lowercase().chars().take(64).collect();
    let address = visitor.map(|address| address.to_string()).unwrap_or_default();
    let window = chrono::Duration::from_std(config.lockout_window).unwrap_or(chrono::Duration::MAX);
    let since = Utc::now() - window;
    let (by_user, by_address) = state.store.login_failures(&typed_name, &address, since).await?;
    if by_user >= i64::from(config.max_failures_per_user) || by_address >= i64::from(config.max_failures_per_address) {
        state.store.audit(&typed_name, "login_locked_out", Some(&address)).await?;
        return login_page(&state, jar, Some(t.locked_out), StatusCode::TOO_MANY_REQUESTS);
    }
    let user = match Username::parse(&typed_name) {
        Ok(name) => state.store.console_user_for_login(&name).await?,
        Err(_) => None,
    };
    let password = SecretString::from(form.password);
    let stored = user.as_ref().map_or_else(|| decoy_hash().to_owned(), |(_, hash)| hash.clone());
    let matches = tokio::task::spawn_blocking(move || password_matches(&stored, &password)).await.unwrap_or(false);
    let user = match user {
        Some((user, _)) if matches && !user.disabled => user,
        _ => {
            state.store.record_login_failure(&typed_name, &address, since).await?;
            state.store.audit(&typed_name, "login_failed", Some(&address)).await?;
            return login_page(&state, jar, Some(t.wrong_password), StatusCode::UNAUTHORIZED);
        }
    };
    let token = random_token();
    let token_hash = hash_token(&token);
    let csrf_token = random_token();
    let lifetime = chrono::Duration::from_std(config.session_lifetime).unwrap_or(chrono::Duration::MAX);
    let session = NewSession {
        token_hash: &token_hash,
        user_id: user.id,
        csrf_token: &csrf_token,
        expires_at: Utc::now() + lifetime,
    };
    state.store.start_console_session(&session, user.username.as_str()).await?;
    state.store.audit(user.username.as_str(), "login", Some(&address)).await?;
    let jar =
        jar.add(cookie(&state, SESSION_COOKIE, token, "/")).remove(Cookie::build(LOGIN_COOKIE).path("/admin/login"));
    Ok((jar, Redirect::to("/admin/leads")).into_response())
}

/// `POST /admin/logout`: the session ends in the store, not only in this browser.
pub async fn logout(
    State(state): State<AppState>,
    operator: Operator,
    jar: CookieJar,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, ConsoleError> {
    operator.check_csrf(&form.csrf)?;
    state.store.end_console_session(&operator.token_hash).await?;
    state.store.audit(operator.username(), "logout", None).await?;
    let jar = jar.remove(Cookie::build(SESSION_COOKIE).path("/"));
    Ok((jar, Redirect::to("/admin/login")).into_response())
}

/// `HttpOnly` (no script reads it), `SameSite=Strict` (no other site's page sends it), and
/// `Secure` when the gateway's public address is https. No `Max-Age`: the store decides when a
/// session ends, and the browser forgets the cookie when it closes.
fn cookie(state: &AppState, name: &'static str, value: String, path: &'static str) -> Cookie<'static> {
    Cookie::build((name, value))
        .path(path)
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.console.secure_cookies)
        .build()
}

/// 256 random bits as hex: session tokens and CSRF tokens.
pub fn random_token() -> String {
    format!("{:032x}{:032x}", rand::random::<u128>(), rand::random::<u128>())
}
