//! Backup and restore of a SQLite installation with the real binary, taken while the gateway keeps
//! accepting leads; and the commands that must not create a database where there is none.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::helpers::{SOURCE_KEY, TestProcess, accept_at, config_file, get_lead, spawn_emulator};
use crate::retention::post_form_at;

const FORM: &str = r#"
[sources.feedback]
kind = "form"
destination = "main"
pipeline = "Воронка"
status = "Первичный контакт"
fields = { name = "name", phone = "phone", email = "email", comment = "message" }
max_files = 2
per_ip_per_minute = 1000000
"#;

/// `leadgate <args>` in `dir`, on the SQLite database `dir/leadgate.db`.
fn leadgate(dir: &Path, args: &[&str]) -> Output {
    Command::new(TestProcess::BINARY)
        .args(args)
        .current_dir(dir)
        .env("LEADGATE_STORE__URL", format!("sqlite://{}", dir.join("leadgate.db").display()))
        .output()
        .unwrap()
}

fn stored_path(files: &Path, content: &[u8]) -> std::path::PathBuf {
    let sha256: String = Sha256::digest(content).iter().map(|byte| format!("{byte:02x}")).collect();
    files.join(&sha256[..2]).join(&sha256)
}

#[tokio::test]
async fn a_backup_taken_while_leads_arrive_restores_every_lead_acknowledged_before_it_with_its_files() {
    let crm = spawn_emulator(200).await;
    let config = config_file(&crm.base_url(), FORM);
    let (original, restored) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let gateway = TestProcess::serve(original.path(), &config).await;
    let (http, base) = (reqwest::Client::new(), format!("http://{}", gateway.address));
    let mut partner_leads = Vec::new();
    let mut form_leads = Vec::new();
    for index in 0..10 {
        let body = json!({ "name": "До копии", "phone": format!("+7 900 100-00-{index:02}") });
        partner_leads.push(accept_at(&http, &base, SOURCE_KEY, &body).await);
        let content = format!("file of lead {index}").into_bytes();
        let id = post_form_at(&http, &base, &format!("+7 900 200-00-{index:02}"), "v@example.ru", &content).await;
        form_leads.push((id, content));
    }
    // Leads keep arriving while the backup runs.
    let stop = Arc::new(AtomicBool::new(false));
    let posting = tokio::spawn({
        let (http, base, stop) = (http.clone(), base.clone(), Arc::clone(&stop));
        async move {
            let mut posted = 0;
            while !stop.load(Ordering::Relaxed) {
                let body = json!({ "name": "Во время копии", "phone": "+7 900 300-00-00" });
                accept_at(&http, &base, SOURCE_KEY, &body).await;
                posted += 1;
            }
            posted
        }
    });

    let dir = original.path().to_owned();
    let backup = tokio::task::spawn_blocking(move || leadgate(&dir, &["backup", "--to", "backup.tar"])).await.unwrap();
    stop.store(true, Ordering::Relaxed);
    let posted_meanwhile = posting.await.unwrap();
    assert!(backup.status.success(), "{}", String::from_utf8_lossy(&backup.stderr));
    assert!(posted_meanwhile > 0, "no lead arrived while the backup ran");
    gateway.terminate(Duration::from_secs(15)).expect("the gateway stops");

    let archive = original.path().join("backup.tar");
    let restore = leadgate(restored.path(), &["restore", "--from", archive.to_str().unwrap()]);
    assert!(restore.status.success(), "{}", String::from_utf8_lossy(&restore.stderr));
    let again = leadgate(restored.path(), &["restore", "--from", archive.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(2), "an existing database is not replaced without --force");
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));

    let gateway = TestProcess::serve(restored.path(), &config).await;
    let base = format!("http://{}", gateway.address);
    for id in &partner_leads {
        assert_eq!(get_lead(&http, &base, SOURCE_KEY, *id).await["id"], *id, "lead {id} is missing");
    }
    let files = restored.path().join("leadgate-files");
    for (id, content) in &form_leads {
        let path = stored_path(&files, content);
        assert_eq!(std::fs::read(&path).ok().as_deref(), Some(content.as_slice()), "lead {id}'s file is missing");
    }
    let forced = leadgate(restored.path(), &["restore", "--force", "--from", archive.to_str().unwrap()]);
    assert_eq!(forced.status.code(), Some(1), "a running gateway's database is never replaced");
    assert!(String::from_utf8_lossy(&forced.stderr).contains("in use"));
    gateway.terminate(Duration::from_secs(15)).expect("the gateway stops");
}

#[test]
fn commands_other_than_serve_and_migrate_refuse_a_missing_database_and_create_none() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("leadgate.toml"), config_file("http://127.0.0.1:9", "")).unwrap();
    for args in [
        &["leads", "list"][..],
        &["--config", "leadgate.toml", "config", "check"],
        &["users", "list"],
        &["backup", "--to", "copy.tar"],
        &["leads", "erase", "--phone", "+7 912 345-67-89"],
    ] {
        let output = leadgate(dir.path(), args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} succeeded");
        assert!(stderr.contains("leadgate.db") && stderr.contains("leadgate migrate"), "{args:?}: {stderr}");
        assert!(!dir.path().join("leadgate.db").exists(), "{args:?} created a database");
    }
    let migrated = leadgate(dir.path(), &["migrate"]);
    assert!(migrated.status.success());
    assert!(leadgate(dir.path(), &["leads", "list"]).status.success(), "an existing database opens");
    let erased = leadgate(dir.path(), &["leads", "erase", "--phone", "+7 912 345-67-89"]);
    assert_eq!(
        String::from_utf8_lossy(&erased.stdout).trim(),
        "erased 0 lead(s) of this person and 0 file(s); their tombstones stay"
    );
    let not_a_number = leadgate(dir.path(), &["leads", "erase", "--phone", "звоните"]);
    assert_eq!(not_a_number.status.code(), Some(2));
}

#[test]
fn backup_of_a_postgresql_store_points_at_pg_dump() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(TestProcess::BINARY)
        .args(["backup", "--to", "copy.tar"])
        .current_dir(dir.path())
        .env("LEADGATE_STORE__URL", "postgres://leadgate@127.0.0.1:1/leadgate")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("pg_dump"));
    assert!(!dir.path().join("copy.tar").exists());
}
