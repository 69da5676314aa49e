//! The test's own look into a store's database, past the store's contract: backdating rows, and
//! reading every value of every table.

use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;

pub enum RawDb {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl RawDb {
    pub async fn connect(store_url: &str) -> Self {
        if store_url.starts_with("postgres") {
            Self::Postgres(PgPool::connect(store_url).await.unwrap())
        } else {
            Self::Sqlite(SqlitePool::connect(store_url).await.unwrap())
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Self::Postgres(_))
    }

    pub async fn execute(&self, sql: &str) {
        match self {
            Self::Sqlite(pool) => sqlx::query(sql).execute(pool).await.map(drop),
            Self::Postgres(pool) => sqlx::query(sql).execute(pool).await.map(drop),
        }
        .unwrap_or_else(|error| panic!("{sql}: {error}"));
    }

    pub async fn count(&self, sql: &str) -> i64 {
        match self {
            Self::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
            Self::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
        }
        .unwrap_or_else(|error| panic!("{sql}: {error}"))
    }

    /// Every value of every column of every table, as text, each with its `table.column`.
    pub async fn every_value(&self) -> Vec<(String, String)> {
        let columns: Vec<(String, String)> = match self {
            Self::Sqlite(pool) => sqlx::query_as(
                "select m.name, c.name from sqlite_master m join pragma_table_info(m.name) c
                 where m.type = 'table' and m.name not like 'sqlite_%'",
            )
            .fetch_all(pool)
            .await
            .unwrap(),
            Self::Postgres(pool) => sqlx::query_as(
                "select table_name::text, column_name::text from information_schema.columns where table_schema = 'public'",
            )
            .fetch_all(pool)
            .await
            .unwrap(),
        };
        let mut values = Vec::new();
        for (table, column) in columns {
            let found: Vec<Option<String>> = match self {
                // As bytes: some columns (sqlx's migration checksums) are blobs, not UTF-8.
                Self::Sqlite(pool) => {
                    let found: Vec<Option<Vec<u8>>> =
                        sqlx::query_scalar(&format!("select cast(\"{column}\" as blob) from \"{table}\""))
                            .fetch_all(pool)
                            .await
                            .unwrap();
                    found
                        .into_iter()
                        .map(|bytes| bytes.map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
                        .collect()
                }
                Self::Postgres(pool) => sqlx::query_scalar(&format!("select \"{column}\"::text from \"{table}\""))
                    .fetch_all(pool)
                    .await
                    .unwrap(),
            };
            values.extend(found.into_iter().flatten().map(|value| (format!("{table}.{column}"), value)));
        }
        values
    }
}

/// Milliseconds in `days` days, for moving rows into the past.
pub fn days(days: i64) -> i64 {
    days * 24 * 3600 * 1000
}
