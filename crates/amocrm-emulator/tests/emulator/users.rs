//! Users: the HAL list with paging, configured users, the first user as the default responsible.

use amocrm_emulator::{AccountUser, EmulatorConfig, USER_ID};
use serde_json::{Value, json};

use crate::harness::{content_type, spawn_emulator, spawn_with};

#[tokio::test]
async fn users_are_listed_in_the_hal_shape_with_the_administrator_first() {
    let app = spawn_emulator().await;

    let response = app.get("/api/v4/users").await;

    assert_eq!(response.status(), 200);
    assert_eq!(content_type(&response), "application/hal+json");
    let body: Value = response.json().await.unwrap();
    let users = body["_embedded"]["users"].as_array().unwrap();
    assert_eq!(users.len(), app.emulator().users().len());
    assert_eq!(users[0]["id"], USER_ID);
    assert_eq!(users[0]["rights"]["is_admin"], true);
    let anna = users.iter().find(|user| user["name"] == "Анна Смирнова").unwrap();
    assert_eq!(anna["id"], app.emulator().user_named("Анна Смирнова").unwrap());
    assert_eq!(anna["email"], "anna@sandbox.example");
    assert_eq!(anna["rights"]["is_admin"], false);
    assert!(anna["_links"]["self"]["href"].as_str().unwrap().ends_with(&format!("/api/v4/users/{}", anna["id"])));
}

#[tokio::test]
async fn users_are_paged_and_a_page_past_the_end_is_204() {
    let app = spawn_emulator().await;

    let first: Value = app.get("/api/v4/users?limit=3").await.json().await.unwrap();
    let second: Value = app.get("/api/v4/users?limit=3&page=2").await.json().await.unwrap();
    let past = app.get("/api/v4/users?limit=3&page=3").await;

    assert_eq!(first["_embedded"]["users"].as_array().unwrap().len(), 3);
    assert!(first["_links"]["next"]["href"].as_str().unwrap().contains("page=2"));
    assert_eq!(second["_embedded"]["users"].as_array().unwrap().len(), 1);
    assert!(second["_links"].get("next").is_none());
    assert_eq!(past.status(), 204);
}

#[tokio::test]
async fn configured_users_replace_the_default_ones_and_the_first_is_responsible_by_default() {
    let users = vec![
        AccountUser::new(5_000_001, "Пётр Сидоров", "petr@example.com"),
        AccountUser::new(5_000_003, "Анна", "a@example.com"),
    ];
    let app = spawn_with(EmulatorConfig { requests_per_second: 10_000, users, ..EmulatorConfig::default() }).await;

    let contact_id = app.create_contact("Клиент", "+79161234567").await;
    app.create_lead(json!({"name": "x"})).await;
    let listed: Value = app.get("/api/v4/users").await.json().await.unwrap();
    let account: Value = app.get("/api/v4/account").await.json().await.unwrap();

    let names: Vec<&str> =
        listed["_embedded"]["users"].as_array().unwrap().iter().map(|user| user["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Пётр Сидоров", "Анна"]);
    let contact: Value = app.get(&format!("/api/v4/contacts/{contact_id}")).await.json().await.unwrap();
    assert_eq!(contact["responsible_user_id"], 5_000_001);
    assert_eq!(app.emulator().leads()[0].responsible_user_id, 5_000_001);
    assert_eq!(account["current_user_id"], 5_000_001);
}
