//! The gateway at the edge of a network, run as the real binary: a source's own rate limit on
//! its intake endpoints (429 with `Retry-After`, nothing stored), forwarding headers believed only
//! from trusted proxies, and several keys of one source during a change of key.

use crate::helpers::{SOURCE_KEY, TestProcess, config_file, lead, spawn_emulator};

const FORM: &str = r#"
[sources.feedback]
kind = "form"
destination = "main"
pipeline = "Воронка"
status = "Первичный контакт"
fields = { name = "name", phone = "phone" }
per_ip_per_minute = 1
"#;

async fn stored_leads(http: &reqwest::Client, base: &str, ids: &[i64]) -> usize {
    let mut found = 0;
    for id in ids {
        let response = http.get(format!("{base}/api/v1/leads/{id}")).bearer_auth(SOURCE_KEY).send().await.unwrap();
        found += usize::from(response.status() == 200);
    }
    found
}

#[tokio::test]
async fn a_source_over_its_limit_gets_429_with_retry_after_and_nothing_is_stored() {
    let crm = spawn_emulator(100).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(&crm.base_url(), "requests_per_minute = 2\n");
    let gateway = TestProcess::serve(dir.path(), &config).await;
    let base = format!("http://{}", gateway.address);
    let http = reqwest::Client::new();

    let mut accepted = Vec::new();
    for phone in ["+7 916 300-00-01", "+7 916 300-00-02"] {
        let response = http.post(format!("{base}/api/v1/leads")).bearer_auth(SOURCE_KEY).json(&lead("Анна", phone));
        let response = response.send().await.unwrap();
        assert_eq!(response.status(), 200);
        accepted.push(response.json::<serde_json::Value>().await.unwrap()["id"].as_i64().unwrap());
    }
    let over =
        http.post(format!("{base}/api/v1/leads")).bearer_auth(SOURCE_KEY).json(&lead("Борис", "+7 916 300-00-03"));
    let over = over.send().await.unwrap();
    assert_eq!(over.status(), 429);
    let retry_after: u64 = over.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=30).contains(&retry_after), "two a minute: the next one in at most 30 s, not {retry_after}");
    let body: serde_json::Value = over.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("trendagent"), "the answer names the source: {body}");
    // The refused lead took no id: the next free one is the third.
    assert_eq!(stored_leads(&http, &base, &[accepted[1] + 1]).await, 0, "the refused lead was stored");
    assert_eq!(stored_leads(&http, &base, &accepted).await, 2);

    // A wrong key is refused as before, not counted against the source.
    let stranger =
        http.post(format!("{base}/api/v1/leads")).bearer_auth("not-a-key").json(&lead("x", "+7 916 300-00-04"));
    assert_eq!(stranger.send().await.unwrap().status(), 401);
    gateway.terminate(std::time::Duration::from_secs(10));
}

async fn submit(http: &reqwest::Client, base: &str, forwarded_for: &str, phone: &str) -> u16 {
    let form = [("name", "Анна"), ("phone", phone)];
    let response = http
        .post(format!("{base}/forms/feedback"))
        .header("x-forwarded-for", forwarded_for)
        .header("accept", "application/json")
        .form(&form)
        .send()
        .await
        .unwrap();
    response.status().as_u16()
}

#[tokio::test]
async fn forwarding_headers_name_the_visitor_only_behind_a_trusted_proxy() {
    let crm = spawn_emulator(100).await;

    // Behind our proxy (the tests connect from 127.0.0.1): two visitors, one submission each.
    let dir = tempfile::tempdir().unwrap();
    let trusted = format!("{FORM}\n[server]\ntrusted_proxies = [\"127.0.0.0/8\", \"10.0.0.0/8\"]\n");
    let gateway = TestProcess::serve(dir.path(), &config_file(&crm.base_url(), &trusted)).await;
    let base = format!("http://{}", gateway.address);
    let http = reqwest::Client::new();
    assert_eq!(submit(&http, &base, "203.0.113.5", "+7 916 400-00-01").await, 200);
    assert_eq!(submit(&http, &base, "1.2.3.4, 198.51.100.7, 10.0.0.3", "+7 916 400-00-02").await, 200);
    assert_eq!(
        submit(&http, &base, "203.0.113.5", "+7 916 400-00-03").await,
        429,
        "the first visitor's second submission in the minute is over its limit"
    );
    gateway.terminate(std::time::Duration::from_secs(10));

    // Without trusted proxies, a forged header changes nothing: it is the same address.
    let dir = tempfile::tempdir().unwrap();
    let gateway = TestProcess::serve(dir.path(), &config_file(&crm.base_url(), FORM)).await;
    let base = format!("http://{}", gateway.address);
    assert_eq!(submit(&http, &base, "203.0.113.5", "+7 916 400-00-04").await, 200);
    assert_eq!(submit(&http, &base, "198.51.100.7", "+7 916 400-00-05").await, 429);
    gateway.terminate(std::time::Duration::from_secs(10));
}

#[tokio::test]
async fn a_listen_address_may_be_a_host_name() {
    let crm = spawn_emulator(100).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("leadgate.toml"), config_file(&crm.base_url(), "")).unwrap();
    let port = crate::helpers::free_port();
    // Only serve and migrate make a database; config check reads it.
    let migrated = tokio::process::Command::new(TestProcess::BINARY)
        .args(["migrate", "--config", "leadgate.toml"])
        .current_dir(dir.path())
        .output()
        .await
        .unwrap();
    assert!(migrated.status.success());
    // The CRM emulator answers on this test's runtime: the command is awaited, not blocked on.
    let checked = tokio::process::Command::new(TestProcess::BINARY)
        .args(["config", "check", "--config", "leadgate.toml"])
        .current_dir(dir.path())
        .env("LEADGATE_SERVER__LISTEN", format!("localhost:{port}"))
        .output()
        .await
        .unwrap();
    let said = String::from_utf8_lossy(&checked.stdout).into_owned() + &String::from_utf8_lossy(&checked.stderr);
    assert!(checked.status.success(), "localhost:{port} is refused: {said}");
    let refused = tokio::process::Command::new(TestProcess::BINARY)
        .args(["config", "check", "--config", "leadgate.toml"])
        .current_dir(dir.path())
        .env("LEADGATE_SERVER__LISTEN", "no-such-host.invalid:8080")
        .output()
        .await
        .unwrap();
    let said = String::from_utf8_lossy(&refused.stdout).into_owned() + &String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(said.contains("server.listen") && said.contains("no-such-host.invalid"), "{said}");
}

#[tokio::test]
async fn during_a_change_of_key_a_source_takes_both_its_keys_and_no_other() {
    let crm = spawn_emulator(100).await;
    let dir = tempfile::tempdir().unwrap();
    let (new, old) = ("the-new-key-of-the-partner-01", "the-old-key-of-the-partner-01");
    let rotating = format!(
        "\n[sources.rotating]\nkind = \"partner\"\nkeys = [\"{new}\", \"{old}\"]\ndestination = \"main\"\n\
         pipeline = \"{}\"\nstatus = \"{}\"\n",
        crate::helpers::PIPELINE,
        crate::helpers::STAGE
    );
    let gateway = TestProcess::serve(dir.path(), &config_file(&crm.base_url(), &rotating)).await;
    let base = format!("http://{}", gateway.address);
    let http = reqwest::Client::new();
    let by_new = crate::helpers::accept_at(&http, &base, new, &lead("Анна", "+7 916 500-00-01")).await;
    let by_old = crate::helpers::accept_at(&http, &base, old, &lead("Борис", "+7 916 500-00-02")).await;
    for (key, id) in [(new, by_old), (old, by_new)] {
        let lead = crate::helpers::get_lead(&http, &base, key, id).await;
        assert_eq!(lead["source"], "rotating", "either key reads the source's leads: {lead}");
    }
    let retired = http.post(format!("{base}/api/v1/leads")).bearer_auth("the-old-key-of-the-partner-00");
    assert_eq!(retired.json(&lead("x", "+7 916 500-00-03")).send().await.unwrap().status(), 401);
    gateway.terminate(std::time::Duration::from_secs(10));

    let both = format!("{rotating}key = \"{new}\"\n");
    let mistaken = rotating.replace(old, "short");
    for (config, expected) in [(both, "either key or keys"), (mistaken, "at least 16 characters")] {
        std::fs::write(dir.path().join("leadgate.toml"), config_file(&crm.base_url(), &config)).unwrap();
        let checked = tokio::process::Command::new(TestProcess::BINARY)
            .args(["config", "check", "--config", "leadgate.toml"])
            .current_dir(dir.path())
            .output()
            .await
            .unwrap();
        let said = String::from_utf8_lossy(&checked.stdout).into_owned() + &String::from_utf8_lossy(&checked.stderr);
        assert!(!checked.status.success());
        assert!(said.contains("sources.rotating.keys") && said.contains(expected), "{said}");
    }
}
