//! A receiver standing in for leadgate (it logs every request and checks signatures with formulas written here, not the crate's), and playing helpers.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use pbx_emulator::{CallScript, PlayOptions, PlayReport, Provider, ProviderKind, Scenario};
use serde_json::Value;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use url::Url;

pub const ZADARMA_SECRET: &str = "sandbox-zadarma-secret";
pub const ZADARMA_KEY: &str = "sandbox-zadarma-key";
pub const MANGO_KEY: &str = "sandbox-mango-key";
pub const MANGO_SALT: &str = "sandbox-mango-salt";

/// One request as the receiver saw it.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub form: Vec<(String, String)>,
    /// Whether the signature matched, for the providers that sign.
    pub signature_ok: Option<bool>,
}

impl Received {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }

    /// A field every event of this kind must carry.
    pub fn get(&self, name: &str) -> &str {
        self.field(name).unwrap_or_else(|| panic!("{name} missing from {:?}", self.form))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }

    /// Mango's `json` field, parsed.
    pub fn json(&self) -> Value {
        serde_json::from_str(self.get("json")).expect("the json field is JSON")
    }
}

/// How the receiver checks what it gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verify {
    Nothing,
    Zadarma,
    Mango,
}

impl Verify {
    pub fn for_provider(kind: ProviderKind) -> Self {
        match kind {
            ProviderKind::Telphin => Verify::Nothing,
            ProviderKind::Zadarma => Verify::Zadarma,
            ProviderKind::Mango => Verify::Mango,
        }
    }
}

#[derive(Default)]
struct ReceiverState {
    received: Vec<Received>,
    /// Statuses to answer the next requests with, first first.
    failures: Vec<u16>,
    /// Answer `?zd_echo=` with its value, as a Zadarma receiver must.
    echo: bool,
}

pub struct Receiver {
    pub addr: SocketAddr,
    state: Arc<Mutex<ReceiverState>>,
}

impl Receiver {
    pub async fn spawn(verify: Verify) -> Receiver {
        let state = Arc::new(Mutex::new(ReceiverState { echo: true, ..ReceiverState::default() }));
        let router = Router::new().fallback(receive).with_state((state.clone(), verify));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Receiver { addr, state }
    }

    /// `http://127.0.0.1:PORT{path_and_query}`.
    pub fn url(&self, path_and_query: &str) -> Url {
        Url::parse(&format!("http://{}{path_and_query}", self.addr)).unwrap()
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    /// The next requests get these statuses, one each.
    pub fn fail_next(&self, statuses: &[u16]) {
        self.state.lock().unwrap().failures = statuses.to_vec();
    }

    pub fn stop_echoing(&self) {
        self.state.lock().unwrap().echo = false;
    }
}

type Shared = (Arc<Mutex<ReceiverState>>, Verify);

async fn receive(
    State((state, verify)): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query: Vec<(String, String)> = url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect();
    let body = String::from_utf8_lossy(&body).into_owned();
    let form: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes())
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect();
    let headers: Vec<(String, String)> =
        headers.iter().map(|(name, value)| (name.to_string(), value.to_str().unwrap_or_default().to_owned())).collect();
    let mut received = Received {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query,
        headers,
        body,
        form,
        signature_ok: None,
    };
    received.signature_ok = check_signature(verify, &received);
    let mut state = state.lock().unwrap();
    let echo = received.query.iter().find(|(key, _)| key == "zd_echo").map(|(_, value)| value.clone());
    state.received.push(received);
    if !state.failures.is_empty() {
        let status = state.failures.remove(0);
        return StatusCode::from_u16(status).unwrap().into_response();
    }
    match echo {
        Some(value) if state.echo => value.into_response(),
        _ => StatusCode::OK.into_response(),
    }
}

fn check_signature(verify: Verify, received: &Received) -> Option<bool> {
    if received.method != "POST" || received.form.is_empty() {
        return None;
    }
    match verify {
        Verify::Nothing => None,
        Verify::Zadarma => {
            let fields = zadarma_concat(received.field("event").unwrap_or_default());
            let text: String = fields.iter().map(|name| received.field(name).unwrap_or_default()).collect();
            Some(received.header("Signature") == Some(zadarma_signature(ZADARMA_SECRET, &text).as_str()))
        }
        Verify::Mango => {
            let expected = mango_sign(MANGO_KEY, received.field("json").unwrap_or_default(), MANGO_SALT);
            Some(received.field("vpbx_api_key") == Some(MANGO_KEY) && received.field("sign") == Some(expected.as_str()))
        }
    }
}

/// The documented concatenation per Zadarma event (facts §2.2).
pub fn zadarma_concat(event: &str) -> &'static [&'static str] {
    match event {
        "NOTIFY_START" | "NOTIFY_INTERNAL" | "NOTIFY_END" => &["caller_id", "called_did", "call_start"],
        "NOTIFY_ANSWER" => &["caller_id", "destination", "call_start"],
        "NOTIFY_OUT_START" | "NOTIFY_OUT_END" => &["internal", "destination", "call_start"],
        "NOTIFY_RECORD" => &["pbx_call_id", "call_id_with_rec"],
        other => panic!("no signature rule for {other}"),
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

pub fn hmac_sha1_hex(secret: &str, text: &str) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(text.as_bytes());
    hex(&mac.finalize().into_bytes())
}

/// `base64(lowercase-hex(HMAC-SHA1(secret, text)))`.
pub fn zadarma_signature(secret: &str, text: &str) -> String {
    STANDARD.encode(hmac_sha1_hex(secret, text))
}

/// `lowercase-hex(sha256(key + json + salt))`.
pub fn mango_sign(key: &str, json: &str, salt: &str) -> String {
    hex(&Sha256::digest(format!("{key}{json}{salt}").as_bytes()))
}

/// The `Authorization` header of a Zadarma API request, for parameters that need no escaping.
pub fn zadarma_authorization(path: &str, params: &[(&str, &str)]) -> String {
    let mut sorted = params.to_vec();
    sorted.sort();
    let query: String = sorted.iter().map(|(key, value)| format!("{key}={value}")).collect::<Vec<_>>().join("&");
    let md5 = hex(&md5::Md5::digest(query.as_bytes()));
    format!("{ZADARMA_KEY}:{}", zadarma_signature(ZADARMA_SECRET, &format!("{path}{query}{md5}")))
}

/// Plays `script` as the sandbox account of `kind` to a fresh receiver at `/hook?secret=s`.
pub async fn play_to_receiver(kind: ProviderKind, script: &CallScript) -> (Vec<Received>, PlayReport) {
    play_with(kind, script, &PlayOptions::default()).await
}

pub async fn play_with(kind: ProviderKind, script: &CallScript, options: &PlayOptions) -> (Vec<Received>, PlayReport) {
    let receiver = Receiver::spawn(Verify::for_provider(kind)).await;
    let report = pbx_emulator::play(script, &Provider::sandbox(kind), &receiver.url("/hook?secret=s"), options)
        .await
        .expect("the script plays");
    (receiver.received(), report)
}

pub fn scenario(name: &str) -> CallScript {
    Scenario::find(name).unwrap_or_else(|| panic!("no scenario {name}")).script()
}

/// Every request carried a signature that the receiver's own formula reproduces.
pub fn assert_all_signed(received: &[Received]) {
    for request in received {
        assert_eq!(request.signature_ok, Some(true), "bad signature on {:?}", request.form);
    }
}

#[test]
fn the_receivers_hmac_matches_the_published_rfc_2202_style_vector() {
    // Wikipedia's HMAC-SHA1 example: key "key", the quick brown fox.
    let digest = hmac_sha1_hex("key", "The quick brown fox jumps over the lazy dog");
    assert_eq!(digest, "de7c9b85b8b78aa6bc8a7a36f70a90701c9db4d9");
    assert_eq!(mango_sign("", "abc", ""), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}
