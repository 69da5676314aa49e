//! Bearer checks and the OAuth token endpoint: exchange, rotation, revocation, expiry.

use std::time::Duration;

use amocrm_emulator::EmulatorConfig;
use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{TestEmulator, content_type, poll_until, spawn_emulator, spawn_with};

fn token_request(grant: Value) -> Value {
    let mut body = json!({
        "client_id": "sandbox-client",
        "client_secret": "sandbox-secret",
        "redirect_uri": "https://example.com/oauth",
    });
    for (key, value) in grant.as_object().unwrap() {
        body[key] = value.clone();
    }
    body
}

async fn refresh(app: &TestEmulator, refresh_token: &str) -> reqwest::Response {
    let body = token_request(json!({"grant_type": "refresh_token", "refresh_token": refresh_token}));
    app.http.post(app.url("/oauth2/access_token")).json(&body).send().await.unwrap()
}

async fn account_status(app: &TestEmulator, token: &str) -> u16 {
    let response = app.http.get(app.url("/api/v4/account")).bearer_auth(token).send().await.unwrap();
    response.status().as_u16()
}

#[tokio::test]
async fn request_without_or_with_an_unknown_bearer_is_401_problem_json() {
    let app = spawn_emulator().await;

    let missing = app.http.get(app.url("/api/v4/account")).send().await.unwrap();
    let unknown = app.http.get(app.url("/api/v4/contacts")).bearer_auth("nope").send().await.unwrap();

    assert_eq!(missing.status(), 401);
    assert_eq!(unknown.status(), 401);
    assert_eq!(content_type(&missing), "application/problem+json");
    let body: Value = missing.json().await.unwrap();
    assert_eq!(
        body,
        json!({"title": "Unauthorized", "type": "https://httpstatus.es/401", "status": 401,
            "detail": "Неверный логин или пароль"})
    );
}

#[tokio::test]
async fn long_lived_token_reads_the_account() {
    let app = spawn_emulator().await;

    let body: Value = app.get("/api/v4/account").await.json().await.unwrap();

    assert_eq!(body["id"], 31000001);
    assert_eq!(body["subdomain"], "sandbox");
    assert_eq!(body["name"], "Sandbox CRM");
    assert_eq!(body["country"], "RU");
    assert_eq!(body["currency"], "RUB");
}

#[tokio::test]
async fn code_exchange_as_a_form_issues_working_tokens_and_the_code_works_once() {
    let app = spawn_emulator().await;
    let form = [
        ("client_id", "sandbox-client"),
        ("client_secret", "sandbox-secret"),
        ("grant_type", "authorization_code"),
        ("code", "sandbox-code"),
        ("redirect_uri", "https://example.com/oauth"),
    ];
    let exchange = || app.http.post(app.url("/oauth2/access_token")).form(&form).send();

    let first = exchange().await.unwrap();
    let second = exchange().await.unwrap();

    assert_eq!(first.status(), 200);
    let tokens: Value = first.json().await.unwrap();
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 86400);
    assert!(tokens["server_time"].as_i64().unwrap() > 0);
    assert_eq!(account_status(&app, tokens["access_token"].as_str().unwrap()).await, 200);
    assert_eq!(second.status(), 400);
}

#[tokio::test]
async fn refresh_rotates_the_refresh_token_and_reusing_the_old_one_is_revoked() {
    let app = spawn_emulator().await;

    let first = refresh(&app, "sandbox-refresh-token-0").await;
    assert_eq!(first.status(), 200);
    let tokens: Value = first.json().await.unwrap();
    let reused = refresh(&app, "sandbox-refresh-token-0").await;
    let rotated = refresh(&app, tokens["refresh_token"].as_str().unwrap()).await;

    assert_ne!(tokens["refresh_token"], "sandbox-refresh-token-0");
    assert_eq!(reused.status(), 401);
    let body: Value = reused.json().await.unwrap();
    assert_eq!(
        body,
        json!({"hint": "Token has been revoked", "title": "Некорректный запрос",
            "type": "https://developers.amocrm.ru/v3/errors/OAuthProblemJson", "status": 401,
            "detail": "В запросе отсутствует ряд параметров или параметры невалидны"})
    );
    assert_eq!(rotated.status(), 200);
    let old_access = tokens["access_token"].as_str().unwrap();
    assert_eq!(account_status(&app, old_access).await, 200, "old access token lives on");
}

#[tokio::test]
async fn wrong_client_secret_is_401_and_spends_nothing() {
    let app = spawn_emulator().await;
    let mut body = token_request(json!({"grant_type": "refresh_token", "refresh_token": "sandbox-refresh-token-0"}));
    body["client_secret"] = json!("wrong");

    let response = app.http.post(app.url("/oauth2/access_token")).json(&body).send().await.unwrap();

    assert_eq!(response.status(), 401);
    assert_eq!(refresh(&app, "sandbox-refresh-token-0").await.status(), 200);
}

#[tokio::test]
async fn expiring_tokens_makes_an_issued_access_token_401_while_a_fresh_refresh_works() {
    let app = spawn_emulator().await;
    let tokens: Value = refresh(&app, "sandbox-refresh-token-0").await.json().await.unwrap();
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    assert_eq!(account_status(&app, &access).await, 200);

    app.control(Method::POST, "/_emulator/tokens/expire", None).await;

    assert_eq!(account_status(&app, &access).await, 401);
    assert_eq!(account_status(&app, crate::harness::LONG_LIVED_TOKEN).await, 200);
    let renewed: Value = refresh(&app, tokens["refresh_token"].as_str().unwrap()).await.json().await.unwrap();
    assert_eq!(account_status(&app, renewed["access_token"].as_str().unwrap()).await, 200);
}

#[tokio::test]
async fn expiring_with_include_long_lived_revokes_the_long_lived_token_too() {
    let app = spawn_emulator().await;

    app.control(Method::POST, "/_emulator/tokens/expire", Some(json!({"include_long_lived": true}))).await;

    assert_eq!(account_status(&app, crate::harness::LONG_LIVED_TOKEN).await, 401);
}

#[tokio::test]
async fn access_token_stops_working_after_its_configured_lifetime() {
    let app = spawn_with(EmulatorConfig {
        access_token_lifetime: Duration::from_millis(200),
        requests_per_second: 10_000,
        ..EmulatorConfig::default()
    })
    .await;
    let tokens: Value = refresh(&app, "sandbox-refresh-token-0").await.json().await.unwrap();
    let access = tokens["access_token"].as_str().unwrap().to_owned();

    let expired = poll_until(Duration::from_secs(3), || async { account_status(&app, &access).await == 401 }).await;

    assert!(expired);
}
