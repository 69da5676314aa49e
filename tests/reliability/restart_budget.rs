//! A gateway restarted within a second of spending its CRM budget must not spend it again in that second.

use std::time::Duration;

use crate::gateway::gateway_config;
use crate::helpers::{SOURCE_KEY, TestProcess, lead, poll_until, spawn_emulator};

const BUDGET: u32 = 20;
/// New clients posted to each process: four calls each, so either could spend the budget twice over.
const LEADS_PER_PROCESS: usize = 10;

#[tokio::test]
async fn a_gateway_restarted_right_after_spending_its_budget_keeps_the_crm_within_it() {
    // The emulator refuses nothing, so every arrival is counted when it came.
    let crm = spawn_emulator(1000).await;
    let dir = tempfile::tempdir().unwrap();
    let config = gateway_config(&crm.base_url(), BUDGET);
    let emulator = &crm.emulator;
    let spent = |requests: u32| move || async move { emulator.traffic_stats().api_requests >= u64::from(requests) };

    let first = TestProcess::serve(dir.path(), &config).await;
    post_new_clients(&first, 0).await;
    assert!(poll_until(Duration::from_secs(10), spent(BUDGET)).await, "the first process never spent its budget");
    first.kill();
    let second = TestProcess::serve(dir.path(), &config).await;
    post_new_clients(&second, LEADS_PER_PROCESS).await;
    assert!(poll_until(Duration::from_secs(10), spent(2 * BUDGET)).await, "the second process never called");

    let traffic = crm.emulator.traffic_stats();
    assert!(
        traffic.max_requests_in_any_second <= u64::from(BUDGET),
        "the CRM saw {} requests within one second across the restart; the budget is {BUDGET}",
        traffic.max_requests_in_any_second
    );
}

async fn post_new_clients(gateway: &TestProcess, first: usize) {
    let http = reqwest::Client::new();
    for n in first..first + LEADS_PER_PROCESS {
        let response = http
            .post(format!("http://{}/api/v1/leads", gateway.address))
            .bearer_auth(SOURCE_KEY)
            .json(&lead("Клиент", &format!("+7999810{n:04}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
}
