//! What an operator's monitoring reads from the real binary: `GET /metrics` (with the metrics
//! token only, in the Prometheus text format, counting what a run did — requests by route, leads
//! in and settled, CRM calls with their statuses, the queue while the CRM is down — and naming no
//! secret), and `GET /readyz`.

use std::time::Duration;

use amocrm_emulator::{Fault, FaultLimit};

use crate::helpers::{
    PIPELINE, SOURCE_KEY, STAGE, TestProcess, accept_at, config_file, free_port, lead, poll_until, spawn_emulator,
    wait_for_status,
};

const METRICS_TOKEN: &str = "metrics-token-for-prometheus-01";

/// The sum of the samples `name{labels…}` whose labels include every one of `labels`; `None`
/// when there is none.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let values: Vec<f64> = text
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
            let wanted = labels.iter().all(|(label, value)| rest.contains(&format!("{label}=\"{value}\"")));
            (metric == name && wanted).then(|| value.parse().ok()).flatten()
        })
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

async fn scrape(http: &reqwest::Client, base: &str) -> String {
    let response = http.get(format!("{base}/metrics")).bearer_auth(METRICS_TOKEN).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    response.text().await.unwrap()
}

#[tokio::test]
async fn metrics_count_what_the_gateway_did_and_show_the_queue_while_the_crm_is_down() {
    let crm = spawn_emulator(100).await;
    let dir = tempfile::tempdir().unwrap();
    let extra = format!("[admin]\nmetrics_token = \"{METRICS_TOKEN}\"\n");
    let gateway = TestProcess::serve(dir.path(), &config_file(&crm.base_url(), &extra)).await;
    let base = format!("http://{}", gateway.address);
    let http = reqwest::Client::new();

    let anonymous = http.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let wrong = http.get(format!("{base}/metrics")).bearer_auth(SOURCE_KEY).send().await.unwrap();
    assert_eq!(wrong.status(), 401, "a source's key does not open the metrics");

    let delivered = accept_at(&http, &base, SOURCE_KEY, &lead("Анна", "+7 916 100-00-01")).await;
    wait_for_status(&http, &base, SOURCE_KEY, delivered, &["approved"]).await;
    let refused = http.post(format!("{base}/api/v1/leads")).bearer_auth("wrong-key").json(&lead("x", "1")).send();
    assert_eq!(refused.await.unwrap().status(), 401);

    let text = scrape(&http, &base).await;
    let posted = [("route", "/api/v1/leads"), ("method", "POST")];
    assert_eq!(sample(&text, "leadgate_http_requests_total", &[posted[0], posted[1], ("status", "200")]), Some(1.0));
    assert_eq!(sample(&text, "leadgate_http_requests_total", &[posted[0], ("status", "401")]), Some(1.0));
    let received = [("source", "trendagent"), ("result", "new")];
    assert_eq!(sample(&text, "leadgate_leads_received_total", &received), Some(1.0));
    let settled = [("source", "trendagent"), ("status", "approved")];
    assert_eq!(sample(&text, "leadgate_leads_settled_total", &settled), Some(1.0));
    assert_eq!(sample(&text, "leadgate_lead_delivery_seconds_count", &[("source", "trendagent")]), Some(1.0));
    let crm_ok = sample(&text, "leadgate_crm_requests_total", &[("destination", "main"), ("status", "200")]);
    assert!(crm_ok.is_some_and(|count| count >= 2.0), "a search and a create at least: {crm_ok:?}");
    assert_eq!(sample(&text, "leadgate_crm_budget_requests_per_second", &[("destination", "main")]), Some(100.0));
    assert!(!text.contains(SOURCE_KEY) && !text.contains(METRICS_TOKEN), "no secret in the metrics");
    assert!(!text.contains("+7916"), "no phone number in the metrics");

    crm.emulator.inject_fault(Fault::new(503, FaultLimit::UntilCleared));
    let waiting = accept_at(&http, &base, SOURCE_KEY, &lead("Борис", "+7 916 100-00-02")).await;
    let retried = [("source", "trendagent"), ("reason", "unavailable")];
    let failed_once = poll_until(Duration::from_secs(10), || async {
        sample(&scrape(&http, &base).await, "leadgate_lead_retries_total", &retried).is_some()
    });
    assert!(failed_once.await, "the failed attempt is counted");
    let text = scrape(&http, &base).await;
    let unavailable = [("destination", "main"), ("status", "503")];
    assert!(sample(&text, "leadgate_crm_requests_total", &unavailable).is_some_and(|count| count >= 1.0));
    // Between attempts it is pending; during one, processing: either way, it waits.
    let source = [("source", "trendagent")];
    assert_eq!(sample(&text, "leadgate_queue_leads", &source), Some(1.0), "lead {waiting} waits");
    assert!(sample(&text, "leadgate_queue_oldest_seconds", &source).is_some_and(|age| age > 0.0));

    crm.emulator.clear_faults();
    wait_for_status(&http, &base, SOURCE_KEY, waiting, &["approved"]).await;
    let text = scrape(&http, &base).await;
    assert_eq!(sample(&text, "leadgate_queue_leads", &source), Some(0.0), "the queue emptied");
}

#[tokio::test]
async fn without_a_metrics_token_there_are_no_metrics() {
    let crm = spawn_emulator(100).await;
    let dir = tempfile::tempdir().unwrap();
    let gateway = TestProcess::serve(dir.path(), &config_file(&crm.base_url(), "")).await;
    let response = reqwest::get(format!("http://{}/metrics", gateway.address)).await.unwrap();
    assert_eq!(response.status(), 404);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("metrics_token"), "{body}");
}

#[tokio::test]
async fn ready_means_the_database_answers_with_every_migration_and_the_worker_goes_round() {
    let crm = spawn_emulator(100).await;
    let dir = tempfile::tempdir().unwrap();
    let gateway = TestProcess::serve(dir.path(), &config_file(&crm.base_url(), "")).await;
    let url = format!("http://{}/readyz", gateway.address);
    let response = reqwest::get(&url).await.unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body, serde_json::json!({ "status": "ready", "database": "ok", "worker": "ok" }));

    // The database loses its newest migration behind the node's back (an old backup restored).
    let forget = "delete from _sqlx_migrations where version = (select max(version) from _sqlx_migrations)";
    let url = crate::helpers::store_url(dir.path());
    if crate::helpers::on_postgres() {
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        sqlx::query(forget).execute(&pool).await.unwrap();
    } else {
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        sqlx::query(forget).execute(&pool).await.unwrap();
    }
    let url = format!("http://{}/readyz", gateway.address);
    let response = reqwest::get(&url).await.unwrap();
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "not ready");
    assert!(body["database"].as_str().unwrap().contains("lacks migrations"), "{body}");
}

/// Every secret of a configuration with one of each, used in a whole run: partner and proxy keys
/// (the proxy's in the query string), a callback URL carrying a token, the callback's signing
/// secret, a PBX's URL key and OAuth secret, the CRM's token, the admin and metrics tokens.
#[tokio::test]
async fn a_whole_run_logs_every_request_once_as_json_and_no_secret_ever() {
    const PROXY_KEY: &str = "proxy-key-in-the-query-0123";
    const TELPHIN_KEY: &str = "telphin-key-in-the-path-0123";
    const ADMIN_TOKEN: &str = "admin-token-for-the-log-test-01";
    const CALLBACK_SECRET: &str = "callback-signing-secret-0123";
    const CALLBACK_TOKEN: &str = "token-in-a-callback-url-0123";
    const OAUTH_SECRET: &str = "sandbox-telphin-secret";
    let crm = spawn_emulator(100).await;
    let pbx = pbx_emulator::spawn(pbx_emulator::PbxConfig::sandbox(pbx_emulator::ProviderKind::Telphin)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "callback_secret = \"{CALLBACK_SECRET}\"\n\
         [admin]\ntoken = \"{ADMIN_TOKEN}\"\nmetrics_token = \"{METRICS_TOKEN}\"\n\
         [log]\nformat = \"json\"\n\
         [security]\nallow_private_callbacks = true\n\
         [sources.site]\nkind = \"proxy\"\nkey = \"{PROXY_KEY}\"\ndestination = \"main\"\n\
         pipeline = \"{PIPELINE}\"\nstatus = \"{STAGE}\"\n\
         [sources.pbx]\nkind = \"telephony\"\nprovider = \"telphin\"\nkey = \"{TELPHIN_KEY}\"\n\
         client_id = \"sandbox-telphin-app\"\nclient_secret = \"{OAUTH_SECRET}\"\napi_url = \"{}\"\n\
         destination = \"main\"\npipeline = \"{PIPELINE}\"\nstatus = \"{STAGE}\"\n\
         users = {{ \"101\" = \"Анна Смирнова\" }}\nfinish_after = \"1s\"\n",
        pbx.base_url()
    );
    let gateway =
        TestProcess::serve_logging(dir.path(), &config_file(&crm.base_url(), &extra), "info,leadgate=debug").await;
    let base = format!("http://{}", gateway.address);
    let http = reqwest::Client::new();

    // A partner lead whose callback URL carries a token and answers nothing (nobody listens).
    let callback = format!("http://127.0.0.1:{}/cb?token={CALLBACK_TOKEN}", free_port());
    let mut partner = lead("Анна", "+7 916 200-00-01");
    partner["callbackUrl"] = serde_json::json!(callback);
    let id = accept_at(&http, &base, SOURCE_KEY, &partner).await;
    wait_for_status(&http, &base, SOURCE_KEY, id, &["approved"]).await;
    let proxy = format!("{base}/api/proxy/1.0/leads/add?key={PROXY_KEY}&name=Boris&phone=79162000002");
    assert_eq!(http.get(&proxy).send().await.unwrap().status(), 200);
    let call = pbx_emulator::Scenario::find("incoming-known-answered").unwrap().script();
    let target = format!("{base}/telephony/pbx/{TELPHIN_KEY}").parse().unwrap();
    let played = pbx.pbx.play(&call, &target, &pbx_emulator::PlayOptions::default()).await.unwrap();
    assert!(played.all_accepted());
    let started = http.post(format!("{base}/api/v1/calls")).bearer_auth(ADMIN_TOKEN);
    let started = started.json(&serde_json::json!({ "extension": "101", "phone": "+79162000003" })).send().await;
    assert_eq!(started.unwrap().status(), 202);
    let calls = http.get(format!("{base}/api/v1/calls?phone=79161234567")).bearer_auth(ADMIN_TOKEN).send().await;
    assert_eq!(calls.unwrap().status(), 200);
    scrape(&http, &base).await;
    // The callback's first attempt has failed once its failure is in the lead's history.
    let failed = poll_until(Duration::from_secs(20), || async {
        let lead = crate::helpers::get_lead(&http, &base, SOURCE_KEY, id).await;
        crate::helpers::history_kinds(&lead).contains(&"callback_attempt_failed".to_owned())
    });
    assert!(failed.await, "the callback was attempted");
    assert!(gateway.terminate(Duration::from_secs(20)).is_some_and(|status| status.success()));

    let log = std::fs::read_to_string(dir.path().join("leadgate.log")).unwrap();
    for secret in [
        SOURCE_KEY,
        PROXY_KEY,
        TELPHIN_KEY,
        ADMIN_TOKEN,
        METRICS_TOKEN,
        CALLBACK_SECRET,
        CALLBACK_TOKEN,
        OAUTH_SECRET,
        "sandbox-long-lived-token",
    ] {
        assert!(!log.contains(secret), "«{secret}» is in the log:\n{log}");
    }
    let lines: Vec<serde_json::Value> =
        log.lines().map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"))).collect();
    let access = |route: &str| {
        lines
            .iter()
            .filter(|line| line["target"] == "leadgate::access" && line["span"]["route"] == route)
            .collect::<Vec<_>>()
    };
    let posted = access("/api/v1/leads");
    assert_eq!(posted.len(), 1, "one line per request");
    assert_eq!(posted[0]["fields"]["status"], 200);
    assert_eq!(posted[0]["span"]["source"], "trendagent");
    assert!(posted[0]["fields"]["duration_ms"].is_u64());
    assert_eq!(access("/api/proxy/1.0/leads/add")[0]["span"]["source"], "site");
    let events = access("/telephony/{source}/{key}");
    assert!(!events.is_empty() && events.iter().all(|line| line["span"]["source"] == "pbx"), "{events:?}");
}
