//! Mango Office's VPBX API, signed like its events: a recording's download and the call-back command.

use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;
use url::Url;

use super::{CallStarted, PbxApiError, audio, endpoint, refusal, unreachable};
use crate::telephony::mango::MangoAccount;

/// Mango's result code for success; any other code in an answer is a refusal.
const SUCCESS: u32 = 1000;

#[derive(Deserialize)]
struct Answer {
    result: Option<u32>,
}

/// The recording's audio (`action: download`), not a link to it: links expire.
pub(super) async fn recording(
    http: &reqwest::Client,
    url: &Url,
    account: &MangoAccount,
    recording_id: &str,
) -> Result<reqwest::Response, PbxApiError> {
    let body = json!({ "recording_id": recording_id, "action": "download" });
    let response = post(http, url, account, &["vpbx", "queries", "recording", "post"], &body).await?;
    let is_json = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if response.status().is_success() && is_json {
        // A refusal may come as `{"result": code}` with 200.
        let text = response.text().await.map_err(|error| unreachable(&error))?;
        return Err(PbxApiError::Refused(describe(&text)));
    }
    if !response.status().is_success() {
        let status = response.status();
        let text = response.text().await.map_err(|error| unreachable(&error))?;
        return Err(refusal(status, &describe(&text), "such recording"));
    }
    audio(response).await
}

/// Rings the extension, then `to_number`.
pub(super) async fn call_back(
    http: &reqwest::Client,
    url: &Url,
    account: &MangoAccount,
    extension: &str,
    number: &str,
) -> Result<CallStarted, PbxApiError> {
    let command_id = format!("leadgate-{:032x}", rand::random::<u128>());
    let body = json!({ "command_id": command_id, "from": { "extension": extension }, "to_number": number });
    let response = post(http, url, account, &["vpbx", "commands", "callback"], &body).await?;
    let status = response.status();
    let text = response.text().await.map_err(|error| unreachable(&error))?;
    let result = serde_json::from_str::<Answer>(&text).ok().and_then(|answer| answer.result);
    if status.is_success() && result == Some(SUCCESS) {
        return Ok(CallStarted { pbx_id: Some(command_id) });
    }
    if status.is_success() {
        return Err(PbxApiError::Refused(describe(&text)));
    }
    Err(refusal(status, &describe(&text), "such extension"))
}

async fn post(
    http: &reqwest::Client,
    url: &Url,
    account: &MangoAccount,
    segments: &[&str],
    body: &serde_json::Value,
) -> Result<reqwest::Response, PbxApiError> {
    // The signature covers the `json` string exactly as sent.
    let json = body.to_string();
    let form = [("vpbx_api_key", account.api_key.expose_secret()), ("sign", &account.sign(&json)), ("json", &json)];
    http.post(endpoint(url, segments)?).form(&form).send().await.map_err(|error| unreachable(&error))
}

/// Mango's answer as a message: its result code when it sent one.
fn describe(text: &str) -> String {
    match serde_json::from_str::<Answer>(text).ok().and_then(|answer| answer.result) {
        Some(code) => format!("result code {code}"),
        None => super::shorten(text),
    }
}
