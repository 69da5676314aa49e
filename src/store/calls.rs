//! Calls from PBXs: their events as they arrive, and each call's state until it becomes a lead.

use chrono::{DateTime, Utc};

use super::{Store, StoreError};
use crate::domain::{Lead, LeadId, LegEvent, SourceId};

/// A call whose events are still arriving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenCall {
    pub source: SourceId,
    pub call_id: String,
    pub last_event_at: DateTime<Utc>,
}

/// How a call left the open state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallClosed {
    /// Assembled and stored as this lead.
    Complete(LeadId),
    /// Not for the CRM (an internal call, extensions nobody mapped, …), for this reason.
    Ignored(String),
}

/// A call's events as stored, with when each arrived.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredCallEvent {
    pub received_at: DateTime<Utc>,
    pub event: LegEvent,
}

impl Store {
    /// Keeps `events` (of any calls of `source`) and marks their calls as having news: one
    /// transaction, so an acknowledged event is never lost.
    ///
    /// # Errors
    /// When the database cannot take them.
    pub async fn record_call_events(&self, source: &SourceId, events: &[LegEvent]) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(store) => store.record_call_events(source, events).await,
            Self::Postgres(store) => store.record_call_events(source, events).await,
        }
    }

    /// Open calls, those quiet longest first.
    pub async fn open_calls(&self, limit: usize) -> Result<Vec<OpenCall>, StoreError> {
        match self {
            Self::Sqlite(store) => store.open_calls(limit).await,
            Self::Postgres(store) => store.open_calls(limit).await,
        }
    }

    /// Every event of one call, in the order they arrived.
    pub async fn call_events(&self, source: &SourceId, call_id: &str) -> Result<Vec<StoredCallEvent>, StoreError> {
        match self {
            Self::Sqlite(store) => store.call_events(source, call_id).await,
            Self::Postgres(store) => store.call_events(source, call_id).await,
        }
    }

    /// The events of the call a lead was made from.
    pub async fn call_events_of_lead(&self, lead: LeadId) -> Result<Vec<StoredCallEvent>, StoreError> {
        match self {
            Self::Sqlite(store) => store.call_events_of_lead(lead).await,
            Self::Postgres(store) => store.call_events_of_lead(lead).await,
        }
    }

    /// The lead a finished call became, if it has.
    pub async fn lead_of_call(&self, source: &SourceId, call_id: &str) -> Result<Option<LeadId>, StoreError> {
        match self {
            Self::Sqlite(store) => store.lead_of_call(source, call_id).await,
            Self::Postgres(store) => store.lead_of_call(source, call_id).await,
        }
    }

    /// The newest calls (as leads) with this client's number, at most `limit`.
    pub async fn calls_of_phone(&self, e164: &str, limit: usize) -> Result<Vec<Lead>, StoreError> {
        match self {
            Self::Sqlite(store) => store.calls_of_phone(e164, limit).await,
            Self::Postgres(store) => store.calls_of_phone(e164, limit).await,
        }
    }

    /// Ends a call's open state; an event arriving later is kept but opens nothing.
    pub async fn close_call(&self, source: &SourceId, call_id: &str, closed: &CallClosed) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(store) => store.close_call(source, call_id, closed).await,
            Self::Postgres(store) => store.close_call(source, call_id, closed).await,
        }
    }
}

macro_rules! call_queries {
    ($store:ident, $db:ty) => {
        mod calls {
            use chrono::Utc;

            use super::super::{$store, begin_write};
            use $crate::domain::{Lead, LeadId, LegEvent, SourceId};
            use $crate::store::calls::{CallClosed, OpenCall, StoredCallEvent};
            use $crate::store::rows::LeadRow;
            use $crate::store::{LEAD_COLUMNS, StoreError, from_millis, to_millis};

            type EventRow = (i64, String);

            impl $store {
                pub async fn record_call_events(
                    &self,
                    source: &SourceId,
                    events: &[LegEvent],
                ) -> Result<(), StoreError> {
                    let now = to_millis(Utc::now());
                    let mut tx = begin_write(self.intake_writes()).await?;
                    for event in events {
                        let text =
                            serde_json::to_string(event).map_err(|error| StoreError::Corrupt(error.to_string()))?;
                        sqlx::query(
                            "insert into call_events (source_id, call_id, received_at, event) values ($1, $2, $3, $4)",
                        )
                        .bind(&source.0)
                        .bind(&event.call_id)
                        .bind(now)
                        .bind(text)
                        .execute(&mut *tx)
                        .await?;
                        sqlx::query(
                            "insert into calls (source_id, call_id, state, last_event_at) values ($1, $2, 'open', $3)
                             on conflict (source_id, call_id) do update set last_event_at = excluded.last_event_at",
                        )
                        .bind(&source.0)
                        .bind(&event.call_id)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    }
                    tx.commit().await?;
                    Ok(())
                }

                pub async fn open_calls(&self, limit: usize) -> Result<Vec<OpenCall>, StoreError> {
                    let rows: Vec<(String, String, i64)> = sqlx::query_as(
                        "select source_id, call_id, last_event_at from calls where state = 'open'
                         order by last_event_at limit $1",
                    )
                    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                    .fetch_all(&self.pool)
                    .await?;
                    Ok(rows
                        .into_iter()
                        .map(|(source, call_id, at)| OpenCall {
                            source: SourceId(source),
                            call_id,
                            last_event_at: from_millis(at),
                        })
                        .collect())
                }

                pub async fn call_events(
                    &self,
                    source: &SourceId,
                    call_id: &str,
                ) -> Result<Vec<StoredCallEvent>, StoreError> {
                    let rows: Vec<EventRow> = sqlx::query_as(
                        "select received_at, event from call_events where source_id = $1 and call_id = $2 order by id",
                    )
                    .bind(&source.0)
                    .bind(call_id)
                    .fetch_all(&self.pool)
                    .await?;
                    rows.into_iter().map(stored_event).collect()
                }

                pub async fn call_events_of_lead(&self, lead: LeadId) -> Result<Vec<StoredCallEvent>, StoreError> {
                    let rows: Vec<EventRow> = sqlx::query_as(
                        "select e.received_at, e.event from call_events e
                         join calls c on c.source_id = e.source_id and c.call_id = e.call_id
                         where c.lead_id = $1 order by e.id",
                    )
                    .bind(lead.0)
                    .fetch_all(&self.pool)
                    .await?;
                    rows.into_iter().map(stored_event).collect()
                }

                pub async fn lead_of_call(
                    &self,
                    source: &SourceId,
                    call_id: &str,
                ) -> Result<Option<LeadId>, StoreError> {
                    let id: Option<Option<i64>> =
                        sqlx::query_scalar("select lead_id from calls where source_id = $1 and call_id = $2")
                            .bind(&source.0)
                            .bind(call_id)
                            .fetch_optional(&self.pool)
                            .await?;
                    Ok(id.flatten().map(LeadId))
                }

                pub async fn calls_of_phone(&self, e164: &str, limit: usize) -> Result<Vec<Lead>, StoreError> {
                    let rows: Vec<LeadRow> = sqlx::query_as(&format!(
                        "select {LEAD_COLUMNS} from leads where phone = $1 and call_spec is not null
                         order by id desc limit $2"
                    ))
                    .bind(e164)
                    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                    .fetch_all(&self.pool)
                    .await?;
                    rows.into_iter().map(Lead::try_from).collect()
                }

                pub async fn close_call(
                    &self,
                    source: &SourceId,
                    call_id: &str,
                    closed: &CallClosed,
                ) -> Result<(), StoreError> {
                    let (state, lead, reason) = match closed {
                        CallClosed::Complete(lead) => ("complete", Some(lead.0), None),
                        CallClosed::Ignored(reason) => ("ignored", None, Some(reason.as_str())),
                    };
                    let _turn = self.background_turn().await;
                    let mut tx = begin_write(self.writes()).await?;
                    sqlx::query(
                        "update calls set state = $1, lead_id = $2, ignored_because = $3
                         where source_id = $4 and call_id = $5 and state = 'open'",
                    )
                    .bind(state)
                    .bind(lead)
                    .bind(reason)
                    .bind(&source.0)
                    .bind(call_id)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    Ok(())
                }
            }

            fn stored_event((received_at, text): EventRow) -> Result<StoredCallEvent, StoreError> {
                let event = serde_json::from_str(&text)
                    .map_err(|error| StoreError::Corrupt(format!("a stored call event is unreadable: {error}")))?;
                Ok(StoredCallEvent { received_at: from_millis(received_at), event })
            }
        }
    };
}

pub(super) use call_queries;
