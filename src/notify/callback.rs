//! Callbacks: the outcome POSTed to the sender's `callbackUrl`, signed per Standard Webhooks.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use url::Url;

use super::address_guard::AddressGuard;

pub struct CallbackSender {
    http: reqwest::Client,
    guard: AddressGuard,
}

/// Why one attempt failed; every failure is retried until the feedback's age runs out.
#[derive(Debug, thiserror::Error)]
pub enum CallbackFailure {
    #[error("the receiver answered {0}")]
    Status(u16),
    #[error("{0}")]
    Refused(#[from] super::address_guard::Refused),
    #[error("{0}")]
    Transport(String),
}

impl CallbackFailure {
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status(status) => Some(*status),
            _ => None,
        }
    }
}

impl CallbackSender {
    pub fn new(guard: AddressGuard, timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .dns_resolver(Arc::new(guard.clone()))
            // A redirect could lead anywhere, including inside; the URL given is the URL called.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("leadgate/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the callback client's settings are valid");
        Self { http, guard }
    }

    /// POSTs `body` to `url`; returns the receiver's (2xx) status.
    ///
    /// # Errors
    /// A refused address, a transport failure or timeout, or a non-2xx answer.
    pub async fn send(
        &self,
        url: &Url,
        message_id: &str,
        body: Vec<u8>,
        secrets: &[SecretString],
    ) -> Result<u16, CallbackFailure> {
        // Literal IPs never reach the resolver, so they are checked here as well.
        self.guard.check(url).await?;
        let timestamp = chrono::Utc::now().timestamp();
        let mut request = self
            .http
            .post(url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", message_id)
            .header("webhook-timestamp", timestamp.to_string());
        if !secrets.is_empty() {
            // Standard Webhooks: several signatures, space-separated; a receiver accepts any it can check.
            let signatures: Vec<String> =
                secrets.iter().map(|secret| signature(secret, message_id, timestamp, &body)).collect();
            request = request.header("webhook-signature", signatures.join(" "));
        }
        let response = request.body(body).send().await.map_err(|error| {
            let what = if error.is_timeout() { "timed out" } else { "could not be delivered" };
            // The URL may carry the sender's token: the message names its host only.
            let host = url.host_str().unwrap_or_default();
            CallbackFailure::Transport(format!("the callback to {host} {what}: {}", error.without_url()))
        })?;
        let status = response.status();
        if status.is_success() { Ok(status.as_u16()) } else { Err(CallbackFailure::Status(status.as_u16())) }
    }
}

/// `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`. A `whsec_` secret is base64 (the
/// convention's format); any other secret is used as its bytes.
pub fn signature(secret: &SecretString, message_id: &str, timestamp: i64, body: &[u8]) -> String {
    let secret = secret.expose_secret();
    let key = secret
        .strip_prefix("whsec_")
        .and_then(|encoded| BASE64.decode(encoded).ok())
        .unwrap_or_else(|| secret.as_bytes().to_vec());
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes keys of any length");
    mac.update(message_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whsec_secret_signs_like_the_standard_webhooks_example() {
        let secret = SecretString::from("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let signed = signature(&secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, br#"{"test": 2432232314}"#);
        assert_eq!(signed, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn a_plain_secret_is_used_as_its_bytes() {
        let secret = SecretString::from("plain-secret-0123456789");
        assert_eq!(signature(&secret, "id", 1, b"{}"), "v1,ymsvgmSBUFPv2H++kzay7I7SxFdgwpJ/seHQOq69UM4=");
    }
}
