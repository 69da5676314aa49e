//! The amoCRM (API v4) connector: its account's pipelines, cards and credentials, and the contract's operations.

mod calls;
mod client;
mod credentials;
#[cfg(test)]
mod emulator_tests;
mod fields;
mod operations;
mod users;
mod wire;

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::{Mutex, RwLock};
use url::Url;

use crate::config::{AmoCrmConfig, Route};
use crate::connectors::transport::Transport;
use crate::connectors::{DeliveryError, RouteProblem};
use crate::domain::{CrmRef, EntityKind, HistoryEvent, PhoneRegion};
use crate::store::{SharedRateBudget, Store};
use client::AmoCrmClient;
use credentials::Credentials;
use fields::{FieldCatalog, FieldsOf};
use users::Users;
use wire::PipelinesPage;

pub struct AmoCrm {
    client: AmoCrmClient,
    phone_region: PhoneRegion,
    /// Read from the account and refreshed on a miss.
    pipelines: RwLock<HashMap<String, PipelineIds>>,
    refreshing: Mutex<()>,
    /// Read from the account and refreshed on a miss, like the pipelines.
    users: Users,
    contact_fields: FieldCatalog,
    deal_fields: FieldCatalog,
}

/// A pipeline's id and its stages' ids by name.
type PipelineIds = (i64, HashMap<String, i64>);

/// A route's pipeline and stage as the account numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    pub pipeline_id: i64,
    pub status_id: i64,
}

impl AmoCrm {
    pub fn new(config: &AmoCrmConfig, store: Store, phone_region: PhoneRegion, blocked_pause: Duration) -> Self {
        let shared_budget = store.shared_rate_budget(&config.name, config.requests_per_second);
        let credentials = Credentials::new(&config.auth, &config.name, &config.base_url, store);
        Self::with_credentials(config, credentials, shared_budget, phone_region, blocked_pause)
    }

    fn with_credentials(
        config: &AmoCrmConfig,
        credentials: Credentials,
        shared_budget: Option<SharedRateBudget>,
        phone_region: PhoneRegion,
        blocked_pause: Duration,
    ) -> Self {
        tracing::debug!(destination = %config.name, auth = credentials.describe(), "amoCRM destination ready");
        let transport = Transport::new(&config.name, config.timeout, config.requests_per_second, shared_budget);
        Self {
            client: AmoCrmClient::new(&config.name, config.base_url.clone(), transport, credentials, blocked_pause),
            phone_region,
            pipelines: RwLock::default(),
            refreshing: Mutex::default(),
            users: Users::default(),
            contact_fields: FieldCatalog::new(FieldsOf::Contacts),
            deal_fields: FieldCatalog::new(FieldsOf::Deals),
        }
    }

    /// The account's rate pause and how the connector signs in, as it stands now.
    pub fn status(&self) -> crate::connectors::status::ConnectorStatus {
        let transport = self.client.transport();
        let login = if self.client.credentials().can_renew() {
            crate::connectors::status::Login::OAuth
        } else {
            crate::connectors::status::Login::LongLivedToken
        };
        crate::connectors::status::ConnectorStatus {
            kind: "amocrm",
            requests_per_second: transport.requests_per_second,
            paused: transport.limiter.paused(),
            login,
        }
    }

    /// The card of a contact or deal in the account's web interface.
    pub fn card_url(&self, record: &CrmRef) -> Option<String> {
        card_url(self.client.base_url(), record)
    }

    /// The route's pipeline and stage exist, and so does every deal field it fills: delivery
    /// would leave a value for a field the account lacks out of every deal.
    pub async fn check_route(&self, route: &Route) -> Result<(), RouteProblem> {
        let mut calls = Vec::new();
        self.resolve(route, &mut calls).await?;
        if route.deal_fields.is_empty() {
            return Ok(());
        }
        let known = self.deal_fields.read(&self.client, &mut calls).await.map_err(RouteProblem::Destination)?;
        let missing: Vec<String> = route
            .deal_fields
            .iter()
            .filter(|(_, id)| !known.contains(id))
            .map(|(name, id)| format!("{name} = {id}"))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        Err(RouteProblem::DealFields(format!(
            "the account has no deal field with the id of {} (its deal fields: {})",
            missing.join(", "),
            known.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
        )))
    }

    async fn placement(&self, route: &Route, calls: &mut Vec<HistoryEvent>) -> Result<Placement, DeliveryError> {
        self.resolve(route, calls).await.map_err(|problem| match problem {
            RouteProblem::Destination(error) => error,
            RouteProblem::Pipeline(message) | RouteProblem::Status(message) | RouteProblem::DealFields(message) => {
                DeliveryError::Misconfigured(message)
            }
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
        Some(Placement { pipeline_id: *pipeline_id, status_id: *status_id })
    }
}

/// A card is on the account's host whatever path the API's base URL has.
fn card_url(base_url: &Url, record: &CrmRef) -> Option<String> {
    let section = match record.kind {
        EntityKind::Contact => "contacts",
        EntityKind::Deal => "leads",
        _ => return None,
    };
    let mut url = base_url.clone();
    url.set_path(&format!("/{section}/detail/{}", record.id));
    url.set_query(None);
    url.set_fragment(None);
    Some(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cards_are_on_the_account_host_whatever_the_base_path() {
        let base_url = Url::parse("https://acme.amocrm.ru/api/v4/?x=1").expect("a valid URL");
        let card = |kind, id: &str| card_url(&base_url, &CrmRef::new(kind, id));
        assert_eq!(card(EntityKind::Contact, "7").as_deref(), Some("https://acme.amocrm.ru/contacts/detail/7"));
        assert_eq!(card(EntityKind::Deal, "8").as_deref(), Some("https://acme.amocrm.ru/leads/detail/8"));
        assert_eq!(card(EntityKind::Note, "9"), None);
    }
}
