//! Logging in, and what a request without a session or without the CSRF header gets.

use serde_json::{Value, json};
use session_crm_emulator::{CSRF_COOKIE, SESSION_COOKIE};

use crate::harness::{PASSWORD, USERNAME, message_of, spawn_crm};

#[tokio::test]
async fn login_sets_an_http_only_session_cookie_and_a_script_readable_csrf_cookie_for_every_path() {
    let app = spawn_crm().await;

    let response = app.login_with(USERNAME, PASSWORD).await;

    assert_eq!(response.status(), 200);
    let cookies: Vec<_> = response.cookies().collect();
    let session = cookies.iter().find(|cookie| cookie.name() == SESSION_COOKIE).expect("a session cookie");
    let csrf = cookies.iter().find(|cookie| cookie.name() == CSRF_COOKIE).expect("a CSRF cookie");
    assert!(session.http_only());
    assert!(!csrf.http_only(), "scripts must be able to read the CSRF cookie");
    assert_eq!((session.path(), csrf.path()), (Some("/"), Some("/")));
    assert!(session.max_age().is_some(), "the session announces its lifetime");
    assert_eq!(app.cookie(CSRF_COOKIE).as_deref(), Some(csrf.value()), "the store sends it to /api/tickets");
    assert_eq!(app.crm().login_count(), 1);
}

#[tokio::test]
async fn login_works_with_a_form_body_too() {
    let app = spawn_crm().await;

    let response = app
        .http
        .post(app.url("/api/auth/login"))
        .form(&[("login", USERNAME), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    assert!(app.cookie(SESSION_COOKIE).is_some());
    assert_eq!(app.get("/api/contacts").await.status(), 200);
}

#[tokio::test]
async fn wrong_password_gets_401_and_sets_no_cookie() {
    let app = spawn_crm().await;

    let response = app.login_with(USERNAME, "guess").await;

    assert_eq!(response.status(), 401);
    assert_eq!(response.cookies().count(), 0);
    assert!(!message_of(response).await.is_empty(), "the refusal is JSON with a message");
    assert_eq!(app.cookie(SESSION_COOKIE), None);
    assert_eq!((app.crm().login_count(), app.crm().failed_login_count()), (0, 1));
}

#[tokio::test]
async fn login_without_a_password_field_gets_422_naming_it() {
    let app = spawn_crm().await;

    let response = app.http.post(app.url("/api/auth/login")).json(&json!({"login": USERNAME})).send().await.unwrap();

    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    assert!(body["errors"]["password"].is_array(), "{body}");
}

#[tokio::test]
async fn a_request_without_a_session_gets_401_json_and_changes_nothing() {
    let app = spawn_crm().await;

    let search = app.get("/api/contacts?email=anna@example.com").await;
    let create = app.post_with_token("/api/organizations", json!({"name": "ООО Ромашка"}), Some("anything")).await;

    assert_eq!(search.status(), 401);
    assert_eq!(message_of(search).await, "Unauthenticated.");
    assert_eq!(create.status(), 401);
    assert!(app.crm().organizations().is_empty());
}

#[tokio::test]
async fn an_unsafe_request_without_the_csrf_header_gets_419_and_changes_nothing() {
    let app = spawn_crm().await;
    app.login().await;

    let response = app.post_with_token("/api/organizations", json!({"name": "ООО Ромашка"}), None).await;

    assert_eq!(response.status(), 419);
    assert_eq!(message_of(response).await, "CSRF token mismatch.");
    assert!(app.crm().organizations().is_empty());
    assert_eq!(app.get("/api/contacts").await.status(), 200, "safe requests need no token");
}

#[tokio::test]
async fn a_token_read_before_logging_in_again_is_stale_and_gets_419() {
    let app = spawn_crm().await;
    app.login().await;
    let before = app.csrf_token();

    app.login().await;
    let stale = app.post_with_token("/api/organizations", json!({"name": "ООО Ромашка"}), Some(&before)).await;
    let fresh = app.post("/api/organizations", json!({"name": "ООО Ромашка"})).await;

    assert_ne!(app.csrf_token(), before, "a login rotates the token");
    assert_eq!(stale.status(), 419);
    assert_eq!(fresh.status(), 201);
}

#[tokio::test]
async fn logging_in_again_ends_the_session_the_request_came_with() {
    let app = spawn_crm().await;
    app.login().await;
    let old_session = app.cookie(SESSION_COOKIE).unwrap();

    app.login().await;
    let with_old_cookie = app
        .http
        .get(app.url("/api/contacts"))
        .header(reqwest::header::COOKIE, format!("{SESSION_COOKIE}={old_session}"))
        .send()
        .await
        .unwrap();

    assert_eq!(with_old_cookie.status(), 401);
    assert_eq!(app.crm().live_sessions(), 1);
}
