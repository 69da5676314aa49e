//! amoCRM credentials: a long-lived token, or OAuth2 tokens kept fresh and persisted on rotation.

use chrono::Utc;
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;
use url::Url;

use super::wire::{ProblemBody, TokenRefreshRequest, TokenResponse};
use crate::config::{AmoCrmAuth, OAuthConfig};
use crate::connectors::DeliveryError;
use crate::connectors::transport::{Body, Transport};
use crate::domain::HistoryEvent;
use crate::store::{Store, StoredTokens};

/// Renew this long before the access token's own expiry, so no call goes out with a dying token.
const RENEW_AHEAD: chrono::Duration = chrono::Duration::minutes(5);

pub enum Credentials {
    LongLived(SecretString),
    OAuth(Box<OAuthTokens>),
}

pub struct OAuthTokens {
    destination: String,
    config: OAuthConfig,
    token_url: Url,
    store: Store,
    /// Held across a renewal, so concurrent callers wait for one refresh instead of each
    /// spending the single-use refresh token.
    current: Mutex<Option<StoredTokens>>,
}

impl Credentials {
    pub fn new(auth: &AmoCrmAuth, destination: &str, base_url: &Url, store: Store) -> Self {
        match auth {
            AmoCrmAuth::LongLivedToken(token) => Self::LongLived(token.clone()),
            AmoCrmAuth::OAuth(config) => Self::OAuth(Box::new(OAuthTokens {
                destination: destination.to_owned(),
                config: config.clone(),
                token_url: base_url.join("/oauth2/access_token").expect("a fixed path joins any base URL"),
                store,
                current: Mutex::new(None),
            })),
        }
    }

    pub fn can_renew(&self) -> bool {
        matches!(self, Self::OAuth(_))
    }

    /// The token to send now, renewed first if it is about to expire.
    pub async fn bearer(&self, transport: &Transport, calls: &mut Vec<HistoryEvent>) -> Result<String, DeliveryError> {
        match self {
            Self::LongLived(token) => Ok(token.expose_secret().to_owned()),
            Self::OAuth(tokens) => tokens.bearer(transport, calls).await,
        }
    }

    /// The CRM refused `token` (401): the next `bearer` renews it.
    pub async fn refused(&self, token: &str) {
        if let Self::OAuth(tokens) = self {
            let mut current = tokens.current.lock().await;
            if let Some(stored) = current.as_mut().filter(|stored| stored.access_token == token) {
                stored.expires_at = Utc::now();
            }
        }
    }
}

impl OAuthTokens {
    async fn bearer(&self, transport: &Transport, calls: &mut Vec<HistoryEvent>) -> Result<String, DeliveryError> {
        let mut current = self.current.lock().await;
        if current.is_none() {
            *current = Some(self.load_or_seed().await?);
        }
        let stored = current.as_mut().expect("set above");
        if stored.expires_at - Utc::now() < RENEW_AHEAD {
            // Another node sharing the store may have renewed already: its pair is stored, and the
            // refresh token held here is spent.
            let latest = self.store.load_tokens(&self.destination).await?.filter(|latest| {
                latest.seeded_from == stored.seeded_from
                    && latest.refresh_token != stored.refresh_token
                    && latest.expires_at - Utc::now() >= RENEW_AHEAD
            });
            *stored = match latest {
                Some(latest) => latest,
                None => self.renew(stored, transport, calls).await?,
            };
        }
        Ok(stored.access_token.clone())
    }

    /// The stored pair, unless the configuration carries a refresh token other than the one the
    /// stored pair grew from: that means someone authorised the integration again.
    async fn load_or_seed(&self) -> Result<StoredTokens, DeliveryError> {
        let configured = self.config.refresh_token.expose_secret();
        if let Some(stored) = self.store.load_tokens(&self.destination).await?
            && stored.seeded_from == configured
        {
            return Ok(stored);
        }
        let (access_token, expires_at) = match &self.config.access_token {
            // Its expiry is unknown; a 401 will tell, and a renewal follows.
            Some(token) => (token.expose_secret().to_owned(), Utc::now() + chrono::Duration::hours(1)),
            None => (String::new(), Utc::now()),
        };
        Ok(StoredTokens {
            seeded_from: configured.to_owned(),
            access_token,
            refresh_token: configured.to_owned(),
            expires_at,
        })
    }

    async fn renew(
        &self,
        stored: &StoredTokens,
        transport: &Transport,
        calls: &mut Vec<HistoryEvent>,
    ) -> Result<StoredTokens, DeliveryError> {
        let request = TokenRefreshRequest {
            client_id: &self.config.client_id,
            client_secret: self.config.client_secret.expose_secret(),
            grant_type: "refresh_token",
            refresh_token: &stored.refresh_token,
            redirect_uri: self.config.redirect_uri.as_str(),
        };
        let reply = transport.send(calls, Method::POST, self.token_url.clone(), None, Body::Form(&request)).await?;
        match reply.status {
            StatusCode::OK => {}
            status if status.is_server_error() => {
                return Err(DeliveryError::Unavailable(format!("the token endpoint answered {status}")));
            }
            status => {
                let detail =
                    serde_json::from_slice::<ProblemBody>(&reply.bytes).map(|body| body.message()).unwrap_or_default();
                tracing::error!(destination = %self.destination, %status, detail, "amoCRM refused to renew the OAuth token; authorise the integration again");
                return Err(DeliveryError::Unauthorized(format!("the token endpoint answered {status}: {detail}")));
            }
        }
        let answer: TokenResponse = serde_json::from_slice(&reply.bytes)
            .map_err(|error| DeliveryError::Unavailable(format!("unreadable token answer: {error}")))?;
        let renewed = StoredTokens {
            seeded_from: stored.seeded_from.clone(),
            access_token: answer.access_token,
            refresh_token: answer.refresh_token,
            expires_at: Utc::now() + chrono::Duration::seconds(answer.expires_in.max(0)),
        };
        // The old refresh token is dead from this moment: the new one must be on disk before
        // anything else can fail.
        self.store.save_tokens(&self.destination, &renewed).await?;
        tracing::info!(destination = %self.destination, expires_in = answer.expires_in, "renewed the amoCRM access token");
        Ok(renewed)
    }
}

impl Credentials {
    pub fn describe(&self) -> &'static str {
        match self {
            Self::LongLived(_) => "long-lived token",
            Self::OAuth(_) => "OAuth2",
        }
    }
}
