//! The login session of a session CRM: one login at a time, its cookies, the CSRF header, its renewal.

use std::collections::BTreeMap;
use std::sync::{Arc, MutexGuard, PoisonError};
use std::time::Duration;

use minijinja::Value;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use reqwest_cookie_store::{CookieStore, CookieStoreMutex};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;
use tokio::time::Instant;
use url::Url;

use super::endpoint;
use crate::config::{LoginFormat, SessionCrmConfig, SessionSettings};
use crate::connectors::DeliveryError;
use crate::connectors::status::{LoginFailure, SessionLogin};
use crate::connectors::transport::{Body, Reply, Transport};
use crate::domain::HistoryEvent;

/// How long a refused login is answered from memory: a queue of leads meeting a wrong password
/// must not become a storm of logins (which can also lock the CRM account).
const REFUSED_LOGIN_MEMORY: Duration = Duration::from_secs(60);

/// Which login a request was sent under. A refusal ends only the session it was sent with, so a
/// late refusal never throws away a session another task has just opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Generation(u64);

pub(super) struct Session {
    settings: SessionSettings,
    /// Shown in errors: the base URL without any user name or password in it.
    account: String,
    login_url: Url,
    username: String,
    password: SecretString,
    jar: Arc<CookieStoreMutex>,
    /// Held across a login, so concurrent callers wait for that one login instead of each
    /// logging in (every login rotates the CSRF token and may end the others' sessions).
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    generation: u64,
    /// When the live session was opened; `None` when there is none.
    opened: Option<Instant>,
    last_failure: Option<Failure>,
}

struct Failure {
    at: Instant,
    kind: FailureKind,
}

/// A login's failure, kept to answer the callers that waited for that login, and a refusal for
/// a while longer.
#[derive(Clone)]
enum FailureKind {
    Refused(String),
    Unavailable(String),
    RateLimited(Duration),
}

impl Failure {
    fn error(&self) -> DeliveryError {
        match &self.kind {
            FailureKind::Refused(message) => DeliveryError::Unauthorized(message.clone()),
            FailureKind::Unavailable(message) => DeliveryError::Unavailable(message.clone()),
            FailureKind::RateLimited(retry_in) => {
                DeliveryError::RateLimited { retry_in: retry_in.saturating_sub(self.at.elapsed()) }
            }
        }
    }
}

impl Session {
    pub fn new(config: &SessionCrmConfig, jar: Arc<CookieStoreMutex>) -> Self {
        let mut account = config.base_url.clone();
        let _ = account.set_username("");
        let _ = account.set_password(None);
        let login_url = endpoint::join(&config.base_url, &config.session.login_path, &BTreeMap::new());
        Self {
            settings: config.session.clone(),
            account: account.as_str().trim_end_matches('/').to_owned(),
            login_url,
            username: config.username.clone(),
            password: config.password.clone(),
            jar,
            state: Mutex::new(State::default()),
        }
    }

    /// The live session's generation, logging in first when there is none or it is older than
    /// `lifetime`.
    ///
    /// # Errors
    /// The login's failure: `Unauthorized` when the CRM refused it (answered again without a new
    /// attempt for a minute), `Unavailable` or `RateLimited` when it could not be tried.
    pub async fn current(
        &self,
        transport: &Transport,
        calls: &mut Vec<HistoryEvent>,
    ) -> Result<Generation, DeliveryError> {
        let asked = Instant::now();
        let mut state = self.state.lock().await;
        if let Some(failure) = &state.last_failure {
            let waited_for_it = failure.at >= asked;
            let refused_lately =
                matches!(failure.kind, FailureKind::Refused(_)) && failure.at.elapsed() < REFUSED_LOGIN_MEMORY;
            if waited_for_it || refused_lately {
                return Err(failure.error());
            }
        }
        if let Some(opened) = state.opened
            && opened.elapsed() < self.settings.lifetime
        {
            return Ok(Generation(state.generation));
        }
        state.opened = None;
        match self.log_in(transport, calls).await {
            Ok(()) => {
                state.generation += 1;
                state.opened = Some(Instant::now());
                state.last_failure = None;
                tracing::info!(account = %self.account, generation = state.generation, "logged in to the session CRM");
                Ok(Generation(state.generation))
            }
            Err(kind) => {
                let failure = Failure { at: Instant::now(), kind };
                let error = failure.error();
                tracing::warn!(account = %self.account, %error, "the session CRM login failed");
                state.last_failure = Some(failure);
                Err(error)
            }
        }
    }

    /// The login as it stands, without waiting: a login holding the lock is reported as under way.
    pub fn login(&self) -> SessionLogin {
        let Ok(state) = self.state.try_lock() else {
            return SessionLogin {
                open_for: None,
                lifetime: self.settings.lifetime,
                last_failure: None,
                logging_in: true,
            };
        };
        let last_failure = state.last_failure.as_ref().map(|failure| {
            let kind = match failure.kind {
                FailureKind::Refused(_) => LoginFailure::Refused,
                FailureKind::Unavailable(_) => LoginFailure::Unavailable,
                FailureKind::RateLimited(_) => LoginFailure::RateLimited,
            };
            (kind, failure.at.elapsed())
        });
        SessionLogin {
            open_for: state.opened.map(|opened| opened.elapsed()).filter(|open| *open < self.settings.lifetime),
            lifetime: self.settings.lifetime,
            last_failure,
            logging_in: false,
        }
    }

    /// The CRM said the session `generation` is gone: the next `current` logs in again, unless a
    /// newer session already replaced it.
    pub async fn ended(&self, generation: Generation) {
        let mut state = self.state.lock().await;
        if state.generation == generation.0 {
            state.opened = None;
        }
    }

    /// Whether `reply` says the session is gone: a configured status, or a redirect to the login page.
    pub fn is_gone(&self, reply: &Reply, request_url: &Url) -> bool {
        if self.settings.relogin_statuses.contains(&reply.status.as_u16()) {
            return true;
        }
        reply.status.is_redirection()
            && reply
                .location
                .as_deref()
                .and_then(|location| request_url.join(location).ok())
                .is_some_and(|target| target.path() == self.login_url.path())
    }

    /// The CSRF header with the cookie's value as the jar holds it now: the CRM may have rotated it
    /// with any answer, and always does at login.
    pub fn csrf_header(&self, url: &Url) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let value = self
            .jar()
            .matches(url)
            .into_iter()
            .find(|cookie| cookie.name() == self.settings.csrf_cookie)
            .map(|cookie| cookie.value().to_owned());
        let Some(raw) = value else {
            return headers;
        };
        let value = if self.settings.csrf_decode {
            percent_encoding::percent_decode_str(&raw).decode_utf8_lossy().into_owned()
        } else {
            raw
        };
        if let (Ok(name), Ok(mut value)) =
            (HeaderName::from_bytes(self.settings.csrf_header.as_bytes()), HeaderValue::from_str(&value))
        {
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        headers
    }

    /// `text` without the password or any cookie value in it, for errors the CRM's words go into.
    pub fn redact(&self, text: &str) -> String {
        let mut secrets: Vec<String> = self.jar().iter_any().map(|cookie| cookie.value().to_owned()).collect();
        secrets.push(self.password.expose_secret().to_owned());
        // Very short values would cut ordinary words apart; no real secret is that short.
        secrets.retain(|secret| secret.len() >= 4);
        secrets.iter().fold(text.to_owned(), |text, secret| text.replace(secret.as_str(), "[redacted]"))
    }

    /// One login: the jar emptied first, so only a cookie this answer sets counts as success.
    async fn log_in(&self, transport: &Transport, calls: &mut Vec<HistoryEvent>) -> Result<(), FailureKind> {
        self.jar().clear();
        let failed = |reason: String| format!("login to {} failed: {reason}", self.account);
        let fields = self.login_fields().map_err(|reason| FailureKind::Refused(failed(reason)))?;
        let body = match self.settings.login_format {
            LoginFormat::Json => Body::Json(&fields),
            LoginFormat::Form => Body::Form(&fields),
        };
        let reply =
            transport.send(calls, Method::POST, self.login_url.clone(), None, body).await.map_err(
                |error| match error {
                    DeliveryError::RateLimited { retry_in } => FailureKind::RateLimited(retry_in),
                    other => FailureKind::Unavailable(failed(other.to_string())),
                },
            )?;
        let status = reply.status;
        if status == StatusCode::TOO_MANY_REQUESTS {
            return Err(FailureKind::RateLimited(transport.limiter.throttle(reply.retry_after)));
        }
        if status.is_server_error() {
            return Err(FailureKind::Unavailable(failed(format!("answered {status}"))));
        }
        // A form login commonly answers with a redirect to the start page, cookies set.
        if !(status.is_success() || status.is_redirection()) {
            return Err(FailureKind::Refused(failed(format!("answered {status}"))));
        }
        let session_set = self.jar().iter_unexpired().any(|cookie| cookie.name() == self.settings.session_cookie);
        if !session_set {
            let cookie = &self.settings.session_cookie;
            return Err(FailureKind::Refused(failed(format!(
                "answered {status} without setting the «{cookie}» cookie"
            ))));
        }
        transport.limiter.succeeded();
        Ok(())
    }

    /// The login body's fields; the password exists as plain text only inside it.
    fn login_fields(&self) -> Result<BTreeMap<String, String>, String> {
        let environment = endpoint::environment();
        let context = Value::from(BTreeMap::from([
            ("username".to_owned(), Value::from(self.username.as_str())),
            ("password".to_owned(), Value::from(self.password.expose_secret())),
        ]));
        let mut fields = BTreeMap::new();
        for (field, template) in &self.settings.login_body {
            let name = format!("session.login_body.{field}");
            match endpoint::render(&environment, &name, template, &context) {
                Ok(Some(text)) => {
                    fields.insert(field.clone(), text);
                }
                Ok(None) => return Err(format!("{name} needs a value the login does not have")),
                Err(error) => return Err(error.to_string()),
            }
        }
        Ok(fields)
    }

    /// Every cookie value the jar holds, for tests that look for leaks.
    #[cfg(test)]
    pub fn cookie_values(&self) -> Vec<String> {
        self.jar().iter_any().map(|cookie| cookie.value().to_owned()).collect()
    }

    fn jar(&self) -> MutexGuard<'_, CookieStore> {
        // A panic while the jar was held leaves cookies, not a broken invariant.
        self.jar.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
