//! What an operator's monitoring reads from the real binary: `GET /metrics` (with the metrics
//! token only, in the Prometheus text format, counting what a run did — requests by route, leads
//! in and settled, CRM calls with their statuses, the queue while the CRM is down — and naming no
//! secret), and `GET /readyz`.

use std::time::Duration;

use amocrm_emulator::{Fault, FaultLimit};

use crate::helpers::{
    SOURCE_KEY, TestProcess, accept_at, config_file, lead, poll_until, spawn_emulator, wait_for_status,
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
