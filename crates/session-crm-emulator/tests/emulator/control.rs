//! The control API: injected failures, latency, the state dump's request log, reset.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{PASSWORD, message_of, spawn_crm};

#[tokio::test]
async fn fail_next_answers_that_many_requests_with_the_status_then_works_normally() {
    let app = spawn_crm().await;
    app.login().await;

    app.control("/_control/fail-next", Some(json!({"count": 2, "status": 503}))).await;
    let first = app.post("/api/organizations", json!({"name": "A"})).await;
    let second = app.get("/api/contacts").await;
    let third = app.post("/api/organizations", json!({"name": "A"})).await;

    assert_eq!([first.status(), second.status(), third.status()].map(|status| status.as_u16()), [503, 503, 201]);
    assert_eq!(app.crm().organizations().len(), 1, "failed requests change nothing");
}

#[tokio::test]
async fn fail_next_refuses_a_status_that_is_not_5xx() {
    let app = spawn_crm().await;

    let response =
        app.http.post(app.url("/_control/fail-next")).json(&json!({"count": 1, "status": 404})).send().await.unwrap();

    assert_eq!(response.status(), 400);
    assert!(app.crm().fail_next(1, 429).is_err());
}

#[tokio::test]
async fn refuse_next_answers_a_json_refusal_and_a_429_says_when_to_come_back() {
    let app = spawn_crm().await;
    app.login().await;

    app.control("/_control/refuse-next", Some(json!({"count": 1, "status": 429}))).await;
    let throttled = app.post("/api/organizations", json!({"name": "A"})).await;
    app.crm().refuse_next(1, 400).unwrap();
    let refused = app.post("/api/organizations", json!({"name": "A"})).await;
    let created = app.post("/api/organizations", json!({"name": "A"})).await;

    assert_eq!(throttled.status(), 429);
    assert_eq!(throttled.headers()["retry-after"], "1");
    assert_eq!(refused.status(), 400);
    assert!(message_of(refused).await.contains("injected"));
    assert_eq!(created.status(), 201);
    assert_eq!(app.crm().organizations().len(), 1, "refused requests change nothing");
    assert!(app.crm().refuse_next(1, 503).is_err());
}

#[tokio::test]
async fn latency_delays_every_api_answer() {
    let app = spawn_crm().await;
    let delay = Duration::from_millis(200);
    app.control("/_control/latency", Some(json!({"millis": 200}))).await;

    let started = Instant::now();
    let response = app.get("/api/contacts").await;

    assert_eq!(response.status(), 401);
    assert!(started.elapsed() >= delay);
    app.control("/_control/latency", Some(json!({"millis": 0}))).await;
}

#[tokio::test]
async fn the_state_dump_logs_requests_without_passwords_or_cookie_values() {
    let app = spawn_crm().await;
    app.login().await;
    let token = app.csrf_token();
    app.post("/api/organizations", json!({"name": "A"})).await;

    let state = app.state().await;

    let log = state["requests"].as_array().unwrap();
    assert_eq!(log[0], json!({"method": "POST", "path": "/api/auth/login", "status": 200}));
    assert_eq!(log[1], json!({"method": "POST", "path": "/api/organizations", "status": 201}));
    let dump = state.to_string();
    let session = app.cookie(session_crm_emulator::SESSION_COOKIE).unwrap();
    for secret in [PASSWORD, token.as_str(), session.as_str()] {
        assert!(!dump.contains(secret), "the dump holds no secrets");
    }
}

#[tokio::test]
async fn reset_forgets_records_sessions_and_the_log_and_restarts_ids() {
    let app = spawn_crm().await;
    app.login().await;
    let first_id = crate::harness::id_of(app.post("/api/organizations", json!({"name": "A"})).await).await;

    app.control("/_control/reset", None).await;
    let logged_out = app.get("/api/contacts").await.status();
    app.login().await;
    let again = crate::harness::id_of(app.post("/api/organizations", json!({"name": "B"})).await).await;

    assert_eq!(logged_out, 401);
    assert_eq!(again, first_id);
    assert_eq!(app.crm().login_count(), 1);
    assert_eq!(app.crm().requests().len(), 3, "the log restarted at the reset");
}
