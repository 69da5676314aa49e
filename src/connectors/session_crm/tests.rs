//! The session CRM client against the emulator over loopback: login, CSRF, renewal, refusals, the calls.

use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use futures::future::join_all;
use session_crm_emulator::{RunningSessionCrm, SessionCrmConfig as EmulatorConfig};

use super::{CreatedTicket, FoundContact, LeadContext, SessionCrm};
use crate::config::{Config, DestinationConfig, LEAD_VARIABLES, ROUTE_VARIABLES, Route, SessionCrmConfig};
use crate::connectors::DeliveryError;
use crate::domain::{
    DealSpec, Email, HistoryEvent, Lead, LeadId, LeadStatus, NewLead, Phone, PhoneRegion, Routing, SourceId,
};

const PASSWORD: &str = "sandbox-password";

/// The issue's lookup by e-mail.
const BY_EMAIL: &str = r#"find_contact = { method = "GET",  path = "/api/contacts", query = { email = "{{ lead.email }}" }, id = "/items/0/id", organization_id = "/items/0/organization_id" }"#;

/// The issue's example calls, pointed at the emulator, with a budget that keeps tests quick.
fn config(base_url: &str, session: &str) -> SessionCrmConfig {
    config_with_lookups(base_url, session, BY_EMAIL)
}

fn config_with_lookups(base_url: &str, session: &str, find_contact: &str) -> SessionCrmConfig {
    let text = format!(
        r#"
        [destinations.own]
        kind = "session_crm"
        base_url = "{base_url}"
        username = "sandbox"
        password = "{PASSWORD}"
        requests_per_second = 100
        card_url = "{base_url}/tickets/{{{{ id }}}}?n={{{{ number }}}}"
        [destinations.own.session]
        {session}
        [destinations.own.api]
        {find_contact}
        create_organization = {{ method = "POST", path = "/api/organizations", body = {{ name = "{{{{ lead.fields.company | default(lead.name) }}}}" }}, id = "/id" }}
        create_contact      = {{ method = "POST", path = "/api/contacts", body = {{ name = "{{{{ lead.name }}}}", email = "{{{{ lead.email }}}}", phone = "{{{{ lead.phone }}}}", organization_id = "{{{{ organization_id }}}}" }}, id = "/id" }}
        create_ticket       = {{ method = "POST", path = "/api/tickets", body = {{ service = "{{{{ route.service }}}}", subject = "{{{{ route.subject }}}}", description = "{{{{ lead.description }}}}", contact_id = "{{{{ contact_id }}}}", partner_id = "{{{{ organization_id }}}}" }}, id = "/id", number = "/number" }}
        add_message         = {{ method = "POST", path = "/api/tickets/{{{{ ticket_id }}}}/messages", body = {{ text = "{{{{ message }}}}" }}, id = "/id" }}
        attach_file         = {{ method = "POST", path = "/api/tickets/{{{{ ticket_id }}}}/files", multipart_field = "file", id = "/id" }}
        "#
    );
    match Config::from_toml_str(&text) {
        Ok(config) => match config.destinations.into_values().next() {
            Some(DestinationConfig::SessionCrm(config)) => config,
            _ => panic!("not a session CRM"),
        },
        Err(error) => panic!("{error}"),
    }
}

async fn emulator(config: EmulatorConfig) -> RunningSessionCrm {
    session_crm_emulator::spawn(config).await.expect("the emulator binds a loopback port")
}

/// A CRM with default settings and a client with the issue's example configuration.
async fn crm_and_client(emulator_config: EmulatorConfig, session: &str) -> (RunningSessionCrm, SessionCrm) {
    let crm = emulator(emulator_config).await;
    let client = SessionCrm::with_budget(&config(&crm.base_url(), session), None);
    (crm, client)
}

fn lead(email: Option<&str>, phone: &str, payload: serde_json::Value) -> LeadContext {
    let fields = NewLead {
        source: SourceId("site".to_owned()),
        external_id: None,
        name: "Анна Петрова".to_owned(),
        phone: Phone::parse(phone, PhoneRegion::RUSSIA).expect("a valid phone"),
        email: email.map(|email| Email::parse(email).expect("a valid e-mail")),
        comment: Some("Перезвоните после обеда".to_owned()),
        callback_url: None,
        payload,
        routing: Routing::default(),
        origin_time: None,
        deal: DealSpec::default(),
        skip_sending: false,
        duplicate_check: None,
        call: None,
    };
    let now = Utc::now();
    let lead = Lead {
        id: LeadId(42),
        fields,
        status: LeadStatus::Processing,
        attempt: 0,
        run_at: now,
        outcome: None,
        last_error: None,
        created_at: now,
        updated_at: now,
        erased_at: None,
    };
    let route = Route {
        destination: "own".to_owned(),
        service: Some("Техподдержка".to_owned()),
        subject: Some("Заявка с сайта".to_owned()),
        ..Route::default()
    };
    LeadContext::new(&lead, &route)
}

fn anna() -> LeadContext {
    let payload = serde_json::json!({
        "name": "Анна Петрова", "phone": "8 (999) 123-45-67", "email": "anna@example.com",
        "company": "ООО Ромашка", "message": "Перезвоните после обеда", "empty": "",
    });
    lead(Some("anna@example.com"), "8 (999) 123-45-67", payload)
}

fn statuses(crm: &RunningSessionCrm, method: &str, path: &str) -> Vec<u16> {
    crm.crm
        .requests()
        .into_iter()
        .filter(|request| request.method == method && request.path == path)
        .map(|request| request.status)
        .collect()
}

#[tokio::test]
async fn the_whole_flow_makes_organization_contact_ticket_message_and_file_with_one_login() {
    let (crm, client) = crm_and_client(EmulatorConfig::default(), "").await;
    let mut calls = Vec::new();
    let anna = anna();

    assert_eq!(client.find_contact(&mut calls, &anna).await.unwrap(), None);
    let organization_id = client.create_organization(&mut calls, &anna).await.unwrap();
    let contact_id = client.create_contact(&mut calls, &anna, Some(&organization_id)).await.unwrap();
    let ticket = client.create_ticket(&mut calls, &anna, &contact_id, Some(&organization_id)).await.unwrap();
    let message_id = client.add_message(&mut calls, &anna, &ticket.id, "Текст заявки").await.unwrap();
    let content = Bytes::from_static(b"%PDF-1.4 plan");
    let file_id =
        client.attach_file(&mut calls, &anna, &ticket.id, "план.pdf", "application/pdf", content).await.unwrap();

    assert_eq!(crm.crm.login_count(), 1);
    assert_eq!(crm.crm.organizations()[0].name, "ООО Ромашка");
    let contact = &crm.crm.contacts()[0];
    assert_eq!(contact.organization_id.map(|id| id.to_string()), Some(organization_id.clone()));
    assert_eq!((contact.email.as_deref(), contact.phone.as_deref()), (Some("anna@example.com"), Some("+79991234567")));
    let stored = &crm.crm.tickets()[0];
    assert_eq!(ticket, CreatedTicket { id: stored.id.to_string(), number: Some("T-000123".to_owned()) });
    assert_eq!((stored.service.as_str(), stored.subject.as_str()), ("Техподдержка", "Заявка с сайта"));
    assert_eq!(stored.partner_id.map(|id| id.to_string()), Some(organization_id));
    for line in ["company: ООО Ромашка", "phone: 8 (999) 123-45-67", "message: Перезвоните после обеда"]
    {
        assert!(stored.description.lines().any(|text| text == line), "{line} in {}", stored.description);
    }
    assert!(!stored.description.contains("empty"), "empty fields stay out: {}", stored.description);
    assert_eq!(Some(stored.messages[0].id.to_string()), message_id);
    assert_eq!(stored.messages[0].text, "Текст заявки");
    let file = &stored.files[0];
    assert_eq!(file.id.to_string(), file_id);
    assert_eq!((file.file_name.as_str(), file.content_type.as_str()), ("план.pdf", "application/pdf"));
    assert_eq!(file.content, b"%PDF-1.4 plan");
    assert_eq!(
        client.card_url(&ticket.id, ticket.number.as_deref()),
        Some(format!("{}/tickets/{}?n=T-000123", crm.base_url(), ticket.id))
    );
    assert_eq!(client.card_url(&ticket.id, None), None, "the link needs the number it names");
    let found = client.find_contact(&mut calls, &anna).await.unwrap();
    assert_eq!(
        found,
        Some(FoundContact { id: contact_id, organization_id: Some(stored.partner_id.unwrap().to_string()) })
    );
}

#[tokio::test]
async fn a_form_login_opens_the_session_as_well() {
    let (crm, client) = crm_and_client(EmulatorConfig::default(), "login_format = \"form\"").await;

    client.check().await.unwrap();
    client.create_organization(&mut Vec::new(), &anna()).await.unwrap();

    assert_eq!((crm.crm.login_count(), crm.crm.failed_login_count()), (1, 0));
}

#[tokio::test]
async fn a_rotated_csrf_token_is_picked_up_from_the_jar_for_the_next_request() {
    let every_request = EmulatorConfig { rotate_csrf_every: Some(1), ..EmulatorConfig::default() };
    let (crm, client) = crm_and_client(every_request, "").await;
    let mut calls = Vec::new();

    for _ in 0..3 {
        client.create_organization(&mut calls, &anna()).await.unwrap();
    }
    crm.crm.rotate_csrf();
    // The CRM hands the rotated token out with the session's next accepted answer, a read here.
    client.find_contact(&mut calls, &anna()).await.unwrap();
    client.create_organization(&mut calls, &anna()).await.unwrap();

    assert_eq!(crm.crm.login_count(), 1);
    assert_eq!(statuses(&crm, "POST", "/api/organizations"), [201, 201, 201, 201], "no 419, no repeat");
}

#[tokio::test]
async fn expired_sessions_mean_exactly_one_login_and_the_call_succeeds() {
    let (crm, client) = crm_and_client(EmulatorConfig::default(), "").await;
    client.check().await.unwrap();
    crm.crm.expire_sessions();

    let organization = client.create_organization(&mut Vec::new(), &anna()).await;

    assert!(organization.is_ok(), "{organization:?}");
    assert_eq!(crm.crm.login_count(), 2);
    assert_eq!(statuses(&crm, "POST", "/api/organizations"), [401, 201]);
}

#[tokio::test]
async fn many_callers_refused_by_an_expired_session_share_one_new_login() {
    let (crm, client) = crm_and_client(EmulatorConfig::default(), "").await;
    client.check().await.unwrap();
    crm.crm.set_latency(Duration::from_millis(50));
    crm.crm.expire_sessions();

    let results = join_all((0..10).map(|_| async {
        let mut calls = Vec::new();
        client.create_organization(&mut calls, &anna()).await
    }))
    .await;

    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(crm.crm.login_count(), 2, "a late 401 of the old session must not end the new one");
    assert_eq!(crm.crm.organizations().len(), 10);
}

#[tokio::test]
async fn a_redirect_to_the_login_page_means_log_in_again() {
    let redirecting = EmulatorConfig { redirect_to_login: true, ..EmulatorConfig::default() };
    let (crm, client) = crm_and_client(redirecting, "").await;
    client.check().await.unwrap();
    crm.crm.expire_sessions();

    let found = client.find_contact(&mut Vec::new(), &anna()).await;

    assert_eq!(found.unwrap(), None);
    assert_eq!(crm.crm.login_count(), 2);
    assert_eq!(statuses(&crm, "GET", "/api/contacts"), [302, 200]);
}

#[tokio::test]
async fn the_session_is_renewed_once_its_lifetime_has_passed_without_waiting_for_a_refusal() {
    let crm = emulator(EmulatorConfig::default()).await;
    let mut config = config(&crm.base_url(), "");
    config.session.lifetime = Duration::from_millis(300);
    let client = SessionCrm::with_budget(&config, None);
    client.check().await.unwrap();

    tokio::time::sleep(Duration::from_millis(350)).await;
    client.create_organization(&mut Vec::new(), &anna()).await.unwrap();

    assert_eq!(crm.crm.login_count(), 2);
    assert_eq!(statuses(&crm, "POST", "/api/organizations"), [201], "renewed before the call, not after a 401");
}

#[tokio::test]
async fn twenty_concurrent_calls_on_a_cold_client_log_in_once() {
    let (crm, client) = crm_and_client(EmulatorConfig::default(), "").await;
    crm.crm.set_latency(Duration::from_millis(50));

    let results = join_all((0..20).map(|_| async {
        let mut calls = Vec::new();
        client.find_contact(&mut calls, &anna()).await
    }))
    .await;

    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(crm.crm.login_count(), 1);
    assert_eq!(statuses(&crm, "POST", "/api/auth/login"), [200]);
}

#[tokio::test]
async fn a_wrong_password_is_unauthorized_and_not_tried_again_within_the_minute() {
    let crm = emulator(EmulatorConfig::default()).await;
    let mut config = config(&crm.base_url(), "");
    config.password = "wrong-password".to_owned().into();
    let client = SessionCrm::with_budget(&config, None);

    let first = client.create_organization(&mut Vec::new(), &anna()).await;
    let later = join_all((0..10).map(|_| async { client.find_contact(&mut Vec::new(), &anna()).await })).await;

    let Err(DeliveryError::Unauthorized(message)) = first else { panic!("{first:?}") };
    assert!(message.starts_with(&format!("login to {} failed: answered 401", crm.base_url())), "{message}");
    assert!(later.iter().all(|result| matches!(result, Err(DeliveryError::Unauthorized(text)) if *text == message)));
    assert_eq!((crm.crm.failed_login_count(), crm.crm.login_count()), (1, 0));
    assert!(
        statuses(&crm, "POST", "/api/organizations").is_empty() && statuses(&crm, "GET", "/api/contacts").is_empty()
    );
}

#[tokio::test]
async fn a_login_that_sets_no_session_cookie_has_failed() {
    let (crm, client) = crm_and_client(EmulatorConfig::default(), "session_cookie = \"laravel_session\"").await;

    let error = client.check().await.unwrap_err();

    let DeliveryError::Unauthorized(message) = error else { panic!("{error:?}") };
    assert!(message.contains("without setting the «laravel_session» cookie"), "{message}");
    assert_eq!(crm.crm.login_count(), 1, "the CRM took the login; the gateway did not get its session");
}

#[tokio::test]
async fn a_5xx_is_unavailable_a_429_rate_limited_and_a_400_rejected_with_the_crms_words() {
    let (crm, client) = crm_and_client(EmulatorConfig::default(), "").await;
    client.check().await.unwrap();
    let mut calls = Vec::new();

    crm.crm.fail_next(1, 503).unwrap();
    let unavailable = client.create_organization(&mut calls, &anna()).await;
    crm.crm.refuse_next(1, 429).unwrap();
    let throttled = client.find_contact(&mut calls, &anna()).await;
    crm.crm.refuse_next(1, 400).unwrap();
    let rejected = client.create_contact(&mut calls, &anna(), None).await;
    let invalid = client.create_ticket(&mut calls, &anna(), "999999", None).await;

    assert!(matches!(unavailable, Err(DeliveryError::Unavailable(_))), "{unavailable:?}");
    assert!(matches!(throttled, Err(DeliveryError::RateLimited { retry_in }) if retry_in <= Duration::from_secs(1)));
    assert!(matches!(&rejected, Err(DeliveryError::Rejected(text)) if text.contains("(injected)")), "{rejected:?}");
    assert!(matches!(&invalid, Err(DeliveryError::Rejected(text)) if text.contains("contact_id")), "{invalid:?}");
    assert_eq!(crm.crm.login_count(), 1, "none of these ends the session");
}

#[tokio::test]
async fn lookups_are_tried_in_order_and_one_needing_an_absent_value_is_skipped() {
    let crm = emulator(EmulatorConfig::default()).await;
    let lookups = r#"
        find_contact = [
            { method = "GET", path = "/api/contacts", query = { email = "{{ lead.email }}" }, id = "/items/0/id" },
            { method = "GET", path = "/api/contacts", query = { phone = "{{ lead.phone }}" }, id = "/items/0/id" },
        ]"#;
    let config = config_with_lookups(&crm.base_url(), "", lookups);
    let client = SessionCrm::with_budget(&config, None);
    let mut calls = Vec::new();
    let with_email = client
        .create_contact(&mut calls, &lead(Some("a@example.com"), "+79990000001", serde_json::json!({})), None)
        .await
        .unwrap();
    let by_phone =
        client.create_contact(&mut calls, &lead(None, "+79990000002", serde_json::json!({})), None).await.unwrap();
    let lookups_so_far = || statuses(&crm, "GET", "/api/contacts").len();

    let found_by_email = client
        .find_contact(&mut calls, &lead(Some("a@example.com"), "+79990000002", serde_json::json!({})))
        .await
        .unwrap();
    let after_first = lookups_so_far();
    let without_email =
        client.find_contact(&mut calls, &lead(None, "+79990000002", serde_json::json!({}))).await.unwrap();
    let after_second = lookups_so_far();
    let unknown_email = client
        .find_contact(&mut calls, &lead(Some("b@example.com"), "+79990000002", serde_json::json!({})))
        .await
        .unwrap();
    let after_third = lookups_so_far();
    let nobody = client.find_contact(&mut calls, &lead(None, "+79990000009", serde_json::json!({}))).await.unwrap();

    assert_eq!(found_by_email.map(|found| found.id), Some(with_email), "the e-mail lookup comes first");
    assert_eq!(after_first, 1, "the first lookup that finds the contact ends the search");
    assert_eq!(without_email.map(|found| found.id), Some(by_phone.clone()));
    assert_eq!(after_second, 2, "the e-mail lookup was skipped without a call");
    assert_eq!(unknown_email.map(|found| found.id), Some(by_phone));
    assert_eq!(after_third, 4);
    assert_eq!(nobody, None);
    assert_eq!(lookups_so_far(), 5);
}

#[tokio::test]
async fn fields_that_render_empty_are_left_out_of_the_body() {
    let (crm, client) = crm_and_client(EmulatorConfig::default(), "").await;
    let mut calls = Vec::new();
    let without_email = lead(None, "+79990000001", serde_json::json!({}));

    // The emulator refuses `organization_id: ""` with 422, as Django REST would.
    let contact_id = client.create_contact(&mut calls, &without_email, None).await.unwrap();
    client.create_ticket(&mut calls, &without_email, &contact_id, None).await.unwrap();

    let contact = &crm.crm.contacts()[0];
    assert_eq!((contact.email.as_deref(), contact.organization_id), (None, None));
    assert_eq!(crm.crm.tickets()[0].partner_id, None);
}

#[tokio::test]
async fn csrf_decode_sends_the_percent_decoded_cookie_value() {
    let encoded = EmulatorConfig { csrf_cookie_encoded: true, ..EmulatorConfig::default() };
    let (crm, client) = crm_and_client(encoded.clone(), "csrf_decode = true").await;
    let (raw_crm, raw_client) = crm_and_client(encoded, "csrf_decode = false").await;

    let decoded = client.create_organization(&mut Vec::new(), &anna()).await;
    let raw = raw_client.create_organization(&mut Vec::new(), &anna()).await;

    assert!(decoded.is_ok(), "{decoded:?}");
    assert_eq!(crm.crm.login_count(), 1);
    let Err(DeliveryError::Unauthorized(message)) = raw else { panic!("{raw:?}") };
    assert!(message.contains("answered 419") && message.contains("again right after a fresh login"), "{message}");
    assert_eq!(raw_crm.crm.login_count(), 2, "one new login, one repeat, then the error: no loop");
}

#[tokio::test]
async fn neither_the_password_nor_a_cookie_value_reaches_history_or_errors() {
    let (crm, client) =
        crm_and_client(EmulatorConfig { rotate_csrf_every: Some(1), ..EmulatorConfig::default() }, "").await;
    let mut calls: Vec<HistoryEvent> = Vec::new();
    let mut errors = Vec::new();
    let anna = anna();
    let contact_id = client.create_contact(&mut calls, &anna, None).await.unwrap();
    let mut cookies = client.session.cookie_values();
    crm.crm.expire_sessions();
    let ticket = client.create_ticket(&mut calls, &anna, &contact_id, None).await.unwrap();
    crm.crm.refuse_next(1, 400).unwrap();
    errors.push(client.add_message(&mut calls, &anna, &ticket.id, "x").await.unwrap_err().to_string());
    crm.crm.fail_next(1, 502).unwrap();
    errors.push(client.find_contact(&mut calls, &anna).await.unwrap_err().to_string());
    cookies.extend(client.session.cookie_values());
    let mut wrong = config(&crm.base_url(), "");
    wrong.password = "another-secret".to_owned().into();
    let wrong_client = SessionCrm::with_budget(&wrong, None);
    errors.push(wrong_client.find_contact(&mut calls, &anna).await.unwrap_err().to_string());

    let history = serde_json::to_string(&calls).unwrap();
    assert!(calls.iter().all(|event| event.kind == "crm_call"));
    assert!(history.contains("/api/auth/login") && history.contains("\"status\":401"), "{history}");
    assert!(!history.contains("anna%40example.com") && !history.contains('?'), "no query strings: {history}");
    assert!(cookies.len() >= 4, "sessions and rotated tokens seen: {cookies:?}");
    for text in errors.iter().chain([&history]) {
        for secret in cookies.iter().map(String::as_str).chain([PASSWORD, "another-secret"]) {
            assert!(!text.contains(secret), "{secret} leaked into {text}");
        }
    }
}

#[test]
fn the_lead_context_offers_every_documented_name_and_leaves_absent_values_out() {
    let environment = super::endpoint::environment();
    let full = anna().with(&super::context::Extras::default());
    for name in LEAD_VARIABLES
        .iter()
        .map(|name| format!("lead.{name}"))
        .chain(ROUTE_VARIABLES.iter().map(|name| format!("route.{name}")))
    {
        let rendered = environment.render_str(&format!("{{{{ {name} }}}}"), full.clone());
        assert!(rendered.is_ok_and(|text| !text.is_empty()), "{name}");
    }
    let sparse = lead(None, "+79990000001", serde_json::json!({"city": "Москва"}));
    let context = sparse.with(&super::context::Extras::default());
    assert!(environment.render_str("{{ lead.email }}", context.clone()).is_err(), "absent, not empty");
    let rendered = environment.render_str("{% if lead.email %}x{% endif %}{{ lead.description }}", context).unwrap();
    assert_eq!(rendered, "city: Москва");
}

#[tokio::test]
async fn the_status_tells_whether_a_session_is_open_and_why_the_last_login_failed() {
    use crate::connectors::status::{Login, LoginFailure};

    let (_crm, client) = crm_and_client(EmulatorConfig::default(), "").await;
    let Login::Session(cold) = client.status().login else { panic!("a session CRM signs in by a session") };
    assert_eq!((cold.open_for, cold.last_failure, cold.logging_in), (None, None, false), "no login before a call");
    client.create_organization(&mut Vec::new(), &anna()).await.unwrap();
    let Login::Session(open) = client.status().login else { unreachable!() };
    assert!(open.open_for.is_some_and(|open_for| open_for < open.lifetime), "{open:?}");

    let crm = emulator(EmulatorConfig::default()).await;
    let mut wrong = config(&crm.base_url(), "");
    wrong.password = "wrong-password".to_owned().into();
    let refused = SessionCrm::with_budget(&wrong, None);
    assert!(refused.create_organization(&mut Vec::new(), &anna()).await.is_err());
    let status = refused.status();
    let Login::Session(failed) = status.login else { unreachable!() };
    assert_eq!((failed.open_for, failed.last_failure.map(|(kind, _)| kind)), (None, Some(LoginFailure::Refused)));
    assert_eq!(
        (status.kind, status.requests_per_second, status.paused),
        ("session_crm", wrong.requests_per_second, None)
    );
}
