//! The end of a lead's data: retention removes settled leads, their history details and files once
//! old enough, in small batches; erasure turns every lead of one person into an anonymous tombstone.

use chrono::{DateTime, Utc};

use super::{Store, StoreError};
use crate::domain::{Attachment, DealSpec};

/// Leads that reached their end: only these are ever removed by retention.
pub(super) const SETTLED: &str = "('approved', 'rejected', 'skipped', 'dead')";

/// Whose data to erase: a phone in E.164 (as intake stores it), an e-mail address, or both.
#[derive(Debug, Clone, Default)]
pub struct Person {
    pub e164: Option<String>,
    pub email: Option<String>,
}

/// What asking to erase a person did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Erasure {
    /// These leads are tombstones now; these files (by SHA-256) belonged to them.
    Erased { leads: usize, files: Vec<String> },
    /// This many of the person's leads are being delivered right now: nothing was erased, since
    /// the delivery would write the data back. Asking again after it settles succeeds.
    InDelivery(usize),
}

/// One batch removed by retention.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Removed {
    /// Rows removed or cleared by the batch.
    pub rows: usize,
    /// Files (by SHA-256) the batch's leads linked; each is removed unless another lead links it.
    pub files: Vec<String>,
}

/// The files a stored `deal_spec` links.
pub(super) fn attachments(deal_spec: Option<&str>) -> impl Iterator<Item = String> {
    let spec: Option<DealSpec> = deal_spec.and_then(|text| serde_json::from_str(text).ok());
    spec.map(|spec| spec.attachments).unwrap_or_default().into_iter().map(|Attachment { sha256, .. }| sha256)
}

impl Store {
    /// Removes up to `limit` settled leads created before `before`, with their history, outbox rows
    /// and calls, in one short transaction. Leads still owing a callback or an e-mail stay.
    pub async fn purge_leads(&self, before: DateTime<Utc>, limit: usize) -> Result<Removed, StoreError> {
        match self {
            Self::Sqlite(store) => store.purge_leads(before, limit).await,
            Self::Postgres(store) => store.purge_leads(before, limit).await,
        }
    }

    /// Clears the details of up to `limit` history events older than `before`, of settled leads
    /// only; the events themselves (what happened, when) stay.
    pub async fn prune_history(&self, before: DateTime<Utc>, limit: usize) -> Result<Removed, StoreError> {
        match self {
            Self::Sqlite(store) => store.prune_history(before, limit).await,
            Self::Postgres(store) => store.prune_history(before, limit).await,
        }
    }

    /// Marks the files of up to `limit` settled leads created before `before` as removed, and
    /// returns them for removal from disk.
    pub async fn expire_files(&self, before: DateTime<Utc>, limit: usize) -> Result<Removed, StoreError> {
        match self {
            Self::Sqlite(store) => store.expire_files(before, limit).await,
            Self::Postgres(store) => store.expire_files(before, limit).await,
        }
    }

    /// Whether a lead whose files are kept still links the file `sha256`.
    pub async fn file_linked(&self, sha256: &str) -> Result<bool, StoreError> {
        match self {
            Self::Sqlite(store) => store.file_linked(sha256).await,
            Self::Postgres(store) => store.file_linked(sha256).await,
        }
    }

    /// Erases every lead of `person`: personal fields, payload, history details, outbox rows and the
    /// events of their calls go; a tombstone (id, source, dates, status, outcome) stays. Leads not
    /// yet delivered are cancelled (they become `dead`); leads being delivered refuse the erasure.
    pub async fn erase_person(&self, person: &Person, requested_by: &str) -> Result<Erasure, StoreError> {
        match self {
            Self::Sqlite(store) => store.erase_person(person, requested_by).await,
            Self::Postgres(store) => store.erase_person(person, requested_by).await,
        }
    }
}

macro_rules! lifecycle_queries {
    ($store:ident, $db:ty) => {
        mod lifecycle {
            use chrono::{DateTime, Utc};
            use sqlx::{QueryBuilder, Transaction};

            use super::super::{$store, LOCK_ROW, SKIP_LOCKED_ROWS, begin_write};
            use super::insert_history;
            use super::queue::release_client;
            use $crate::domain::{HistoryEvent, LeadId};
            use $crate::store::lifecycle::{Erasure, Person, Removed, SETTLED, attachments};
            use $crate::store::{StoreError, to_millis};

            /// `… in ($1, $2, …)` over `ids`.
            fn push_ids<'a>(query: &mut QueryBuilder<'a, $db>, ids: &'a [i64]) {
                query.push(" (");
                let mut list = query.separated(", ");
                for id in ids {
                    list.push_bind(*id);
                }
                query.push(")");
            }

            async fn delete_of_leads(
                tx: &mut Transaction<'_, $db>,
                sql: &str,
                ids: &[i64],
            ) -> Result<(), StoreError> {
                let mut query = QueryBuilder::<$db>::new(sql);
                push_ids(&mut query, ids);
                query.build().execute(&mut **tx).await?;
                Ok(())
            }

            impl $store {
                pub async fn purge_leads(&self, before: DateTime<Utc>, limit: usize) -> Result<Removed, StoreError> {
                    let _turn = self.background_turn().await;
                    let mut tx = begin_write(self.writes()).await?;
                    // On PostgreSQL a lead another node is re-sending right now is left for the next round.
                    let found: Vec<(i64, Option<String>)> = sqlx::query_as(&format!(
                        "select id, deal_spec from leads
                         where created_at < $1 and status in {SETTLED}
                           and not exists (select 1 from outbox where outbox.lead_id = leads.id
                                                                  and outbox.status in ('pending', 'sending', 'waiting'))
                           and not exists (select 1 from client_queue where client_queue.lead_id = leads.id)
                         order by created_at limit $2 {SKIP_LOCKED_ROWS}"
                    ))
                    .bind(to_millis(before))
                    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                    .fetch_all(&mut *tx)
                    .await?;
                    if found.is_empty() {
                        return Ok(Removed::default());
                    }
                    let ids: Vec<i64> = found.iter().map(|(id, _)| *id).collect();
                    let mut events = QueryBuilder::<$db>::new(
                        "delete from call_events where (source_id, call_id) in
                             (select source_id, call_id from calls where lead_id in",
                    );
                    push_ids(&mut events, &ids);
                    events.push(")");
                    events.build().execute(&mut *tx).await?;
                    for sql in [
                        "delete from calls where lead_id in",
                        "delete from outbox where lead_id in",
                        "delete from lead_history where lead_id in",
                        "delete from leads where id in",
                    ] {
                        delete_of_leads(&mut tx, sql, &ids).await?;
                    }
                    tx.commit().await?;
                    let files = found.iter().flat_map(|(_, spec)| attachments(spec.as_deref())).collect();
                    Ok(Removed { rows: ids.len(), files })
                }

                pub async fn prune_history(&self, before: DateTime<Utc>, limit: usize) -> Result<Removed, StoreError> {
                    let _turn = self.background_turn().await;
                    let cleared = sqlx::query(&format!(
                        "update lead_history set detail = null
                         where id in (select lead_history.id from lead_history
                                      join leads on leads.id = lead_history.lead_id
                                      where lead_history.detail is not null and lead_history.at < $1
                                        and leads.status in {SETTLED}
                                      order by lead_history.at limit $2)"
                    ))
                    .bind(to_millis(before))
                    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                    .execute(self.writes())
                    .await?;
                    Ok(Removed { rows: usize::try_from(cleared.rows_affected()).unwrap_or(usize::MAX), files: Vec::new() })
                }

                pub async fn expire_files(&self, before: DateTime<Utc>, limit: usize) -> Result<Removed, StoreError> {
                    let _turn = self.background_turn().await;
                    let specs: Vec<Option<String>> = sqlx::query_scalar(&format!(
                        "update leads set files_removed_at = $1
                         where id in (select id from leads
                                      where deal_spec is not null and files_removed_at is null
                                        and created_at < $2 and status in {SETTLED}
                                      order by created_at limit $3)
                         returning deal_spec"
                    ))
                    .bind(to_millis(Utc::now()))
                    .bind(to_millis(before))
                    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                    .fetch_all(self.writes())
                    .await?;
                    let files = specs.iter().flat_map(|spec| attachments(spec.as_deref())).collect();
                    Ok(Removed { rows: specs.len(), files })
                }

                pub async fn file_linked(&self, sha256: &str) -> Result<bool, StoreError> {
                    let linked: bool = sqlx::query_scalar(
                        "select exists (select 1 from leads
                                        where deal_spec like $1 and files_removed_at is null and erased_at is null)",
                    )
                    .bind(format!("%{sha256}%"))
                    .fetch_one(self.pool())
                    .await?;
                    Ok(linked)
                }

                pub async fn erase_person(&self, person: &Person, requested_by: &str) -> Result<Erasure, StoreError> {
                    let now = to_millis(Utc::now());
                    let email = person.email.as_deref().map(str::to_lowercase);
                    let _turn = self.background_turn().await;
                    let mut tx = begin_write(self.writes()).await?;
                    // A claim locks a client's queue row before its lead; taking the person's queue
                    // rows first keeps the same order, so the two never wait on each other (on
                    // PostgreSQL that was a deadlock, and one of them was aborted).
                    sqlx::query(&format!(
                        "select phone from client_queue
                         where phone in (select phone from leads
                                         where erased_at is null and (phone = $1 or lower(email) = $2))
                         order by phone {LOCK_ROW}"
                    ))
                    .bind(person.e164.as_deref())
                    .bind(email.as_deref())
                    .fetch_all(&mut *tx)
                    .await?;
                    // Locked on PostgreSQL, so a claim on another node either took a lead before
                    // (and it is refused below as in delivery) or skips it until we are done.
                    let found: Vec<(i64, String, String, Option<String>)> = sqlx::query_as(&format!(
                        "select id, status, phone, deal_spec from leads
                         where erased_at is null and (phone = $1 or lower(email) = $2)
                         order by id {LOCK_ROW}"
                    ))
                    .bind(person.e164.as_deref())
                    .bind(email.as_deref())
                    .fetch_all(&mut *tx)
                    .await?;
                    let delivering = found.iter().filter(|(_, status, ..)| status == "processing").count();
                    if delivering > 0 {
                        tx.rollback().await?;
                        return Ok(Erasure::InDelivery(delivering));
                    }
                    let ids: Vec<i64> = found.iter().map(|(id, ..)| *id).collect();
                    erase_calls(&mut tx, &ids, person).await?;
                    if !ids.is_empty() {
                        cancel_queued(&mut tx, &found, now).await?;
                        anonymize(&mut tx, &ids, now).await?;
                        let erased = HistoryEvent::now("erased", serde_json::json!({ "by": requested_by }));
                        for id in &ids {
                            insert_history(&mut tx, LeadId(*id), std::slice::from_ref(&erased)).await?;
                        }
                    }
                    // The console remembers each operator's last search, which may be this person's phone.
                    sqlx::query("update console_sessions set search = null").execute(&mut *tx).await?;
                    tx.commit().await?;
                    let files = found.iter().flat_map(|(.., spec)| attachments(spec.as_deref())).collect();
                    Ok(Erasure::Erased { leads: ids.len(), files })
                }
            }

            /// Leads still waiting for delivery (or for their advertiser) will never go: they become
            /// `dead` and leave the queue, so the worker never claims an emptied lead.
            async fn cancel_queued(
                tx: &mut Transaction<'_, $db>,
                found: &[(i64, String, String, Option<String>)],
                now: i64,
            ) -> Result<(), StoreError> {
                let queued = found.iter().filter(|(_, status, ..)| status == "pending" || status == "unrouted");
                for (id, _, phone, _) in queued {
                    sqlx::query(
                        "update leads set status = 'dead', last_error = 'erased before delivery', updated_at = $1
                         where id = $2",
                    )
                    .bind(now)
                    .bind(*id)
                    .execute(&mut **tx)
                    .await?;
                    release_client(tx, phone, LeadId(*id)).await?;
                }
                Ok(())
            }

            /// The events of the person's calls (they carry the number in the PBX's spelling), of
            /// calls that became their leads and of calls still open; open ones are closed as ignored.
            async fn erase_calls(tx: &mut Transaction<'_, $db>, ids: &[i64], person: &Person) -> Result<(), StoreError> {
                let digits = person.e164.as_deref().map(|e164| {
                    let digits: String = e164.chars().filter(char::is_ascii_digit).collect();
                    format!("%{}%", &digits[digits.len().saturating_sub(10)..])
                });
                // `in ()` is no SQL on PostgreSQL: a person without leads may still have calls.
                let mut calls = QueryBuilder::<$db>::new("select source_id, call_id from calls where ");
                if ids.is_empty() {
                    calls.push("false");
                } else {
                    calls.push("lead_id in");
                    push_ids(&mut calls, ids);
                }
                if let Some(digits) = digits {
                    calls.push(" union select source_id, call_id from call_events where event like ");
                    calls.push_bind(digits);
                }
                let calls: Vec<(String, String)> = calls.build_query_as().fetch_all(&mut **tx).await?;
                for (source, call) in calls {
                    sqlx::query("delete from call_events where source_id = $1 and call_id = $2")
                        .bind(&source)
                        .bind(&call)
                        .execute(&mut **tx)
                        .await?;
                    sqlx::query(
                        "update calls set state = 'ignored', ignored_because = 'personal data erased'
                         where source_id = $1 and call_id = $2 and state = 'open'",
                    )
                    .bind(&source)
                    .bind(&call)
                    .execute(&mut **tx)
                    .await?;
                }
                Ok(())
            }

            /// Everything of the lead that could name the person goes; what stays tells counts and
            /// audits how the lead went: its source, dates, status, decision and CRM records.
            async fn anonymize(tx: &mut Transaction<'_, $db>, ids: &[i64], now: i64) -> Result<(), StoreError> {
                delete_of_leads(tx, "delete from outbox where lead_id in", ids).await?;
                delete_of_leads(tx, "update lead_history set detail = null where lead_id in", ids).await?;
                let mut update = QueryBuilder::<$db>::new(
                    "update leads set name = '', phone = '', phone_raw = '', email = null, comment = null,
                         callback_url = null, payload = '{}', external_id = null, progress = null,
                         deal_spec = null, call_spec = null, lease_token = null,
                         last_error = case when last_error = 'erased before delivery' then last_error end,
                         erased_at = ",
                );
                update.push_bind(now);
                update.push(" where id in");
                push_ids(&mut update, ids);
                update.build().execute(&mut **tx).await?;
                Ok(())
            }
        }
    };
}

pub(super) use lifecycle_queries;
