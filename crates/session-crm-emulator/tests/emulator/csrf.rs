//! CSRF rotation: on control requests and every N unsafe requests; the old token then gets 419.

use serde_json::json;
use session_crm_emulator::{CSRF_COOKIE, SessionCrmConfig};

use crate::harness::{spawn_crm, spawn_with};

#[tokio::test]
async fn after_a_control_rotation_the_old_token_gets_419_and_the_new_cookie_works() {
    let app = spawn_crm().await;
    app.login().await;
    let old = app.csrf_token();

    app.control("/_control/csrf/rotate", None).await;
    let refused = app.post_with_token("/api/organizations", json!({"name": "ООО Ромашка"}), Some(&old)).await;
    let refused_sets_cookie = refused.cookies().any(|cookie| cookie.name() == CSRF_COOKIE);
    let accepted_read = app.get("/api/contacts").await;
    let read_sets_cookie = accepted_read.cookies().any(|cookie| cookie.name() == CSRF_COOKIE);
    let retried = app.post("/api/organizations", json!({"name": "ООО Ромашка"})).await;

    assert_eq!(refused.status(), 419);
    assert!(!refused_sets_cookie, "as in Django and Laravel, the refusal carries no new token");
    assert!(read_sets_cookie, "the next accepted answer carries the rotated token");
    assert_ne!(app.csrf_token(), old);
    assert_eq!(retried.status(), 201);
    assert_eq!(app.crm().organizations().len(), 1);
}

#[tokio::test]
async fn rotating_every_two_unsafe_requests_sends_the_new_token_with_the_second_answer() {
    let app = spawn_with(SessionCrmConfig { rotate_csrf_every: Some(2), ..SessionCrmConfig::default() }).await;
    app.login().await;
    let first_token = app.csrf_token();

    let first = app.post("/api/organizations", json!({"name": "A"})).await;
    let second = app.post("/api/organizations", json!({"name": "B"})).await;
    let second_sets_cookie = second.cookies().any(|cookie| cookie.name() == CSRF_COOKIE);
    let stale = app.post_with_token("/api/organizations", json!({"name": "C"}), Some(&first_token)).await;
    let fresh = app.post("/api/organizations", json!({"name": "C"})).await;

    assert_eq!([first.status(), second.status()].map(|status| status.as_u16()), [201, 201]);
    assert!(second_sets_cookie);
    assert_eq!(stale.status(), 419);
    assert_eq!(fresh.status(), 201);
    let names: Vec<String> = app.crm().organizations().into_iter().map(|organization| organization.name).collect();
    assert_eq!(names, ["A", "B", "C"]);
}

#[tokio::test]
async fn an_encoded_csrf_cookie_must_be_decoded_for_the_header() {
    let app = spawn_with(SessionCrmConfig { csrf_cookie_encoded: true, ..SessionCrmConfig::default() }).await;
    app.login().await;
    let raw = app.csrf_token();
    let decoded = raw.replace("%3D", "=");

    let refused = app.post_with_token("/api/organizations", json!({"name": "A"}), Some(&raw)).await;
    let accepted = app.post_with_token("/api/organizations", json!({"name": "A"}), Some(&decoded)).await;

    assert!(raw.ends_with("%3D%3D"), "{raw}");
    assert_eq!((refused.status().as_u16(), accepted.status().as_u16()), (419, 201));
}
