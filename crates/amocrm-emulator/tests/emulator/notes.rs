//! Notes: the batch form with `entity_id`, type and entity checks.

use serde_json::{Value, json};

use crate::harness::spawn_emulator;

#[tokio::test]
async fn notes_added_by_entity_id_are_listed_on_the_contact() {
    let app = spawn_emulator().await;
    let contact_id = app.create_contact("Анна", "+79991112233").await;

    let response = app
        .post(
            "/api/v4/contacts/notes",
            json!([
                {"entity_id": contact_id, "note_type": "common", "params": {"text": "one"}, "request_id": "n1"},
                {"entity_id": contact_id, "note_type": "call_in", "params": {"phone": "+79991112233", "duration": 60}}
            ]),
        )
        .await;

    assert_eq!(response.status(), 200);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["_embedded"]["notes"][0]["request_id"], "n1");
    assert_eq!(created["_embedded"]["notes"][0]["entity_id"], contact_id);
    let listed: Value = app.get(&format!("/api/v4/contacts/{contact_id}/notes")).await.json().await.unwrap();
    assert_eq!(listed["_embedded"]["notes"].as_array().unwrap().len(), 2);
    assert_eq!(listed["_embedded"]["notes"][1]["note_type"], "call_in");
}

#[tokio::test]
async fn note_of_an_unwritable_type_or_without_text_is_rejected() {
    let app = spawn_emulator().await;
    let lead_id = app.create_lead(json!({"name": "x"})).await;

    let response = app
        .post(
            &format!("/api/v4/leads/{lead_id}/notes"),
            json!([
                {"note_type": "attachment", "params": {}},
                {"note_type": "common", "params": {}}
            ]),
        )
        .await;

    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["validation-errors"][0]["errors"][0]["path"], "note_type");
    assert_eq!(body["validation-errors"][1]["errors"][0]["path"], "params.text");
    assert!(app.emulator().notes().is_empty());
}

#[tokio::test]
async fn note_on_a_missing_entity_is_rejected_and_an_empty_list_is_204() {
    let app = spawn_emulator().await;

    let on_missing = app
        .post("/api/v4/leads/notes", json!([{"entity_id": 5999, "note_type": "common", "params": {"text": "x"}}]))
        .await;
    let lead_id = app.create_lead(json!({"name": "x"})).await;
    let empty = app.get(&format!("/api/v4/leads/{lead_id}/notes")).await;

    assert_eq!(on_missing.status(), 400);
    let body: Value = on_missing.json().await.unwrap();
    assert_eq!(body["validation-errors"][0]["errors"][0]["path"], "entity_id");
    assert_eq!(empty.status(), 204);
}
