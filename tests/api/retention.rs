//! Retention: settled leads, history details and files older than configured are removed, in
//! batches that leave intake answering; leads on their way are never touched.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use amocrm_emulator::{Fault, FaultLimit};
use chrono::Utc;
use leadgate::config::Retention;
use leadgate::domain::LeadId;
use leadgate::lifecycle::purge;
use leadgate::store::FileStore;
use reqwest::multipart::{Form, Part};
use serde_json::json;

use crate::helpers::{Setup, TestApp, feedback_form, lead, poll_until, spawn_app, spawn_app_with};
use crate::raw_db::{RawDb, days};

const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);

/// Every stored file under the files folder (not uploads in progress).
pub fn stored_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return found };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if entry.file_name() != "incoming" {
                found.extend(stored_files(&path));
            }
        } else {
            found.push(path);
        }
    }
    found
}

/// Posts the feedback form with one file, as a visitor would; returns the lead's id.
pub async fn post_form_with_file(app: &TestApp, phone: &str, email: &str, content: &[u8]) -> i64 {
    post_form_at(&app.http, &app.url(""), phone, email, content).await
}

/// The same, to the gateway at `base`.
pub async fn post_form_at(http: &reqwest::Client, base: &str, phone: &str, email: &str, content: &[u8]) -> i64 {
    let form = Form::new()
        .text("name", "Посетитель сайта")
        .text("phone", phone.to_owned())
        .text("email", email.to_owned())
        .text("message", "Смета во вложении")
        .part("files", Part::bytes(content.to_vec()).file_name("смета.pdf").mime_str("application/pdf").unwrap());
    let response = http.post(format!("{base}/forms/feedback")).header("accept", "application/json").multipart(form);
    let body: serde_json::Value = response.send().await.unwrap().json().await.unwrap();
    body["id"].as_i64().unwrap_or_else(|| panic!("the form was not accepted: {body}"))
}

/// Waits until the store has the lead in one of `statuses`.
pub async fn wait_in_store(app: &TestApp, id: i64, statuses: &[&str]) {
    let reached = poll_until(Duration::from_secs(20), || async {
        let lead = app.store.find_lead(LeadId(id)).await.unwrap();
        lead.is_some_and(|lead| statuses.contains(&lead.status.as_str()))
    })
    .await;
    assert!(reached, "lead {id} did not become {statuses:?}");
}

/// A lead the CRM keeps refusing (503): it waits in `pending` for its next attempt.
pub async fn pending_after_a_failed_attempt(app: &TestApp, body: serde_json::Value) -> i64 {
    app.crm.emulator.inject_fault(Fault::new(503, FaultLimit::UntilCleared));
    let id = app.accept(body).await;
    let retried = poll_until(Duration::from_secs(20), || async {
        let lead = app.store.find_lead(LeadId(id)).await.unwrap().unwrap();
        lead.attempt >= 1 && lead.status.as_str() == "pending"
    })
    .await;
    assert!(retried, "lead {id} was not retried");
    id
}

async fn backdate(raw: &RawDb, ids: &[i64], by_days: i64) {
    let list = ids.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
    let by = days(by_days);
    raw.execute(&format!("update leads set created_at = created_at - {by} where id in ({list})")).await;
    raw.execute(&format!("update lead_history set at = at - {by} where lead_id in ({list})")).await;
}

#[tokio::test]
async fn retention_removes_old_settled_leads_and_their_files_and_keeps_pending_and_recent_ones() {
    let app = spawn_app_with(Setup { form: Some(feedback_form()), ..Setup::default() }).await;
    let old_delivered = app.accept(lead("Старый клиент", "+7 900 000-00-01")).await;
    app.wait_for(old_delivered, &["approved"]).await;
    let old_with_file = post_form_with_file(&app, "+7 900 000-00-02", "old@example.ru", b"old estimate").await;
    wait_in_store(&app, old_with_file, &["approved"]).await;
    let recent = app.accept(lead("Новый клиент", "+7 900 000-00-03")).await;
    app.wait_for(recent, &["approved"]).await;
    let old_pending = pending_after_a_failed_attempt(&app, lead("Ждёт CRM", "+7 900 000-00-04")).await;
    let raw = RawDb::connect(&app.store_url).await;
    backdate(&raw, &[old_delivered, old_with_file, old_pending], 400).await;
    backdate(&raw, &[recent], 100).await;
    assert_eq!(stored_files(&app.files_dir).len(), 1);

    let files = FileStore::for_upkeep(&app.files_dir);
    let retention = Retention { leads: Some(YEAR), history: Some(YEAR / 4), files: None };
    let purged = purge(&app.store, &files, retention, Utc::now()).await.unwrap();

    assert_eq!((purged.leads, purged.files), (2, 1));
    for gone in [old_delivered, old_with_file] {
        assert!(app.store.find_lead(LeadId(gone)).await.unwrap().is_none(), "lead {gone} is still there");
        let rows = raw.count(&format!("select count(*) from lead_history where lead_id = {gone}")).await;
        assert_eq!(rows, 0, "lead {gone}'s history is still there");
    }
    assert_eq!(app.store.find_lead(LeadId(old_pending)).await.unwrap().unwrap().status.as_str(), "pending");
    assert_eq!(app.store.find_lead(LeadId(recent)).await.unwrap().unwrap().status.as_str(), "approved");
    assert!(stored_files(&app.files_dir).is_empty(), "the old lead's file is still on disk");
    // History older than a quarter: the settled lead's events stay without their details, the
    // pending lead's keep theirs.
    let recent_history = app.store.history(LeadId(recent)).await.unwrap();
    assert!(!recent_history.is_empty() && recent_history.iter().all(|event| event.detail.is_null()));
    let pending_history = app.store.history(LeadId(old_pending)).await.unwrap();
    assert!(pending_history.iter().any(|event| !event.detail.is_null()));
    app.crm.emulator.clear_faults();
    app.stop().await;
}

#[tokio::test]
async fn files_retention_keeps_a_file_another_kept_lead_links() {
    let app = spawn_app_with(Setup { form: Some(feedback_form()), ..Setup::default() }).await;
    let old = post_form_with_file(&app, "+7 900 000-00-05", "a@example.ru", b"shared content").await;
    let newer = post_form_with_file(&app, "+7 900 000-00-06", "b@example.ru", b"shared content").await;
    let only_old = post_form_with_file(&app, "+7 900 000-00-07", "c@example.ru", b"only the old one").await;
    for id in [old, newer, only_old] {
        wait_in_store(&app, id, &["approved"]).await;
    }
    let raw = RawDb::connect(&app.store_url).await;
    backdate(&raw, &[old, only_old], 100).await;

    let files = FileStore::for_upkeep(&app.files_dir);
    let retention = Retention { leads: None, history: None, files: Some(YEAR / 4) };
    let purged = purge(&app.store, &files, retention, Utc::now()).await.unwrap();

    assert_eq!(purged.files, 1, "only the file no kept lead links is removed");
    assert_eq!(stored_files(&app.files_dir).len(), 1);
    assert!(app.store.find_lead(LeadId(old)).await.unwrap().is_some(), "files retention keeps the lead itself");
    app.stop().await;
}

#[tokio::test]
async fn intake_keeps_answering_while_twenty_thousand_old_leads_are_purged() {
    let app = spawn_app().await;
    let raw = RawDb::connect(&app.store_url).await;
    let numbers = if raw.is_postgres() {
        "select i from generate_series(1, 20000) as i"
    } else {
        "with recursive n(i) as (select 1 union all select i + 1 from n where i < 20000) select i from n"
    };
    raw.execute(&format!(
        "insert into leads (source_id, name, phone, phone_raw, payload, status, run_at, created_at, updated_at)
         select 'trendagent', 'Старая заявка', '+7901' || i, '', '{{}}', 'approved', 0, 0, 0 from ({numbers}) as numbers"
    ))
    .await;
    raw.execute("insert into lead_history (lead_id, at, kind, detail) select id, 0, 'received', '{}' from leads").await;

    let (store, files_dir) = (app.store.clone(), app.files_dir.clone());
    let purging = tokio::spawn(async move {
        let retention = Retention { leads: Some(YEAR), history: None, files: None };
        purge(&store, &FileStore::for_upkeep(&files_dir), retention, Utc::now()).await.unwrap()
    });
    let mut accepted = Vec::new();
    let mut answered_during_purge = 0;
    loop {
        let started = Instant::now();
        let response = app.post_lead(&json!({ "name": "Во время чистки", "phone": "+7 902 000-00-00" })).await;
        assert_eq!(response.status(), 200, "intake refused a lead during the purge");
        assert!(started.elapsed() < Duration::from_secs(2), "intake took {:?} during the purge", started.elapsed());
        let body: serde_json::Value = response.json().await.unwrap();
        accepted.push(body["id"].as_i64().unwrap());
        if purging.is_finished() {
            break;
        }
        answered_during_purge += 1;
    }
    let purged = purging.await.unwrap();

    assert_eq!(purged.leads, 20_000);
    assert!(answered_during_purge > 0, "the purge ended before any lead could be posted during it");
    for id in accepted {
        assert!(app.store.find_lead(LeadId(id)).await.unwrap().is_some(), "acknowledged lead {id} is not stored");
    }
    app.stop().await;
}

#[tokio::test]
async fn serve_with_retention_configured_removes_old_settled_leads_on_its_own() {
    let crm = crate::helpers::spawn_emulator(200).await;
    let config = crate::helpers::config_file(&crm.base_url(), "[retention]\nleads = \"365d\"\n");
    let dir = tempfile::tempdir().unwrap();
    let gateway = crate::helpers::TestProcess::serve(dir.path(), &config).await;
    let (http, base) = (reqwest::Client::new(), format!("http://{}", gateway.address));
    let key = crate::helpers::SOURCE_KEY;
    let old = crate::helpers::accept_at(&http, &base, key, &lead("Давний клиент", "+7 900 000-00-08")).await;
    crate::helpers::wait_for_status(&http, &base, key, old, &["approved"]).await;
    gateway.terminate(Duration::from_secs(15)).expect("the gateway stops");
    let raw = RawDb::connect(&crate::helpers::store_url(dir.path())).await;
    backdate(&raw, &[old], 400).await;

    // Retention runs when the gateway starts, and then every hour.
    let gateway = crate::helpers::TestProcess::serve(dir.path(), &config).await;
    let base = format!("http://{}", gateway.address);
    let recent = crate::helpers::accept_at(&http, &base, key, &lead("Свежий клиент", "+7 900 000-00-09")).await;
    let removed = poll_until(Duration::from_secs(20), || async {
        let status = http.get(format!("{base}/api/v1/leads/{old}")).bearer_auth(key).send().await.unwrap().status();
        status == 404
    })
    .await;
    assert!(removed, "the old settled lead is still there");
    crate::helpers::wait_for_status(&http, &base, key, recent, &["approved"]).await;
    gateway.terminate(Duration::from_secs(15)).expect("the gateway stops");
}
