//! The partners' side of a storm: leads posted from several tasks, each repeated under its key until answered.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;
use tokio::sync::watch;

use crate::helpers::SOURCE_KEY;
use crate::lead_plan::{LeadPlan, PlannedLead};

pub const LOADERS: usize = 8;
/// A post refused because the gateway is down is repeated when the restarted one is announced, or after this.
const REPOST_AFTER: Duration = Duration::from_millis(250);

/// Each planned lead's id, in plan order, and how many posts failed before one was answered.
pub struct Acknowledgements {
    pub ids: Vec<i64>,
    pub failed_posts: usize,
}

/// Posts every planned lead from `LOADERS` tasks, paced to take about `span`, each to whichever gateway
/// `address` announces, until it is answered.
pub async fn post_all(
    plan: Arc<LeadPlan>,
    callback_url: String,
    address: watch::Receiver<SocketAddr>,
    span: Duration,
) -> Acknowledgements {
    let count = plan.leads.len().max(1);
    let period = (span * LOADERS as u32 / count as u32).max(Duration::from_millis(1));
    let mut loaders = tokio::task::JoinSet::new();
    for loader in 0..LOADERS {
        let (plan, callback_url, mut address) = (Arc::clone(&plan), callback_url.clone(), address.clone());
        loaders.spawn(async move {
            let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
            let mut pace = tokio::time::interval(period);
            let mut answered = Vec::new();
            for index in (loader..plan.leads.len()).step_by(LOADERS) {
                pace.tick().await;
                let planned = &plan.leads[index];
                answered.push((index, post_until_acknowledged(&http, &mut address, planned, &callback_url).await));
            }
            answered
        });
    }
    let mut ids = vec![0; plan.leads.len()];
    let mut failed_posts = 0;
    for (index, (id, failures)) in loaders.join_all().await.into_iter().flatten() {
        ids[index] = id;
        failed_posts += failures;
    }
    Acknowledgements { ids, failed_posts }
}

/// Posts one lead until a gateway answers 200, always under the same Idempotency-Key; returns its id
/// and how many posts failed first (refused, cut off by a kill, or answered 5xx).
async fn post_until_acknowledged(
    http: &reqwest::Client,
    address: &mut watch::Receiver<SocketAddr>,
    planned: &PlannedLead,
    callback_url: &str,
) -> (i64, usize) {
    let body = planned.body(Some(callback_url));
    let mut failures = 0;
    loop {
        let target = *address.borrow_and_update();
        let sent = http
            .post(format!("http://{target}/api/v1/leads"))
            .bearer_auth(SOURCE_KEY)
            .header("Idempotency-Key", &planned.key)
            .json(&body)
            .send()
            .await;
        match sent {
            Ok(response) if response.status() == 200 => {
                if let Ok(answer) = response.json::<Value>().await {
                    return (answer["id"].as_i64().unwrap(), failures);
                }
            }
            Ok(response) if response.status().is_server_error() => {}
            Ok(response) => {
                panic!("{} was refused: {} {}", planned.key, response.status(), response.text().await.unwrap())
            }
            Err(_) => {}
        }
        failures += 1;
        let _ = tokio::time::timeout(REPOST_AFTER, address.changed()).await;
    }
}

/// Posts every planned lead once more, as a partner repeating itself would; returns the ids answered.
pub async fn replay_ids(plan: &LeadPlan, callback_url: &str, base: &str) -> Vec<i64> {
    let http = reqwest::Client::new();
    let answers = futures::stream::iter(&plan.leads)
        .map(|planned| {
            let request = http
                .post(format!("{base}/api/v1/leads"))
                .bearer_auth(SOURCE_KEY)
                .header("Idempotency-Key", &planned.key)
                .json(&planned.body(Some(callback_url)));
            async move {
                let response = request.send().await.unwrap();
                assert_eq!(response.status(), 200, "the repeat of {} was refused", planned.key);
                response.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
            }
        })
        .buffered(LOADERS);
    answers.collect().await
}
