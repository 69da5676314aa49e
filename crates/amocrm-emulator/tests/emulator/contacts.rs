//! Contacts: fuzzy search, 204 answers, creation with catalog fields, validation, update.

use std::collections::BTreeMap;

use amocrm_emulator::POSITION_FIELD_ID;
use serde_json::{Value, json};

use crate::harness::{content_type, spawn_emulator};

#[tokio::test]
async fn contact_search_by_last_ten_digits_finds_a_contact_stored_with_plus_seven() {
    let app = spawn_emulator().await;
    let id = app.create_contact("Анна Иванова", "+79991112233").await;

    let response = app.get("/api/v4/contacts?query=9991112233&with=leads").await;

    assert_eq!(response.status(), 200);
    assert_eq!(content_type(&response), "application/hal+json");
    let body: Value = response.json().await.unwrap();
    let contacts = body["_embedded"]["contacts"].as_array().unwrap();
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0]["id"], id);
    assert_eq!(body["_page"], 1);
    assert_eq!(contacts[0]["_embedded"]["leads"], json!([]));
    let phone = &contacts[0]["custom_fields_values"][0];
    assert_eq!(phone["field_code"], "PHONE");
    assert_eq!(phone["field_id"], 264911);
    assert_eq!(phone["field_name"], "Телефон");
    assert_eq!(phone["field_type"], "multitext");
    assert_eq!(phone["values"][0]["value"], "+79991112233");
}

#[tokio::test]
async fn contact_search_is_fuzzy_and_also_returns_contacts_matching_by_email_or_name() {
    let app = spawn_emulator().await;
    let by_phone = app.create_contact("Анна", "+79991112233").await;
    let by_email = app
        .post(
            "/api/v4/contacts",
            json!([{"name": "Пётр", "custom_fields_values": [
                {"field_code": "EMAIL", "values": [{"value": "9991112233@mail.ru", "enum_code": "WORK"}]}
            ]}]),
        )
        .await
        .json::<Value>()
        .await
        .unwrap()["_embedded"]["contacts"][0]["id"]
        .clone();

    let digits: Value = app.get("/api/v4/contacts?query=9991112233").await.json().await.unwrap();
    let by_name: Value = app.get("/api/v4/contacts?query=%D0%B0%D0%BD%D0%BD").await.json().await.unwrap();

    let ids: Vec<Value> =
        digits["_embedded"]["contacts"].as_array().unwrap().iter().map(|contact| contact["id"].clone()).collect();
    assert_eq!(ids, vec![json!(by_phone), by_email]);
    assert_eq!(by_name["_embedded"]["contacts"][0]["id"], by_phone);
}

#[tokio::test]
async fn searching_an_unknown_phone_answers_204_with_an_empty_body() {
    let app = spawn_emulator().await;
    app.create_contact("Анна", "+79991112233").await;

    let response = app.get("/api/v4/contacts?query=9990000000").await;

    assert_eq!(response.status(), 204);
    assert!(response.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn missing_contact_by_id_answers_204() {
    let app = spawn_emulator().await;

    let response = app.get("/api/v4/contacts/424242").await;

    assert_eq!(response.status(), 204);
}

#[tokio::test]
async fn created_contacts_echo_request_ids_or_their_index() {
    let app = spawn_emulator().await;

    let response = app.post("/api/v4/contacts", json!([{"name": "A", "request_id": "lead-17"}, {"name": "B"}])).await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let created = body["_embedded"]["contacts"].as_array().unwrap();
    assert_eq!(created[0]["request_id"], "lead-17");
    assert_eq!(created[1]["request_id"], "1");
    assert_ne!(created[0]["id"], created[1]["id"]);
}

#[tokio::test]
async fn unknown_custom_field_code_is_a_validation_error_and_creates_nothing() {
    let app = spawn_emulator().await;

    let response = app
        .post(
            "/api/v4/contacts",
            json!([{"name": "ok"}, {"name": "bad", "custom_fields_values": [
                {"field_code": "SKYPE", "values": [{"value": "x"}]}
            ]}]),
        )
        .await;

    assert_eq!(response.status(), 400);
    assert_eq!(content_type(&response), "application/problem+json");
    let body: Value = response.json().await.unwrap();
    let item = &body["validation-errors"][0];
    assert_eq!(item["request_id"], "1");
    assert_eq!(item["errors"][0]["code"], "NotSupportedChoice");
    assert_eq!(item["errors"][0]["path"], "custom_fields_values.0.field_code");
    assert_eq!(body["detail"], "Request validation failed");
    assert_eq!(app.emulator().contacts_count(), 0);
}

#[tokio::test]
async fn contact_body_that_is_not_an_array_is_rejected_with_400() {
    let app = spawn_emulator().await;

    let object = app.post("/api/v4/contacts", json!({"name": "A"})).await;
    let garbage = app
        .http
        .post(app.url("/api/v4/contacts"))
        .bearer_auth(crate::harness::LONG_LIVED_TOKEN)
        .body("not json")
        .send()
        .await
        .unwrap();

    assert_eq!(object.status(), 400);
    assert_eq!(garbage.status(), 400);
    let body: Value = object.json().await.unwrap();
    assert_eq!(body["status"], 400);
}

#[tokio::test]
async fn patching_a_contact_replaces_its_phone_and_keeps_other_fields() {
    let app = spawn_emulator().await;
    let id = app.create_contact("Анна", "+79991112233").await;

    let response = app
        .patch(
            &format!("/api/v4/contacts/{id}"),
            json!({"name": "Анна П.", "custom_fields_values": [
                {"field_code": "PHONE", "values": [{"value": "+79995550000", "enum_code": "MOB"}]}
            ]}),
        )
        .await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["id"], id);
    let contact = &app.emulator().contacts()[0];
    assert_eq!(contact.name, "Анна П.");
    assert_eq!(contact.phones, vec!["+79995550000".to_owned()]);
}

#[tokio::test]
async fn contact_position_is_visible_by_field_id_next_to_its_phone_and_email() {
    let app = spawn_emulator().await;

    let response = app
        .post(
            "/api/v4/contacts",
            json!([{"name": "Анна", "custom_fields_values": [
                {"field_id": 264909, "values": [{"value": "Директор"}]},
                {"field_code": "PHONE", "values": [{"value": "+79991112233", "enum_code": "MOB"}]},
                {"field_code": "EMAIL", "values": [{"value": "anna@example.com"}]}
            ]}]),
        )
        .await;

    assert_eq!(response.status(), 200);
    let contact = &app.emulator().contacts()[0];
    assert_eq!(
        contact.custom_fields,
        BTreeMap::from([
            (POSITION_FIELD_ID, vec!["Директор".to_owned()]),
            (264_911, vec!["+79991112233".to_owned()]),
            (264_913, vec!["anna@example.com".to_owned()]),
        ])
    );
    assert_eq!(contact.phones, vec!["+79991112233"]);
}

#[tokio::test]
async fn contact_keeps_its_responsible_user_and_tags_given_by_name() {
    let app = spawn_emulator().await;
    let anna = app.emulator().user_named("Анна Смирнова").unwrap();

    let created: Value = app
        .post(
            "/api/v4/contacts",
            json!([{"name": "Автоконтакт: Входящий", "responsible_user_id": anna,
                "custom_fields_values": [{"field_code": "PHONE", "values": [{"value": "+79161234567", "enum_code": "WORK"}]}],
                "_embedded": {"tags": [{"name": "+74951234567"}]}}]),
        )
        .await
        .json()
        .await
        .unwrap();
    let id = created["_embedded"]["contacts"][0]["id"].as_u64().unwrap();

    let one: Value = app.get(&format!("/api/v4/contacts/{id}")).await.json().await.unwrap();
    let listed: Value = app.get("/api/v4/contacts?query=9161234567").await.json().await.unwrap();
    assert_eq!(one["responsible_user_id"], anna);
    assert_eq!(one["_embedded"]["tags"][0]["name"], "+74951234567");
    assert!(one["_embedded"]["tags"][0]["id"].is_u64());
    assert_eq!(listed["_embedded"]["contacts"][0]["responsible_user_id"], anna);
    assert_eq!(listed["_embedded"]["contacts"][0]["_embedded"]["tags"], one["_embedded"]["tags"]);
    let summary = &app.emulator().contacts()[0];
    assert_eq!((summary.responsible_user_id, summary.tags.clone()), (anna, vec!["+74951234567".to_owned()]));
}

#[tokio::test]
async fn contact_without_a_responsible_user_belongs_to_the_account_first_user() {
    let app = spawn_emulator().await;

    let id = app.create_contact("Анна", "+79991112233").await;

    let contact: Value = app.get(&format!("/api/v4/contacts/{id}")).await.json().await.unwrap();
    assert_eq!(contact["responsible_user_id"], amocrm_emulator::USER_ID);
    assert_eq!(contact["_embedded"]["tags"], json!([]));
}

/// The contact fields are listed too, the system phone and e-mail among them; a contact that
/// fills an id not listed is refused, and nothing is stored.
#[tokio::test]
async fn the_contact_fields_the_account_lists_are_the_ones_a_contact_may_fill() {
    let app = spawn_emulator().await;
    let listed: Value = app.get("/api/v4/contacts/custom_fields").await.json().await.unwrap();
    let fields = listed["_embedded"]["custom_fields"].as_array().unwrap();
    let ids: Vec<u64> = fields.iter().map(|field| field["id"].as_u64().unwrap()).collect();
    assert!(ids.contains(&POSITION_FIELD_ID), "{listed}");
    let codes: Vec<&str> = fields.iter().filter_map(|field| field["code"].as_str()).collect();
    assert!(codes.contains(&"PHONE") && codes.contains(&"EMAIL"), "{listed}");
    assert!(fields.iter().all(|field| field["entity_type"] == "contacts"));

    let unknown = (1..).map(|id| 900_000 + id).find(|id| !ids.contains(id)).unwrap();
    let refused = app
        .post(
            "/api/v4/contacts",
            json!([{"name": "x", "custom_fields_values": [{"field_id": unknown, "values": [{"value": "y"}]}]}]),
        )
        .await;
    assert_eq!(refused.status(), 400);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["validation-errors"][0]["errors"][0]["code"], "NotSupportedChoice", "{body}");
    assert_eq!(app.emulator().contacts_count(), 0);
}
