//! `leadgate store copy`: moving an installation from its SQLite file to PostgreSQL.

use std::process::ExitCode;

use clap::Subcommand;

use crate::config::{Durability, StoreConfig};
use crate::store::{Store, copy};

#[derive(Subcommand)]
pub enum StoreAction {
    /// Copy every lead, its history and everything else from a SQLite store into a PostgreSQL
    /// one without leads (stop the gateway first; the source is only brought up to date).
    Copy {
        /// The SQLite store, e.g. sqlite://leadgate.db
        #[arg(long)]
        from: String,
        /// The PostgreSQL store, e.g. postgres://leadgate@db.internal/leadgate
        #[arg(long)]
        to: String,
    },
}

pub async fn run(action: StoreAction) -> anyhow::Result<ExitCode> {
    let StoreAction::Copy { from, to } = action;
    let config = |url: &str| StoreConfig { url: url.to_owned(), durability: Durability::PowerLoss, max_connections: 2 };
    let (source, target) = (Store::open_existing(&config(&from)).await?, Store::open(&config(&to)).await?);
    let (Store::Sqlite(source), Store::Postgres(target)) = (source, target) else {
        eprintln!("leadgate: store copy goes from a sqlite:// store to a postgres:// one");
        return Ok(ExitCode::from(2));
    };
    let copied = copy::sqlite_to_postgres(&source, &target, |table, rows| {
        tracing::debug!(table, rows, "copied a batch");
    })
    .await;
    match copied {
        Ok(copied) => {
            for (table, rows) in copied.tables {
                println!("{table:>20}: {rows} row(s)");
            }
            if copied.cleaned_values > 0 {
                println!(
                    "{} text value(s) held control characters PostgreSQL cannot store; they were copied without them",
                    copied.cleaned_values
                );
            }
            println!(
                "copied {} to {}; point [store] url at the new store and start the gateway",
                super::without_password(&from),
                super::without_password(&to)
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            eprintln!("leadgate: nothing was copied: {error}");
            Ok(ExitCode::FAILURE)
        }
    }
}
