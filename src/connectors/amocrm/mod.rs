//! The amoCRM (API v4) connector: the partner flow's three-way decision, one journaled step at a time.

mod client;
mod credentials;
mod flow;
mod wire;

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::{Mutex, RwLock};

use crate::config::{AmoCrmConfig, Route};
use crate::connectors::transport::Transport;
use crate::connectors::{DeliveryError, RouteProblem};
use crate::domain::{HistoryEvent, PhoneRegion};
use crate::store::Store;
use client::AmoCrmClient;
use credentials::Credentials;
use wire::PipelinesPage;

pub struct AmoCrm {
    client: AmoCrmClient,
    phone_region: PhoneRegion,
    /// Read from the account and refreshed on a miss.
    pipelines: RwLock<HashMap<String, PipelineIds>>,
    refreshing: Mutex<()>,
}

/// A pipeline's id and its stages' ids by name.
type PipelineIds = (i64, HashMap<String, i64>);

/// A route's pipeline and stage as the account numbers them, and the deal's custom field values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub pipeline_id: i64,
    pub status_id: i64,
    pub deal_fields: Vec<serde_json::Value>,
}

impl AmoCrm {
    pub fn new(config: &AmoCrmConfig, store: Store, phone_region: PhoneRegion, blocked_pause: Duration) -> Self {
        let shared_budget = store.shared_rate_budget(&config.name, config.requests_per_second);
        let credentials = Credentials::new(&config.auth, &config.name, &config.base_url, store);
        tracing::debug!(destination = %config.name, auth = credentials.describe(), "amoCRM destination ready");
        let transport = Transport::new(config.timeout, config.requests_per_second, shared_budget);
        Self {
            client: AmoCrmClient::new(&config.name, config.base_url.clone(), transport, credentials, blocked_pause),
            phone_region,
            pipelines: RwLock::default(),
            refreshing: Mutex::default(),
        }
    }

    /// Links to the contact's and the deal's cards, for people reading a notification.
    pub fn card_links(&self, contact_id: Option<i64>, deal_id: Option<i64>) -> (Option<String>, Option<String>) {
        crate::notify::templates::crm_links(self.client.base_url(), contact_id, deal_id)
    }

    pub async fn check_route(&self, route: &Route) -> Result<(), RouteProblem> {
        self.resolve(route, &mut Vec::new()).await.map(|_| ())
    }

    async fn placement(&self, route: &Route, calls: &mut Vec<HistoryEvent>) -> Result<Placement, DeliveryError> {
        self.resolve(route, calls).await.map_err(|problem| match problem {
            RouteProblem::Destination(error) => error,
            RouteProblem::Pipeline(message) | RouteProblem::Status(message) => DeliveryError::Misconfigured(message),
        })
    }

    async fn resolve(&self, route: &Route, calls: &mut Vec<HistoryEvent>) -> Result<Placement, RouteProblem> {
        if let Some(found) = self.cached_placement(route).await {
            return Ok(found);
        }
        // One refresh at a time: a restarted gateway's first batch would otherwise ask the CRM
        // for the same pipelines once per lead, all in the same second.
        let _refreshing = self.refreshing.lock().await;
        if let Some(found) = self.cached_placement(route).await {
            return Ok(found);
        }
        let page: Option<PipelinesPage> =
            self.client.get(calls, "/api/v4/leads/pipelines", &[]).await.map_err(RouteProblem::Destination)?;
        let fresh = page
            .map(|page| page.embedded.pipelines)
            .unwrap_or_default()
            .into_iter()
            .map(|pipeline| {
                let statuses = pipeline.embedded.statuses.into_iter().map(|status| (status.name, status.id)).collect();
                (pipeline.name, (pipeline.id, statuses))
            })
            .collect();
        *self.pipelines.write().await = fresh;
        if let Some(found) = self.cached_placement(route).await {
            return Ok(found);
        }
        let pipelines = self.pipelines.read().await;
        Err(match pipelines.get(&route.pipeline) {
            None => {
                let mut known: Vec<&str> = pipelines.keys().map(String::as_str).collect();
                known.sort_unstable();
                RouteProblem::Pipeline(format!(
                    "pipeline «{}» does not exist in the account (it has: {})",
                    route.pipeline,
                    known.join(", ")
                ))
            }
            Some((_, statuses)) => {
                let mut known: Vec<&str> = statuses.keys().map(String::as_str).collect();
                known.sort_unstable();
                RouteProblem::Status(format!(
                    "stage «{}» does not exist in pipeline «{}» (it has: {})",
                    route.status,
                    route.pipeline,
                    known.join(", ")
                ))
            }
        })
    }

    async fn cached_placement(&self, route: &Route) -> Option<Placement> {
        let pipelines = self.pipelines.read().await;
        let (pipeline_id, statuses) = pipelines.get(&route.pipeline)?;
        let status_id = statuses.get(&route.status)?;
        Some(Placement { pipeline_id: *pipeline_id, status_id: *status_id, deal_fields: Vec::new() })
    }
}
