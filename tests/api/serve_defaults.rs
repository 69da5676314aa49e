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
    for line in lines.by_ref().take(4) {
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
