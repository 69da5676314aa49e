//! What the queue and the outbox hold right now, counted for monitoring.

use chrono::{DateTime, Utc};

use super::{Store, StoreError};

/// Leads of one source in one waiting status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueCount {
    pub source: String,
    pub status: String,
    pub count: i64,
    /// When the oldest of them was received.
    pub oldest: DateTime<Utc>,
}

/// Feedback of one kind in one unfinished status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxCount {
    pub kind: String,
    pub status: String,
    pub count: i64,
}

/// Lead statuses that wait for something: the CRM, an operator, or a route. Settled leads are
/// counted as they settle, not here, so a scrape never counts the whole table.
pub const WAITING_STATUSES: [&str; 4] = ["pending", "processing", "unrouted", "dead"];
/// Feedback not delivered yet, or given up on.
pub const UNFINISHED_STATUSES: [&str; 3] = ["pending", "sending", "failed"];
pub const FEEDBACK_KINDS: [&str; 3] = ["callback", "email", "deal_note"];

/// `('a', 'b')` for an `in` clause of these fixed names.
pub(super) fn sql_list(names: &[&str]) -> String {
    format!("({})", names.iter().map(|name| format!("'{name}'")).collect::<Vec<_>>().join(", "))
}

impl Store {
    /// Whether the database answers and carries every migration this build knows; the reason
    /// when not.
    pub async fn readiness(&self) -> Result<(), String> {
        let (newest_applied, newest_known) = match self {
            Self::Sqlite(store) => (store.newest_migration().await, super::sqlite::newest_migration_known()),
            Self::Postgres(store) => (store.newest_migration().await, super::postgres::newest_migration_known()),
        };
        match newest_applied {
            Err(error) => Err(format!("the database does not answer: {error}")),
            Ok(applied) if applied < newest_known => {
                Err(format!("the database lacks migrations: it has {applied}, this build needs {newest_known}"))
            }
            Ok(_) => Ok(()),
        }
    }

    /// # Errors
    /// When the database cannot be read.
    pub async fn queue_counts(&self) -> Result<(Vec<QueueCount>, Vec<OutboxCount>), StoreError> {
        match self {
            Self::Sqlite(store) => store.queue_counts().await,
            Self::Postgres(store) => store.queue_counts().await,
        }
    }
}

macro_rules! stats_queries {
    ($store:ident, $db:ty) => {
        mod stats {
            use super::super::$store;
            use $crate::store::stats::{OutboxCount, QueueCount, UNFINISHED_STATUSES, WAITING_STATUSES, sql_list};
            use $crate::store::{StoreError, from_millis};

            impl $store {
                pub async fn newest_migration(&self) -> Result<i64, StoreError> {
                    let newest: Option<i64> =
                        sqlx::query_scalar("select max(version) from _sqlx_migrations where success")
                            .fetch_one(self.pool())
                            .await?;
                    Ok(newest.unwrap_or(0))
                }

                pub async fn queue_counts(&self) -> Result<(Vec<QueueCount>, Vec<OutboxCount>), StoreError> {
                    // Both through the (status, …) indexes.
                    let leads: Vec<(String, String, i64, i64)> = sqlx::query_as(&format!(
                        "select source_id, status, count(*), min(created_at) from leads
                         where status in {} group by source_id, status",
                        sql_list(&WAITING_STATUSES)
                    ))
                    .fetch_all(self.pool())
                    .await?;
                    let outbox: Vec<(String, String, i64)> = sqlx::query_as(&format!(
                        "select kind, status, count(*) from outbox where status in {} group by kind, status",
                        sql_list(&UNFINISHED_STATUSES)
                    ))
                    .fetch_all(self.pool())
                    .await?;
                    let leads = leads
                        .into_iter()
                        .map(|(source, status, count, oldest)| QueueCount {
                            source,
                            status,
                            count,
                            oldest: from_millis(oldest),
                        })
                        .collect();
                    let outbox =
                        outbox.into_iter().map(|(kind, status, count)| OutboxCount { kind, status, count }).collect();
                    Ok((leads, outbox))
                }
            }
        }
    };
}

pub(super) use stats_queries;
