//! The PostgreSQL backend: several nodes share one queue; claims skip rows other nodes hold, and
//! new leads are announced with NOTIFY.

use std::str::FromStr;
use std::time::Duration;

use chrono::Utc;
use std::sync::Arc;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::rows::LeadRow;
use super::{Claim, LEAD_COLUMNS, StoreError, lease_token, to_millis};
use crate::config::StoreConfig;
use crate::domain::{LeadId, NewLead};

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
                 select id, phone, run_at, status from leads
                 where status = 'pending' and run_at <= $3
                 order by run_at limit $5 for update skip locked
             ),
             lease_expired as (
                 select id, phone, lease_until as run_at, status from leads
                 where status = 'processing' and lease_until <= $3
                 order by lease_until limit $5 for update skip locked
             ),
             due as (select * from due_pending union all select * from lease_expired),
             free as (
                 select due.id, due.phone, due.run_at, due.status from due
                 where not exists (
                     select 1 from leads busy
                     where busy.phone = due.phone and busy.id <> due.id
                       and ((busy.status = 'processing' and busy.lease_until > $3)
                            -- a lead that started its CRM steps keeps its client's phone until it
                            -- settles, even while its lease runs out and it waits to be taken over
                            or (busy.status in ('pending', 'processing') and busy.progress is not null)))
             ),
             first_per_phone as (
                 -- a lead whose lease ran out goes first: its worker may only be slow, not dead,
                 -- and a second lead of the client must not start beside it
                 select distinct on (phone) id, run_at from free
                 order by phone, (status = 'processing') desc, run_at, id
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
        rows.into_iter().map(|row| row.into_claim(&token)).collect()
    }
}

/// Rows another node's claim holds until it commits are not ours to take.
const SKIP_LOCKED_ROWS: &str = "for update skip locked";

async fn begin_write(pool: &PgPool) -> Result<Transaction<'static, Postgres>, StoreError> {
    Ok(pool.begin().await?)
}

/// Delivered to every listening node when, and only if, the leads commit.
async fn announce_new_leads(tx: &mut Transaction<'_, Postgres>, any_new: bool) -> Result<(), StoreError> {
    if any_new {
        sqlx::query("select pg_notify($1, '')").bind(NEW_LEADS_CHANNEL).execute(&mut **tx).await?;
    }
    Ok(())
}

/// Two nodes receiving the same client's repeat at once must not both find no earlier lead: each
/// client of a batch, by phone and by e-mail, is locked until the batch commits. The locks are
/// taken in one order everywhere, so two batches cannot wait on each other in a circle.
async fn lock_clients<'a>(
    tx: &mut Transaction<'_, Postgres>,
    leads: impl Iterator<Item = &'a NewLead>,
) -> Result<(), StoreError> {
    let mut keys: Vec<String> = leads
        .flat_map(|lead| {
            let phone = format!("{} phone {}", lead.source.0, lead.phone.e164());
            let email = lead.email.as_ref().map(|email| format!("{} email {email}", lead.source.0));
            std::iter::once(phone).chain(email)
        })
        .collect();
    keys.sort_unstable();
    keys.dedup();
    for key in keys {
        sqlx::query("select pg_advisory_xact_lock(hashtextextended($1, 0))").bind(key).execute(&mut **tx).await?;
    }
    Ok(())
}

/// Waits for a delivery committing this lead's outcome, so a note owed to its deal is either seen
/// by the outcome's switch from 'waiting' to 'pending' or sees the deal itself.
async fn lock_lead(tx: &mut Transaction<'_, Postgres>, lead: LeadId) -> Result<(), StoreError> {
    sqlx::query("select 1 from leads where id = $1 for update").bind(lead.0).execute(&mut **tx).await?;
    Ok(())
}

super::queries::shared_queries!(PostgresStore, sqlx::Postgres);
