//! The three cases of the seed, end to end: new client, known client without a deal, known client with one.

use amocrm_emulator::{SeedContact, SeedLead};
use leadgate::domain::LeadId;
use leadgate::store::FeedbackKind;
use serde_json::json;

use crate::helpers::{PIPELINE, STAGE, history_kinds, lead, spawn_app};

fn seed(name: &str, phones: &[&str], deals: &[(&str, &str)]) -> SeedContact {
    SeedContact {
        name: name.to_owned(),
        phones: phones.iter().map(|phone| (*phone).to_owned()).collect(),
        emails: Vec::new(),
        leads: deals
            .iter()
            .map(|(pipeline, status)| SeedLead {
                pipeline: (*pipeline).to_owned(),
                status: (*status).to_owned(),
                ..SeedLead::default()
            })
            .collect(),
    }
}

#[tokio::test]
async fn a_new_client_gets_a_contact_a_deal_at_the_stage_and_a_note_with_every_field() {
    let app = spawn_app().await;
    let id = app
        .accept(json!({
            "name": "Мария Иванова", "phone": "8 (999) 100-00-01", "email": "maria@example.ru",
            "comment": "Хочет 2-комнатную", "callbackUrl": "https://partner.example/callback", "object_id": "A-17",
        }))
        .await;
    let done = app.wait_for(id, &["approved"]).await;

    let crm = &app.crm.emulator;
    let contacts = crm.contacts();
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0].name, "Мария Иванова");
    assert_eq!(contacts[0].phones, ["+79991000001"]);
    assert_eq!(contacts[0].emails, ["maria@example.ru"]);
    let deals = crm.leads();
    assert_eq!(deals.len(), 1);
    assert_eq!((deals[0].pipeline.as_str(), deals[0].status.as_str()), (PIPELINE, STAGE));
    assert_eq!(deals[0].contact_ids, [contacts[0].id]);
    let notes = crm.notes();
    assert_eq!(notes.len(), 1);
    let text = notes[0].text.clone().unwrap();
    for field in
        ["Мария Иванова", "+79991000001", "maria@example.ru", "Хочет 2-комнатную", "object_id: A-17", "callbackUrl"]
    {
        assert!(text.contains(field), "the note lacks {field}: {text}");
    }

    assert_eq!(done["outcome"]["decision"], "new_client");
    assert_eq!(done["outcome"]["unique"], true);
    assert_eq!(done["outcome"]["contact_id"], contacts[0].id);
    assert_eq!(done["outcome"]["deal_id"], deals[0].id);
    let kinds = history_kinds(&done);
    for kind in ["received", "claimed", "crm_call", "client_looked_up", "approved"] {
        assert!(kinds.iter().any(|seen| seen == kind), "history lacks {kind}: {kinds:?}");
    }
    let call = done["history"].as_array().unwrap().iter().find(|event| event["kind"] == "crm_call").unwrap();
    for field in ["method", "path", "status", "duration_ms"] {
        assert!(!call["detail"][field].is_null(), "a CRM call entry lacks {field}: {call}");
    }

    let owed = app.store.owed_feedback(LeadId(id)).await.unwrap();
    assert_eq!(owed.len(), 1, "the callback is owed, committed with the outcome");
    assert_eq!(owed[0].kind, FeedbackKind::Callback);
    assert_eq!(owed[0].payload["url"], "https://partner.example/callback");
    assert_eq!(owed[0].payload["body"]["unique"], true);
    assert_eq!(owed[0].payload["body"]["message"], "Клиент уникальный");
    app.stop().await;
}

#[tokio::test]
async fn a_known_client_without_a_deal_in_the_pipeline_is_rejected_and_nothing_is_created() {
    let app = spawn_app().await;
    let known =
        app.crm.emulator.seed_contact(&seed("Пётр", &["+7 999 100-00-02"], &[("Воронка", "Переговоры")])).unwrap();
    let (contacts, deals) = (app.crm.emulator.contacts_count(), app.crm.emulator.leads_count());

    let id = app
        .accept(json!({ "name": "Пётр", "phone": "89991000002", "callbackUrl": "https://partner.example/cb" }))
        .await;
    let done = app.wait_for(id, &["rejected"]).await;

    assert_eq!(done["outcome"]["decision"], "known_client_without_deal");
    assert_eq!(done["outcome"]["unique"], false);
    assert_eq!(done["outcome"]["contact_id"], known.contact_id);
    assert_eq!(app.crm.emulator.contacts_count(), contacts);
    assert_eq!(app.crm.emulator.leads_count(), deals);
    assert!(app.crm.emulator.notes().is_empty());
    let owed = app.store.owed_feedback(LeadId(id)).await.unwrap();
    assert_eq!(owed[0].payload["body"]["message"], "Клиент не уникален");
    app.stop().await;
}

#[tokio::test]
async fn a_known_client_with_a_deal_in_the_pipeline_has_that_deal_moved_to_the_stage() {
    let app = spawn_app().await;
    let known =
        app.crm.emulator.seed_contact(&seed("Ольга", &["8 (999) 100-00-03"], &[(PIPELINE, "Новая заявка")])).unwrap();

    let id = app.accept(lead("Ольга", "+79991000003")).await;
    let done = app.wait_for(id, &["rejected"]).await;

    assert_eq!(done["outcome"]["decision"], "known_client_deal_moved");
    assert_eq!(done["outcome"]["deal_id"], known.lead_ids[0]);
    let deals = app.crm.emulator.leads();
    assert_eq!(deals.len(), 1, "no deal was created");
    assert_eq!(deals[0].status, STAGE);
    assert_eq!(app.crm.emulator.contacts_count(), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_fuzzy_search_hit_on_another_field_is_not_taken_for_the_client() {
    let app = spawn_app().await;
    // amoCRM's search matches any field: this contact mentions the digits but has another phone.
    let mut decoy = seed("Клиент 9991000004", &["+79995550000"], &[(PIPELINE, "Новая заявка")]);
    decoy.emails = vec!["9991000004@example.ru".to_owned()];
    app.crm.emulator.seed_contact(&decoy).unwrap();

    let id = app.accept(lead("Новый", "+7 999 100-00-04")).await;
    let done = app.wait_for(id, &["approved"]).await;

    assert_eq!(done["outcome"]["decision"], "new_client");
    assert_eq!(app.crm.emulator.contacts_count(), 2);
    app.stop().await;
}

#[tokio::test]
async fn two_leads_of_one_client_sent_together_make_one_contact() {
    let app = spawn_app().await;
    let first = app.accept(lead("Ирина", "+79991000005")).await;
    let second = app.accept(lead("Ирина", "8 999 100 00 05")).await;
    let first = app.wait_for(first, &["approved", "rejected"]).await;
    let second = app.wait_for(second, &["approved", "rejected"]).await;

    assert_eq!(app.crm.emulator.contacts_count(), 1);
    assert_eq!(app.crm.emulator.leads_count(), 1);
    let decisions = [first["outcome"]["decision"].clone(), second["outcome"]["decision"].clone()];
    assert_eq!(decisions, [json!("new_client"), json!("known_client_deal_moved")]);
    app.stop().await;
}
