//! The dashboard's and the sources page's counts over time, aggregated in the database by time
//! bucket: leads by source and status, intake→CRM times, CRM calls, the queue now.

use chrono::{DateTime, Utc};

use super::{Store, StoreError};

/// A time range cut into equal buckets, aligned to the epoch (so to UTC hours and days).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Buckets {
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub width: chrono::Duration,
}

impl Buckets {
    /// The bucket `at` falls in, as the number the queries group by.
    pub fn index_of(&self, at: DateTime<Utc>) -> i64 {
        at.timestamp_millis().div_euclid(self.width_millis())
    }

    pub fn width_millis(&self) -> i64 {
        self.width.num_milliseconds().max(1)
    }

    /// The first and last bucket numbers of the range.
    pub fn span(&self) -> std::ops::RangeInclusive<i64> {
        self.index_of(self.from)..=self.index_of(self.until - chrono::Duration::milliseconds(1))
    }

    /// How many buckets the range holds.
    pub fn count(&self) -> usize {
        usize::try_from(self.span().end() - self.span().start() + 1).unwrap_or(0)
    }

    /// When bucket `index` starts.
    pub fn start_of(&self, index: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(index * self.width_millis()).unwrap_or_default()
    }
}

/// Leads received in one bucket from one source, now in one status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadCount {
    pub bucket: i64,
    pub source: String,
    pub status: String,
    pub count: i64,
}

/// Upper bounds (milliseconds) of the intake→CRM time classes the database counts leads into;
/// a lead slower than the last falls in one more class without a bound. Percentiles are read
/// from these counts, so each is known to within its class.
pub const LATENCY_BOUNDS_MS: [i64; 14] = [
    250,
    500,
    1_000,
    2_000,
    5_000,
    10_000,
    30_000,
    60_000,
    300_000,
    900_000,
    3_600_000,
    14_400_000,
    86_400_000,
    259_200_000,
];

/// How many leads of one bucket and source took up to `LATENCY_BOUNDS_MS[class]` from intake
/// to their outcome in the CRM (`class == LATENCY_BOUNDS_MS.len()`: longer than every bound).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatencyCount {
    pub bucket: i64,
    pub source: String,
    pub class: usize,
    pub count: i64,
}

/// CRM calls of one destination in one bucket: all of them, the busiest second's, and 429s.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CallCount {
    pub bucket: i64,
    pub destination: String,
    pub calls: i64,
    pub busiest_second: i64,
    pub too_many_requests: i64,
}

/// Leads waiting now, by status; pending ones split into due and waiting for a retry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueueDepth {
    pub due: i64,
    pub retry_later: i64,
    pub processing: i64,
    pub unrouted: i64,
    /// Callbacks, e-mails and deal notes still owed.
    pub feedback: i64,
}

impl Store {
    /// Leads received in `buckets`' range, by bucket, source and current status.
    pub async fn lead_counts(&self, buckets: Buckets) -> Result<Vec<LeadCount>, StoreError> {
        match self {
            Self::Sqlite(store) => store.lead_counts(buckets).await,
            Self::Postgres(store) => store.lead_counts(buckets).await,
        }
    }

    /// Leads received in `buckets`' range that reached the CRM (approved or rejected there), by
    /// bucket, source and time class from receipt to outcome.
    pub async fn latency_counts(&self, buckets: Buckets) -> Result<Vec<LatencyCount>, StoreError> {
        match self {
            Self::Sqlite(store) => store.latency_counts(buckets).await,
            Self::Postgres(store) => store.latency_counts(buckets).await,
        }
    }

    /// CRM calls made for leads in `buckets`' range, by bucket and the destination called.
    pub async fn call_counts(&self, buckets: Buckets) -> Result<Vec<CallCount>, StoreError> {
        match self {
            Self::Sqlite(store) => store.call_counts(buckets).await,
            Self::Postgres(store) => store.call_counts(buckets).await,
        }
    }

    /// What waits now.
    pub async fn queue_depth(&self, now: DateTime<Utc>) -> Result<QueueDepth, StoreError> {
        match self {
            Self::Sqlite(store) => store.queue_depth(now).await,
            Self::Postgres(store) => store.queue_depth(now).await,
        }
    }
}

/// `case` over the time from receipt to outcome, naming its class; -1 for a lead that did not
/// reach the CRM. The status is tested here rather than in `where`, so that the range is read
/// from the covering `(created_at, …)` index and not through the status index's every lead.
pub(crate) fn latency_class_sql() -> String {
    let mut sql = String::from("case when status not in ('approved', 'rejected') then -1");
    for (class, bound) in LATENCY_BOUNDS_MS.iter().enumerate() {
        sql.push_str(&format!(" when updated_at - created_at <= {bound} then {class}"));
    }
    sql.push_str(&format!(" else {} end", LATENCY_BOUNDS_MS.len()));
    sql
}

macro_rules! dashboard_queries {
    ($store:ident, $db:ty) => {
        mod dashboard {
            use chrono::{DateTime, Utc};

            use super::super::$store;
            use $crate::store::dashboard::{Buckets, CallCount, LatencyCount, LeadCount, QueueDepth};
            use $crate::store::{StoreError, to_millis};

            impl $store {
                pub async fn lead_counts(&self, buckets: Buckets) -> Result<Vec<LeadCount>, StoreError> {
                    // The range walks leads_created_outcome, which carries every column read here.
                    let rows: Vec<(i64, String, String, i64)> = sqlx::query_as(
                        "select created_at / $1, source_id, status, count(*) from leads
                         where created_at >= $2 and created_at < $3 group by 1, 2, 3",
                    )
                    .bind(buckets.width_millis())
                    .bind(to_millis(buckets.from))
                    .bind(to_millis(buckets.until))
                    .fetch_all(self.pool())
                    .await?;
                    Ok(rows
                        .into_iter()
                        .map(|(bucket, source, status, count)| LeadCount { bucket, source, status, count })
                        .collect())
                }

                pub async fn latency_counts(&self, buckets: Buckets) -> Result<Vec<LatencyCount>, StoreError> {
                    let sql = format!(
                        "select created_at / $1, source_id, {}, count(*) from leads
                         where created_at >= $2 and created_at < $3 group by 1, 2, 3",
                        $crate::store::dashboard::latency_class_sql()
                    );
                    let rows: Vec<(i64, String, i32, i64)> = sqlx::query_as(&sql)
                        .bind(buckets.width_millis())
                        .bind(to_millis(buckets.from))
                        .bind(to_millis(buckets.until))
                        .fetch_all(self.pool())
                        .await?;
                    Ok(rows
                        .into_iter()
                        .filter_map(|(bucket, source, class, count)| {
                            let class = usize::try_from(class).ok()?;
                            Some(LatencyCount { bucket, source, class, count })
                        })
                        .collect())
                }

                pub async fn call_counts(&self, buckets: Buckets) -> Result<Vec<CallCount>, StoreError> {
                    // Calls are counted per second first, so each bucket also knows its busiest
                    // second: the number the destination's budget is about. The index
                    // lead_history_crm_calls holds every column read.
                    let rows: Vec<(i64, String, i64, i64, i64)> = sqlx::query_as(
                        "select second * 1000 / $1, crm_destination, max(calls), cast(sum(calls) as bigint),
                                cast(sum(refused) as bigint)
                         from (select at / 1000 as second, crm_destination, count(*) as calls,
                                      sum(case when crm_status = 429 then 1 else 0 end) as refused
                               from lead_history
                               where kind = 'crm_call' and at >= $2 and at < $3 and crm_destination is not null
                               group by 1, 2) per_second
                         group by 1, 2",
                    )
                    .bind(buckets.width_millis())
                    .bind(to_millis(buckets.from))
                    .bind(to_millis(buckets.until))
                    .fetch_all(self.pool())
                    .await?;
                    Ok(rows
                        .into_iter()
                        .map(|(bucket, destination, busiest_second, calls, too_many_requests)| CallCount {
                            bucket,
                            destination,
                            calls,
                            busiest_second,
                            too_many_requests,
                        })
                        .collect())
                }

                pub async fn queue_depth(&self, now: DateTime<Utc>) -> Result<QueueDepth, StoreError> {
                    // Counts over the status index; splitting the pending ones by run_at reads
                    // their rows, as many as the queue holds, never the delivered ones.
                    let leads: Vec<(String, i64)> = sqlx::query_as(
                        "select status, count(*) from leads where status in ('pending', 'processing', 'unrouted')
                         group by status",
                    )
                    .fetch_all(self.pool())
                    .await?;
                    let due: i64 =
                        sqlx::query_scalar("select count(*) from leads where status = 'pending' and run_at <= $1")
                            .bind(to_millis(now))
                            .fetch_one(self.pool())
                            .await?;
                    let feedback: i64 =
                        sqlx::query_scalar("select count(*) from outbox where status in ('pending', 'processing')")
                            .fetch_one(self.pool())
                            .await?;
                    let mut depth = QueueDepth { due, feedback, ..QueueDepth::default() };
                    for (status, count) in leads {
                        match status.as_str() {
                            "pending" => depth.retry_later = count - due,
                            "processing" => depth.processing = count,
                            _ => depth.unrouted = count,
                        }
                    }
                    Ok(depth)
                }
            }
        }
    };
}

pub(super) use dashboard_queries;
