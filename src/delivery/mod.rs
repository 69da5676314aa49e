//! Decide and deliver one claimed lead, then commit what happened: outcome, retry, or dead.

mod call_flow;
mod flow;
mod journal;
mod retry;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;
use serde_json::json;
use tokio::sync::Notify;

use crate::config::{Route, SourceConfig, SourceKind, WorkerConfig};
use crate::connectors::{Connector, Connectors, DeliveryError};
use crate::domain::{HistoryEvent, Lead, Outcome, SourceId};
use crate::notify::templates::EmailContext;
use crate::notify::visitor_email::VisitorEmailContext;
use crate::pbx::recording_link::RecordingLinks;
use crate::store::{AttemptCount, Claim, FeedbackKind, FileStore, Lease, OwedFeedback, Store, StoreError};
use call_flow::{CallDelivery, Settled};
use flow::Delivery;
pub use flow::Flow;
use journal::Journal;
pub use retry::{backoff, lead_retry_delay};

/// Everything a worker needs to take a lead from claimed to settled.
#[derive(Clone)]
pub struct Deliverer {
    pub store: Store,
    pub connectors: Connectors,
    pub sources: Arc<BTreeMap<SourceId, SourceConfig>>,
    pub worker: WorkerConfig,
    /// Where website leads' files are, for CRMs that take uploads.
    pub files: FileStore,
    /// Woken when an outcome commits feedback to send.
    pub feedback_wake: Arc<Notify>,
    /// Call notes link to recordings through this gateway.
    pub recording_links: RecordingLinks,
}

impl Deliverer {
    /// Settles one claimed lead. Never fails: whatever happens is written to the lead, and
    /// when even that is impossible the lease runs out and the lead is claimed again.
    #[tracing::instrument(skip_all, fields(lead.id = %claim.lead.id, source = %claim.lead.fields.source))]
    pub async fn deliver(&self, claim: Claim) {
        // A step may outlast the lease (a slow CRM, a wait for the rate budget); the lease is
        // renewed meanwhile, and if it is lost anyway, the attempt stops where it is.
        let written = tokio::select! {
            written = self.attempt(&claim) => written,
            lost = self.hold_lease(&claim.lease) => Err(lost),
        };
        match written {
            Ok(()) => {}
            Err(StoreError::LeaseLost(id)) => {
                tracing::warn!(lead.id = %id, "another worker took the lead over; stopping")
            }
            Err(error) => {
                tracing::error!(%error, "could not record the attempt; the lead returns when its lease expires")
            }
        }
    }

    /// Renews the lease every third of its length; returns only when it cannot.
    async fn hold_lease(&self, lease: &Lease) -> StoreError {
        loop {
            tokio::time::sleep(self.worker.lease / 3).await;
            if let Err(error) = self.store.extend_lease(lease, self.worker.lease).await {
                return error;
            }
        }
    }

    async fn attempt(&self, claim: &Claim) -> Result<(), StoreError> {
        let lead = &claim.lead;
        let mut journal = Journal::new(&self.store, &claim.lease, self.worker.lease, claim.progress.clone());
        journal.note(HistoryEvent::now("claimed", json!({ "attempt": lead.attempt + 1 })));
        let (source, route, connector) = match self.route_of(lead) {
            Ok(found) => found,
            Err(reason) => {
                return self.settle_failure(claim, DeliveryError::Misconfigured(reason), journal.take_events()).await;
            }
        };
        let earlier = match journal.earlier_progress() {
            Ok(earlier) => earlier,
            Err(unreadable) => {
                let message = unreadable.to_string();
                tracing::error!(error = %message, "the lead is dead until re-sent");
                let mut events = journal.take_events();
                events.push(HistoryEvent::now("dead", json!({ "error": message })));
                return self.store.mark_dead(&claim.lease, &message, &events).await;
            }
        };
        let settled = match (&source.kind, &lead.fields.call) {
            (SourceKind::Telephony(telephony), Some(call)) => {
                // Played through the PBX's API, so only a source that has one gets a link.
                let recording_link =
                    (call.recording.is_some() && telephony.api.is_some()).then(|| self.recording_links.link(lead.id));
                let delivery = CallDelivery {
                    lead,
                    call,
                    telephony,
                    route: &route,
                    connector,
                    recording_link,
                    journal: &mut journal,
                };
                delivery.run(earlier).await
            }
            _ => {
                let flow = Flow::of(&source.kind);
                let files = &self.files;
                let delivery = Delivery { lead, route: &route, flow, connector, files, journal: &mut journal };
                delivery.run(earlier).await.map(Settled::Done)
            }
        };
        match settled {
            Ok(Settled::Done(outcome)) => self.complete(claim, &outcome, source, journal.take_events()).await,
            Ok(Settled::Parked { until }) => {
                let waiting = "waiting for a contact with this number to appear in the CRM";
                self.store
                    .reschedule(&claim.lease, until, AttemptCount::NotCounted, waiting, &journal.take_events())
                    .await
            }
            Err(error) => self.settle_failure(claim, error, journal.take_events()).await,
        }
    }

    /// Commits the outcome with the feedback it owes, and wakes the feedback worker.
    async fn complete(
        &self,
        claim: &Claim,
        outcome: &Outcome,
        source: &SourceConfig,
        mut events: Vec<HistoryEvent>,
    ) -> Result<(), StoreError> {
        let decided =
            HistoryEvent::now(outcome.decision.status().as_str(), serde_json::to_value(outcome).unwrap_or_default());
        events.push(decided);
        let deal = outcome.deal().map(|deal| &deal.record);
        // The decision as the API spells it (`new_client`), the deal's id bare.
        let decision = serde_json::to_value(outcome.decision).ok();
        let decision = decision.as_ref().and_then(serde_json::Value::as_str).unwrap_or_default();
        match deal {
            Some(deal) => tracing::info!(decision, deal = %deal.id, "lead delivered"),
            None => tracing::info!(decision, "lead delivered"),
        }
        let feedback = owed_feedback(&claim.lead, outcome, source);
        self.store.complete(&claim.lease, outcome, &events, &feedback).await?;
        let status = outcome.decision.status().as_str();
        crate::metrics::lead_settled(&claim.lead.fields.source.0, status, claim.lead.created_at);
        if !feedback.is_empty() {
            self.feedback_wake.notify_one();
        }
        Ok(())
    }

    /// The lead's source, its route (an advertiser's overrides over the source's), and the
    /// connector, or why they are missing from the configuration.
    fn route_of(&self, lead: &Lead) -> Result<(&SourceConfig, Route, &Connector), String> {
        let source = self
            .sources
            .get(&lead.fields.source)
            .ok_or_else(|| format!("source «{}» is no longer configured", lead.fields.source))?;
        let route = source.route_for(&lead.fields.routing);
        let connector = self
            .connectors
            .get(&route.destination)
            .ok_or_else(|| format!("destination «{}» is not configured", route.destination))?;
        Ok((source, route, connector))
    }

    /// Sends the lead back to the queue, or makes it `dead` when the CRM refused its data or its
    /// source's retry policy is spent.
    async fn settle_failure(
        &self,
        claim: &Claim,
        error: DeliveryError,
        mut events: Vec<HistoryEvent>,
    ) -> Result<(), StoreError> {
        let lead = &claim.lead;
        let message = error.to_string();
        let policy = self.sources.get(&lead.fields.source).map(|source| source.retry).unwrap_or_default();
        let (delay, count) = match &error {
            DeliveryError::Store(StoreError::LeaseLost(id)) => return Err(StoreError::LeaseLost(*id)),
            DeliveryError::Rejected(_) => {
                tracing::warn!(error = %message, "the CRM rejected the lead; it is dead until re-sent");
                events.push(HistoryEvent::now("dead", json!({ "error": message })));
                self.store.mark_dead(&claim.lease, &message, &events).await?;
                crate::metrics::lead_settled(&lead.fields.source.0, "dead", lead.created_at);
                return Ok(());
            }
            DeliveryError::RateLimited { retry_in } | DeliveryError::Blocked { retry_in } => {
                (*retry_in, AttemptCount::NotCounted)
            }
            DeliveryError::Unavailable(_)
            | DeliveryError::Unauthorized(_)
            | DeliveryError::Misconfigured(_)
            | DeliveryError::Store(_) => {
                (lead_retry_delay(policy.schedule, &self.worker, lead.attempt + 1), AttemptCount::Counted)
            }
        };
        let retry_at = Utc::now() + delay;
        let gives_up_at = lead.created_at + policy.max_age;
        if retry_at > gives_up_at {
            let attempts = lead.attempt + i64::from(count == AttemptCount::Counted);
            let message =
                format!("the retry policy is spent after {attempts} failed attempt(s); last error: {message}");
            tracing::warn!(error = %message, "the lead is dead until re-sent");
            events.push(HistoryEvent::now("dead", json!({ "error": message })));
            self.store.mark_dead(&claim.lease, &message, &events).await?;
            crate::metrics::lead_settled(&lead.fields.source.0, "dead", lead.created_at);
            return Ok(());
        }
        tracing::warn!(error = %message, %retry_at, "delivery attempt failed; the lead is queued again");
        events.push(HistoryEvent::now(
            "retry_scheduled",
            json!({ "error": message, "retry_at": retry_at, "counted": count == AttemptCount::Counted }),
        ));
        self.store.reschedule(&claim.lease, retry_at, count, &message, &events).await?;
        crate::metrics::lead_retried(&lead.fields.source.0, error.kind());
        Ok(())
    }
}

/// Why a source's leads cannot go to its destination: the operations its flow needs that the
/// destination lacks, in words for `config check` and for a refused start.
pub fn unsupported_route(source: &SourceConfig, connector: &Connector) -> Option<String> {
    let missing = Flow::of(&source.kind).unsupported_by(connector);
    if missing.is_empty() {
        return None;
    }
    let missing: Vec<String> = missing.iter().map(ToString::to_string).collect();
    Some(format!(
        "destination «{}» cannot {}, which leads of this source need",
        source.route.destination,
        missing.join(", ")
    ))
}

/// The answers an outcome owes, committed with it and delivered by the feedback worker: the
/// callback to the sender, the e-mail to the team and the advertiser's copy of it, the visitor's
/// e-mail with the number, each fixed now so every retry is identical.
fn owed_feedback(lead: &Lead, outcome: &Outcome, source: &SourceConfig) -> Vec<OwedFeedback> {
    let fields = &lead.fields;
    let unique = outcome.decision.is_unique_client();
    let mut owed = Vec::new();
    if let Some(url) = &fields.callback_url {
        let messages = &source.feedback.messages;
        let mut body = json!({
            "id": lead.id,
            "status": outcome.decision.status().as_str(),
            "unique": unique,
            "message": if unique { &messages.unique } else { &messages.not_unique },
            "contact_id": outcome.contact().map(|contact| contact.record.id_json()),
            "deal_id": outcome.deal().map(|deal| deal.record.id_json()),
            "occurred_at": Utc::now(),
        });
        if let Some(number) = outcome.deal().and_then(|deal| deal.record.number.as_ref()) {
            body["deal_number"] = json!(number);
        }
        let payload = json!({ "url": url, "source": fields.source, "body": body });
        owed.push(OwedFeedback { kind: FeedbackKind::Callback, payload, only_if_committed_after: None });
    }
    owed.extend(visitor_email(lead, outcome, source));
    // The advertiser's copy is a message of its own: the team's addresses and the advertiser's
    // are not each other's business, and one `To:` would show every address to everyone.
    let team: Vec<&str> = source.feedback.notify.iter().map(|address| address.as_str()).collect();
    let advertiser: Vec<&str> = fields
        .routing
        .advertiser_email
        .iter()
        .map(|address| address.as_str())
        .filter(|address| !team.iter().any(|member| member.eq_ignore_ascii_case(address)))
        .collect();
    if team.is_empty() && advertiser.is_empty() {
        return owed;
    }
    match source.feedback.email.render(&email_context(lead, outcome)) {
        Ok(email) => {
            for recipients in [team, advertiser].into_iter().filter(|recipients| !recipients.is_empty()) {
                let payload = json!({ "to": recipients, "subject": email.subject, "body": email.body });
                owed.push(OwedFeedback { kind: FeedbackKind::Email, payload, only_if_committed_after: None });
            }
        }
        // Templates are checked at start-up, so this is a value the template cannot show;
        // the outcome must still commit.
        Err(error) => tracing::error!(%error, "could not render the notification e-mail; it is not sent"),
    }
    owed
}

/// The visitor's e-mail with the number of their request, a message of its own to their address
/// alone. It is owed only when the outcome commits after the visitor's answer stopped waiting
/// for it (`Lead::answer_deadline`), which the store decides at the commit: an answer that
/// showed the number needs no e-mail.
fn visitor_email(lead: &Lead, outcome: &Outcome, source: &SourceConfig) -> Option<OwedFeedback> {
    let wait = source.wait_for_crm()?;
    let templates = wait.visitor_email.as_ref()?;
    let address = lead.fields.email.as_ref()?;
    let number = outcome.deal_number()?;
    let fields = &lead.fields;
    let context = VisitorEmailContext {
        number: number.to_owned(),
        lead_id: lead.id.0,
        source: fields.source.0.clone(),
        name: fields.name.clone(),
        phone: fields.phone.e164().to_owned(),
        email: address.as_str().to_owned(),
        comment: fields.comment.clone(),
        fields: fields.payload.as_object().cloned().unwrap_or_default(),
        deal_url: outcome.deal().and_then(|deal| deal.url.clone()),
    };
    match templates.render(&context) {
        Ok(email) => Some(OwedFeedback {
            kind: FeedbackKind::Email,
            payload: json!({ "to": [address.as_str()], "subject": email.subject, "body": email.body }),
            only_if_committed_after: Some(lead.answer_deadline(wait.wait)),
        }),
        // As with the team's e-mail: checked at start-up, and the outcome must still commit.
        Err(error) => {
            tracing::error!(%error, "could not render the visitor's e-mail; it is not sent");
            None
        }
    }
}

/// What the notification e-mail's templates can show of this lead and its outcome.
fn email_context(lead: &Lead, outcome: &Outcome) -> EmailContext {
    let fields = &lead.fields;
    EmailContext {
        lead_id: lead.id.0,
        source: fields.source.0.clone(),
        name: fields.name.clone(),
        phone: fields.phone.e164().to_owned(),
        phone_raw: fields.phone.raw().to_owned(),
        email: fields.email.as_ref().map(|email| email.as_str().to_owned()),
        comment: fields.comment.clone(),
        fields: fields.payload.as_object().cloned().unwrap_or_default(),
        unique: outcome.decision.is_unique_client(),
        decision: outcome.decision.as_str().to_owned(),
        contact_url: outcome.contact().and_then(|contact| contact.url.clone()),
        deal_url: outcome.deal().and_then(|deal| deal.url.clone()),
    }
}
