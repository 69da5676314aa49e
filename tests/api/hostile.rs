//! Hostile input against the real binary: one request can neither kill the gateway nor fail its
//! neighbours, and a refusal stores nothing and leaves no file. Each test here reproduces a finding
//! of issue 10; `tests/postgres` runs them again on PostgreSQL.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use amocrm_emulator::RunningEmulator;
use leadgate::config::{Durability, StoreConfig};
use leadgate::domain::{LeadId, SourceId};
use leadgate::store::Store;
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::helpers::{
    PROXY_KEY, SOURCE_KEY, TestProcess, ZAP_SECRET, budgeted_config_file, lead, on_postgres, spawn_emulator, store_url,
};

/// The gateway binary with all four intake channels: partner `trendagent`, proxy `site`, form
/// `feedback` (up to two files) and portal `zap`; and `steady`, a partner for valid traffic.
pub struct Gateway {
    pub process: TestProcess,
    pub http: reqwest::Client,
    pub base: String,
    pub store: Store,
    pub dir: TempDir,
    _crm: RunningEmulator,
}

const CHANNELS: &str = r#"
[sources.site]
kind = "proxy"
key = "PROXY_KEY"
destination = "main"
pipeline = "Воронка"
status = "Первичный контакт"

[sources.feedback]
kind = "form"
destination = "main"
pipeline = "Воронка"
status = "Первичный контакт"
fields = { name = "name", phone = "phone", email = "email", comment = "message" }
max_files = 2
max_file_mb = 1
per_ip_per_minute = 1000000

[sources.zap]
kind = "zap"
username = "vivareal"
secret_key = "ZAP_SECRET"
destination = "main"
pipeline = "Воронка"
status = "Первичный контакт"

[sources.steady]
kind = "partner"
key = "STEADY_KEY"
destination = "main"
pipeline = "TrendAgent"
status = "Объект выбран"

[files]
dir = "files"
"#;

/// The key of `steady`, a second partner whose leads are valid and sent beside the hostile ones.
pub const STEADY_KEY: &str = "steady-partner-key-0123456789";

impl Gateway {
    pub async fn start() -> Self {
        let crm = spawn_emulator(1000).await;
        let dir = tempfile::tempdir().unwrap();
        let channels = CHANNELS
            .replace("PROXY_KEY", PROXY_KEY)
            .replace("ZAP_SECRET", ZAP_SECRET)
            .replace("STEADY_KEY", STEADY_KEY);
        let process = TestProcess::serve(dir.path(), &budgeted_config_file(&crm.base_url(), 500, &channels)).await;
        let config =
            StoreConfig { url: store_url(dir.path()), durability: Durability::ProcessCrash, max_connections: 2 };
        let store = Store::open(&config).await.unwrap();
        let base = format!("http://{}", process.address);
        Self { process, http: reqwest::Client::new(), base, store, dir, _crm: crm }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Every lead stored, whatever its status.
    pub async fn stored_leads(&self) -> i64 {
        self.store.count_by_status(None).await.unwrap().iter().map(|(_, count)| count).sum()
    }

    /// The leads of the four hostile channels, whatever their status.
    pub async fn stored_hostile_leads(&self) -> i64 {
        let mut total = 0;
        for source in ["trendagent", "site", "feedback", "zap"] {
            let counts = self.store.count_by_status(Some(&SourceId(source.to_owned()))).await.unwrap();
            total += counts.iter().map(|(_, count)| count).sum::<i64>();
        }
        total
    }

    pub async fn stored_lead(&self, id: i64) -> leadgate::domain::Lead {
        self.store.find_lead(LeadId(id)).await.unwrap().expect("the acknowledged lead is stored")
    }

    /// Files in the file store, and files left in its `incoming/` directory.
    pub fn files_on_disk(&self) -> (Vec<PathBuf>, usize) {
        let root = self.dir.path().join("files");
        let incoming = std::fs::read_dir(root.join("incoming")).map(Iterator::count).unwrap_or(0);
        let mut stored = Vec::new();
        for entry in std::fs::read_dir(&root).unwrap().flatten() {
            if entry.file_name() != "incoming" && entry.path().is_dir() {
                stored.extend(std::fs::read_dir(entry.path()).unwrap().flatten().map(|file| file.path()));
            }
        }
        (stored, incoming)
    }

    pub async fn partner(&self, body: &Value) -> (StatusCode, Value) {
        let response =
            self.http.post(self.url("/api/v1/leads")).bearer_auth(SOURCE_KEY).json(body).send().await.unwrap();
        answer(response).await
    }

    /// A proxy lead as a site's PHP posts it: a urlencoded body.
    pub async fn proxy(&self, parameters: &[(&str, &str)]) -> (StatusCode, Value) {
        let mut all = vec![("key", PROXY_KEY)];
        all.extend_from_slice(parameters);
        let response = self.http.post(self.url("/api/proxy/1.0/leads/add")).form(&all).send().await.unwrap();
        answer(response).await
    }

    pub async fn portal(&self, body: &Value) -> (StatusCode, Value) {
        let response = self
            .http
            .post(self.url("/grupozap/lead"))
            .basic_auth("vivareal", Some(ZAP_SECRET))
            .json(body)
            .send()
            .await
            .unwrap();
        answer(response).await
    }

    pub async fn form(&self, fields: &[(&str, &str)], files: &[(&str, &[u8])]) -> (StatusCode, Value) {
        let mut form = Form::new();
        for (name, value) in fields {
            form = form.text((*name).to_owned(), (*value).to_owned());
        }
        for (name, content) in files {
            form = form.part("files", Part::bytes(content.to_vec()).file_name((*name).to_owned()));
        }
        let response = self
            .http
            .post(self.url("/forms/feedback"))
            .header("accept", "application/json")
            .multipart(form)
            .send()
            .await
            .unwrap();
        answer(response).await
    }

    /// Makes the database itself refuse any lead named `name`, as a constraint would: the one
    /// way left to make a single lead's commit fail once intake refuses what cannot be stored.
    pub async fn refuse_leads_named(&self, name: &str) {
        let url = store_url(self.dir.path());
        if on_postgres() {
            let pool = sqlx::PgPool::connect(&url).await.unwrap();
            let sql = format!("alter table leads add constraint refused_name check (name <> '{name}')");
            sqlx::query(&sql).execute(&pool).await.unwrap();
        } else {
            let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
            let sql = format!(
                "create trigger refused_name before insert on leads when new.name = '{name}'
                 begin select raise(abort, 'refused by the test'); end"
            );
            sqlx::query(&sql).execute(&pool).await.unwrap();
        }
    }
}

pub async fn answer(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("a {status} answer that is not JSON: {text:?}"));
    (status, body)
}

fn error_of(body: &Value) -> String {
    body["error"].as_str().or_else(|| body["message"].as_str()).unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_template_bomb_is_refused_at_once_naming_the_field_and_memory_stays_flat() {
    let mut gateway = Gateway::start().await;
    let before = gateway.process.rss_kib();
    // 979 KB that would expand to 25 GB: 256 KiB of "A", named 102,400 times in the title.
    let value = "A".repeat(256 * 1024);
    let title = "{x}".repeat(102_400);
    let started = Instant::now();
    let (status, body) = gateway.proxy(&[("phone", "+79995550011"), ("x", &value), ("title", &title)]).await;
    let took = started.elapsed();
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(error_of(&body).starts_with("Ошибка! title:"), "{body}");
    let grown_mib = gateway.process.rss_kib().saturating_sub(before) / 1024;
    assert!(grown_mib < 32, "one 1 MB request grew the gateway by {grown_mib} MiB");
    assert!(gateway.process.is_running(), "the gateway died");
    assert!(took < Duration::from_secs(5), "the refusal took {took:?}");
    assert_eq!(gateway.stored_leads().await, 0);
    let (status, _) = gateway.proxy(&[("phone", "+79995550012"), ("title", "{x}"), ("x", "ЖК Север")]).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn control_characters_are_refused_by_field_and_the_portal_has_them_dropped() {
    let gateway = Gateway::start().await;
    let (status, body) = gateway.partner(&json!({"name": "Иван\u{0}", "phone": "+79995550021"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error_of(&body).contains("name") && error_of(&body).contains("U+0000"), "{body}");
    let (status, body) =
        gateway.partner(&json!({"name": "Иван", "phone": "+79995550021", "extra": {"note": "\u{1b}[2J"}})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error_of(&body).contains("extra.note"), "{body}");
    let (status, body) = gateway.proxy(&[("phone", "+79995550022"), ("comment", "a\u{0}b")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error_of(&body).contains("comment") && error_of(&body).contains("U+0000"), "{body}");
    let (status, body) = gateway.form(&[("name", "Иван"), ("phone", "+79995550023"), ("message", "x\u{0}")], &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["errors"]["message"].as_str().unwrap_or_default().contains("U+0000"), "{body}");
    assert_eq!(gateway.stored_leads().await, 0, "a refused request stored something");

    let portal_lead = json!({
        "leadOrigin": "VivaReal", "clientListingId": "L-77\u{0}", "name": "Maria\u{0} Souza",
        "email": "maria@example.com.br", "ddd": "11", "phone": "987654321", "originLeadId": "zap-\u{0}1",
    });
    let (status, body) = gateway.portal(&portal_lead).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let stored = gateway.stored_lead(body["id"].as_i64().unwrap()).await;
    assert_eq!(stored.fields.name, "Maria Souza");
    assert_eq!(stored.fields.payload["clientListingId"], "L-77");
    // The portal re-sends what failed: the cleaned repeat is the same lead.
    let (_, again) = gateway.portal(&portal_lead).await;
    assert_eq!(again["id"], body["id"]);
    assert_eq!(gateway.stored_leads().await, 1);
}

#[tokio::test]
async fn valid_leads_sent_beside_hostile_ones_are_all_accepted_once() {
    let gateway = Gateway::start().await;
    let valid = async |client: u32| {
        let mut ids = Vec::new();
        for n in 0..40u32 {
            let phone = format!("+7999{client}{n:06}");
            let (status, body) = match n % 4 {
                0 => gateway.partner(&lead("Иван", &phone)).await,
                1 => gateway.proxy(&[("phone", &phone), ("name", "Анна")]).await,
                2 => gateway.form(&[("name", "Пётр"), ("phone", &phone)], &[]).await,
                _ => {
                    let listing = format!("L{client}-{n}");
                    let portal_lead = json!({"clientListingId": listing, "name": "João", "ddd": "11", "phone": format!("9{client}{n:07}")});
                    gateway.portal(&portal_lead).await
                }
            };
            assert!(status.is_success(), "a valid lead got {status}: {body}");
            ids.push(body["id"].as_i64().unwrap());
        }
        ids
    };
    let hostile = async {
        for n in 0..120u32 {
            let phone = format!("+79998{n:06}");
            let (status, _) = match n % 3 {
                0 => gateway.partner(&json!({"name": "Иван\u{0}", "phone": phone})).await,
                1 => gateway.proxy(&[("phone", &phone), ("name", "\u{0}")]).await,
                _ => gateway.form(&[("name", "\u{0}"), ("phone", &phone)], &[]).await,
            };
            assert_eq!(status, StatusCode::BAD_REQUEST);
        }
    };
    let (first, second, third, ()) = tokio::join!(valid(1), valid(2), valid(3), hostile);
    let mut ids: Vec<i64> = first.into_iter().chain(second).chain(third).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 120, "two valid requests were answered with one lead");
    assert_eq!(gateway.stored_leads().await, 120);
}

#[tokio::test]
async fn a_lead_the_database_refuses_fails_alone_and_never_its_batch() {
    let gateway = Gateway::start().await;
    gateway.refuse_leads_named("Отказ").await;
    let requests = (0..80u32).map(|n| {
        let name = if n % 16 == 0 { "Отказ" } else { "Иван" };
        let body = lead(name, &format!("+7999444{n:04}"));
        let gateway = &gateway;
        async move { (name, gateway.partner(&body).await) }
    });
    let answers = futures::future::join_all(requests).await;
    for (name, (status, body)) in &answers {
        match *name {
            "Отказ" => assert_eq!(*status, StatusCode::INTERNAL_SERVER_ERROR, "{body}"),
            _ => assert_eq!(*status, StatusCode::OK, "a valid lead failed with its batch: {body}"),
        }
    }
    assert_eq!(gateway.stored_leads().await, 75);
}

#[tokio::test]
async fn a_form_whose_lead_cannot_be_committed_leaves_no_file_behind() {
    let gateway = Gateway::start().await;
    gateway.refuse_leads_named("Отказ").await;
    let (status, body) =
        gateway.form(&[("name", "Отказ"), ("phone", "+79995550031")], &[("скан.pdf", b"%PDF-1.4 only mine")]).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert_eq!(gateway.files_on_disk(), (Vec::new(), 0), "a failed lead left its file");

    let (status, body) =
        gateway.form(&[("name", "Иван"), ("phone", "+79995550032")], &[("скан.pdf", b"%PDF-1.4 accepted")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (stored, incoming) = gateway.files_on_disk();
    assert_eq!((stored.len(), incoming), (1, 0));
}

#[tokio::test]
async fn duplicate_checked_proxy_leads_never_fail_under_concurrency() {
    let gateway = Gateway::start().await;
    let client = async |client: u32| {
        for n in 0..60u32 {
            // Every third lead repeats an earlier client of its own sender.
            let phone = format!("+7999{client}{:06}", n - n % 3);
            let (status, body) = gateway
                .proxy(&[
                    ("phone", &phone),
                    ("is_need_check_order_in_processing", "1"),
                    ("is_need_check_order_in_processing_append", "1"),
                ])
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
    };
    tokio::join!(client(1), client(2), client(3));
    assert_eq!(gateway.stored_leads().await, 60, "one lead per client phone, the repeats in its history");
}

#[tokio::test]
async fn callbacks_to_internal_addresses_written_inside_ipv6_or_as_names_are_refused_at_intake() {
    let gateway = Gateway::start().await;
    for url in [
        "http://[::127.0.0.1]:9/cb",
        "http://[::ffff:0:7f00:1]/cb",
        "http://[64:ff9b::a9fe:a9fe]/latest/meta-data",
        "http://[2002:7f00:1::1]/cb",
        "http://[fec0::1]/cb",
        "http://localhost./cb",
        "http://127.0.0.1.nip.io/cb",
    ] {
        let (status, body) =
            gateway.partner(&json!({"name": "Иван", "phone": "+79995550041", "callbackUrl": url})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}: {body}");
        assert!(error_of(&body).contains("callbackUrl"), "{url}: {body}");
    }
    assert_eq!(gateway.stored_leads().await, 0);
    let public = json!({"name": "Иван", "phone": "+79995550042", "callbackUrl": "http://[2002:5db8:d822::1]/cb"});
    assert_eq!(gateway.partner(&public).await.0, StatusCode::OK, "a 6to4 address of a public host is public");
}

#[tokio::test]
async fn every_error_the_http_layer_makes_is_the_documented_json() {
    let gateway = Gateway::start().await;
    let http = &gateway.http;
    let (status, body) = answer(http.get(gateway.url("/no/such/route")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(error_of(&body).starts_with("Ошибка!"), "{body}");
    let (status, body) = answer(http.delete(gateway.url("/api/v1/leads")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(error_of(&body).contains("DELETE"), "{body}");
    let bad_path = http.get(gateway.url("/api/v1/leads/%FF")).bearer_auth(SOURCE_KEY).send().await.unwrap();
    let (status, body) = answer(bad_path).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let bad_query = http.get(gateway.url("/forms/feedback?embed=1&embed=2")).send().await.unwrap();
    let (status, body) = answer(bad_query).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    let two_keys = http
        .post(gateway.url("/api/v1/leads"))
        .header("authorization", format!("Bearer {SOURCE_KEY}"))
        .header("authorization", "Bearer someone-else")
        .json(&lead("Иван", "+79995550051"))
        .send()
        .await
        .unwrap();
    let (status, body) = answer(two_keys).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error_of(&body).contains("Authorization"), "{body}");

    let lower_case = http
        .post(gateway.url("/api/v1/leads"))
        .header("authorization", format!("bearer {SOURCE_KEY}"))
        .json(&lead("Иван", "+79995550052"))
        .send()
        .await
        .unwrap();
    assert_eq!(lower_case.status(), StatusCode::OK, "the scheme is case-insensitive");
    let basic = base64_basic("vivareal", ZAP_SECRET);
    let portal = http
        .post(gateway.url("/grupozap/lead"))
        .header("authorization", format!("basic {basic}"))
        .json(&json!({"clientListingId": "L1", "ddd": "11", "phone": "987654322"}))
        .send()
        .await
        .unwrap();
    assert_eq!(portal.status(), StatusCode::OK);

    for email in ["\"a\"@b.ru", "a@[127.0.0.1]", "=?utf-8?q?x?=@b.ru"] {
        let (status, body) = gateway.partner(&json!({"name": "Иван", "phone": "+79995550053", "email": email})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{email}");
        assert!(error_of(&body).contains("email"), "{email}: {body}");
    }
    assert_eq!(gateway.stored_leads().await, 2);
    assert!(gateway.store.list_leads(None, Some(&SourceId("zap".into())), 10).await.unwrap().len() == 1);
}

fn base64_basic(user: &str, password: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

#[tokio::test]
async fn a_request_refused_before_its_body_arrived_keeps_its_connection_usable() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let gateway = Gateway::start().await;
    let mut connection = tokio::net::TcpStream::connect(gateway.process.address).await.unwrap();
    let body = lead("Иван", "+79995550061").to_string();
    let request = |key: &str| {
        format!(
            "POST /api/v1/leads HTTP/1.1\r\nHost: gate\r\nAuthorization: Bearer {key}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
    };
    // A slow sender: the key is refused while the body is still on its way.
    connection.write_all(request("wrong-key").as_bytes()).await.unwrap();
    connection.write_all(&body.as_bytes()[..5]).await.unwrap();
    let mut answer = vec![0; 4096];
    tokio::task::yield_now().await;
    connection.write_all(&body.as_bytes()[5..]).await.unwrap();
    let read = connection.read(&mut answer).await.unwrap();
    let refused = String::from_utf8_lossy(&answer[..read]).into_owned();
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");

    // The same connection carries the next request.
    connection.write_all(format!("{}{body}", request(SOURCE_KEY)).as_bytes()).await.unwrap();
    let read = connection.read(&mut answer).await.unwrap();
    let accepted = String::from_utf8_lossy(&answer[..read]).into_owned();
    assert!(accepted.starts_with("HTTP/1.1 200"), "{accepted}");
}
