//! Row structs as the database returns them, and their conversion into domain types.

use sqlx::FromRow;

use super::{Claim, FeedbackClaim, FeedbackKind, Lease, OutboxLease, StoreError, from_millis};
use crate::domain::advertiser::{Advertiser, AdvertiserId, AdvertiserRoute};
use crate::domain::document::Document;
use crate::domain::{
    Decision, Email, HistoryEvent, Lead, LeadId, LeadStatus, NewLead, Outcome, Phone, Routing, SourceId,
};

#[derive(Debug, FromRow)]
pub struct LeadRow {
    pub id: i64,
    pub source_id: String,
    pub external_id: Option<String>,
    pub name: String,
    pub phone: String,
    pub phone_raw: String,
    pub email: Option<String>,
    pub comment: Option<String>,
    pub callback_url: Option<String>,
    pub payload: String,
    pub status: String,
    pub run_at: i64,
    pub attempt: i64,
    pub lease_token: Option<String>,
    pub progress: Option<String>,
    pub decision: Option<String>,
    pub entities: Option<String>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub advertiser_id: Option<String>,
    pub route_destination: Option<String>,
    pub route_pipeline: Option<String>,
    pub route_status: Option<String>,
    pub advertiser_email: Option<String>,
    pub origin_time: Option<i64>,
    pub deal_spec: Option<String>,
    pub call_spec: Option<String>,
    pub erased_at: Option<i64>,
}

#[derive(Debug, FromRow)]
pub struct HistoryRow {
    pub at: i64,
    pub kind: String,
    pub detail: Option<String>,
}

impl TryFrom<LeadRow> for Lead {
    type Error = StoreError;

    fn try_from(row: LeadRow) -> Result<Self, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("lead {}: {what}", row.id));
        let status = LeadStatus::parse(&row.status).ok_or_else(|| corrupt("unknown status"))?;
        let decision = row
            .decision
            .as_deref()
            .map(|text| serde_json::from_value::<Decision>(serde_json::Value::String(text.to_owned())))
            .transpose()
            .map_err(|_| corrupt("unknown decision"))?;
        let payload = serde_json::from_str(&row.payload).map_err(|_| corrupt("payload is not JSON"))?;
        let entities = row
            .entities
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(|_| corrupt("entities are not CRM records"))?
            .unwrap_or_default();
        let deal = row
            .deal_spec
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(|_| corrupt("deal_spec is not a deal"))?
            .unwrap_or_default();
        let call = row
            .call_spec
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(|_| corrupt("call_spec is not a call"))?;
        let callback_url =
            row.callback_url.as_deref().map(url::Url::parse).transpose().map_err(|_| corrupt("callback URL"))?;
        Ok(Lead {
            id: LeadId(row.id),
            fields: NewLead {
                source: SourceId(row.source_id),
                external_id: row.external_id,
                name: row.name,
                phone: Phone::from_stored(row.phone, row.phone_raw),
                email: row.email.map(Email::from_stored),
                comment: row.comment,
                callback_url,
                payload,
                routing: Routing {
                    advertiser_id: row.advertiser_id,
                    destination: row.route_destination,
                    pipeline: row.route_pipeline,
                    status: row.route_status,
                    advertiser_email: row.advertiser_email.map(Email::from_stored),
                    unrouted: status == LeadStatus::Unrouted,
                },
                origin_time: row.origin_time.map(from_millis),
                deal,
                skip_sending: status == LeadStatus::Skipped,
                duplicate_check: None,
                call,
            },
            status,
            attempt: row.attempt,
            run_at: from_millis(row.run_at),
            outcome: decision.map(|decision| Outcome { decision, entities }),
            last_error: row.last_error,
            created_at: from_millis(row.created_at),
            updated_at: from_millis(row.updated_at),
            erased_at: row.erased_at.map(from_millis),
        })
    }
}

impl From<HistoryRow> for HistoryEvent {
    fn from(row: HistoryRow) -> Self {
        Self {
            at: from_millis(row.at),
            kind: row.kind,
            detail: row.detail.and_then(|text| serde_json::from_str(&text).ok()).unwrap_or_default(),
        }
    }
}

#[derive(FromRow)]
pub struct OutboxRow {
    pub id: i64,
    pub lead_id: i64,
    pub kind: String,
    pub payload: String,
    pub status: String,
    pub attempt: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
}

impl LeadRow {
    /// The claimed lead, its lease under `token`, and the journal of its earlier attempts.
    pub fn into_claim(mut self, token: &str) -> Result<Claim, StoreError> {
        let progress = self.progress.take().map(|text| serde_json::from_str(&text)).transpose();
        let progress = progress.map_err(|_| StoreError::Corrupt(format!("lead {}: progress is not JSON", self.id)))?;
        let lead = Lead::try_from(self)?;
        Ok(Claim { lease: Lease { lead_id: lead.id, token: token.to_owned() }, lead, progress })
    }
}

impl OutboxRow {
    pub fn into_claim(self, token: &str) -> Result<FeedbackClaim, StoreError> {
        Ok(FeedbackClaim {
            kind: self.kind()?,
            payload: self.payload()?,
            lead_id: LeadId(self.lead_id),
            attempt: self.attempt,
            created_at: from_millis(self.created_at),
            lease: OutboxLease { id: self.id, token: token.to_owned() },
        })
    }

    pub fn kind(&self) -> Result<FeedbackKind, StoreError> {
        FeedbackKind::parse(&self.kind)
            .ok_or_else(|| StoreError::Corrupt(format!("outbox row {} has unknown kind «{}»", self.id, self.kind)))
    }

    pub fn payload(&self) -> Result<serde_json::Value, StoreError> {
        serde_json::from_str(&self.payload)
            .map_err(|_| StoreError::Corrupt(format!("outbox row {} is not JSON", self.id)))
    }
}

pub const OUTBOX_COLUMNS: &str = "id, lead_id, kind, payload, status, attempt, last_error, created_at";

#[derive(FromRow)]
pub struct AdvertiserRow {
    pub source_id: String,
    pub id: String,
    pub document: String,
    pub name: String,
    pub email: Option<String>,
    pub send_lead_email: bool,
    pub destination: Option<String>,
    pub pipeline: Option<String>,
    pub status: Option<String>,
    pub enabled: bool,
}

impl AdvertiserRow {
    pub fn into_advertiser(self, listings: Vec<String>) -> Advertiser {
        Advertiser {
            source: SourceId(self.source_id),
            id: AdvertiserId::from_stored(self.id),
            document: Document::from_stored(self.document),
            name: self.name,
            email: self.email.map(Email::from_stored),
            send_lead_email: self.send_lead_email,
            route: AdvertiserRoute { destination: self.destination, pipeline: self.pipeline, status: self.status },
            listings,
            enabled: self.enabled,
        }
    }
}

pub const ADVERTISER_COLUMNS: &str =
    "source_id, id, document, name, email, send_lead_email, destination, pipeline, status, enabled";
