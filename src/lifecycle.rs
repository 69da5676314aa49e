//! Data lifecycle: retention's background task and the purges it runs, and erasing one person's data.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::config::Retention;
use crate::store::lifecycle::{Erasure, Person, Removed};
use crate::store::{FileStore, Store, StoreError};

/// Rows per transaction: short enough that an intake commit waiting behind one hardly notices.
pub const BATCH: usize = 500;
/// How often `serve` looks for what retention removes.
const EVERY: Duration = Duration::from_secs(3600);

/// What one purge removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    pub leads: usize,
    pub history_details: usize,
    pub files: usize,
}

/// Retention as `serve` runs it: at start and then every hour, until `shutdown`.
pub async fn run(store: Store, files: FileStore, retention: Retention, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let purging = purge(&store, &files, retention, Utc::now());
        let purged = tokio::select! {
            () = shutdown.cancelled() => return,
            purged = purging => purged,
        };
        match purged {
            Ok(purged) if purged != Purged::default() => tracing::info!(
                leads = purged.leads,
                history_details = purged.history_details,
                files = purged.files,
                "retention removed what is older than configured"
            ),
            Ok(_) => {}
            Err(error) => tracing::warn!(error = format!("{error:#}"), "retention failed; trying again later"),
        }
    }
}

/// Removes, as of `now`, whatever `retention` says is too old: settled leads only, in batches of
/// `BATCH` rows each in its own transaction, yielding between them so intake never waits long.
///
/// # Errors
/// When the store fails; what earlier batches removed stays removed.
pub async fn purge(
    store: &Store,
    files: &FileStore,
    retention: Retention,
    now: DateTime<Utc>,
) -> anyhow::Result<Purged> {
    let before = |age: Duration| now - chrono::Duration::from_std(age).unwrap_or(chrono::Duration::MAX);
    let mut purged = Purged::default();
    if let Some(age) = retention.leads {
        let (rows, removed) = in_batches(files, store, |limit| store.purge_leads(before(age), limit)).await?;
        purged.leads += rows;
        purged.files += removed;
    }
    if let Some(age) = retention.files {
        let (_, removed) = in_batches(files, store, |limit| store.expire_files(before(age), limit)).await?;
        purged.files += removed;
    }
    if let Some(age) = retention.history {
        let (rows, _) = in_batches(files, store, |limit| store.prune_history(before(age), limit)).await?;
        purged.history_details += rows;
    }
    Ok(purged)
}

/// Runs `batch` until it finds nothing more, removing each batch's files once it is committed;
/// returns the rows and the files removed.
async fn in_batches<F, Fut>(files: &FileStore, store: &Store, mut batch: F) -> anyhow::Result<(usize, usize)>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = Result<Removed, StoreError>>,
{
    let (mut rows, mut removed) = (0, 0);
    loop {
        let done = batch(BATCH).await?;
        rows += done.rows;
        removed += remove_files(files, store, &done.files).await?;
        if done.rows < BATCH {
            return Ok((rows, removed));
        }
        tokio::task::yield_now().await;
    }
}

async fn remove_files(files: &FileStore, store: &Store, sha256s: &[String]) -> anyhow::Result<usize> {
    let mut removed = 0;
    for sha256 in sha256s {
        if files.remove_unlinked(sha256, store).await? {
            removed += 1;
        }
    }
    Ok(removed)
}

/// What erasing a person did, as reported to whoever asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Erased {
    Leads { leads: usize, files: usize },
    InDelivery(usize),
}

/// Erases every lead of `person` and the files only they linked, and notes it in the audit log
/// (without the person's data: only who asked and how many leads).
///
/// # Errors
/// When the store fails or a file cannot be removed (the leads are erased then; run it again).
pub async fn erase(store: &Store, files: &FileStore, person: &Person, requested_by: &str) -> anyhow::Result<Erased> {
    match store.erase_person(person, requested_by).await? {
        Erasure::InDelivery(count) => Ok(Erased::InDelivery(count)),
        Erasure::Erased { leads, files: linked } => {
            let removed = remove_files(files, store, &linked).await?;
            store.audit(requested_by, "erase_person", Some(&format!("{leads} lead(s) erased"))).await?;
            Ok(Erased::Leads { leads, files: removed })
        }
    }
}
