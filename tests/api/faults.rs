//! The CRM misbehaving: outages, 429s, blocks, refused data, expiring tokens, and a burst against the rate limit.

use std::time::Duration;

use amocrm_emulator::{Fault, FaultLimit};
use serde_json::Value;

use crate::helpers::{Setup, history_kinds, lead, poll_until, spawn_app, spawn_app_with};

#[tokio::test]
async fn a_crm_outage_of_several_seconds_loses_nothing_and_shows_the_backoff() {
    let app = spawn_app().await;
    app.crm.emulator.inject_fault(Fault::new(503, FaultLimit::For(Duration::from_secs(3))));
    let mut ids = Vec::new();
    for n in 0..10 {
        ids.push(app.accept(lead("Клиент", &format!("+7999200{n:04}"))).await);
    }
    for id in &ids {
        let done = app.wait_for(*id, &["approved"]).await;
        assert!(history_kinds(&done).contains(&"retry_scheduled".to_owned()), "{done:#}");
        assert!(done["failed_attempts"].as_i64().unwrap() >= 1);
    }
    let first = app.get_lead(ids[0]).await;
    let retries: Vec<&Value> =
        first["history"].as_array().unwrap().iter().filter(|event| event["kind"] == "retry_scheduled").collect();
    assert!(retries[0]["detail"]["error"].as_str().unwrap().contains("503"), "{:?}", retries[0]);
    assert_eq!(app.crm.emulator.contacts_count(), 10);
    assert_eq!(app.crm.emulator.leads_count(), 10);
    app.stop().await;
}

#[tokio::test]
async fn a_429_slows_down_and_retries_without_counting_a_failed_attempt() {
    let app = spawn_app().await;
    app.crm.emulator.inject_fault(Fault::new(429, FaultLimit::Count(3)));
    let id = app.accept(lead("Игорь", "+79993000001")).await;
    let done = app.wait_for(id, &["approved"]).await;
    assert_eq!(done["failed_attempts"], 0, "{done:#}");
    let statuses: Vec<u64> =
        done["history"].as_array().unwrap().iter().filter_map(|event| event["detail"]["status"].as_u64()).collect();
    assert!(statuses.contains(&429), "the 429 is in the history: {statuses:?}");
    app.stop().await;
}

#[tokio::test]
async fn a_validation_error_from_the_crm_makes_the_lead_dead_with_the_crms_message() {
    let app = spawn_app().await;
    let mut fault = Fault::new(400, FaultLimit::Count(1));
    fault.path_prefix = Some("/api/v4/contacts".to_owned());
    fault.body = Some(
        r#"{"validation-errors":[{"request_id":"0","errors":[{"code":"NotSupportedChoice","path":"custom_fields_values.0.field_id","detail":"The value you selected is not a valid choice."}]}],"title":"Bad Request","type":"https://httpstatus.es/400","status":400,"detail":"Request validation failed"}"#
            .to_owned(),
    );
    app.crm.emulator.inject_fault(fault);
    let id = app.accept(lead("Вера", "+79993000002")).await;
    let dead = app.wait_for(id, &["dead"]).await;
    let error = dead["last_error"].as_str().unwrap();
    assert!(error.contains("custom_fields_values.0.field_id"), "{error}");
    assert!(error.contains("not a valid choice"), "{error}");
    app.stop().await;
}

#[tokio::test]
async fn a_blocked_account_stops_all_calls_and_keeps_the_leads_queued() {
    let app = spawn_app().await;
    app.crm.emulator.inject_fault(Fault::new(403, FaultLimit::Count(1)));
    let id = app.accept(lead("Глеб", "+79993000003")).await;
    let blocked =
        poll_until(Duration::from_secs(10), || async { app.get_lead(id).await["last_error"].is_string() }).await;
    assert!(blocked, "the attempt was recorded");
    let waiting = app.get_lead(id).await;
    assert_eq!(waiting["status"], "pending");
    assert!(waiting["last_error"].as_str().unwrap().contains("blocked"), "{waiting:#}");
    let calls_when_blocked = app.crm.emulator.requests().len();
    let second = app.accept(lead("Глеб-2", "+79993000004")).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(app.crm.emulator.requests().len(), calls_when_blocked, "no call while the block lasts");
    assert_eq!(app.get_lead(second).await["status"], "pending");
    // The test's blocked_pause is 2 s; afterwards both leads go through.
    app.wait_for(id, &["approved"]).await;
    app.wait_for(second, &["approved"]).await;
    app.stop().await;
}

#[tokio::test]
async fn an_expired_access_token_is_renewed_mid_run_and_the_rotated_refresh_token_is_kept() {
    let app = spawn_app_with(Setup { oauth: true, ..Setup::default() }).await;
    let first = app.accept(lead("Тимур", "+79993000005")).await;
    app.wait_for(first, &["approved"]).await;
    let tokens_before = app.store.load_tokens("main").await.unwrap().expect("the first renewal was stored");
    assert_ne!(tokens_before.refresh_token, "sandbox-refresh-token-0");

    app.crm.emulator.expire_access_tokens(false);
    let second = app.accept(lead("Тимур-2", "+79993000006")).await;
    let done = app.wait_for(second, &["approved"]).await;

    assert_eq!(done["failed_attempts"], 0, "the 401 was absorbed by a renewal: {done:#}");
    let tokens_after = app.store.load_tokens("main").await.unwrap().unwrap();
    assert_ne!(tokens_after.refresh_token, tokens_before.refresh_token, "the rotated refresh token is persisted");
    assert_eq!(app.crm.emulator.live_refresh_tokens(), vec![tokens_after.refresh_token]);
    let paths: Vec<String> = done["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|event| event["detail"]["path"].as_str().map(str::to_owned))
        .collect();
    assert!(paths.iter().any(|path| path == "/oauth2/access_token"), "{paths:?}");
    app.stop().await;
}

#[tokio::test]
async fn a_burst_of_200_leads_never_exceeds_the_configured_rate_at_the_crm() {
    let rate = 150;
    let app = spawn_app_with(Setup { emulator_rate: rate, gateway_rate: rate, ..Setup::default() }).await;
    let posts = (0..200).map(|n| app.accept(lead("Поток", &format!("+7999400{n:04}"))));
    let ids = futures::future::join_all(posts).await;
    for id in ids {
        app.wait_for(id, &["approved"]).await;
    }
    let stats = app.crm.emulator.traffic_stats();
    assert!(stats.max_requests_in_any_second <= u64::from(rate), "{stats:?}");
    assert_eq!(stats.rate_limited, 0, "{stats:?}");
    assert_eq!(app.crm.emulator.contacts_count(), 200);
    assert_eq!(app.crm.emulator.leads_count(), 200);
    app.stop().await;
}

#[tokio::test]
async fn a_crm_call_longer_than_the_lease_keeps_the_lead_with_its_worker() {
    let app = spawn_app_with(Setup { lease: Duration::from_secs(1), ..Setup::default() }).await;
    app.crm.emulator.set_latency(Some(amocrm_emulator::Latency {
        delay: Duration::from_millis(2500),
        path_prefix: Some("/api/v4/contacts".to_owned()),
        method: Some("POST".to_owned()),
    }));
    let id = app.accept(lead("Долгий", "+79993000007")).await;
    let done = app.wait_for(id, &["approved"]).await;
    let claims = history_kinds(&done).iter().filter(|kind| *kind == "claimed").count();
    assert_eq!(claims, 1, "nobody took the lead over while its contact was being made: {done:#}");
    assert_eq!(app.crm.emulator.contacts_count(), 1);
    app.stop().await;
}
