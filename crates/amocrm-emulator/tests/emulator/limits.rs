//! What the front proxy does: the rate limit, injected faults, latency, unknown routes.

use std::time::{Duration, Instant};

use amocrm_emulator::{EmulatorConfig, Fault, FaultLimit};
use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{content_type, poll_until, spawn_emulator, spawn_with};

#[tokio::test]
async fn more_than_the_limit_within_a_second_gets_429_with_an_html_body_and_is_counted() {
    let app = spawn_with(EmulatorConfig { requests_per_second: 3, ..EmulatorConfig::default() }).await;

    let mut statuses = Vec::new();
    let mut limited_body = None;
    for _ in 0..5 {
        let response = app.get("/api/v4/account").await;
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            assert_eq!(content_type(&response), "text/html");
            assert!(response.headers().get("retry-after").is_none());
            limited_body = Some(response.text().await.unwrap());
        }
    }

    // The five calls take far less than a second on loopback.
    assert_eq!(statuses, vec![200, 200, 200, 429, 429]);
    let body = limited_body.unwrap();
    assert!(body.contains("429 Too Many Requests"));
    assert!(serde_json::from_str::<Value>(&body).is_err());
    let stats: Value = app.control(Method::GET, "/_emulator/stats", None).await.json().await.unwrap();
    assert_eq!(
        stats,
        json!({"api_requests": 5, "rate_limited": 2, "max_requests_in_any_second": 5,
            "requests_per_second_limit": 3})
    );
}

#[tokio::test]
async fn retry_after_is_sent_when_configured() {
    let app = spawn_with(EmulatorConfig {
        requests_per_second: 1,
        retry_after_seconds: Some(2),
        ..EmulatorConfig::default()
    })
    .await;

    app.get("/api/v4/account").await;
    let limited = app.get("/api/v4/account").await;

    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers()["retry-after"], "2");
}

#[tokio::test]
async fn injected_503_answers_count_requests_then_the_api_recovers() {
    let app = spawn_emulator().await;
    app.control(Method::POST, "/_emulator/faults", Some(json!({"status": 503, "count": 2}))).await;

    let first = app.get("/api/v4/account").await;
    let second = app.get("/api/v4/account").await;
    let third = app.get("/api/v4/account").await;

    assert_eq!(first.status(), 503);
    assert_eq!(content_type(&first), "text/html");
    assert_eq!(second.status(), 503);
    assert_eq!(third.status(), 200);
    let statuses: Vec<u16> = app.emulator().requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![503, 503, 200]);
}

#[tokio::test]
async fn injected_fault_for_seconds_ends_by_itself() {
    let app = spawn_emulator().await;
    app.control(Method::POST, "/_emulator/faults", Some(json!({"status": 500, "seconds": 0.3}))).await;

    let failing = app.get("/api/v4/account").await;
    let recovered =
        poll_until(Duration::from_secs(3), || async { app.get("/api/v4/account").await.status() == 200 }).await;

    assert_eq!(failing.status(), 500);
    assert!(recovered);
}

#[tokio::test]
async fn fault_with_a_path_prefix_spares_other_paths_and_can_be_cleared() {
    let app = spawn_emulator().await;
    app.emulator().inject_fault(Fault {
        path_prefix: Some("/api/v4/leads".to_owned()),
        ..Fault::new(502, FaultLimit::UntilCleared)
    });

    let leads = app.get("/api/v4/leads").await;
    let contacts = app.get("/api/v4/contacts").await;
    app.control(Method::DELETE, "/_emulator/faults", None).await;
    let after_clear = app.get("/api/v4/leads").await;

    assert_eq!(leads.status(), 502);
    assert_eq!(contacts.status(), 204);
    assert_eq!(after_clear.status(), 204);
}

#[tokio::test]
async fn injected_400_carries_the_validation_body_and_a_custom_body_is_sent_verbatim() {
    let app = spawn_emulator().await;
    app.emulator().inject_fault(Fault::new(400, FaultLimit::Count(1)));
    app.emulator()
        .inject_fault(Fault { body: Some("<html>blocked</html>".to_owned()), ..Fault::new(403, FaultLimit::Count(1)) });

    let validation = app.post("/api/v4/leads", json!([{"name": "x"}])).await;
    let blocked = app.get("/api/v4/account").await;

    assert_eq!(validation.status(), 400);
    let body: Value = validation.json().await.unwrap();
    assert_eq!(body["validation-errors"][0]["errors"][0]["code"], "NotSupportedChoice");
    assert_eq!(blocked.status(), 403);
    assert_eq!(blocked.text().await.unwrap(), "<html>blocked</html>");
    assert_eq!(app.emulator().leads_count(), 0);
}

#[tokio::test]
async fn latency_delays_matching_requests_only() {
    let app = spawn_emulator().await;
    app.control(
        Method::POST,
        "/_emulator/latency",
        Some(json!({"millis": 300, "path_prefix": "/api/v4/account", "method": "GET"})),
    )
    .await;

    let started = Instant::now();
    let slow = app.get("/api/v4/account").await;
    let slow_elapsed = started.elapsed();
    let started = Instant::now();
    app.get("/api/v4/leads/pipelines").await;
    let fast_elapsed = started.elapsed();

    assert_eq!(slow.status(), 200);
    assert!(slow_elapsed >= Duration::from_millis(300), "{slow_elapsed:?}");
    assert!(fast_elapsed < Duration::from_millis(300), "{fast_elapsed:?}");
}

#[tokio::test]
async fn client_that_times_out_during_latency_creates_nothing() {
    let app = spawn_emulator().await;
    app.control(Method::POST, "/_emulator/latency", Some(json!({"millis": 400, "method": "POST"}))).await;

    let timed_out = app
        .http
        .post(app.url("/api/v4/contacts"))
        .bearer_auth(crate::harness::LONG_LIVED_TOKEN)
        .json(&json!([{"name": "never"}]))
        .timeout(Duration::from_millis(100))
        .send()
        .await;
    assert!(timed_out.unwrap_err().is_timeout());
    app.control(Method::POST, "/_emulator/latency", Some(json!({"millis": 0}))).await;
    let created_later = poll_until(Duration::from_millis(800), || async { app.emulator().contacts_count() > 0 }).await;

    assert!(!created_later);
    assert_eq!(app.emulator().requests()[0].status, 499);
}

#[tokio::test]
async fn unknown_api_route_is_a_404_problem_and_needs_a_token_first() {
    let app = spawn_emulator().await;

    let unknown = app.get("/api/v4/widgets").await;
    let anonymous = app.http.get(app.url("/api/v4/widgets")).send().await.unwrap();

    assert_eq!(unknown.status(), 404);
    assert_eq!(content_type(&unknown), "application/problem+json");
    assert_eq!(anonymous.status(), 401);
}
