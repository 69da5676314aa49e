//! What alerts are made of: recent failures counted per source, and each condition's alert state,
//! claimed with conditional updates so that of several nodes only one sends a given alert.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Store, StoreError};

/// Failures of one source since some moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureCount {
    pub source: String,
    /// For failed feedback, its kind (`callback`, `email`, `deal_note`); empty for dead leads.
    pub kind: String,
    pub count: i64,
    pub first: DateTime<Utc>,
    pub latest: DateTime<Utc>,
}

/// Waiting leads whose last attempt failed with an error of one kind, by source and route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitingFailure {
    pub source: String,
    /// The advertiser's destination when it overrides the source's; `None` for the source's own.
    pub route_destination: Option<String>,
    pub count: i64,
    /// When the earliest of these attempts was recorded.
    pub since: DateTime<Utc>,
}

/// A firing alert this caller may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FiringClaim {
    pub first_seen: DateTime<Utc>,
    pub claimed_at: DateTime<Utc>,
    /// When it was sent before, restored if this send fails, so the end is still reported.
    pub previously_sent: Option<DateTime<Utc>>,
}

/// An alert whose condition ended, as it was before the end was claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndedAlert {
    pub first_seen: DateTime<Utc>,
    /// `None` when the condition ended before any alert about it went out.
    pub last_sent: Option<DateTime<Utc>>,
}

impl Store {
    /// Per source: leads that went `dead` at or after `since`.
    pub async fn dead_by_source(&self, since: DateTime<Utc>) -> Result<Vec<FailureCount>, StoreError> {
        match self {
            Self::Sqlite(store) => store.dead_by_source(since).await,
            Self::Postgres(store) => store.dead_by_source(since).await,
        }
    }

    /// Per source and kind: feedback given up on at or after `since`.
    pub async fn failed_feedback_by_source(&self, since: DateTime<Utc>) -> Result<Vec<FailureCount>, StoreError> {
        match self {
            Self::Sqlite(store) => store.failed_feedback_by_source(since).await,
            Self::Postgres(store) => store.failed_feedback_by_source(since).await,
        }
    }

    /// Pending or processing leads whose last error begins with `error_start`.
    pub async fn waiting_with_error(&self, error_start: &str) -> Result<Vec<WaitingFailure>, StoreError> {
        match self {
            Self::Sqlite(store) => store.waiting_with_error(error_start).await,
            Self::Postgres(store) => store.waiting_with_error(error_start).await,
        }
    }

    /// Keys of the conditions that began and have not been seen to end.
    pub async fn open_alerts(&self) -> Result<Vec<String>, StoreError> {
        match self {
            Self::Sqlite(store) => store.open_alerts().await,
            Self::Postgres(store) => store.open_alerts().await,
        }
    }

    /// Records that the condition `key` holds at `now` and claims its firing alert; `None` when
    /// it was sent less than `repeat_after` ago (by this node or another).
    pub async fn claim_firing_alert(
        &self,
        key: &str,
        now: DateTime<Utc>,
        repeat_after: Duration,
    ) -> Result<Option<FiringClaim>, StoreError> {
        match self {
            Self::Sqlite(store) => store.claim_firing_alert(key, now, repeat_after).await,
            Self::Postgres(store) => store.claim_firing_alert(key, now, repeat_after).await,
        }
    }

    /// Gives back a firing alert that could not be sent, so the next round sends it again.
    pub async fn unclaim_firing_alert(&self, key: &str, claim: &FiringClaim) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(store) => store.unclaim_firing_alert(key, claim).await,
            Self::Postgres(store) => store.unclaim_firing_alert(key, claim).await,
        }
    }

    /// Claims the end of an open condition; `None` when another node claimed it first.
    pub async fn claim_ended_alert(&self, key: &str, now: DateTime<Utc>) -> Result<Option<EndedAlert>, StoreError> {
        match self {
            Self::Sqlite(store) => store.claim_ended_alert(key, now).await,
            Self::Postgres(store) => store.claim_ended_alert(key, now).await,
        }
    }

    /// Gives back an end claimed at `claimed_at` whose message could not be sent.
    pub async fn unclaim_ended_alert(&self, key: &str, claimed_at: DateTime<Utc>) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(store) => store.unclaim_ended_alert(key, claimed_at).await,
            Self::Postgres(store) => store.unclaim_ended_alert(key, claimed_at).await,
        }
    }
}

macro_rules! alert_queries {
    ($store:ident, $db:ty) => {
        mod alerts {
            use std::time::Duration;

            use chrono::{DateTime, Utc};

            use super::super::$store;
            use $crate::store::alerts::{EndedAlert, FailureCount, FiringClaim, WaitingFailure};
            use $crate::store::{StoreError, from_millis, to_millis};

            type CountRow = (String, String, i64, i64, i64);

            fn counts(rows: Vec<CountRow>) -> Vec<FailureCount> {
                rows.into_iter()
                    .map(|(source, kind, count, first, latest)| FailureCount {
                        source,
                        kind,
                        count,
                        first: from_millis(first),
                        latest: from_millis(latest),
                    })
                    .collect()
            }

            impl $store {
                pub async fn dead_by_source(&self, since: DateTime<Utc>) -> Result<Vec<FailureCount>, StoreError> {
                    let rows: Vec<CountRow> = sqlx::query_as(
                        "select source_id, '', count(*), min(updated_at), max(updated_at) from leads
                         where status = 'dead' and updated_at >= $1 group by source_id",
                    )
                    .bind(to_millis(since))
                    .fetch_all(self.pool())
                    .await?;
                    Ok(counts(rows))
                }

                pub async fn failed_feedback_by_source(
                    &self,
                    since: DateTime<Utc>,
                ) -> Result<Vec<FailureCount>, StoreError> {
                    // A failed row keeps the time of its last attempt in run_at.
                    let rows: Vec<CountRow> = sqlx::query_as(
                        "select leads.source_id, outbox.kind, count(*), min(outbox.run_at), max(outbox.run_at)
                         from outbox join leads on leads.id = outbox.lead_id
                         where outbox.status = 'failed' and outbox.run_at >= $1
                         group by leads.source_id, outbox.kind",
                    )
                    .bind(to_millis(since))
                    .fetch_all(self.pool())
                    .await?;
                    Ok(counts(rows))
                }

                pub async fn waiting_with_error(&self, error_start: &str) -> Result<Vec<WaitingFailure>, StoreError> {
                    let pattern = format!("{}%", error_start.replace(['%', '_'], ""));
                    let rows: Vec<(String, Option<String>, i64, i64)> = sqlx::query_as(
                        "select source_id, route_destination, count(*), min(updated_at) from leads
                         where status in ('pending', 'processing') and last_error like $1
                         group by source_id, route_destination",
                    )
                    .bind(pattern)
                    .fetch_all(self.pool())
                    .await?;
                    Ok(rows
                        .into_iter()
                        .map(|(source, route_destination, count, since)| WaitingFailure {
                            source,
                            route_destination,
                            count,
                            since: from_millis(since),
                        })
                        .collect())
                }

                pub async fn open_alerts(&self) -> Result<Vec<String>, StoreError> {
                    let keys = sqlx::query_scalar("select key from alerts where resolved_at is null order by key")
                        .fetch_all(self.pool())
                        .await?;
                    Ok(keys)
                }

                pub async fn claim_firing_alert(
                    &self,
                    key: &str,
                    now: DateTime<Utc>,
                    repeat_after: Duration,
                ) -> Result<Option<FiringClaim>, StoreError> {
                    let claimed_at = to_millis(now);
                    let repeat_after = i64::try_from(repeat_after.as_millis()).unwrap_or(i64::MAX);
                    let _turn = self.background_turn().await;
                    // A condition that ended and came back begins anew.
                    sqlx::query(
                        "insert into alerts (key, first_seen) values ($1, $2)
                         on conflict (key) do update set first_seen = excluded.first_seen, last_sent = null,
                             resolved_at = null
                         where alerts.resolved_at is not null",
                    )
                    .bind(key)
                    .bind(claimed_at)
                    .execute(self.writes())
                    .await?;
                    let (first_seen, previously_sent): (i64, Option<i64>) =
                        sqlx::query_as("select first_seen, last_sent from alerts where key = $1")
                            .bind(key)
                            .fetch_one(self.writes())
                            .await?;
                    if previously_sent.is_some_and(|sent| sent > claimed_at.saturating_sub(repeat_after)) {
                        return Ok(None);
                    }
                    // Of several nodes in the same round, only the update that still finds the
                    // last_sent it read wins.
                    let claimed = sqlx::query(
                        "update alerts set last_sent = $2
                         where key = $1 and resolved_at is null and coalesce(last_sent, -1) = $3",
                    )
                    .bind(key)
                    .bind(claimed_at)
                    .bind(previously_sent.unwrap_or(-1))
                    .execute(self.writes())
                    .await?;
                    Ok((claimed.rows_affected() == 1).then(|| FiringClaim {
                        first_seen: from_millis(first_seen),
                        claimed_at: now,
                        previously_sent: previously_sent.map(from_millis),
                    }))
                }

                pub async fn unclaim_firing_alert(&self, key: &str, claim: &FiringClaim) -> Result<(), StoreError> {
                    let _turn = self.background_turn().await;
                    sqlx::query("update alerts set last_sent = $3 where key = $1 and last_sent = $2")
                        .bind(key)
                        .bind(to_millis(claim.claimed_at))
                        .bind(claim.previously_sent.map(to_millis))
                        .execute(self.writes())
                        .await?;
                    Ok(())
                }

                pub async fn claim_ended_alert(
                    &self,
                    key: &str,
                    now: DateTime<Utc>,
                ) -> Result<Option<EndedAlert>, StoreError> {
                    let _turn = self.background_turn().await;
                    let row: Option<(i64, Option<i64>)> = sqlx::query_as(
                        "update alerts set resolved_at = $2 where key = $1 and resolved_at is null
                         returning first_seen, last_sent",
                    )
                    .bind(key)
                    .bind(to_millis(now))
                    .fetch_optional(self.writes())
                    .await?;
                    Ok(row.map(|(first_seen, last_sent)| EndedAlert {
                        first_seen: from_millis(first_seen),
                        last_sent: last_sent.map(from_millis),
                    }))
                }

                pub async fn unclaim_ended_alert(
                    &self,
                    key: &str,
                    claimed_at: DateTime<Utc>,
                ) -> Result<(), StoreError> {
                    let _turn = self.background_turn().await;
                    sqlx::query("update alerts set resolved_at = null where key = $1 and resolved_at = $2")
                        .bind(key)
                        .bind(to_millis(claimed_at))
                        .execute(self.writes())
                        .await?;
                    Ok(())
                }
            }
        }
    };
}

pub(super) use alert_queries;
