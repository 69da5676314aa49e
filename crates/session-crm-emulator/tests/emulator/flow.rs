//! The reference flow (find contact, else organization then contact; ticket; message; file) and its records.

use serde_json::{Value, json};
use session_crm_emulator::SessionCrmConfig;

use crate::harness::{id_of, spawn_crm, spawn_with};

#[tokio::test]
async fn the_website_form_flow_creates_organization_contact_ticket_message_and_file() {
    let app = spawn_crm().await;
    app.login().await;

    let search: Value = app.get("/api/contacts?email=anna@example.com").await.json().await.unwrap();
    assert_eq!(search, json!({"items": []}));
    let organization = app.post("/api/organizations", json!({"name": "ООО Ромашка"})).await;
    assert_eq!(organization.status(), 201);
    let organization_id = id_of(organization).await;
    let contact_body = json!({"name": "Анна Иванова", "email": "anna@example.com", "phone": "+7 999 123-45-67",
        "organization_id": organization_id});
    let contact = app.post("/api/contacts", contact_body).await;
    assert_eq!(contact.status(), 201);
    let contact_id = id_of(contact).await;
    let ticket_body = json!({"service": "Техподдержка", "subject": "Не печатает чек",
        "description": "Имя: Анна\nТелефон: +7 999 123-45-67", "contact_id": contact_id, "partner_id": organization_id});
    let ticket = app.post("/api/tickets", ticket_body).await;
    assert_eq!(ticket.status(), 201);
    let ticket: Value = ticket.json().await.unwrap();
    let ticket_id = ticket["id"].as_u64().unwrap();
    let message = app.post(&format!("/api/tickets/{ticket_id}/messages"), json!({"text": "Касса не печатает"})).await;
    assert_eq!(message.status(), 201);
    let message_id = id_of(message).await;
    let upload = app.upload(ticket_id, "receipt.pdf", b"%PDF-1.4 receipt".to_vec()).await;
    assert_eq!(upload.status(), 201);
    let file_id = id_of(upload).await;

    let number = ticket["number"].as_str().unwrap();
    assert!(number.starts_with("T-") && number.len() == 8, "a human ticket number: {number}");
    assert_ne!(number.trim_start_matches("T-").trim_start_matches('0'), ticket_id.to_string());
    let tickets = app.crm().tickets();
    assert_eq!(tickets.len(), 1);
    assert_eq!(tickets[0].files[0].content, b"%PDF-1.4 receipt");
    let state = app.state().await;
    assert_eq!(state["organizations"], json!([{"id": organization_id, "name": "ООО Ромашка"}]));
    assert_eq!(state["contacts"][0]["organization_id"], organization_id);
    let dumped = &state["tickets"][0];
    assert_eq!(
        (dumped["contact_id"].as_u64(), dumped["partner_id"].as_u64()),
        (Some(contact_id), Some(organization_id))
    );
    assert_eq!(dumped["messages"], json!([{"id": message_id, "text": "Касса не печатает"}]));
    let file = &dumped["files"][0];
    assert_eq!((file["id"].as_u64(), file["file_name"].as_str()), (Some(file_id), Some("receipt.pdf")));
    assert_eq!((file["content_type"].as_str(), file["size"].as_u64()), (Some("application/pdf"), Some(16)));
    assert_eq!(state["login_count"], 1);
}

#[tokio::test]
async fn contacts_are_found_by_email_and_by_phone_whatever_the_formatting() {
    let app = spawn_crm().await;
    app.login().await;
    let anna = app.create_contact("Анна", "anna@example.com", "+7 (999) 123-45-67").await;
    app.create_contact("Пётр", "petr@example.com", "+79990000000").await;

    let by_email: Value = app.get("/api/contacts?email=ANNA@example.com").await.json().await.unwrap();
    let by_phone: Value = app.get("/api/contacts?phone=%2B79991234567").await.json().await.unwrap();
    let nobody: Value = app.get("/api/contacts?phone=%2B70000000000").await.json().await.unwrap();

    assert_eq!(by_email["items"].as_array().unwrap().len(), 1);
    assert_eq!(by_email["items"][0]["id"], anna);
    assert_eq!(by_email["items"][0]["phone"], "+7 (999) 123-45-67");
    assert_eq!(by_phone["items"][0]["id"], anna);
    assert_eq!(by_phone["items"].as_array().unwrap().len(), 1);
    assert_eq!(nobody, json!({"items": []}));
}

#[tokio::test]
async fn a_ticket_without_a_subject_gets_422_naming_the_field() {
    let app = spawn_crm().await;
    app.login().await;
    let contact_id = app.create_contact("Анна", "anna@example.com", "+79991234567").await;

    let response = app.post("/api/tickets", json!({"service": "Техподдержка", "contact_id": contact_id})).await;

    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    assert!(body["errors"]["subject"].is_array(), "{body}");
    assert!(app.crm().tickets().is_empty());
}

#[tokio::test]
async fn ids_sent_as_strings_of_digits_are_taken_like_numbers() {
    let app = spawn_crm().await;
    app.login().await;
    let organization_id = id_of(app.post("/api/organizations", json!({"name": "ООО Ромашка"})).await).await;
    let contact = json!({"name": "Анна", "organization_id": organization_id.to_string(), "email": ""});
    let contact_id = id_of(app.post("/api/contacts", contact).await).await;

    let empty_partner = json!({"service": "s", "subject": "x", "contact_id": contact_id.to_string(), "partner_id": ""});
    let refused = app.post("/api/tickets", empty_partner).await;
    let ticket = json!({"service": "s", "subject": "x", "contact_id": contact_id.to_string()});
    let response = app.post("/api/tickets", ticket).await;

    assert_eq!(refused.status(), 422, "an empty id is not a missing one");
    assert_eq!(response.status(), 201);
    let tickets = app.crm().tickets();
    assert_eq!((tickets[0].contact_id, tickets[0].partner_id), (contact_id, None));
    assert_eq!(app.crm().contacts()[0].organization_id, Some(organization_id));
}

#[tokio::test]
async fn a_ticket_for_an_unknown_contact_gets_422_naming_contact_id() {
    let app = spawn_crm().await;
    app.login().await;

    let response = app.post("/api/tickets", json!({"service": "s", "subject": "x", "contact_id": 999_999})).await;

    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    assert!(body["errors"]["contact_id"].is_array(), "{body}");
}

#[tokio::test]
async fn a_message_or_file_for_an_unknown_ticket_gets_404_json() {
    let app = spawn_crm().await;
    app.login().await;

    let message = app.post("/api/tickets/999999/messages", json!({"text": "x"})).await;
    let file = app.upload(999_999, "a.pdf", vec![1]).await;

    assert_eq!(message.status(), 404);
    assert!(message.json::<Value>().await.unwrap()["message"].is_string());
    assert_eq!(file.status(), 404);
}

#[tokio::test]
async fn an_upload_over_the_limit_gets_413_and_stores_nothing() {
    let app = spawn_with(SessionCrmConfig { max_upload_bytes: 1024, ..SessionCrmConfig::default() }).await;
    app.login().await;
    let contact_id = app.create_contact("Анна", "anna@example.com", "+79991234567").await;
    let ticket = app.post("/api/tickets", json!({"service": "s", "subject": "x", "contact_id": contact_id})).await;
    let ticket_id = id_of(ticket).await;

    let too_large = app.upload(ticket_id, "big.pdf", vec![b'x'; 1025]).await;
    let at_limit = app.upload(ticket_id, "ok.pdf", vec![b'x'; 1024]).await;

    assert_eq!(too_large.status(), 413);
    assert_eq!(at_limit.status(), 201, "the connection survived and the limit is inclusive");
    let files = &app.crm().tickets()[0].files;
    assert_eq!(files.iter().map(|file| file.file_name.as_str()).collect::<Vec<_>>(), ["ok.pdf"]);
}

#[tokio::test]
async fn an_upload_without_the_file_field_gets_422_naming_it() {
    let app = spawn_crm().await;
    app.login().await;
    let contact_id = app.create_contact("Анна", "anna@example.com", "+79991234567").await;
    let ticket_id =
        id_of(app.post("/api/tickets", json!({"service": "s", "subject": "x", "contact_id": contact_id})).await).await;

    let response = app
        .http
        .post(app.url(&format!("/api/tickets/{ticket_id}/files")))
        .header(session_crm_emulator::CSRF_HEADER, app.csrf_token())
        .multipart(reqwest::multipart::Form::new().text("attachment", "x"))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    assert!(body["errors"]["file"].is_array(), "{body}");
}
