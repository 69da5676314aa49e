//! Sessions ending: by lifetime, all at once by control, and the redirect some stacks answer with.

use std::time::{Duration, Instant};

use reqwest::header::LOCATION;
use session_crm_emulator::SessionCrmConfig;

use crate::harness::{poll_until, spawn_crm, spawn_with};

#[tokio::test]
async fn expired_sessions_get_401_until_the_client_logs_in_again() {
    let app = spawn_crm().await;
    app.login().await;

    app.control("/_control/sessions/expire", None).await;
    let expired = app.get("/api/contacts").await;
    app.login().await;
    let renewed = app.get("/api/contacts").await;

    assert_eq!(expired.status(), 401);
    assert_eq!(renewed.status(), 200);
    assert_eq!(app.crm().login_count(), 2);
}

#[tokio::test]
async fn a_session_past_its_lifetime_gets_401_however_busy_it_was() {
    let lifetime = Duration::from_millis(300);
    let app = spawn_with(SessionCrmConfig { session_lifetime: lifetime, ..SessionCrmConfig::default() }).await;
    app.login().await;
    let logged_in = Instant::now();
    assert_eq!(app.get("/api/contacts").await.status(), 200);

    let expired = poll_until(Duration::from_secs(5), || async { app.get("/api/contacts").await.status() == 401 }).await;

    assert!(expired, "the session ends within its lifetime plus the deadline");
    assert!(logged_in.elapsed() >= lifetime, "the session lived its whole lifetime");
}

#[tokio::test]
async fn with_the_redirect_flag_an_expired_session_gets_302_to_the_login_path() {
    let app = spawn_with(SessionCrmConfig { redirect_to_login: true, ..SessionCrmConfig::default() }).await;
    app.login().await;
    app.crm().expire_sessions();

    let response = app.get("/api/contacts?email=anna@example.com").await;

    assert_eq!(response.status(), 302);
    let location = response.headers()[LOCATION].to_str().unwrap();
    assert_eq!(location, "/api/auth/login?next=/api/contacts%3Femail%3Danna%40example.com");
}

#[tokio::test]
async fn a_client_following_the_login_redirect_sees_a_200_html_page_instead_of_its_answer() {
    let app = spawn_with(SessionCrmConfig { redirect_to_login: true, ..SessionCrmConfig::default() }).await;
    let following = reqwest::Client::new();

    let response = following.get(app.url("/api/contacts")).send().await.unwrap();

    assert_eq!(response.status(), 200);
    assert_eq!(response.url().path(), "/api/auth/login");
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
}
