//! The SQLite backend: a real file in WAL mode, every write of the process on one connection, intake first.

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, Transaction};
use tokio::sync::{Mutex, MutexGuard};

use super::StoreError;
use crate::config::{Durability, StoreConfig};
use crate::domain::{LeadId, NewLead};

/// How long a write waits for SQLite's lock. Within this process writes take turns before they
/// reach SQLite, so only another program (a backup, a `sqlite3` shell) can hold it this long;
/// then the write fails as unavailable instead of hanging its request.
const BUSY_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a command (`leads retry`, `users add`, …) waits for the lock: it runs beside a
/// gateway whose writes come first, and nobody is kept waiting for its answer but the operator.
const COMMAND_BUSY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a write waits for its turn on the write connection before it is refused as unavailable.
const TURN_TIMEOUT: Duration = Duration::from_secs(3);
/// Page cache of the write connection (KiB): the indexes a write touches at a large backlog.
const WRITER_CACHE_KIB: i64 = 16 * 1024;
/// How often the WAL is copied back into the database file, away from the write connection.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);
/// Bytes of WAL file kept when the WAL starts over; the rest is given back to the disk.
const WAL_SIZE_KEPT: i64 = 64 * 1024 * 1024;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The version of the newest migration this build carries.
pub(super) fn newest_migration_known() -> i64 {
    MIGRATOR.iter().map(|migration| migration.version).max().unwrap_or(0)
}

#[derive(Clone)]
pub struct SqliteStore {
    /// Reads, which WAL lets run beside the writer.
    pool: SqlitePool,
    /// The one connection that writes. SQLite lets one writer in at a time, and a writer that
    /// finds the lock taken sleeps and polls for it; queueing here instead hands the lock over in
    /// order, at once.
    writer: SqlitePool,
    /// Every write but intake's queues here before it queues for the writer, so an intake commit
    /// waits for at most one other write ahead of it.
    background: Arc<Mutex<()>>,
    /// Dropped with the last clone of the store, which ends the checkpoint task.
    _alive: Arc<()>,
    /// The database file, share-locked while the store is open: `leadgate restore` takes the lock
    /// exclusively, so it cannot replace a database a gateway (or any command) is using.
    _in_use: Option<Arc<std::fs::File>>,
}

impl SqliteStore {
    pub(super) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Where every write goes.
    pub(super) fn writes(&self) -> &SqlitePool {
        &self.writer
    }

    /// Where intake's commits go: the same connection, without queueing behind the worker.
    pub(super) fn intake_writes(&self) -> &SqlitePool {
        &self.writer
    }

    /// The turn a write other than intake's waits for before it asks for the write connection.
    pub(super) async fn background_turn(&self) -> Option<MutexGuard<'_, ()>> {
        Some(self.background.lock().await)
    }

    /// Opens the database, creating the file if `create` and there is none. A database that
    /// must exist already is opened by a command, which waits longer for SQLite's lock.
    ///
    /// # Errors
    /// `Missing` when the file does not exist and `create` is false.
    pub async fn open(config: &StoreConfig, create: bool) -> Result<Self, StoreError> {
        let synchronous = match config.durability {
            Durability::ProcessCrash => SqliteSynchronous::Normal,
            Durability::PowerLoss => SqliteSynchronous::Full,
        };
        let options = SqliteConnectOptions::from_str(&config.url)?;
        let path = options.get_filename().to_owned();
        let in_memory = path.as_os_str() == ":memory:";
        if !create && !in_memory && !path.exists() {
            return Err(StoreError::Missing(path));
        }
        let options = options
            .create_if_missing(create)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(synchronous)
            .foreign_keys(true)
            .busy_timeout(if create { BUSY_TIMEOUT } else { COMMAND_BUSY_TIMEOUT })
            // Under sustained intake the writer never pauses while a checkpoint ends, so SQLite
            // cannot start the WAL over and it grows by every page written (1.3 GB in 10 s at
            // 3 000 leads/s here). It starts over once the load eases; this shrinks the file then.
            .pragma("journal_size_limit", WAL_SIZE_KEPT.to_string());
        // SQLite copies the WAL back into the database inside the commit that fills it past a
        // threshold, with an fsync: on the write connection that is an intake commit stalled for
        // the whole copy. The writer never does it; a task does, on a read connection, beside it.
        let writer_options =
            options.clone().pragma("cache_size", (-WRITER_CACHE_KIB).to_string()).pragma("wal_autocheckpoint", "0");
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(TURN_TIMEOUT)
            .connect_with(writer_options)
            .await?;
        super::apply_migrations(&MIGRATOR, &writer).await?;
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(options).await?;
        let alive = Arc::new(());
        tokio::spawn(checkpoint_regularly(pool.clone(), Arc::downgrade(&alive)));
        let in_use = if in_memory { None } else { Some(Arc::new(lock_in_use(&path)?)) };
        Ok(Self { pool, writer, background: Arc::new(Mutex::new(())), _alive: alive, _in_use: in_use })
    }

    /// Writes a consistent copy of the database to `target` while writers go on: SQLite's
    /// `VACUUM INTO` reads one snapshot on a read connection, so intake is never held up.
    pub async fn snapshot_into(&self, target: &std::path::Path) -> Result<(), StoreError> {
        let target = target.to_str().ok_or_else(|| StoreError::Corrupt("the backup path is not UTF-8".to_owned()))?;
        sqlx::query("vacuum into $1").bind(target).execute(&self.pool).await?;
        Ok(())
    }
}

/// A shared lock on the database file (`flock`, which SQLite's own `fcntl` locks do not see).
fn lock_in_use(path: &std::path::Path) -> Result<std::fs::File, StoreError> {
    let file =
        std::fs::File::open(path).map_err(|error| StoreError::Corrupt(format!("{}: {error}", path.display())))?;
    match file.try_lock_shared() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::BeingRestored(path.to_owned())),
        Err(std::fs::TryLockError::Error(error)) => {
            Err(StoreError::Corrupt(format!("{}: cannot lock: {error}", path.display())))
        }
    }
}

/// Whether a gateway or a command has the database at `path` open (its shared lock is held).
/// The returned file, while kept, holds the lock exclusively so nothing opens it meanwhile.
///
/// # Errors
/// When the file cannot be opened.
pub fn lock_unused(path: &std::path::Path) -> std::io::Result<Option<std::fs::File>> {
    let file = std::fs::File::open(path)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(error)) => Err(error),
    }
}

/// Proof that this process is the one gateway serving a SQLite file: an exclusive lock on the
/// file `<database>.lock` beside it, held while this value lives. The operating system drops the
/// lock when the process ends in any way, `kill -9` included, so a lock never outlives its holder.
pub struct SoleUse {
    _file: File,
}

/// Why a gateway may not serve a SQLite file.
#[derive(Debug, thiserror::Error)]
pub enum SoleUseError {
    #[error(
        "another gateway is serving the database {database}: it holds {lock}. Stop it first; two gateways \
         on one SQLite file would deliver each other's leads twice (several nodes need PostgreSQL)"
    )]
    Held { database: PathBuf, lock: PathBuf },
    #[error("the lock file {lock} cannot be opened: {error}")]
    Unusable { lock: PathBuf, error: std::io::Error },
}

impl SqliteStore {
    /// The database file a `sqlite:` URL names; `None` for an in-memory database or another URL.
    pub fn database_path(url: &str) -> Option<PathBuf> {
        if !url.starts_with("sqlite:") || url.contains("mode=memory") {
            return None;
        }
        let options = SqliteConnectOptions::from_str(url).ok()?;
        let database = options.get_filename();
        // Absolute, so what is printed names the file whatever the reader's directory.
        (database != Path::new(":memory:"))
            .then(|| std::path::absolute(database).unwrap_or_else(|_| database.to_owned()))
    }

    /// Takes the lock of the database `url` names; `None` for an in-memory database, which no
    /// other process can open.
    ///
    /// # Errors
    /// When another process holds the lock, or the lock file cannot be created.
    pub fn claim_sole_use(url: &str) -> Result<Option<SoleUse>, SoleUseError> {
        let Some(database) = Self::database_path(url) else { return Ok(None) };
        let database = database.as_path();
        let mut lock = database.as_os_str().to_owned();
        lock.push(".lock");
        let lock = PathBuf::from(lock);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock)
            .map_err(|error| SoleUseError::Unusable { lock: lock.clone(), error })?;
        match file.try_lock() {
            Ok(()) => Ok(Some(SoleUse { _file: file })),
            Err(TryLockError::WouldBlock) => Err(SoleUseError::Held { database: database.to_owned(), lock }),
            Err(TryLockError::Error(error)) => Err(SoleUseError::Unusable { lock, error }),
        }
    }

    /// Ends the leases a previous process of this node held, so what it was delivering when it
    /// stopped is claimed at once instead of when the lease runs out. Only for a holder of
    /// [`SoleUse`]: no other process can be delivering those leads. Returns how many leads and
    /// feedback rows were released.
    pub async fn release_leases(&self) -> Result<(u64, u64), StoreError> {
        let now = super::to_millis(chrono::Utc::now());
        let _turn = self.background_turn().await;
        let leads = sqlx::query("update leads set lease_until = $1 where status = 'processing' and lease_until > $1")
            .bind(now)
            .execute(self.writes())
            .await?;
        let feedback = sqlx::query("update outbox set lease_until = $1 where status = 'sending' and lease_until > $1")
            .bind(now)
            .execute(self.writes())
            .await?;
        Ok((leads.rows_affected(), feedback.rows_affected()))
    }
}

/// Copies committed WAL frames into the database file without waiting for the writer or readers
/// (`PASSIVE`), so the WAL stays small; ends when the store is dropped.
async fn checkpoint_regularly(pool: SqlitePool, store: Weak<()>) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if store.strong_count() == 0 {
            pool.close().await;
            return;
        }
        if let Err(error) = sqlx::query("pragma wal_checkpoint(passive)").execute(&pool).await {
            tracing::warn!(%error, "could not checkpoint the WAL; retrying");
        }
    }
}

// SQLite has one writer at a time: what the hooks guard against cannot happen there.

/// A claim's transaction holds the write lock, so no other claim can take the same rows.
const SKIP_LOCKED_ROWS: &str = "";
/// A settle's transaction holds the write lock, so no intake can change the client's row meanwhile.
const LOCK_ROW: &str = "";

// SQLite plans without statistics and takes an equality on an indexed column for a few rows. These
// keep the queue's lookups on the rows they are meant to read, whatever the backlog.

/// Leads looked up by id must not be found by walking every pending lead through a status index.
const LEADS_BY_ID: &str = "not indexed";
/// A client's started lead is found in the index that holds only such leads, not among all its leads.
const LEADS_STARTED: &str = "indexed by leads_client_started";

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
