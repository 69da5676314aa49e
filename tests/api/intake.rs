//! The partner intake contract: exact answers, keys, limits, idempotency, hostile input.

use amocrm_emulator::{Fault, FaultLimit};
use serde_json::{Value, json};

use crate::helpers::{OTHER_SOURCE_KEY, SOURCE_KEY, lead, spawn_app};

const SEED_MISSING: &str = r#"{"error":"Ошибка! Имя пользователя или номер телефона не заполнены"}"#;

#[tokio::test]
async fn lead_without_name_or_phone_gets_the_seed_error_byte_for_byte() {
    let app = spawn_app().await;
    for body in
        [json!({ "phone": "+79990000001" }), json!({ "name": "Иван" }), json!({ "name": " ", "phone": "+79990000001" })]
    {
        let response = app.post_lead(&body).await;
        assert_eq!(response.status(), 400);
        assert_eq!(response.text().await.unwrap(), SEED_MISSING);
    }
    assert!(app.crm.emulator.requests().is_empty(), "nothing reached the CRM");
    app.stop().await;
}

#[tokio::test]
async fn an_accepted_lead_answers_with_its_id_and_is_stored_with_everything_received() {
    let app = spawn_app().await;
    // The CRM is down, so the lead stays in the queue where we can look at it.
    app.crm.emulator.inject_fault(Fault::new(503, FaultLimit::Count(1000)));
    let body = json!({ "name": "Анна", "phone": "8 (999) 000-00-02", "email": "anna@example.ru", "comment": "ЖК Север", "object": "кв. 12" });
    let response = app.post_lead(&body).await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer.as_object().unwrap().keys().collect::<Vec<_>>(), ["id"]);
    let stored = app.get_lead(answer["id"].as_i64().unwrap()).await;
    assert!(matches!(stored["status"].as_str(), Some("pending" | "processing")), "{stored}");
    assert_eq!(stored["phone"], "+79990000002");
    assert_eq!(stored["phone_raw"], "8 (999) 000-00-02");
    assert_eq!(stored["received"]["object"], "кв. 12");
    assert_eq!(stored["history"][0]["kind"], "received");
    app.stop().await;
}

#[tokio::test]
async fn a_wrong_or_missing_key_is_refused_with_401_and_the_key_may_come_three_ways() {
    let app = spawn_app().await;
    let url = app.url("/api/v1/leads");
    let body = lead("Иван", "+79990000003");
    let wrong = app.http.post(&url).bearer_auth("not-the-key").json(&body).send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let missing = app.http.post(&url).json(&body).send().await.unwrap();
    assert_eq!(missing.status(), 401);
    let header = app.http.post(&url).header("x-api-key", SOURCE_KEY).json(&body).send().await.unwrap();
    assert_eq!(header.status(), 200);
    let query = app.http.post(format!("{url}?key={SOURCE_KEY}")).json(&body).send().await.unwrap();
    assert_eq!(query.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn a_body_over_one_mebibyte_is_refused_with_413() {
    let app = spawn_app().await;
    let body = json!({ "name": "Иван", "phone": "+79990000004", "comment": "x".repeat(1024 * 1024) });
    let response = app.post_lead(&body).await;
    assert_eq!(response.status(), 413);
    assert!(response.text().await.unwrap().contains("error"));
    app.stop().await;
}

#[tokio::test]
async fn malformed_json_and_impossible_phones_are_refused_with_a_message_naming_the_problem() {
    let app = spawn_app().await;
    let url = app.url("/api/v1/leads");
    let broken =
        app.http.post(&url).bearer_auth(SOURCE_KEY).body(r#"{"name": "Иван", "phone": "#).send().await.unwrap();
    assert_eq!(broken.status(), 400);
    assert!(broken.json::<Value>().await.unwrap()["error"].as_str().unwrap().contains("JSON"));
    for (body, named) in [
        (lead("Иван", "12"), "phone"),
        (lead("Иван", "позвоните мне"), "phone"),
        (json!({ "name": "Иван", "phone": "+79990000005", "email": "не почта" }), "email"),
        (json!({ "name": "Иван", "phone": "+79990000005", "callbackUrl": "javascript:alert(1)" }), "callbackUrl"),
        (json!({ "name": { "$ne": 1 }, "phone": "+79990000005" }), "name"),
    ] {
        let response = app.post_lead(&body).await;
        assert_eq!(response.status(), 400, "{body}");
        let message = response.json::<Value>().await.unwrap()["error"].as_str().unwrap().to_owned();
        assert!(message.contains(named), "{message} should name {named}");
    }
    app.stop().await;
}

#[tokio::test]
async fn the_same_idempotency_key_returns_the_same_id_and_stores_one_lead() {
    let app = spawn_app().await;
    let body = lead("Олег", "+79990000006");
    let send = || {
        app.http
            .post(app.url("/api/v1/leads"))
            .bearer_auth(SOURCE_KEY)
            .header("idempotency-key", "ta-777")
            .json(&body)
            .send()
    };
    let (first, second) = tokio::join!(send(), send());
    let first: Value = first.unwrap().json().await.unwrap();
    let second: Value = second.unwrap().json().await.unwrap();
    assert_eq!(first["id"], second["id"]);
    let id = first["id"].as_i64().unwrap();
    app.wait_for(id, &["approved"]).await;
    let stored = app.store.count_by_status(None).await.unwrap();
    assert_eq!(stored, [("approved".to_owned(), 1)], "no second lead was stored for the repeated key");
    assert_eq!(app.crm.emulator.contacts_count(), 1);

    let changed = app
        .http
        .post(app.url("/api/v1/leads"))
        .bearer_auth(SOURCE_KEY)
        .header("idempotency-key", "ta-777")
        .json(&lead("Олег", "+79990000099"))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 422, "a reused key with another body is a client bug, not a repeat");
    app.stop().await;
}

#[tokio::test]
async fn a_source_cannot_see_another_sources_lead() {
    let app = spawn_app().await;
    let id = app.accept(lead("Иван", "+79990000008")).await;
    let response =
        app.http.get(app.url(&format!("/api/v1/leads/{id}"))).bearer_auth(OTHER_SOURCE_KEY).send().await.unwrap();
    assert_eq!(response.status(), 404);
    let missing = app.http.get(app.url("/api/v1/leads/999999")).bearer_auth(SOURCE_KEY).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn a_failure_on_our_side_answers_the_seed_500_and_acknowledges_nothing() {
    let app = spawn_app().await;
    // Sabotage from outside, through a second connection to the same database.
    sabotage(&app.store_url, "alter table leads rename to leads_elsewhere").await;

    let response = app.post_lead(&lead("Иван", "+79990000010")).await;
    assert_eq!(response.status(), 500);
    assert_eq!(response.text().await.unwrap(), r#"{"error":"Произошла внутренняя ошибка сервера"}"#);

    sabotage(&app.store_url, "alter table leads_elsewhere rename to leads").await;
    let stored = app.store.count_by_status(None).await.unwrap();
    assert!(stored.is_empty(), "nothing half-stored: {stored:?}");
    app.stop().await;
}

async fn sabotage(store_url: &str, statement: &str) {
    use sqlx::Connection;
    if store_url.starts_with("postgres") {
        let mut saboteur = sqlx::PgConnection::connect(store_url).await.unwrap();
        sqlx::query(statement).execute(&mut saboteur).await.unwrap();
    } else {
        let mut saboteur = sqlx::SqliteConnection::connect(store_url).await.unwrap();
        sqlx::query(statement).execute(&mut saboteur).await.unwrap();
    }
}
