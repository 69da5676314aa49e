//! The SQLite backend: a real file in WAL mode, short write transactions, a single-statement claim.

use std::str::FromStr;
use std::time::Duration;

use chrono::Utc;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, Transaction};

use super::rows::LeadRow;
use super::{Claim, LEAD_COLUMNS, StoreError, lease_token, to_millis};
use crate::config::{Durability, StoreConfig};
use crate::domain::{LeadId, NewLead};

#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    pub(super) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    pub async fn open(config: &StoreConfig) -> Result<Self, StoreError> {
        let synchronous = match config.durability {
            Durability::ProcessCrash => SqliteSynchronous::Normal,
            Durability::PowerLoss => SqliteSynchronous::Full,
        };
        let options = SqliteConnectOptions::from_str(&config.url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(synchronous)
            .foreign_keys(true)
            // Writers queue on SQLite's single write lock instead of failing at once.
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(options).await?;
        super::apply_migrations(&sqlx::migrate!("./migrations/sqlite"), &pool).await?;
        Ok(Self { pool })
    }

    pub async fn claim_due(&self, limit: usize, lease: Duration) -> Result<Vec<Claim>, StoreError> {
        let now = Utc::now();
        let token = lease_token();
        // One statement, so SQLite's write lock makes concurrent claimers take disjoint leads.
        let sql = format!(
            "update leads set status = 'processing', lease_until = ?1, lease_token = ?2, updated_at = ?3
             where id in (
                 select min(candidate.id) from leads candidate
                 where ((candidate.status = 'pending' and candidate.run_at <= ?3)
                        or (candidate.status = 'processing' and candidate.lease_until <= ?3))
                   and not exists (
                       select 1 from leads busy
                       where busy.phone = candidate.phone and busy.id <> candidate.id
                         and ((busy.status = 'processing' and busy.lease_until > ?3)
                              -- a lead that started its CRM steps keeps its client's phone until it
                              -- settles, even while its lease runs out and it waits to be taken over
                              or (busy.status in ('pending', 'processing') and busy.progress is not null)))
                 group by candidate.phone
                 order by min(candidate.run_at)
                 limit ?4)
             returning {LEAD_COLUMNS}"
        );
        let rows: Vec<LeadRow> = sqlx::query_as(&sql)
            .bind(to_millis(now + lease))
            .bind(&token)
            .bind(to_millis(now))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(|row| row.into_claim(&token)).collect()
    }
}

// SQLite has one writer at a time: what the hooks guard against cannot happen there.

/// A claim's statement holds the write lock, so no other claim can take the same rows.
const SKIP_LOCKED_ROWS: &str = "";

/// A write transaction takes the write lock at its start. One that read first and wrote later
/// could find its snapshot outdated by another writer (`SQLITE_BUSY_SNAPSHOT`), which the busy
/// timeout does not wait out: the request would fail instead of queueing.
async fn begin_write(pool: &SqlitePool) -> Result<Transaction<'static, Sqlite>, StoreError> {
    Ok(pool.begin_with("BEGIN IMMEDIATE").await?)
}

async fn announce_new_leads(_tx: &mut Transaction<'_, Sqlite>, _any_new: bool) -> Result<(), StoreError> {
    Ok(())
}

async fn lock_clients<'a>(
    _tx: &mut Transaction<'_, Sqlite>,
    _leads: impl Iterator<Item = &'a NewLead>,
) -> Result<(), StoreError> {
    Ok(())
}

async fn lock_lead(_tx: &mut Transaction<'_, Sqlite>, _lead: LeadId) -> Result<(), StoreError> {
    Ok(())
}

super::queries::shared_queries!(SqliteStore, sqlx::Sqlite);
