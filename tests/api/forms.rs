//! Website forms over HTTP: what a visitor's browser (or a bot) sends to `POST /forms/feedback`,
//! what it gets back, and what reaches the CRM and the file store.

use std::path::{Path, PathBuf};
use std::time::Duration;

use leadgate::config::FormSource;
use leadgate::domain::{Lead, LeadId, LeadStatus};
use reqwest::multipart::{Form, Part};
use serde_json::Value;

use crate::helpers::{
    SUCCESS_MESSAGE, Setup, TestApp, ZAP_PIPELINE, ZAP_STAGE, feedback_form, poll_until, spawn_app_with,
};

const MIB: usize = 1024 * 1024;
const PHONE: &str = "+7 912 345-67-89";
const PHONE_E164: &str = "+79123456789";

async fn form_app(form: FormSource) -> TestApp {
    spawn_app_with(Setup { form: Some(form), ..Setup::default() }).await
}

/// The feedback form's text fields as a visitor fills them in.
fn filled() -> Form {
    Form::new()
        .text("name", "Анна Петрова")
        .text("phone", PHONE)
        .text("email", "anna@example.ru")
        .text("message", "Прошу перезвонить по смете")
}

/// `size` bytes that are not all alike, so a truncated or shifted copy cannot pass for the original.
fn content(size: usize, seed: u8) -> Vec<u8> {
    (0..size).map(|index| (index % 251) as u8 ^ seed).collect()
}

fn file(name: &str, bytes: Vec<u8>) -> Part {
    Part::bytes(bytes).file_name(name.to_owned()).mime_str("application/pdf").unwrap()
}

/// Posts the form as the page's script does (asking for JSON).
async fn submit(app: &TestApp, form: Form) -> reqwest::Response {
    app.http.post(app.url("/forms/feedback")).header("accept", "application/json").multipart(form).send().await.unwrap()
}

async fn json_of(response: reqwest::Response) -> Value {
    response.json().await.unwrap()
}

async fn stored_leads(app: &TestApp) -> Vec<Lead> {
    app.store.list_leads(None, None, 10).await.unwrap()
}

async fn stored_lead(app: &TestApp, id: i64) -> Lead {
    app.store.find_lead(LeadId(id)).await.unwrap().unwrap()
}

/// Every regular file under `dir`, at any depth.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else {
            found.push(path);
        }
    }
    found
}

/// The names directly inside `dir`.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A refused submission leaves no lead and no file (the empty directory a discarded file was
/// filed under may stay).
async fn assert_nothing_stored(app: &TestApp) {
    assert!(stored_leads(app).await.is_empty(), "a refused submission was stored as a lead");
    assert_eq!(files_under(&app.files_dir), Vec::<PathBuf>::new(), "a refused submission left files behind");
}

async fn wait_until_status(app: &TestApp, id: i64, wanted: LeadStatus) -> Lead {
    let reached = poll_until(Duration::from_secs(15), || async { stored_lead(app, id).await.status == wanted }).await;
    let lead = stored_lead(app, id).await;
    assert!(reached, "lead {id} never became {wanted:?}: {:?} {:?}", lead.status, lead.last_error);
    lead
}

/// The link the CRM note gives for the file `name`.
fn link_in_note(note: &str, name: &str) -> String {
    let line = note.lines().find(|line| line.contains(name)).unwrap_or_else(|| panic!("{name} not in:\n{note}"));
    let start = line.find("http://").unwrap_or_else(|| panic!("no link on the line for {name}: {line}"));
    line[start..].split_whitespace().next().unwrap().to_owned()
}

#[tokio::test]
async fn a_form_with_a_file_becomes_a_tagged_deal_whose_note_links_to_the_file() {
    let app = form_app(feedback_form()).await;
    let bytes = content(40_000, 7);
    let response = submit(&app, filled().part("files", file("смета.pdf", bytes.clone()))).await;

    assert_eq!(response.status(), 200);
    let body = json_of(response).await;
    assert_eq!(body["status"], "ok");
    assert_eq!(body["message"], SUCCESS_MESSAGE);
    let id = body["id"].as_i64().expect("the answer carries the lead's id");
    wait_until_status(&app, id, LeadStatus::Approved).await;

    let deals = app.crm.emulator.leads();
    assert_eq!(deals.len(), 1);
    assert_eq!((deals[0].pipeline.as_str(), deals[0].status.as_str()), (ZAP_PIPELINE, ZAP_STAGE));
    for tag in ["site", "feedback"] {
        assert!(deals[0].tags.iter().any(|found| found == tag), "tag {tag} missing: {:?}", deals[0].tags);
    }
    let contacts = app.crm.emulator.contacts();
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0].phones, [PHONE_E164]);
    assert_eq!(contacts[0].emails, ["anna@example.ru"]);

    let notes = app.crm.emulator.notes();
    let note = notes
        .iter()
        .filter(|note| note.entity_type == "leads" && note.entity_id == deals[0].id)
        .find_map(|note| note.text.clone())
        .expect("the deal has a note");
    assert!(note.contains("Прошу перезвонить по смете"), "{note}");
    let link = link_in_note(&note, "смета.pdf");
    assert!(link.starts_with(&format!("http://{}/files/", app.address)), "{link}");

    let download = app.http.get(&link).send().await.unwrap();
    assert_eq!(download.status(), 200);
    let disposition = download.headers()["content-disposition"].to_str().unwrap().to_owned();
    assert!(disposition.starts_with("attachment"), "{disposition}");
    assert_eq!(download.bytes().await.unwrap(), bytes, "the download is the uploaded file");
    app.stop().await;
}

#[tokio::test]
async fn a_form_without_the_required_file_is_refused_with_attach_a_file() {
    let app = form_app(feedback_form()).await;
    let response = submit(&app, filled()).await;

    assert_eq!(response.status(), 400);
    let body = json_of(response).await;
    assert_eq!(body["status"], "error");
    assert_eq!(body["errors"]["files"], "Прикрепите файл", "{body}");
    assert_nothing_stored(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn an_empty_file_input_counts_as_no_file() {
    let app = form_app(feedback_form()).await;
    // What a browser sends for a file input left empty: a part with an empty file name and no bytes.
    let response = submit(&app, filled().part("files", file("", Vec::new()))).await;

    assert_eq!(response.status(), 400);
    assert_eq!(json_of(response).await["errors"]["files"], "Прикрепите файл");
    assert_nothing_stored(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn files_up_to_the_size_limit_are_accepted_whole() {
    let app = form_app(feedback_form()).await;
    let sizes = [("small.pdf", 10), ("almost.pdf", MIB - 1), ("exactly.pdf", MIB)];
    for (seed, (name, size)) in sizes.into_iter().enumerate() {
        let bytes = content(size, seed as u8);
        let response = submit(&app, filled().part("files", file(name, bytes.clone()))).await;
        assert_eq!(response.status(), 200, "{name} of {size} bytes");
        let id = json_of(response).await["id"].as_i64().unwrap();

        let lead = stored_lead(&app, id).await;
        let attachments = &lead.fields.deal.attachments;
        assert_eq!(attachments.len(), 1);
        assert_eq!((attachments[0].name.as_str(), attachments[0].size), (name, size as u64));
        let download = app.http.get(&attachments[0].url).send().await.unwrap();
        assert_eq!(download.status(), 200);
        assert_eq!(download.bytes().await.unwrap(), bytes, "{name} comes back as sent");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_file_over_the_limit_is_refused_and_nothing_is_kept() {
    let app = form_app(feedback_form()).await;
    let response = submit(&app, filled().part("files", file("big.pdf", content(MIB + 1, 1)))).await;

    assert_eq!(response.status(), 400);
    let body = json_of(response).await;
    assert_eq!(body["errors"]["files"], "Файл «big.pdf» больше 1 МБ", "{body}");
    assert!(stored_leads(&app).await.is_empty());
    assert_eq!(names_in(&app.files_dir), ["incoming"], "only the empty upload directory remains");
    assert_eq!(names_in(&app.files_dir.join("incoming")), Vec::<String>::new());
    app.stop().await;
}

#[tokio::test]
async fn a_good_file_sent_with_a_too_large_one_is_not_kept_either() {
    let app = form_app(feedback_form()).await;
    let form =
        filled().part("files", file("big.pdf", content(2 * MIB, 2))).part("files", file("ok.pdf", content(100, 3)));
    let response = submit(&app, form).await;

    assert_eq!(response.status(), 400);
    assert_eq!(json_of(response).await["errors"]["files"], "Файл «big.pdf» больше 1 МБ");
    assert_nothing_stored(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn more_files_than_allowed_are_refused_and_none_is_kept() {
    let app = form_app(feedback_form()).await;
    let form = (0..4u8)
        .fold(filled(), |form, index| form.part("files", file(&format!("scan-{index}.pdf"), content(500, index))));
    let response = submit(&app, form).await;

    assert_eq!(response.status(), 400);
    assert_eq!(json_of(response).await["errors"]["files"], "Можно прикрепить файлов: не больше 3");
    assert_nothing_stored(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn a_missing_name_and_a_bad_phone_are_each_reported_at_their_field() {
    let app = form_app(feedback_form()).await;
    let form = Form::new()
        .text("name", "   ")
        .text("phone", "12345")
        .text("message", "Без имени")
        .part("files", file("scan.pdf", content(300, 4)));
    let response = submit(&app, form).await;

    assert_eq!(response.status(), 400);
    let body = json_of(response).await;
    assert_eq!(body["status"], "error");
    let errors = body["errors"].as_object().unwrap();
    assert_eq!(errors.len(), 2, "{body}");
    assert_eq!(errors["name"], "Заполните поле");
    assert_eq!(errors["phone"], "Укажите номер телефона полностью, с кодом города");
    assert_nothing_stored(&app).await;
    app.stop().await;
}

fn only_example_ru() -> FormSource {
    FormSource { allowed_sites: vec!["example.ru".to_owned()], ..feedback_form() }
}

async fn submit_from(app: &TestApp, origin: &str) -> reqwest::Response {
    let form = filled().part("files", file("scan.pdf", content(300, 5)));
    app.http
        .post(app.url("/forms/feedback"))
        .header("accept", "application/json")
        .header("origin", origin)
        .multipart(form)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_form_limited_to_its_sites_refuses_another_site() {
    let app = form_app(only_example_ru()).await;
    let response = submit_from(&app, "https://evil.example").await;

    assert_eq!(response.status(), 403);
    assert!(response.headers().get("access-control-allow-origin").is_none());
    assert_nothing_stored(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn a_form_limited_to_its_sites_takes_a_subdomain_and_lets_its_page_read_the_answer() {
    let app = form_app(only_example_ru()).await;
    let response = submit_from(&app, "https://www.example.ru").await;

    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["access-control-allow-origin"], "https://www.example.ru");
    assert_eq!(json_of(response).await["status"], "ok");
    assert_eq!(stored_leads(&app).await.len(), 1);
    app.stop().await;
}

async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    app.http
        .request(reqwest::Method::OPTIONS, app.url("/forms/feedback"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "accept")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_browser_preflight_is_allowed_only_for_the_forms_sites() {
    let app = form_app(only_example_ru()).await;

    let allowed = preflight(&app, "https://example.ru").await;
    assert!(allowed.status().is_success(), "{}", allowed.status());
    assert_eq!(allowed.headers()["access-control-allow-origin"], "https://example.ru");
    let methods = allowed.headers()["access-control-allow-methods"].to_str().unwrap().to_owned();
    assert!(methods.contains("POST"), "{methods}");

    let refused = preflight(&app, "https://evil.example").await;
    assert!(refused.headers().get("access-control-allow-origin").is_none(), "{:?}", refused.headers());
    app.stop().await;
}

#[tokio::test]
async fn a_bot_filling_the_hidden_field_is_told_ok_but_nothing_is_stored() {
    let app = form_app(feedback_form()).await;
    let form = filled().text("website", "https://spam.example").part("files", file("spam.pdf", content(700, 6)));
    let response = submit(&app, form).await;

    assert_eq!(response.status(), 200);
    let body = json_of(response).await;
    assert_eq!(body["status"], "ok");
    assert_eq!(body["message"], SUCCESS_MESSAGE);
    assert_nothing_stored(&app).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.crm.emulator.leads_count(), 0);
    app.stop().await;
}

#[tokio::test]
async fn a_visitor_over_the_per_minute_limit_gets_429() {
    let app = form_app(FormSource { per_ip_per_minute: 2, ..feedback_form() }).await;
    for attempt in 0..2u8 {
        let response = submit(&app, filled().part("files", file("scan.pdf", content(200, attempt)))).await;
        assert_eq!(response.status(), 200, "submission {attempt}");
    }
    let third = submit(&app, filled().part("files", file("scan.pdf", content(200, 9)))).await;

    assert_eq!(third.status(), 429);
    assert_eq!(json_of(third).await["status"], "error");
    assert_eq!(stored_leads(&app).await.len(), 2);
    app.stop().await;
}

#[tokio::test]
async fn a_form_not_sending_to_the_crm_keeps_the_lead_as_skipped() {
    let app = form_app(FormSource { send_to_crm: false, ..feedback_form() }).await;
    let response = submit(&app, filled().part("files", file("scan.pdf", content(200, 8)))).await;
    assert_eq!(response.status(), 200);
    let id = json_of(response).await["id"].as_i64().unwrap();

    let lead = stored_lead(&app, id).await;
    assert_eq!(lead.status, LeadStatus::Skipped);
    assert_eq!(lead.fields.deal.attachments.len(), 1, "the file is kept with the lead");
    // Several worker rounds (every 100 ms in tests) pass without the CRM hearing of it.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(stored_lead(&app, id).await.status, LeadStatus::Skipped);
    assert_eq!(app.crm.emulator.leads_count(), 0);
    assert_eq!(app.crm.emulator.contacts_count(), 0);
    app.stop().await;
}

#[tokio::test]
async fn a_form_without_files_can_be_posted_urlencoded() {
    let app = form_app(FormSource { require_file: false, ..feedback_form() }).await;
    let response = app
        .http
        .post(app.url("/forms/feedback"))
        .header("accept", "application/json")
        .form(&[("name", "Иван"), ("phone", PHONE), ("message", "Первая строка\r\nвторая строка")])
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    let id = json_of(response).await["id"].as_i64().unwrap();
    let lead = wait_until_status(&app, id, LeadStatus::Approved).await;
    assert_eq!(lead.fields.name, "Иван");
    assert_eq!(lead.fields.phone.e164(), PHONE_E164);
    assert_eq!(lead.fields.comment.as_deref(), Some("Первая строка\nвторая строка"));
    assert!(lead.fields.deal.attachments.is_empty());
    assert_eq!(app.crm.emulator.leads_in_pipeline(ZAP_PIPELINE).len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn the_form_page_shows_every_field_and_the_file_input() {
    let app = form_app(feedback_form()).await;
    let response = app.http.get(app.url("/forms/feedback")).send().await.unwrap();

    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = response.text().await.unwrap();
    assert!(html.contains("<h1 id=\"lg-heading\">Обратная связь</h1>"), "{html}");
    for label in ["Имя", "Телефон", "E-mail", "Сообщение", "Файлы"] {
        assert!(html.contains(&format!(">{label}")), "label {label} missing");
    }
    for name in ["name", "phone", "email", "message"] {
        assert!(html.contains(&format!("name=\"{name}\"")), "input {name} missing");
    }
    assert!(html.contains(r#"id="lg-files" name="files" type="file" multiple required"#), "{html}");
    assert!(html.contains("До 3 файлов, каждый до 1 МБ"));
    app.stop().await;
}

#[tokio::test]
async fn the_embed_script_is_javascript_for_this_form() {
    let app = form_app(feedback_form()).await;
    let response = app.http.get(app.url("/forms/feedback/embed.js")).send().await.unwrap();

    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/javascript"));
    let script = response.text().await.unwrap();
    assert!(script.contains(r#""feedback""#), "{script}");
    assert!(!script.contains("__LEADGATE_"));
    app.stop().await;
}

#[tokio::test]
async fn an_unknown_form_is_404() {
    let app = form_app(feedback_form()).await;
    for path in ["/forms/nosuch", "/forms/nosuch/embed.js"] {
        assert_eq!(app.http.get(app.url(path)).send().await.unwrap().status(), 404, "{path}");
    }
    let posted = app.http.post(app.url("/forms/nosuch")).multipart(filled()).send().await.unwrap();
    assert_eq!(posted.status(), 404);
    // A partner source is not a form either.
    assert_eq!(app.http.get(app.url("/forms/trendagent")).send().await.unwrap().status(), 404);
    assert!(stored_leads(&app).await.is_empty());
    app.stop().await;
}

async fn submit_without_script(app: &TestApp, form: Form) -> reqwest::Response {
    app.http
        .post(app.url("/forms/feedback"))
        .header("accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
        .multipart(form)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_browser_without_javascript_gets_a_page_saying_the_lead_was_sent() {
    let app = form_app(feedback_form()).await;
    let response = submit_without_script(&app, filled().part("files", file("scan.pdf", content(900, 10)))).await;

    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = response.text().await.unwrap();
    assert!(html.contains(SUCCESS_MESSAGE), "{html}");
    assert!(html.contains(">Хорошо</a>"), "{html}");
    assert_eq!(stored_leads(&app).await.len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_browser_without_javascript_sees_what_to_fix_on_the_result_page() {
    let app = form_app(feedback_form()).await;
    let response = submit_without_script(&app, filled()).await;

    assert_eq!(response.status(), 400);
    let html = response.text().await.unwrap();
    assert!(html.contains("Файлы: Прикрепите файл"), "{html}");
    assert!(html.contains("Вернуться к форме"), "{html}");
    assert!(!html.contains(SUCCESS_MESSAGE));
    assert_nothing_stored(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn a_body_larger_than_any_form_takes_is_refused_with_413_and_leaves_no_partial_file() {
    let app = form_app(feedback_form()).await;
    // Three files of 1 MiB plus text is the most this form takes; 6 MiB is cut off mid-stream.
    let response = submit(&app, filled().part("files", file("huge.pdf", content(6 * 1024 * 1024, 9)))).await;
    assert_eq!(response.status(), 413);
    let body = json_of(response).await;
    assert_eq!(body["status"], "error");
    assert!(body["message"].as_str().unwrap().contains("слишком большие"), "{body}");
    assert_nothing_stored(&app).await;
}

#[tokio::test]
async fn only_the_forms_sites_may_frame_its_page() {
    let mut form = feedback_form();
    form.allowed_sites = vec!["example.ru".to_owned()];
    let app = form_app(form).await;
    let response = app.http.get(app.url("/forms/feedback?embed=1")).send().await.unwrap();
    let policy = response.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert_eq!(policy, "frame-ancestors 'self' example.ru *.example.ru");
}

/// The feedback form of a Russian site: a personal-data consent checkbox (152-ФЗ), no file needed.
fn with_consent() -> FormSource {
    FormSource {
        require_file: false,
        consent: Some(Box::new(leadgate::config::Consent {
            text: "Я согласен на обработку персональных данных".to_owned(),
            policy_url: url::Url::parse("https://example.ru/privacy").unwrap(),
        })),
        ..feedback_form()
    }
}

#[tokio::test]
async fn a_form_asking_for_consent_refuses_a_submission_without_it_and_stores_nothing() {
    let app = form_app(with_consent()).await;
    for form in [filled(), filled().text("consent", "")] {
        let response = submit(&app, form).await;
        assert_eq!(response.status(), 400);
        let body = json_of(response).await;
        let errors = body["errors"].as_object().unwrap();
        assert_eq!(errors.keys().collect::<Vec<_>>(), ["consent"], "{body}");
        assert!(errors["consent"].as_str().unwrap().contains("согласия"), "{body}");
    }
    assert_nothing_stored(&app).await;

    let page = app.http.get(app.url("/forms/feedback")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains(r#"name="consent" type="checkbox""#), "{page}");
    assert!(
        page.contains(r#"href="https:&#x2f;&#x2f;example.ru&#x2f;privacy" target="_blank" rel="noopener noreferrer""#)
    );
    app.stop().await;
}

#[tokio::test]
async fn a_ticked_consent_is_stored_with_the_lead_and_the_crm_note_says_it_was_given() {
    let app = form_app(with_consent()).await;
    let before = chrono::Utc::now() - chrono::Duration::seconds(1);
    let response = submit(&app, filled().text("consent", "yes")).await;
    assert_eq!(response.status(), 200);
    let id = json_of(response).await["id"].as_i64().unwrap();

    let lead = wait_until_status(&app, id, LeadStatus::Approved).await;
    let consent = &lead.fields.payload["consent"];
    assert_eq!(consent["given"], true);
    assert_eq!(consent["text"], "Я согласен на обработку персональных данных");
    assert_eq!(consent["policy_url"], "https://example.ru/privacy");
    let at = chrono::DateTime::parse_from_rfc3339(consent["at"].as_str().unwrap()).unwrap();
    assert!(at >= before && at <= chrono::Utc::now(), "{at}");

    let notes = app.crm.emulator.notes();
    let note = notes.iter().find_map(|note| note.text.clone()).expect("the deal has a note");
    assert!(
        note.contains("Согласие на обработку персональных данных дано")
            && note.contains("«Я согласен на обработку персональных данных» (политика: https://example.ru/privacy)"),
        "{note}"
    );
    app.stop().await;
}
