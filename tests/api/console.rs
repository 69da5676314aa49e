//! The operator console over HTTP: logging in and out, lock-out, sessions that expire, CSRF on
//! every form, what a viewer may not do, re-sending, security headers, and no personal data in URLs.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use amocrm_emulator::{Fault, FaultLimit};
use leadgate::config::{Config, ConsoleConfig, ConsoleLanguage};
use leadgate::domain::operator::{Password, Role, Username};
use reqwest::StatusCode;
use reqwest::cookie::{CookieStore, Jar};
use reqwest::header::{HeaderMap, LOCATION};
use secrecy::SecretString;
use serde_json::json;

use crate::helpers::{ADMIN_TOKEN, Setup, TestApp, TestProcess, csrf_of, poll_until, spawn_app_with};

pub const ADMIN: &str = "anna";
pub const VIEWER: &str = "boris";
pub const PASSWORD: &str = "correct horse battery staple";

pub fn console_config() -> ConsoleConfig {
    Config::from_toml_str("").unwrap().console
}

/// A gateway whose leads die at once while the CRM fails (one attempt), with an admin and a viewer.
pub async fn console_app(console: ConsoleConfig) -> TestApp {
    let retry = leadgate::config::RetryPolicy {
        schedule: leadgate::config::RetrySchedule::Every(Duration::from_millis(50)),
        max_age: Duration::from_millis(1),
    };
    let app = spawn_app_with(Setup { console: Some(console), retry, ..Setup::default() }).await;
    add_user(&app, ADMIN, Role::Admin).await;
    add_user(&app, VIEWER, Role::Viewer).await;
    app
}

pub async fn add_user(app: &TestApp, name: &str, role: Role) {
    let hash = Password::parse(SecretString::from(PASSWORD)).unwrap().hash();
    app.store.add_console_user(&Username::parse(name).unwrap(), &hash, role).await.unwrap().unwrap();
}

/// A browser stand-in: keeps cookies, does not follow redirects (the tests look at them).
pub struct Visitor {
    pub http: reqwest::Client,
    pub base: String,
    jar: Arc<Jar>,
}

impl Visitor {
    pub fn new(app: &TestApp) -> Self {
        let jar = Arc::new(Jar::default());
        let http = reqwest::Client::builder()
            .cookie_provider(Arc::clone(&jar))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self { http, base: app.url(""), jar }
    }

    /// The `Cookie` header this visitor sends to the console.
    pub fn cookies(&self) -> String {
        let url = format!("{}/admin/leads", self.base).parse().unwrap();
        self.jar.cookies(&url).map(|value| value.to_str().unwrap().to_owned()).unwrap_or_default()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(format!("{}{path}", self.base)).send().await.unwrap()
    }

    pub async fn page(&self, path: &str) -> String {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.text().await.unwrap()
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.http.post(format!("{}{path}", self.base)).form(form).send().await.unwrap()
    }

    pub async fn log_in_with(&self, name: &str, password: &str) -> reqwest::Response {
        let form = self.page("/admin/login").await;
        let csrf = csrf_of(&form);
        self.post("/admin/login", &[("csrf", &csrf), ("username", name), ("password", password)]).await
    }

    pub async fn log_in(&self, name: &str) -> String {
        let response = self.log_in_with(name, PASSWORD).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{name} logs in");
        assert_eq!(response.headers()[LOCATION], "/admin/leads");
        csrf_of(&self.page("/admin/leads").await)
    }
}

/// Every address the page links to, posts to, or loads.
pub fn addresses(html: &str) -> Vec<String> {
    ["href=\"", "action=\"", "src=\""]
        .iter()
        .flat_map(|attribute| {
            html.match_indices(attribute).map(move |(at, _)| {
                let rest = &html[at + attribute.len()..];
                rest[..rest.find('"').unwrap_or(0)].to_owned()
            })
        })
        .collect()
}

async fn dead_lead(app: &TestApp, name: &str, phone: &str) -> i64 {
    let id = app.accept(json!({ "name": name, "phone": phone, "email": "anna.petrova@example.ru" })).await;
    app.wait_for(id, &["dead"]).await;
    id
}

#[tokio::test]
async fn an_admin_finds_a_lead_by_another_spelling_of_its_phone_and_logging_out_ends_the_session() {
    let app = console_app(console_config()).await;
    let id = app.accept(json!({ "name": "Анна Петрова", "phone": "+7 912 345-67-89" })).await;
    let other = app.accept(json!({ "name": "Лев", "phone": "+7 999 000-11-22" })).await;
    let visitor = Visitor::new(&app);
    assert_eq!(visitor.get("/admin/leads").await.headers()[LOCATION], "/admin/login", "no session, no list");

    let csrf = visitor.log_in(ADMIN).await;
    let found = visitor.post("/admin/leads/search", &[("csrf", &csrf), ("q", "8 (912) 345 67 89")]).await;
    assert_eq!(found.status(), StatusCode::SEE_OTHER);
    let list = visitor.page("/admin/leads").await;
    assert!(list.contains(&format!("id=\"lead-{id}\"")), "the lead is listed: {list}");
    assert!(!list.contains(&format!("id=\"lead-{other}\"")), "only that client's lead");
    let cookie = visitor.cookies();

    let out = visitor.post("/admin/logout", &[("csrf", &csrf)]).await;
    assert_eq!(out.headers()[LOCATION], "/admin/login");
    assert_eq!(visitor.get("/admin/leads").await.headers()[LOCATION], "/admin/login");
    assert!(cookie.contains("leadgate_console="), "{cookie}");
    let replayed = app.http.get(app.url("/admin/leads")).header("cookie", cookie).send().await.unwrap();
    assert_eq!(replayed.url().path(), "/admin/login", "the old cookie opens nothing once logged out");
    app.stop().await;
}

#[tokio::test]
async fn a_viewer_cannot_resend_export_or_see_what_the_lead_carried() {
    let app = console_app(console_config()).await;
    app.crm.emulator.inject_fault(Fault::new(503, FaultLimit::UntilCleared));
    let id = dead_lead(&app, "Дина", "+79997000002").await;
    let visitor = Visitor::new(&app);
    let csrf = visitor.log_in(VIEWER).await;

    let page = visitor.page(&format!("/admin/leads/{id}")).await;
    assert!(page.contains("Дина") && page.contains("+79997000002"), "the list's columns are shown");
    assert!(!page.contains("anna.petrova@example.ru"), "the e-mail is not: {page}");
    assert!(!page.contains("id=\"request\"") && !page.contains("id=\"resend\""));
    assert_eq!(visitor.get(&format!("/admin/leads/{id}/resend")).await.status(), StatusCode::FORBIDDEN);
    let resend = visitor.post(&format!("/admin/leads/{id}/resend"), &[("csrf", &csrf)]).await;
    assert_eq!(resend.status(), StatusCode::FORBIDDEN);
    assert_eq!(visitor.get("/admin/leads.csv").await.status(), StatusCode::FORBIDDEN);
    assert_eq!(visitor.get("/admin/audit").await.status(), StatusCode::FORBIDDEN);
    let bulk = visitor.post("/admin/dead/resend", &[("csrf", &csrf), ("since", "2000-01-01T00:00")]).await;
    assert_eq!(bulk.status(), StatusCode::FORBIDDEN);
    let api = visitor.http.post(app.url(&format!("/api/v1/leads/{id}/retry"))).header("x-csrf-token", &csrf);
    assert_eq!(api.send().await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(app.get_lead(id).await["status"], "dead", "nothing was re-sent");
    app.stop().await;
}

#[tokio::test]
async fn a_form_without_the_session_csrf_token_changes_nothing() {
    let app = console_app(console_config()).await;
    app.crm.emulator.inject_fault(Fault::new(503, FaultLimit::UntilCleared));
    let id = dead_lead(&app, "Павел", "+79997000001").await;
    let visitor = Visitor::new(&app);
    let csrf = visitor.log_in(ADMIN).await;

    let path = format!("/admin/leads/{id}/resend");
    assert_eq!(visitor.post(&path, &[]).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(visitor.post(&path, &[("csrf", "0123")]).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(visitor.post("/admin/logout", &[]).await.status(), StatusCode::FORBIDDEN);
    let api = visitor.http.post(app.url(&format!("/api/v1/leads/{id}/retry")));
    assert_eq!(api.send().await.unwrap().status(), StatusCode::FORBIDDEN, "the JSON API wants X-CSRF-Token");
    let login = Visitor::new(&app).post("/admin/login", &[("username", ADMIN), ("password", PASSWORD)]).await;
    assert_eq!(login.status(), StatusCode::FORBIDDEN, "the login form has its token too");
    assert_eq!(app.get_lead(id).await["status"], "dead");

    app.crm.emulator.clear_faults();
    let resent = visitor.post(&path, &[("csrf", &csrf)]).await;
    assert_eq!(resent.headers()[LOCATION], format!("/admin/leads/{id}?done=resent"));
    app.wait_for(id, &["approved"]).await;
    let audit = visitor.page("/admin/audit").await;
    assert!(audit.contains("resend") && audit.contains(&format!("lead {id}")), "{audit}");
    app.stop().await;
}

#[tokio::test]
async fn repeated_wrong_passwords_lock_the_user_name_and_then_the_address() {
    let console = ConsoleConfig { max_failures_per_user: 3, max_failures_per_address: 5, ..console_config() };
    let app = console_app(console).await;
    let visitor = Visitor::new(&app);
    for _ in 0..3 {
        let wrong = visitor.log_in_with(ADMIN, "not the password at all").await;
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    }
    let locked = visitor.log_in_with(ADMIN, PASSWORD).await;
    assert_eq!(locked.status(), StatusCode::TOO_MANY_REQUESTS, "even the right password waits");
    assert!(locked.text().await.unwrap().contains("Слишком много неудачных попыток"));

    // Another name from the same address still gets in, until the address has failed five times.
    assert_eq!(visitor.log_in_with(VIEWER, PASSWORD).await.status(), StatusCode::SEE_OTHER);
    for _ in 0..2 {
        assert_eq!(visitor.log_in_with("nobody", "not the password at all").await.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(visitor.log_in_with(VIEWER, PASSWORD).await.status(), StatusCode::TOO_MANY_REQUESTS);
    app.stop().await;
}

#[tokio::test]
async fn an_expired_session_is_sent_back_to_the_login_page() {
    let console = ConsoleConfig { session_lifetime: Duration::from_secs(1), ..console_config() };
    let app = console_app(console).await;
    let visitor = Visitor::new(&app);
    visitor.log_in(ADMIN).await;

    let expired = poll_until(Duration::from_secs(5), || async {
        visitor.get("/admin/leads").await.headers().get(LOCATION).is_some_and(|to| to == "/admin/login")
    })
    .await;
    assert!(expired, "a session of one second is refused once it is over");
    app.stop().await;
}

#[tokio::test]
async fn the_admin_token_still_works_for_scripts_and_a_console_admin_uses_the_json_api_with_its_csrf_header() {
    let app = console_app(console_config()).await;
    app.crm.emulator.inject_fault(Fault::new(503, FaultLimit::UntilCleared));
    let first = dead_lead(&app, "Дина", "+79997000002").await;
    let second = dead_lead(&app, "Лев", "+79997000003").await;
    app.crm.emulator.clear_faults();

    let script = app.http.post(app.url(&format!("/api/v1/leads/{first}/retry"))).bearer_auth(ADMIN_TOKEN);
    assert_eq!(script.send().await.unwrap().status(), 200);
    let visitor = Visitor::new(&app);
    let csrf = visitor.log_in(ADMIN).await;
    let console = visitor.http.post(app.url(&format!("/api/v1/leads/{second}/retry"))).header("x-csrf-token", &csrf);
    assert_eq!(console.send().await.unwrap().status(), 200);
    let lead = app.wait_for(second, &["approved"]).await;
    let by = lead["history"].as_array().unwrap().iter().find(|event| event["kind"] == "resend_requested").unwrap();
    assert_eq!(by["detail"]["by"], format!("console:{ADMIN}"));
    app.wait_for(first, &["approved"]).await;

    // The lead's JSON report: its source's key as before, and now operators too, for any source.
    let report = |id: i64| visitor.http.get(app.url(&format!("/api/v1/leads/{id}")));
    let read = report(second).send().await.unwrap();
    assert_eq!(read.status(), 200, "a console admin reads the report");
    assert_eq!(read.json::<serde_json::Value>().await.unwrap()["status"], "approved");
    let scripted = app.http.get(app.url(&format!("/api/v1/leads/{first}"))).bearer_auth(ADMIN_TOKEN);
    assert_eq!(scripted.send().await.unwrap().status(), 200, "and so does the admin token");
    let other = app.http.get(app.url(&format!("/api/v1/leads/{first}"))).bearer_auth(crate::helpers::OTHER_SOURCE_KEY);
    assert_eq!(other.send().await.unwrap().status(), 404, "another source still sees nothing");
    let viewer = Visitor::new(&app);
    viewer.log_in(VIEWER).await;
    let refused = viewer.http.get(app.url(&format!("/api/v1/leads/{first}"))).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN, "a viewer does not get the payload through the API");
    app.stop().await;
}

#[tokio::test]
async fn every_console_page_sends_the_security_headers_and_no_address_carries_a_phone_or_an_e_mail() {
    let app = console_app(console_config()).await;
    app.crm.emulator.inject_fault(Fault::new(503, FaultLimit::UntilCleared));
    let id = dead_lead(&app, "Анна Петрова", "+7 912 345-67-89").await;
    let visitor = Visitor::new(&app);
    let login = visitor.get("/admin/login").await;
    assert_security_headers(login.headers(), "/admin/login");
    let csrf = visitor.log_in(ADMIN).await;

    for search in ["+7 912 345-67-89", "anna.petrova@example.ru"] {
        // A phone typed into a filter's field by mistake is dropped, not carried into the URL.
        let form = [("csrf", csrf.as_str()), ("q", search), ("status", "dead"), ("source", search), ("from", search)];
        let searched = visitor.post("/admin/leads/search", &form).await;
        let location = searched.headers()[LOCATION].to_str().unwrap().to_owned();
        assert_eq!(location, "/admin/leads?status=dead", "the search stays in the session");
        for path in [
            location.clone(),
            format!("/admin/leads/{id}"),
            format!("/admin/leads/{id}/resend"),
            "/admin/dead".to_owned(),
            "/admin/audit".to_owned(),
            "/admin/sources".to_owned(),
        ] {
            let response = visitor.get(&path).await;
            assert_eq!(response.status(), 200, "{path}");
            assert_security_headers(response.headers(), &path);
            let html = response.text().await.unwrap();
            for address in addresses(&html) {
                for personal in ["9123456789", "912 345", "anna.petrova", "%40example"] {
                    assert!(!address.contains(personal), "{path} links to {address}");
                }
            }
        }
        let list = visitor.page(&location).await;
        assert!(list.contains(&format!("id=\"lead-{id}\"")), "found by «{search}»");
    }
    let error = visitor.get("/admin/leads/999999").await;
    assert_eq!(error.status(), 404);
    assert_security_headers(error.headers(), "a console 404");
    app.stop().await;
}

fn assert_security_headers(headers: &HeaderMap, page: &str) {
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"), "{page}: {csp}");
    assert_eq!(headers["referrer-policy"], "no-referrer", "{page}");
    assert_eq!(headers["x-content-type-options"], "nosniff", "{page}");
}

#[tokio::test]
async fn bulk_resend_previews_the_count_and_requeues_only_that_sources_dead_leads() {
    let app = console_app(console_config()).await;
    app.crm.emulator.inject_fault(Fault::new(503, FaultLimit::UntilCleared));
    let first = dead_lead(&app, "Дина", "+79997000002").await;
    let second = dead_lead(&app, "Лев", "+79997000003").await;
    let other = crate::helpers::accept_at(
        &app.http,
        &app.url(""),
        crate::helpers::OTHER_SOURCE_KEY,
        &json!({ "name": "Ира", "phone": "+79997000004" }),
    )
    .await;
    crate::helpers::wait_for_status(&app.http, &app.url(""), crate::helpers::OTHER_SOURCE_KEY, other, &["dead"]).await;
    app.crm.emulator.clear_faults();
    let visitor = Visitor::new(&app);
    let csrf = visitor.log_in(ADMIN).await;
    let dead = visitor.page("/admin/dead").await;
    assert!(dead.contains("trendagent") && dead.contains("503"), "grouped by source and cause: {dead}");

    let form = [("csrf", csrf.as_str()), ("source", "trendagent"), ("since", "2000-01-01T00:00")];
    let preview = visitor.post("/admin/dead/preview", &form).await.text().await.unwrap();
    assert!(preview.contains("<strong id=\"bulk-count\">2</strong>"), "{preview}");
    let done = visitor.post("/admin/dead/resend", &form).await;
    assert_eq!(done.headers()[LOCATION], "/admin/dead?queued=2");
    app.wait_for(first, &["approved"]).await;
    app.wait_for(second, &["approved"]).await;
    let lead = crate::helpers::get_lead(&app.http, &app.url(""), crate::helpers::OTHER_SOURCE_KEY, other).await;
    assert_eq!(lead["status"], "dead", "the other source's lead was not part of it");
    assert!(visitor.page("/admin/audit").await.contains("bulk_resend"));
    app.stop().await;
}

#[tokio::test]
async fn an_admin_exports_the_filtered_list_as_csv() {
    let app = console_app(console_config()).await;
    let id = app.accept(json!({ "name": "=HYPERLINK(\"x\")", "phone": "+79997000005" })).await;
    let visitor = Visitor::new(&app);
    visitor.log_in(ADMIN).await;

    let response = visitor.get("/admin/leads.csv?source=trendagent").await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let csv = response.text().await.unwrap();
    let mut lines = csv.lines();
    assert!(lines.next().unwrap().starts_with("id,received_utc,source,name,phone"));
    let row = lines.next().unwrap();
    assert!(row.starts_with(&format!("{id},")) && row.contains("+79997000005"), "{row}");
    assert!(row.contains("'=HYPERLINK"), "a formula is defused: {row}");
    app.stop().await;
}

#[tokio::test]
async fn the_console_speaks_english_when_configured() {
    let app = console_app(ConsoleConfig { language: ConsoleLanguage::English, ..console_config() }).await;
    let visitor = Visitor::new(&app);
    assert!(visitor.page("/admin/login").await.contains("Log in"));
    visitor.log_in(ADMIN).await;
    assert!(visitor.page("/admin/leads").await.contains("No leads found."));
    app.stop().await;
}

#[tokio::test]
async fn users_are_managed_from_the_command_line_with_passwords_on_stdin() {
    let app = spawn_app_with(Setup::default()).await;
    let users = |args: &[&str], stdin: &str| {
        let mut child = Command::new(TestProcess::BINARY)
            .arg("users")
            .args(args)
            .env("LEADGATE_STORE__URL", &app.store_url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), stdin.as_bytes()).unwrap();
        let output = child.wait_with_output().unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr),
        )
    };
    let (code, said) = users(&["add", "vera", "--role", "admin"], "eleven char\n");
    assert_eq!(code, Some(2), "{said}");
    assert!(said.contains("at least 12"), "{said}");
    assert_eq!(users(&["add", "vera", "--role", "admin"], &format!("{PASSWORD}\n")).0, Some(0));
    assert_eq!(users(&["add", "vera"], &format!("{PASSWORD}\n")).0, Some(2), "names are unique");
    let (_, listed) = users(&["list"], "");
    assert!(listed.contains("vera") && listed.contains("admin") && listed.contains("enabled"), "{listed}");

    let visitor = Visitor::new(&app);
    let csrf = visitor.log_in("vera").await;
    assert!(!csrf.is_empty());
    assert_eq!(users(&["passwd", "vera"], "another long password\n").0, Some(0));
    assert_eq!(visitor.get("/admin/leads").await.headers()[LOCATION], "/admin/login", "a new password ends sessions");
    assert_eq!(visitor.log_in_with("vera", PASSWORD).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(visitor.log_in_with("vera", "another long password").await.status(), StatusCode::SEE_OTHER);
    assert_eq!(users(&["disable", "vera"], "").0, Some(0));
    assert_eq!(visitor.get("/admin/leads").await.headers()[LOCATION], "/admin/login", "disabling ends sessions");
    assert_eq!(visitor.log_in_with("vera", "another long password").await.status(), StatusCode::UNAUTHORIZED);
    let audit = app.store.audit_log(20).await.unwrap();
    let actions: Vec<&str> = audit.iter().map(|entry| entry.action.as_str()).collect();
    for action in ["user_added", "password_changed", "user_disabled", "login", "login_failed"] {
        assert!(actions.contains(&action), "{action} is audited: {actions:?}");
    }
    assert!(audit.iter().filter(|entry| entry.action == "user_added").all(|entry| entry.actor == "command line"));
    app.stop().await;
}

/// A gateway whose leads keep retrying while the CRM is down, with an admin; a source counts as
/// stalled after `stalled_after`.
pub async fn retrying_app(stalled_after: Duration) -> TestApp {
    let console = ConsoleConfig { stalled_after, ..console_config() };
    let app = spawn_app_with(Setup { console: Some(console), ..Setup::default() }).await;
    add_user(&app, ADMIN, Role::Admin).await;
    app
}

#[tokio::test]
async fn a_source_accepting_but_not_delivering_is_flagged_until_the_crm_recovers() {
    let app = retrying_app(Duration::from_millis(300)).await;
    let visitor = Visitor::new(&app);
    visitor.log_in(ADMIN).await;
    let delivered = app.accept(json!({ "name": "Анна", "phone": "+79997000010" })).await;
    app.wait_for(delivered, &["approved"]).await;
    assert!(!visitor.page("/admin/sources").await.contains("id=\"stalled-"), "all is well");

    app.crm.emulator.inject_fault(Fault::new(503, FaultLimit::UntilCleared));
    let waiting = app.accept(json!({ "name": "Лев", "phone": "+79997000011" })).await;
    let flagged = poll_until(Duration::from_secs(10), || async {
        visitor.page("/admin/sources").await.contains("id=\"stalled-trendagent\"")
    })
    .await;
    assert!(flagged, "the banner appears once the lead waited and nothing was delivered for 300 ms");
    let page = visitor.page("/admin/sources").await;
    assert!(!page.contains("id=\"stalled-other\""), "a source with nothing waiting is not flagged");

    app.crm.emulator.clear_faults();
    app.wait_for(waiting, &["approved"]).await;
    assert!(!visitor.page("/admin/sources").await.contains("id=\"stalled-"), "delivering again");
    app.stop().await;
}

#[tokio::test]
async fn an_admin_routes_an_unrouted_portal_lead_to_an_advertiser_and_it_reaches_the_crm() {
    use leadgate::domain::{LeadId, LeadStatus};

    let app = spawn_app_with(Setup { zap: true, console: Some(console_config()), ..Setup::default() }).await;
    add_user(&app, ADMIN, Role::Admin).await;
    add_user(&app, VIEWER, Role::Viewer).await;
    app.store.upsert_advertisers(&[portal_advertiser("777", true), portal_advertiser("gone", false)]).await.unwrap();
    let sample = crate::zap::sample("x-7", "not-yet-listed", "999990007");
    let accepted = crate::zap::post(&app, "/grupozap/lead", &sample, crate::zap::PORTAL).await;
    let id = accepted.json::<serde_json::Value>().await.unwrap()["id"].as_i64().unwrap();
    let status = || async { app.store.find_lead(LeadId(id)).await.unwrap().unwrap().status };
    assert_eq!(status().await, LeadStatus::Unrouted);

    let viewer = Visitor::new(&app);
    let viewer_csrf = viewer.log_in(VIEWER).await;
    assert!(!viewer.page(&format!("/admin/leads/{id}")).await.contains("id=\"route\""));
    let refused =
        viewer.post(&format!("/admin/leads/{id}/route"), &[("csrf", &viewer_csrf), ("advertiser", "777")]).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    let admin = Visitor::new(&app);
    let csrf = admin.log_in(ADMIN).await;
    let page = admin.page(&format!("/admin/leads/{id}")).await;
    assert!(page.contains("<option value=\"777\">") && !page.contains("value=\"gone\""), "enabled advertisers only");
    let path = format!("/admin/leads/{id}/route");
    assert_eq!(admin.post(&path, &[("csrf", &csrf), ("advertiser", "gone")]).await.status(), StatusCode::BAD_REQUEST);
    let routed = admin.post(&path, &[("csrf", &csrf), ("advertiser", "777")]).await;
    assert_eq!(routed.headers()[LOCATION], format!("/admin/leads/{id}?done=routed"));
    let delivered = poll_until(Duration::from_secs(15), || async { status().await == LeadStatus::Approved }).await;
    assert!(delivered, "the routed lead reaches the advertiser's pipeline");
    assert!(app.crm.emulator.leads().iter().any(|deal| deal.pipeline == "TrendAgent"));
    assert!(admin.page("/admin/audit").await.contains(&format!("lead {id} to advertiser 777")));
    app.stop().await;
}

/// An advertiser of the portal source `zap`, routed to the TrendAgent pipeline.
fn portal_advertiser(id: &str, enabled: bool) -> leadgate::domain::advertiser::Advertiser {
    use leadgate::domain::advertiser::{Advertiser, AdvertiserId, AdvertiserRoute};
    Advertiser {
        source: leadgate::domain::SourceId("zap".to_owned()),
        id: AdvertiserId::parse(id).unwrap(),
        document: leadgate::domain::document::Document::parse("11222333000181").unwrap(),
        name: format!("Imobiliária {id}"),
        email: Some(leadgate::domain::Email::parse("corretor@example.com.br").unwrap()),
        send_lead_email: false,
        route: AdvertiserRoute {
            destination: None,
            pipeline: Some("TrendAgent".to_owned()),
            status: Some("Объект выбран".to_owned()),
        },
        listings: vec![format!("listing-{id}")],
        enabled,
    }
}

#[tokio::test]
async fn an_admin_disables_an_advertiser_whose_url_then_answers_404_and_exports_the_portal_file() {
    let setup = Setup {
        zap: true,
        console: Some(console_config()),
        public_url: Some("https://leads.example.com"),
        ..Setup::default()
    };
    let app = spawn_app_with(setup).await;
    add_user(&app, ADMIN, Role::Admin).await;
    add_user(&app, VIEWER, Role::Viewer).await;
    app.store.upsert_advertisers(&[portal_advertiser("777", true), portal_advertiser("888", true)]).await.unwrap();
    let sample = || crate::zap::sample("x-8", "listing-777", "999990008");

    let viewer = Visitor::new(&app);
    let viewer_csrf = viewer.log_in(VIEWER).await;
    let listed = viewer.page("/admin/advertisers").await;
    assert!(listed.contains("Imobiliária 777") && !listed.contains("11222333000181"), "no CNPJ for viewers");
    let form = [("csrf", viewer_csrf.as_str()), ("source", "zap"), ("id", "777"), ("enabled", "false")];
    assert_eq!(viewer.post("/admin/advertisers/enabled", &form).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(viewer.get("/admin/advertisers/export.csv").await.status(), StatusCode::FORBIDDEN);

    let admin = Visitor::new(&app);
    let csrf = admin.log_in(ADMIN).await;
    let form = [("csrf", csrf.as_str()), ("source", "zap"), ("id", "777"), ("enabled", "false")];
    assert_eq!(admin.post("/admin/advertisers/enabled", &form).await.headers()[LOCATION], "/admin/advertisers");
    let gone = crate::zap::post(&app, "/grupozap/lead/777", &sample(), crate::zap::PORTAL).await;
    assert_eq!(gone.status(), 404, "the portal reads 404 as the integration removed");
    let export = admin.get("/admin/advertisers/export.csv?source=zap").await;
    assert_eq!(export.status(), 200);
    let file = export.text().await.unwrap();
    assert!(file.starts_with("DOCUMENT,URL,SEND_LEAD_EMAIL"), "{file}");
    assert!(file.contains("https://leads.example.com/grupozap/lead/888") && !file.contains("/777"), "{file}");

    let form = [("csrf", csrf.as_str()), ("source", "zap"), ("id", "777"), ("enabled", "true")];
    admin.post("/admin/advertisers/enabled", &form).await;
    let back = crate::zap::post(&app, "/grupozap/lead/777", &sample(), crate::zap::PORTAL).await;
    assert_eq!(back.status(), 200);
    let audit = admin.page("/admin/audit").await;
    assert!(audit.contains("advertiser_disabled") && audit.contains("advertiser_enabled"), "{audit}");
    app.stop().await;
}

pub const GOOD_ADVERTISERS: &str = "DOCUMENT,ID,SEND_LEAD_EMAIL,NAME,LISTINGS,EMAIL\n\
    11222333000181,555,false,Imobiliária 555,l-555,\n\
    11222333000181,556,true,Imobiliária 556,l-556,leads@imobiliaria-556.example.com\n";

async fn upload(visitor: &Visitor, csrf: &str, source: &str, file: &str) -> reqwest::Response {
    let form = reqwest::multipart::Form::new()
        .text("csrf", csrf.to_owned())
        .text("source", source.to_owned())
        .part("file", reqwest::multipart::Part::text(file.to_owned()).file_name("advertisers.csv"));
    visitor.http.post(format!("{}/admin/advertisers/import", visitor.base)).multipart(form).send().await.unwrap()
}

#[tokio::test]
async fn an_admin_imports_an_advertisers_csv_checked_as_the_command_line_checks_it() {
    let app = spawn_app_with(Setup { zap: true, console: Some(console_config()), ..Setup::default() }).await;
    add_user(&app, ADMIN, Role::Admin).await;
    add_user(&app, VIEWER, Role::Viewer).await;
    let zap = leadgate::domain::SourceId("zap".to_owned());

    let viewer = Visitor::new(&app);
    let viewer_csrf = viewer.log_in(VIEWER).await;
    assert_eq!(upload(&viewer, &viewer_csrf, "zap", GOOD_ADVERTISERS).await.status(), StatusCode::FORBIDDEN);
    let admin = Visitor::new(&app);
    let csrf = admin.log_in(ADMIN).await;
    assert_eq!(upload(&admin, "", "zap", GOOD_ADVERTISERS).await.status(), StatusCode::FORBIDDEN, "CSRF");

    let bad = "DOCUMENT,ID,SEND_LEAD_EMAIL\n11222333000181,557,false\n123,558,false\n11222333000181,559,maybe\n";
    let refused = upload(&admin, &csrf, "zap", bad).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let page = refused.text().await.unwrap();
    assert!(page.contains("3: DOCUMENT") && page.contains("4: SEND_LEAD_EMAIL"), "every bad line: {page}");
    assert!(app.store.list_advertisers(Some(&zap), true).await.unwrap().is_empty(), "nothing was written");
    assert_eq!(upload(&admin, &csrf, "trendagent", GOOD_ADVERTISERS).await.status(), StatusCode::BAD_REQUEST);

    let imported = upload(&admin, &csrf, "zap", GOOD_ADVERTISERS).await;
    assert_eq!(imported.headers()[LOCATION], "/admin/advertisers?imported=2&new=2");
    let stored = app.store.list_advertisers(Some(&zap), true).await.unwrap();
    assert_eq!(stored.iter().map(|advertiser| advertiser.id.as_str()).collect::<Vec<_>>(), ["555", "556"]);
    assert!(admin.page("/admin/audit").await.contains("2 advertisers of source zap (2 new)"));
    app.stop().await;
}
