//! Several gateway processes on one PostgreSQL: intake and worker nodes apart, one killed mid-run,
//! the CRM's budget shared; idempotency across nodes; `store copy`; a newer database refused.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use leadgate::config::{Durability, StoreConfig};
use leadgate::domain::{DealSpec, LeadStatus, NewLead, Phone, PhoneRegion, Routing, SourceId};
use leadgate::store::Store;
use rand::SeedableRng;
use serde_json::Value;
use tokio::sync::watch;

use crate::audit::CrmAudit;
use crate::crash_storm::busiest_second;
use crate::gateway::gateway_config;
use crate::helpers::{
    SOURCE_KEY, TestProcess, add_user_by_command, csrf_of, get_lead, lead, poll_until, postgres_database,
    spawn_emulator,
};
use crate::lead_plan::LeadPlan;
use crate::load::post_all;

const LEADS: usize = 2000;
/// The CRM budget every node shares; three workers each keeping only their own would triple it.
const BUDGET: u32 = 150;
const CONSOLE_PASSWORD: &str = "a long passphrase for anna";

async fn open_store(url: &str) -> Store {
    let config = StoreConfig { url: url.to_owned(), durability: Durability::ProcessCrash, max_connections: 2 };
    Store::open(&config).await.unwrap()
}

fn fresh_database(dir: &Path) -> String {
    postgres_database(&dir.join("shared-postgres"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_workers_and_two_intake_nodes_deliver_every_lead_once_within_one_budget_while_a_worker_dies() {
    let _alone = crate::helpers::MACHINE_WIDE.lock().await;
    // The emulator refuses nothing, so every arrival is counted when it came.
    let crm = spawn_emulator(10_000).await;
    let dir = tempfile::tempdir().unwrap();
    let database = fresh_database(dir.path());
    // Leases a few seconds long, as in production they are a minute: a worker slowed down by the
    // load on this machine must not look dead to the others.
    let config = gateway_config(&crm.base_url(), BUDGET).replace(r#"lease = "1s""#, r#"lease = "5s""#);
    let mut nodes = Vec::new();
    for (n, role) in ["intake", "intake", "worker", "worker", "worker"].into_iter().enumerate() {
        let node_dir = dir.path().join(format!("node-{n}"));
        std::fs::create_dir_all(&node_dir).unwrap();
        nodes.push(TestProcess::serve_node(&node_dir, &config, &database, role).await);
    }
    let plan = LeadPlan::new(LEADS, "multi", 3_000_000, &mut rand::rngs::StdRng::seed_from_u64(6));
    let halves: Vec<Arc<LeadPlan>> =
        plan.leads.chunks(LEADS / 2).map(|leads| Arc::new(LeadPlan { leads: leads.to_vec() })).collect();
    let mut posting = Vec::new();
    for (half, intake) in halves.iter().zip(&nodes[..2]) {
        let (_announce, address) = watch::channel(intake.address);
        let half = Arc::clone(half);
        // The receiver needs its sender alive for the whole run.
        posting.push(tokio::spawn(async move {
            let _announce = _announce;
            post_all(half, "http://127.0.0.1:9/unused".to_owned(), address, Duration::from_secs(5)).await
        }));
    }

    let store = open_store(&database).await;
    let settled = || async {
        let counts: BTreeMap<String, i64> = store.count_by_status(None).await.unwrap().into_iter().collect();
        counts.get("approved").copied().unwrap_or(0) + counts.get("rejected").copied().unwrap_or(0)
    };
    assert!(poll_until(Duration::from_secs(60), || async { settled().await >= 300 }).await, "delivery never started");
    // SIGKILL in the middle of the run: whatever this worker held must be finished by the others.
    nodes.remove(2).kill();
    let mut acknowledged = 0;
    for task in posting {
        acknowledged += task.await.unwrap().ids.len();
    }
    assert_eq!(acknowledged, LEADS);
    let all_settled = poll_until(Duration::from_secs(240), || async { settled().await == LEADS as i64 }).await;
    let counts = store.count_by_status(None).await.unwrap();
    assert!(all_settled, "not every lead was settled: {counts:?}");

    let audit = CrmAudit::of(&crm.emulator);
    audit.assert_one_client_per_phone(&plan.distinct_phones());
    assert_eq!((audit.duplicate_contacts(), audit.duplicate_deals(), audit.duplicate_notes()), (0, 0, 0));
    let busiest = busiest_second(&crm.emulator.requests());
    assert!(
        busiest <= BUDGET as usize,
        "the CRM saw {busiest} requests within one second; the shared budget is {BUDGET}"
    );
}

#[tokio::test]
async fn two_nodes_given_the_same_request_at_the_same_moment_make_one_lead() {
    let crm = spawn_emulator(1000).await;
    let dir = tempfile::tempdir().unwrap();
    let database = fresh_database(dir.path());
    let config = gateway_config(&crm.base_url(), 50);
    let mut nodes = Vec::new();
    for n in 0..2 {
        let node_dir = dir.path().join(format!("node-{n}"));
        std::fs::create_dir_all(&node_dir).unwrap();
        nodes.push(TestProcess::serve_node(&node_dir, &config, &database, "intake").await);
    }
    let http = reqwest::Client::new();
    for attempt in 0..20 {
        let key = format!("same-moment-{attempt}");
        let body = lead("Двойник", &format!("+7999555{attempt:04}"));
        let send = |node: &TestProcess| {
            http.post(format!("http://{}/api/v1/leads", node.address))
                .bearer_auth(SOURCE_KEY)
                .header("Idempotency-Key", &key)
                .json(&body)
                .send()
        };
        let (first, second) = tokio::join!(send(&nodes[0]), send(&nodes[1]));
        let first: Value = first.unwrap().json().await.unwrap();
        let second: Value = second.unwrap().json().await.unwrap();
        assert_eq!(first["id"], second["id"], "{key}: two leads for one request");
    }
    let stored: i64 = open_store(&database).await.count_by_status(None).await.unwrap().iter().map(|(_, n)| n).sum();
    assert_eq!(stored, 20);
}

#[tokio::test]
async fn store_copy_moves_every_lead_with_its_history_to_postgres() {
    let crm = spawn_emulator(1000).await;
    let dir = tempfile::tempdir().unwrap();
    let config = gateway_config(&crm.base_url(), 100);
    let sqlite_url = format!("sqlite://{}", dir.path().join("leadgate.db").display());
    let gateway = TestProcess::serve_node(dir.path(), &config, &sqlite_url, "all").await;
    let http = reqwest::Client::new();
    let base = format!("http://{}", gateway.address);
    let mut before = Vec::new();
    for n in 0..5 {
        let response = http
            .post(format!("{base}/api/v1/leads"))
            .bearer_auth(SOURCE_KEY)
            .json(&lead("Переезд", &format!("+7999666{n:04}")))
            .send()
            .await
            .unwrap();
        before.push(response.json::<Value>().await.unwrap()["id"].as_i64().unwrap());
    }
    let sqlite = open_store(&sqlite_url).await;
    let all_approved = poll_until(Duration::from_secs(20), || async {
        sqlite.list_leads(Some(LeadStatus::Approved), None, 100).await.unwrap().len() == before.len()
    })
    .await;
    assert!(all_approved);
    let histories: Vec<Value> =
        futures::future::join_all(before.iter().map(|id| get_lead(&http, &base, SOURCE_KEY, *id))).await;
    gateway.terminate(Duration::from_secs(10)).unwrap();
    add_user_by_command(&sqlite_url, "anna", "admin", CONSOLE_PASSWORD);

    let database = fresh_database(dir.path());
    let output = Command::new(TestProcess::BINARY)
        .args(["store", "copy", "--from", &sqlite_url, "--to", &database])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let again = Command::new(TestProcess::BINARY)
        .args(["store", "copy", "--from", &sqlite_url, "--to", &database])
        .output()
        .unwrap();
    assert!(!again.status.success(), "a second copy into a non-empty store must be refused");
    assert!(String::from_utf8_lossy(&again.stderr).contains("empty"), "{}", String::from_utf8_lossy(&again.stderr));

    let node_dir = dir.path().join("on-postgres");
    std::fs::create_dir_all(&node_dir).unwrap();
    let moved = TestProcess::serve_node(&node_dir, &config, &database, "all").await;
    let moved_base = format!("http://{}", moved.address);
    for (id, history) in before.iter().zip(&histories) {
        let after = get_lead(&http, &moved_base, SOURCE_KEY, *id).await;
        assert_eq!(after["status"], "approved");
        assert_eq!(after["history"], history["history"], "lead {id}'s history changed in the move");
    }
    let response = http
        .post(format!("{moved_base}/api/v1/leads"))
        .bearer_auth(SOURCE_KEY)
        .json(&lead("После переезда", "+79996669999"))
        .send()
        .await
        .unwrap();
    let new_id = response.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    assert!(new_id > *before.iter().max().unwrap(), "a new lead must not reuse a copied id");

    // The console's user came along: she logs in on PostgreSQL with the password she had.
    let browser =
        reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let form = browser.get(format!("{moved_base}/admin/login")).send().await.unwrap().text().await.unwrap();
    let csrf = csrf_of(&form);
    let logged_in = browser
        .post(format!("{moved_base}/admin/login"))
        .form(&[("csrf", csrf.as_str()), ("username", "anna"), ("password", CONSOLE_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(logged_in.status(), reqwest::StatusCode::SEE_OTHER, "anna logs in after the move");
    assert_eq!(logged_in.headers()[reqwest::header::LOCATION], "/admin/leads");
}

#[tokio::test]
async fn store_copy_cleans_control_characters_an_older_sqlite_installation_stored() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite_url = format!("sqlite://{}", dir.path().join("leadgate.db").display());
    // Intake refuses such text now; a lead stored before it did is written straight to the store.
    let old = NewLead {
        source: SourceId("trendagent".into()),
        external_id: None,
        name: "Иван\u{0}".to_owned(),
        phone: Phone::parse("+79996660001", PhoneRegion::RUSSIA).unwrap(),
        email: None,
        comment: Some("до\u{0}говор".to_owned()),
        callback_url: None,
        payload: serde_json::json!({"name": "Иван\u{0}"}),
        routing: Routing::default(),
        origin_time: None,
        deal: DealSpec::default(),
        skip_sending: false,
        duplicate_check: None,
        call: None,
    };
    let inserted = open_store(&sqlite_url).await.insert_leads(&[old]).await.unwrap();
    let database = fresh_database(dir.path());
    let output = Command::new(TestProcess::BINARY)
        .args(["store", "copy", "--from", &sqlite_url, "--to", &database])
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(printed.contains("2 text value(s) held control characters"), "{printed}");
    let copied = open_store(&database).await.find_lead(inserted[0].id()).await.unwrap().unwrap();
    assert_eq!((copied.fields.name.as_str(), copied.fields.comment.as_deref()), ("Иван", Some("договор")));
}

#[test]
fn a_database_migrated_by_a_newer_version_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let database = fresh_database(dir.path());
    let migrate = |args: &[&str]| {
        Command::new(TestProcess::BINARY).args(args).env("LEADGATE_STORE__URL", &database).output().unwrap()
    };
    assert!(migrate(&["migrate"]).status.success());
    let future = "insert into _sqlx_migrations (version, description, success, checksum, execution_time) \
                  values (9999, 'from the future', true, '\\x00', 0)";
    let inserted = Command::new("psql").args([&database, "-qc", future]).output().unwrap();
    assert!(inserted.status.success(), "{}", String::from_utf8_lossy(&inserted.stderr));
    for command in [&["migrate"][..], &["serve"][..]] {
        let output = migrate(command);
        assert!(!output.status.success(), "{command:?} ran on a newer database");
        let message = String::from_utf8_lossy(&output.stderr);
        assert!(message.contains("newer leadgate") && message.contains("9999"), "{command:?}: {message}");
    }
}

#[tokio::test]
async fn a_lead_taken_by_an_intake_node_wakes_an_idle_worker_on_another_node_at_once() {
    let crm = spawn_emulator(1000).await;
    let dir = tempfile::tempdir().unwrap();
    let database = fresh_database(dir.path());
    // Polling alone would find the lead only a minute later.
    let config = gateway_config(&crm.base_url(), 50).replace(r#"interval = "100ms""#, r#"interval = "60s""#);
    let mut nodes = Vec::new();
    for (n, role) in ["intake", "worker"].into_iter().enumerate() {
        let node_dir = dir.path().join(format!("node-{n}"));
        std::fs::create_dir_all(&node_dir).unwrap();
        nodes.push(TestProcess::serve_node(&node_dir, &config, &database, role).await);
    }
    // The worker's first poll, at its start, has found nothing; now it only listens.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let http = reqwest::Client::new();
    let base = format!("http://{}", nodes[0].address);
    let response =
        http.post(format!("{base}/api/v1/leads")).bearer_auth(SOURCE_KEY).json(&lead("Срочно", "+79997770001")).send();
    let id = response.await.unwrap().json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let posted = std::time::Instant::now();
    let delivered = poll_until(Duration::from_secs(20), || async {
        get_lead(&http, &base, SOURCE_KEY, id).await["status"] == "approved"
    })
    .await;
    assert!(delivered && posted.elapsed() < Duration::from_secs(10), "delivered after {:?}", posted.elapsed());
}
