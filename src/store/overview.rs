//! The console's reads over the leads: the lead list's keyset search, dead leads and failed
//! feedback by cause, each source's week, and the dead leads a bulk re-send takes.

use chrono::{DateTime, Utc};

use super::{Store, StoreError};
use crate::domain::{Lead, LeadId, LeadStatus, SourceId};

/// The lead list's filters, each optional; ids below `before` only (the keyset cursor).
#[derive(Debug, Clone, Default)]
pub struct LeadQuery {
    pub status: Option<LeadStatus>,
    pub source: Option<SourceId>,
    /// Leads routed to this CRM destination: those whose own route names it, and those of
    /// `destination_sources` (whose source's route names it) that carry no route of their own.
    pub destination: Option<String>,
    pub destination_sources: Vec<SourceId>,
    pub from: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub search: Option<LeadSearch>,
    pub before: Option<LeadId>,
    pub limit: usize,
}

/// What the search box was understood as; a phone is already normalized as intake does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeadSearch {
    Id(LeadId),
    Phone(String),
    Email(String),
    Name(String),
}

/// Dead leads (or failed feedback) sharing one cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureGroup {
    /// The source of dead leads; the kind (`callback`, `email`, `deal_note`) of failed feedback.
    pub group: String,
    pub cause: String,
    pub count: i64,
    pub latest: DateTime<Utc>,
}

/// How one source's leads are going: what came in, how it ended, what waits.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SourceActivity {
    pub source: String,
    /// Leads received since the start of today (UTC), and in the last seven days.
    pub today: i64,
    pub week: i64,
    /// Of the week's leads: how each ended so far.
    pub approved: i64,
    pub rejected: i64,
    pub dead: i64,
    pub other: i64,
    /// Leads waiting for the CRM now (pending or being sent), whenever received.
    pub waiting: i64,
    pub oldest_waiting: Option<DateTime<Utc>>,
    /// The last time one of the week's leads reached the CRM (approved or rejected there).
    pub last_delivered: Option<DateTime<Utc>>,
}

impl SourceActivity {
    /// Accepting but not delivering: leads wait, the oldest since before `since`, and none of
    /// the week's leads reached the CRM since then. The console's banner and the alert share it.
    pub fn stalled_since(&self, since: DateTime<Utc>) -> bool {
        let waiting_long = self.oldest_waiting.is_some_and(|oldest| oldest < since);
        let nothing_delivered = self.last_delivered.is_none_or(|delivered| delivered < since);
        self.waiting > 0 && waiting_long && nothing_delivered
    }
}

impl Store {
    /// Per source: the week's leads and outcomes, and what waits now.
    pub async fn source_activity(
        &self,
        today: DateTime<Utc>,
        week: DateTime<Utc>,
    ) -> Result<Vec<SourceActivity>, StoreError> {
        match self {
            Self::Sqlite(store) => store.source_activity(today, week).await,
            Self::Postgres(store) => store.source_activity(today, week).await,
        }
    }

    /// Leads matching `query`, newest first, at most `query.limit`.
    pub async fn search_leads(&self, query: &LeadQuery) -> Result<Vec<Lead>, StoreError> {
        match self {
            Self::Sqlite(store) => store.search_leads(query).await,
            Self::Postgres(store) => store.search_leads(query).await,
        }
    }

    /// Dead leads grouped by source and last error, then failed feedback grouped by kind and error.
    pub async fn failure_groups(&self) -> Result<(Vec<FailureGroup>, Vec<FailureGroup>), StoreError> {
        match self {
            Self::Sqlite(store) => store.failure_groups().await,
            Self::Postgres(store) => store.failure_groups().await,
        }
    }

    /// Leads that died at or after `since` (optionally of one source), oldest first.
    pub async fn dead_since(&self, source: Option<&SourceId>, since: DateTime<Utc>) -> Result<Vec<LeadId>, StoreError> {
        match self {
            Self::Sqlite(store) => store.dead_since(source, since).await,
            Self::Postgres(store) => store.dead_since(source, since).await,
        }
    }
}

macro_rules! overview_queries {
    ($store:ident, $db:ty) => {
        mod overview {
            use chrono::{DateTime, Utc};
            use sqlx::QueryBuilder;

            use super::super::$store;
            use $crate::domain::{Lead, LeadId, SourceId};
            use $crate::store::overview::{FailureGroup, LeadQuery, LeadSearch, SourceActivity};
            use $crate::store::rows::LeadRow;
            use $crate::store::{LEAD_COLUMNS, StoreError, from_millis, to_millis};

            impl $store {
                pub async fn search_leads(&self, query: &LeadQuery) -> Result<Vec<Lead>, StoreError> {
                    let mut sql = QueryBuilder::<$db>::new(format!("select {LEAD_COLUMNS} from leads where true"));
                    if let Some(status) = query.status {
                        sql.push(" and status = ").push_bind(status.as_str());
                    }
                    if let Some(source) = &query.source {
                        sql.push(" and source_id = ").push_bind(source.0.clone());
                    }
                    if let Some(destination) = &query.destination {
                        sql.push(" and (route_destination = ").push_bind(destination.clone());
                        if !query.destination_sources.is_empty() {
                            sql.push(" or (route_destination is null and source_id in (");
                            let mut list = sql.separated(", ");
                            for source in &query.destination_sources {
                                list.push_bind(source.0.clone());
                            }
                            sql.push("))");
                        }
                        sql.push(")");
                    }
                    if let Some(from) = query.from {
                        sql.push(" and created_at >= ").push_bind(to_millis(from));
                    }
                    if let Some(until) = query.until {
                        sql.push(" and created_at < ").push_bind(to_millis(until));
                    }
                    match &query.search {
                        Some(LeadSearch::Id(id)) => {
                            sql.push(" and id = ").push_bind(id.0);
                        }
                        Some(LeadSearch::Phone(e164)) => {
                            sql.push(" and phone = ").push_bind(e164.clone());
                        }
                        Some(LeadSearch::Email(email)) => {
                            sql.push(" and lower(email) = lower(").push_bind(email.clone()).push(")");
                        }
                        Some(LeadSearch::Name(name)) => {
                            // No index serves a substring; the keyset limit bounds the walk.
                            let pattern = format!("%{}%", name.to_lowercase().replace(['%', '_'], ""));
                            sql.push(" and lower(name) like ").push_bind(pattern);
                        }
                        None => {}
                    }
                    if let Some(before) = query.before {
                        sql.push(" and id < ").push_bind(before.0);
                    }
                    sql.push(" order by id desc limit ").push_bind(i64::try_from(query.limit).unwrap_or(i64::MAX));
                    let rows: Vec<LeadRow> = sql.build_query_as().fetch_all(self.pool()).await?;
                    rows.into_iter().map(Lead::try_from).collect()
                }

                pub async fn failure_groups(&self) -> Result<(Vec<FailureGroup>, Vec<FailureGroup>), StoreError> {
                    let dead: Vec<(String, Option<String>, i64, i64)> = sqlx::query_as(
                        "select source_id, last_error, count(*), max(updated_at) from leads where status = 'dead'
                         group by source_id, last_error order by count(*) desc, source_id",
                    )
                    .fetch_all(self.pool())
                    .await?;
                    let failed: Vec<(String, Option<String>, i64, i64)> = sqlx::query_as(
                        "select kind, last_error, count(*), max(run_at) from outbox where status = 'failed'
                         group by kind, last_error order by count(*) desc, kind",
                    )
                    .fetch_all(self.pool())
                    .await?;
                    let group = |rows: Vec<(String, Option<String>, i64, i64)>| {
                        rows.into_iter()
                            .map(|(group, cause, count, latest)| FailureGroup {
                                group,
                                cause: cause.unwrap_or_default(),
                                count,
                                latest: from_millis(latest),
                            })
                            .collect()
                    };
                    Ok((group(dead), group(failed)))
                }

                pub async fn source_activity(
                    &self,
                    today: DateTime<Utc>,
                    week: DateTime<Utc>,
                ) -> Result<Vec<SourceActivity>, StoreError> {
                    // The week through the created_at index; what waits through the status index.
                    let recent: Vec<(String, i64, i64, i64, i64, i64, Option<i64>)> = sqlx::query_as(
                        "select source_id,
                                sum(case when created_at >= $1 then 1 else 0 end),
                                count(*),
                                sum(case when status = 'approved' then 1 else 0 end),
                                sum(case when status = 'rejected' then 1 else 0 end),
                                sum(case when status = 'dead' then 1 else 0 end),
                                max(case when status in ('approved', 'rejected') then updated_at end)
                         from leads where created_at >= $2 group by source_id",
                    )
                    .bind(to_millis(today))
                    .bind(to_millis(week))
                    .fetch_all(self.pool())
                    .await?;
                    let waiting: Vec<(String, i64, i64)> = sqlx::query_as(
                        "select source_id, count(*), min(created_at) from leads
                         where status in ('pending', 'processing') group by source_id",
                    )
                    .fetch_all(self.pool())
                    .await?;
                    let mut activity: std::collections::BTreeMap<String, SourceActivity> = Default::default();
                    for (source, today, week, approved, rejected, dead, delivered) in recent {
                        let entry = activity.entry(source.clone()).or_default();
                        *entry = SourceActivity {
                            source,
                            today,
                            week,
                            approved,
                            rejected,
                            dead,
                            other: week - approved - rejected - dead,
                            last_delivered: delivered.map(from_millis),
                            ..SourceActivity::default()
                        };
                    }
                    for (source, count, oldest) in waiting {
                        let entry = activity.entry(source.clone()).or_default();
                        entry.source = source;
                        entry.waiting = count;
                        entry.oldest_waiting = Some(from_millis(oldest));
                    }
                    Ok(activity.into_values().collect())
                }

                pub async fn dead_since(
                    &self,
                    source: Option<&SourceId>,
                    since: DateTime<Utc>,
                ) -> Result<Vec<LeadId>, StoreError> {
                    let ids: Vec<i64> = sqlx::query_scalar(
                        "select id from leads where status = 'dead' and updated_at >= $1
                             and ($2 is null or source_id = $2)
                         order by id",
                    )
                    .bind(to_millis(since))
                    .bind(source.map(|source| source.0.as_str()))
                    .fetch_all(self.pool())
                    .await?;
                    Ok(ids.into_iter().map(LeadId).collect())
                }
            }
        }
    };
}

pub(super) use overview_queries;
