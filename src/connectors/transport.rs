//! One HTTP exchange with a CRM: the shared rate budget, timing, and a history entry per call.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use reqwest_cookie_store::CookieStoreMutex;
use serde::Serialize;
use url::Url;

use crate::connectors::DeliveryError;
use crate::connectors::rate_limit::{Paused, RateLimiter};
use crate::domain::HistoryEvent;
use crate::store::SharedRateBudget;

/// How long a request counts against the budget after its answer: CRMs count per second.
const WINDOW: Duration = Duration::from_secs(1);

pub struct Transport {
    /// The destination's name, for metrics and each call's history event.
    destination: String,
    http: reqwest::Client,
    pub limiter: RateLimiter,
    /// The configured budget, for operators to compare the calls against.
    pub requests_per_second: u32,
    /// With several nodes, the budget they share; this node's `limiter` alone would let each of
    /// them send the whole budget.
    shared: Option<SharedRateBudget>,
}

/// What a call carries: amoCRM takes JSON, its token endpoint also forms; a session CRM takes
/// JSON, a form at login, and files as multipart uploads.
pub enum Body<'a, T: Serialize> {
    None,
    Json(&'a T),
    Form(&'a T),
    Multipart(&'a Upload),
}

/// A file and the text fields sent beside it, kept whole so a refused upload can be sent again.
pub struct Upload {
    pub fields: Vec<(String, String)>,
    pub file_field: String,
    pub file_name: String,
    pub content_type: String,
    pub content: Bytes,
}

pub struct Reply {
    pub status: StatusCode,
    pub retry_after: Option<Duration>,
    pub is_json: bool,
    /// A redirect's target as sent; the session client does not follow redirects.
    pub location: Option<String>,
    pub bytes: Bytes,
}

impl Transport {
    pub fn new(
        destination: &str,
        timeout: Duration,
        requests_per_second: u32,
        shared: Option<SharedRateBudget>,
    ) -> Self {
        let http = builder(timeout).build().expect("the HTTP client's settings are valid");
        Self::over(destination, http, requests_per_second, shared)
    }

    fn over(
        destination: &str,
        http: reqwest::Client,
        requests_per_second: u32,
        shared: Option<SharedRateBudget>,
    ) -> Self {
        crate::metrics::crm_budget(destination, requests_per_second);
        let limiter = RateLimiter::per_second(requests_per_second);
        Self { destination: destination.to_owned(), http, limiter, requests_per_second, shared }
    }

    /// A client that keeps the CRM's cookies in `jar` and never follows a redirect: a session
    /// that ended answers with a redirect to the login page, which followed would look like a 200.
    pub fn with_cookies(
        destination: &str,
        timeout: Duration,
        requests_per_second: u32,
        shared: Option<SharedRateBudget>,
        jar: Arc<CookieStoreMutex>,
    ) -> Self {
        let http = builder(timeout)
            .cookie_provider(jar)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("the HTTP client's settings are valid");
        Self::over(destination, http, requests_per_second, shared)
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
        self.send_with_headers(calls, method, url, bearer, body, HeaderMap::new).await
    }

    /// Like `send`, with headers made by `late_headers` once the budget lets the request go, so a
    /// value read then (a CSRF token the CRM may have just rotated) is the latest.
    ///
    /// The history entry holds the method, the path, the status or error and the duration: never
    /// the query string, the body or a header, which may carry personal data or secrets.
    pub async fn send_with_headers<T: Serialize>(
        &self,
        calls: &mut Vec<HistoryEvent>,
        method: Method,
        url: Url,
        bearer: Option<&str>,
        body: Body<'_, T>,
        late_headers: impl FnOnce() -> HeaderMap,
    ) -> Result<Reply, DeliveryError> {
        let path = url.path().to_owned();
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
        let mut request = self.http.request(method.clone(), url).headers(late_headers());
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        request = match body {
            Body::None => request,
            Body::Json(value) => request.json(value),
            Body::Form(value) => request.form(value),
            Body::Multipart(upload) => request.multipart(upload.form()),
        };
        let started = Instant::now();
        let result = exchange(request).await;
        drop(slot);
        if let Some(shared_slot) = shared_slot {
            tokio::spawn(shared_slot.release(WINDOW));
        }
        let took = started.elapsed();
        let status = result.as_ref().ok().map(|reply| reply.status.as_u16());
        crate::metrics::crm_request(&self.destination, method.as_str(), status, took);
        let duration_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
        let detail = match &result {
            Ok(reply) => serde_json::json!({
                "method": method.as_str(), "path": path, "status": reply.status.as_u16(), "duration_ms": duration_ms,
                "destination": self.destination,
            }),
            Err(error) => serde_json::json!({
                "method": method.as_str(), "path": path, "error": error.to_string(), "duration_ms": duration_ms,
                "destination": self.destination,
            }),
        };
        calls.push(HistoryEvent::now("crm_call", detail));
        result
    }
}

impl Upload {
    fn form(&self) -> reqwest::multipart::Form {
        let length = self.content.len() as u64;
        let part = |content_type: &str| {
            reqwest::multipart::Part::stream_with_length(self.content.clone(), length)
                .file_name(self.file_name.clone())
                .mime_str(content_type)
        };
        // A content type the HTTP library cannot read is no reason to lose the file.
        let file = part(&self.content_type)
            .or_else(|_| part("application/octet-stream"))
            .expect("application/octet-stream is a valid content type");
        let form = self
            .fields
            .iter()
            .fold(reqwest::multipart::Form::new(), |form, (name, value)| form.text(name.clone(), value.clone()));
        form.part(self.file_field.clone(), file)
    }
}

fn builder(timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("leadgate/", env!("CARGO_PKG_VERSION")))
}

async fn exchange(request: reqwest::RequestBuilder) -> Result<Reply, DeliveryError> {
    // The URL stays out of the message: its query may hold a client's e-mail or phone.
    let unavailable = |error: reqwest::Error| {
        let what = if error.is_timeout() {
            "timed out"
        } else if error.is_connect() {
            "connection failed"
        } else {
            "request failed"
        };
        DeliveryError::Unavailable(format!("{what}: {}", error.without_url()))
    };
    let response = request.send().await.map_err(unavailable)?;
    let status = response.status();
    let header = |name| response.headers().get(name).and_then(|value| value.to_str().ok());
    let retry_after = header(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let is_json = header(reqwest::header::CONTENT_TYPE).is_some_and(|value| value.contains("json"));
    let location = header(reqwest::header::LOCATION).map(str::to_owned);
    let bytes = response.bytes().await.map_err(unavailable)?;
    Ok(Reply { status, retry_after, is_json, location, bytes })
}
