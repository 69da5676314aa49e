//! Zadarma's API, each request signed with the account's key and secret: a recording's link (then its audio) and the call-back.

use md5::{Digest, Md5};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

use super::{CallStarted, PbxApiError, RecordingOf, audio, endpoint, refusal, unreachable};
use crate::telephony::zadarma::sign;

const RECORD_PATH: &str = "/v1/pbx/record/request/";
const CALLBACK_PATH: &str = "/v1/request/callback/";
/// PHP's `urlencode`, which Zadarma's signature is computed over: only letters, digits and
/// `-_.` stay; a space becomes `+` (done after encoding).
const PHP_URLENCODE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');

pub(super) struct Credentials<'a> {
    pub url: &'a Url,
    pub key: &'a str,
    pub secret: &'a SecretString,
}

/// Zadarma answers `{"status": "success", …}` or `{"status": "error", "message": …}`.
#[derive(Deserialize)]
struct Answer {
    status: Option<String>,
    message: Option<String>,
    link: Option<String>,
}

/// Asks for a link to the recording (by its `call_id_with_rec`), then fetches the audio from it:
/// the link expires, so it is never handed out.
pub(super) async fn recording(
    http: &reqwest::Client,
    credentials: &Credentials<'_>,
    recording: RecordingOf<'_>,
) -> Result<reqwest::Response, PbxApiError> {
    let answer = get(http, credentials, RECORD_PATH, &[("call_id", recording.recording_id)], "such recording").await?;
    let link = answer.link.ok_or_else(|| PbxApiError::Refused("the answer carries no link".to_owned()))?;
    let link = Url::parse(&link).map_err(|_| PbxApiError::Refused("the recording link is not a URL".to_owned()))?;
    audio(http.get(link).send().await.map_err(|error| unreachable(&error))?).await
}

/// Rings `from` (the extension), then connects `to`.
pub(super) async fn call_back(
    http: &reqwest::Client,
    credentials: &Credentials<'_>,
    extension: &str,
    number: &str,
) -> Result<CallStarted, PbxApiError> {
    get(http, credentials, CALLBACK_PATH, &[("from", extension), ("to", number)], "such extension").await?;
    Ok(CallStarted { pbx_id: None })
}

async fn get(
    http: &reqwest::Client,
    credentials: &Credentials<'_>,
    path: &str,
    params: &[(&str, &str)],
    missing: &str,
) -> Result<Answer, PbxApiError> {
    let query = php_query(params);
    let digest: String = Md5::digest(query.as_bytes()).iter().map(|byte| format!("{byte:02x}")).collect();
    let signature = sign(&format!("{path}{query}{digest}"), credentials.secret);
    let segments: Vec<&str> = path.trim_matches('/').split('/').chain([""]).collect();
    let mut url = endpoint(credentials.url, &segments)?;
    url.set_query(Some(&query));
    let response = http
        .get(url)
        .header(reqwest::header::AUTHORIZATION, format!("{}:{signature}", credentials.key))
        .send()
        .await
        .map_err(|error| unreachable(&error))?;
    let status = response.status();
    let text = response.text().await.map_err(|error| unreachable(&error))?;
    let answer: Option<Answer> = serde_json::from_str(&text).ok();
    let message = answer.as_ref().and_then(|answer| answer.message.clone()).unwrap_or_else(|| text.clone());
    if !status.is_success() {
        return Err(refusal(status, &message, missing));
    }
    match answer {
        Some(answer) if answer.status.as_deref() == Some("success") => Ok(answer),
        _ => Err(PbxApiError::Refused(super::shorten(&message))),
    }
}

/// The parameters sorted by name and joined as PHP's `http_build_query` writes them.
fn php_query(params: &[(&str, &str)]) -> String {
    let mut sorted = params.to_vec();
    sorted.sort_unstable();
    let encode = |text: &str| utf8_percent_encode(text, PHP_URLENCODE).to_string().replace("%20", "+");
    sorted.iter().map(|(name, value)| format!("{}={}", encode(name), encode(value))).collect::<Vec<_>>().join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signed_query_is_sorted_and_encoded_as_php_does() {
        assert_eq!(php_query(&[("to", "+7 916*1"), ("from", "101")]), "from=101&to=%2B7+916%2A1");
    }
}
