//! Erasing one person (152-FZ, LGPD): every trace of their phone and e-mail leaves the database and
//! the files folder, other people's leads stay, and each erased lead stays as a tombstone.

use std::process::Command;
use std::time::Duration;

use leadgate::config::{Durability, StoreConfig};
use leadgate::domain::operator::Role;
use leadgate::domain::{Direction, LeadId, LegEvent, LegEventKind, SourceId};
use leadgate::store::Store;
use leadgate::store::lifecycle::{Erasure, Person};
use serde_json::{Value, json};

use crate::console::{ADMIN, Visitor, add_user, console_config};
use crate::helpers::{ADMIN_TOKEN, Setup, TestProcess, feedback_form, spawn_app_with, store_url};
use crate::queue::new_lead;
use crate::raw_db::RawDb;
use crate::retention::{pending_after_a_failed_attempt, post_form_with_file, stored_files, wait_in_store};

/// The person's number, as the last ten digits any spelling of it contains.
const DIGITS: &str = "9123456789";
const EMAIL: &str = "olga.erase@example.ru";

/// Where the database still holds the person: values whose digits contain the number, or that
/// contain the e-mail address in any case.
async fn traces(raw: &RawDb) -> Vec<(String, String)> {
    raw.every_value()
        .await
        .into_iter()
        .filter(|(_, value)| {
            let digits: String = value.chars().filter(char::is_ascii_digit).collect();
            digits.contains(DIGITS) || value.to_lowercase().contains(EMAIL)
        })
        .collect()
}

#[tokio::test]
async fn erasing_a_person_leaves_no_trace_of_their_phone_or_email_and_keeps_tombstones_and_others() {
    let setup = Setup { form: Some(feedback_form()), console: Some(console_config()), ..Setup::default() };
    let app = spawn_app_with(setup).await;
    let by_phone = app
        .accept(json!({
            "name": "Ольга Стёркина", "phone": "+7 (912) 345-67-89", "email": "Olga.Erase@Example.ru",
            "comment": "перезвоните на 8 912 345 67 89", "callbackUrl": "http://127.0.0.1:9/cb"
        }))
        .await;
    app.wait_for(by_phone, &["approved"]).await;
    let with_file = post_form_with_file(&app, "89123456789", EMAIL, b"passport scan").await;
    wait_in_store(&app, with_file, &["approved"]).await;
    let someone_else =
        app.accept(json!({ "name": "Пётр", "phone": "+7 903 111-22-33", "email": "p@example.ru" })).await;
    app.wait_for(someone_else, &["approved"]).await;
    let other_file = post_form_with_file(&app, "+7 903 111-22-33", "p@example.ru", b"someone else's file").await;
    wait_in_store(&app, other_file, &["approved"]).await;
    // Another number, the same address: found by the e-mail, and still waiting for the CRM.
    let pending =
        pending_after_a_failed_attempt(&app, json!({ "name": "Ольга", "phone": "+7 999 000-11-22", "email": EMAIL }))
            .await;
    let raw = RawDb::connect(&app.store_url).await;
    assert!(!traces(&raw).await.is_empty(), "the test's person must be in the database before the erasure");
    let erase = |body: Value| app.http.post(app.url("/api/v1/erasures")).bearer_auth(ADMIN_TOKEN).json(&body).send();

    let anonymous = app.http.post(app.url("/api/v1/erasures")).json(&json!({ "phone": "89123456789" })).send();
    assert_eq!(anonymous.await.unwrap().status(), 401);
    let by_number = erase(json!({ "phone": "8 (912) 345-67-89" })).await.unwrap();
    assert_eq!(by_number.status(), 200);
    assert_eq!(by_number.json::<Value>().await.unwrap()["erased_leads"], 2);
    // The waiting lead may be in the middle of a retry; the answer then says to ask again.
    let mut answers = Vec::new();
    let until = std::time::Instant::now() + Duration::from_secs(10);
    let erased = loop {
        let answer = erase(json!({ "email": "OLGA.ERASE@example.ru" })).await.unwrap();
        answers.push(answer.status().as_u16());
        if answer.status() == 200 {
            break answer.json::<Value>().await.unwrap()["erased_leads"] == 1;
        }
        if std::time::Instant::now() > until {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(erased && answers.iter().all(|status| [200, 409].contains(status)), "answers: {answers:?}");
    app.crm.emulator.clear_faults();

    assert_eq!(traces(&raw).await, Vec::<(String, String)>::new(), "the person is still in the database");
    assert_eq!(stored_files(&app.files_dir).len(), 1, "only the other person's file stays");
    let other = app.store.find_lead(LeadId(someone_else)).await.unwrap().unwrap();
    assert_eq!((other.fields.phone.e164(), other.status.as_str()), ("+79031112233", "approved"));
    assert_eq!(other.fields.email.unwrap().as_str(), "p@example.ru");
    let tombstone: Value = app
        .http
        .get(app.url(&format!("/api/v1/leads/{by_phone}")))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!((&tombstone["erased"], &tombstone["status"]), (&json!(true), &json!("approved")));
    assert_eq!(tombstone["source"], "trendagent");
    assert!(tombstone["outcome"]["deal_id"].is_string() || tombstone["outcome"]["deal_id"].is_number());
    let cancelled = app.store.find_lead(LeadId(pending)).await.unwrap().unwrap();
    assert_eq!(cancelled.status.as_str(), "dead", "a lead erased before delivery is never delivered");
    let audit = app.store.audit_log(10).await.unwrap();
    assert!(audit.iter().any(|entry| entry.action == "erase_person" && entry.actor == "api"));

    let listed = Command::new(TestProcess::BINARY)
        .args(["leads", "list"])
        .env("LEADGATE_STORE__URL", &app.store_url)
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&listed.stdout), String::from_utf8_lossy(&listed.stderr));
    let line = stdout.lines().find(|line| line.trim_start().starts_with(&format!("{by_phone} ")));
    let line = line.unwrap_or_else(|| panic!("lead {by_phone} is not listed: {stdout}{stderr}"));
    assert!(line.contains("(erased)") && line.contains("approved"), "{line}");

    // The console says so, where the name used to be.
    add_user(&app, ADMIN, Role::Admin).await;
    let admin = Visitor::new(&app);
    admin.log_in(ADMIN).await;
    let list = admin.page("/admin/leads").await;
    let row = &list[list.find(&format!("/admin/leads/{by_phone}\"")).expect("the tombstone is listed")..];
    assert!(row[..row.find("</tr>").unwrap()].contains("Персональные данные удалены"), "{row}");
    let page = admin.page(&format!("/admin/leads/{by_phone}")).await;
    assert!(page.contains(r#"id="erased""#) && !page.contains("Ольга"), "{page}");
    let untouched = admin.page(&format!("/admin/leads/{someone_else}")).await;
    assert!(!untouched.contains(r#"id="erased""#) && untouched.contains("Пётр"));
    app.stop().await;
}

#[tokio::test]
async fn a_lead_being_delivered_refuses_erasure_and_nothing_is_erased() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig { url: store_url(dir.path()), durability: Durability::ProcessCrash, max_connections: 4 };
    let store = Store::open(&config).await.unwrap();
    store.insert_leads(&[new_lead("+7 912 345-67-89"), new_lead("8 912 345 67 89")]).await.unwrap();
    let claimed = store.claim_due(10, Duration::from_secs(60)).await.unwrap();
    assert_eq!(claimed.len(), 1, "one lead per client is in flight");
    let person = Person { e164: Some("+79123456789".to_owned()), email: None };

    assert_eq!(store.erase_person(&person, "test").await.unwrap(), Erasure::InDelivery(1));
    for lead in store.list_leads(None, None, 10).await.unwrap() {
        assert!(lead.erased_at.is_none());
        assert_eq!(lead.fields.phone.e164(), "+79123456789");
    }
    // Once the delivery settles, the same request erases both.
    store.mark_dead(&claimed[0].lease, "gave up", &[]).await.unwrap();
    let erased = store.erase_person(&person, "test").await.unwrap();
    assert!(matches!(erased, Erasure::Erased { leads: 2, .. }), "{erased:?}");
    assert!(store.claim_due(10, Duration::from_secs(60)).await.unwrap().is_empty(), "an erased lead is never claimed");
}

/// An erasure racing the worker's claim for the same person fails neither: either the claim
/// took a lead first and the erasure is refused as in delivery, or the erasure went first and
/// nothing of the person is claimed. (With the two taking the client's queue row and its leads
/// in opposite orders, PostgreSQL aborted one of them as a deadlock.)
#[tokio::test]
async fn an_erasure_racing_a_claim_of_the_same_person_fails_neither() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig { url: store_url(dir.path()), durability: Durability::ProcessCrash, max_connections: 4 };
    let store = Store::open(&config).await.unwrap();
    for round in 0..40 {
        let phone = format!("+7 912 300-{round:02}-00");
        store.insert_leads(&[new_lead(&phone), new_lead(&phone)]).await.unwrap();
        let person = Person { e164: Some(format!("+7912300{round:02}00")), email: None };
        let (claimed, erased) =
            tokio::join!(store.claim_due(10, Duration::from_secs(60)), store.erase_person(&person, "test"));
        let claimed = claimed.unwrap_or_else(|error| panic!("round {round}: the claim failed: {error}"));
        let erased = erased.unwrap_or_else(|error| panic!("round {round}: the erasure failed: {error}"));
        // Earlier rounds' second leads are claimed too, once their client is free.
        let of_person = claimed.iter().filter(|claim| Some(claim.lead.fields.phone.e164()) == person.e164.as_deref());
        match erased {
            Erasure::InDelivery(1) => assert_eq!(of_person.count(), 1, "round {round}"),
            Erasure::Erased { leads: 2, .. } => {
                assert_eq!(of_person.count(), 0, "round {round}: an erased lead was claimed")
            }
            other => panic!("round {round}: {other:?}"),
        }
        for claim in claimed {
            store.mark_dead(&claim.lease, "test", &[]).await.unwrap();
        }
    }
}

#[tokio::test]
async fn erasing_a_number_removes_the_events_of_its_calls_in_the_pbx_spelling_and_closes_open_ones() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig { url: store_url(dir.path()), durability: Durability::ProcessCrash, max_connections: 4 };
    let store = Store::open(&config).await.unwrap();
    let source = SourceId("pbx".to_owned());
    let ringing = |call_id: &str, number: &str| LegEvent {
        call_id: call_id.to_owned(),
        leg_id: None,
        at: chrono::Utc::now(),
        seq: None,
        direction: Some(Direction::Incoming),
        external_number: Some(number.to_owned()),
        our_number: Some("74950000000".to_owned()),
        extension: Some("101".to_owned()),
        internal: false,
        location: None,
        kind: LegEventKind::Ringing,
        recording: None,
    };
    // Telphin sends the number without a plus, and not as intake would store it.
    let events = [ringing("theirs", "79123456789"), ringing("someone-else", "79031112233")];
    store.record_call_events(&source, &events).await.unwrap();
    let person = Person { e164: Some("+79123456789".to_owned()), email: None };

    assert_eq!(store.erase_person(&person, "test").await.unwrap(), Erasure::Erased { leads: 0, files: Vec::new() });

    assert!(store.call_events(&source, "theirs").await.unwrap().is_empty(), "the person's call events remain");
    assert_eq!(store.call_events(&source, "someone-else").await.unwrap().len(), 1);
    let open: Vec<String> = store.open_calls(10).await.unwrap().into_iter().map(|call| call.call_id).collect();
    assert_eq!(open, ["someone-else"], "the erased call is closed, the other one is still open");
    let raw = RawDb::connect(&config.url).await;
    assert_eq!(traces(&raw).await, Vec::<(String, String)>::new());
}
