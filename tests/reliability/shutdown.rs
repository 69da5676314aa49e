//! SIGTERM while intake is busy and the backlog long: the gateway stops within 15 s, cleanly, and
//! every lead it acknowledged is stored.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use leadgate::config::{Durability, StoreConfig};
use leadgate::domain::LeadId;
use leadgate::store::Store;
use serde_json::Value;

use crate::gateway::gateway_config;
use crate::helpers::{SOURCE_KEY, TestProcess, emulator_holding, lead, poll_until, store_url};

const POSTERS: usize = 16;
const BACKLOG: usize = 5000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_long_backlog_stops_within_15_seconds_and_keeps_every_acknowledged_lead() {
    let _alone = crate::helpers::MACHINE_WIDE.lock().await;
    // Every delivery stalls at its contact create: the backlog only grows, and deliveries are in
    // flight when the signal comes.
    let crm = emulator_holding("/api/v4/contacts", "POST", Duration::from_secs(60)).await;
    let dir = tempfile::tempdir().unwrap();
    let gateway = TestProcess::serve(dir.path(), &gateway_config(&crm.base_url(), 100)).await;
    let base = format!("http://{}", gateway.address);
    let acknowledged = Arc::new(AtomicUsize::new(0));
    let mut posters = tokio::task::JoinSet::new();
    for poster in 0..POSTERS {
        posters.spawn(post_until_refused(base.clone(), poster, Arc::clone(&acknowledged)));
    }
    let backlog = poll_until(Duration::from_secs(120), || async { acknowledged.load(Ordering::Relaxed) >= BACKLOG });
    assert!(backlog.await, "only {} leads were acknowledged", acknowledged.load(Ordering::Relaxed));

    let exit = tokio::task::spawn_blocking(move || gateway.terminate(Duration::from_secs(15))).await.unwrap();
    assert!(exit.is_some_and(|status| status.success()), "still running 15 s after SIGTERM, or failed: {exit:?}");
    let ids: Vec<i64> = posters.join_all().await.into_iter().flatten().collect();
    let config = StoreConfig { url: store_url(dir.path()), durability: Durability::ProcessCrash, max_connections: 2 };
    let store = Store::open(&config).await.unwrap();
    for id in &ids {
        assert!(store.find_lead(LeadId(*id)).await.unwrap().is_some(), "lead {id} was acknowledged but is not stored");
    }
}

/// Posts new clients until the gateway stops answering; returns the ids it acknowledged.
async fn post_until_refused(base: String, poster: usize, acknowledged: Arc<AtomicUsize>) -> Vec<i64> {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
    let mut ids = Vec::new();
    for n in 0.. {
        let body = lead("Очередь", &format!("+7999{poster:02}{n:05}"));
        let sent = http.post(format!("{base}/api/v1/leads")).bearer_auth(SOURCE_KEY).json(&body).send().await;
        match sent {
            Ok(response) if response.status() == 200 => {
                let Ok(answer) = response.json::<Value>().await else { break };
                ids.push(answer["id"].as_i64().unwrap());
                acknowledged.fetch_add(1, Ordering::Relaxed);
            }
            // Refused while stopping: not acknowledged, so the sender keeps it.
            Ok(_) => {}
            Err(_) => break,
        }
    }
    ids
}
