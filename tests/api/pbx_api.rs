//! What leadgate asks of the PBX's own API, per provider, against the PBX emulator over real HTTP:
//! recordings played through leadgate's signed link, calls started from `POST /api/v1/calls`,
//! and the live feed of calls in progress at `GET /api/v1/calls/live`.

use std::time::Duration;

use amocrm_emulator::SeedContact;
use futures::StreamExt;
use leadgate::domain::{LeadStatus, SourceId};
use leadgate::store::Store;
use pbx_emulator::{PbxConfig, PlayOptions, ProviderKind, RenderedCall, RunningPbx, Scenario, render};
use serde_json::{Value, json};

use crate::conformance::{open_store, settled};
use crate::helpers::{PIPELINE, STAGE, TestProcess, free_port, poll_until, spawn_emulator};

const TELPHIN_KEY: &str = "telphin-url-secret-0123456789";
const ADMIN_TOKEN: &str = "admin-token-for-pbx-api-0123";
const KNOWN_NAME: &str = "Известный клиент";

/// The source's API settings, pointing at `pbx_url`, with the right credentials or a wrong one.
fn access(kind: ProviderKind, pbx_url: &str, wrong_secret: bool) -> String {
    match kind {
        ProviderKind::Telphin => {
            let secret = if wrong_secret { "not-the-secret" } else { "sandbox-telphin-secret" };
            format!(
                "provider = \"telphin\"\nkey = \"{TELPHIN_KEY}\"\napi_url = \"{pbx_url}\"\n\
                 client_id = \"sandbox-telphin-app\"\nclient_secret = \"{secret}\"\n"
            )
        }
        ProviderKind::Zadarma => {
            let key = if wrong_secret { "not-the-key" } else { "sandbox-zadarma-key" };
            format!(
                "provider = \"zadarma\"\nsecret = \"sandbox-zadarma-secret\"\napi_url = \"{pbx_url}\"\n\
                 api_key = \"{key}\"\n"
            )
        }
        ProviderKind::Mango => {
            let salt = if wrong_secret { "not-the-salt" } else { "sandbox-mango-salt" };
            format!(
                "provider = \"mango\"\napi_key = \"sandbox-mango-key\"\napi_salt = \"{salt}\"\napi_url = \"{pbx_url}\"\n"
            )
        }
    }
}

fn config(crm_url: &str, kind: ProviderKind, pbx_url: &str, wrong_secret: bool) -> String {
    format!(
        "[admin]\ntoken = \"{ADMIN_TOKEN}\"\nmetrics_token = \"{ADMIN_TOKEN}-metrics\"\n\
         [worker]\ninterval = \"100ms\"\nlease = \"2s\"\nretry_initial = \"200ms\"\nretry_max = \"1s\"\n\
         [destinations.main]\nkind = \"amocrm\"\nbase_url = \"{crm_url}\"\naccess_token = \"sandbox-long-lived-token\"\n\
         requests_per_second = 100\n\
         [sources.pbx]\nkind = \"telephony\"\n{}destination = \"main\"\npipeline = \"{PIPELINE}\"\nstatus = \"{STAGE}\"\n\
         users = {{ \"101\" = \"Анна Смирнова\", \"108\" = \"Анна Смирнова\" }}\nincoming_unknown = \"contact\"\nfinish_after = \"1s\"\n",
        access(kind, pbx_url, wrong_secret)
    )
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Api {
    Working,
    WrongSecret,
    /// Nothing listens at the configured API address.
    Unreachable,
}

struct Run {
    _crm: amocrm_emulator::RunningEmulator,
    pbx: RunningPbx,
    crm: amocrm_emulator::Emulator,
    _gateway: TestProcess,
    _dir: tempfile::TempDir,
    store: Store,
    base: String,
    kind: ProviderKind,
    http: reqwest::Client,
}

impl Run {
    async fn start(kind: ProviderKind) -> Self {
        Self::start_with(kind, Api::Working).await
    }

    async fn start_with(kind: ProviderKind, api: Api) -> Self {
        let crm = spawn_emulator(200).await;
        let seed = SeedContact {
            name: KNOWN_NAME.to_owned(),
            phones: vec![format!("+{}", pbx_emulator::KNOWN_CLIENT)],
            emails: Vec::new(),
            leads: Vec::new(),
        };
        crm.emulator.seed_contact(&seed).unwrap();
        let pbx = pbx_emulator::spawn(PbxConfig::sandbox(kind)).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let pbx_url = match api {
            Api::Unreachable => format!("http://127.0.0.1:{}", free_port()),
            Api::Working | Api::WrongSecret => pbx.base_url(),
        };
        let wrong_secret = api == Api::WrongSecret;
        let gateway = TestProcess::serve(dir.path(), &config(&crm.base_url(), kind, &pbx_url, wrong_secret)).await;
        let store = open_store(dir.path()).await;
        let base = format!("http://{}", gateway.address);
        let emulator = crm.emulator.clone();
        Self {
            _crm: crm,
            pbx,
            crm: emulator,
            _gateway: gateway,
            _dir: dir,
            store,
            base,
            kind,
            http: reqwest::Client::new(),
        }
    }

    fn target(&self) -> url::Url {
        let url = match self.kind {
            ProviderKind::Telphin => format!("{}/telephony/pbx/{TELPHIN_KEY}", self.base),
            ProviderKind::Zadarma | ProviderKind::Mango => format!("{}/telephony/pbx", self.base),
        };
        url.parse().unwrap()
    }

    /// Plays the scenario as the PBX emulator, which then serves the call's recordings.
    async fn play(&self, scenario: &str) -> String {
        let script = Scenario::find(scenario).unwrap().script();
        let report = self.pbx.pbx.play(&script, &self.target(), &PlayOptions::default()).await.unwrap();
        assert!(report.all_accepted(), "{scenario}: {report:?}");
        report.call_id.clone()
    }

    async fn settled(&self, call_id: &str) -> leadgate::domain::Lead {
        let source = SourceId("pbx".to_owned());
        let made = || async { self.store.lead_of_call(&source, call_id).await.unwrap().is_some() };
        assert!(poll_until(Duration::from_secs(20), made).await, "call {call_id} became no lead");
        let id = self.store.lead_of_call(&source, call_id).await.unwrap().unwrap();
        settled(&self.store, id.0, &[LeadStatus::Approved]).await
    }

    async fn start_call(&self, body: Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}/api/v1/calls", self.base))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

async fn a_recorded_call_s_note_links_to_leadgate_which_fetches_the_recording_from_the_pbx(kind: ProviderKind) {
    let run = Run::start(kind).await;
    let call_id = run.play("incoming-known-answered").await;
    run.settled(&call_id).await;
    let notes: Vec<_> = run.crm.notes().into_iter().filter(|note| note.params["uniq"] == call_id.as_str()).collect();
    assert_eq!(notes.len(), 1, "{kind}: one note for the call");
    let link = notes[0].params["link"].as_str().unwrap_or_else(|| panic!("{kind}: no link in {:?}", notes[0].params));
    assert!(link.starts_with(&format!("{}/calls/", run.base)), "{kind}: the link points at leadgate: {link}");
    assert!(link.contains("/recording?sig="), "{kind}: {link}");

    // Played twice: each play asks the PBX again, so an expired PBX link never shows.
    for play in 1..=2 {
        let response = run.http.get(link).send().await.unwrap();
        assert_eq!(response.status(), 200, "{kind}: play {play}");
        assert_eq!(response.headers()["content-type"], "audio/mpeg", "{kind}");
        let audio = response.bytes().await.unwrap();
        assert_eq!(&audio[..2], &[0xFF, 0xFB], "{kind}: an MP3 frame starts the body");
    }
    let metrics = run.http.get(format!("{}/metrics", run.base)).bearer_auth(format!("{ADMIN_TOKEN}-metrics"));
    let metrics = metrics.send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("leadgate_calls_total{source=\"pbx\",result=\"logged\"} 1"), "{kind}: {metrics}");
    assert!(metrics.contains("leadgate_telephony_events_total{source=\"pbx\"}"), "{kind}: {metrics}");
    let served = run.pbx.pbx.served_recordings();
    assert!(served.len() >= 2, "{kind}: the PBX served each play: {served:?}");

    let tampered = link.replace("sig=", "sig=0");
    assert_eq!(run.http.get(&tampered).send().await.unwrap().status(), 404, "{kind}: a forged link finds nothing");
    let other_call = link.replacen("/calls/", "/calls/9", 1);
    assert_eq!(run.http.get(&other_call).send().await.unwrap().status(), 404, "{kind}: a link opens its own call only");
}

#[tokio::test]
async fn telphin_recordings_play_through_leadgate() {
    a_recorded_call_s_note_links_to_leadgate_which_fetches_the_recording_from_the_pbx(ProviderKind::Telphin).await;
}

#[tokio::test]
async fn zadarma_recordings_play_through_leadgate() {
    a_recorded_call_s_note_links_to_leadgate_which_fetches_the_recording_from_the_pbx(ProviderKind::Zadarma).await;
}

#[tokio::test]
async fn mango_recordings_play_through_leadgate() {
    a_recorded_call_s_note_links_to_leadgate_which_fetches_the_recording_from_the_pbx(ProviderKind::Mango).await;
}

#[tokio::test]
async fn a_call_without_a_recording_gets_no_link() {
    let run = Run::start(ProviderKind::Telphin).await;
    let call_id = run.play("incoming-known-missed").await;
    run.settled(&call_id).await;
    let notes: Vec<_> = run.crm.notes().into_iter().filter(|note| note.params["uniq"] == call_id.as_str()).collect();
    assert_eq!(notes.len(), 1);
    assert!(notes[0].params.get("link").is_none_or(Value::is_null), "{:?}", notes[0].params);
}

async fn a_call_started_from_leadgate_rings_the_extension_then_the_client(kind: ProviderKind) {
    let run = Run::start(kind).await;
    let (status, body) = run.start_call(json!({ "extension": "101", "phone": "8 (916) 123-45-67" })).await;
    assert_eq!(status, 202, "{kind}: {body}");
    assert_eq!(body["phone"], "+79161234567", "{kind}");
    let callbacks = run.pbx.pbx.callbacks();
    assert_eq!(callbacks.len(), 1, "{kind}: {callbacks:?}");
    assert_eq!(callbacks[0].destination, "79161234567", "{kind}: the client's number as the PBX writes numbers");
    assert!(
        callbacks[0].sources.iter().any(|source| source.ends_with("101")),
        "{kind}: extension 101 rings first: {callbacks:?}"
    );
    if kind == ProviderKind::Telphin {
        assert_eq!(callbacks[0].extension, "469101", "the extension's id from the account's extension list");
        // A token Telphin ended early is renewed once, unseen by the caller.
        run.pbx.pbx.expire_tokens();
        let (status, body) = run.start_call(json!({ "extension": "101", "phone": "+79161234567" })).await;
        assert_eq!(status, 202, "{body}");
        assert_eq!(run.pbx.pbx.tokens_issued(), 2);
    }
}

#[tokio::test]
async fn telphin_call_back() {
    a_call_started_from_leadgate_rings_the_extension_then_the_client(ProviderKind::Telphin).await;
}

#[tokio::test]
async fn zadarma_call_back() {
    a_call_started_from_leadgate_rings_the_extension_then_the_client(ProviderKind::Zadarma).await;
}

#[tokio::test]
async fn mango_call_back() {
    a_call_started_from_leadgate_rings_the_extension_then_the_client(ProviderKind::Mango).await;
}

#[tokio::test]
async fn a_call_back_that_cannot_be_made_says_why() {
    let run = Run::start(ProviderKind::Telphin).await;
    let refusals = [
        (json!({ "extension": "109", "phone": "+79161234567" }), 400, "sources.pbx.users"),
        (json!({ "extension": "108", "phone": "+79161234567" }), 404, "extension 108"),
        (json!({ "extension": "101", "phone": "12" }), 400, "phone"),
        (json!({ "extension": "1a", "phone": "+79161234567" }), 400, "extension"),
        (json!({ "extension": "101", "phone": "+79161234567", "source": "nope" }), 404, "источника"),
        (json!({ "extension": "101" }), 422, "phone"),
    ];
    for (body, status, named) in refusals {
        let (got, answer) = run.start_call(body.clone()).await;
        assert_eq!(got, status, "{body}: {answer}");
        assert!(answer["error"].as_str().unwrap_or_default().contains(named), "{body}: {answer}");
    }
    let anonymous = run.http.post(format!("{}/api/v1/calls", run.base)).json(&json!({})).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert!(run.pbx.pbx.callbacks().is_empty(), "nothing reached the PBX");

    let pbx_down = Run::start_with(ProviderKind::Telphin, Api::Unreachable).await;
    let (status, answer) = pbx_down.start_call(json!({ "extension": "101", "phone": "+79161234567" })).await;
    assert_eq!(status, 504, "a PBX that does not answer: {answer}");
    assert!(answer["error"].as_str().unwrap().contains("unavailable"), "{answer}");
}

#[tokio::test]
async fn refused_credentials_are_named_for_every_provider() {
    for kind in ProviderKind::ALL {
        let run = Run::start_with(kind, Api::WrongSecret).await;
        let (status, answer) = run.start_call(json!({ "extension": "101", "phone": "+79161234567" })).await;
        assert_eq!(status, 502, "{kind}: {answer}");
        let message = answer["error"].as_str().unwrap();
        assert!(message.contains("credentials") || message.contains("refused"), "{kind}: {message}");
        assert!(!message.contains("not-the-"), "{kind}: no secret in the message: {message}");
        assert!(run.pbx.pbx.callbacks().is_empty(), "{kind}");
    }
}

/// One Server-Sent Event: its name and its data as JSON.
struct SseReader {
    stream: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: String,
}

impl SseReader {
    async fn open(run: &Run) -> Self {
        let response =
            run.http.get(format!("{}/api/v1/calls/live", run.base)).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Self { stream: response.bytes_stream().boxed(), buffer: String::new() }
    }

    /// The next event for which `wanted` holds, within 20 s.
    async fn until(&mut self, wanted: impl Fn(&str, &Value) -> bool) -> (String, Value) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let field = |name: &str| {
                    block.lines().find_map(|line| line.strip_prefix(name)).map(|value| value.trim().to_owned())
                };
                let (Some(event), Some(data)) = (field("event:"), field("data:")) else { continue };
                let data: Value = serde_json::from_str(&data).unwrap();
                if wanted(&event, &data) {
                    return (event, data);
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.stream.next()).await;
            let chunk = chunk.expect("the awaited event came in time").expect("the stream is open").unwrap();
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

async fn the_live_feed_shows_a_ringing_call_with_its_caller_then_its_end(kind: ProviderKind) {
    let run = Run::start(kind).await;
    let mut live = SseReader::open(&run).await;
    let script = Scenario::find("incoming-known-answered").unwrap().script();
    let rendered = render(&script, run.pbx.pbx.provider()).unwrap();
    // Until 101 rings (after 5 s in the IVR), before it answers (12 s later).
    let first = rendered.requests[0].at;
    let ringing_until = first + Duration::from_secs(10);
    let (before, after): (Vec<_>, Vec<_>) =
        rendered.requests.iter().cloned().partition(|request| request.at <= ringing_until);
    let part = |requests: Vec<pbx_emulator::PbxRequest>| RenderedCall { requests, ..rendered.clone() };
    let options = PlayOptions::default();
    assert!(pbx_emulator::deliver(&part(before), &run.target(), &options).await.unwrap().all_accepted());

    let is_this_call = |data: &Value| data["call_id"] == rendered.call_id.as_str();
    let (_, card) = live
        .until(|event, data| {
            event == "call"
                && is_this_call(data)
                && data["ringing"] == json!(["101"])
                && data["caller"]["state"] == "known"
        })
        .await;
    assert_eq!(card["phone"], format!("+{}", pbx_emulator::KNOWN_CLIENT), "{kind}");
    assert_eq!(card["direction"], "incoming", "{kind}");
    assert_eq!(card["caller"]["contact"]["name"], KNOWN_NAME, "{kind}");
    let contact_url = card["caller"]["contact"]["url"].as_str().unwrap();
    assert!(contact_url.contains("/contacts/detail/"), "{kind}: {contact_url}");

    assert!(pbx_emulator::deliver(&part(after), &run.target(), &options).await.unwrap().all_accepted());
    let id = card["id"].clone();
    live.until(|event, data| event == "ended" && data["id"] == id).await;
}

#[tokio::test]
async fn telphin_live_feed() {
    the_live_feed_shows_a_ringing_call_with_its_caller_then_its_end(ProviderKind::Telphin).await;
}

#[tokio::test]
async fn zadarma_live_feed() {
    the_live_feed_shows_a_ringing_call_with_its_caller_then_its_end(ProviderKind::Zadarma).await;
}

#[tokio::test]
async fn mango_live_feed() {
    the_live_feed_shows_a_ringing_call_with_its_caller_then_its_end(ProviderKind::Mango).await;
}

#[tokio::test]
async fn the_live_feed_needs_the_admin_token() {
    let run = Run::start(ProviderKind::Telphin).await;
    let anonymous = run.http.get(format!("{}/api/v1/calls/live", run.base)).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
}
