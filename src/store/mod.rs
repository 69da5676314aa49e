//! Store: where a lead is committed before it is acknowledged, and the queue the worker claims from.
//!
//! One contract in domain terms; `Store` is an enum over the backends so callers never carry
//! database generics. SQLite is the embedded default; PostgreSQL joins as a second variant.

pub mod advertisers;
pub mod alerts;
pub mod calls;
pub mod console;
pub mod copy;
pub mod dashboard;
mod error;
pub mod files;
mod group_commit;
pub mod lifecycle;
pub mod overview;
mod postgres;
mod postgres_budget;
mod queries;
mod queue;
mod rows;
mod sqlite;
pub mod stats;

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::StoreConfig;
use crate::domain::{HistoryEvent, Lead, LeadId, LeadStatus, NewLead, Outcome, Routing, SourceId};
pub use files::FileStore;
pub use group_commit::LeadWriter;
pub use postgres::{NEW_LEADS_CHANNEL, PostgresStore};
pub use postgres_budget::{SharedRateBudget, SharedSlot};
pub use sqlite::{SoleUse, SoleUseError, SqliteStore, lock_unused};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error")]
    Database(#[source] sqlx::Error),
    /// The database cannot take the call now: locked by another program, full, read-only,
    /// unreachable, or too slow to hand out a connection. Nothing of the call was stored, and
    /// the same call can succeed later.
    #[error("the database is unavailable")]
    Unavailable(#[source] sqlx::Error),
    #[error("could not apply the database migrations")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// Another worker owns the lead now (our lease expired and it was claimed again):
    /// whatever we were doing must stop without writing.
    #[error("the lease on lead {0} was lost")]
    LeaseLost(LeadId),
    #[error("the store is shutting down")]
    Closed,
    #[error("the transaction committing this lead failed: {0}")]
    BatchFailed(String),
    /// The transaction committing this lead found the database unavailable; nothing was stored.
    #[error("the database was unavailable to the transaction committing this lead: {0}")]
    BatchUnavailable(String),
    #[error("stored data could not be read: {0}")]
    Corrupt(String),
    /// Only `serve` and `migrate` create a database; other commands refuse to start a fresh,
    /// empty one where an operator expected their leads.
    #[error(
        "there is no database at {}: run `leadgate serve` or `leadgate migrate` to create one, \
         or point [store] url at the existing database", .0.display()
    )]
    Missing(std::path::PathBuf),
    /// `leadgate restore` holds the database file while it replaces it.
    #[error("the database at {} is being restored from a backup; try again when that is done", .0.display())]
    BeingRestored(std::path::PathBuf),
    /// A newer leadgate has migrated the database: running this one could corrupt its data.
    #[error(
        "the database was migrated by a newer leadgate (it has migration {0}, which this version does not know); \
         run the newer version, or restore a backup taken before the upgrade"
    )]
    NewerDatabase(i64),
}

/// Applies the embedded migrations, refusing a database that a newer version has migrated.
async fn apply_migrations<'a, A>(migrator: &sqlx::migrate::Migrator, pool: A) -> Result<(), StoreError>
where
    A: sqlx::Acquire<'a>,
    <A::Connection as std::ops::Deref>::Target: sqlx::migrate::Migrate,
{
    match migrator.run(pool).await {
        Err(sqlx::migrate::MigrateError::VersionMissing(version)) => Err(StoreError::NewerDatabase(version)),
        other => other.map_err(StoreError::from),
    }
}

/// The columns every read of a lead selects, in `LeadRow`'s order.
pub(super) const LEAD_COLUMNS: &str = "id, source_id, external_id, name, phone, phone_raw, email, comment, callback_url, \
     payload, status, run_at, attempt, lease_token, progress, decision, entities, last_error, created_at, \
     updated_at, advertiser_id, route_destination, route_pipeline, route_status, advertiser_email, origin_time, deal_spec, call_spec, erased_at";

pub(super) fn lease_token() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// A website lead's deal as stored: JSON, or nothing when the lead has none.
pub(super) fn deal_spec_text(lead: &NewLead) -> Option<String> {
    (!lead.deal.is_empty()).then(|| serde_json::to_string(&lead.deal).unwrap_or_default())
}

/// The result of committing a new lead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    New(LeadId),
    /// The source had already sent a lead with this external id.
    Existing {
        id: LeadId,
        same_payload: bool,
    },
    /// The duplicate check found this client's earlier lead still on its way; nothing was stored
    /// but the repeat in that lead's history (and the note it asked for).
    Duplicate {
        id: LeadId,
    },
}

impl Inserted {
    /// The lead the request is answered with: the new one, or the earlier one it repeats.
    pub fn id(self) -> LeadId {
        match self {
            Self::New(id) | Self::Existing { id, .. } | Self::Duplicate { id } => id,
        }
    }
}

/// A lead taken by a worker, and the proof (`token`) that it is still ours.
#[derive(Debug, Clone)]
pub struct Claim {
    pub lead: Lead,
    pub lease: Lease,
    /// The connector's journal of finished steps from earlier attempts.
    pub progress: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub lead_id: LeadId,
    pub token: String,
}

/// Feedback an outcome owes, written in the same transaction as the outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OwedFeedback {
    pub kind: FeedbackKind,
    pub payload: serde_json::Value,
    /// Owed only when the outcome commits later than this (the visitor's e-mail, owed only when
    /// the waiting answer could not show the number); the store decides against the moment it
    /// stamps inside the committing transaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only_if_committed_after: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedbackKind {
    Callback,
    Email,
    /// A note for the lead's CRM deal: `{"title": …, "text": …}`.
    DealNote,
}

impl FeedbackKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Callback => "callback",
            Self::Email => "email",
            Self::DealNote => "deal_note",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [Self::Callback, Self::Email, Self::DealNote].into_iter().find(|kind| kind.as_str() == text)
    }
}

/// Feedback as the outbox holds it, with how its delivery went so far.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredFeedback {
    pub kind: FeedbackKind,
    pub payload: serde_json::Value,
    /// `pending`, `sending`, `delivered` or `failed`.
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
}

/// An outbox row taken by the feedback worker.
#[derive(Debug, Clone)]
pub struct FeedbackClaim {
    pub lead_id: LeadId,
    pub kind: FeedbackKind,
    pub payload: serde_json::Value,
    /// Attempts made before this one.
    pub attempt: i64,
    pub created_at: DateTime<Utc>,
    pub lease: OutboxLease,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxLease {
    pub id: i64,
    pub token: String,
}

/// What asking to put a lead back in the queue (re-send a dead one, route an unrouted one) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requeue {
    Queued,
    /// The lead is in another status: still on its way, or settled.
    WrongStatus(LeadStatus),
    NotFound,
}

/// An OAuth2 token pair as persisted for a destination.
#[derive(Debug, Clone)]
pub struct StoredTokens {
    pub seeded_from: String,
    pub access_token: String,
    pub refresh_token: String,
    pub expires_at: DateTime<Utc>,
}

/// How a retry is recorded: CRM throttling and blocks are not the lead's failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptCount {
    Counted,
    NotCounted,
}

#[derive(Clone)]
pub enum Store {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

impl Store {
    /// Opens (creating if needed) the database and applies the embedded migrations.
    ///
    /// # Errors
    /// When the database cannot be opened or migrated.
    pub async fn open(config: &StoreConfig) -> Result<Self, StoreError> {
        if config.is_postgres() {
            Ok(Self::Postgres(PostgresStore::open(config).await?))
        } else {
            Ok(Self::Sqlite(SqliteStore::open(config, true).await?))
        }
    }

    /// Opens a database that must exist already, applying any migrations it lacks: for the
    /// commands other than `serve` and `migrate`, which must not leave an empty database
    /// behind when run in the wrong folder.
    ///
    /// # Errors
    /// `Missing` when there is no SQLite file at the configured path.
    pub async fn open_existing(config: &StoreConfig) -> Result<Self, StoreError> {
        if config.is_postgres() {
            Ok(Self::Postgres(PostgresStore::open(config).await?))
        } else {
            Ok(Self::Sqlite(SqliteStore::open(config, false).await?))
        }
    }

    /// The request budget of a CRM account as all nodes share it; `None` when this store serves
    /// one process (SQLite), whose budget in memory is the whole budget.
    pub fn shared_rate_budget(&self, destination: &str, requests_per_second: u32) -> Option<SharedRateBudget> {
        match self {
            Self::Sqlite(_) => None,
            Self::Postgres(store) => Some(SharedRateBudget::new(store.clone(), destination, requests_per_second)),
        }
    }

    /// Wakes `wake` whenever any node commits new leads, until `shutdown` (PostgreSQL's
    /// LISTEN); with SQLite the one process's own writer already does.
    pub fn wake_on_new_leads(
        &self,
        wake: std::sync::Arc<tokio::sync::Notify>,
        shutdown: tokio_util::sync::CancellationToken,
    ) {
        if let Self::Postgres(store) = self {
            tokio::spawn(store.clone().listen_for_new_leads(wake, shutdown));
        }
    }

    /// Commits every lead of `leads` in one transaction (group commit), in order.
    pub async fn insert_leads(&self, leads: &[NewLead]) -> Result<Vec<Inserted>, StoreError> {
        match self {
            Self::Sqlite(store) => store.insert_leads(leads).await,
            Self::Postgres(store) => store.insert_leads(leads).await,
        }
    }

    pub async fn find_lead(&self, id: LeadId) -> Result<Option<Lead>, StoreError> {
        match self {
            Self::Sqlite(store) => store.find_lead(id).await,
            Self::Postgres(store) => store.find_lead(id).await,
        }
    }

    pub async fn history(&self, id: LeadId) -> Result<Vec<HistoryEvent>, StoreError> {
        match self {
            Self::Sqlite(store) => store.history(id).await,
            Self::Postgres(store) => store.history(id).await,
        }
    }

    /// Takes up to `limit` due leads (pending and due, or processing with an expired lease),
    /// at most one per phone and none whose phone another worker is processing: two leads of
    /// one client decided at once would both find "no contact" and create two.
    pub async fn claim_due(&self, limit: usize, lease: Duration) -> Result<Vec<Claim>, StoreError> {
        match self {
            Self::Sqlite(store) => store.claim_due(limit, lease).await,
            Self::Postgres(store) => store.claim_due(limit, lease).await,
        }
    }

    /// Journals a finished CRM step (and the events since the last one) and extends the lease.
    ///
    /// # Errors
    /// `LeaseLost` when the lead is no longer ours; the caller must stop.
    pub async fn record_step(
        &self,
        lease: &Lease,
        progress: &serde_json::Value,
        events: &[HistoryEvent],
        extend_by: Duration,
    ) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(store) => store.record_step(lease, progress, events, extend_by).await,
            Self::Postgres(store) => store.record_step(lease, progress, events, extend_by).await,
        }
    }

    /// Keeps a lead ours while a long CRM step runs.
    ///
    /// # Errors
    /// `LeaseLost` when the lead is no longer ours.
    pub async fn extend_lease(&self, lease: &Lease, extend_by: Duration) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(store) => store.extend_lease(lease, extend_by).await,
            Self::Postgres(store) => store.extend_lease(lease, extend_by).await,
        }
    }

    /// Returns the lead to the queue, due at `run_at`.
    pub async fn reschedule(
        &self,
        lease: &Lease,
        run_at: DateTime<Utc>,
        count: AttemptCount,
        error: &str,
        events: &[HistoryEvent],
    ) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(store) => store.reschedule(lease, run_at, count, error, events).await,
            Self::Postgres(store) => store.reschedule(lease, run_at, count, error, events).await,
        }
    }

    /// Commits the outcome and the feedback it owes, atomically.
    pub async fn complete(
        &self,
        lease: &Lease,
        outcome: &Outcome,
        events: &[HistoryEvent],
        feedback: &[OwedFeedback],
    ) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(store) => store.complete(lease, outcome, events, feedback).await,
            Self::Postgres(store) => store.complete(lease, outcome, events, feedback).await,
        }
    }

    pub async fn mark_dead(&self, lease: &Lease, error: &str, events: &[HistoryEvent]) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(store) => store.mark_dead(lease, error, events).await,
            Self::Postgres(store) => store.mark_dead(lease, error, events).await,
        }
    }

    pub async fn owed_feedback(&self, id: LeadId) -> Result<Vec<StoredFeedback>, StoreError> {
        match self {
            Self::Sqlite(store) => store.owed_feedback(id).await,
            Self::Postgres(store) => store.owed_feedback(id).await,
        }
    }

    /// Takes up to `limit` due outbox rows (pending and due, or sending with an expired lease).
    pub async fn claim_feedback(&self, limit: usize, lease: Duration) -> Result<Vec<FeedbackClaim>, StoreError> {
        match self {
            Self::Sqlite(store) => store.claim_feedback(limit, lease).await,
            Self::Postgres(store) => store.claim_feedback(limit, lease).await,
        }
    }

    /// Records one delivery attempt of a claimed row: `status` is `delivered`, `pending` (with
    /// `retry_at`) or `failed`; `events` go into the lead's history in the same transaction.
    pub async fn settle_feedback(
        &self,
        claim: &FeedbackClaim,
        status: &str,
        retry_at: Option<DateTime<Utc>>,
        error: Option<&str>,
        events: &[HistoryEvent],
    ) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(store) => store.settle_feedback(claim, status, retry_at, error, events).await,
            Self::Postgres(store) => store.settle_feedback(claim, status, retry_at, error, events).await,
        }
    }

    /// Puts a dead lead back in the queue, or makes a pending one waiting for its next attempt
    /// due, now; its journal stays, so that finished CRM steps are not repeated.
    pub async fn resend(&self, id: LeadId, requested_by: &str) -> Result<Requeue, StoreError> {
        match self {
            Self::Sqlite(store) => store.resend(id, requested_by).await,
            Self::Postgres(store) => store.resend(id, requested_by).await,
        }
    }

    /// Gives an `unrouted` lead its advertiser's routing and queues it; other leads are left alone.
    pub async fn route_lead(&self, id: LeadId, routing: &Routing, requested_by: &str) -> Result<Requeue, StoreError> {
        match self {
            Self::Sqlite(store) => store.route_lead(id, routing, requested_by).await,
            Self::Postgres(store) => store.route_lead(id, routing, requested_by).await,
        }
    }

    /// Owes a note to the lead's CRM deal (see `FeedbackKind::DealNote`). Returns whether it is
    /// due now (the deal exists) or waits for the lead's delivery; `None` when there is no such lead.
    pub async fn queue_deal_note(&self, lead: LeadId, payload: &serde_json::Value) -> Result<Option<bool>, StoreError> {
        match self {
            Self::Sqlite(store) => store.queue_deal_note(lead, payload).await,
            Self::Postgres(store) => store.queue_deal_note(lead, payload).await,
        }
    }

    /// Pending leads whose next attempt is still to come (after a CRM outage, say).
    pub async fn waiting_leads(&self, source: Option<&SourceId>) -> Result<Vec<LeadId>, StoreError> {
        match self {
            Self::Sqlite(store) => store.waiting_leads(source).await,
            Self::Postgres(store) => store.waiting_leads(source).await,
        }
    }

    pub async fn dead_leads(&self, source: Option<&SourceId>) -> Result<Vec<LeadId>, StoreError> {
        match self {
            Self::Sqlite(store) => store.dead_leads(source).await,
            Self::Postgres(store) => store.dead_leads(source).await,
        }
    }

    /// The newest leads first, filtered by status and source.
    pub async fn list_leads(
        &self,
        status: Option<LeadStatus>,
        source: Option<&SourceId>,
        limit: usize,
    ) -> Result<Vec<Lead>, StoreError> {
        match self {
            Self::Sqlite(store) => store.list_leads(status, source, limit).await,
            Self::Postgres(store) => store.list_leads(status, source, limit).await,
        }
    }

    /// Returns the value stored under `name`, storing `generate()` first if there is none.
    pub async fn generated_setting(&self, name: &str, generate: impl FnOnce() -> String) -> Result<String, StoreError> {
        match self {
            Self::Sqlite(store) => store.generated_setting(name, generate).await,
            Self::Postgres(store) => store.generated_setting(name, generate).await,
        }
    }

    pub async fn load_tokens(&self, destination: &str) -> Result<Option<StoredTokens>, StoreError> {
        match self {
            Self::Sqlite(store) => store.load_tokens(destination).await,
            Self::Postgres(store) => store.load_tokens(destination).await,
        }
    }

    pub async fn save_tokens(&self, destination: &str, tokens: &StoredTokens) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(store) => store.save_tokens(destination, tokens).await,
            Self::Postgres(store) => store.save_tokens(destination, tokens).await,
        }
    }

    pub async fn count_by_status(&self, source: Option<&SourceId>) -> Result<Vec<(String, i64)>, StoreError> {
        match self {
            Self::Sqlite(store) => store.count_by_status(source).await,
            Self::Postgres(store) => store.count_by_status(source).await,
        }
    }
}

pub(crate) fn to_millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

pub(crate) fn from_millis(millis: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(millis).unwrap_or_default()
}
