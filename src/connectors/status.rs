//! What each connector knows about its destination right now, as a read-only snapshot for people.
//!
//! The rate pause and a session CRM's login live in this process's memory only; nothing here
//! changes them.

use std::time::Duration;

use super::Connector;
use super::rate_limit::Paused;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorStatus {
    /// `amocrm` or `session_crm`.
    pub kind: &'static str,
    pub requests_per_second: u32,
    /// A 429's pause or a block in force now.
    pub paused: Option<Paused>,
    pub login: Login,
}

/// How the connector proves who it is to the CRM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    /// amoCRM's long-lived token: never renewed, valid until revoked or its configured end.
    LongLivedToken,
    /// amoCRM's OAuth2 pair; when the access token renews is in the store (`load_tokens`).
    OAuth,
    Session(SessionLogin),
}

/// A session CRM's cookie login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionLogin {
    /// How long the live session has been open; `None` when none is (the next call logs in).
    pub open_for: Option<Duration>,
    /// A session older than this is replaced by a fresh login before the next call.
    pub lifetime: Duration,
    /// The last login's failure, if the last login failed: what kind, and how long ago.
    pub last_failure: Option<(LoginFailure, Duration)>,
    /// A login is under way at this moment.
    pub logging_in: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginFailure {
    Refused,
    Unavailable,
    RateLimited,
}

impl Connector {
    /// The destination as this process's connector sees it now.
    pub fn status(&self) -> ConnectorStatus {
        match self {
            Self::AmoCrm(amocrm) => amocrm.status(),
            Self::SessionCrm(own) => own.status(),
        }
    }
}
