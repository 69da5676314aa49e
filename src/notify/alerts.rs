//! The alert task: each round, alerts operators to conditions that hold and tells them once when one ends.
//!
//! Alert state lives in the database: a node sends an alert only after its conditional update
//! claimed it, so nodes sharing a PostgreSQL never both send one, and a condition that lasts is
//! alerted again only after `repeat_after`. An alert that could not be sent is given back and
//! tried again next round.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::alert_conditions::{Condition, ConditionKind, conditions_now, moment, resolved_summary};
use super::callback::CallbackSender;
use super::email::Mailer;
use crate::config::{AlertsConfig, SourceConfig};
use crate::domain::SourceId;
use crate::store::{Store, StoreError};

pub struct AlertWorker {
    pub store: Store,
    pub sources: Arc<BTreeMap<SourceId, SourceConfig>>,
    pub config: AlertsConfig,
    pub webhook: CallbackSender,
    /// `None` without `[smtp]`; configuration checks refuse alert e-mails then.
    pub mailer: Option<Mailer>,
}

/// One message to the operators.
#[derive(Debug)]
struct Alert {
    firing: bool,
    key: String,
    kind: ConditionKind,
    source: Option<String>,
    destination: Option<String>,
    summary: String,
    since: DateTime<Utc>,
    occurred_at: DateTime<Utc>,
}

impl AlertWorker {
    /// Runs a round at start and then every `check_every`, until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(self.config.check_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            if let Err(error) = self.check_round().await {
                tracing::warn!(%error, "could not check the alert conditions; trying again next round");
            }
        }
    }

    /// Sends what is due now: firing alerts for conditions that hold, resolved messages for
    /// those that ended.
    ///
    /// # Errors
    /// When the database cannot be read or written.
    pub async fn check_round(&self) -> Result<(), StoreError> {
        let now = Utc::now();
        // Read before the conditions: a condition another node opens in between is not taken
        // for one that ended.
        let open = self.store.open_alerts().await?;
        let conditions = conditions_now(&self.store, &self.sources, &self.config, now).await?;
        let holding: HashSet<String> = conditions.iter().map(Condition::key).collect();
        for condition in conditions {
            let key = condition.key();
            let Some(claim) = self.store.claim_firing_alert(&key, now, self.config.repeat_after).await? else {
                continue;
            };
            let alert = Alert {
                firing: true,
                key,
                kind: condition.kind,
                source: condition.source,
                destination: condition.destination,
                summary: condition.summary,
                since: condition.since,
                occurred_at: now,
            };
            if !self.send(&alert).await {
                self.store.unclaim_firing_alert(&alert.key, &claim).await?;
            }
        }
        for key in open.into_iter().filter(|key| !holding.contains(key)) {
            let Some(ended) = self.store.claim_ended_alert(&key, now).await? else { continue };
            let Some((kind, source, destination)) = Condition::parse_key(&key) else { continue };
            // Nobody heard of a condition that ended before its alert went out.
            if ended.last_sent.is_none() {
                continue;
            }
            let alert = Alert {
                firing: false,
                summary: resolved_summary(kind, source.as_deref(), destination.as_deref(), &self.config),
                key,
                kind,
                source,
                destination,
                since: ended.first_seen,
                occurred_at: now,
            };
            if !self.send(&alert).await {
                self.store.unclaim_ended_alert(&alert.key, now).await?;
            }
        }
        Ok(())
    }

    /// Sends the alert by e-mail and webhook; false when either failed (both are sent again).
    #[tracing::instrument(skip_all, fields(alert = %alert.key, firing = alert.firing))]
    async fn send(&self, alert: &Alert) -> bool {
        let mut sent = true;
        if !self.config.email.is_empty()
            && let Some(mailer) = &self.mailer
        {
            let to: Vec<String> = self.config.email.iter().map(ToString::to_string).collect();
            if let Err(error) = mailer.send(&to, &alert.subject(), &alert.body()).await {
                tracing::warn!(%error, "the alert e-mail was not sent; trying again next round");
                sent = false;
            }
        }
        if let Some(url) = &self.config.webhook {
            let body = serde_json::to_vec(&alert.webhook_body()).unwrap_or_default();
            let secrets: Vec<_> = self.config.webhook_secret.iter().cloned().collect();
            if let Err(error) = self.webhook.send(url, &alert.message_id(), body, &secrets).await {
                tracing::warn!(%error, "the alert webhook was not delivered; trying again next round");
                sent = false;
            }
        }
        if sent {
            tracing::info!("alert sent");
        }
        sent
    }
}

impl Alert {
    fn subject(&self) -> String {
        let state = if self.firing { "ALERT" } else { "RESOLVED" };
        format!("[leadgate] {state}: {}", self.key)
    }

    fn body(&self) -> String {
        let mut body = format!("{}.\n\nCondition: {}\n", capitalized(&self.summary), self.key);
        if let Some(source) = &self.source {
            body.push_str(&format!("Source: {source}\n"));
        }
        if let Some(destination) = &self.destination {
            body.push_str(&format!("Destination: {destination}\n"));
        }
        if self.firing {
            body.push_str(&format!("Since: {}\nChecked at: {}\n", moment(self.since), moment(self.occurred_at)));
            body.push_str("\nWhile the condition lasts, this alert is repeated at most once per repeat_after.\n");
        } else {
            body.push_str(&format!("Began: {}\nResolved at: {}\n", moment(self.since), moment(self.occurred_at)));
        }
        body
    }

    fn webhook_body(&self) -> serde_json::Value {
        json!({
            "type": if self.firing { "alert.firing" } else { "alert.resolved" },
            "key": self.key,
            "condition": self.kind.as_str(),
            "source": self.source,
            "destination": self.destination,
            "summary": self.summary,
            "since": self.since,
            "occurred_at": self.occurred_at,
        })
    }

    /// One per message made: a repeat of a lasting condition, or a send tried again next round,
    /// is a new message with its own `occurred_at`. The key is hashed to fit a header.
    fn message_id(&self) -> String {
        let digest = Sha256::digest(self.key.as_bytes());
        let key: String = digest.iter().take(8).map(|byte| format!("{byte:02x}")).collect();
        let state = if self.firing { "firing" } else { "resolved" };
        format!("alert_{key}_{state}_{}", self.occurred_at.timestamp_millis())
    }
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
}
