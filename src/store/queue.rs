//! The queue: claiming due leads and outbox rows, and the client index that keeps a claim's cost
//! to the rows it takes, however long the backlog.
//!
//! `client_queue` has one row per client (phone) with leads on their way: the lead that goes next
//! and when it is due, or the lead being delivered (`in_flight`). A claim takes the due rows in
//! `run_at` order; none of them can belong to a busy client, so no row is read to be passed over.
//! Every change of a lead's status keeps the index in the same transaction: intake and re-queues
//! offer a lead as its client's next (`enqueue_clients`), and a settle hands the phone to the
//! client's next lead or drops the client (`release_client`).

macro_rules! queue_queries {
    ($store:ident, $db:ty) => {
        mod queue {
            use std::collections::HashSet;
            use std::time::Duration;

            use chrono::Utc;
            use sqlx::{QueryBuilder, Transaction};

            use super::super::{LEADS_BY_ID, LEADS_STARTED, LOCK_ROW, SKIP_LOCKED_ROWS, begin_write, $store};
            use $crate::domain::LeadId;
            use $crate::store::rows::{LeadRow, OUTBOX_COLUMNS, OutboxRow};
            use $crate::store::{Claim, FeedbackClaim, LEAD_COLUMNS, StoreError, lease_token, to_millis};

            impl $store {
                pub async fn claim_due(&self, limit: usize, lease: Duration) -> Result<Vec<Claim>, StoreError> {
                    let now = to_millis(Utc::now());
                    let lease_until = now + i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
                    let token = lease_token();
                    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
                    let _turn = self.background_turn().await;
                    let mut tx = begin_write(self.writes()).await?;
                    // Take-overs first: a lead whose lease ran out still holds its client, since its
                    // worker may only be slow, and no other lead of the client starts before it settles.
                    let mut rows: Vec<LeadRow> = sqlx::query_as(&format!(
                        "update leads set lease_until = $1, lease_token = $2, updated_at = $3
                         where id in (select id from leads where status = 'processing' and lease_until <= $3
                                      order by lease_until limit $4 {SKIP_LOCKED_ROWS})
                         returning {LEAD_COLUMNS}"
                    ))
                    .bind(lease_until)
                    .bind(&token)
                    .bind(now)
                    .bind(limit)
                    .fetch_all(&mut *tx)
                    .await?;
                    let wanted = limit - i64::try_from(rows.len()).unwrap_or(limit);
                    if wanted > 0 {
                        let next: Vec<(String, i64)> = sqlx::query_as(&format!(
                            "update client_queue set in_flight = true
                             where phone in (select phone from client_queue where in_flight = false and run_at <= $1
                                             order by run_at limit $2 {SKIP_LOCKED_ROWS})
                             returning phone, lead_id"
                        ))
                        .bind(now)
                        .bind(wanted)
                        .fetch_all(&mut *tx)
                        .await?;
                        rows.extend(start_leads(&mut tx, &next, lease_until, &token, now).await?);
                    }
                    tx.commit().await?;
                    rows.into_iter().map(|row| row.into_claim(&token)).collect()
                }

                /// Takes up to `limit` due outbox rows: first those whose lease ran out, then pending ones
                /// in due order; each arm walks its index and stops at the limit.
                pub async fn claim_feedback(
                    &self,
                    limit: usize,
                    lease: Duration,
                ) -> Result<Vec<FeedbackClaim>, StoreError> {
                    let now = Utc::now();
                    let token = lease_token();
                    let sql = format!(
                        "update outbox set status = 'sending', lease_until = $1, lease_token = $2
                         where id in (
                             select id from (select id from outbox where status = 'sending' and lease_until <= $3
                                             order by lease_until limit $4 {SKIP_LOCKED_ROWS}) as expired
                             union all
                             select id from (select id from outbox where status = 'pending' and run_at <= $3
                                             order by run_at limit $4 {SKIP_LOCKED_ROWS}) as due
                             limit $4)
                         returning {OUTBOX_COLUMNS}"
                    );
                    let _turn = self.background_turn().await;
                    let rows: Vec<OutboxRow> = sqlx::query_as(&sql)
                        .bind(to_millis(now + lease))
                        .bind(&token)
                        .bind(to_millis(now))
                        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                        .fetch_all(self.writes())
                        .await?;
                    rows.into_iter().map(|row| row.into_claim(&token)).collect()
                }
            }

            /// Sets the leads the claim took from `client_queue` to `processing`. A client whose lead is
            /// not pending any more (changed by hand in the database) is not left held by it.
            async fn start_leads(
                tx: &mut Transaction<'_, $db>,
                next: &[(String, i64)],
                lease_until: i64,
                token: &str,
                now: i64,
            ) -> Result<Vec<LeadRow>, StoreError> {
                if next.is_empty() {
                    return Ok(Vec::new());
                }
                let mut update = QueryBuilder::<$db>::new(format!(
                    "update leads {LEADS_BY_ID} set status = 'processing', lease_until = "
                ));
                update.push_bind(lease_until).push(", lease_token = ").push_bind(token.to_owned());
                update.push(", updated_at = ").push_bind(now).push(" where status = 'pending' and id in (");
                let mut ids = update.separated(", ");
                for (_, id) in next {
                    ids.push_bind(*id);
                }
                update.push(format!(") returning {LEAD_COLUMNS}"));
                let rows: Vec<LeadRow> = update.build_query_as().fetch_all(&mut **tx).await?;
                let started: HashSet<i64> = rows.iter().map(|row| row.id).collect();
                for (phone, id) in next.iter().filter(|(_, id)| !started.contains(id)) {
                    tracing::warn!(lead.id = id, "a queued lead was no longer pending; its client moves on");
                    release_client(tx, phone, LeadId(*id)).await?;
                }
                Ok(rows)
            }

            /// Offers each `(phone, lead)` as its client's next lead, due at `run_at`. A client with a lead
            /// in flight, or waiting with its CRM steps started, keeps it; otherwise the lead due first goes
            /// next, and a `started` lead goes before one that has not started.
            pub(super) async fn enqueue_clients<'a>(
                tx: &mut Transaction<'_, $db>,
                leads: impl Iterator<Item = (&'a str, LeadId)>,
                run_at: i64,
                started: bool,
            ) -> Result<(), StoreError> {
                // One row per client, the earliest lead, in phone order: PostgreSQL locks the rows in the
                // order given, so two nodes' batches never wait on each other in a circle.
                let mut leads: Vec<(&str, LeadId)> = leads.collect();
                leads.sort_unstable_by_key(|(phone, id)| (*phone, id.0));
                leads.dedup_by_key(|(phone, _)| *phone);
                if leads.is_empty() {
                    return Ok(());
                }
                let mut insert =
                    QueryBuilder::<$db>::new("insert into client_queue (phone, lead_id, run_at, in_flight, started) ");
                insert.push_values(leads, |mut row, (phone, id)| {
                    row.push_bind(phone).push_bind(id.0).push_bind(run_at).push_bind(false).push_bind(started);
                });
                insert.push(
                    " on conflict (phone) do update
                        set lead_id = excluded.lead_id, run_at = excluded.run_at, started = excluded.started
                      where client_queue.in_flight = false and client_queue.started = false
                        and (excluded.started or excluded.run_at < client_queue.run_at)",
                );
                insert.build().execute(&mut **tx).await?;
                Ok(())
            }

            /// The client's next lead once `lead` has settled or gone back to wait: the lead that started its
            /// CRM steps, else the earliest due (ties by id). Each arm is one probe of an index.
            fn next_lead_sql() -> String {
                format!(
                    "select id, run_at, started from (
                    select id, run_at, started from (
                        select id, run_at, true as started from leads {LEADS_STARTED}
                        where phone = $1 and status = 'pending' and progress is not null
                        order by run_at, id limit 1) as resumed
                    union all
                    select id, run_at, started from (
                        select id, run_at, false as started from leads
                        where phone = $1 and status = 'pending'
                        order by run_at, id limit 1) as earliest
                ) as next
                order by started desc, run_at, id
                limit 1"
                )
            }

            /// Hands the client's phone from `lead` to the client's next lead, or drops the client when it
            /// has none; in the transaction that settles `lead` or sends it back to wait.
            pub(super) async fn release_client(
                tx: &mut Transaction<'_, $db>,
                phone: &str,
                lead: LeadId,
            ) -> Result<(), StoreError> {
                let current: Option<(i64, bool)> =
                    sqlx::query_as(&format!("select lead_id, in_flight from client_queue where phone = $1 {LOCK_ROW}"))
                        .bind(phone)
                        .fetch_optional(&mut **tx)
                        .await?;
                if current.is_some_and(|(holder, in_flight)| in_flight && holder != lead.0) {
                    // Another lead of the client is being delivered; it hands the phone on when it settles.
                    return Ok(());
                }
                let next: Option<(i64, i64, bool)> =
                    sqlx::query_as(&next_lead_sql()).bind(phone).fetch_optional(&mut **tx).await?;
                match next {
                    Some((id, run_at, started)) => {
                        sqlx::query(
                            "insert into client_queue (phone, lead_id, run_at, in_flight, started)
                             values ($1, $2, $3, false, $4)
                             on conflict (phone) do update
                                 set lead_id = excluded.lead_id, run_at = excluded.run_at, in_flight = false,
                                     started = excluded.started",
                        )
                        .bind(phone)
                        .bind(id)
                        .bind(run_at)
                        .bind(started)
                        .execute(&mut **tx)
                        .await?;
                    }
                    None if current.is_some() => {
                        sqlx::query("delete from client_queue where phone = $1").bind(phone).execute(&mut **tx).await?;
                    }
                    None => {}
                }
                Ok(())
            }
        }
    };
}

pub(super) use queue_queries;
