//! The PostgreSQL backend, continued: the outbox of owed feedback, and operators' re-sends and listings.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{FromRow, Postgres, Transaction};

use super::postgres::{PostgresStore, insert_history, queue_deal_note_in};
use super::rows::LeadRow;
use super::{FeedbackClaim, FeedbackKind, OutboxLease, Requeue, StoreError, StoredFeedback, from_millis, to_millis};
use super::{LEAD_COLUMNS, lease_token};
use crate::domain::{HistoryEvent, Lead, LeadId, LeadStatus, Routing, SourceId};

#[derive(FromRow)]
struct OutboxRow {
    id: i64,
    lead_id: i64,
    kind: String,
    payload: String,
    status: String,
    attempt: i64,
    last_error: Option<String>,
    created_at: i64,
}

impl OutboxRow {
    fn kind(&self) -> Result<FeedbackKind, StoreError> {
        FeedbackKind::parse(&self.kind)
            .ok_or_else(|| StoreError::Corrupt(format!("outbox row {} has unknown kind «{}»", self.id, self.kind)))
    }

    fn payload(&self) -> Result<serde_json::Value, StoreError> {
        serde_json::from_str(&self.payload)
            .map_err(|_| StoreError::Corrupt(format!("outbox row {} is not JSON", self.id)))
    }
}

const OUTBOX_COLUMNS: &str = "id, lead_id, kind, payload, status, attempt, last_error, created_at";

impl PostgresStore {
    pub async fn claim_feedback(&self, limit: usize, lease: Duration) -> Result<Vec<FeedbackClaim>, StoreError> {
        let now = Utc::now();
        let token = lease_token();
        let sql = format!(
            "update outbox set status = 'sending', lease_until = $1, lease_token = $2
             where id in (
                 select id from outbox
                 where (status = 'pending' and run_at <= $3) or (status = 'sending' and lease_until <= $3)
                 order by run_at
                 limit $4
                 -- another node's claim holds its rows until it commits; they are not ours to take
                 for update skip locked)
             returning {OUTBOX_COLUMNS}"
        );
        let rows: Vec<OutboxRow> = sqlx::query_as(&sql)
            .bind(to_millis(now + lease))
            .bind(&token)
            .bind(to_millis(now))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(self.pool())
            .await?;
        rows.into_iter()
            .map(|row| {
                Ok(FeedbackClaim {
                    kind: row.kind()?,
                    payload: row.payload()?,
                    lead_id: LeadId(row.lead_id),
                    attempt: row.attempt,
                    created_at: from_millis(row.created_at),
                    lease: OutboxLease { id: row.id, token: token.clone() },
                })
            })
            .collect()
    }

    /// Settles a claimed outbox row: `delivered`, `pending` again at `retry_at`, or `failed`.
    pub async fn settle_feedback(
        &self,
        claim: &FeedbackClaim,
        status: &str,
        retry_at: Option<DateTime<Utc>>,
        error: Option<&str>,
        events: &[HistoryEvent],
    ) -> Result<(), StoreError> {
        let now = Utc::now();
        let mut tx = self.pool().begin().await?;
        let updated = sqlx::query(
            "update outbox set status = $1, run_at = coalesce($2, run_at), attempt = attempt + 1, last_error = $3,
                 delivered_at = case when $1 = 'delivered' then $4 else delivered_at end,
                 lease_until = null, lease_token = null
             where id = $5 and lease_token = $6 and status = 'sending'",
        )
        .bind(status)
        .bind(retry_at.map(to_millis))
        .bind(error)
        .bind(to_millis(now))
        .bind(claim.lease.id)
        .bind(&claim.lease.token)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            tx.rollback().await?;
            return Err(StoreError::LeaseLost(claim.lead_id));
        }
        insert_history(&mut tx, claim.lead_id, events).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn queue_deal_note(&self, lead: LeadId, payload: &serde_json::Value) -> Result<Option<bool>, StoreError> {
        let mut tx = self.pool().begin().await?;
        let queued = queue_deal_note_in(&mut tx, lead, payload).await?;
        tx.commit().await?;
        Ok(queued)
    }

    pub async fn owed_feedback(&self, id: LeadId) -> Result<Vec<StoredFeedback>, StoreError> {
        let rows: Vec<OutboxRow> =
            sqlx::query_as(&format!("select {OUTBOX_COLUMNS} from outbox where lead_id = $1 order by id"))
                .bind(id.0)
                .fetch_all(self.pool())
                .await?;
        rows.into_iter()
            .map(|row| {
                Ok(StoredFeedback {
                    kind: row.kind()?,
                    payload: row.payload()?,
                    status: row.status.clone(),
                    attempts: row.attempt,
                    last_error: row.last_error.clone(),
                })
            })
            .collect()
    }

    pub async fn resend(&self, id: LeadId, requested_by: &str) -> Result<Requeue, StoreError> {
        let mut tx = self.pool().begin().await?;
        let updated = sqlx::query(
            "update leads set status = 'pending', run_at = $1, attempt = 0, updated_at = $1
             where id = $2 and status = 'dead'",
        )
        .bind(to_millis(Utc::now()))
        .bind(id.0)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            return refused(tx, id).await;
        }
        let event = HistoryEvent::now("resend_requested", serde_json::json!({ "by": requested_by }));
        insert_history(&mut tx, id, std::slice::from_ref(&event)).await?;
        tx.commit().await?;
        Ok(Requeue::Queued)
    }

    /// Gives an unrouted lead its advertiser and route, and queues it.
    pub async fn route_lead(&self, id: LeadId, routing: &Routing, requested_by: &str) -> Result<Requeue, StoreError> {
        let mut tx = self.pool().begin().await?;
        let updated = sqlx::query(
            "update leads set status = 'pending', run_at = $1, updated_at = $1, advertiser_id = $2,
                 route_destination = $3, route_pipeline = $4, route_status = $5, advertiser_email = $6
             where id = $7 and status = 'unrouted'",
        )
        .bind(to_millis(Utc::now()))
        .bind(&routing.advertiser_id)
        .bind(&routing.destination)
        .bind(&routing.pipeline)
        .bind(&routing.status)
        .bind(routing.advertiser_email.as_ref().map(|email| email.as_str()))
        .bind(id.0)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            return refused(tx, id).await;
        }
        let event =
            HistoryEvent::now("routed", serde_json::json!({ "by": requested_by, "advertiser": routing.advertiser_id }));
        insert_history(&mut tx, id, std::slice::from_ref(&event)).await?;
        tx.commit().await?;
        Ok(Requeue::Queued)
    }

    pub async fn dead_leads(&self, source: Option<&SourceId>) -> Result<Vec<LeadId>, StoreError> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "select id from leads where status = 'dead' and ($1 is null or source_id = $1) order by id",
        )
        .bind(source.map(|source| source.0.as_str()))
        .fetch_all(self.pool())
        .await?;
        Ok(ids.into_iter().map(LeadId).collect())
    }

    pub async fn list_leads(
        &self,
        status: Option<LeadStatus>,
        source: Option<&SourceId>,
        limit: usize,
    ) -> Result<Vec<Lead>, StoreError> {
        let rows: Vec<LeadRow> = sqlx::query_as(&format!(
            "select {LEAD_COLUMNS} from leads
             where ($1 is null or status = $1) and ($2 is null or source_id = $2)
             order by id desc limit $3"
        ))
        .bind(status.map(LeadStatus::as_str))
        .bind(source.map(|source| source.0.as_str()))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(self.pool())
        .await?;
        rows.into_iter().map(Lead::try_from).collect()
    }
}

/// Why a lead was not queued again: its status, or that it does not exist.
async fn refused(mut tx: Transaction<'_, Postgres>, id: LeadId) -> Result<Requeue, StoreError> {
    let status: Option<String> =
        sqlx::query_scalar("select status from leads where id = $1").bind(id.0).fetch_optional(&mut *tx).await?;
    tx.rollback().await?;
    Ok(match status.as_deref().and_then(LeadStatus::parse) {
        Some(status) => Requeue::WrongStatus(status),
        None => Requeue::NotFound,
    })
}
