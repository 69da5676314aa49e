//! The visitor gets the number of their request (`wait_for_crm`): in the form's answer and the proxy
//! API's when the CRM answers in time, else by e-mail once the deal exists; never at the cost of
//! the lead's acceptance.

use std::time::{Duration, Instant};

use amocrm_emulator::{Fault, FaultLimit, Latency};
use leadgate::config::{DEFAULT_REGISTERED_MESSAGE, FormSource, WaitForCrm};
use leadgate::domain::LeadId;
use leadgate::notify::visitor_email::VisitorEmailTemplates;
use leadgate::store::FeedbackKind;
use reqwest::multipart::Form;
use serde_json::Value;

use crate::helpers::{
    PROXY_KEY, SUCCESS_MESSAGE, Setup, TestApp, ZAP_PIPELINE, feedback_form, poll_until, proxy_source, spawn_app_with,
};
use crate::smtp_sink::{ReceivedMail, SmtpSink};

const TEAM: &str = "sales@example.ru";
const VISITOR: &str = "anna@example.ru";

fn waiting(wait: Duration) -> WaitForCrm {
    WaitForCrm {
        wait,
        registered_message: DEFAULT_REGISTERED_MESSAGE.to_owned(),
        visitor_email: Some(VisitorEmailTemplates::default()),
    }
}

/// The form without its required file, waiting `wait` for the CRM.
fn waiting_form(wait: Duration) -> FormSource {
    FormSource { require_file: false, wait_for_crm: Some(waiting(wait)), ..feedback_form() }
}

async fn app_with(sink: &SmtpSink, form: FormSource) -> TestApp {
    let setup =
        Setup { smtp_url: Some(sink.url()), notify: vec![TEAM.to_owned()], form: Some(form), ..Setup::default() };
    spawn_app_with(setup).await
}

fn filled() -> Form {
    Form::new()
        .text("name", "Анна Петрова")
        .text("phone", "+7 912 345-67-89")
        .text("email", VISITOR)
        .text("message", "Прошу перезвонить по смете")
}

/// Posts the form as its page's script does; returns the answer and how long it took.
async fn submit(app: &TestApp, accept: &str) -> (reqwest::Response, Duration) {
    let started = Instant::now();
    let response =
        app.http.post(app.url("/forms/feedback")).header("accept", accept).multipart(filled()).send().await.unwrap();
    (response, started.elapsed())
}

async fn submit_for_json(app: &TestApp) -> (Value, Duration) {
    let (response, took) = submit(app, "application/json").await;
    assert_eq!(response.status(), 200);
    (response.json().await.unwrap(), took)
}

fn deal_id(app: &TestApp) -> String {
    let deals = app.crm.emulator.leads_in_pipeline(ZAP_PIPELINE);
    assert_eq!(deals.len(), 1, "{deals:?}");
    deals[0].id.to_string()
}

fn registered(number: &str) -> String {
    format!("Ваша заявка зарегистрирована под номером {number}")
}

/// The message the sink took for `to` alone, once it arrives.
async fn mail_to(sink: &SmtpSink, to: &str) -> ReceivedMail {
    let find = || sink.messages().into_iter().find(|mail| mail.to == [to]);
    let arrived = poll_until(Duration::from_secs(20), || async { find().is_some() }).await;
    assert!(arrived, "no message for {to}: {:#?}", sink.messages());
    find().unwrap()
}

/// The addresses the outbox holds e-mails of lead `id` for, one list per message. Rows are
/// committed with the outcome, so once the lead is settled this is every e-mail it will send.
async fn owed_emails(app: &TestApp, id: i64) -> Vec<Value> {
    let owed = app.store.owed_feedback(LeadId(id)).await.unwrap();
    owed.into_iter().filter(|row| row.kind == FeedbackKind::Email).map(|row| row.payload["to"].clone()).collect()
}

fn to_header(mail: &ReceivedMail) -> &str {
    mail.data.split("\r\n").find(|line| line.starts_with("To:")).expect("a To header")
}

#[tokio::test]
async fn a_form_answer_shows_the_deal_number_when_the_crm_answers_in_time_and_nobody_emails_the_visitor() {
    let sink = SmtpSink::start().await;
    let app = app_with(&sink, waiting_form(Duration::from_secs(5))).await;

    let (body, _) = submit_for_json(&app).await;

    let number = deal_id(&app);
    assert_eq!(body["status"], "ok");
    assert_eq!(body["number"], number.as_str(), "{body}");
    assert_eq!(body["message"], registered(&number), "{body}");
    let id = body["id"].as_i64().unwrap();
    assert_eq!(owed_emails(&app, id).await, [serde_json::json!([TEAM])], "only the team is e-mailed");
    let team = mail_to(&sink, TEAM).await;
    assert!(team.body.contains(&number), "{}", team.body);
    assert_eq!(sink.messages().len(), 1, "{:#?}", sink.messages());
    app.stop().await;
}

#[tokio::test]
async fn a_browser_without_javascript_is_shown_the_number_too() {
    let sink = SmtpSink::start().await;
    let app = app_with(&sink, waiting_form(Duration::from_secs(5))).await;

    let (response, _) = submit(&app, "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8").await;

    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = response.text().await.unwrap();
    assert!(html.contains(&registered(&deal_id(&app))), "{html}");
    assert!(!html.contains(SUCCESS_MESSAGE), "{html}");
    app.stop().await;
}

#[tokio::test]
async fn a_crm_slower_than_the_wait_gets_the_usual_text_and_the_visitor_the_number_by_email_of_its_own() {
    let sink = SmtpSink::start().await;
    let app = app_with(&sink, waiting_form(Duration::from_secs(1))).await;
    let hold = Duration::from_secs(4);
    let latency = Latency { delay: hold, path_prefix: Some("/api/v4/leads".into()), method: Some("POST".into()) };
    app.crm.emulator.set_latency(Some(latency));

    let (body, took) = submit_for_json(&app).await;

    assert_eq!(body["message"], SUCCESS_MESSAGE, "{body}");
    assert!(body.get("number").is_none(), "{body}");
    assert!(took < hold, "the answer waited for the CRM: {took:?}");
    let visitor = mail_to(&sink, VISITOR).await;
    let number = deal_id(&app);
    assert_eq!(visitor.subject, registered(&number));
    assert!(visitor.body.contains(&format!("{}.", registered(&number))), "{}", visitor.body);
    assert!(!to_header(&visitor).contains(TEAM), "{}", visitor.data);
    let team = mail_to(&sink, TEAM).await;
    assert!(!to_header(&team).contains(VISITOR), "{}", team.data);
    let id = body["id"].as_i64().unwrap();
    let mut owed = owed_emails(&app, id).await;
    owed.sort_by_key(ToString::to_string);
    assert_eq!(owed, [serde_json::json!([VISITOR]), serde_json::json!([TEAM])]);
    app.stop().await;
}

#[tokio::test]
async fn a_crm_that_is_down_leaves_the_lead_accepted_and_the_visitor_gets_the_number_after_it_recovers() {
    let sink = SmtpSink::start().await;
    let app = app_with(&sink, waiting_form(Duration::from_secs(1))).await;
    app.crm.emulator.inject_fault(Fault::new(503, FaultLimit::UntilCleared));

    let (body, _) = submit_for_json(&app).await;

    assert_eq!(body["status"], "ok");
    assert_eq!(body["message"], SUCCESS_MESSAGE, "{body}");
    let id = body["id"].as_i64().unwrap();
    let lead = app.store.find_lead(LeadId(id)).await.unwrap().expect("the lead is stored");
    assert!(lead.outcome.is_none(), "{lead:?}");
    app.crm.emulator.clear_faults();
    let visitor = mail_to(&sink, VISITOR).await;
    assert_eq!(visitor.subject, registered(&deal_id(&app)));
    app.stop().await;
}

#[tokio::test]
async fn a_form_that_keeps_its_leads_from_the_crm_answers_without_waiting() {
    let sink = SmtpSink::start().await;
    let wait = Duration::from_secs(5);
    let app = app_with(&sink, FormSource { send_to_crm: false, ..waiting_form(wait) }).await;

    let (body, took) = submit_for_json(&app).await;

    assert_eq!(body["message"], SUCCESS_MESSAGE, "{body}");
    assert!(took < wait, "a skipped lead waited for a CRM it never goes to: {took:?}");
    app.stop().await;
}

async fn proxy_app(wait: Duration) -> TestApp {
    let proxy = leadgate::config::ProxySource { wait_for_crm: Some(waiting(wait)), ..proxy_source() };
    spawn_app_with(Setup { proxy: Some(proxy), ..Setup::default() }).await
}

async fn add(app: &TestApp, extra: &[(&str, &str)]) -> (reqwest::StatusCode, Value) {
    let response = app
        .http
        .get(app.url("/api/proxy/1.0/leads/add"))
        .query(&[("key", PROXY_KEY), ("name", "Анна"), ("phone", "89123456789"), ("email", VISITOR)])
        .query(extra)
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

#[tokio::test]
async fn a_proxy_site_that_waits_gets_the_deal_number_and_the_registered_message_without_sync() {
    let app = proxy_app(Duration::from_secs(5)).await;

    let (status, body) = add(&app, &[]).await;

    assert_eq!(status, 200, "{body}");
    let number = deal_id(&app);
    assert_eq!(body["status"], "success");
    assert_eq!(body["deal_number"], number.as_str(), "{body}");
    assert_eq!(body["message"], registered(&number), "{body}");
    assert_eq!(body["deal_id"].to_string(), number, "{body}");
    app.stop().await;
}

#[tokio::test]
async fn a_waiting_proxy_sites_sync_request_gets_the_number_as_well() {
    let app = proxy_app(Duration::from_secs(5)).await;

    let (status, body) = add(&app, &[("sync", "1")]).await;

    assert_eq!(status, 200, "{body}");
    let number = deal_id(&app);
    assert_eq!(body["deal_number"], number.as_str(), "{body}");
    assert_eq!(body["message"], registered(&number), "{body}");
    app.stop().await;
}

#[tokio::test]
async fn a_proxy_site_that_waits_for_a_crm_that_is_down_gets_the_plain_success_answer() {
    let app = proxy_app(Duration::from_secs(1)).await;
    app.crm.emulator.inject_fault(Fault::new(503, FaultLimit::UntilCleared));

    let (status, body) = add(&app, &[]).await;

    assert_eq!(status, 200, "{body}");
    let id = body["id"].as_i64().expect("the lead's id");
    assert_eq!(body, serde_json::json!({ "status": "success", "id": id }));
    assert!(app.store.find_lead(LeadId(id)).await.unwrap().is_some());
    app.stop().await;
}
