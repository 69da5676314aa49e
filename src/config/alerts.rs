//! `[alerts]`: whom to tell when delivery goes wrong, and after how long; checked like the rest.

use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;
use url::{Host, Url};

use super::found::Found;
use crate::domain::Email;
use crate::domain::address::forbidden_kind;

/// `[alerts]` as written. Every key has a default, so `[alerts]` with a recipient is enough.
#[derive(Debug, Deserialize)]
pub struct RawAlerts {
    #[serde(default)]
    pub email: Vec<String>,
    pub webhook: Option<String>,
    pub webhook_secret: Option<SecretString>,
    #[serde(default = "defaults::stalled_after", with = "humantime_serde")]
    pub stalled_after: Duration,
    #[serde(default = "defaults::oldest_pending", with = "humantime_serde")]
    pub oldest_pending: Duration,
    #[serde(default = "defaults::repeat_after", with = "humantime_serde")]
    pub repeat_after: Duration,
    #[serde(default = "defaults::check_every", with = "humantime_serde")]
    pub check_every: Duration,
}

mod defaults {
    use std::time::Duration;

    pub fn stalled_after() -> Duration {
        Duration::from_secs(15 * 60)
    }

    pub fn oldest_pending() -> Duration {
        Duration::from_secs(60 * 60)
    }

    pub fn repeat_after() -> Duration {
        Duration::from_secs(60 * 60)
    }

    pub fn check_every() -> Duration {
        Duration::from_secs(30)
    }
}

/// Who hears about trouble, and the thresholds that make it trouble.
#[derive(Debug, Clone)]
pub struct AlertsConfig {
    /// Operators e-mailed through `[smtp]`.
    pub email: Vec<Email>,
    /// Receives each alert as JSON, signed like callbacks when `webhook_secret` is set.
    pub webhook: Option<Url>,
    pub webhook_secret: Option<SecretString>,
    /// A source whose leads wait while none reached the CRM for this long is stalled.
    pub stalled_after: Duration,
    /// The oldest waiting lead may be this old before it is an alert.
    pub oldest_pending: Duration,
    /// A condition that lasts is alerted again after this long; dead leads and failed feedback
    /// are counted over this window.
    pub repeat_after: Duration,
    /// How often conditions are looked at.
    pub check_every: Duration,
}

pub(super) fn check_alerts(
    raw: RawAlerts,
    smtp_configured: bool,
    allow_private: bool,
    found: &mut Found<'_>,
) -> Option<AlertsConfig> {
    let mut email = Vec::new();
    for address in &raw.email {
        match Email::parse(address) {
            Ok(parsed) => email.push(parsed),
            Err(error) => found.problem("alerts.email", error.to_string()),
        }
    }
    if !raw.email.is_empty() && !smtp_configured {
        found.problem("alerts.email", "alert e-mails need an [smtp] section");
    }
    let webhook = raw.webhook.as_deref().and_then(|text| match webhook_url(text, allow_private) {
        Ok(url) => Some(url),
        Err(message) => {
            found.problem("alerts.webhook", message);
            None
        }
    });
    if raw.email.is_empty() && raw.webhook.is_none() {
        found.problem("alerts", "no recipient: set `email`, `webhook` or both, or remove the section");
    }
    if raw.webhook_secret.is_some() && raw.webhook.is_none() {
        found.problem("alerts.webhook_secret", "set without a `webhook` to sign for");
    }
    for (key, value) in [
        ("alerts.stalled_after", raw.stalled_after),
        ("alerts.oldest_pending", raw.oldest_pending),
        ("alerts.repeat_after", raw.repeat_after),
        ("alerts.check_every", raw.check_every),
    ] {
        if value.is_zero() {
            found.problem(key, "must be longer than zero");
        }
    }
    Some(AlertsConfig {
        email,
        webhook,
        webhook_secret: raw.webhook_secret,
        stalled_after: raw.stalled_after,
        oldest_pending: raw.oldest_pending,
        repeat_after: raw.repeat_after,
        check_every: raw.check_every,
    })
}

/// An http(s) URL with a host; a literal internal address only when callbacks may reach one,
/// since the webhook goes through the callbacks' guard. Names are checked when sending.
fn webhook_url(text: &str, allow_private: bool) -> Result<Url, String> {
    let not_url = || format!("«{text}» is not an http(s) URL such as https://hooks.example.com/leadgate");
    let url = Url::parse(text).map_err(|_| not_url())?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(not_url());
    }
    let literal = match url.host() {
        Some(Host::Ipv4(ip)) => Some(ip.into()),
        Some(Host::Ipv6(ip)) => Some(ip.into()),
        _ => None,
    };
    if let Some(kind) = literal.and_then(forbidden_kind).filter(|_| !allow_private) {
        return Err(format!(
            "a {kind} address; the webhook, like callbacks, may only reach public addresses unless \
             [security] allow_private_callbacks is set"
        ));
    }
    Ok(url)
}
