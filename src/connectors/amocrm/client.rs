//! Calls to amoCRM's API v4 and what each answer means for the lead.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;

use super::credentials::Credentials;
use super::wire::{Page, ProblemBody};
use crate::connectors::DeliveryError;
use crate::connectors::transport::{Body, Reply, Transport};
use crate::domain::HistoryEvent;

/// amoCRM's largest page.
const PAGE_LIMIT: &str = "250";
const MAX_PAGES: usize = 100;

pub struct AmoCrmClient {
    pub destination: String,
    base_url: Url,
    transport: Transport,
    credentials: Credentials,
    blocked_pause: Duration,
}

impl AmoCrmClient {
    pub fn new(
        destination: &str,
        base_url: Url,
        transport: Transport,
        credentials: Credentials,
        blocked_pause: Duration,
    ) -> Self {
        Self { destination: destination.to_owned(), base_url, transport, credentials, blocked_pause }
    }

    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    pub fn base_url(&self) -> &Url {
        &self.base_url
    }

    /// `GET`; `None` when amoCRM answers 204, which is how it says "nothing found".
    pub async fn get<T: DeserializeOwned>(
        &self,
        calls: &mut Vec<HistoryEvent>,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Option<T>, DeliveryError> {
        self.call(calls, Method::GET, path, query, None::<&()>).await
    }

    /// Every page of a list, in order, 250 items at a time, while `_links.next` says another
    /// follows; a 204 is the end. `MAX_PAGES` bounds a server that never stops offering more.
    pub async fn get_pages<E: DeserializeOwned>(
        &self,
        calls: &mut Vec<HistoryEvent>,
        path: &str,
    ) -> Result<Vec<E>, DeliveryError> {
        let mut pages = Vec::new();
        for number in 1..=MAX_PAGES {
            let number = number.to_string();
            let query = [("limit", PAGE_LIMIT), ("page", number.as_str())];
            let Some(page) = self.get::<Page<E>>(calls, path, &query).await? else {
                return Ok(pages);
            };
            pages.push(page.embedded);
            if page.links.next.is_none() {
                return Ok(pages);
            }
        }
        tracing::warn!(destination = %self.destination, path, "amoCRM offered more than {MAX_PAGES} pages; the rest is not read");
        Ok(pages)
    }

    pub async fn post<T: DeserializeOwned>(
        &self,
        calls: &mut Vec<HistoryEvent>,
        path: &str,
        body: &impl Serialize,
    ) -> Result<T, DeliveryError> {
        let answer = self.call(calls, Method::POST, path, &[], Some(body)).await?;
        answer.ok_or_else(|| DeliveryError::Unavailable(format!("POST {path} answered 204 without the created ids")))
    }

    pub async fn patch(
        &self,
        calls: &mut Vec<HistoryEvent>,
        path: &str,
        body: &impl Serialize,
    ) -> Result<(), DeliveryError> {
        self.call::<serde_json::Value>(calls, Method::PATCH, path, &[], Some(body)).await.map(|_| ())
    }

    async fn call<T: DeserializeOwned>(
        &self,
        calls: &mut Vec<HistoryEvent>,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&impl Serialize>,
    ) -> Result<Option<T>, DeliveryError> {
        let mut url = self.base_url.join(path).expect("API paths join any base URL");
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let mut renewed = false;
        loop {
            let token = self.credentials.bearer(&self.transport, calls).await?;
            let body = body.map_or(Body::None, Body::Json);
            let reply = self.transport.send(calls, method.clone(), url.clone(), Some(&token), body).await?;
            if reply.status == StatusCode::UNAUTHORIZED && self.credentials.can_renew() && !renewed {
                // An access token can die before its announced expiry; renew once and repeat.
                self.credentials.refused(&token).await;
                renewed = true;
                continue;
            }
            return self.interpret(&method, path, reply);
        }
    }

    fn interpret<T: DeserializeOwned>(
        &self,
        method: &Method,
        path: &str,
        reply: Reply,
    ) -> Result<Option<T>, DeliveryError> {
        let status = reply.status;
        let problem =
            || serde_json::from_slice::<ProblemBody>(&reply.bytes).map(|body| body.message()).unwrap_or_default();
        match status {
            StatusCode::NO_CONTENT => {
                self.transport.limiter.succeeded();
                Ok(None)
            }
            status if status.is_success() => {
                self.transport.limiter.succeeded();
                serde_json::from_slice(&reply.bytes).map(Some).map_err(|error| {
                    DeliveryError::Unavailable(format!(
                        "{method} {path} answered {status} with an unreadable body: {error}"
                    ))
                })
            }
            StatusCode::TOO_MANY_REQUESTS => {
                let retry_in = self.transport.limiter.throttle(reply.retry_after);
                tracing::warn!(destination = %self.destination, ?retry_in, "amoCRM answered 429; slowing down");
                Err(DeliveryError::RateLimited { retry_in })
            }
            StatusCode::FORBIDDEN if !reply.is_json => {
                self.transport.limiter.block(self.blocked_pause);
                tracing::error!(
                    destination = %self.destination, pause = ?self.blocked_pause,
                    "amoCRM answered 403 without a JSON body: the account is blocked for exceeding the rate limit; \
                     all calls to it stop, leads stay queued; contact amoCRM support to lift the block"
                );
                Err(DeliveryError::Blocked { retry_in: self.blocked_pause })
            }
            StatusCode::UNAUTHORIZED => {
                Err(DeliveryError::Unauthorized(format!("{method} {path} answered 401: {}", problem())))
            }
            StatusCode::BAD_REQUEST => {
                Err(DeliveryError::Rejected(format!("{method} {path} answered 400: {}", problem())))
            }
            status if status.is_server_error() || status == StatusCode::PAYMENT_REQUIRED => {
                Err(DeliveryError::Unavailable(format!("{method} {path} answered {status}")))
            }
            status => Err(DeliveryError::Misconfigured(format!("{method} {path} answered {status}: {}", problem()))),
        }
    }
}
