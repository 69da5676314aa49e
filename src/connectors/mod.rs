//! Deliver: the CRM connectors, one interface for every kind of destination.

pub mod amocrm;
pub mod rate_limit;
pub mod session_crm;
pub mod transport;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{DestinationConfig, Route};
use crate::delivery::Journal;
use crate::domain::{Lead, Outcome, PhoneRegion};
use crate::store::{Store, StoreError};
use amocrm::AmoCrm;
use session_crm::SessionCrm;

/// A CRM account leads are delivered to. `session_crm` and `bitrix24` join as variants.
pub enum Connector {
    AmoCrm(AmoCrm),
    SessionCrm(SessionCrm),
}

/// Until the delivery core drives the session CRM's calls, its leads wait with this error.
const SESSION_CRM_UNWIRED: &str = "session_crm delivery is wired by the delivery core";

/// Which decision a lead gets, by the kind of its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// The partner contract: a known client gets no new deal; an existing deal is moved.
    Partner,
    /// The listing portal: the client is found by phone or e-mail; an existing deal gets a note,
    /// a known client without one gets a new deal.
    Portal,
    /// A website lead: the client is found by phone or e-mail and every lead makes a deal with
    /// a note (repeats are caught at intake, by the duplicate check).
    Website,
}

/// Why a delivery attempt stopped, which decides what happens to the lead next.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// 429: the CRM wants fewer requests. Not the lead's fault; retried without counting.
    #[error("the CRM asked us to slow down (429)")]
    RateLimited { retry_in: Duration },
    /// 403 with a non-JSON body: amoCRM blocked the account for exceeding its limits.
    #[error("the CRM has blocked the account (403); calls stop for {}s", retry_in.as_secs())]
    Blocked { retry_in: Duration },
    /// 5xx, a timeout or a network error: retried with backoff.
    #[error("the CRM is unavailable: {0}")]
    Unavailable(String),
    /// The token is refused and could not be renewed: someone must re-authorise.
    #[error("the CRM refused our credentials: {0}")]
    Unauthorized(String),
    /// The account does not match the configuration (a pipeline or stage is missing).
    #[error("{0}")]
    Misconfigured(String),
    /// The CRM refused this lead's data (400): retrying cannot help.
    #[error("the CRM rejected the lead: {0}")]
    Rejected(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What `config check` found wrong with a route, by the key it belongs to.
#[derive(Debug, thiserror::Error)]
pub enum RouteProblem {
    #[error("{0}")]
    Pipeline(String),
    #[error("{0}")]
    Status(String),
    #[error("{0}")]
    Destination(DeliveryError),
}

/// Every configured destination, built once at start-up and shared by all workers.
pub type Connectors = Arc<BTreeMap<String, Connector>>;

impl Connector {
    pub fn build(config: &DestinationConfig, store: Store, phone_region: PhoneRegion, blocked_pause: Duration) -> Self {
        match config {
            DestinationConfig::AmoCrm(amocrm) => Self::AmoCrm(AmoCrm::new(amocrm, store, phone_region, blocked_pause)),
            DestinationConfig::SessionCrm(session_crm) => Self::SessionCrm(SessionCrm::new(session_crm, &store)),
        }
    }

    /// Takes the lead as far as it can, journaling each step before starting the next.
    ///
    /// # Errors
    /// A `DeliveryError` saying why it stopped; finished steps stay journaled either way.
    pub async fn deliver(
        &self,
        lead: &Lead,
        route: &Route,
        flow: Flow,
        journal: &mut Journal<'_>,
    ) -> Result<Outcome, DeliveryError> {
        match self {
            Self::AmoCrm(amocrm) => amocrm.deliver(lead, route, flow, journal).await,
            Self::SessionCrm(_) => Err(DeliveryError::Misconfigured(SESSION_CRM_UNWIRED.to_owned())),
        }
    }

    /// Adds a note to a deal the gateway made; returns the note's id.
    ///
    /// # Errors
    /// Why the CRM did not take it, classified like a delivery's errors.
    pub async fn add_deal_note(&self, deal_id: i64, text: &str) -> Result<i64, DeliveryError> {
        match self {
            Self::AmoCrm(amocrm) => amocrm.post_note(deal_id, text, &mut Vec::new()).await,
            Self::SessionCrm(_) => Err(DeliveryError::Misconfigured(SESSION_CRM_UNWIRED.to_owned())),
        }
    }

    /// Links to the CRM cards of an outcome's contact and deal.
    pub fn card_links(&self, outcome: &Outcome) -> (Option<String>, Option<String>) {
        match self {
            Self::AmoCrm(amocrm) => amocrm.card_links(outcome.contact_id, outcome.deal_id),
            Self::SessionCrm(_) => (None, None),
        }
    }

    /// Checks a route against the account: the pipeline and stage exist.
    ///
    /// # Errors
    /// What is wrong, in words for `config check`.
    pub async fn check_route(&self, route: &Route) -> Result<(), RouteProblem> {
        match self {
            Self::AmoCrm(amocrm) => amocrm.check_route(route).await,
            Self::SessionCrm(session_crm) => session_crm.check().await.map_err(RouteProblem::Destination),
        }
    }
}
