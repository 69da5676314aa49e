//! The PostgreSQL backend: several nodes share one queue; claims skip rows other nodes hold, and
//! new leads are announced with NOTIFY.

use std::str::FromStr;
use std::time::Duration;

use std::sync::Arc;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use sqlx::{Postgres, Transaction};
use tokio::sync::{MutexGuard, Notify};
use tokio_util::sync::CancellationToken;

use super::StoreError;
use crate::config::StoreConfig;
use crate::domain::{LeadId, NewLead};

/// The channel on which committed leads are announced to idle workers on every node.
pub const NEW_LEADS_CHANNEL: &str = "leadgate_new_leads";
/// Connections of the pool only intake's commits use, so that deliveries holding the main pool's
/// connections never make an intake request wait.
const INTAKE_CONNECTIONS: u32 = 2;
/// How long an intake commit waits for a connection, or for a row or table lock another program
/// holds, before its requests are answered 503.
const INTAKE_WAIT: Duration = Duration::from_secs(3);

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The version of the newest migration this build carries.
pub(super) fn newest_migration_known() -> i64 {
    MIGRATOR.iter().map(|migration| migration.version).max().unwrap_or(0)
}

#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    intake: PgPool,
}

impl PostgresStore {
    pub(super) fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub(super) fn writes(&self) -> &PgPool {
        &self.pool
    }

    pub(super) fn intake_writes(&self) -> &PgPool {
        &self.intake
    }

    /// Writes take no turns: PostgreSQL locks rows, not the database.
    pub(super) async fn background_turn(&self) -> Option<MutexGuard<'_, ()>> {
        None
    }

    pub async fn open(config: &StoreConfig) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(&config.url)?;
        let pool = PgPoolOptions::new().max_connections(config.max_connections).connect_with(options.clone()).await?;
        super::apply_migrations(&MIGRATOR, &pool).await?;
        let lock_timeout = format!("{}ms", INTAKE_WAIT.as_millis());
        let intake = PgPoolOptions::new()
            .max_connections(INTAKE_CONNECTIONS)
            .acquire_timeout(INTAKE_WAIT)
            .connect_lazy_with(options.options([("lock_timeout", lock_timeout.as_str())]));
        Ok(Self { pool, intake })
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
}

/// Rows another node's claim holds until it commits are not ours to take.
const SKIP_LOCKED_ROWS: &str = "for update skip locked";
/// A client's row is locked before its next lead is looked for, so a lead another node commits
/// meanwhile is either seen by that look or finds the row and queues itself.
const LOCK_ROW: &str = "for update";
/// PostgreSQL's planner has statistics: it needs no hints.
const LEADS_BY_ID: &str = "";
const LEADS_STARTED: &str = "";

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
