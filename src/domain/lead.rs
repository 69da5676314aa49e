//! A lead, its life cycle, and the history that records every step of it.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use url::Url;

use super::call::Call;
use super::crm::{Entity, EntityKind};
use super::deal::{DealSpec, DuplicateCheck};
use super::{Email, Phone};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LeadId(pub i64);

impl fmt::Display for LeadId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(formatter)
    }
}

/// The configured name of a source (`[sources.<id>]`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SourceId(pub String);

impl fmt::Display for SourceId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// `pending` → `processing` → `approved` | `rejected`; errors send a lead back to `pending`
/// with a later `run_at`, and a lead the CRM refuses outright becomes `dead`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeadStatus {
    Pending,
    Processing,
    Approved,
    Rejected,
    Skipped,
    Dead,
    /// A portal lead whose advertiser is not known yet; it waits for an operator to route it.
    Unrouted,
}

impl LeadStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Processing => "processing",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Skipped => "skipped",
            Self::Dead => "dead",
            Self::Unrouted => "unrouted",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "pending" => Self::Pending,
            "processing" => Self::Processing,
            "approved" => Self::Approved,
            "rejected" => Self::Rejected,
            "skipped" => Self::Skipped,
            "dead" => Self::Dead,
            "unrouted" => Self::Unrouted,
            _ => return None,
        })
    }
}

/// A lead as accepted at the edge, before it has an id.
#[derive(Debug, Clone)]
pub struct NewLead {
    pub source: SourceId,
    /// The sender's own identity for this lead (`Idempotency-Key`, a portal's lead id):
    /// a second lead with the same one from the same source is the first lead again.
    pub external_id: Option<String>,
    pub name: String,
    pub phone: Phone,
    pub email: Option<Email>,
    pub comment: Option<String>,
    pub callback_url: Option<Url>,
    /// The request body exactly as received, extra fields included.
    pub payload: serde_json::Value,
    /// Where the lead goes when that is not simply its source's route (portal advertisers).
    pub routing: Routing,
    /// When the lead was made at its origin, if the sender says.
    pub origin_time: Option<DateTime<Utc>>,
    /// A website lead's deal: title, budget, tags, custom fields, files.
    pub deal: DealSpec,
    /// Stored as `skipped`, never sent to the CRM (the site asked so, or the form's switch is off).
    pub skip_sending: bool,
    /// Only at insert, never stored: whether a repeat of a lead still on its way is refused.
    pub duplicate_check: Option<DuplicateCheck>,
    /// A telephony source's lead is a finished call: the client is `phone`, this is the rest.
    pub call: Option<Box<Call>>,
}

impl NewLead {
    /// Where the lead starts: waiting for its advertiser, kept from the CRM, or queued.
    pub fn initial_status(&self) -> LeadStatus {
        if self.routing.unrouted {
            LeadStatus::Unrouted
        } else if self.skip_sending {
            LeadStatus::Skipped
        } else {
            LeadStatus::Pending
        }
    }
}

/// A portal lead's advertiser and what it overrides of the source's route.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routing {
    pub advertiser_id: Option<String>,
    pub destination: Option<String>,
    pub pipeline: Option<String>,
    pub status: Option<String>,
    /// The advertiser's own address, when it asked for a copy of each lead.
    pub advertiser_email: Option<Email>,
    /// No advertiser could be found: the lead is stored `unrouted` until an operator routes it.
    pub unrouted: bool,
}

/// A stored lead with its place in the life cycle.
#[derive(Debug, Clone)]
pub struct Lead {
    pub id: LeadId,
    pub fields: NewLead,
    pub status: LeadStatus,
    pub attempt: i64,
    pub run_at: DateTime<Utc>,
    pub outcome: Option<Outcome>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When the person's data was erased; the lead is then a tombstone of its source, dates and outcome.
    pub erased_at: Option<DateTime<Utc>>,
}

impl Lead {
    /// The moment a visitor's answer that waits up to `wait` for the CRM (`wait_for_crm`) stops
    /// looking: an outcome committed by then is shown in the answer, one committed later is
    /// e-mailed to the visitor instead.
    pub fn answer_deadline(&self, wait: Duration) -> DateTime<Utc> {
        self.created_at + wait
    }
}

impl From<super::advertiser::Advertiser> for Routing {
    /// A lead for this advertiser: its route overrides, and its address when it wants a copy.
    fn from(advertiser: super::advertiser::Advertiser) -> Self {
        Self {
            advertiser_id: Some(advertiser.id.as_str().to_owned()),
            destination: advertiser.route.destination,
            pipeline: advertiser.route.pipeline,
            status: advertiser.route.status,
            advertiser_email: advertiser.email.filter(|_| advertiser.send_lead_email),
            unrouted: false,
        }
    }
}

/// What the CRM told us about the client: the three cases of the partner flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Not in the CRM: a contact, a deal and a note were created.
    NewClient,
    /// In the CRM without a deal of the source's pipeline: nothing created.
    KnownClientWithoutDeal,
    /// In the CRM with a deal of the source's pipeline: that deal moved to the source's stage.
    KnownClientDealMoved,
    /// Portal flow: in the CRM without a deal of the pipeline: a deal and a note were created.
    KnownClientNewDeal,
    /// Portal flow: in the CRM with a deal of the pipeline: a note was added to it.
    KnownClientDealNoted,
    /// A call from or to a client the CRM knows: logged on the client's contact.
    CallLogged,
    /// A call with a number the CRM did not know: a contact (and maybe a deal) was made for it,
    /// and the call logged on it.
    CallAutoContact,
    /// A call that waited for a contact with its number, which appeared in time: logged on it.
    CallAttached,
    /// A call that waited for a contact with its number in vain: not logged.
    CallDropped,
}

impl Decision {
    pub const ALL: [Self; 9] = [
        Self::NewClient,
        Self::KnownClientWithoutDeal,
        Self::KnownClientDealMoved,
        Self::KnownClientNewDeal,
        Self::KnownClientDealNoted,
        Self::CallLogged,
        Self::CallAutoContact,
        Self::CallAttached,
        Self::CallDropped,
    ];

    /// The name the store, the API and the e-mail templates know the decision by.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NewClient => "new_client",
            Self::KnownClientWithoutDeal => "known_client_without_deal",
            Self::KnownClientDealMoved => "known_client_deal_moved",
            Self::KnownClientNewDeal => "known_client_new_deal",
            Self::KnownClientDealNoted => "known_client_deal_noted",
            Self::CallLogged => "call_logged",
            Self::CallAutoContact => "call_auto_contact",
            Self::CallAttached => "call_attached",
            Self::CallDropped => "call_dropped",
        }
    }

    pub fn status(self) -> LeadStatus {
        match self {
            Self::NewClient | Self::KnownClientNewDeal => LeadStatus::Approved,
            Self::KnownClientWithoutDeal | Self::KnownClientDealMoved | Self::KnownClientDealNoted => {
                LeadStatus::Rejected
            }
            Self::CallLogged | Self::CallAutoContact | Self::CallAttached => LeadStatus::Approved,
            Self::CallDropped => LeadStatus::Skipped,
        }
    }

    pub fn is_unique_client(self) -> bool {
        self == Self::NewClient
    }
}

/// The final answer for a lead, committed together with the feedback it owes: the decision and
/// every CRM record it made or touched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub decision: Decision,
    pub entities: Vec<Entity>,
}

impl Outcome {
    /// The client's contact.
    pub fn contact(&self) -> Option<&Entity> {
        self.entities.iter().find(|entity| entity.record.kind == EntityKind::Contact)
    }

    /// The deal or ticket the lead made or moved, which later notes go to.
    pub fn deal(&self) -> Option<&Entity> {
        self.entities.iter().find(|entity| entity.record.kind.is_deal())
    }

    /// The number people know the deal or ticket by: the CRM's own number when it gave one (a
    /// ticket's `T-000123`), else its id (amoCRM's deals have no other).
    pub fn deal_number(&self) -> Option<&str> {
        self.deal().map(|deal| deal.record.number.as_deref().unwrap_or(&deal.record.id))
    }
}

/// One entry of a lead's append-only history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEvent {
    pub at: DateTime<Utc>,
    /// `received`, `claimed`, `crm_call`, `decision`, `step`, `retry_scheduled`, `approved`, …
    pub kind: String,
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub detail: serde_json::Value,
}

impl HistoryEvent {
    pub fn now(kind: &str, detail: serde_json::Value) -> Self {
        Self { at: Utc::now(), kind: kind.to_owned(), detail }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::CrmRef;

    fn outcome_with(entities: Vec<Entity>) -> Outcome {
        Outcome { decision: Decision::NewClient, entities }
    }

    fn entity(kind: EntityKind, id: &str, number: Option<&str>) -> Entity {
        let record = CrmRef { kind, id: id.to_owned(), number: number.map(str::to_owned) };
        Entity { record, made: true, url: None }
    }

    #[test]
    fn the_number_shown_is_the_tickets_own_number_else_the_deals_id() {
        let ticket = outcome_with(vec![
            entity(EntityKind::Contact, "5", Some("C-5")),
            entity(EntityKind::Ticket, "123", Some("T-000123")),
        ]);
        assert_eq!(ticket.deal_number(), Some("T-000123"));
        let deal = outcome_with(vec![entity(EntityKind::Contact, "5", None), entity(EntityKind::Deal, "4242", None)]);
        assert_eq!(deal.deal_number(), Some("4242"));
        assert_eq!(outcome_with(vec![entity(EntityKind::Contact, "5", None)]).deal_number(), None);
    }

    #[test]
    fn a_decision_is_named_alike_in_json_and_in_the_store() {
        for decision in Decision::ALL {
            assert_eq!(serde_json::to_value(decision).expect("serialised"), decision.as_str());
        }
    }
}
