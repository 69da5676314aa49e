//! Decide and deliver one claimed lead, then commit what happened: outcome, retry, or dead.

mod journal;
mod retry;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;
use serde_json::json;

use crate::config::{SourceConfig, WorkerConfig};
use crate::connectors::{Connectors, DeliveryError};
use crate::domain::{HistoryEvent, Lead, Outcome, SourceId};
use crate::store::{AttemptCount, Claim, FeedbackKind, OwedFeedback, Store, StoreError};
pub use journal::Journal;
pub use retry::backoff;

/// Everything a worker needs to take a lead from claimed to settled.
#[derive(Clone)]
pub struct Deliverer {
    pub store: Store,
    pub connectors: Connectors,
    pub sources: Arc<BTreeMap<SourceId, SourceConfig>>,
    pub worker: WorkerConfig,
}

impl Deliverer {
    /// Settles one claimed lead. Never fails: whatever happens is written to the lead, and
    /// when even that is impossible the lease runs out and the lead is claimed again.
    #[tracing::instrument(skip_all, fields(lead.id = %claim.lead.id, source = %claim.lead.fields.source))]
    pub async fn deliver(&self, claim: Claim) {
        let lead = &claim.lead;
        let mut journal = Journal::new(
            &self.store,
            &claim.lease,
            self.worker.lease,
            claim.progress.clone(),
        );
        journal.note(HistoryEvent::now(
            "claimed",
            json!({ "attempt": lead.attempt + 1 }),
        ));
        let result = match self.route_of(lead) {
            Ok((connector, route)) => connector.deliver(lead, route, &mut journal).await,
            Err(error) => Err(error),
        };
        let mut events = journal.take_events();
        let written = match result {
            Ok(outcome) => {
                events.push(HistoryEvent::now(
                    outcome.decision.status().as_str(),
                    serde_json::to_value(&outcome).unwrap_or_default(),
                ));
                tracing::info!(decision = ?outcome.decision, contact_id = ?outcome.contact_id, deal_id = ?outcome.deal_id, "lead delivered");
                self.store
                    .complete(
                        &claim.lease,
                        &outcome,
                        &events,
                        &owed_feedback(lead, &outcome),
                    )
                    .await
            }
            Err(error) => self.settle_failure(&claim, error, events).await,
        };
        match written {
            Ok(()) => {}
            Err(StoreError::LeaseLost(id)) => {
                tracing::warn!(lead.id = %id, "another worker took the lead over; stopping")
            }
            Err(error) => tracing::error!(
                ?error,
                "could not record the attempt; the lead returns when its lease expires"
            ),
        }
    }

    fn route_of(
        &self,
        lead: &Lead,
    ) -> Result<(&crate::connectors::Connector, &crate::config::Route), DeliveryError> {
        let source = self.sources.get(&lead.fields.source).ok_or_else(|| {
            DeliveryError::Misconfigured(format!(
                "source «{}» is no longer configured",
                lead.fields.source
            ))
        })?;
        let connector = self
            .connectors
            .get(&source.route.destination)
            .ok_or_else(|| {
                DeliveryError::Misconfigured(format!(
                    "destination «{}» is not configured",
                    source.route.destination
                ))
            })?;
        Ok((connector, &source.route))
    }

    async fn settle_failure(
        &self,
        claim: &Claim,
        error: DeliveryError,
        mut events: Vec<HistoryEvent>,
    ) -> Result<(), StoreError> {
        let lease = &claim.lease;
        let message = error.to_string();
        let (delay, count) = match &error {
            DeliveryError::Store(StoreError::LeaseLost(id)) => {
                return Err(StoreError::LeaseLost(*id));
            }
            DeliveryError::Rejected(_) => {
                tracing::warn!(error = %message, "the CRM rejected the lead; it is dead until re-sent");
                events.push(HistoryEvent::now("dead", json!({ "error": message })));
                return self.store.mark_dead(lease, &message, &events).await;
            }
            DeliveryError::RateLimited { retry_in } | DeliveryError::Blocked { retry_in } => {
                (*retry_in, AttemptCount::NotCounted)
            }
            DeliveryError::Unavailable(_)
            | DeliveryError::Unauthorized(_)
            | DeliveryError::Misconfigured(_)
            | DeliveryError::Store(_) => (
                backoff(&self.worker, claim.lead.attempt + 1),
                AttemptCount::Counted,
            ),
        };
        let retry_at = Utc::now() + delay;
        tracing::warn!(error = %message, %retry_at, "delivery attempt failed; the lead is queued again");
        events.push(HistoryEvent::now(
            "retry_scheduled",
            json!({ "error": message, "retry_at": retry_at, "counted": count == AttemptCount::Counted }),
        ));
        self.store
            .reschedule(lease, retry_at, count, &message, &events)
            .await
    }
}

/// The answers an outcome owes its sender, committed with it (delivered by the feedback worker).
fn owed_feedback(lead: &Lead, outcome: &Outcome) -> Vec<OwedFeedback> {
    let Some(url) = &lead.fields.callback_url else {
        return Vec::new();
    };
    let unique = outcome.decision.is_unique_client();
    let body = json!({
        "id": lead.id,
        "status": outcome.decision.status().as_str(),
        "unique": unique,
        "message": if unique { "Клиент уникальный" } else { "Клиент не уникален" },
        "contact_id": outcome.contact_id,
        "deal_id": outcome.deal_id,
        "occurred_at": Utc::now(),
    });
    vec![OwedFeedback {
        kind: FeedbackKind::Callback,
        payload: json!({ "url": url, "body": body }),
    }]
}
