//! Retry policies, dead leads, and re-sending them by API and from the command line.

use std::process::Command;
use std::time::Duration;

use amocrm_emulator::{Fault, FaultLimit};
use leadgate::config::{RetryPolicy, RetrySchedule};

use crate::helpers::{ADMIN_TOKEN, Setup, TestProcess, lead, spawn_app_with};

/// The CRM budget's first window (1 s) passes before the first attempt, so the policy runs past it.
fn every_100ms_for_3s() -> Setup {
    Setup {
        retry: RetryPolicy {
            schedule: RetrySchedule::Every(Duration::from_millis(100)),
            max_age: Duration::from_secs(3),
        },
        ..Setup::default()
    }
}

#[tokio::test]
async fn a_lead_whose_retry_policy_is_spent_is_dead_and_re_sending_it_by_api_delivers_it() {
    let app = spawn_app_with(every_100ms_for_3s()).await;
    app.crm.emulator.inject_fault(Fault::new(503, FaultLimit::UntilCleared));
    let id = app.accept(lead("Павел", "+79997000001")).await;
    let dead = app.wait_for(id, &["dead"]).await;
    let error = dead["last_error"].as_str().unwrap();
    assert!(error.contains("retry policy is spent") && error.contains("503"), "{error}");
    assert!(dead["failed_attempts"].as_i64().unwrap() >= 3, "retried every 100 ms until the policy ran out: {dead:#}");

    app.crm.emulator.clear_faults();
    let retry =
        |token: &str| app.http.post(app.url(&format!("/api/v1/leads/{id}/retry"))).bearer_auth(token.to_owned()).send();
    assert_eq!(retry("wrong-token").await.unwrap().status(), 401);
    let accepted = retry(ADMIN_TOKEN).await.unwrap();
    assert_eq!(accepted.status(), 200);
    let done = app.wait_for(id, &["approved"]).await;
    assert!(
        done["history"]
            .as_array()
            .unwrap()
            .iter()
            .any(|event| event["kind"] == "resend_requested" && event["detail"]["by"] == "api")
    );
    assert_eq!(retry(ADMIN_TOKEN).await.unwrap().status(), 409, "an approved lead is not sent twice");
    assert_eq!(app.crm.emulator.contacts_count(), 1);
    app.stop().await;
}

#[tokio::test]
async fn operators_list_show_and_re_send_dead_leads_from_the_command_line() {
    let app = spawn_app_with(Setup::default()).await;
    app.crm.emulator.inject_fault(Fault {
        path_prefix: Some("/api/v4/contacts".to_owned()),
        ..Fault::new(400, FaultLimit::Count(2))
    });
    let first = app.accept(lead("Дина", "+79997000002")).await;
    let second = app.accept(lead("Лев", "+79997000003")).await;
    app.wait_for(first, &["dead"]).await;
    app.wait_for(second, &["dead"]).await;

    let leads = |args: &[&str]| {
        let output = Command::new(TestProcess::BINARY)
            .arg("leads")
            .args(args)
            .env("LEADGATE_STORE__URL", &app.store_url)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    };
    let listed = leads(&["list", "--status", "dead"]);
    assert!(listed.contains("+79997000002") && listed.contains("+79997000003"), "{listed}");
    let shown: serde_json::Value = serde_json::from_str(&leads(&["show", &first.to_string()])).unwrap();
    assert_eq!(shown["status"], "dead");
    assert!(shown["last_error"].as_str().unwrap().contains("400"));

    assert!(leads(&["retry", "--dead", "--source", "trendagent"]).contains("2 dead lead(s) queued again"));
    app.wait_for(first, &["approved"]).await;
    app.wait_for(second, &["approved"]).await;
    assert!(leads(&["list", "--status", "dead"]).lines().count() == 1, "only the header is left");
    app.stop().await;
}

#[tokio::test]
async fn a_re_sent_lead_decides_again_when_its_client_was_delivered_meanwhile() {
    let app = spawn_app_with(Setup::default()).await;
    // The first lead dies on its contact create, after it had decided "new client".
    app.crm.emulator.inject_fault(Fault {
        path_prefix: Some("/api/v4/contacts".to_owned()),
        ..Fault::new(400, FaultLimit::Count(1))
    });
    let first = app.accept(lead("Зоя", "+79997000004")).await;
    app.wait_for(first, &["dead"]).await;
    let sibling = app.accept(lead("Зоя", "+79997000004")).await;
    app.wait_for(sibling, &["approved"]).await;

    let retry =
        app.http.post(app.url(&format!("/api/v1/leads/{first}/retry"))).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    assert_eq!(retry.status(), 200);
    let done = app.wait_for(first, &["approved", "rejected"]).await;

    assert_eq!(done["outcome"]["decision"], "known_client_deal_moved", "{done:#}");
    assert_eq!(app.crm.emulator.contacts_count(), 1);
    assert_eq!(app.crm.emulator.leads_count(), 1, "no second deal for the client");
    app.stop().await;
}

/// Roistat's policy waits 30 minutes between attempts: once the CRM is back, an operator sends
/// the waiting leads now, by API for one and from the command line for all.
#[tokio::test]
async fn leads_waiting_for_their_next_attempt_are_sent_now_by_api_and_from_the_command_line() {
    let half_hourly = Setup {
        retry: RetryPolicy {
            schedule: RetrySchedule::Every(Duration::from_secs(1800)),
            max_age: Duration::from_secs(48 * 3600),
        },
        ..Setup::default()
    };
    let app = spawn_app_with(half_hourly).await;
    app.crm.emulator.inject_fault(Fault::new(503, FaultLimit::UntilCleared));
    let first = app.accept(lead("Ада", "+79997000011")).await;
    let second = app.accept(lead("Бор", "+79997000012")).await;
    let third = app.accept(lead("Вера", "+79997000013")).await;
    let all_failed_once = crate::helpers::poll_until(Duration::from_secs(10), || async {
        let mut failed = true;
        for id in [first, second, third] {
            failed &= crate::helpers::history_kinds(&app.get_lead(id).await).contains(&"retry_scheduled".to_owned());
        }
        failed
    });
    assert!(all_failed_once.await, "each lead failed once and waits half an hour");
    app.crm.emulator.clear_faults();

    let retry = app.http.post(app.url(&format!("/api/v1/leads/{first}/retry"))).bearer_auth(ADMIN_TOKEN).send();
    assert_eq!(retry.await.unwrap().status(), 200);
    app.wait_for(first, &["approved"]).await;

    let output = Command::new(TestProcess::BINARY)
        .args(["leads", "retry", "--all-waiting", "--source", "trendagent"])
        .env("LEADGATE_STORE__URL", &app.store_url)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).contains("2 waiting lead(s) due now"));
    app.wait_for(second, &["approved"]).await;
    app.wait_for(third, &["approved"]).await;
    assert_eq!(app.crm.emulator.contacts_count(), 3, "each client once");
    app.stop().await;
}
