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

/// The params a gateway writes for an answered incoming call, every key of the product's set.
fn answered_call(contact_id: u64, user: u64) -> Value {
    json!({
        "entity_id": contact_id, "note_type": "call_in", "responsible_user_id": user,
        "params": {"uniq": "call-42", "phone": "+79161234567", "duration": 95, "source": "leadgate",
            "link": "https://gate.example/recordings/call-42.mp3", "call_status": 4, "call_responsible": user}
    })
}

#[tokio::test]
async fn call_note_keeps_its_params_and_responsible_user_and_is_listed_on_the_contact() {
    let app = spawn_emulator().await;
    let contact_id = app.create_contact("Анна", "+79161234567").await;
    let ivan = app.emulator().user_named("Иван Петров").unwrap();

    let response = app.post("/api/v4/contacts/notes", json!([answered_call(contact_id, ivan)])).await;

    assert_eq!(response.status(), 200);
    let listed: Value = app.get(&format!("/api/v4/contacts/{contact_id}/notes")).await.json().await.unwrap();
    let note = &listed["_embedded"]["notes"][0];
    assert_eq!(note["note_type"], "call_in");
    assert_eq!(note["responsible_user_id"], ivan);
    assert_eq!(note["params"], answered_call(contact_id, ivan)["params"]);
    let stored = &app.emulator().notes()[0];
    assert_eq!((stored.entity_type.as_str(), stored.entity_id), ("contacts", contact_id));
    assert_eq!(stored.params, answered_call(contact_id, ivan)["params"]);
    assert_eq!(stored.responsible_user_id, ivan);
}

#[tokio::test]
async fn note_without_a_responsible_user_belongs_to_the_account_first_user() {
    let app = spawn_emulator().await;
    let contact_id = app.create_contact("Анна", "+79161234567").await;

    app.post("/api/v4/contacts/notes", json!([{"entity_id": contact_id, "note_type": "call_out", "params": {}}])).await;

    assert_eq!(app.emulator().notes()[0].responsible_user_id, amocrm_emulator::USER_ID);
}

#[tokio::test]
async fn call_note_with_a_status_outside_one_to_eight_is_refused_on_its_path() {
    let app = spawn_emulator().await;
    let contact_id = app.create_contact("Анна", "+79161234567").await;
    let with_status =
        |status: u64| json!({"entity_id": contact_id, "note_type": "call_out", "params": {"call_status": status}});

    let response = app.post("/api/v4/contacts/notes", json!([with_status(8), with_status(9), with_status(0)])).await;

    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    let refused = body["validation-errors"].as_array().unwrap();
    assert_eq!(refused.len(), 2, "{body}");
    assert_eq!(refused[0]["request_id"], "1");
    assert_eq!(refused[0]["errors"][0]["code"], "NotSupportedChoice");
    assert_eq!(refused[0]["errors"][0]["path"], "params.call_status");
    assert_eq!(body["detail"], "Request validation failed");
    assert!(app.emulator().notes().is_empty());
}

#[tokio::test]
async fn call_note_with_an_unknown_param_or_a_wrongly_typed_one_is_refused() {
    let app = spawn_emulator().await;
    let contact_id = app.create_contact("Анна", "+79161234567").await;

    let response = app
        .post(
            "/api/v4/contacts/notes",
            json!([{"entity_id": contact_id, "note_type": "call_in",
                "params": {"uniq": 42, "duration": "95", "call_responsibel": 6_000_002, "call_responsible": "Анна"}}]),
        )
        .await;

    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    let errors: Vec<(String, String)> = body["validation-errors"][0]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| (error["path"].as_str().unwrap().to_owned(), error["code"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(errors.len(), 3, "{body}");
    assert!(errors.contains(&("params.uniq".to_owned(), "InvalidType".to_owned())));
    assert!(errors.contains(&("params.duration".to_owned(), "InvalidType".to_owned())));
    assert!(errors.contains(&("params.call_responsibel".to_owned(), "NotSupportedChoice".to_owned())));
}
