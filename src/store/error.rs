//! What a failed database call means for its caller: the database is unavailable for now, or a fault.

use super::StoreError;

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        if is_unavailable(&error) { Self::Unavailable(error) } else { Self::Database(error) }
    }
}

impl StoreError {
    /// Whether the same call can succeed once the database is back (the caller answers 503, not 500).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable(_) | Self::BatchUnavailable(_))
    }

    /// Whether the database refused the data itself (a constraint, a value it cannot hold) rather
    /// than failing as a whole: such an error belongs to one lead, not to its whole batch.
    pub fn concerns_the_data(&self) -> bool {
        let Self::Database(sqlx::Error::Database(error)) = self else {
            return false;
        };
        if !matches!(error.kind(), sqlx::error::ErrorKind::Other) {
            return true;
        }
        let Some(code) = error.code() else { return false };
        if error.try_downcast_ref::<sqlx::postgres::PgDatabaseError>().is_some() {
            // Class 22: data exception (a NUL in text, a number out of range); class 23: integrity.
            return code.starts_with("22") || code.starts_with("23");
        }
        // SQLite's primary result codes: TOOBIG, CONSTRAINT, MISMATCH, RANGE.
        code.parse::<i32>().is_ok_and(|code| matches!(code & 0xff, 18 | 19 | 20 | 25))
    }

    /// The error every lead of a failed group commit is answered with; the cause is logged once.
    pub fn for_each_lead(&self) -> Self {
        let cause = match self {
            Self::Unavailable(error) | Self::Database(error) => error.to_string(),
            other => other.to_string(),
        };
        if self.is_unavailable() { Self::BatchUnavailable(cause) } else { Self::BatchFailed(cause) }
    }
}

fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(error) => match error.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
            Some(error) => postgres_unavailable(error.code()),
            None => error.code().and_then(|code| code.parse::<i32>().ok()).is_some_and(sqlite_unavailable),
        },
        _ => false,
    }
}

/// SQLite's primary result codes (the low byte of the extended one) that say "not now" rather than
/// "this statement is wrong": BUSY, LOCKED, NOMEM, READONLY, IOERR, FULL, CANTOPEN, PROTOCOL.
fn sqlite_unavailable(extended_code: i32) -> bool {
    matches!(extended_code & 0xff, 5 | 6 | 7 | 8 | 10 | 13 | 14 | 15)
}

/// SQLSTATEs of a server that cannot serve now: connection exceptions (08), insufficient
/// resources such as a full disk (53), shutdown or start-up (57P0x), a read-only transaction
/// (25006), a lock not granted within `lock_timeout` (55P03), a cancelled statement (57014), and
/// the transient conflicts a retry resolves (40001, 40P01).
fn postgres_unavailable(sqlstate: &str) -> bool {
    sqlstate.starts_with("08")
        || sqlstate.starts_with("53")
        || sqlstate.starts_with("57P0")
        || matches!(sqlstate, "25006" | "55P03" | "57014" | "40001" | "40P01")
}

#[cfg(test)]
mod tests {
    use super::{postgres_unavailable, sqlite_unavailable};

    #[test]
    fn a_locked_full_or_read_only_database_is_unavailable_and_a_broken_statement_is_not() {
        // SQLITE_BUSY, SQLITE_READONLY_DBMOVED (extended), SQLITE_FULL; SQLITE_CONSTRAINT_UNIQUE, SQLITE_ERROR.
        assert!(sqlite_unavailable(5) && sqlite_unavailable(1032) && sqlite_unavailable(13));
        assert!(!sqlite_unavailable(2067) && !sqlite_unavailable(1));
        assert!(postgres_unavailable("25006") && postgres_unavailable("08006") && postgres_unavailable("53100"));
        assert!(!postgres_unavailable("23505") && !postgres_unavailable("42P01"));
    }
}
