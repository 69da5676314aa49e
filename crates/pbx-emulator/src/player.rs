//! Sending a rendered call to a receiver over real HTTP, in order, paced or not, resending failures, noting every answer.

use std::time::Duration;

use serde::Serialize;
use url::Url;

use crate::account::{Provider, ProviderKind};
use crate::render::{PbxRequest, RecordingRef, RenderedCall, random_hex, render};
use crate::script::{CallScript, ScriptError};

/// The part of an answer kept in a report: enough for Zadarma's steering JSON or an error text.
const ANSWER_KEPT: usize = 1_024;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Pacing {
    /// One request right after the other's answer.
    #[default]
    Immediate,
    /// A fixed pause between requests.
    Every(Duration),
    /// The call's own timeline, this many times faster (1 = real time).
    Timeline { speedup: u32 },
}

#[derive(Clone, Debug, PartialEq)]
pub struct PlayOptions {
    pub pacing: Pacing,
    /// A request answered with a non-2xx status, or not answered, goes out again up to this
    /// many times before the player moves on. It never stops the call.
    pub resend_on_failure: u32,
    pub resend_delay: Duration,
    pub timeout: Duration,
    /// Zadarma's `zd_echo` check or Mango's empty request first, as when an account is set up.
    pub check_connection: bool,
}

impl Default for PlayOptions {
    fn default() -> Self {
        PlayOptions {
            pacing: Pacing::Immediate,
            resend_on_failure: 0,
            resend_delay: Duration::from_millis(200),
            timeout: Duration::from_secs(10),
            check_connection: false,
        }
    }
}

/// One attempt at one request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Delivery {
    /// The request's position in the rendered call.
    pub index: usize,
    pub event: String,
    /// 1 for the first send, 2 for the first resend, …
    pub attempt: u32,
    /// `None` when no answer came (connection refused, timeout).
    pub status: Option<u16>,
    pub error: Option<String>,
    /// The start of the answer's body.
    pub answer: String,
}

impl Delivery {
    pub fn accepted(&self) -> bool {
        self.status.is_some_and(|status| (200..300).contains(&status))
    }
}

/// The outcome of the PBX's set-up check of a URL.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConnectionCheck {
    pub passed: bool,
    pub status: Option<u16>,
    pub detail: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct PlayReport {
    pub provider: ProviderKind,
    pub script: String,
    pub call_id: String,
    /// The target without its query string, which may hold a secret.
    pub target: String,
    pub connection_check: Option<ConnectionCheck>,
    pub deliveries: Vec<Delivery>,
    pub recordings: Vec<RecordingRef>,
}

impl PlayReport {
    /// The status of every attempt, in order.
    pub fn statuses(&self) -> Vec<Option<u16>> {
        self.deliveries.iter().map(|delivery| delivery.status).collect()
    }

    /// Every request was finally accepted with a 2xx.
    pub fn all_accepted(&self) -> bool {
        let mut last_by_index = std::collections::BTreeMap::new();
        for delivery in &self.deliveries {
            last_by_index.insert(delivery.index, delivery.accepted());
        }
        last_by_index.values().all(|accepted| *accepted)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PlayError {
    #[error("the call cannot be played")]
    Script(#[from] ScriptError),
    #[error("the HTTP client cannot be built")]
    Client(#[source] reqwest::Error),
}

/// Renders `script` as `provider` and sends it to `target`.
///
/// # Errors
/// Only before the first request: an inconsistent script, or no HTTP client. Refusals and
/// unreachable targets are part of the report.
pub async fn play(
    script: &CallScript,
    provider: &Provider,
    target: &Url,
    options: &PlayOptions,
) -> Result<PlayReport, PlayError> {
    let rendered = render(script, provider)?;
    deliver(&rendered, target, options).await
}

/// Sends an already rendered call.
///
/// # Errors
/// When the HTTP client cannot be built.
pub async fn deliver(rendered: &RenderedCall, target: &Url, options: &PlayOptions) -> Result<PlayReport, PlayError> {
    let client = reqwest::Client::builder().timeout(options.timeout).build().map_err(PlayError::Client)?;
    let connection_check =
        if options.check_connection { check_connection(&client, rendered.provider, target).await } else { None };
    let mut deliveries = Vec::new();
    let mut previous: Option<&PbxRequest> = None;
    for (index, request) in rendered.requests.iter().enumerate() {
        if let Some(previous) = previous {
            pause(options.pacing, previous, request).await;
        }
        previous = Some(request);
        for attempt in 1..=options.resend_on_failure + 1 {
            if attempt > 1 {
                tokio::time::sleep(options.resend_delay).await;
            }
            let delivery = send(&client, request, index, attempt, target).await;
            let accepted = delivery.accepted();
            deliveries.push(delivery);
            if accepted {
                break;
            }
        }
    }
    let mut shown = target.clone();
    shown.set_query(None);
    let _ = shown.set_password(None);
    Ok(PlayReport {
        provider: rendered.provider,
        script: rendered.script.clone(),
        call_id: rendered.call_id.clone(),
        target: shown.to_string(),
        connection_check,
        deliveries,
        recordings: rendered.recordings.clone(),
    })
}

async fn pause(pacing: Pacing, previous: &PbxRequest, next: &PbxRequest) {
    let delay = match pacing {
        Pacing::Immediate => return,
        Pacing::Every(delay) => delay,
        Pacing::Timeline { speedup } => {
            let gap = next.at.duration_since(previous.at).unwrap_or_default();
            gap / speedup.max(1)
        }
    };
    tokio::time::sleep(delay).await;
}

async fn send(client: &reqwest::Client, request: &PbxRequest, index: usize, attempt: u32, target: &Url) -> Delivery {
    let mut builder = client
        .post(request.url(target))
        .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(request.body());
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    let mut delivery =
        Delivery { index, event: request.event.clone(), attempt, status: None, error: None, answer: String::new() };
    match builder.send().await {
        Ok(response) => {
            delivery.status = Some(response.status().as_u16());
            delivery.answer = kept(response.text().await.unwrap_or_default());
        }
        Err(error) => delivery.error = Some(error_chain(&error)),
    }
    delivery
}

/// Zadarma wants `?zd_echo=<value>` echoed; Mango's "check connection" is an empty request that
/// must get 200; Telphin checks nothing.
async fn check_connection(client: &reqwest::Client, provider: ProviderKind, target: &Url) -> Option<ConnectionCheck> {
    let (request, expected) = match provider {
        ProviderKind::Telphin => return None,
        ProviderKind::Zadarma => {
            let value = random_hex(16, false);
            let mut url = target.clone();
            url.query_pairs_mut().append_pair("zd_echo", &value);
            (client.get(url), Some(value))
        }
        ProviderKind::Mango => (client.post(target.clone()), None),
    };
    let check = match request.send().await {
        Err(error) => ConnectionCheck { passed: false, status: None, detail: error_chain(&error) },
        Ok(response) => {
            let status = response.status().as_u16();
            let body = response.text().await.unwrap_or_default();
            let passed = match &expected {
                Some(value) => status == 200 && body == *value,
                None => status == 200,
            };
            let detail = match (&expected, passed) {
                (_, true) => "ok".to_owned(),
                (Some(value), false) => format!("expected 200 with body {value:?}, got {status} with {:?}", kept(body)),
                (None, false) => format!("expected 200, got {status}"),
            };
            ConnectionCheck { passed, status: Some(status), detail }
        }
    };
    Some(check)
}

fn kept(mut text: String) -> String {
    if text.len() > ANSWER_KEPT {
        let mut end = ANSWER_KEPT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
