//! The amoCRM connector's call operations against the emulator over loopback: users, auto-contacts, auto-deals, call notes.

use std::time::Duration;

use amocrm_emulator::{AccountUser, EmulatorConfig, RunningEmulator, USER_ID};
use chrono::Utc;
use futures::future::join_all;
use secrecy::SecretString;
use serde_json::json;
use url::Url;

use super::AmoCrm;
use super::credentials::Credentials;
use crate::config::{AmoCrmAuth, AmoCrmConfig, Route};
use crate::connectors::{DeliveryError, Search};
use crate::domain::{
    AutoContact, AutoContactKind, AutoDeal, CallNote, CallStatus, CrmRef, DealSpec, Direction, EntityKind, Lead,
    LeadId, LeadStatus, NewLead, Phone, PhoneRegion, Routing, SourceId, UserRef,
};

const TOKEN: &str = "sandbox-long-lived-token";
const CLIENT: &str = "8 (916) 123-45-67";
const OUR_NUMBER: &str = "+7 495 123-45-67";

struct Amo {
    crm: RunningEmulator,
    client: AmoCrm,
}

async fn amo() -> Amo {
    amo_with(EmulatorConfig::default()).await
}

/// An emulator whose rate limit is out of the way, and a client with its long-lived token.
async fn amo_with(config: EmulatorConfig) -> Amo {
    let config = EmulatorConfig { requests_per_second: 10_000, ..config };
    let crm = amocrm_emulator::spawn(config, "127.0.0.1:0".parse().expect("an address"))
        .await
        .expect("the emulator binds a loopback port");
    let config = AmoCrmConfig {
        name: "amo".to_owned(),
        base_url: Url::parse(&crm.base_url()).expect("the emulator's URL"),
        auth: AmoCrmAuth::LongLivedToken(SecretString::from(TOKEN)),
        requests_per_second: 1_000,
        timeout: Duration::from_secs(5),
    };
    let credentials = Credentials::LongLived(SecretString::from(TOKEN));
    let client = AmoCrm::with_credentials(&config, credentials, None, PhoneRegion::RUSSIA, Duration::from_secs(60));
    Amo { crm, client }
}

impl Amo {
    fn user(&self, name: &str) -> CrmRef {
        let id = self.crm.emulator.user_named(name).expect("a default user");
        CrmRef::new(EntityKind::User, id.to_string())
    }

    fn requests_to(&self, path: &str) -> usize {
        self.crm.emulator.requests().iter().filter(|request| request.path.split('?').next() == Some(path)).count()
    }
}

fn phone(text: &str) -> Phone {
    Phone::parse(text, PhoneRegion::RUSSIA).expect("a valid phone")
}

fn route() -> Route {
    Route {
        destination: "amo".to_owned(),
        pipeline: "TrendAgent".to_owned(),
        status: "Новая заявка".to_owned(),
        ..Route::default()
    }
}

/// The call as the telephony source would hand it over: a lead with the client's number.
fn lead_from(client: &str) -> Lead {
    let fields = NewLead {
        source: SourceId("telephony".to_owned()),
        external_id: None,
        name: client.to_owned(),
        phone: phone(client),
        email: None,
        comment: None,
        callback_url: None,
        payload: json!({}),
        routing: Routing::default(),
        origin_time: None,
        deal: DealSpec::default(),
        skip_sending: false,
        duplicate_check: None,
        call: None,
    };
    let now = Utc::now();
    Lead {
        id: LeadId(7),
        fields,
        status: LeadStatus::Processing,
        attempt: 0,
        run_at: now,
        outcome: None,
        last_error: None,
        created_at: now,
        updated_at: now,
        erased_at: None,
    }
}

fn answered_call(responsible: &CrmRef) -> CallNote {
    CallNote {
        direction: Direction::Incoming,
        uniq: "telphin-6f1d0c2a".to_owned(),
        phone: phone(CLIENT),
        duration_seconds: 95,
        call_status: CallStatus::Answered,
        responsible: Some(responsible.clone()),
        link: Some(Url::parse("https://gate.example/recordings/6f1d0c2a.mp3").expect("a URL")),
    }
}

#[tokio::test]
async fn users_are_found_by_name_and_by_id_with_one_read_of_the_list() {
    let amo = amo().await;
    let mut calls = Vec::new();

    let by_name = amo.client.crm_user(&UserRef::Name("Анна Смирнова".to_owned()), &mut calls).await.unwrap();
    let by_id = amo.client.crm_user(&UserRef::Id(6_000_003), &mut calls).await.unwrap();

    assert_eq!(by_name, amo.user("Анна Смирнова"));
    assert_eq!(by_id, amo.user("Иван Петров"));
    assert_eq!(amo.requests_to("/api/v4/users"), 1, "the second user comes from the cache");
    assert_eq!(calls.len(), 1, "each CRM call is recorded for the history");
}

#[tokio::test]
async fn users_past_the_first_page_of_250_are_found() {
    let users = (0..300).map(|index| AccountUser::new(7_000_000 + index, &format!("Менеджер {index}"), "")).collect();
    let amo = amo_with(EmulatorConfig { users, ..EmulatorConfig::default() }).await;

    let found = amo.client.crm_user(&UserRef::Name("Менеджер 299".to_owned()), &mut Vec::new()).await.unwrap();

    assert_eq!(found, CrmRef::new(EntityKind::User, "7000299"));
    assert_eq!(amo.requests_to("/api/v4/users"), 2);
}

#[tokio::test]
async fn concurrent_lookups_of_an_unseen_user_share_one_read_of_the_list() {
    let amo = amo().await;
    let anna = UserRef::Name("Анна Смирнова".to_owned());

    let found = join_all((0..5).map(|_| async { amo.client.crm_user(&anna, &mut Vec::new()).await })).await;

    assert!(found.iter().all(|user| user.as_ref().is_ok_and(|user| *user == amo.user("Анна Смирнова"))));
    assert_eq!(amo.requests_to("/api/v4/users"), 1);
}

#[tokio::test]
async fn an_unknown_user_name_is_misconfigured_and_named_after_a_fresh_read() {
    let amo = amo().await;
    amo.client.crm_user(&UserRef::Id(USER_ID as i64), &mut Vec::new()).await.unwrap();

    let by_name = amo.client.crm_user(&UserRef::Name("Анна Смирнов".to_owned()), &mut Vec::new()).await;
    let by_id = amo.client.crm_user(&UserRef::Id(5_000_003), &mut Vec::new()).await;

    let Err(DeliveryError::Misconfigured(message)) = by_name else { panic!("expected Misconfigured: {by_name:?}") };
    assert!(message.contains("«Анна Смирнов»"), "{message}");
    assert!(message.contains("Администратор, Анна Смирнова"), "the account's users are listed: {message}");
    let Err(DeliveryError::Misconfigured(message)) = by_id else { panic!("expected Misconfigured: {by_id:?}") };
    assert!(message.contains("5000003"), "{message}");
    assert_eq!(amo.requests_to("/api/v4/users"), 3, "a miss reads the list again before failing");
}

#[tokio::test]
async fn a_name_shared_by_two_users_is_misconfigured_with_both_ids() {
    let mut users = EmulatorConfig::default().users;
    users.push(AccountUser::new(6_000_009, "Анна Смирнова", "anna2@sandbox.example"));
    let amo = amo_with(EmulatorConfig { users, ..EmulatorConfig::default() }).await;

    let found = amo.client.crm_user(&UserRef::Name("Анна Смирнова".to_owned()), &mut Vec::new()).await;

    let Err(DeliveryError::Misconfigured(message)) = found else { panic!("expected Misconfigured: {found:?}") };
    assert!(message.contains("6000002, 6000009"), "{message}");
}

#[tokio::test]
async fn an_auto_contact_has_its_name_work_phone_responsible_user_and_our_number_as_tag() {
    let amo = amo().await;
    let anna = amo.user("Анна Смирнова");
    let spec = AutoContact::new(AutoContactKind::Incoming, phone(CLIENT), Some(anna.clone()), Some(&phone(OUR_NUMBER)));

    let contact = amo.client.create_auto_contact(&spec, &mut Vec::new()).await.unwrap();

    assert_eq!(contact.kind, EntityKind::Contact);
    let stored = amo.crm.emulator.contacts().into_iter().find(|stored| stored.id.to_string() == contact.id).unwrap();
    assert_eq!(stored.name, "Автоконтакт: Входящий");
    assert_eq!(stored.phones, ["+79161234567"]);
    assert_eq!(stored.responsible_user_id.to_string(), anna.id);
    assert_eq!(stored.tags, ["+74951234567"]);
    let state = amo.crm.emulator.snapshot();
    let phone_field = &state["contacts"][0]["custom_fields_values"][0];
    assert_eq!((&phone_field["field_code"], &phone_field["values"][0]["enum_code"]), (&json!("PHONE"), &json!("WORK")));
}

#[tokio::test]
async fn an_auto_deal_is_named_by_the_call_and_placed_in_the_route_stage_with_its_contact() {
    let amo = amo().await;
    let ivan = amo.user("Иван Петров");
    let spec = AutoContact::new(AutoContactKind::Incoming, phone(CLIENT), Some(ivan.clone()), Some(&phone(OUR_NUMBER)));
    let contact = amo.client.create_auto_contact(&spec, &mut Vec::new()).await.unwrap();

    let deal = AutoDeal::new(Direction::Incoming, &phone(CLIENT), contact.clone(), Some(ivan.clone()));
    let made = amo.client.create_auto_deal(&deal, &route(), &mut Vec::new()).await.unwrap();

    assert_eq!(made.kind, EntityKind::Deal);
    let stored = amo.crm.emulator.leads_in_pipeline("TrendAgent");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].id.to_string(), made.id);
    assert_eq!(stored[0].name, "Входящий +79161234567");
    assert_eq!(stored[0].status, "Новая заявка");
    assert_eq!(stored[0].responsible_user_id.to_string(), ivan.id);
    assert_eq!(stored[0].contact_ids.iter().map(u64::to_string).collect::<Vec<_>>(), [contact.id]);
}

#[tokio::test]
async fn an_answered_incoming_call_is_a_call_in_note_on_the_contact_with_every_pinned_param() {
    let amo = amo().await;
    let anna = amo.user("Анна Смирнова");
    let spec = AutoContact::new(AutoContactKind::Incoming, phone(CLIENT), Some(anna.clone()), Some(&phone(OUR_NUMBER)));
    let contact = amo.client.create_auto_contact(&spec, &mut Vec::new()).await.unwrap();

    let logged = amo.client.log_call(&contact, &answered_call(&anna), &mut Vec::new()).await.unwrap();

    assert_eq!(logged.kind, EntityKind::Call);
    let notes = amo.crm.emulator.notes();
    assert_eq!(notes.len(), 1);
    let note = &notes[0];
    assert_eq!(note.id.to_string(), logged.id);
    assert_eq!((note.entity_type.as_str(), note.entity_id.to_string()), ("contacts", contact.id.clone()));
    assert_eq!(note.note_type, "call_in");
    assert_eq!(note.responsible_user_id.to_string(), anna.id);
    let anna_id: i64 = anna.id.parse().unwrap();
    assert_eq!(
        note.params,
        json!({
            "uniq": "telphin-6f1d0c2a",
            "phone": "+79161234567",
            "duration": 95,
            "source": "leadgate",
            "link": "https://gate.example/recordings/6f1d0c2a.mp3",
            "call_status": 4,
            "call_responsible": anna_id,
        })
    );
}

#[tokio::test]
async fn a_missed_call_without_a_recording_has_no_link_and_status_six() {
    let amo = amo().await;
    let olga = amo.user("Ольга Кузнецова");
    let spec =
        AutoContact::new(AutoContactKind::IncomingMissed, phone(CLIENT), Some(olga.clone()), Some(&phone(OUR_NUMBER)));
    let contact = amo.client.create_auto_contact(&spec, &mut Vec::new()).await.unwrap();
    let missed =
        CallNote { duration_seconds: 23, call_status: CallStatus::NotReached, link: None, ..answered_call(&olga) };

    amo.client.log_call(&contact, &missed, &mut Vec::new()).await.unwrap();

    let params = &amo.crm.emulator.notes()[0].params;
    assert_eq!(params.get("link"), None);
    assert_eq!((params["call_status"].as_u64(), params["duration"].as_u64()), (Some(6), Some(23)));
    assert_eq!(amo.crm.emulator.contacts()[0].name, "Автоконтакт: Входящий-пропущенный");
}

#[tokio::test]
async fn a_logged_call_is_found_again_by_its_uniq_and_no_other_is() {
    let amo = amo().await;
    let anna = amo.user("Анна Смирнова");
    let contact = amo
        .client
        .create_auto_contact(&AutoContact::new(AutoContactKind::Outgoing, phone(CLIENT), None, None), &mut Vec::new())
        .await
        .unwrap();
    let outgoing = CallNote { direction: Direction::Outgoing, ..answered_call(&anna) };
    let mut calls = Vec::new();

    let before = amo.client.find_call(&contact, &outgoing.uniq, &mut calls).await.unwrap();
    let logged = amo.client.log_call(&contact, &outgoing, &mut calls).await.unwrap();
    let again = amo.client.find_call(&contact, &outgoing.uniq, &mut calls).await.unwrap();
    let other = amo.client.find_call(&contact, "telphin-other", &mut calls).await.unwrap();

    assert_eq!(before, None);
    assert_eq!(again, Some(logged));
    assert_eq!(other, None);
    assert_eq!(amo.crm.emulator.notes()[0].note_type, "call_out");
}

#[tokio::test]
async fn a_found_client_comes_with_the_contact_responsible_user() {
    let amo = amo().await;
    let olga = amo.user("Ольга Кузнецова");
    let spec = AutoContact::new(AutoContactKind::Incoming, phone(CLIENT), Some(olga.clone()), None);
    let contact = amo.client.create_auto_contact(&spec, &mut Vec::new()).await.unwrap();

    let search = Search { by_email: false, with_deal: false };
    let found = amo.client.find_client(&lead_from("+79161234567"), &route(), search, &mut Vec::new()).await.unwrap();

    let found = found.expect("the contact is found by its number");
    assert_eq!(found.contact, contact);
    assert_eq!(found.responsible, Some(olga));
}

#[tokio::test]
async fn a_record_that_is_not_a_user_is_refused_as_responsible_before_any_call() {
    let amo = amo().await;
    let contact = CrmRef::new(EntityKind::Contact, "1001");
    let spec = AutoContact::new(AutoContactKind::Incoming, phone(CLIENT), Some(contact), None);

    let made = amo.client.create_auto_contact(&spec, &mut Vec::new()).await;

    assert!(matches!(made, Err(DeliveryError::Misconfigured(_))), "{made:?}");
    assert_eq!(amo.crm.emulator.requests().len(), 0);
}
