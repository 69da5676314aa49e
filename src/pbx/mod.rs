//! The PBX's own API, for what its events do not carry: a call's recording when someone plays it, and a call started from here.
//!
//! One client per telephony source with API credentials; each provider's requests are in its
//! own file. Answers are classified once, here, so the HTTP layer maps a `PbxApiError` to a
//! status without knowing which PBX refused.

mod mango;
pub mod recording_link;
mod telphin;
mod zadarma;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;

use crate::config::{PbxApi, SourceConfig, SourceKind};
use crate::domain::{Phone, SourceId};

/// A PBX answers within this or is unavailable; recordings stream after their headers arrive.
const TIMEOUT: Duration = Duration::from_secs(15);
/// How much of a refusal's body is kept for the message.
const MESSAGE_CHARS: usize = 200;

/// Why the PBX's API did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum PbxApiError {
    /// The credentials were refused: someone must fix the source's settings.
    #[error("the PBX refused the API credentials: {0}")]
    Unauthorized(String),
    /// No such recording, or no such extension, at the PBX.
    #[error("the PBX has no {0}")]
    NotFound(String),
    /// The PBX understood and refused (a 4xx, or an error in a 200).
    #[error("the PBX refused the request: {0}")]
    Refused(String),
    /// 5xx, a timeout, or no connection: trying later may work.
    #[error("the PBX is unavailable: {0}")]
    Unavailable(String),
}

/// A call the PBX agreed to start: it rings the extension, then the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallStarted {
    /// The PBX's id of the request, where it gives one.
    pub pbx_id: Option<String>,
}

/// The recording a call is known by at its PBX.
#[derive(Debug, Clone, Copy)]
pub struct RecordingOf<'a> {
    /// The provider's call id (Zadarma can find a recording by it).
    pub call_id: &'a str,
    /// The recording's id from the events (`RecID`, `call_id_with_rec`, `recording_id`).
    pub recording_id: &'a str,
}

/// One telephony source's PBX API.
pub struct PbxClient {
    http: reqwest::Client,
    api: PbxApi,
    /// Telphin's token and extension ids, kept between requests.
    telphin: telphin::Session,
}

/// Each telephony source's client, by source; sources without API credentials have none.
pub type PbxClients = Arc<BTreeMap<SourceId, PbxClient>>;

/// Clients for every telephony source that has API credentials.
pub fn clients(sources: &[SourceConfig]) -> PbxClients {
    let clients = sources.iter().filter_map(|source| match &source.kind {
        SourceKind::Telephony(telephony) => telephony.api.clone().map(|api| (source.id.clone(), PbxClient::new(api))),
        _ => None,
    });
    Arc::new(clients.collect())
}

impl PbxClient {
    pub fn new(api: PbxApi) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(TIMEOUT)
            .read_timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .expect("the HTTP client's settings are valid");
        Self { http, api, telphin: telphin::Session::default() }
    }

    /// The recording's audio as the PBX serves it, ready to be streamed on.
    ///
    /// # Errors
    /// The PBX's refusal or absence, classified.
    pub async fn recording(&self, recording: RecordingOf<'_>) -> Result<reqwest::Response, PbxApiError> {
        match &self.api {
            PbxApi::Telphin { url, client_id, client_secret } => {
                let credentials = telphin::Credentials { url, client_id, client_secret };
                self.telphin.recording(&self.http, &credentials, recording.recording_id).await
            }
            PbxApi::Zadarma { url, key, secret } => {
                zadarma::recording(&self.http, &zadarma::Credentials { url, key, secret }, recording).await
            }
            PbxApi::Mango { url, account } => mango::recording(&self.http, url, account, recording.recording_id).await,
        }
    }

    /// Asks the PBX to ring `extension` and, once it answers, to call `phone`.
    ///
    /// # Errors
    /// The PBX's refusal or absence, classified; an extension the PBX does not have is `NotFound`.
    pub async fn call_back(&self, extension: &str, phone: &Phone) -> Result<CallStarted, PbxApiError> {
        // PBXs write numbers as digits with the country code and no plus, as in their events.
        let number = phone.e164().trim_start_matches('+');
        match &self.api {
            PbxApi::Telphin { url, client_id, client_secret } => {
                let credentials = telphin::Credentials { url, client_id, client_secret };
                self.telphin.call_back(&self.http, &credentials, extension, number).await
            }
            PbxApi::Zadarma { url, key, secret } => {
                zadarma::call_back(&self.http, &zadarma::Credentials { url, key, secret }, extension, number).await
            }
            PbxApi::Mango { url, account } => mango::call_back(&self.http, url, account, extension, number).await,
        }
    }
}

/// `base` with `segments` appended to its path (each one percent-encoded).
fn endpoint(base: &url::Url, segments: &[&str]) -> Result<url::Url, PbxApiError> {
    let mut url = base.clone();
    url.path_segments_mut()
        .map_err(|()| PbxApiError::Refused(format!("{base} cannot take a path")))?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}

/// A network failure: the PBX could not be reached or did not answer in time.
fn unreachable(error: &reqwest::Error) -> PbxApiError {
    let what = if error.is_timeout() { "no answer in time" } else { "no connection" };
    PbxApiError::Unavailable(what.to_owned())
}

/// An answer that is not a success, classified by its status; `detail` is what its body said.
fn refusal(status: StatusCode, detail: &str, missing: &str) -> PbxApiError {
    let detail = shorten(detail);
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => PbxApiError::Unauthorized(format!("{status} {detail}")),
        StatusCode::NOT_FOUND => PbxApiError::NotFound(missing.to_owned()),
        status if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS => {
            PbxApiError::Unavailable(format!("{status} {detail}"))
        }
        status => PbxApiError::Refused(format!("{status} {detail}")),
    }
}

/// The start of a PBX's message, on one line.
fn shorten(detail: &str) -> String {
    let line: String = detail.split_whitespace().collect::<Vec<_>>().join(" ");
    line.chars().take(MESSAGE_CHARS).collect()
}

/// A success whose body is the recording itself, or the PBX's refusal.
async fn audio(response: reqwest::Response) -> Result<reqwest::Response, PbxApiError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let detail = response.text().await.unwrap_or_default();
    Err(refusal(status, &detail, "such recording"))
}
