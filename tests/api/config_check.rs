//! `leadgate config check`: every problem by key, exit code non-zero, the CRM account consulted.

use std::process::{Command, Output};

use crate::helpers::{TestProcess, config_file, spawn_emulator};

fn check(dir: &std::path::Path, config: &str, env: &[(&str, &str)]) -> Output {
    std::fs::write(dir.join("leadgate.toml"), config).unwrap();
    // The check keeps renewed tokens in the database, which only `serve` and `migrate` create.
    migrate(dir, env);
    Command::new(TestProcess::BINARY)
        .args(["config", "check"])
        .current_dir(dir)
        .env("LEADGATE_CONFIG", "leadgate.toml")
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

/// `leadgate migrate` in `dir`; a file too broken to load leaves no database, which `check` then
/// never reaches.
pub fn migrate(dir: &std::path::Path, env: &[(&str, &str)]) {
    Command::new(TestProcess::BINARY)
        .arg("migrate")
        .current_dir(dir)
        .env("LEADGATE_CONFIG", "leadgate.toml")
        .envs(env.iter().copied())
        .output()
        .unwrap();
}

#[tokio::test]
async fn every_problem_of_a_broken_file_is_reported_by_key_name() {
    let dir = tempfile::tempdir().unwrap();
    let output = check(
        dir.path(),
        r#"
[worker]
batch = 5
[destinations.main]
kind = "amocrm"
base_url = "example.amocrm.ru"
[sources.trendagent]
kind = "partner"
key = "0123456789abcdef"
destination = "main"
pipeline = "TrendAgent"
"#,
        &[],
    );
    assert_eq!(output.status.code(), Some(2));
    let report = String::from_utf8(output.stderr).unwrap();
    for key in [
        "worker.batch: unknown key",
        "destinations.main.base_url",
        "destinations.main.access_token",
        "sources.trendagent.status",
    ] {
        assert!(report.contains(key), "{key} missing from:\n{report}");
    }
}

// Multi-threaded: the emulator must answer while this thread waits for the child process.
#[tokio::test(flavor = "multi_thread")]
async fn pipelines_and_stages_missing_from_the_account_are_named_and_env_can_fix_them() {
    let crm = spawn_emulator(100).await;
    let dir = tempfile::tempdir().unwrap();
    let url = crm.base_url();
    let good = config_file(&url, "");

    let wrong_pipeline = good.replace("pipeline = \"TrendAgent\"", "pipeline = \"Партнёры\"");
    let report = String::from_utf8(check(dir.path(), &wrong_pipeline, &[]).stderr).unwrap();
    assert!(report.contains("sources.trendagent.pipeline"), "{report}");
    assert!(report.contains("Партнёры"), "{report}");

    let wrong_stage = good.replace("status = \"Объект выбран\"", "status = \"Объект выбран!\"");
    let output = check(dir.path(), &wrong_stage, &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8(output.stderr).unwrap().contains("sources.trendagent.status"));

    let fixed = check(dir.path(), &wrong_stage, &[("LEADGATE_SOURCES__TRENDAGENT__STATUS", "Объект выбран")]);
    assert!(fixed.status.success(), "{}", String::from_utf8_lossy(&fixed.stderr));

    let bad_token = check(dir.path(), &good, &[("LEADGATE_DESTINATIONS__MAIN__ACCESS_TOKEN", "expired")]);
    assert_eq!(bad_token.status.code(), Some(2));
    assert!(String::from_utf8(bad_token.stderr).unwrap().contains("destinations.main.access_token"));
}

// Multi-threaded: the emulator must answer while this thread waits for the child process.
#[tokio::test(flavor = "multi_thread")]
async fn a_session_crm_destination_is_checked_by_logging_in_and_a_wrong_password_is_named() {
    let crm = session_crm_emulator::spawn(session_crm_emulator::SessionCrmConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"
[destinations.own]
kind = "session_crm"
base_url = "{}"
username = "sandbox"
[destinations.own.api]
find_contact = {{ method = "GET", path = "/api/contacts", query = {{ phone = "{{{{ lead.phone }}}}" }}, id = "/items/0/id" }}
create_contact = {{ method = "POST", path = "/api/contacts", body = {{ name = "{{{{ lead.name }}}}" }}, id = "/id" }}
create_ticket = {{ method = "POST", path = "/api/tickets", body = {{ contact_id = "{{{{ contact_id }}}}" }}, id = "/id" }}
[sources.site]
kind = "proxy"
key = "0123456789abcdef"
destination = "own"
service = "Техподдержка"
subject = "Заявка с сайта"
"#,
        crm.base_url()
    );

    let good = check(dir.path(), &config, &[("LEADGATE_DESTINATIONS__OWN__PASSWORD", "sandbox-password")]);
    let wrong = check(dir.path(), &config, &[("LEADGATE_DESTINATIONS__OWN__PASSWORD", "wrong-password")]);

    assert!(good.status.success(), "{}", String::from_utf8_lossy(&good.stderr));
    assert_eq!(wrong.status.code(), Some(2));
    let report = String::from_utf8(wrong.stderr).unwrap();
    assert!(report.contains("destinations.own.password: the CRM refused our credentials: login to"), "{report}");
    assert!(!report.contains("wrong-password"), "{report}");
    assert_eq!((crm.crm.login_count(), crm.crm.failed_login_count()), (1, 1));
}

// Multi-threaded: the emulator must answer while this thread waits for the child process.
#[tokio::test(flavor = "multi_thread")]
async fn a_telephony_source_naming_a_user_the_crm_does_not_have_is_refused_by_key() {
    let crm = crate::helpers::spawn_emulator(100).await;
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"
[destinations.main]
kind = "amocrm"
base_url = "{}"
access_token = "sandbox-long-lived-token"
[sources.pbx]
kind = "telephony"
provider = "telphin"
key = "telphin-url-secret-0123456789"
destination = "main"
pipeline = "{}"
status = "{}"
users = {{ "101" = "Анна Смирнова", "102" = "Нет Такого" }}
missed_calls_user = 6000003
"#,
        crm.base_url(),
        crate::helpers::PIPELINE,
        crate::helpers::STAGE
    );

    let output = check(dir.path(), &config, &[]);

    assert_eq!(output.status.code(), Some(2));
    let report = String::from_utf8(output.stderr).unwrap();
    assert!(report.contains("sources.pbx.users.102:") && report.contains("Нет Такого"), "{report}");
    assert!(!report.contains("users.101") && !report.contains("missed_calls_user"), "{report}");
}

/// What a new user tripped over: a refused token named once for the two sources that use it, an
/// SMTP server nobody listens on, a broken destination whose sources say nothing more, and values
/// of the wrong type in two sections — one from the environment, named by its variable.
// Multi-threaded: the emulator must answer while this thread waits for the child process.
#[tokio::test(flavor = "multi_thread")]
async fn each_problem_is_reported_once_with_its_real_cause() {
    let crm = spawn_emulator(100).await;
    let dir = tempfile::tempdir().unwrap();
    let nobody = crate::helpers::free_port();
    let second_source = format!(
        "[sources.second]\nkind = \"partner\"\nkey = \"another-partner-key-0001\"\ndestination = \"main\"\n\
         pipeline = \"TrendAgent\"\nstatus = \"Объект выбран\"\n\
         [smtp]\nurl = \"smtp://127.0.0.1:{nobody}\"\nfrom = \"leadgate@example.com\"\ntimeout = \"3s\"\n"
    );
    let config = config_file(&crm.base_url(), &second_source);
    let output = check(dir.path(), &config, &[("LEADGATE_DESTINATIONS__MAIN__ACCESS_TOKEN", "refused-token")]);
    assert_eq!(output.status.code(), Some(2));
    let report = String::from_utf8(output.stderr).unwrap();
    assert_eq!(report.matches("destinations.main.access_token").count(), 1, "{report}");
    assert!(report.contains("smtp.url: cannot reach the SMTP server"), "{report}");
    assert!(report.contains("the configuration has 2 problem(s)"), "{report}");

    let broken_destination = config_file("example.amocrm.ru", "");
    let report = String::from_utf8(check(dir.path(), &broken_destination, &[]).stderr).unwrap();
    assert!(report.contains("destinations.main.base_url"), "{report}");
    assert!(
        !report.contains("sources.trendagent.destination"),
        "the source blames a destination that exists: {report}"
    );

    let mistyped = config_file(&crm.base_url(), "").replace("[worker]", "[worker]\nbatch_size = \"fifty\"");
    let output = check(dir.path(), &mistyped, &[("LEADGATE_STORE__MAX_CONNECTIONS", "many")]);
    let report = String::from_utf8(output.stderr).unwrap();
    assert!(report.contains("worker.batch_size"), "{report}");
    assert!(report.contains("store.max_connections") && report.contains("LEADGATE_STORE__MAX_CONNECTIONS"), "{report}");
}

/// A `deal_fields` id the account does not have would refuse every deal at delivery, after its
/// contact was made: the check names it, and the ids the account has.
// Multi-threaded: the emulator must answer while this thread waits for the child process.
#[tokio::test(flavor = "multi_thread")]
async fn deal_field_ids_missing_from_the_account_are_named() {
    let crm = spawn_emulator(100).await;
    let dir = tempfile::tempdir().unwrap();
    let listing = amocrm_emulator::LISTING_FIELD_ID;
    let known = config_file(&crm.base_url(), &format!("deal_fields = {{ clientListingId = {listing} }}\n"));
    let output = check(dir.path(), &known, &[]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));

    let unknown =
        config_file(&crm.base_url(), &format!("deal_fields = {{ clientListingId = {listing}, originLeadId = 999 }}\n"));
    let output = check(dir.path(), &unknown, &[]);
    assert_eq!(output.status.code(), Some(2));
    let report = String::from_utf8(output.stderr).unwrap();
    assert!(report.contains("sources.trendagent.deal_fields") && report.contains("originLeadId = 999"), "{report}");
    assert!(!report.contains(&format!("clientListingId = {listing}")), "a known field is not blamed: {report}");
}
