//! `leadgate serve` with no configuration: sandbox CRM, a demo source, and a ready-to-paste command.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::json;

use crate::helpers::{TestProcess, accept_at, free_port, wait_for_status};

struct Started {
    child: Child,
    key: String,
    output: String,
}

/// Runs the binary with nothing but a free port, and reads its banner up to the demo key.
fn serve_without_configuration(dir: &std::path::Path, port: u16) -> Started {
    let mut child = Command::new(TestProcess::BINARY)
        .arg("serve")
        .current_dir(dir)
        .env("LEADGATE_SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut output = String::new();
    let key = loop {
        let line = lines.next().expect("the banner names the demo key").unwrap();
        output.push_str(&line);
        output.push('\n');
        if line.starts_with("Demo source") {
            break line.rsplit(' ').next().unwrap().to_owned();
        }
    };
    // The lead's two commands, then the telephony source's paragraph.
    for line in lines.by_ref().take(10) {
        output.push_str(&line.unwrap());
        output.push('\n');
    }
    Started { child, key, output }
}

#[tokio::test]
async fn serve_without_configuration_runs_the_whole_flow_against_the_sandbox_crm() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut started = serve_without_configuration(dir.path(), port);
    assert!(started.output.contains("SANDBOX CRM"), "{}", started.output);
    assert!(started.output.contains("NOT a real CRM"));
    assert!(
        started.output.contains(&format!(
            "curl -s http://127.0.0.1:{port}/api/v1/leads -H 'Authorization: Bearer {}'",
            started.key
        ))
    );
    assert!(dir.path().join("leadgate.db").exists());

    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let demo = json!({ "name": "Иван Петров", "phone": "+7 999 123-45-67", "comment": "demo" });
    let id = accept_at(&http, &base, &started.key, &demo).await;
    let lead = wait_for_status(&http, &base, &started.key, id, &["approved"]).await;
    assert!(lead["outcome"]["contact_id"].as_i64().is_some());
    assert!(lead["outcome"]["deal_id"].as_i64().is_some());
    started.child.kill().unwrap();
    started.child.wait().unwrap();

    let mut again = serve_without_configuration(dir.path(), free_port());
    assert_eq!(again.key, started.key, "the demo key is generated once and kept");
    again.child.kill().unwrap();
    again.child.wait().unwrap();
}

#[tokio::test]
async fn the_banner_s_telephony_command_plays_a_call_into_the_sandbox_crm_with_a_recording_that_plays() {
    let dir = tempfile::tempdir().unwrap();
    let mut started = serve_without_configuration(dir.path(), free_port());
    let output = started.output.clone();
    assert!(output.contains("Demo telephony source \"demo-pbx\""), "{output}");
    assert!(output.contains("NOT a real PBX"), "{output}");
    let crm = output.split_whitespace().find(|word| word.ends_with("/_emulator/state")).unwrap().to_owned();
    let play = output.split_whitespace().find(|word| word.ends_with("/_control/play")).unwrap().to_owned();
    let body = output.lines().find_map(|line| line.trim().strip_prefix("-d '")).unwrap().trim_end_matches('\'');
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["scenario"], "incoming-unknown-answered");

    let http = reqwest::Client::new();
    let report: serde_json::Value = http.post(&play).json(&body).send().await.unwrap().json().await.unwrap();
    let deliveries = report["deliveries"].as_array().unwrap();
    assert!(deliveries.iter().all(|delivery| delivery["status"] == 200), "{report}");

    let note_link = || async {
        let state: serde_json::Value = http.get(&crm).send().await.ok()?.json().await.ok()?;
        let notes = state["notes"].as_array()?.clone();
        notes
            .iter()
            .find(|note| note["note_type"] == "call_in")
            .map(|note| (state.clone(), note["params"]["link"].clone()))
    };
    let arrived =
        crate::helpers::poll_until(std::time::Duration::from_secs(30), || async { note_link().await.is_some() }).await;
    assert!(arrived, "the call reached the sandbox CRM");
    let (state, link) = note_link().await.unwrap();
    let contacts: Vec<&str> = state["contacts"].as_array().unwrap().iter().filter_map(|c| c["name"].as_str()).collect();
    assert!(contacts.contains(&"Автоконтакт: Входящий"), "{contacts:?}");
    let deals: Vec<&str> = state["leads"].as_array().unwrap().iter().filter_map(|d| d["name"].as_str()).collect();
    assert!(deals.iter().any(|name| name.starts_with("Входящий +7")), "{deals:?}");
    let recording = http.get(link.as_str().expect("the note links to the recording")).send().await.unwrap();
    assert_eq!(recording.status(), 200);
    assert_eq!(recording.headers()["content-type"], "audio/mpeg");
    started.child.kill().unwrap();
    started.child.wait().unwrap();
}

#[test]
fn serve_listen_overrides_the_configured_address() {
    let dir = tempfile::tempdir().unwrap();
    let (configured, given) = (free_port(), free_port());
    let mut child = Command::new(TestProcess::BINARY)
        .args(["serve", "--listen", &format!("127.0.0.1:{given}")])
        .current_dir(dir.path())
        .env("LEADGATE_SERVER__LISTEN", format!("127.0.0.1:{configured}"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let first = BufReader::new(child.stdout.take().unwrap()).lines().next().unwrap().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(first, format!("leadgate is listening on http://127.0.0.1:{given}"));
}

#[tokio::test]
async fn the_banner_s_commands_read_back_the_lead_they_send_and_the_sandbox_keeps_its_deal_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut started = serve_without_configuration(dir.path(), port);
    let state_file = dir.path().join("leadgate-sandbox-crm.json");
    assert!(started.output.contains(&state_file.display().to_string()), "{}", started.output);
    let command = |prefix: &str| {
        let line = started.output.lines().map(str::trim).find(|line| line.starts_with(prefix));
        line.unwrap_or_else(|| panic!("no «{prefix}» command in:\n{}", started.output)).to_owned()
    };
    let (send, read) = (command("id=$(curl"), command("curl -s http"));
    assert!(read.contains("/api/v1/leads/$id"), "{read}");

    // Pasted into a shell as printed: the second command reads the lead the first one made.
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let demo = json!({ "name": "Пётр", "phone": "+7 999 000-00-01", "comment": "first" });
    let first = accept_at(&http, &base, &started.key, &demo).await;
    let shell = Command::new("sh").arg("-c").arg(format!("{send}\n{read}")).output().unwrap();
    let said = String::from_utf8(shell.stdout).unwrap();
    let (announced, body) = said.split_once('\n').unwrap_or_else(|| panic!("{said}"));
    let id: i64 = announced.trim().strip_prefix("lead ").unwrap_or_else(|| panic!("{said}")).parse().unwrap();
    assert_eq!(id, first + 1, "the banner's lead is the one after the test's");
    let lead: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("{said}"));
    assert_eq!(lead["id"], id, "{said}");

    let done = wait_for_status(&http, &base, &started.key, id, &["approved"]).await;
    let deal_id = done["outcome"]["deal_id"].as_i64().unwrap();
    let saved = crate::helpers::poll_until(std::time::Duration::from_secs(10), || async {
        std::fs::read_to_string(&state_file).is_ok_and(|text| text.contains(&format!("\"{deal_id}\"")))
    })
    .await;
    assert!(saved, "the deal reached {}", state_file.display());
    started.child.kill().unwrap();
    started.child.wait().unwrap();

    let mut again = serve_without_configuration(dir.path(), free_port());
    let crm = again.output.split_whitespace().find(|word| word.ends_with("/_emulator/state")).unwrap().to_owned();
    let state: serde_json::Value = http.get(&crm).send().await.unwrap().json().await.unwrap();
    let deals: Vec<i64> = state["leads"].as_array().unwrap().iter().filter_map(|deal| deal["id"].as_i64()).collect();
    assert!(deals.contains(&deal_id), "deal {deal_id} is gone after the restart: {deals:?}");
    let known: Vec<&str> =
        state["contacts"].as_array().unwrap().iter().filter_map(|contact| contact["name"].as_str()).collect();
    assert_eq!(known.iter().filter(|name| **name == "Известный клиент").count(), 1, "seeded once: {known:?}");
    again.child.kill().unwrap();
    again.child.wait().unwrap();
}
