//! Telphin's API: a client-credentials token, the extension list (the call-back takes an extension's id), the call-back command, and a recording's mp3.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::Mutex;
use url::Url;

use super::{CallStarted, PbxApiError, audio, endpoint, refusal, unreachable};

/// A token is renewed this long before Telphin says it expires, as its Go SDK does.
const RENEW_BEFORE: Duration = Duration::from_secs(60);

pub(super) struct Credentials<'a> {
    pub url: &'a Url,
    pub client_id: &'a str,
    pub client_secret: &'a SecretString,
}

/// What is kept between requests: the token, and extension ids by extension number.
#[derive(Default)]
pub(super) struct Session {
    token: Mutex<Option<Token>>,
    extensions: Mutex<HashMap<String, Extension>>,
}

struct Token {
    value: SecretString,
    renew_at: Instant,
}

#[derive(Debug, Clone, Deserialize)]
struct Extension {
    id: u64,
    /// `prefix*number` (maybe with `@domain`): the number leadgate knows the extension by
    /// follows the star.
    name: String,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct CallbackAnswer {
    call_api_id: Option<String>,
}

/// A request the session signs with its token; built again when the token is renewed.
enum Request<'a> {
    Get(Url),
    PostJson(Url, &'a serde_json::Value),
}

impl Session {
    pub(super) async fn recording(
        &self,
        http: &reqwest::Client,
        credentials: &Credentials<'_>,
        recording_id: &str,
    ) -> Result<reqwest::Response, PbxApiError> {
        let url = api_url(credentials.url, &["client", "@me", "record", recording_id])?;
        audio(self.send(http, credentials, &Request::Get(url)).await?).await
    }

    pub(super) async fn call_back(
        &self,
        http: &reqwest::Client,
        credentials: &Credentials<'_>,
        extension: &str,
        number: &str,
    ) -> Result<CallStarted, PbxApiError> {
        let found = self.extension(http, credentials, extension).await?;
        let url = api_url(credentials.url, &["extension", &found.id.to_string(), "callback", ""])?;
        // The extension is rung first (`src_num`), then the client (`dst_num`).
        let body = json!({ "src_num": [found.name], "dst_num": number });
        let response = self.send(http, credentials, &Request::PostJson(url, &body)).await?;
        let status = response.status();
        let text = response.text().await.map_err(|error| unreachable(&error))?;
        if !status.is_success() {
            return Err(refusal(status, &text, &format!("extension {extension}")));
        }
        let answer: CallbackAnswer = serde_json::from_str(&text).unwrap_or(CallbackAnswer { call_api_id: None });
        Ok(CallStarted { pbx_id: answer.call_api_id })
    }

    /// The extension whose name ends in `*number` (or is `number`), from the account's list,
    /// which is fetched again when a number is not in it: extensions are added in the PBX.
    async fn extension(
        &self,
        http: &reqwest::Client,
        credentials: &Credentials<'_>,
        number: &str,
    ) -> Result<Extension, PbxApiError> {
        if let Some(known) = self.extensions.lock().await.get(number) {
            return Ok(known.clone());
        }
        let url = api_url(credentials.url, &["client", "@me", "extension", ""])?;
        let response = self.send(http, credentials, &Request::Get(url)).await?;
        let status = response.status();
        let text = response.text().await.map_err(|error| unreachable(&error))?;
        if !status.is_success() {
            return Err(refusal(status, &text, "extension list"));
        }
        let listed: Vec<Extension> = serde_json::from_str(&text)
            .map_err(|_| PbxApiError::Refused("the extension list is not a JSON list of {id, name}".to_owned()))?;
        let mut extensions = self.extensions.lock().await;
        for extension in listed {
            let without_domain = extension.name.split('@').next().unwrap_or_default();
            let short = without_domain.rsplit_once('*').map_or(without_domain, |(_, short)| short).to_owned();
            extensions.insert(short, extension);
        }
        extensions.get(number).cloned().ok_or_else(|| PbxApiError::NotFound(format!("extension {number}")))
    }

    /// Sends with the current token; a 401 renews the token and sends once more, since Telphin
    /// may end a token before the time it announced.
    async fn send(
        &self,
        http: &reqwest::Client,
        credentials: &Credentials<'_>,
        request: &Request<'_>,
    ) -> Result<reqwest::Response, PbxApiError> {
        let mut renewed = false;
        loop {
            let token = self.token(http, credentials, renewed).await?;
            let builder = match request {
                Request::Get(url) => http.get(url.clone()),
                Request::PostJson(url, body) => http.post(url.clone()).json(body),
            };
            let response =
                builder.bearer_auth(token.expose_secret()).send().await.map_err(|error| unreachable(&error))?;
            if response.status() == StatusCode::UNAUTHORIZED && !renewed {
                renewed = true;
                continue;
            }
            return Ok(response);
        }
    }

    async fn token(
        &self,
        http: &reqwest::Client,
        credentials: &Credentials<'_>,
        renew: bool,
    ) -> Result<SecretString, PbxApiError> {
        let mut token = self.token.lock().await;
        if let Some(current) = token.as_ref().filter(|current| !renew && Instant::now() < current.renew_at) {
            return Ok(current.value.clone());
        }
        let url = endpoint(credentials.url, &["oauth", "token"])?;
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", credentials.client_id),
            ("client_secret", credentials.client_secret.expose_secret()),
        ];
        let response = http.post(url).form(&form).send().await.map_err(|error| unreachable(&error))?;
        let status = response.status();
        let text = response.text().await.map_err(|error| unreachable(&error))?;
        if !status.is_success() {
            // The token endpoint answers a wrong client with 400 or 401: both are the credentials.
            let refused = refusal(status, &text, "token endpoint");
            return Err(match refused {
                PbxApiError::Refused(detail) => PbxApiError::Unauthorized(detail),
                other => other,
            });
        }
        let answer: TokenAnswer = serde_json::from_str(&text)
            .map_err(|_| PbxApiError::Refused("the token answer has no access_token".to_owned()))?;
        let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(3600));
        let value = SecretString::from(answer.access_token);
        *token = Some(Token { value: value.clone(), renew_at: Instant::now() + lifetime.saturating_sub(RENEW_BEFORE) });
        Ok(value)
    }
}

/// `{url}/api/ver1.0/{segments…}`; an empty last segment gives the trailing slash Telphin's paths have.
fn api_url(base: &Url, segments: &[&str]) -> Result<Url, PbxApiError> {
    endpoint(base, &[&["api", "ver1.0"], segments].concat())
}
