//! The control API: pipelines seen by clients, seeding, the request log, snapshot, reset.

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::spawn_emulator;

#[tokio::test]
async fn pipelines_endpoint_lists_trend_agent_with_the_object_selected_stage() {
    let app = spawn_emulator().await;

    let response = app.get("/api/v4/leads/pipelines").await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["_total_items"], 2);
    let pipelines = body["_embedded"]["pipelines"].as_array().unwrap();
    let main = &pipelines[0];
    assert_eq!((main["name"].as_str(), main["is_main"].as_bool()), (Some("Воронка"), Some(true)));
    let trend = pipelines.iter().find(|p| p["name"] == "TrendAgent").unwrap();
    assert_eq!(trend["is_main"], false);
    let statuses = trend["_embedded"]["statuses"].as_array().unwrap();
    let names: Vec<&str> = statuses.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        vec![
            "Неразобранное",
            "Новая заявка",
            "Объект выбран",
            "Бронь",
            "Успешно реализовано",
            "Закрыто и не реализовано"
        ]
    );
    assert_eq!(statuses[0]["type"], 1);
    assert_eq!(statuses[2]["type"], 0);
    assert_eq!(statuses[2]["pipeline_id"], trend["id"]);
    assert_eq!(statuses[4]["id"], 142);
    assert_eq!(statuses[5]["id"], 143);
    let one: Value = app.get(&format!("/api/v4/leads/pipelines/{}", trend["id"])).await.json().await.unwrap();
    assert_eq!(one["name"], "TrendAgent");
}

#[tokio::test]
async fn seeded_contact_is_found_by_phone_with_its_deal_in_the_named_stage() {
    let app = spawn_emulator().await;

    let seeded: Value = app
        .control(
            Method::POST,
            "/_emulator/contacts",
            Some(json!({"name": "Анна", "phones": ["+79991112233"], "emails": ["anna@example.com"],
                "leads": [{"pipeline": "TrendAgent", "status": "Новая заявка", "name": "Старая заявка"}]})),
        )
        .await
        .json()
        .await
        .unwrap();
    let found: Value = app.get("/api/v4/contacts?query=9991112233&with=leads").await.json().await.unwrap();

    let contact = &found["_embedded"]["contacts"][0];
    assert_eq!(contact["id"], seeded["contact_id"]);
    assert_eq!(contact["_embedded"]["leads"][0]["id"], seeded["lead_ids"][0]);
    let leads = app.emulator().leads_in_pipeline("TrendAgent");
    assert_eq!((leads[0].name.as_str(), leads[0].status.as_str()), ("Старая заявка", "Новая заявка"));
    let unknown_stage = app
        .http
        .post(app.url("/_emulator/contacts"))
        .json(&json!({"name": "x", "leads": [{"pipeline": "TrendAgent", "status": "Нет такого"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown_stage.status(), 400);
}

#[tokio::test]
async fn request_log_records_method_path_with_query_and_status() {
    let app = spawn_emulator().await;
    app.get("/api/v4/contacts?query=123").await;
    app.http.post(app.url("/oauth2/access_token")).json(&json!({})).send().await.unwrap();

    let log: Value = app.control(Method::GET, "/_emulator/requests", None).await.json().await.unwrap();

    let entries = log.as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["method"], "GET");
    assert_eq!(entries[0]["path"], "/api/v4/contacts?query=123");
    assert_eq!(entries[0]["status"], 204);
    assert!(entries[0]["at_ms"].is_u64());
    assert_eq!(entries[1]["path"], "/oauth2/access_token");
    assert_eq!(entries[1]["status"], 401);
}

#[tokio::test]
async fn state_snapshot_shows_contacts_with_their_lead_ids() {
    let app = spawn_emulator().await;
    let contact_id = app.create_contact("Анна", "+79991112233").await;
    let lead_id = app.create_lead(json!({"name": "x", "_embedded": {"contacts": [{"id": contact_id}]}})).await;

    let state: Value = app.control(Method::GET, "/_emulator/state", None).await.json().await.unwrap();

    assert_eq!(state, app.emulator().snapshot());
    assert_eq!(state["account"]["id"], 31000001);
    assert_eq!(state["contacts"][0]["_embedded"]["leads"][0]["id"], lead_id);
    assert_eq!(state["leads"][0]["_embedded"]["contacts"][0]["id"], contact_id);
    assert_eq!(state["pipelines"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn reset_clears_records_log_faults_and_stats_but_keeps_pipelines() {
    let app = spawn_emulator().await;
    app.create_contact("Анна", "+79991112233").await;
    app.control(Method::POST, "/_emulator/faults", Some(json!({"status": 503}))).await;

    app.control(Method::POST, "/_emulator/reset", None).await;

    assert_eq!(app.emulator().contacts_count(), 0);
    assert!(app.emulator().requests().is_empty());
    assert_eq!(app.emulator().traffic_stats().api_requests, 0);
    assert_eq!(app.get("/api/v4/leads/pipelines").await.status(), 200);
    assert_eq!(app.emulator().contacts_count(), 0);
    let id = app.create_contact("Пётр", "+79990000000").await;
    assert_eq!(id, 1001, "ids restart after a reset");
}
