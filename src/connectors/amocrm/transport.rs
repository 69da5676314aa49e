//! One HTTP exchange with amoCRM: the shared rate budget, timing, and a history entry per call.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde::Serialize;
use url::Url;

use crate::connectors::DeliveryError;
use crate::connectors::rate_limit::{Paused, RateLimiter};
use crate::domain::HistoryEvent;
use crate::store::SharedRateBudget;

/// How long a request counts against the budget after its answer: amoCRM counts per second.
const WINDOW: Duration = Duration::from_secs(1);

pub struct Transport {
    http: reqwest::Client,
    pub limiter: RateLimiter,
    /// With several nodes, the budget they share; this node's `limiter` alone would let each of
    /// them send the whole budget.
    shared: Option<SharedRateBudget>,
}

/// What a call carries: amoCRM takes JSON, its token endpoint also forms.
pub enum Body<'a, T: Serialize> {
    None,
    Json(&'a T),
    Form(&'a T),
}

pub struct Reply {
    pub status: StatusCode,
    pub retry_after: Option<Duration>,
    pub is_json: bool,
    pub bytes: bytes::Bytes,
}

impl Transport {
    pub fn new(timeout: Duration, requests_per_second: u32, shared: Option<SharedRateBudget>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("leadgate/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the HTTP client's settings are valid");
        Self { http, limiter: RateLimiter::per_second(requests_per_second), shared }
    }

    /// Sends one request within the destination's budget and records it in `calls`.
    pub async fn send<T: Serialize>(
        &self,
        calls: &mut Vec<HistoryEvent>,
        method: Method,
        url: Url,
        bearer: Option<&str>,
        body: Body<'_, T>,
    ) -> Result<Reply, DeliveryError> {
        let path = url.path().to_owned();
        let mut request = self.http.request(method.clone(), url);
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        request = match body {
            Body::None => request,
            Body::Json(value) => request.json(value),
            Body::Form(value) => request.form(value),
        };
        let slot = self.limiter.acquire().await.map_err(|paused| match paused {
            Paused::Throttled { retry_in } => DeliveryError::RateLimited { retry_in },
            Paused::Blocked { retry_in } => DeliveryError::Blocked { retry_in },
        })?;
        let shared_slot = match &self.shared {
            Some(budget) => Some(budget.acquire().await.map_err(|error| {
                DeliveryError::Unavailable(format!("the rate budget shared by the nodes is out of reach: {error}"))
            })?),
            None => None,
        };
        let started = Instant::now();
        let result = exchange(request).await;
        drop(slot);
        if let Some(shared_slot) = shared_slot {
            tokio::spawn(shared_slot.release(WINDOW));
        }
        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let detail = match &result {
            Ok(reply) => serde_json::json!({
                "method": method.as_str(), "path": path, "status": reply.status.as_u16(), "duration_ms": duration_ms,
            }),
            Err(error) => serde_json::json!({
                "method": method.as_str(), "path": path, "error": error.to_string(), "duration_ms": duration_ms,
            }),
        };
        calls.push(HistoryEvent::now("crm_call", detail));
        result
    }
}

async fn exchange(request: reqwest::RequestBuilder) -> Result<Reply, DeliveryError> {
    let unavailable = |error: reqwest::Error| {
        let what = if error.is_timeout() {
            "timed out"
        } else if error.is_connect() {
            "connection failed"
        } else {
            "request failed"
        };
        DeliveryError::Unavailable(format!("{what}: {error}"))
    };
    let response = request.send().await.map_err(unavailable)?;
    let status = response.status();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let is_json = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.contains("json"));
    let bytes = response.bytes().await.map_err(unavailable)?;
    Ok(Reply { status, retry_after, is_json, bytes })
}
