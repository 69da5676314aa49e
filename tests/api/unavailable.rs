//! A database that cannot take writes (locked by another program, read-only): intake answers 503
//! with `Retry-After`, stores nothing, and accepts again once the database is back.

use sqlx::Connection;

use crate::helpers::{lead, on_postgres, spawn_app};

/// Another program's transaction holding the lock every intake commit needs, until `release`.
enum ForeignLock {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl ForeignLock {
    async fn take(store_url: &str) -> Self {
        if on_postgres() {
            let mut connection = sqlx::PgConnection::connect(store_url).await.unwrap();
            sqlx::query("begin").execute(&mut connection).await.unwrap();
            // Reads go on; every insert into `leads` waits for this transaction.
            sqlx::query("lock table leads in exclusive mode").execute(&mut connection).await.unwrap();
            Self::Postgres(connection)
        } else {
            let mut connection = sqlx::SqliteConnection::connect(store_url).await.unwrap();
            sqlx::query("begin exclusive").execute(&mut connection).await.unwrap();
            Self::Sqlite(connection)
        }
    }

    async fn release(self) {
        match self {
            Self::Sqlite(mut connection) => sqlx::query("rollback").execute(&mut connection).await.map(drop),
            Self::Postgres(mut connection) => sqlx::query("rollback").execute(&mut connection).await.map(drop),
        }
        .unwrap();
    }
}

async fn stored_leads(app: &crate::helpers::TestApp) -> i64 {
    app.store.count_by_status(None).await.unwrap().iter().map(|(_, count)| count).sum()
}

#[tokio::test]
async fn a_database_locked_by_another_program_makes_intake_answer_503_with_retry_after_and_store_nothing() {
    let app = spawn_app().await;
    app.accept(lead("До блокировки", "+79990007001")).await;

    let lock = ForeignLock::take(&app.store_url).await;
    let response = app.post_lead(&lead("Во время блокировки", "+79990007002")).await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "5");
    lock.release().await;

    assert_eq!(stored_leads(&app).await, 1, "the refused lead must not be stored");
    app.accept(lead("После блокировки", "+79990007002")).await;
    app.stop().await;
}

#[tokio::test]
async fn a_read_only_postgres_database_makes_intake_answer_503_and_store_nothing() {
    if !on_postgres() {
        // SQLite cannot be made read-only under a running gateway that holds the file open.
        return;
    }
    let app = spawn_app().await;
    let name = app.store_url.rsplit('/').next().unwrap().to_owned();
    let server = app.store_url.trim_end_matches(&name).to_owned() + "postgres";
    let mut admin = sqlx::PgConnection::connect(&server).await.unwrap();
    let read_only = |setting: &'static str| format!("alter database {name} {setting}");
    // Connections opened from now on are read-only; the gateway's open ones are cut and reopened.
    let cut = format!("select pg_terminate_backend(pid) from pg_stat_activity where datname = '{name}'");
    sqlx::query(&read_only("set default_transaction_read_only = on")).execute(&mut admin).await.unwrap();
    sqlx::query(&cut).execute(&mut admin).await.unwrap();

    let response = app.post_lead(&lead("Только чтение", "+79990007011")).await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));

    sqlx::query(&read_only("reset default_transaction_read_only")).execute(&mut admin).await.unwrap();
    sqlx::query(&cut).execute(&mut admin).await.unwrap();
    assert_eq!(stored_leads(&app).await, 0, "the refused lead must not be stored");
    app.accept(lead("Снова можно", "+79990007011")).await;
    app.stop().await;
}
