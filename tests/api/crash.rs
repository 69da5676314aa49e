//! A gateway process killed between two CRM calls resumes from its journal without duplicates.

use std::time::Duration;

use crate::helpers::{
    SOURCE_KEY, TestProcess, accept_at, config_file, emulator_holding, lead, on_postgres, poll_until, store_url,
    wait_for_status,
};

#[tokio::test]
async fn a_worker_killed_between_contact_and_deal_resumes_without_a_second_contact() {
    // The deal's creation hangs, so the process dies after "contact created", before "deal created".
    let crm = emulator_holding("/api/v4/leads", "POST", Duration::from_secs(30)).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(&crm.base_url(), "");
    let http = reqwest::Client::new();

    let first = TestProcess::serve(dir.path(), &config).await;
    let id = accept_at(&http, &format!("http://{}", first.address), SOURCE_KEY, &lead("Сергей", "+79995000001")).await;
    assert!(poll_until(Duration::from_secs(10), || async { crm.emulator.contacts_count() == 1 }).await);
    first.kill();

    crm.emulator.set_latency(None);
    let second = TestProcess::serve(dir.path(), &config).await;
    let lead_state = wait_for_status(&http, &format!("http://{}", second.address), SOURCE_KEY, id, &["approved"]).await;

    assert_eq!(crm.emulator.contacts_count(), 1, "the resumed lead reused the journaled contact");
    assert_eq!(crm.emulator.leads_count(), 1);
    assert_eq!(crm.emulator.notes().len(), 1);
    let deal = &crm.emulator.leads()[0];
    assert_eq!(lead_state["outcome"]["deal_id"], deal.id);
    assert_eq!(deal.contact_ids, [crm.emulator.contacts()[0].id]);
    let claims = lead_state["history"].as_array().unwrap().iter().filter(|event| event["kind"] == "claimed").count();
    assert_eq!(claims, 2, "claimed once by each process");
    let contact_posts = crm
        .emulator
        .requests()
        .iter()
        .filter(|call| call.method == "POST" && call.path.starts_with("/api/v4/contacts"))
        .count();
    assert_eq!(contact_posts, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_the_running_crm_step_finish_and_exits_promptly() {
    let crm = emulator_holding("/api/v4/contacts", "POST", Duration::from_millis(1500)).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(&crm.base_url(), "");
    let http = reqwest::Client::new();
    let first = TestProcess::serve(dir.path(), &config).await;
    let base = format!("http://{}", first.address);
    let id = accept_at(&http, &base, SOURCE_KEY, &lead("Роман", "+79995000002")).await;
    wait_for_status(&http, &base, SOURCE_KEY, id, &["processing"]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let started = std::time::Instant::now();
    let exit = tokio::task::spawn_blocking(move || first.terminate(Duration::from_secs(15))).await.unwrap();
    let exit = exit.expect("leadgate exits within its shutdown grace");
    assert!(exit.success(), "{exit:?}");
    assert!(started.elapsed() < Duration::from_secs(12));
    assert_eq!(
        crm.emulator.contacts_count(),
        1,
        "the contact being created when SIGTERM came was finished, not cut off"
    );

    crm.emulator.set_latency(None);
    let second = TestProcess::serve(dir.path(), &config).await;
    let done = wait_for_status(&http, &format!("http://{}", second.address), SOURCE_KEY, id, &["approved"]).await;
    assert_eq!(done["outcome"]["decision"], "new_client");
    assert_eq!(crm.emulator.contacts_count(), 1);
    assert_eq!(crm.emulator.leads_count(), 1);
}

/// A journal record this build cannot read (here: one written by a later version) stops the lead
/// as `dead`, saying why, instead of restarting it: a restart would find the contact the earlier
/// attempt made and wrongly judge the lead a known client.
#[tokio::test]
async fn a_journal_record_it_cannot_read_stops_the_lead_instead_of_restarting_it() {
    let crm = emulator_holding("/api/v4/leads", "POST", Duration::from_secs(30)).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(&crm.base_url(), "");
    let http = reqwest::Client::new();
    let first = TestProcess::serve(dir.path(), &config).await;
    let id = accept_at(&http, &format!("http://{}", first.address), SOURCE_KEY, &lead("Ольга", "+79995000003")).await;
    assert!(poll_until(Duration::from_secs(10), || async { crm.emulator.contacts_count() == 1 }).await);
    first.kill();

    let later_version = r#"{"version": 3, "progress": {"contact": {"kind": "contact", "id": "1"}}}"#;
    rewrite_progress(&store_url(dir.path()), id, later_version).await;
    crm.emulator.set_latency(None);
    let second = TestProcess::serve(dir.path(), &config).await;
    let dead = wait_for_status(&http, &format!("http://{}", second.address), SOURCE_KEY, id, &["dead"]).await;

    let error = dead["last_error"].as_str().unwrap();
    assert!(error.contains("cannot be read") && error.contains("version 3"), "{error}");
    assert_eq!(crm.emulator.contacts_count(), 1, "no second contact");
    assert_eq!(crm.emulator.leads_count(), 0, "no deal on a guess");
    let contact_lookups_after_restart = crm
        .emulator
        .requests()
        .iter()
        .filter(|call| call.method == "GET" && call.path.starts_with("/api/v4/contacts"))
        .count();
    assert_eq!(contact_lookups_after_restart, 1, "the client was not looked up again");
}

async fn rewrite_progress(store_url: &str, id: i64, progress: &str) {
    use sqlx::Connection;
    let statement = "update leads set progress = $1 where id = $2";
    if store_url.starts_with("postgres") {
        let mut connection = sqlx::PgConnection::connect(store_url).await.unwrap();
        sqlx::query(statement).bind(progress).bind(id).execute(&mut connection).await.unwrap();
    } else {
        let mut connection = sqlx::SqliteConnection::connect(store_url).await.unwrap();
        sqlx::query(statement).bind(progress).bind(id).execute(&mut connection).await.unwrap();
    }
}

/// A restarted single SQLite node takes over at once what it was delivering when it was killed,
/// instead of waiting out the lease it held: nobody else can be delivering it.
#[tokio::test]
async fn a_sqlite_node_killed_mid_delivery_delivers_the_lead_at_once_after_a_restart_not_after_its_lease() {
    if on_postgres() {
        return; // several nodes may share PostgreSQL: there a lease is waited out
    }
    let crm = emulator_holding("/api/v4/leads", "POST", Duration::from_secs(30)).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(&crm.base_url(), "").replace("lease = \"1s\"", "lease = \"10m\"");
    let http = reqwest::Client::new();
    let first = TestProcess::serve(dir.path(), &config).await;
    let id = accept_at(&http, &format!("http://{}", first.address), SOURCE_KEY, &lead("Денис", "+79995000004")).await;
    assert!(poll_until(Duration::from_secs(10), || async { crm.emulator.contacts_count() == 1 }).await);
    first.kill();

    crm.emulator.set_latency(None);
    let restarted = std::time::Instant::now();
    let second = TestProcess::serve(dir.path(), &config).await;
    let base = format!("http://{}", second.address);
    let done = wait_for_status(&http, &base, SOURCE_KEY, id, &["approved"]).await;
    assert!(restarted.elapsed() < Duration::from_secs(30), "took {:?} with a 10-minute lease", restarted.elapsed());
    assert_eq!(crm.emulator.contacts_count(), 1, "the journaled contact was reused");
    assert_eq!(crm.emulator.leads_count(), 1);
    assert_eq!(done["outcome"]["deal_id"], crm.emulator.leads()[0].id);
}

#[tokio::test]
async fn a_second_gateway_on_the_same_sqlite_file_refuses_to_start_naming_the_file() {
    if on_postgres() {
        return;
    }
    let crm = emulator_holding("/api/v4/leads", "POST", Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(&crm.base_url(), "");
    let _first = TestProcess::serve(dir.path(), &config).await;

    let mut second = std::process::Command::new(TestProcess::BINARY)
        .args(["serve", "--config", "leadgate.toml", "--listen", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env("LEADGATE_STORE__URL", store_url(dir.path()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let exited = poll_until(Duration::from_secs(20), || {
        let exited = second.try_wait().unwrap().is_some();
        async move { exited }
    })
    .await;
    if !exited {
        second.kill().unwrap();
    }
    let output = second.wait_with_output().unwrap();
    assert!(exited, "the second gateway kept running");
    assert_eq!(output.status.code(), Some(2));
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("another gateway") && said.contains("leadgate.db.lock"), "{said}");
}
