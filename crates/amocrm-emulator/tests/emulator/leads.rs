//! Leads: placement rules, links to contacts, moves between stages, complex creation.

use std::collections::BTreeMap;

use amocrm_emulator::{LISTING_FIELD_ID, USER_ID};
use serde_json::{Value, json};

use crate::harness::{content_type, spawn_emulator, stage};

#[tokio::test]
async fn contact_lead_and_note_created_in_turn_show_up_linked() {
    let app = spawn_emulator().await;
    let contact_id = app.create_contact("Анна", "+79991112233").await;
    let (pipeline_id, status_id) = stage(&app, "TrendAgent", "Новая заявка").await;
    let lead_id = app
        .create_lead(json!({
            "name": "Заявка с сайта", "price": 1000, "pipeline_id": pipeline_id, "status_id": status_id,
            "_embedded": {"contacts": [{"id": contact_id}], "tags": [{"name": "partner"}]}
        }))
        .await;
    let note = app
        .post(
            &format!("/api/v4/leads/{lead_id}/notes"),
            json!([{"note_type": "common", "params": {"text": "Из партнёрской заявки"}}]),
        )
        .await;
    assert_eq!(note.status(), 200);

    let contact: Value = app.get(&format!("/api/v4/contacts/{contact_id}?with=leads")).await.json().await.unwrap();
    let lead: Value = app.get(&format!("/api/v4/leads/{lead_id}?with=contacts")).await.json().await.unwrap();
    let notes: Value = app.get(&format!("/api/v4/leads/{lead_id}/notes")).await.json().await.unwrap();

    assert_eq!(contact["_embedded"]["leads"][0]["id"], lead_id);
    assert_eq!(lead["_embedded"]["contacts"][0]["id"], contact_id);
    assert_eq!(lead["_embedded"]["contacts"][0]["is_main"], true);
    assert_eq!(lead["_embedded"]["tags"][0]["name"], "partner");
    assert_eq!((lead["pipeline_id"].as_u64(), lead["status_id"].as_u64()), (Some(pipeline_id), Some(status_id)));
    assert_eq!(lead["price"], 1000);
    assert_eq!(notes["_embedded"]["notes"][0]["params"]["text"], "Из партнёрской заявки");
    assert_eq!(notes["_embedded"]["notes"][0]["entity_id"], lead_id);
}

#[tokio::test]
async fn lead_without_status_lands_in_the_first_working_stage_of_the_main_pipeline() {
    let app = spawn_emulator().await;

    let lead_id = app.create_lead(json!({"name": "Без этапа"})).await;

    let lead = &app.emulator().leads()[0];
    assert_eq!(lead.id, lead_id);
    assert_eq!((lead.pipeline.as_str(), lead.status.as_str()), ("Воронка", "Первичный контакт"));
}

#[tokio::test]
async fn lead_created_with_price_responsible_user_tags_and_listing_field_shows_them_all_in_its_summary() {
    let app = spawn_emulator().await;

    app.create_lead(json!({
        "name": "Квартира на Ленина", "price": 4_500_000, "responsible_user_id": USER_ID,
        "_embedded": {"tags": [{"name": "a"}, {"name": "b"}]},
        "custom_fields_values": [{"field_id": 264941, "values": [{"value": "x"}]}]
    }))
    .await;

    let lead = &app.emulator().leads()[0];
    assert_eq!(lead.price, 4_500_000);
    assert_eq!(lead.responsible_user_id, USER_ID);
    assert_eq!(lead.tags, vec!["a", "b"]);
    assert_eq!(lead.custom_fields, BTreeMap::from([(LISTING_FIELD_ID, vec!["x".to_owned()])]));
}

#[tokio::test]
async fn lead_tags_are_listed_in_the_order_attached_not_by_tag_age() {
    let app = spawn_emulator().await;
    app.create_lead(json!({"name": "first", "_embedded": {"tags": [{"name": "avito"}]}})).await;

    app.create_lead(json!({"name": "second", "_embedded": {"tags": [{"name": "partner"}, {"name": "avito"}]}})).await;

    let leads = app.emulator().leads();
    assert_eq!(leads[1].tags, vec!["partner", "avito"]);
}

#[tokio::test]
async fn lead_without_responsible_user_and_fields_belongs_to_the_account_user_and_has_no_fields() {
    let app = spawn_emulator().await;

    app.create_lead(json!({"name": "x"})).await;

    let lead = &app.emulator().leads()[0];
    assert_eq!(lead.responsible_user_id, USER_ID);
    assert!(lead.tags.is_empty());
    assert!(lead.custom_fields.is_empty());
}

/// The facts say nothing about an unknown user id, so the emulator does not invent a rejection.
#[tokio::test]
async fn lead_with_an_unknown_responsible_user_id_is_stored_as_given() {
    let app = spawn_emulator().await;

    app.create_lead(json!({"name": "x", "responsible_user_id": 6_000_999})).await;

    assert_eq!(app.emulator().leads()[0].responsible_user_id, 6_000_999);
}

#[tokio::test]
async fn lead_with_only_a_status_id_lands_in_the_pipeline_owning_it() {
    let app = spawn_emulator().await;
    let (_, status_id) = stage(&app, "TrendAgent", "Бронь").await;

    app.create_lead(json!({"name": "x", "status_id": status_id})).await;

    let leads = app.emulator().leads_in_pipeline("TrendAgent");
    assert_eq!(leads.len(), 1);
    assert_eq!(leads[0].status, "Бронь");
}

#[tokio::test]
async fn lead_with_a_status_from_another_pipeline_is_rejected_with_validation_errors() {
    let app = spawn_emulator().await;
    let (trend_agent, _) = stage(&app, "TrendAgent", "Новая заявка").await;
    let (_, negotiation) = stage(&app, "Воронка", "Переговоры").await;

    let response =
        app.post("/api/v4/leads", json!([{"name": "x", "pipeline_id": trend_agent, "status_id": negotiation}])).await;

    assert_eq!(response.status(), 400);
    assert_eq!(content_type(&response), "application/problem+json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["validation-errors"],
        json!([{"request_id": "0", "errors": [{"code": "NotSupportedChoice", "path": "status_id",
            "detail": "The value you selected is not a valid choice."}]}])
    );
    assert_eq!(body["title"], "Bad Request");
    assert_eq!(body["type"], "https://httpstatus.es/400");
    assert_eq!(app.emulator().leads_count(), 0);
}

#[tokio::test]
async fn lead_linked_to_an_unknown_contact_or_pipeline_is_rejected() {
    let app = spawn_emulator().await;

    let response = app
        .post(
            "/api/v4/leads",
            json!([
                {"name": "a", "_embedded": {"contacts": [{"id": 999_999}]}},
                {"name": "b", "pipeline_id": 1}
            ]),
        )
        .await;

    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    let errors = &body["validation-errors"];
    assert_eq!(errors[0]["errors"][0]["path"], "_embedded.contacts.0.id");
    assert_eq!(errors[1]["request_id"], "1");
    assert_eq!(errors[1]["errors"][0]["path"], "pipeline_id");
}

#[tokio::test]
async fn patching_a_lead_status_moves_it_and_answers_id_and_updated_at() {
    let app = spawn_emulator().await;
    let lead_id = app.create_lead(json!({"name": "x"})).await;
    let (pipeline_id, status_id) = stage(&app, "TrendAgent", "Объект выбран").await;

    let response = app
        .patch(&format!("/api/v4/leads/{lead_id}"), json!({"pipeline_id": pipeline_id, "status_id": status_id}))
        .await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["id"], lead_id);
    assert!(body["updated_at"].as_i64().unwrap() > 0);
    let lead = &app.emulator().leads()[0];
    assert_eq!((lead.pipeline.as_str(), lead.status.as_str()), ("TrendAgent", "Объект выбран"));
}

#[tokio::test]
async fn batch_patch_moves_several_leads_and_closing_sets_closed_at() {
    let app = spawn_emulator().await;
    let first = app.create_lead(json!({"name": "a"})).await;
    let second = app.create_lead(json!({"name": "b"})).await;

    let response =
        app.patch("/api/v4/leads", json!([{"id": first, "status_id": 142}, {"id": second, "price": 5}])).await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["_embedded"]["leads"][1]["id"], second);
    let won: Value = app.get(&format!("/api/v4/leads/{first}")).await.json().await.unwrap();
    assert_eq!(won["status_id"], 142);
    assert_eq!(won["pipeline_id"], stage(&app, "Воронка", "Переговоры").await.0);
    assert!(won["closed_at"].as_i64().is_some());
}

#[tokio::test]
async fn patching_a_missing_lead_is_a_validation_error_on_id() {
    let app = spawn_emulator().await;

    let response = app.patch("/api/v4/leads/777777", json!({"status_id": 142})).await;

    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["validation-errors"][0]["errors"][0]["path"], "id");
}

#[tokio::test]
async fn lead_search_matches_names_and_missing_lead_answers_204() {
    let app = spawn_emulator().await;
    let lead_id = app.create_lead(json!({"name": "Квартира на Невском"})).await;

    let found: Value =
        app.get("/api/v4/leads?query=%D0%BD%D0%B5%D0%B2%D1%81%D0%BA&with=contacts").await.json().await.unwrap();
    let nothing = app.get("/api/v4/leads?query=zzz").await;
    let missing = app.get("/api/v4/leads/123").await;

    assert_eq!(found["_embedded"]["leads"][0]["id"], lead_id);
    assert_eq!(found["_embedded"]["leads"][0]["_embedded"]["contacts"], json!([]));
    assert_eq!(nothing.status(), 204);
    assert_eq!(missing.status(), 204);
}

#[tokio::test]
async fn complex_create_returns_a_bare_array_and_links_the_new_contact_and_company() {
    let app = spawn_emulator().await;

    let response = app
        .post(
            "/api/v4/leads/complex",
            json!([{
                "name": "Комплексная", "request_id": "r1",
                "_embedded": {
                    "contacts": [{"first_name": "Иван", "last_name": "Петров", "custom_fields_values": [
                        {"field_code": "PHONE", "values": [{"value": "+79990001122", "enum_code": "MOB"}]}
                    ]}],
                    "companies": [{"name": "ООО Ромашка"}]
                }
            }]),
        )
        .await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let result = &body.as_array().expect("a bare array")[0];
    assert_eq!(result["request_id"], json!(["r1"]));
    assert_eq!(result["merged"], false);
    assert!(result["company_id"].is_u64());
    let contacts = app.emulator().contacts();
    assert_eq!(contacts[0].name, "Иван Петров");
    assert_eq!(result["contact_id"], contacts[0].id);
    assert_eq!(contacts[0].lead_ids, vec![result["id"].as_u64().unwrap()]);
}

#[tokio::test]
async fn complex_create_links_an_existing_contact_by_id_and_allows_no_company() {
    let app = spawn_emulator().await;
    let contact_id = app.create_contact("Анна", "+79991112233").await;

    let body: Value = app
        .post("/api/v4/leads/complex", json!([{"name": "x", "_embedded": {"contacts": [{"id": contact_id}]}}]))
        .await
        .json()
        .await
        .unwrap();

    assert_eq!(body[0]["contact_id"], contact_id);
    assert_eq!(body[0]["company_id"], Value::Null);
    assert_eq!(body[0]["request_id"], json!(["0"]));
    assert_eq!(app.emulator().contacts_count(), 1);
}

#[tokio::test]
async fn complex_create_refuses_more_than_fifty_leads_or_two_contacts() {
    let app = spawn_emulator().await;
    let many: Vec<Value> = (0..51).map(|i| json!({"name": format!("lead {i}")})).collect();

    let too_many = app.post("/api/v4/leads/complex", Value::Array(many)).await;
    let two_contacts =
        app.post("/api/v4/leads/complex", json!([{"_embedded": {"contacts": [{"name": "a"}, {"name": "b"}]}}])).await;

    assert_eq!(too_many.status(), 400);
    assert_eq!(two_contacts.status(), 400);
    assert_eq!(app.emulator().leads_count(), 0);
}

/// The account's deal fields are listed, so an integration can check the ids it fills; a deal
/// that fills an id not listed is refused.
#[tokio::test]
async fn the_deal_fields_the_account_lists_are_the_ones_a_deal_may_fill() {
    let app = spawn_emulator().await;
    let listed: Value = app.get("/api/v4/leads/custom_fields").await.json().await.unwrap();
    let fields = listed["_embedded"]["custom_fields"].as_array().unwrap();
    let ids: Vec<u64> = fields.iter().map(|field| field["id"].as_u64().unwrap()).collect();
    assert!(ids.contains(&LISTING_FIELD_ID), "{listed}");
    assert!(fields.iter().all(|field| field["name"].is_string() && field["type"].is_string()));

    let unknown = (1..).map(|id| 900_000 + id).find(|id| !ids.contains(id)).unwrap();
    let (pipeline_id, status_id) = stage(&app, "TrendAgent", "Новая заявка").await;
    let refused = app
        .post(
            "/api/v4/leads",
            json!([{"name": "x", "pipeline_id": pipeline_id, "status_id": status_id,
                    "custom_fields_values": [{"field_id": unknown, "values": [{"value": "y"}]}]}]),
        )
        .await;
    assert_eq!(refused.status(), 400);
}
