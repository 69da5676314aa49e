//! The seed's own CRM (session cookie + CSRF header) behind a website form: the whole flow, its
//! session troubles, a wrong password, and routes it cannot take.

use std::time::Duration;

use leadgate::domain::{EntityKind, LeadStatus};
use reqwest::multipart::{Form, Part};
use session_crm_emulator::SessionCrmConfig;

use crate::conformance::{Crm, SITE_KEY, config, open_store, own_destination, settled};
use crate::helpers::{SOURCE_KEY, SUCCESS_MESSAGE, TestProcess, poll_until};
use crate::smtp_sink::SmtpSink;

/// The seed's form: name, phone, e-mail, company, message and a file, to the company's own CRM.
const FORM: &str = r#"
[sources.feedback]
kind = "form"
destination = "main"
service = "Коммерческая услуга"
subject = "Заявка с сайта"
retry = { backoff = "exponential" }
fields = { name = "name", phone = "phone", email = "email", comment = "message" }
max_files = 2
"#;

const PDF: &[u8] = b"%PDF-1.4 the visitor's specification";

fn form_config(crm_url: &str, password: &str) -> String {
    let destination =
        own_destination(crm_url).replace("password = \"sandbox-password\"", &format!("password = \"{password}\""));
    format!(
        "[worker]\ninterval = \"100ms\"\nlease = \"1s\"\nretry_initial = \"200ms\"\nretry_max = \"1s\"\n{destination}{FORM}"
    )
}

async fn submit_form(base: &str) -> i64 {
    answer_to_form(base).await["id"].as_i64().unwrap()
}

/// The form's JSON answer, as the page's script reads it.
async fn answer_to_form(base: &str) -> serde_json::Value {
    let form = Form::new()
        .text("name", "Ирина Соколова")
        .text("phone", "+7 (999) 510-00-11")
        .text("email", "irina@example.ru")
        .text("company", "ООО «Вектор»")
        .text("message", "Нужна консультация по поставке")
        .part("file", Part::bytes(PDF.to_vec()).file_name("ТЗ.pdf").mime_str("application/pdf").unwrap());
    let response = reqwest::Client::new()
        .post(format!("{base}/forms/feedback"))
        .header("accept", "application/json")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn a_new_client_from_the_form_gets_organization_contact_ticket_message_and_file_in_that_order() {
    let crm = session_crm_emulator::spawn(SessionCrmConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = format!("{}wait_for_crm = \"5s\"\n", form_config(&crm.base_url(), "sandbox-password"));
    let gateway = TestProcess::serve(dir.path(), &config).await;
    let store = open_store(dir.path()).await;

    let answer = answer_to_form(&format!("http://{}", gateway.address)).await;
    let lead = settled(&store, answer["id"].as_i64().unwrap(), &[LeadStatus::Approved]).await;

    assert_eq!(answer["number"], "T-000123", "the visitor sees the ticket's number: {answer}");
    assert_eq!(answer["message"], "Ваша заявка зарегистрирована под номером T-000123");
    let (organizations, contacts, tickets) = (crm.crm.organizations(), crm.crm.contacts(), crm.crm.tickets());
    assert_eq!(organizations.len(), 1);
    assert_eq!(organizations[0].name, "ООО «Вектор»", "the company field names the organization");
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0].organization_id, Some(organizations[0].id), "the contact belongs to it");
    assert_eq!(contacts[0].phone.as_deref(), Some("+79995100011"));
    assert_eq!(tickets.len(), 1);
    let ticket = &tickets[0];
    assert_eq!((ticket.contact_id, ticket.partner_id), (contacts[0].id, Some(organizations[0].id)));
    assert_eq!((ticket.service.as_str(), ticket.subject.as_str()), ("Коммерческая услуга", "Заявка с сайта"));
    for field in ["Ирина Соколова", "ООО «Вектор»", "Нужна консультация по поставке"]
    {
        assert!(ticket.description.contains(field), "every field of the form is in the ticket: {}", ticket.description);
    }
    assert_eq!(ticket.messages.len(), 1);
    assert!(ticket.messages[0].text.contains("Нужна консультация по поставке"), "{}", ticket.messages[0].text);
    assert_eq!(ticket.files.len(), 1);
    assert_eq!((ticket.files[0].file_name.as_str(), ticket.files[0].content.as_slice()), ("ТЗ.pdf", PDF));

    let creates: Vec<String> = crm
        .crm
        .requests()
        .into_iter()
        .filter(|request| request.method == "POST" && request.path != session_crm_emulator::LOGIN_PATH)
        .map(|request| request.path)
        .collect();
    let ticket_path = format!("/api/tickets/{}", ticket.id);
    let expected = [
        "/api/organizations".to_owned(),
        "/api/contacts".to_owned(),
        "/api/tickets".to_owned(),
        format!("{ticket_path}/messages"),
        format!("{ticket_path}/files"),
    ];
    assert_eq!(creates, expected, "the seed's order, each once");

    let outcome = lead.outcome.unwrap();
    assert_eq!(outcome.decision.as_str(), "new_client");
    let kinds: Vec<EntityKind> = outcome.entities.iter().map(|entity| entity.record.kind).collect();
    use EntityKind::*;
    assert_eq!(kinds, [Organization, Contact, Ticket, Message, File]);
    let made_ticket = outcome.deal().unwrap();
    assert_eq!(made_ticket.record.number.as_deref(), Some(ticket.number.as_str()));
    assert_eq!(made_ticket.url.as_deref(), Some(format!("{}/tickets/{}", crm.base_url(), ticket.id).as_str()));
}

#[tokio::test]
async fn a_known_contact_gets_the_ticket_on_its_own_organization_and_no_new_one() {
    let crm = session_crm_emulator::spawn(SessionCrmConfig::default()).await.unwrap();
    let known = crm.crm.seed_contact("Ирина", Some("irina@example.ru"), None, Some("ООО «Вектор»"));
    let dir = tempfile::tempdir().unwrap();
    let gateway = TestProcess::serve(dir.path(), &form_config(&crm.base_url(), "sandbox-password")).await;
    let store = open_store(dir.path()).await;

    let id = submit_form(&format!("http://{}", gateway.address)).await;
    let lead = settled(&store, id, &[LeadStatus::Approved]).await;

    assert_eq!(lead.outcome.unwrap().decision.as_str(), "known_client_new_deal");
    assert_eq!(crm.crm.organizations().len(), 1, "no second organization");
    assert_eq!(crm.crm.contacts().len(), 1, "no second contact");
    let ticket = &crm.crm.tickets()[0];
    assert_eq!((ticket.contact_id, ticket.partner_id), (known.id, known.organization_id));
}

#[tokio::test]
async fn a_session_that_expires_mid_flow_costs_one_login_and_the_flow_goes_on() {
    let crm = session_crm_emulator::spawn(SessionCrmConfig::default()).await.unwrap();
    crm.crm.hold(Some(("POST", "/messages", Duration::from_millis(800))));
    let dir = tempfile::tempdir().unwrap();
    let gateway = TestProcess::serve(dir.path(), &form_config(&crm.base_url(), "sandbox-password")).await;
    let store = open_store(dir.path()).await;

    let id = submit_form(&format!("http://{}", gateway.address)).await;
    assert!(poll_until(Duration::from_secs(10), || async { !crm.crm.tickets().is_empty() }).await);
    // The message is on its way and held; the session dies under it.
    crm.crm.expire_sessions();
    crm.crm.hold(None);
    let lead = settled(&store, id, &[LeadStatus::Approved]).await;

    assert_eq!(crm.crm.login_count(), 2, "one login, then exactly one more");
    let ticket = &crm.crm.tickets()[0];
    assert_eq!((ticket.messages.len(), ticket.files.len()), (1, 1));
    assert_eq!(lead.attempt, 0, "the re-login is not a failed attempt");
}

#[tokio::test]
async fn a_csrf_token_rotated_after_every_write_is_followed_without_a_single_refusal() {
    let config = SessionCrmConfig { rotate_csrf_every: Some(1), ..SessionCrmConfig::default() };
    let crm = session_crm_emulator::spawn(config).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gateway = TestProcess::serve(dir.path(), &form_config(&crm.base_url(), "sandbox-password")).await;
    let store = open_store(dir.path()).await;

    let id = submit_form(&format!("http://{}", gateway.address)).await;
    settled(&store, id, &[LeadStatus::Approved]).await;

    let refused: Vec<_> = crm.crm.requests().into_iter().filter(|request| request.status == 419).collect();
    assert!(refused.is_empty(), "every write carried the token of the write before: {refused:?}");
    assert_eq!(crm.crm.login_count(), 1);
    assert_eq!(crm.crm.tickets()[0].files.len(), 1);
}

#[tokio::test]
async fn a_wrong_password_keeps_leads_waiting_until_it_is_fixed_and_the_gateway_restarted() {
    let crm = session_crm_emulator::spawn(SessionCrmConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let wrong = "not-the-password-1";
    let first = TestProcess::serve(dir.path(), &form_config(&crm.base_url(), wrong)).await;
    let store = open_store(dir.path()).await;
    let base = format!("http://{}", first.address);
    let ids = [submit_form(&base).await, submit_form(&base).await];
    for id in ids {
        let refused = || async {
            let lead = store.find_lead(leadgate::domain::LeadId(id)).await.unwrap().unwrap();
            lead.status == LeadStatus::Pending
                && lead.last_error.as_deref().is_some_and(|error| error.contains("login"))
        };
        assert!(poll_until(Duration::from_secs(10), refused).await, "lead {id} waits, saying why");
    }
    let history = store.history(leadgate::domain::LeadId(ids[0])).await.unwrap();
    let written = serde_json::to_string(&history).unwrap();
    assert!(!written.contains(wrong), "the password is in no history");
    assert!(crm.crm.tickets().is_empty());
    assert!(
        crm.crm.failed_login_count() <= 3,
        "a refused login is not hammered: {} attempts",
        crm.crm.failed_login_count()
    );
    first.kill();

    let second = TestProcess::serve(dir.path(), &form_config(&crm.base_url(), "sandbox-password")).await;
    for id in ids {
        settled(&store, id, &[LeadStatus::Approved, LeadStatus::Rejected]).await;
    }
    assert_eq!(crm.crm.tickets().len(), 2);
    drop(second);
}

#[tokio::test]
async fn a_proxy_lead_in_sync_mode_is_answered_with_the_ticket_number() {
    let crm = Crm::own().await;
    let dir = tempfile::tempdir().unwrap();
    let gateway = TestProcess::serve(dir.path(), &config(&crm, "")).await;

    let response = reqwest::Client::new()
        .post(format!("http://{}/api/proxy/1.0/leads/add?key={SITE_KEY}&sync=1", gateway.address))
        .form(&[("name", "Олег"), ("phone", "+79995100021"), ("email", "oleg@example.ru")])
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    let answer: serde_json::Value = response.json().await.unwrap();
    let Crm::Own(emulator) = &crm else { unreachable!() };
    let ticket = &emulator.crm.tickets()[0];
    assert_eq!(answer["deal_number"], ticket.number.as_str(), "{answer}");
    assert_eq!(answer["deal_id"], ticket.id, "{answer}");
}

#[tokio::test]
async fn config_check_refuses_a_partner_source_routed_to_a_crm_without_pipelines() {
    let crm = Crm::own().await;
    let dir = tempfile::tempdir().unwrap();
    let partner = format!(
        "[sources.trendagent]\nkind = \"partner\"\nkey = \"{SOURCE_KEY}\"\ndestination = \"main\"\n\
         service = \"Партнёры\"\nsubject = \"Заявка партнёра\"\n"
    );
    let config = format!("{}{partner}", own_destination(&crm.base_url()));
    std::fs::write(dir.path().join("leadgate.toml"), config).unwrap();
    crate::config_check::migrate(dir.path(), &[]);

    let output = std::process::Command::new(TestProcess::BINARY)
        .args(["config", "check", "--config", "leadgate.toml"])
        .current_dir(dir.path())
        .output()
        .unwrap();

    assert_eq!(output.status.code(), Some(2));
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("sources.trendagent.destination"), "{said}");
    assert!(said.contains("move a deal to a stage"), "{said}");
}

/// The issue's own `add_message` example writes the visitor's comment: a lead without one gets a
/// ticket and no empty message, rather than a refusal that would kill the lead.
#[tokio::test]
async fn the_issue_s_comment_message_is_written_when_there_is_a_comment_and_skipped_when_there_is_none() {
    let crm = session_crm_emulator::spawn(SessionCrmConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let destination =
        own_destination(&crm.base_url()).replace("text = \"{{ message }}\"", "text = \"{{ lead.comment }}\"");
    assert!(destination.contains("lead.comment"));
    let config = format!(
        "[worker]\ninterval = \"100ms\"\n{destination}[sources.site]\nkind = \"proxy\"\nkey = \"{SITE_KEY}\"\n\
         destination = \"main\"\nservice = \"Консультация\"\nsubject = \"Заявка с сайта\"\n"
    );
    let gateway = TestProcess::serve(dir.path(), &config).await;
    let store = open_store(dir.path()).await;
    let post = |fields: Vec<(&'static str, &'static str)>| {
        let url = format!("http://{}/api/proxy/1.0/leads/add?key={SITE_KEY}", gateway.address);
        async move {
            let answer: serde_json::Value =
                reqwest::Client::new().post(url).form(&fields).send().await.unwrap().json().await.unwrap();
            answer["id"].as_i64().unwrap()
        }
    };

    let silent = post(vec![("name", "Пётр"), ("phone", "+79995100031")]).await;
    let talkative = post(vec![("name", "Павел"), ("phone", "+79995100032"), ("comment", "Позвоните вечером")]).await;
    let silent = settled(&store, silent, &[LeadStatus::Approved]).await;
    settled(&store, talkative, &[LeadStatus::Approved]).await;

    let tickets = crm.crm.tickets();
    let mut messages: Vec<Vec<String>> =
        tickets.iter().map(|ticket| ticket.messages.iter().map(|message| message.text.clone()).collect()).collect();
    messages.sort();
    assert_eq!(messages, [vec![], vec!["Позвоните вечером".to_owned()]]);
    let history = store.history(silent.id).await.unwrap();
    assert!(history.iter().any(|event| event.kind == "note_skipped"), "{history:?}");
}

/// The seed's whole point, with the CRM down: the visitor is answered at once with the usual text,
/// and once the CRM is back and the ticket exists, gets its number by e-mail.
#[tokio::test]
async fn a_visitor_whose_crm_is_down_gets_the_ticket_number_by_email_once_it_recovers() {
    let crm = session_crm_emulator::spawn(SessionCrmConfig::default()).await.unwrap();
    crm.crm.fail_next(u32::MAX, 503).unwrap();
    let sink = SmtpSink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[smtp]\nurl = \"{}\"\nfrom = \"leads@example.ru\"\n{}wait_for_crm = \"1s\"\n",
        sink.url(),
        form_config(&crm.base_url(), "sandbox-password")
    );
    let gateway = TestProcess::serve(dir.path(), &config).await;
    let store = open_store(dir.path()).await;

    let answer = answer_to_form(&format!("http://{}", gateway.address)).await;
    assert_eq!(answer["message"], SUCCESS_MESSAGE, "{answer}");
    assert!(answer.get("number").is_none(), "{answer}");
    let id = answer["id"].as_i64().unwrap();
    let waiting = || async {
        let lead = store.find_lead(leadgate::domain::LeadId(id)).await.unwrap().unwrap();
        lead.attempt >= 2 && lead.status == LeadStatus::Pending
    };
    assert!(poll_until(Duration::from_secs(10), waiting).await, "the CRM's 503s are retried");
    assert!(sink.messages().is_empty(), "no number exists yet, so nothing is sent");
    crm.crm.fail_next(0, 503).unwrap();

    let arrived = poll_until(Duration::from_secs(20), || async { !sink.messages().is_empty() }).await;
    assert!(arrived, "the visitor's e-mail arrives after the CRM recovers");
    let mail = &sink.messages()[0];
    assert_eq!(mail.to, ["irina@example.ru"]);
    let ticket = &crm.crm.tickets()[0];
    assert!(mail.subject.contains(&ticket.number), "the number is in the subject: {mail:?}");
}
