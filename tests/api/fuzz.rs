//! The fuzz suite: generated hostile requests to every intake endpoint of the real binary, one at
//! a time, while a steady sender posts valid leads beside them. After each request it checks that
//! nothing answered 5xx, that a 2xx lead is stored exactly once, and that a refusal stored nothing;
//! at the end, that no file is left that no accepted lead brought, that the valid sender never
//! failed, and that the gateway's memory stayed bounded.
//!
//! `FUZZ_CASES` sets the number of requests (default 400, about half a minute per store);
//! a long run is e.g. `FUZZ_CASES=30000 cargo test --test api fuzz -- --nocapture`.
//! A failure prints the smallest request proptest could shrink it to.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reqwest::Method;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{PROXY_KEY, SOURCE_KEY, ZAP_SECRET};
use crate::hostile::{Gateway, STEADY_KEY};

/// One generated request.
#[derive(Clone)]
struct Probe {
    method: Method,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Body,
}

/// Shown shortened: a shrunk failing request may still carry values of hundreds of kilobytes.
impl std::fmt::Debug for Probe {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let full = format!("{} {} {:?} {:?}", self.method, self.path, self.headers, self.body);
        let shown: String = full.chars().take(3000).collect();
        write!(formatter, "{shown}{}", if shown.len() < full.len() { " …" } else { "" })
    }
}

#[derive(Debug, Clone)]
enum Body {
    Empty,
    Bytes { content_type: Option<&'static str>, bytes: Vec<u8> },
    Multipart { fields: Vec<(String, String)>, files: Vec<(String, Vec<u8>)> },
}

/// Text as senders and attackers write it: anything Unicode, control characters, huge values,
/// template bombs, injection and traversal strings, and plausible phones.
fn hostile_text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => any::<String>(),
        3 => "[\\x00-\\x1f\\x7f a-zA-Zа-яё0-9{}%&=+\\[\\]\"'<>\\\\]{0,40}",
        1 => (1usize..=300).prop_map(|kib| "Ы".repeat(kib * 512)),
        1 => (1usize..=60_000).prop_map(|repeats| "{name}{utmSource}".repeat(repeats)),
        2 => prop::sample::select(vec![
            "'; drop table leads; --",
            "../../../../etc/passwd",
            "..\\..\\windows\\win.ini",
            "%00%ff%c0%af",
            "\u{202e}gpj.exe",
            "<script>alert(1)</script>",
            "{{7*7}}${7*7}",
            "\u{feff}\u{200b}",
            "\"quoted\"@[127.0.0.1]",
            "=?utf-8?q?x?=@b.ru",
            "",
            "   ",
            "null",
            "1e309",
            "-0",
            "99999999999999999999999999",
        ])
        .prop_map(str::to_owned),
        3 => "\\+?[0-9 ()-]{0,18}",
    ]
}

fn hostile_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("JSON has no NaN", |number| number.is_finite()).prop_map(|number| json!(number)),
        hostile_text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(hostile_text(), inner, 0..5)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

/// An object with the channel's known fields (each absent, hostile or plausible) and extras.
fn lead_object(known: &'static [&'static str]) -> impl Strategy<Value = Value> {
    let values = prop::collection::vec(prop::option::of(hostile_json()), known.len());
    let extras = prop::collection::btree_map(hostile_text(), hostile_json(), 0..3);
    (values, extras, "[0-9]{7}").prop_map(move |(values, extras, digits)| {
        let mut object: Map<String, Value> = extras.into_iter().collect();
        for (name, value) in known.iter().zip(values) {
            if let Some(value) = value {
                object.insert((*name).to_owned(), value);
            }
        }
        // Half the leads carry a valid phone, so the checks behind the phone's are reached too.
        if digits.ends_with(['0', '2', '4', '6', '8']) {
            object.insert("phone".to_owned(), json!(format!("+7999{digits}")));
        }
        Value::Object(object)
    })
}

/// A JSON body, or bytes that only claim to be one.
fn json_body(known: &'static [&'static str]) -> impl Strategy<Value = Body> {
    let json = |bytes| Body::Bytes { content_type: Some("application/json"), bytes };
    prop_oneof![
        6 => lead_object(known).prop_map(move |value| json(value.to_string().into_bytes())),
        1 => hostile_json().prop_map(move |value| json(value.to_string().into_bytes())),
        1 => prop::collection::vec(any::<u8>(), 0..256).prop_map(json),
        1 => (1usize..5000).prop_map(move |depth| json(format!("{}{}", "[".repeat(depth), "]".repeat(depth)).into_bytes())),
        1 => lead_object(known).prop_map(|value| Body::Bytes {
            content_type: Some("text/plain"),
            bytes: value.to_string().into_bytes()
        }),
    ]
}

/// How a request presents its credentials: right, in another case, wrong, twice, or not at all.
fn authorization(scheme: &'static str, secret: String) -> impl Strategy<Value = Vec<(&'static str, String)>> {
    let right = format!("{scheme} {secret}");
    prop_oneof![
        6 => Just(vec![("authorization", right.clone())]),
        1 => Just(vec![("authorization", right.to_lowercase().replacen(&secret.to_lowercase(), &secret, 1))]),
        1 => Just(vec![("authorization", format!("{scheme} wrong-{secret}"))]),
        1 => Just(vec![("authorization", right.clone()), ("authorization", format!("{scheme} other"))]),
        1 => Just(Vec::new()),
    ]
}

/// A path segment from arbitrary bytes, percent-encoded so it travels (as `%FF` and friends).
fn path_segment() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..40).prop_map(|bytes| percent_encoding::percent_encode(
            &bytes,
            percent_encoding::NON_ALPHANUMERIC
        )
        .to_string()),
        "[0-9]{1,25}",
        Just("..%2F..%2Fetc%2Fpasswd".to_owned()),
    ]
}

const PARTNER_FIELDS: &[&str] = &["name", "phone", "email", "comment", "callbackUrl"];
const PORTAL_FIELDS: &[&str] = &[
    "clientListingId",
    "name",
    "email",
    "ddd",
    "phone",
    "phoneNumber",
    "message",
    "originLeadId",
    "timestamp",
    "leadOrigin",
];
const PROXY_PARAMETERS: &[&str] = &[
    "name",
    "phone",
    "email",
    "comment",
    "title",
    "roistat",
    "fields[price]",
    "fields[tags]",
    "fields[charset]",
    "fields[264909]",
    "fields[nope]",
    "client_fields[264909]",
    "client_fields[email]",
    "is_need_check_order_in_processing",
    "is_need_check_order_in_processing_append",
    "is_skip_sending",
    "utm_source",
    "landing_page",
    "x",
];

fn partner() -> impl Strategy<Value = Probe> {
    let key = authorization("Bearer", SOURCE_KEY.to_owned());
    (json_body(PARTNER_FIELDS), key, prop::option::of("[ -~]{0,300}")).prop_map(|(body, mut headers, idempotency)| {
        headers.extend(idempotency.map(|key| ("idempotency-key", key)));
        Probe { method: Method::POST, path: "/api/v1/leads".to_owned(), headers, body }
    })
}

fn lead_status() -> impl Strategy<Value = Probe> {
    (path_segment(), authorization("Bearer", SOURCE_KEY.to_owned())).prop_map(|(id, headers)| Probe {
        method: Method::GET,
        path: format!("/api/v1/leads/{id}"),
        headers,
        body: Body::Empty,
    })
}

fn proxy_parameters() -> impl Strategy<Value = Vec<(String, String)>> {
    let name = prop_oneof![
        4 => prop::sample::select(PROXY_PARAMETERS).prop_map(str::to_owned),
        1 => hostile_text(),
    ];
    (prop::collection::vec((name, hostile_text()), 0..10), "[0-9]{7}", any::<bool>()).prop_map(
        |(mut parameters, digits, keyed)| {
            if digits.ends_with(['0', '2', '4', '6', '8']) {
                parameters.insert(0, ("phone".to_owned(), format!("+7999{digits}")));
            }
            if keyed {
                parameters.insert(0, ("key".to_owned(), PROXY_KEY.to_owned()));
            }
            parameters
        },
    )
}

/// Parameters as a query string, a form body, JSON, or raw bytes with a made-up content type.
fn proxy_request(path: &'static str) -> impl Strategy<Value = Probe> {
    let raw = prop::collection::vec(any::<u8>(), 0..300);
    (proxy_parameters(), 0..5u8, raw).prop_map(move |(parameters, mode, raw)| {
        let encoded = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&parameters).finish();
        // A URI over 64 KB cannot even be sent; such parameters go in a form body instead.
        let mode = if mode == 0 && encoded.len() > 16 * 1024 { 1 } else { mode };
        let (method, path, body) = match mode {
            0 => (Method::GET, format!("{path}?{encoded}"), Body::Empty),
            1 => {
                let bytes = encoded.into_bytes();
                (
                    Method::POST,
                    path.to_owned(),
                    Body::Bytes { content_type: Some("application/x-www-form-urlencoded"), bytes },
                )
            }
            2 => {
                let object: Map<String, Value> =
                    parameters.into_iter().map(|(name, value)| (name, Value::String(value))).collect();
                let bytes = Value::Object(object).to_string().into_bytes();
                (Method::POST, path.to_owned(), Body::Bytes { content_type: Some("application/json"), bytes })
            }
            3 => (Method::POST, format!("{path}?key={PROXY_KEY}"), Body::Bytes { content_type: None, bytes: raw }),
            _ => {
                let content_type = Some("multipart/form-data; boundary=x");
                (Method::POST, format!("{path}?key={PROXY_KEY}"), Body::Bytes { content_type, bytes: raw })
            }
        };
        Probe { method, path, headers: Vec::new(), body }
    })
}

fn portal() -> impl Strategy<Value = Probe> {
    let path = prop_oneof![3 => Just("/grupozap/lead".to_owned()), 1 => path_segment().prop_map(|id| format!("/grupozap/lead/{id}"))];
    let credentials = base64_basic("vivareal", ZAP_SECRET);
    (json_body(PORTAL_FIELDS), authorization("Basic", credentials), path).prop_map(|(body, headers, path)| Probe {
        method: Method::POST,
        path,
        headers,
        body,
    })
}

fn form() -> impl Strategy<Value = Probe> {
    let name = prop_oneof![
        4 => prop::sample::select(vec!["name", "phone", "email", "message", "website"]).prop_map(str::to_owned),
        1 => hostile_text(),
    ];
    let fields = prop::collection::vec((name, hostile_text()), 0..6);
    let files = prop::collection::vec((hostile_text(), prop::collection::vec(any::<u8>(), 0..2048)), 0..4);
    let raw = prop::collection::vec(any::<u8>(), 0..300);
    (fields, files, "[0-9]{7}", 0..4u8, raw).prop_map(|(mut fields, files, digits, mode, raw)| {
        if digits.ends_with(['0', '2', '4', '6', '8']) {
            fields.insert(0, ("phone".to_owned(), format!("+7999{digits}")));
        }
        let body = match mode {
            0 | 1 => Body::Multipart { fields, files },
            2 => {
                let bytes =
                    url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&fields).finish().into_bytes();
                Body::Bytes { content_type: Some("application/x-www-form-urlencoded"), bytes }
            }
            _ => Body::Bytes { content_type: Some("multipart/form-data; boundary=zz"), bytes: raw },
        };
        let headers = vec![("accept", "application/json".to_owned())];
        Probe { method: Method::POST, path: "/forms/feedback".to_owned(), headers, body }
    })
}

fn any_probe() -> impl Strategy<Value = Probe> {
    prop_oneof![
        3 => partner(),
        1 => lead_status(),
        3 => proxy_request("/api/proxy/1.0/leads/add"),
        1 => proxy_request("/api/proxy/1.0/leads/messages/add"),
        3 => portal(),
        3 => form(),
    ]
}

fn base64_basic(user: &str, password: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

fn cases() -> u32 {
    std::env::var("FUZZ_CASES").ok().and_then(|cases| cases.parse().ok()).unwrap_or(400)
}

/// What the run saw, across cases.
#[derive(Default)]
struct Seen {
    lead_ids: HashSet<i64>,
    /// SHA-256 of every file sent with a form that was answered 2xx.
    accepted_files: HashSet<String>,
    answers: std::collections::BTreeMap<u16, usize>,
}

#[test]
fn hostile_requests_never_fail_the_gateway_nor_store_what_they_were_refused() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut gateway = runtime.block_on(Gateway::start());
    let idle_rss = gateway.process.rss_kib();
    let peak_rss = AtomicUsize::new(0);

    // A steady partner posting valid leads all along; every one must be accepted.
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let steady = runtime.spawn({
        let (http, url, stop) = (gateway.http.clone(), gateway.url("/api/v1/leads"), stop.clone());
        async move {
            let mut accepted = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let body = json!({"name": "Ровный поток", "phone": format!("+7988{:07}", accepted.len())});
                let response = http.post(&url).bearer_auth(STEADY_KEY).json(&body).send().await.unwrap();
                let status = response.status();
                let answer: Value = response.json().await.unwrap_or_default();
                assert!(status.is_success(), "a valid lead beside the fuzzing got {status}: {answer}");
                accepted.push(answer["id"].as_i64().unwrap());
            }
            accepted
        }
    });

    let seen = Mutex::new(Seen::default());
    let config = Config { cases: cases(), failure_persistence: None, max_shrink_iters: 200, ..Config::default() };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&any_probe(), |probe| {
        runtime.block_on(async {
            let before = gateway.stored_hostile_leads().await;
            let (status, answer) = send(&gateway, &probe).await;
            let after = gateway.stored_hostile_leads().await;
            let id = status.is_success().then(|| answer["id"].as_i64()).flatten();
            let found = match id {
                Some(id) => gateway.store.find_lead(leadgate::domain::LeadId(id)).await.unwrap().is_some(),
                None => true,
            };
            let mut seen = seen.lock().unwrap();
            *seen.answers.entry(status.as_u16()).or_default() += 1;
            prop_assert!(!status.is_server_error(), "{status} {answer}");
            prop_assert!(found, "lead {id:?} was acknowledged but is not stored");
            let new_lead = id.is_some_and(|id| seen.lead_ids.insert(id));
            prop_assert_eq!(
                after - before,
                i64::from(new_lead),
                "stored leads changed by {} for {} {}",
                after - before,
                status,
                answer
            );
            if let (true, Body::Multipart { files, .. }) = (status.is_success(), &probe.body) {
                seen.accepted_files.extend(files.iter().map(|(_, content)| hex(&Sha256::digest(content))));
            }
            Ok::<(), TestCaseError>(())
        })?;
        peak_rss.fetch_max(usize::try_from(gateway.process.rss_kib()).unwrap_or(usize::MAX), Ordering::Relaxed);
        Ok(())
    });
    stop.store(true, Ordering::Relaxed);
    if let Err(failure) = result {
        panic!("{failure}");
    }
    let steady_ids = runtime.block_on(steady).expect("the steady sender never failed");

    let seen = seen.into_inner().unwrap();
    let peak_rss = peak_rss.into_inner();
    eprintln!(
        "fuzz: {} requests, answers by status {:?}, {} valid leads beside them, RSS {} MiB idle and {} MiB at most",
        cases(),
        seen.answers,
        steady_ids.len(),
        idle_rss / 1024,
        peak_rss / 1024
    );
    assert!(gateway.process.is_running());
    let stored_steady = runtime.block_on(async {
        let mut stored = 0;
        for id in &steady_ids {
            stored += usize::from(gateway.store.find_lead(leadgate::domain::LeadId(*id)).await.unwrap().is_some());
        }
        stored
    });
    assert_eq!(stored_steady, steady_ids.len(), "an acknowledged valid lead is missing");
    let (stored_files, incoming) = gateway.files_on_disk();
    assert_eq!(incoming, 0, "uploads left in incoming/");
    for path in stored_files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(seen.accepted_files.contains(&name), "{name} is stored but no accepted form brought it");
    }
    let grown_mib = peak_rss.saturating_sub(usize::try_from(idle_rss).unwrap()) / 1024;
    assert!(grown_mib < 64, "the gateway grew by {grown_mib} MiB under hostile input (1 MiB bodies)");
    drop(gateway);
}

async fn send(gateway: &Gateway, probe: &Probe) -> (reqwest::StatusCode, Value) {
    let mut request = gateway.http.request(probe.method.clone(), gateway.url(&probe.path));
    for (name, value) in &probe.headers {
        request = request.header(*name, value);
    }
    request = match &probe.body {
        Body::Empty => request,
        Body::Bytes { content_type, bytes } => {
            let request = request.body(bytes.clone());
            match content_type {
                Some(content_type) => request.header("content-type", *content_type),
                None => request,
            }
        }
        Body::Multipart { fields, files } => {
            let mut form = reqwest::multipart::Form::new();
            for (name, value) in fields {
                form = form.text(name.clone(), value.clone());
            }
            for (name, content) in files {
                form = form.part("files", reqwest::multipart::Part::bytes(content.clone()).file_name(name.clone()));
            }
            request.multipart(form)
        }
    };
    let response = request.send().await.unwrap_or_else(|error| panic!("no answer: {:?}", error.without_url()));
    let status = response.status();
    let text = response.text().await.unwrap();
    let answer = serde_json::from_str(&text).unwrap_or_else(|_| json!({ "not_json": text }));
    (status, answer)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
