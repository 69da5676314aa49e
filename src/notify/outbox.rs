//! The feedback worker: delivers what outcomes owe (callbacks, e-mails, deal notes) from the outbox, with retries.
//!
//! An outbox row is written in the transaction that commits the outcome, so a crash between the
//! outcome and its callback only delays the callback. Rows are claimed with a lease like leads;
//! delivery is at least once, and every attempt carries the same body and `webhook-id`, so a
//! receiver can tell a repeat from a second outcome.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use url::Url;

use super::callback::{CallbackFailure, CallbackSender};
use super::email::Mailer;
use crate::config::{FeedbackConfig, SourceConfig};
use crate::connectors::{Connectors, DeliveryError, Operation};
use crate::delivery::backoff;
use crate::domain::{HistoryEvent, SourceId};
use crate::store::{FeedbackClaim, FeedbackKind, Store, StoreError};

/// Rows taken per claim; feedback is small and mostly waits on the network.
const BATCH: usize = 32;

pub struct FeedbackWorker {
    pub store: Store,
    pub callbacks: CallbackSender,
    pub mailer: Option<Mailer>,
    pub sources: Arc<BTreeMap<SourceId, SourceConfig>>,
    /// For notes owed to CRM deals.
    pub connectors: Connectors,
    pub config: FeedbackConfig,
    pub wake: Arc<Notify>,
}

/// One failed attempt, and whether another could succeed.
struct Failure {
    message: String,
    status: Option<u16>,
    permanent: bool,
}

impl FeedbackWorker {
    /// Runs until `shutdown`: wakes when an outcome is committed and every second.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = tick.tick() => {}
                () = self.wake.notified() => {}
            }
            // A long backlog of feedback must not keep a stopping gateway busy.
            while !shutdown.is_cancelled() && matches!(self.process_due().await, Ok(BATCH)) {}
        }
    }

    /// Claims due rows and makes one delivery attempt for each; returns how many it took.
    pub async fn process_due(&self) -> Result<usize, StoreError> {
        let lease = self.config.timeout * 2 + Duration::from_secs(5);
        let claims = self.store.claim_feedback(BATCH, lease).await?;
        let count = claims.len();
        futures::future::join_all(claims.iter().map(|claim| self.attempt(claim))).await;
        Ok(count)
    }

    #[tracing::instrument(skip_all, fields(lead.id = %claim.lead_id, kind = claim.kind.as_str()))]
    async fn attempt(&self, claim: &FeedbackClaim) {
        let started = Instant::now();
        let result = match claim.kind {
            FeedbackKind::Callback => self.send_callback(claim).await,
            FeedbackKind::Email => self.send_email(claim).await,
            FeedbackKind::DealNote => self.send_deal_note(claim).await,
        };
        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let what = claim.kind.as_str();
        let attempt = claim.attempt + 1;
        let written = match result {
            Ok(status) => {
                let event = HistoryEvent::now(
                    &format!("{what}_delivered"),
                    json!({ "attempt": attempt, "status": status, "duration_ms": duration_ms }),
                );
                crate::metrics::feedback(what, "delivered");
                self.store.settle_feedback(claim, "delivered", None, None, &[event]).await
            }
            Err(failure) => {
                let mut events = vec![HistoryEvent::now(
                    &format!("{what}_attempt_failed"),
                    json!({ "attempt": attempt, "status": failure.status, "error": failure.message, "duration_ms": duration_ms }),
                )];
                let retry_at = Utc::now() + backoff(self.config.retry_initial, self.config.retry_max, attempt);
                let gives_up_at = claim.created_at + self.config.max_age;
                if failure.permanent || retry_at > gives_up_at {
                    tracing::warn!(error = %failure.message, attempts = attempt, "giving up on this {what}");
                    events.push(HistoryEvent::now(
                        &format!("{what}_failed"),
                        json!({ "attempts": attempt, "error": failure.message }),
                    ));
                    crate::metrics::feedback(what, "failed");
                    self.store.settle_feedback(claim, "failed", None, Some(&failure.message), &events).await
                } else {
                    crate::metrics::feedback(what, "retry");
                    tracing::info!(error = %failure.message, %retry_at, "{what} not delivered; retrying later");
                    self.store.settle_feedback(claim, "pending", Some(retry_at), Some(&failure.message), &events).await
                }
            }
        };
        if let Err(error) = written {
            tracing::error!(%error, "could not record a feedback attempt; it is retried when its lease expires");
        }
    }

    async fn send_callback(&self, claim: &FeedbackClaim) -> Result<u16, Failure> {
        let url = claim.payload["url"].as_str().and_then(|url| Url::parse(url).ok());
        let Some(url) = url else {
            return Err(Failure {
                message: "the stored callback has no valid URL".to_owned(),
                status: None,
                permanent: true,
            });
        };
        let body = serde_json::to_vec(&claim.payload["body"]).unwrap_or_default();
        let source = SourceId(claim.payload["source"].as_str().unwrap_or_default().to_owned());
        let secrets = self.sources.get(&source).map(|source| &source.feedback.callback_secrets[..]).unwrap_or_default();
        let message_id = format!("msg_{}_{}", claim.lead_id, claim.lease.id);
        self.callbacks.send(&url, &message_id, body, secrets).await.map_err(|error: CallbackFailure| Failure {
            status: error.status(),
            message: error.to_string(),
            permanent: false,
        })
    }

    /// Posts the note on the lead's deal through the lead's connector, inside the CRM's rate budget.
    async fn send_deal_note(&self, claim: &FeedbackClaim) -> Result<u16, Failure> {
        let failure = |message: String, permanent: bool| Failure { message, status: None, permanent };
        let lead = match self.store.find_lead(claim.lead_id).await {
            Ok(Some(lead)) => lead,
            Ok(None) => return Err(failure("the lead no longer exists".to_owned(), true)),
            Err(error) => return Err(failure(format!("could not read the lead: {error}"), false)),
        };
        let Some(deal) = lead.outcome.as_ref().and_then(|outcome| outcome.deal()).map(|deal| deal.record.clone())
        else {
            return Err(failure("the lead has no CRM deal".to_owned(), true));
        };
        let Some(source) = self.sources.get(&lead.fields.source) else {
            return Err(failure(format!("source «{}» is no longer configured", lead.fields.source), false));
        };
        let route = source.route_for(&lead.fields.routing);
        let Some(connector) = self.connectors.get(&route.destination) else {
            return Err(failure(format!("destination «{}» is not configured", route.destination), false));
        };
        if !connector.supports(Operation::AddNote) {
            let message =
                format!("destination «{}» takes no notes (no add_message call is configured)", route.destination);
            return Err(failure(message, true));
        }
        let text = match claim.payload["title"].as_str().filter(|title| !title.is_empty()) {
            Some(title) => format!("{title}\n{}", claim.payload["text"].as_str().unwrap_or_default()),
            None => claim.payload["text"].as_str().unwrap_or_default().to_owned(),
        };
        match connector.add_note(&lead, &route, &deal, &text, &mut Vec::new()).await {
            Ok(Some(_)) => Ok(200),
            Ok(None) => Err(failure("the CRM's message template has nothing to write for this note".to_owned(), true)),
            Err(error) => Err(failure(error.to_string(), matches!(error, DeliveryError::Rejected(_)))),
        }
    }

    async fn send_email(&self, claim: &FeedbackClaim) -> Result<u16, Failure> {
        let Some(mailer) = &self.mailer else {
            // The [smtp] section was removed after this was owed; it waits for it to return.
            return Err(Failure {
                message: "no [smtp] section is configured".to_owned(),
                status: None,
                permanent: false,
            });
        };
        let text = |key: &str| claim.payload[key].as_str().unwrap_or_default().to_owned();
        let to: Vec<String> = claim.payload["to"]
            .as_array()
            .map(|addresses| addresses.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default();
        mailer.send(&to, &text("subject"), &text("body")).await.map(|()| 250).map_err(|error| Failure {
            permanent: error.is_permanent(),
            message: error.to_string(),
            status: None,
        })
    }
}
