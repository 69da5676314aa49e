//! The PostgreSQL backend: several nodes share one queue; claims skip rows other nodes hold, and
//! new leads are announced with NOTIFY.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use std::sync::Arc;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use sqlx::{Postgres, QueryBuilder, Transaction};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::rows::{HistoryRow, LeadRow, decision_text};
use super::{
    AttemptCount, Claim, Inserted, LEAD_COLUMNS, Lease, OwedFeedback, StoreError, StoredTokens, deal_spec_text,
    from_millis, lease_token, to_millis,
};
use crate::config::StoreConfig;
use crate::domain::{HistoryEvent, Lead, LeadId, LeadStatus, NewLead, Outcome, SourceId};

/// The channel on which committed leads are announced to idle workers on every node.
pub const NEW_LEADS_CHANNEL: &str = "leadgate_new_leads";
/// The advisory lock claims take turns on (any fixed number; this one spells "LEAD").
const CLAIM_LOCK: i64 = 0x4c45_4144;

#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    pub(super) fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub async fn open(config: &StoreConfig) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(&config.url)?;
        let pool = PgPoolOptions::new().max_connections(config.max_connections).connect_with(options).await?;
        super::apply_migrations(&sqlx::migrate!("./migrations/postgres"), &pool).await?;
        Ok(Self { pool })
    }

    /// Relays NOTIFYs of new leads to this node's idle workers; reconnects when the connection drops.
    pub async fn listen_for_new_leads(self, wake: Arc<Notify>, shutdown: CancellationToken) {
        loop {
            let listening = async {
                let mut listener = PgListener::connect_with(&self.pool).await?;
                listener.listen(NEW_LEADS_CHANNEL).await?;
                loop {
                    listener.recv().await?;
                    wake.notify_one();
                }
            };
            let stopped: Result<(), sqlx::Error> = tokio::select! {
                () = shutdown.cancelled() => return,
                result = listening => result,
            };
            if let Err(error) = stopped {
                tracing::warn!(%error, "lost the new-lead notifications; polling until they are back");
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    pub async fn insert_leads(&self, leads: &[NewLead]) -> Result<Vec<Inserted>, StoreError> {
        let mut tx = self.pool.begin().await?;
        // As in SQLite: leads that cannot conflict go in as one statement, the others one by one.
        let (plain, keyed): (Vec<usize>, Vec<usize>) = (0..leads.len())
            .partition(|&index| leads[index].external_id.is_none() && leads[index].duplicate_check.is_none());
        let mut results = vec![None; leads.len()];
        let plain_ids = insert_plain_leads(&mut tx, plain.iter().map(|&index| &leads[index])).await?;
        for (index, id) in plain.into_iter().zip(plain_ids) {
            results[index] = Some(Inserted::New(id));
        }
        for index in keyed {
            results[index] = Some(insert_lead(&mut tx, &leads[index]).await?);
        }
        if results.iter().any(|result| matches!(result, Some(Inserted::New(_)))) {
            // Delivered to every listening node when, and only if, the leads commit.
            sqlx::query("select pg_notify($1, '')").bind(NEW_LEADS_CHANNEL).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(results.into_iter().map(|result| result.expect("every lead was inserted")).collect())
    }

    pub async fn find_lead(&self, id: LeadId) -> Result<Option<Lead>, StoreError> {
        let row: Option<LeadRow> = sqlx::query_as(&format!("select {LEAD_COLUMNS} from leads where id = $1"))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?;
        row.map(Lead::try_from).transpose()
    }

    pub async fn history(&self, id: LeadId) -> Result<Vec<HistoryEvent>, StoreError> {
        let rows: Vec<HistoryRow> =
            sqlx::query_as("select at, kind, detail from lead_history where lead_id = $1 order by id")
                .bind(id.0)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(HistoryEvent::from).collect())
    }

    pub async fn claim_due(&self, limit: usize, lease: Duration) -> Result<Vec<Claim>, StoreError> {
        let now = Utc::now();
        let token = lease_token();
        let mut tx = self.pool.begin().await?;
        // Claims from all nodes take turns. Each claim's statement then starts after the previous
        // claim committed, so it sees every lead that claim took and never gives a second worker
        // a lead of a client another worker is deciding. A claim is one short statement.
        sqlx::query("select pg_advisory_xact_lock($1)").bind(CLAIM_LOCK).execute(&mut *tx).await?;
        // Each arm walks its index in due order and stops at the limit, so the cost of a claim
        // does not grow with the backlog; rows another transaction holds are skipped.
        let sql = format!(
            "with due_pending as (
                 select id, phone, run_at from leads
                 where status = 'pending' and run_at <= $3
                 order by run_at limit $5 for update skip locked
             ),
             lease_expired as (
                 select id, phone, lease_until as run_at from leads
                 where status = 'processing' and lease_until <= $3
                 order by lease_until limit $5 for update skip locked
             ),
             due as (select * from due_pending union all select * from lease_expired),
             free as (
                 select due.id, due.phone, due.run_at from due
                 where not exists (
                     select 1 from leads busy
                     where busy.phone = due.phone and busy.id <> due.id
                       and ((busy.status = 'processing' and busy.lease_until > $3)
                            or (busy.status = 'pending' and busy.progress is not null)))
             ),
             first_per_phone as (
                 select distinct on (phone) id, run_at from free order by phone, run_at, id
             )
             update leads set status = 'processing', lease_until = $1, lease_token = $2, updated_at = $3
             where id in (select id from first_per_phone order by run_at limit $4)
             returning {LEAD_COLUMNS}"
        );
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows: Vec<LeadRow> = sqlx::query_as(&sql)
            .bind(to_millis(now + lease))
            .bind(&token)
            .bind(to_millis(now))
            .bind(limit)
            // Room for leads passed over because their client is busy.
            .bind(limit.saturating_mul(4))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        rows.into_iter()
            .map(|mut row| {
                let progress = row.progress.take().map(|text| serde_json::from_str(&text)).transpose();
                let progress =
                    progress.map_err(|_| StoreError::Corrupt(format!("lead {}: progress is not JSON", row.id)))?;
                let lead = Lead::try_from(row)?;
                Ok(Claim { lease: Lease { lead_id: lead.id, token: token.clone() }, lead, progress })
            })
            .collect()
    }

    pub async fn record_step(
        &self,
        lease: &Lease,
        progress: &serde_json::Value,
        events: &[HistoryEvent],
        extend_by: Duration,
    ) -> Result<(), StoreError> {
        let now = Utc::now();
        let mut tx = self.pool.begin().await?;
        let updated = sqlx::query(
            "update leads set progress = $1, lease_until = $2, updated_at = $3
             where id = $4 and lease_token = $5 and status = 'processing'",
        )
        .bind(progress.to_string())
        .bind(to_millis(now + extend_by))
        .bind(to_millis(now))
        .bind(lease.lead_id.0)
        .bind(&lease.token)
        .execute(&mut *tx)
        .await?;
        finish_owned_write(tx, lease, updated.rows_affected(), events).await
    }

    pub async fn extend_lease(&self, lease: &Lease, extend_by: Duration) -> Result<(), StoreError> {
        let updated = sqlx::query(
            "update leads set lease_until = $1 where id = $2 and lease_token = $3 and status = 'processing'",
        )
        .bind(to_millis(Utc::now() + extend_by))
        .bind(lease.lead_id.0)
        .bind(&lease.token)
        .execute(&self.pool)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::LeaseLost(lease.lead_id));
        }
        Ok(())
    }

    pub async fn reschedule(
        &self,
        lease: &Lease,
        run_at: DateTime<Utc>,
        count: AttemptCount,
        error: &str,
        events: &[HistoryEvent],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let updated = sqlx::query(
            "update leads set status = 'pending', run_at = $1, attempt = attempt + $2, last_error = $3,
                 lease_until = null, lease_token = null, updated_at = $4
             where id = $5 and lease_token = $6 and status = 'processing'",
        )
        .bind(to_millis(run_at))
        .bind(i64::from(count == AttemptCount::Counted))
        .bind(error)
        .bind(to_millis(Utc::now()))
        .bind(lease.lead_id.0)
        .bind(&lease.token)
        .execute(&mut *tx)
        .await?;
        finish_owned_write(tx, lease, updated.rows_affected(), events).await
    }

    pub async fn complete(
        &self,
        lease: &Lease,
        outcome: &Outcome,
        events: &[HistoryEvent],
        feedback: &[OwedFeedback],
    ) -> Result<(), StoreError> {
        let now = to_millis(Utc::now());
        let mut tx = self.pool.begin().await?;
        let updated = sqlx::query(
            "update leads set status = $1, decision = $2, contact_id = $3, deal_id = $4, last_error = null,
                 lease_until = null, lease_token = null, updated_at = $5
             where id = $6 and lease_token = $7 and status = 'processing'",
        )
        .bind(outcome.decision.status().as_str())
        .bind(decision_text(outcome.decision))
        .bind(outcome.contact_id)
        .bind(outcome.deal_id)
        .bind(now)
        .bind(lease.lead_id.0)
        .bind(&lease.token)
        .execute(&mut *tx)
        .await?;
        if outcome.deal_id.is_some() {
            // Notes owed before the deal existed are due now; their clock starts now too.
            sqlx::query(
                "update outbox set status = 'pending', run_at = $1, created_at = $1
                 where lead_id = $2 and status = 'waiting'",
            )
            .bind(now)
            .bind(lease.lead_id.0)
            .execute(&mut *tx)
            .await?;
        }
        for owed in feedback {
            let kind = owed.kind.as_str();
            sqlx::query("insert into outbox (lead_id, kind, payload, run_at, created_at) values ($1, $2, $3, $4, $4)")
                .bind(lease.lead_id.0)
                .bind(kind)
                .bind(owed.payload.to_string())
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        finish_owned_write(tx, lease, updated.rows_affected(), events).await
    }

    pub async fn mark_dead(&self, lease: &Lease, error: &str, events: &[HistoryEvent]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let updated = sqlx::query(
            "update leads set status = $1, last_error = $2, lease_until = null, lease_token = null, updated_at = $3
             where id = $4 and lease_token = $5 and status = 'processing'",
        )
        .bind(LeadStatus::Dead.as_str())
        .bind(error)
        .bind(to_millis(Utc::now()))
        .bind(lease.lead_id.0)
        .bind(&lease.token)
        .execute(&mut *tx)
        .await?;
        finish_owned_write(tx, lease, updated.rows_affected(), events).await
    }

    pub async fn generated_setting(&self, name: &str, generate: impl FnOnce() -> String) -> Result<String, StoreError> {
        sqlx::query("insert into generated_settings (name, value) values ($1, $2) on conflict (name) do nothing")
            .bind(name)
            .bind(generate())
            .execute(&self.pool)
            .await?;
        let value = sqlx::query_scalar("select value from generated_settings where name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await?;
        Ok(value)
    }

    pub async fn load_tokens(&self, destination: &str) -> Result<Option<StoredTokens>, StoreError> {
        let row: Option<(String, String, String, i64)> = sqlx::query_as(
            "select seeded_from, access_token, refresh_token, expires_at from destination_tokens where destination = $1",
        )
        .bind(destination)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(seeded_from, access_token, refresh_token, expires_at)| StoredTokens {
            seeded_from,
            access_token,
            refresh_token,
            expires_at: from_millis(expires_at),
        }))
    }

    pub async fn save_tokens(&self, destination: &str, tokens: &StoredTokens) -> Result<(), StoreError> {
        sqlx::query(
            "insert into destination_tokens (destination, seeded_from, access_token, refresh_token, expires_at)
             values ($1, $2, $3, $4, $5)
             on conflict (destination) do update set seeded_from = excluded.seeded_from,
                 access_token = excluded.access_token, refresh_token = excluded.refresh_token,
                 expires_at = excluded.expires_at",
        )
        .bind(destination)
        .bind(&tokens.seeded_from)
        .bind(&tokens.access_token)
        .bind(&tokens.refresh_token)
        .bind(to_millis(tokens.expires_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn count_by_status(&self, source: Option<&SourceId>) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query_as(
            "select status, count(*) from leads where $1 is null or source_id = $1 group by status order by status",
        )
        .bind(source.map(|source| source.0.as_str()))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }
}

/// Inserts leads that carry no external id, with their `received` events, in two statements;
/// returns their ids in the order given.
async fn insert_plain_leads<'a>(
    tx: &mut Transaction<'_, Postgres>,
    leads: impl ExactSizeIterator<Item = &'a NewLead>,
) -> Result<Vec<LeadId>, StoreError> {
    if leads.len() == 0 {
        return Ok(Vec::new());
    }
    let now = to_millis(Utc::now());
    let mut insert = QueryBuilder::<Postgres>::new(
        "insert into leads (source_id, name, phone, phone_raw, email, comment, callback_url, payload, status, run_at,
                            created_at, updated_at, advertiser_id, route_destination, route_pipeline, route_status,
                            advertiser_email, origin_time, deal_spec) ",
    );
    let mut sources = Vec::with_capacity(leads.len());
    insert.push_values(leads, |mut row, lead| {
        sources.push(lead.source.0.clone());
        row.push_bind(&lead.source.0)
            .push_bind(&lead.name)
            .push_bind(lead.phone.e164())
            .push_bind(lead.phone.raw())
            .push_bind(lead.email.as_ref().map(|email| email.as_str()))
            .push_bind(&lead.comment)
            .push_bind(lead.callback_url.as_ref().map(url::Url::as_str))
            .push_bind(lead.payload.to_string())
            .push_bind(lead.initial_status().as_str())
            .push_bind(now)
            .push_bind(now)
            .push_bind(now)
            .push_bind(&lead.routing.advertiser_id)
            .push_bind(&lead.routing.destination)
            .push_bind(&lead.routing.pipeline)
            .push_bind(&lead.routing.status)
            .push_bind(lead.routing.advertiser_email.as_ref().map(|email| email.as_str()))
            .push_bind(lead.origin_time.map(to_millis))
            .push_bind(deal_spec_text(lead));
    });
    insert.push(" returning id");
    let mut ids: Vec<i64> = insert.build_query_scalar().fetch_all(&mut **tx).await?;
    // RETURNING promises no order, but the rows of one VALUES list get increasing ids.
    ids.sort_unstable();
    let mut history = QueryBuilder::<Postgres>::new("insert into lead_history (lead_id, at, kind, detail) ");
    history.push_values(ids.iter().zip(&sources), |mut row, (id, source)| {
        row.push_bind(id).push_bind(now).push_bind("received").push_bind(json!({ "source": source }).to_string());
    });
    history.build().execute(&mut **tx).await?;
    Ok(ids.into_iter().map(LeadId).collect())
}

async fn insert_lead(tx: &mut Transaction<'_, Postgres>, lead: &NewLead) -> Result<Inserted, StoreError> {
    let now = to_millis(Utc::now());
    if lead.duplicate_check.is_some() {
        // Two nodes receiving the same client's repeat at once must not both find no earlier lead.
        let client = format!("{} {}", lead.source.0, lead.phone.e164());
        sqlx::query("select pg_advisory_xact_lock(hashtextextended($1, 0))").bind(client).execute(&mut **tx).await?;
    }
    if let Some(check) = &lead.duplicate_check
        && let Some(earlier) = earlier_lead_of_client(tx, lead, check.window).await?
    {
        let repeat = HistoryEvent::now("repeat_received", json!({ "payload": lead.payload }));
        insert_history(tx, earlier, std::slice::from_ref(&repeat)).await?;
        if let Some(note) = &check.append_note {
            queue_deal_note_in(tx, earlier, &json!({ "text": note })).await?;
        }
        return Ok(Inserted::Duplicate { id: earlier });
    }
    let id: Option<i64> = sqlx::query_scalar(
        "insert into leads (source_id, external_id, name, phone, phone_raw, email, comment, callback_url, payload,
                            status, run_at, created_at, updated_at, advertiser_id, route_destination, route_pipeline,
                            route_status, advertiser_email, origin_time, deal_spec)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $11, $12, $13, $14, $15, $16, $17, $18)
         on conflict (source_id, external_id) where external_id is not null do nothing
         returning id",
    )
    .bind(&lead.source.0)
    .bind(&lead.external_id)
    .bind(&lead.name)
    .bind(lead.phone.e164())
    .bind(lead.phone.raw())
    .bind(lead.email.as_ref().map(|email| email.as_str()))
    .bind(&lead.comment)
    .bind(lead.callback_url.as_ref().map(url::Url::as_str))
    .bind(lead.payload.to_string())
    .bind(lead.initial_status().as_str())
    .bind(now)
    .bind(&lead.routing.advertiser_id)
    .bind(&lead.routing.destination)
    .bind(&lead.routing.pipeline)
    .bind(&lead.routing.status)
    .bind(lead.routing.advertiser_email.as_ref().map(|email| email.as_str()))
    .bind(lead.origin_time.map(to_millis))
    .bind(deal_spec_text(lead))
    .fetch_optional(&mut **tx)
    .await?;
    if let Some(id) = id {
        let received = HistoryEvent::now("received", serde_json::json!({ "source": lead.source.0 }));
        insert_history(tx, LeadId(id), std::slice::from_ref(&received)).await?;
        return Ok(Inserted::New(LeadId(id)));
    }
    let (id, payload): (i64, String) =
        sqlx::query_as("select id, payload from leads where source_id = $1 and external_id = $2")
            .bind(&lead.source.0)
            .bind(&lead.external_id)
            .fetch_one(&mut **tx)
            .await?;
    let same_payload = serde_json::from_str::<serde_json::Value>(&payload).is_ok_and(|stored| stored == lead.payload);
    Ok(Inserted::Existing { id: LeadId(id), same_payload })
}

/// The same client's latest lead of the same source that is still on its way, or was settled
/// within `window`: the lead a repeat belongs to.
async fn earlier_lead_of_client(
    tx: &mut Transaction<'_, Postgres>,
    lead: &NewLead,
    window: Duration,
) -> Result<Option<LeadId>, StoreError> {
    let settled_since = Utc::now() - chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
    let id: Option<i64> = sqlx::query_scalar(
        "select id from leads
         where source_id = $1 and (phone = $2 or ($3 is not null and email = $3))
           and (status in ('pending', 'processing')
                or (status in ('approved', 'rejected') and updated_at >= $4))
         order by id desc limit 1",
    )
    .bind(&lead.source.0)
    .bind(lead.phone.e164())
    .bind(lead.email.as_ref().map(|email| email.as_str()))
    .bind(to_millis(settled_since))
    .fetch_optional(&mut **tx)
    .await?;
    Ok(id.map(LeadId))
}

/// Owes a note to the lead's CRM deal: due now if the deal exists, else when the lead is delivered.
/// Returns whether it is due now, or `None` when there is no such lead.
pub(super) async fn queue_deal_note_in(
    tx: &mut Transaction<'_, Postgres>,
    lead: LeadId,
    payload: &serde_json::Value,
) -> Result<Option<bool>, StoreError> {
    let now = to_millis(Utc::now());
    // Waits for a delivery committing this lead's outcome, so the note is either seen by the
    // outcome's switch from 'waiting' to 'pending' or sees the deal itself.
    sqlx::query("select 1 from leads where id = $1 for update").bind(lead.0).execute(&mut **tx).await?;
    let status: Option<String> = sqlx::query_scalar(
        "insert into outbox (lead_id, kind, payload, status, run_at, created_at)
         select id, 'deal_note', $2, case when deal_id is not null then 'pending' else 'waiting' end, $3, $3
         from leads where id = $1
         returning status",
    )
    .bind(lead.0)
    .bind(payload.to_string())
    .bind(now)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(status.map(|status| status == "pending"))
}

pub(super) async fn insert_history(
    tx: &mut Transaction<'_, Postgres>,
    id: LeadId,
    events: &[HistoryEvent],
) -> Result<(), StoreError> {
    for event in events {
        sqlx::query("insert into lead_history (lead_id, at, kind, detail) values ($1, $2, $3, $4)")
            .bind(id.0)
            .bind(to_millis(event.at))
            .bind(&event.kind)
            .bind((!event.detail.is_null()).then(|| event.detail.to_string()))
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Ends a write that only the lease holder may make: nothing is committed if the lease is gone.
async fn finish_owned_write(
    mut tx: Transaction<'_, Postgres>,
    lease: &Lease,
    rows_affected: u64,
    events: &[HistoryEvent],
) -> Result<(), StoreError> {
    if rows_affected == 0 {
        tx.rollback().await?;
        return Err(StoreError::LeaseLost(lease.lead_id));
    }
    insert_history(&mut tx, lease.lead_id, events).await?;
    tx.commit().await?;
    Ok(())
}
