//! Alerts: a dead lead, a stalled source and a refused token reach the operators by e-mail and
//! signed webhook, once per period, with a resolved message, and never with a lead's personal data.

use std::time::Duration;

use amocrm_emulator::{Fault, FaultLimit};
use leadgate::config::AlertsConfig;
use secrecy::SecretString;
use serde_json::Value;

use crate::callback_receiver::CallbackReceiver;
use crate::feedback::secrets_that_signed;
use crate::helpers::{
    OTHER_SOURCE_KEY, PIPELINE, SOURCE_KEY, STAGE, Setup, TestProcess, accept_at, config_file, lead, on_postgres,
    poll_until, postgres_database, spawn_app_with, spawn_emulator, wait_for_status,
};
use crate::smtp_sink::SmtpSink;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const OPERATOR: &str = "ops@example.ru";
const WAIT: Duration = Duration::from_secs(20);

fn alerts(receiver: &CallbackReceiver, sink: Option<&SmtpSink>) -> AlertsConfig {
    AlertsConfig {
        email: sink.map(|_| leadgate::domain::Email::parse(OPERATOR).unwrap()).into_iter().collect(),
        webhook: Some(receiver.url().parse().unwrap()),
        webhook_secret: Some(SecretString::from(SECRET)),
        stalled_after: Duration::from_secs(1),
        oldest_pending: Duration::from_secs(3600),
        repeat_after: Duration::from_secs(3600),
        check_every: Duration::from_millis(100),
    }
}

/// The next contact the CRM is sent is refused as invalid, which makes its lead dead.
fn refuse_next_contact() -> Fault {
    let mut fault = Fault::new(400, FaultLimit::Count(1));
    fault.path_prefix = Some("/api/v4/contacts".to_owned());
    fault.body = Some(
        r#"{"validation-errors":[{"request_id":"0","errors":[{"code":"NotSupportedChoice","path":"name","detail":"bad"}]}],"title":"Bad Request","status":400}"#
            .to_owned(),
    );
    fault
}

/// Alert webhooks received with this key, in order.
fn webhooks(receiver: &CallbackReceiver, key: &str) -> Vec<Value> {
    receiver.accepted().into_iter().filter(|alert| alert["key"] == key).collect()
}

/// Everything the operators were sent, as text, for looking for what must not be there.
fn everything_sent(receiver: &CallbackReceiver, sink: Option<&SmtpSink>) -> String {
    let mut text: Vec<String> =
        receiver.received().iter().map(|request| String::from_utf8_lossy(&request.body).into_owned()).collect();
    if let Some(sink) = sink {
        text.extend(sink.messages().into_iter().map(|mail| mail.data));
    }
    text.join("\n")
}

#[tokio::test]
async fn a_dead_lead_is_alerted_once_by_email_and_signed_webhook_without_personal_data() {
    let receiver = CallbackReceiver::start().await;
    let sink = SmtpSink::start().await;
    let setup = Setup { smtp_url: Some(sink.url()), alerts: Some(alerts(&receiver, Some(&sink))), ..Setup::default() };
    let app = spawn_app_with(setup).await;
    app.crm.emulator.inject_fault(refuse_next_contact());
    let id = app.accept(lead("Аглая Тестовая", "+79995550101")).await;
    app.wait_for(id, &["dead"]).await;
    let key = "lead_dead:trendagent";
    assert!(poll_until(WAIT, || async { webhooks(&receiver, key).len() == 1 }).await, "{:?}", receiver.accepted());
    assert!(poll_until(WAIT, || async { !sink.messages().is_empty() }).await, "no alert e-mail");
    let alert = &webhooks(&receiver, key)[0];
    assert_eq!(alert["type"], "alert.firing");
    assert_eq!(alert["condition"], "lead_dead");
    assert_eq!(alert["source"], "trendagent");
    assert!(alert["summary"].as_str().unwrap().contains("1 lead(s)"), "{alert}");
    let signed = receiver.received().into_iter().find(|request| request.body.starts_with(b"{")).unwrap();
    assert_eq!(secrets_that_signed(&signed, &[SECRET]), [SECRET], "signed like callbacks");
    let mail = &sink.messages()[0];
    assert_eq!(mail.to, [OPERATOR]);
    assert!(mail.subject.contains(key), "{}", mail.subject);
    assert!(mail.body.contains("trendagent"), "{}", mail.body);

    // A second death within repeat_after is not alerted again. That rounds ran since is shown by
    // another source's dead lead, alerted after it.
    app.crm.emulator.inject_fault(refuse_next_contact());
    let second = app.accept(lead("Аглая Тестовая", "+79995550102")).await;
    app.wait_for(second, &["dead"]).await;
    app.crm.emulator.inject_fault(refuse_next_contact());
    let other = accept_at(&app.http, &app.url(""), OTHER_SOURCE_KEY, &lead("Аглая Тестовая", "+79995550103")).await;
    wait_for_status(&app.http, &app.url(""), OTHER_SOURCE_KEY, other, &["dead"]).await;
    assert!(poll_until(WAIT, || async { webhooks(&receiver, "lead_dead:other").len() == 1 }).await);
    assert_eq!(webhooks(&receiver, key).len(), 1, "one alert per condition per period");
    let mails_about_trendagent = sink.messages().iter().filter(|mail| mail.subject.contains(key)).count();
    assert_eq!(mails_about_trendagent, 1);

    let sent = everything_sent(&receiver, Some(&sink));
    for personal in ["79995550101", "9995550101", "Аглая", "Тестовая"] {
        assert!(!sent.contains(personal), "«{personal}» was sent to the operators:\n{sent}");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_crm_outage_stalls_the_source_and_ages_its_lead_and_the_recovery_is_resolved() {
    let receiver = CallbackReceiver::start().await;
    let config = AlertsConfig { oldest_pending: Duration::from_secs(1), ..alerts(&receiver, None) };
    let app = spawn_app_with(Setup { alerts: Some(config), ..Setup::default() }).await;
    app.crm.emulator.inject_fault(Fault::new(503, FaultLimit::For(Duration::from_secs(4))));
    let id = app.accept(lead("Борис Тестовый", "+79995550201")).await;
    let key = "source_stalled:trendagent";
    assert!(poll_until(WAIT, || async { !webhooks(&receiver, key).is_empty() }).await, "{:?}", receiver.accepted());
    let firing = &webhooks(&receiver, key)[0];
    assert_eq!(firing["type"], "alert.firing");
    assert!(firing["summary"].as_str().unwrap().contains("1 wait"), "{firing}");
    let waiting = app.get_lead(id).await;
    assert!(
        ["pending", "processing"].contains(&waiting["status"].as_str().unwrap()),
        "alerted while it waits: {waiting}"
    );

    app.wait_for(id, &["approved"]).await;
    let resolved =
        poll_until(WAIT, || async { webhooks(&receiver, key).iter().any(|alert| alert["type"] == "alert.resolved") })
            .await;
    assert!(resolved, "{:?}", webhooks(&receiver, key));
    let messages = webhooks(&receiver, key);
    assert_eq!(messages.len(), 2, "one firing alert, one resolved: {messages:?}");
    assert_eq!(messages[1]["source"], "trendagent");
    let oldest = poll_until(WAIT, || async {
        let types: Vec<Value> =
            webhooks(&receiver, "oldest_pending").iter().map(|alert| alert["type"].clone()).collect();
        types == ["alert.firing", "alert.resolved"]
    })
    .await;
    assert!(oldest, "the lead waited longer than oldest_pending: {:?}", webhooks(&receiver, "oldest_pending"));
    let sent = everything_sent(&receiver, None);
    for personal in ["79995550201", "Борис"] {
        assert!(!sent.contains(personal), "«{personal}» was sent to the operators:\n{sent}");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_refused_token_is_alerted_for_the_destination() {
    let receiver = CallbackReceiver::start().await;
    let sink = SmtpSink::start().await;
    let setup = Setup { smtp_url: Some(sink.url()), alerts: Some(alerts(&receiver, Some(&sink))), ..Setup::default() };
    let app = spawn_app_with(setup).await;
    app.crm.emulator.inject_fault(Fault::new(401, FaultLimit::For(Duration::from_secs(60))));
    app.accept(lead("Вера Тестовая", "+79995550301")).await;
    let key = "destination_auth:main";
    assert!(poll_until(WAIT, || async { webhooks(&receiver, key).len() == 1 }).await, "{:?}", receiver.accepted());
    let alert = &webhooks(&receiver, key)[0];
    assert_eq!(alert["destination"], "main");
    assert!(alert["summary"].as_str().unwrap().contains("credentials"), "{alert}");
    let mailed = poll_until(WAIT, || async { sink.messages().iter().any(|mail| mail.subject.contains(key)) }).await;
    assert!(mailed, "{:?}", sink.messages());
    let sent = everything_sent(&receiver, Some(&sink));
    for personal in ["79995550301", "Вера", "sandbox-long-lived-token"] {
        assert!(!sent.contains(personal), "«{personal}» was sent to the operators:\n{sent}");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_blocked_account_is_alerted_and_resolved_when_the_block_is_over() {
    let receiver = CallbackReceiver::start().await;
    let app = spawn_app_with(Setup { alerts: Some(alerts(&receiver, None)), ..Setup::default() }).await;
    // The tests' blocked_pause is 2 s; then the lead goes through.
    app.crm.emulator.inject_fault(Fault::new(403, FaultLimit::Count(1)));
    let id = app.accept(lead("Дарья Тестовая", "+79995550601")).await;
    let key = "destination_blocked:main";
    assert!(poll_until(WAIT, || async { !webhooks(&receiver, key).is_empty() }).await, "{:?}", receiver.accepted());
    assert_eq!(webhooks(&receiver, key)[0]["destination"], "main");
    app.wait_for(id, &["approved"]).await;
    let resolved =
        poll_until(WAIT, || async { webhooks(&receiver, key).iter().any(|alert| alert["type"] == "alert.resolved") })
            .await;
    assert!(resolved, "{:?}", webhooks(&receiver, key));
    app.stop().await;
}

#[tokio::test]
async fn an_email_refused_for_good_is_alerted_for_its_source() {
    let receiver = CallbackReceiver::start().await;
    let sink = SmtpSink::start().await;
    let setup = Setup {
        smtp_url: Some(sink.url()),
        notify: vec!["team@example.ru".to_owned()],
        alerts: Some(alerts(&receiver, None)),
        ..Setup::default()
    };
    let app = spawn_app_with(setup).await;
    sink.fail_next(1, 550);
    let id = app.accept(lead("Ефим Тестовый", "+79995550701")).await;
    app.wait_for(id, &["approved"]).await;
    let key = "feedback_failed:trendagent";
    assert!(poll_until(WAIT, || async { !webhooks(&receiver, key).is_empty() }).await, "{:?}", receiver.accepted());
    let alert = &webhooks(&receiver, key)[0];
    assert!(alert["summary"].as_str().unwrap().contains("1 e-mail(s)"), "{alert}");
    let sent = everything_sent(&receiver, None);
    for personal in ["79995550701", "Ефим", "team@example.ru"] {
        assert!(!sent.contains(personal), "«{personal}» was sent to the operators:\n{sent}");
    }
    app.stop().await;
}

#[tokio::test]
async fn without_an_alerts_section_nobody_is_alerted() {
    let sink = SmtpSink::start().await;
    let team = "team@example.ru".to_owned();
    let setup = Setup { smtp_url: Some(sink.url()), notify: vec![team], ..Setup::default() };
    let app = spawn_app_with(setup).await;
    app.crm.emulator.inject_fault(refuse_next_contact());
    let dead = app.accept(lead("Глеб Тестовый", "+79995550401")).await;
    app.wait_for(dead, &["dead"]).await;
    // The team's e-mail about a later lead shows the background tasks ran after the death.
    let later = app.accept(lead("Глеб Тестовый", "+79995550402")).await;
    app.wait_for(later, &["approved"]).await;
    assert!(poll_until(WAIT, || async { !sink.messages().is_empty() }).await, "the team's e-mail");
    assert!(sink.messages().iter().all(|mail| !mail.subject.contains("lead_dead")), "{:?}", sink.messages());
    assert!(app.store.open_alerts().await.unwrap().is_empty(), "no alert state is kept");
    app.stop().await;
}

fn config_check(dir: &std::path::Path, config: &str) -> std::process::Output {
    std::fs::write(dir.join("leadgate.toml"), config).unwrap();
    // config check reads the database, which only serve and migrate make.
    crate::config_check::migrate(dir, &[]);
    std::process::Command::new(TestProcess::BINARY)
        .args(["config", "check"])
        .current_dir(dir)
        .env("LEADGATE_CONFIG", "leadgate.toml")
        .output()
        .unwrap()
}

// Multi-threaded: the emulator must answer while this thread waits for the child process.
#[tokio::test(flavor = "multi_thread")]
async fn config_check_refuses_alert_emails_without_smtp_and_a_webhook_that_is_no_public_url() {
    let crm = spawn_emulator(100).await;
    let dir = tempfile::tempdir().unwrap();
    for (alerts, key, words) in [
        ("[alerts]\nemail = [\"ops@example.ru\"]", "alerts.email", "[smtp]"),
        ("[alerts]\nwebhook = \"hooks.example.com/leadgate\"", "alerts.webhook", "not an http(s) URL"),
        ("[alerts]\nwebhook = \"ftp://hooks.example.com/leadgate\"", "alerts.webhook", "not an http(s) URL"),
        ("[alerts]\nwebhook = \"http://127.0.0.1:9000/alerts\"", "alerts.webhook", "loopback"),
        ("[alerts]\nstalled_after = \"10m\"", "alerts", "no recipient"),
    ] {
        let output = config_check(dir.path(), &config_file(&crm.base_url(), alerts));
        assert_eq!(output.status.code(), Some(2), "{alerts}");
        let report = String::from_utf8(output.stderr).unwrap();
        assert!(report.contains(key) && report.contains(words), "{alerts}:\n{report}");
    }
    // config check greets the SMTP server: one that listens.
    let sink = SmtpSink::start().await;
    let good = format!(
        "[smtp]\nurl = \"{}\"\nfrom = \"gate@example.ru\"\n\
                [alerts]\nemail = [\"ops@example.ru\"]\nwebhook = \"https://hooks.example.com/leadgate\"\n\
                webhook_secret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\nstalled_after = \"10m\"\n\
                oldest_pending = \"2h\"\nrepeat_after = \"30m\"\ncheck_every = \"15s\"",
        sink.url()
    );
    let output = config_check(dir.path(), &config_file(&crm.base_url(), &good));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

/// Two gateways on one PostgreSQL database both see a dead lead; only one of them alerts.
/// SQLite has one gateway per database, so there this test has nothing to check.
#[tokio::test(flavor = "multi_thread")]
async fn two_nodes_on_one_database_send_each_alert_once() {
    if !on_postgres() {
        return;
    }
    let crm = spawn_emulator(100).await;
    let receiver = CallbackReceiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store_url = postgres_database(dir.path());
    let extra = format!(
        "[sources.other]\nkind = \"partner\"\nkey = \"{OTHER_SOURCE_KEY}\"\ndestination = \"main\"\n\
         pipeline = \"{PIPELINE}\"\nstatus = \"{STAGE}\"\n[security]\nallow_private_callbacks = true\n\
         [alerts]\nwebhook = \"{}\"\ncheck_every = \"50ms\"\nrepeat_after = \"1h\"",
        receiver.url()
    );
    let config = config_file(&crm.base_url(), &extra);
    let (first_dir, second_dir) = (dir.path().join("first"), dir.path().join("second"));
    std::fs::create_dir_all(&first_dir).unwrap();
    std::fs::create_dir_all(&second_dir).unwrap();
    let first = TestProcess::serve_node(&first_dir, &config, &store_url, "all").await;
    let _second = TestProcess::serve_node(&second_dir, &config, &store_url, "all").await;
    let http = reqwest::Client::new();
    let base = format!("http://{}", first.address);
    crm.emulator.inject_fault(refuse_next_contact());
    let id = accept_at(&http, &base, SOURCE_KEY, &lead("Дина Тестовая", "+79995550501")).await;
    wait_for_status(&http, &base, SOURCE_KEY, id, &["dead"]).await;
    let key = "lead_dead:trendagent";
    assert!(poll_until(WAIT, || async { !webhooks(&receiver, key).is_empty() }).await, "{:?}", receiver.accepted());
    // Rounds of both nodes run on; a later alert shows they did.
    crm.emulator.inject_fault(refuse_next_contact());
    let other = accept_at(&http, &base, OTHER_SOURCE_KEY, &lead("Дина Тестовая", "+79995550502")).await;
    wait_for_status(&http, &base, OTHER_SOURCE_KEY, other, &["dead"]).await;
    assert!(poll_until(WAIT, || async { !webhooks(&receiver, "lead_dead:other").is_empty() }).await);
    assert_eq!(webhooks(&receiver, key).len(), 1, "{:?}", receiver.accepted());
    assert_eq!(webhooks(&receiver, "lead_dead:other").len(), 1, "{:?}", receiver.accepted());
}

/// The alert state's claims, at times of the test's choosing: one claim per period, a claim given
/// back is claimed again, an end is claimed once and names the last send that went out, and a
/// condition that comes back begins anew.
#[tokio::test]
async fn an_alert_is_claimed_once_per_period_and_begins_anew_after_it_ended() {
    let app = crate::helpers::spawn_app().await;
    let store = &app.store;
    let hour = Duration::from_secs(3600);
    let start = chrono::DateTime::from_timestamp_millis(chrono::Utc::now().timestamp_millis()).unwrap();
    let at = |minutes: i64| start + chrono::Duration::minutes(minutes);
    let key = "oldest_pending";
    let first = store.claim_firing_alert(key, at(0), hour).await.unwrap().unwrap();
    assert_eq!((first.first_seen, first.previously_sent), (at(0), None));
    assert_eq!(store.claim_firing_alert(key, at(1), hour).await.unwrap(), None, "sent a minute ago");
    let repeat = store.claim_firing_alert(key, at(61), hour).await.unwrap().expect("the period is over");
    assert_eq!((repeat.first_seen, repeat.previously_sent), (at(0), Some(at(0))));
    // The repeat could not be sent: given back, it is due again, and the first send still counts.
    store.unclaim_firing_alert(key, &repeat).await.unwrap();
    let again = store.claim_firing_alert(key, at(62), hour).await.unwrap().expect("not sent: again");
    assert_eq!(again.previously_sent, Some(at(0)));
    assert_eq!(store.open_alerts().await.unwrap(), [key]);

    let ended = store.claim_ended_alert(key, at(70)).await.unwrap().unwrap();
    assert_eq!((ended.first_seen, ended.last_sent), (at(0), Some(at(62))));
    assert_eq!(store.claim_ended_alert(key, at(70)).await.unwrap(), None, "ended once");
    assert!(store.open_alerts().await.unwrap().is_empty());
    let back = store.claim_firing_alert(key, at(71), hour).await.unwrap().expect("it came back");
    assert_eq!((back.first_seen, back.previously_sent), (at(71), None));

    // An alert never sent ends unheard of: no resolved message is owed.
    let unsent = "source_stalled:partner";
    let claim = store.claim_firing_alert(unsent, at(0), hour).await.unwrap().unwrap();
    store.unclaim_firing_alert(unsent, &claim).await.unwrap();
    assert_eq!(store.claim_ended_alert(unsent, at(1)).await.unwrap().unwrap().last_sent, None);
    app.stop().await;
}

/// A session CRM whose login is refused: leads wait, and the destination is alerted.
#[tokio::test(flavor = "multi_thread")]
async fn a_session_crm_refusing_the_login_is_alerted_for_the_destination() {
    let crm = session_crm_emulator::spawn(session_crm_emulator::SessionCrmConfig::default()).await.unwrap();
    let receiver = CallbackReceiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let wrong = "not-the-password-1";
    let destination = crate::conformance::own_destination(&crm.base_url())
        .replace("password = \"sandbox-password\"", &format!("password = \"{wrong}\""));
    let config = format!(
        "[worker]\ninterval = \"100ms\"\nlease = \"1s\"\nretry_initial = \"200ms\"\nretry_max = \"1s\"\n{destination}\n\
         [sources.feedback]\nkind = \"form\"\ndestination = \"main\"\nservice = \"Коммерческая услуга\"\n\
         subject = \"Заявка с сайта\"\nfields = {{ name = \"name\", phone = \"phone\" }}\n\
         [security]\nallow_private_callbacks = true\n\
         [alerts]\nwebhook = \"{}\"\ncheck_every = \"100ms\"\n",
        receiver.url()
    );
    let gateway = TestProcess::serve(dir.path(), &config).await;
    let form = reqwest::multipart::Form::new().text("name", "Жанна Тестовая").text("phone", "+7 (999) 555-08-01");
    let response = reqwest::Client::new()
        .post(format!("http://{}/forms/feedback", gateway.address))
        .header("accept", "application/json")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let key = "destination_auth:main";
    assert!(poll_until(WAIT, || async { !webhooks(&receiver, key).is_empty() }).await, "{:?}", receiver.accepted());
    let sent = everything_sent(&receiver, None);
    for secret_or_personal in [wrong, "9995550801", "Жанна"] {
        assert!(!sent.contains(secret_or_personal), "«{secret_or_personal}» was sent to the operators:\n{sent}");
    }
}
