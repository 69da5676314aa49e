//! Moving an installation from SQLite to PostgreSQL: every row of every table, ids kept, in one
//! snapshot read and one transaction written, so the copy is whole or not there at all.

use std::borrow::Cow;

use sqlx::{Postgres, QueryBuilder, Row, Transaction};

use super::{PostgresStore, SqliteStore, StoreError};
use crate::domain::text::strip_forbidden;

#[derive(Clone, Copy)]
enum Kind {
    Int,
    Text,
    Bool,
}

enum Value {
    Int(Option<i64>),
    Text(Option<String>),
    Bool(Option<bool>),
}

use Kind::{Bool, Int, Text};

/// Every table, parents before children, with its columns as both backends name them.
const TABLES: &[(&str, &[(&str, Kind)])] = &[
    ("generated_settings", &[("name", Text), ("value", Text)]),
    (
        "destination_tokens",
        &[
            ("destination", Text),
            ("seeded_from", Text),
            ("access_token", Text),
            ("refresh_token", Text),
            ("expires_at", Int),
        ],
    ),
    (
        "advertisers",
        &[
            ("source_id", Text),
            ("id", Text),
            ("document", Text),
            ("name", Text),
            ("email", Text),
            ("send_lead_email", Bool),
            ("destination", Text),
            ("pipeline", Text),
            ("status", Text),
            ("enabled", Bool),
            ("created_at", Int),
            ("updated_at", Int),
        ],
    ),
    ("advertiser_listings", &[("source_id", Text), ("client_listing_id", Text), ("advertiser_id", Text)]),
    ("advertiser_secrets", &[("source_id", Text), ("advertiser_id", Text), ("secret_key", Text)]),
    (
        "leads",
        &[
            ("id", Int),
            ("source_id", Text),
            ("external_id", Text),
            ("name", Text),
            ("phone", Text),
            ("phone_raw", Text),
            ("email", Text),
            ("comment", Text),
            ("callback_url", Text),
            ("payload", Text),
            ("status", Text),
            ("run_at", Int),
            ("attempt", Int),
            ("lease_until", Int),
            ("lease_token", Text),
            ("progress", Text),
            ("decision", Text),
            ("last_error", Text),
            ("created_at", Int),
            ("updated_at", Int),
            ("advertiser_id", Text),
            ("route_destination", Text),
            ("route_pipeline", Text),
            ("route_status", Text),
            ("advertiser_email", Text),
            ("origin_time", Int),
            ("deal_spec", Text),
            ("entities", Text),
            ("crm_deal", Text),
            ("call_spec", Text),
            ("erased_at", Int),
            ("files_removed_at", Int),
        ],
    ),
    (
        "lead_history",
        &[
            ("id", Int),
            ("lead_id", Int),
            ("at", Int),
            ("kind", Text),
            ("detail", Text),
            ("crm_destination", Text),
            ("crm_status", Int),
        ],
    ),
    (
        "outbox",
        &[
            ("id", Int),
            ("lead_id", Int),
            ("kind", Text),
            ("payload", Text),
            ("status", Text),
            ("run_at", Int),
            ("attempt", Int),
            ("created_at", Int),
            ("lease_until", Int),
            ("lease_token", Text),
            ("last_error", Text),
            ("delivered_at", Int),
        ],
    ),
    // The queue's index of clients: copied as it stands, so leads in flight keep their clients.
    ("client_queue", &[("phone", Text), ("lead_id", Int), ("run_at", Int), ("in_flight", Bool), ("started", Bool)]),
    ("call_events", &[("id", Int), ("source_id", Text), ("call_id", Text), ("received_at", Int), ("event", Text)]),
    (
        "calls",
        &[
            ("source_id", Text),
            ("call_id", Text),
            ("state", Text),
            ("last_event_at", Int),
            ("lead_id", Int),
            ("ignored_because", Text),
        ],
    ),
    // The console's users with their sessions, so operators log in (and stay logged in) as before.
    (
        "console_users",
        &[
            ("id", Int),
            ("username", Text),
            ("password_hash", Text),
            ("role", Text),
            ("disabled", Bool),
            ("created_at", Int),
            ("updated_at", Int),
        ],
    ),
    (
        "console_sessions",
        &[
            ("token_hash", Text),
            ("user_id", Int),
            ("csrf_token", Text),
            ("search", Text),
            ("created_at", Int),
            ("expires_at", Int),
        ],
    ),
    // Recent failures keep a lock-out in force across the move.
    ("console_login_failures", &[("id", Int), ("username", Text), ("address", Text), ("at", Int)]),
    ("console_audit", &[("id", Int), ("at", Int), ("actor", Text), ("action", Text), ("detail", Text)]),
    // Open alerts, so a condition that lasts through the move is not announced again.
    ("alerts", &[("key", Text), ("first_seen", Int), ("last_sent", Int), ("resolved_at", Int)]),
];

/// Tables whose ids come from a sequence in PostgreSQL; it must continue after the copied ids.
const SERIAL_TABLES: &[&str] =
    &["leads", "lead_history", "outbox", "call_events", "console_users", "console_login_failures", "console_audit"];

/// Tables a target node may already have written when it first started (a generated key, a
/// renewed token): the source's value wins, since links and tokens out in the world carry it.
const KEEP_SOURCE_VALUE: &[&str] = &["generated_settings", "destination_tokens"];

/// Rows per INSERT: well inside PostgreSQL's 65,535 parameters for the widest table.
const ROWS_PER_INSERT: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("the target already holds {0} lead(s); copy into an empty database")]
    TargetNotEmpty(i64),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for CopyError {
    fn from(error: sqlx::Error) -> Self {
        Self::Store(StoreError::from(error))
    }
}

/// What a copy moved: each table with its row count as counted again in the target, and how many
/// text values lost characters PostgreSQL cannot hold (leads stored before intake refused them).
#[derive(Debug)]
pub struct Copied {
    pub tables: Vec<(&'static str, i64)>,
    pub cleaned_values: usize,
}

/// Copies everything.
///
/// # Errors
/// When the target is not empty, or either database fails; the target is then unchanged.
pub async fn sqlite_to_postgres(
    from: &SqliteStore,
    to: &PostgresStore,
    mut progress: impl FnMut(&str, usize),
) -> Result<Copied, CopyError> {
    let mut target = to.pool().begin().await?;
    let existing: i64 = sqlx::query_scalar("select count(*) from leads").fetch_one(&mut *target).await?;
    if existing > 0 {
        return Err(CopyError::TargetNotEmpty(existing));
    }
    // One read transaction: a gateway still writing cannot tear the copy between tables.
    let mut source = from.pool().begin().await?;
    let mut copied = Vec::new();
    let mut cleaned_values = 0;
    for (table, columns) in TABLES {
        let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
        let rows = sqlx::query(&format!("select {} from {table}", names.join(", "))).fetch_all(&mut *source).await?;
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let values = chunk
                .iter()
                .map(|row| {
                    columns
                        .iter()
                        .map(|(name, kind)| read(row, name, *kind, &mut cleaned_values))
                        .collect::<Result<Vec<_>, _>>()
                })
                .collect::<Result<Vec<_>, _>>()?;
            insert(&mut target, table, &names, values, KEEP_SOURCE_VALUE.contains(table)).await?;
            progress(table, chunk.len());
        }
        let count: i64 = sqlx::query_scalar(&format!("select count(*) from {table}")).fetch_one(&mut *target).await?;
        copied.push((*table, count));
    }
    for table in SERIAL_TABLES {
        sqlx::query(&format!(
            "select setval(pg_get_serial_sequence('{table}', 'id'), coalesce((select max(id) from {table}), 0) + 1, false)"
        ))
        .execute(&mut *target)
        .await?;
    }
    source.commit().await?;
    target.commit().await?;
    Ok(Copied { tables: copied, cleaned_values })
}

/// One column's value; text loses what PostgreSQL cannot hold, counted in `cleaned`.
fn read(row: &sqlx::sqlite::SqliteRow, name: &str, kind: Kind, cleaned: &mut usize) -> Result<Value, sqlx::Error> {
    Ok(match kind {
        Int => Value::Int(row.try_get(name)?),
        Text => {
            let text: Option<String> = row.try_get(name)?;
            Value::Text(text.map(|text| match strip_forbidden(&text) {
                Cow::Borrowed(_) => text,
                Cow::Owned(clean) => {
                    *cleaned += 1;
                    clean
                }
            }))
        }
        Bool => Value::Bool(row.try_get(name)?),
    })
}

async fn insert(
    target: &mut Transaction<'_, Postgres>,
    table: &str,
    names: &[&str],
    rows: Vec<Vec<Value>>,
    overwrite: bool,
) -> Result<(), sqlx::Error> {
    let mut insert = QueryBuilder::<Postgres>::new(format!("insert into {table} ({}) ", names.join(", ")));
    insert.push_values(rows, |mut row, values| {
        for value in values {
            match value {
                Value::Int(value) => row.push_bind(value),
                Value::Text(value) => row.push_bind(value),
                Value::Bool(value) => row.push_bind(value),
            };
        }
    });
    if overwrite {
        let (key, rest) = names.split_first().expect("every table has columns");
        let updates: Vec<String> = rest.iter().map(|name| format!("{name} = excluded.{name}")).collect();
        insert.push(format!(" on conflict ({key}) do update set {}", updates.join(", ")));
    }
    insert.build().execute(&mut **target).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::TABLES;
    use crate::config::{Durability, StoreConfig};
    use crate::store::SqliteStore;

    /// A table or column added by a migration but not listed here would be left behind by a copy.
    #[tokio::test]
    async fn every_table_and_column_of_the_schema_is_copied() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("leadgate.db").display());
        let config = StoreConfig { url, durability: Durability::ProcessCrash, max_connections: 1 };
        let store = SqliteStore::open(&config, true).await.unwrap();
        let tables: Vec<String> = sqlx::query_scalar(
            "select name from sqlite_schema where type = 'table' \
             and name not like 'sqlite_%' and name not like '_sqlx_%' order by name",
        )
        .fetch_all(store.pool())
        .await
        .unwrap();
        let mut listed: Vec<&str> = TABLES.iter().map(|(table, _)| *table).collect();
        listed.sort_unstable();
        assert_eq!(tables, listed, "the tables a copy moves");
        for (table, columns) in TABLES {
            let mut schema: Vec<String> = sqlx::query_scalar(&format!("select name from pragma_table_info('{table}')"))
                .fetch_all(store.pool())
                .await
                .unwrap();
            schema.sort_unstable();
            let mut copied: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
            copied.sort_unstable();
            assert_eq!(schema, copied, "the columns of {table} a copy moves");
        }
    }
}
