//! The SQL both backends share, written once. sqlx binds `$N` parameters on SQLite as on
//! PostgreSQL, so one text serves both; `shared_queries!` stamps it out for each backend's store.
//!
//! A backend supplies what differs: opening, where writes go (`writes`, `intake_writes`,
//! `background_turn`), the row locks PostgreSQL needs where SQLite's single writer already keeps
//! transactions apart (`SKIP_LOCKED_ROWS`, `LOCK_ROW`, `lock_clients`, `lock_lead`), and the
//! announcement of new leads to other nodes (`announce_new_leads`). The queue itself (claims,
//! and the client index every change of a lead's status keeps) is in `queue.rs`.

macro_rules! shared_queries {
    ($store:ident, $db:ty) => {
        mod shared {
            $crate::store::queue::queue_queries!($store, $db);
            $crate::store::calls::call_queries!($store, $db);
            $crate::store::stats::stats_queries!($store, $db);
            $crate::store::console::console_queries!($store, $db);
            $crate::store::overview::overview_queries!($store, $db);
            $crate::store::lifecycle::lifecycle_queries!($store, $db);
            $crate::store::dashboard::dashboard_queries!($store, $db);
            $crate::store::alerts::alert_queries!($store, $db);

            use std::collections::HashMap;
            use std::time::Duration;

            use chrono::{DateTime, Utc};
            use secrecy::{ExposeSecret, SecretString};
            use serde_json::json;
            use sqlx::{QueryBuilder, Transaction};

            use super::{$store, announce_new_leads, begin_write, lock_clients, lock_lead};
            use queue::{enqueue_clients, release_client};
            use $crate::domain::advertiser::{Advertiser, AdvertiserId};
            use $crate::domain::{Email, HistoryEvent, Lead, LeadId, LeadStatus, NewLead, Outcome, Routing, SourceId};
            use $crate::store::rows::{
                ADVERTISER_COLUMNS, AdvertiserRow, HistoryRow, LeadRow, OUTBOX_COLUMNS, OutboxRow,
            };
            use $crate::store::{
                AttemptCount, FeedbackClaim, Inserted, LEAD_COLUMNS, Lease, OwedFeedback, Requeue, StoreError,
                StoredFeedback, StoredTokens, deal_spec_text, from_millis, to_millis,
            };

            impl $store {
            pub async fn insert_leads(&self, leads: &[NewLead]) -> Result<Vec<Inserted>, StoreError> {
                let mut tx = begin_write(self.intake_writes()).await?;
                // Leads without an external id or a duplicate check cannot conflict, so they go in as one
                // statement: each statement is a round trip to SQLite's thread, and that, not SQLite,
                // dominates a batch. The others go one by one, each seeing the batch's earlier leads.
                let (plain, keyed): (Vec<usize>, Vec<usize>) = (0..leads.len())
                    .partition(|&index| leads[index].external_id.is_none() && leads[index].duplicate_check.is_none());
                let mut results = vec![None; leads.len()];
                let plain_ids = insert_plain_leads(&mut tx, plain.iter().map(|&index| &leads[index])).await?;
                for (index, id) in plain.into_iter().zip(plain_ids) {
                    results[index] = Some(Inserted::New(id));
                }
                // The same order on every node, so two batches never wait on each other in a circle.
                let mut keyed = keyed;
                keyed.sort_by(|&a, &b| (&leads[a].source, &leads[a].external_id).cmp(&(&leads[b].source, &leads[b].external_id)));
                lock_clients(&mut tx, keyed.iter().map(|&index| &leads[index]).filter(|lead| lead.duplicate_check.is_some()))
                    .await?;
                for index in keyed {
                    results[index] = Some(insert_lead(&mut tx, &leads[index]).await?);
                }
                let queued = leads.iter().zip(&results).filter_map(|(lead, result)| match result {
                    Some(Inserted::New(id)) if lead.initial_status() == LeadStatus::Pending => Some((lead.phone.e164(), *id)),
                    _ => None,
                });
                enqueue_clients(&mut tx, queued, to_millis(Utc::now()), false).await?;
                let any_new = results.iter().any(|result| matches!(result, Some(Inserted::New(_))));
                announce_new_leads(&mut tx, any_new).await?;
                tx.commit().await?;
                Ok(results.into_iter().map(|result| result.expect("every lead was inserted")).collect())
            }

            pub async fn find_lead(&self, id: LeadId) -> Result<Option<Lead>, StoreError> {
                let row: Option<LeadRow> = sqlx::query_as(&format!("select {LEAD_COLUMNS} from leads where id = $1"))
                    .bind(id.0)
                    .fetch_optional(&self.pool)
                    .await?;
                row.map(Lead::try_from).transpose()
            }

            pub async fn history(&self, id: LeadId) -> Result<Vec<HistoryEvent>, StoreError> {
                let rows: Vec<HistoryRow> =
                    sqlx::query_as("select at, kind, detail from lead_history where lead_id = $1 order by id")
                        .bind(id.0)
                        .fetch_all(&self.pool)
                        .await?;
                Ok(rows.into_iter().map(HistoryEvent::from).collect())
            }

            pub async fn record_step(
                &self,
                lease: &Lease,
                progress: &serde_json::Value,
                events: &[HistoryEvent],
                extend_by: Duration,
            ) -> Result<(), StoreError> {
                let now = Utc::now();
                let _turn = self.background_turn().await;
                let mut tx = begin_write(self.writes()).await?;
                let updated = sqlx::query(
                    "update leads set progress = $1, lease_until = $2, updated_at = $3
                     where id = $4 and lease_token = $5 and status = 'processing'",
                )
                .bind(progress.to_string())
                .bind(to_millis(now + extend_by))
                .bind(to_millis(now))
                .bind(lease.lead_id.0)
                .bind(&lease.token)
                .execute(&mut *tx)
                .await?;
                finish_owned_write(tx, lease, updated.rows_affected(), events).await
            }

            pub async fn extend_lease(&self, lease: &Lease, extend_by: Duration) -> Result<(), StoreError> {
                let _turn = self.background_turn().await;
                let updated = sqlx::query(
                    "update leads set lease_until = $1 where id = $2 and lease_token = $3 and status = 'processing'",
                )
                .bind(to_millis(Utc::now() + extend_by))
                .bind(lease.lead_id.0)
                .bind(&lease.token)
                .execute(self.writes())
                .await?;
                if updated.rows_affected() == 0 {
                    return Err(StoreError::LeaseLost(lease.lead_id));
                }
                Ok(())
            }

            pub async fn reschedule(
                &self,
                lease: &Lease,
                run_at: DateTime<Utc>,
                count: AttemptCount,
                error: &str,
                events: &[HistoryEvent],
            ) -> Result<(), StoreError> {
                let _turn = self.background_turn().await;
                let mut tx = begin_write(self.writes()).await?;
                let phone: Option<String> = sqlx::query_scalar(
                    "update leads set status = 'pending', run_at = $1, attempt = attempt + $2, last_error = $3,
                         lease_until = null, lease_token = null, updated_at = $4
                     where id = $5 and lease_token = $6 and status = 'processing'
                     returning phone",
                )
                .bind(to_millis(run_at))
                .bind(i64::from(count == AttemptCount::Counted))
                .bind(error)
                .bind(to_millis(Utc::now()))
                .bind(lease.lead_id.0)
                .bind(&lease.token)
                .fetch_optional(&mut *tx)
                .await?;
                finish_settle(tx, lease, phone, events).await
            }

            pub async fn complete(
                &self,
                lease: &Lease,
                outcome: &Outcome,
                events: &[HistoryEvent],
                feedback: &[OwedFeedback],
            ) -> Result<(), StoreError> {
                let _turn = self.background_turn().await;
                let mut tx = begin_write(self.writes()).await?;
                // Stamped once the write lock is ours, so only the commit itself lies between this
                // moment and the outcome becoming visible to a request waiting for it.
                let committed_at = Utc::now();
                let now = to_millis(committed_at);
                let phone: Option<String> = sqlx::query_scalar(
                    "update leads set status = $1, decision = $2, entities = $3, crm_deal = $4, last_error = null,
                         lease_until = null, lease_token = null, updated_at = $5
                     where id = $6 and lease_token = $7 and status = 'processing'
                     returning phone",
                )
                .bind(outcome.decision.status().as_str())
                .bind(outcome.decision.as_str())
                .bind(serde_json::to_string(&outcome.entities).map_err(|error| StoreError::Corrupt(error.to_string()))?)
                .bind(outcome.deal().map(|deal| &deal.record.id))
                .bind(now)
                .bind(lease.lead_id.0)
                .bind(&lease.token)
                .fetch_optional(&mut *tx)
                .await?;
                if phone.is_some() && outcome.deal().is_some() {
                    // Notes owed before the deal existed are due now; their clock starts now too.
                    sqlx::query(
                        "update outbox set status = 'pending', run_at = $1, created_at = $1
                         where lead_id = $2 and status = 'waiting'",
                    )
                    .bind(now)
                    .bind(lease.lead_id.0)
                    .execute(&mut *tx)
                    .await?;
                }
                let owed_now = feedback
                    .iter()
                    .filter(|owed| owed.only_if_committed_after.is_none_or(|moment| committed_at > moment));
                for owed in owed_now {
                    let kind = owed.kind.as_str();
                    sqlx::query("insert into outbox (lead_id, kind, payload, run_at, created_at) values ($1, $2, $3, $4, $4)")
                        .bind(lease.lead_id.0)
                        .bind(kind)
                        .bind(owed.payload.to_string())
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                }
                finish_settle(tx, lease, phone, events).await
            }

            pub async fn mark_dead(&self, lease: &Lease, error: &str, events: &[HistoryEvent]) -> Result<(), StoreError> {
                let _turn = self.background_turn().await;
                let mut tx = begin_write(self.writes()).await?;
                let phone: Option<String> = sqlx::query_scalar(
                    "update leads set status = $1, last_error = $2, lease_until = null, lease_token = null, updated_at = $3
                     where id = $4 and lease_token = $5 and status = 'processing'
                     returning phone",
                )
                .bind(LeadStatus::Dead.as_str())
                .bind(error)
                .bind(to_millis(Utc::now()))
                .bind(lease.lead_id.0)
                .bind(&lease.token)
                .fetch_optional(&mut *tx)
                .await?;
                finish_settle(tx, lease, phone, events).await
            }

            pub async fn generated_setting(&self, name: &str, generate: impl FnOnce() -> String) -> Result<String, StoreError> {
                let turn = self.background_turn().await;
                sqlx::query("insert into generated_settings (name, value) values ($1, $2) on conflict (name) do nothing")
                    .bind(name)
                    .bind(generate())
                    .execute(self.writes())
                    .await?;
                drop(turn);
                let value = sqlx::query_scalar("select value from generated_settings where name = $1")
                    .bind(name)
                    .fetch_one(&self.pool)
                    .await?;
                Ok(value)
            }

            pub async fn load_tokens(&self, destination: &str) -> Result<Option<StoredTokens>, StoreError> {
                let row: Option<(String, String, String, i64)> = sqlx::query_as(
                    "select seeded_from, access_token, refresh_token, expires_at from destination_tokens where destination = $1",
                )
                .bind(destination)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(|(seeded_from, access_token, refresh_token, expires_at)| StoredTokens {
                    seeded_from,
                    access_token,
                    refresh_token,
                    expires_at: from_millis(expires_at),
                }))
            }

            pub async fn save_tokens(&self, destination: &str, tokens: &StoredTokens) -> Result<(), StoreError> {
                let _turn = self.background_turn().await;
                sqlx::query(
                    "insert into destination_tokens (destination, seeded_from, access_token, refresh_token, expires_at)
                     values ($1, $2, $3, $4, $5)
                     on conflict (destination) do update set seeded_from = excluded.seeded_from,
                         access_token = excluded.access_token, refresh_token = excluded.refresh_token,
                         expires_at = excluded.expires_at",
                )
                .bind(destination)
                .bind(&tokens.seeded_from)
                .bind(&tokens.access_token)
                .bind(&tokens.refresh_token)
                .bind(to_millis(tokens.expires_at))
                .execute(self.writes())
                .await?;
                Ok(())
            }

            pub async fn count_by_status(&self, source: Option<&SourceId>) -> Result<Vec<(String, i64)>, StoreError> {
                let rows = sqlx::query_as(
                    "select status, count(*) from leads where $1 is null or source_id = $1 group by status order by status",
                )
                .bind(source.map(|source| source.0.as_str()))
                .fetch_all(&self.pool)
                .await?;
                Ok(rows)
            }

            /// Settles a claimed outbox row: `delivered`, `pending` again at `retry_at`, or `failed`.
            pub async fn settle_feedback(
                &self,
                claim: &FeedbackClaim,
                status: &str,
                retry_at: Option<DateTime<Utc>>,
                error: Option<&str>,
                events: &[HistoryEvent],
            ) -> Result<(), StoreError> {
                let now = Utc::now();
                let _turn = self.background_turn().await;
                let mut tx = begin_write(self.writes()).await?;
                let updated = sqlx::query(
                    "update outbox set status = $1, run_at = coalesce($2, run_at), attempt = attempt + 1, last_error = $3,
                         delivered_at = case when $1 = 'delivered' then $4 else delivered_at end,
                         lease_until = null, lease_token = null
                     where id = $5 and lease_token = $6 and status = 'sending'",
                )
                .bind(status)
                .bind(retry_at.map(to_millis))
                .bind(error)
                .bind(to_millis(now))
                .bind(claim.lease.id)
                .bind(&claim.lease.token)
                .execute(&mut *tx)
                .await?;
                if updated.rows_affected() == 0 {
                    tx.rollback().await?;
                    return Err(StoreError::LeaseLost(claim.lead_id));
                }
                insert_history(&mut tx, claim.lead_id, events).await?;
                tx.commit().await?;
                Ok(())
            }

            pub async fn queue_deal_note(&self, lead: LeadId, payload: &serde_json::Value) -> Result<Option<bool>, StoreError> {
                // A site's follow-up message is intake: it does not queue behind the worker.
                let mut tx = begin_write(self.intake_writes()).await?;
                let queued = queue_deal_note_in(&mut tx, lead, payload).await?;
                tx.commit().await?;
                Ok(queued)
            }

            pub async fn owed_feedback(&self, id: LeadId) -> Result<Vec<StoredFeedback>, StoreError> {
                let rows: Vec<OutboxRow> =
                    sqlx::query_as(&format!("select {OUTBOX_COLUMNS} from outbox where lead_id = $1 order by id"))
                        .bind(id.0)
                        .fetch_all(self.pool())
                        .await?;
                rows.into_iter()
                    .map(|row| {
                        Ok(StoredFeedback {
                            kind: row.kind()?,
                            payload: row.payload()?,
                            status: row.status.clone(),
                            attempts: row.attempt,
                            last_error: row.last_error.clone(),
                        })
                    })
                    .collect()
            }

            pub async fn resend(&self, id: LeadId, requested_by: &str) -> Result<Requeue, StoreError> {
                let now = to_millis(Utc::now());
                let _turn = self.background_turn().await;
                let mut tx = begin_write(self.writes()).await?;
                // A dead lead starts its retry policy's count again; a pending one waiting for its
                // next attempt keeps its count and is simply due now.
                let requeued: Option<(String, bool)> = sqlx::query_as(
                    "update leads set run_at = $1, updated_at = $1,
                         attempt = case when status = 'dead' then 0 else attempt end, status = 'pending'
                     where id = $2 and status in ('dead', 'pending')
                     returning phone, progress is not null",
                )
                .bind(now)
                .bind(id.0)
                .fetch_optional(&mut *tx)
                .await?;
                let Some((phone, started)) = requeued else {
                    return refused(tx, id).await;
                };
                // Its journal comes along: a lead that started its CRM steps goes before the
                // client's other leads, as if it had never died.
                enqueue_clients(&mut tx, std::iter::once((phone.as_str(), id)), now, started).await?;
                let event = HistoryEvent::now("resend_requested", serde_json::json!({ "by": requested_by }));
                insert_history(&mut tx, id, std::slice::from_ref(&event)).await?;
                tx.commit().await?;
                Ok(Requeue::Queued)
            }

            /// Gives an unrouted lead its advertiser and route, and queues it.
            pub async fn route_lead(&self, id: LeadId, routing: &Routing, requested_by: &str) -> Result<Requeue, StoreError> {
                let now = to_millis(Utc::now());
                let _turn = self.background_turn().await;
                let mut tx = begin_write(self.writes()).await?;
                let phone: Option<String> = sqlx::query_scalar(
                    "update leads set status = 'pending', run_at = $1, updated_at = $1, advertiser_id = $2,
                         route_destination = $3, route_pipeline = $4, route_status = $5, advertiser_email = $6
                     where id = $7 and status = 'unrouted'
                     returning phone",
                )
                .bind(now)
                .bind(&routing.advertiser_id)
                .bind(&routing.destination)
                .bind(&routing.pipeline)
                .bind(&routing.status)
                .bind(routing.advertiser_email.as_ref().map(|email| email.as_str()))
                .bind(id.0)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(phone) = phone else {
                    return refused(tx, id).await;
                };
                enqueue_clients(&mut tx, std::iter::once((phone.as_str(), id)), now, false).await?;
                let event =
                    HistoryEvent::now("routed", serde_json::json!({ "by": requested_by, "advertiser": routing.advertiser_id }));
                insert_history(&mut tx, id, std::slice::from_ref(&event)).await?;
                tx.commit().await?;
                Ok(Requeue::Queued)
            }

            pub async fn waiting_leads(&self, source: Option<&SourceId>) -> Result<Vec<LeadId>, StoreError> {
                let ids: Vec<i64> = sqlx::query_scalar(
                    "select id from leads where status = 'pending' and run_at > $1 and ($2 is null or source_id = $2)
                     order by id",
                )
                .bind(to_millis(Utc::now()))
                .bind(source.map(|source| source.0.as_str()))
                .fetch_all(self.pool())
                .await?;
                Ok(ids.into_iter().map(LeadId).collect())
            }

            pub async fn dead_leads(&self, source: Option<&SourceId>) -> Result<Vec<LeadId>, StoreError> {
                let ids: Vec<i64> = sqlx::query_scalar(
                    "select id from leads where status = 'dead' and ($1 is null or source_id = $1) order by id",
                )
                .bind(source.map(|source| source.0.as_str()))
                .fetch_all(self.pool())
                .await?;
                Ok(ids.into_iter().map(LeadId).collect())
            }

            pub async fn list_leads(
                &self,
                status: Option<LeadStatus>,
                source: Option<&SourceId>,
                limit: usize,
            ) -> Result<Vec<Lead>, StoreError> {
                let rows: Vec<LeadRow> = sqlx::query_as(&format!(
                    "select {LEAD_COLUMNS} from leads
                     where ($1 is null or status = $1) and ($2 is null or source_id = $2)
                     order by id desc limit $3"
                ))
                .bind(status.map(LeadStatus::as_str))
                .bind(source.map(|source| source.0.as_str()))
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(self.pool())
                .await?;
                rows.into_iter().map(Lead::try_from).collect()
            }

            pub async fn set_advertiser_secret(
                &self,
                source: &SourceId,
                id: &AdvertiserId,
                secret: Option<&SecretString>,
            ) -> Result<(), StoreError> {
                let _turn = self.background_turn().await;
                match secret {
                    Some(secret) => {
                        sqlx::query(
                            "insert into advertiser_secrets (source_id, advertiser_id, secret_key) values ($1, $2, $3)
                             on conflict (source_id, advertiser_id) do update set secret_key = excluded.secret_key",
                        )
                        .bind(&source.0)
                        .bind(id.as_str())
                        .bind(secret.expose_secret())
                        .execute(self.writes())
                        .await?;
                    }
                    None => {
                        sqlx::query("delete from advertiser_secrets where source_id = $1 and advertiser_id = $2")
                            .bind(&source.0)
                            .bind(id.as_str())
                            .execute(self.writes())
                            .await?;
                    }
                }
                Ok(())
            }

            pub async fn advertiser_secret(
                &self,
                source: &SourceId,
                id: &AdvertiserId,
            ) -> Result<Option<SecretString>, StoreError> {
                let secret: Option<String> =
                    sqlx::query_scalar("select secret_key from advertiser_secrets where source_id = $1 and advertiser_id = $2")
                        .bind(&source.0)
                        .bind(id.as_str())
                        .fetch_optional(self.pool())
                        .await?;
                Ok(secret.map(SecretString::from))
            }

            pub async fn upsert_advertisers(&self, advertisers: &[Advertiser]) -> Result<(), StoreError> {
                let now = to_millis(Utc::now());
                let _turn = self.background_turn().await;
                let mut tx = begin_write(self.writes()).await?;
                for advertiser in advertisers {
                    upsert_advertiser(&mut tx, advertiser, now).await?;
                }
                // Every old listing of the batch goes before any new one is inserted, so that a listing
                // moving between two advertisers of one batch never meets its old owner's row.
                for advertiser in advertisers {
                    sqlx::query("delete from advertiser_listings where source_id = $1 and advertiser_id = $2")
                        .bind(&advertiser.source.0)
                        .bind(advertiser.id.as_str())
                        .execute(&mut *tx)
                        .await?;
                }
                for advertiser in advertisers {
                    for listing in &advertiser.listings {
                        sqlx::query(
                            "insert into advertiser_listings (source_id, client_listing_id, advertiser_id) values ($1, $2, $3)",
                        )
                        .bind(&advertiser.source.0)
                        .bind(listing)
                        .bind(advertiser.id.as_str())
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                tx.commit().await?;
                Ok(())
            }

            pub async fn find_advertiser(
                &self,
                source: &SourceId,
                id: &AdvertiserId,
            ) -> Result<Option<Advertiser>, StoreError> {
                let row: Option<AdvertiserRow> =
                    sqlx::query_as(&format!("select {ADVERTISER_COLUMNS} from advertisers where source_id = $1 and id = $2"))
                        .bind(&source.0)
                        .bind(id.as_str())
                        .fetch_optional(self.pool())
                        .await?;
                self.with_listings(row).await
            }

            pub async fn advertiser_for_listing(
                &self,
                source: &SourceId,
                client_listing_id: &str,
            ) -> Result<Option<Advertiser>, StoreError> {
                let row: Option<AdvertiserRow> = sqlx::query_as(&format!(
                    "select {ADVERTISER_COLUMNS} from advertisers
                     where (source_id, id) = (select source_id, advertiser_id from advertiser_listings
                                              where source_id = $1 and client_listing_id = $2)"
                ))
                .bind(&source.0)
                .bind(client_listing_id)
                .fetch_optional(self.pool())
                .await?;
                self.with_listings(row).await
            }

            pub async fn list_advertisers(
                &self,
                source: Option<&SourceId>,
                include_disabled: bool,
            ) -> Result<Vec<Advertiser>, StoreError> {
                let source = source.map(|source| source.0.as_str());
                let rows: Vec<AdvertiserRow> = sqlx::query_as(&format!(
                    "select {ADVERTISER_COLUMNS} from advertisers
                     where ($1 is null or source_id = $1) and ($2 or enabled)
                     order by source_id, id"
                ))
                .bind(source)
                .bind(include_disabled)
                .fetch_all(self.pool())
                .await?;
                // Two queries for any number of advertisers, instead of one per advertiser.
                let listed: Vec<(String, String, String)> = sqlx::query_as(
                    "select source_id, advertiser_id, client_listing_id from advertiser_listings
                     where $1 is null or source_id = $1
                     order by client_listing_id",
                )
                .bind(source)
                .fetch_all(self.pool())
                .await?;
                let mut listings: HashMap<(String, String), Vec<String>> = HashMap::new();
                for (source_id, advertiser_id, listing) in listed {
                    listings.entry((source_id, advertiser_id)).or_default().push(listing);
                }
                Ok(rows
                    .into_iter()
                    .map(|row| {
                        let own = listings.remove(&(row.source_id.clone(), row.id.clone())).unwrap_or_default();
                        row.into_advertiser(own)
                    })
                    .collect())
            }

            pub async fn set_advertiser_enabled(
                &self,
                source: &SourceId,
                id: &AdvertiserId,
                enabled: bool,
            ) -> Result<bool, StoreError> {
                let _turn = self.background_turn().await;
                let updated =
                    sqlx::query("update advertisers set enabled = $1, updated_at = $2 where source_id = $3 and id = $4")
                        .bind(enabled)
                        .bind(to_millis(Utc::now()))
                        .bind(&source.0)
                        .bind(id.as_str())
                        .execute(self.writes())
                        .await?;
                Ok(updated.rows_affected() > 0)
            }

            pub async fn delete_advertiser(&self, source: &SourceId, id: &AdvertiserId) -> Result<bool, StoreError> {
                let _turn = self.background_turn().await;
                // Its listings and its own password go with it (`on delete cascade`); its leads keep
                // their advertiser id, which is only a label on them.
                let deleted = sqlx::query("delete from advertisers where source_id = $1 and id = $2")
                    .bind(&source.0)
                    .bind(id.as_str())
                    .execute(self.writes())
                    .await?;
                Ok(deleted.rows_affected() > 0)
            }

            async fn with_listings(&self, row: Option<AdvertiserRow>) -> Result<Option<Advertiser>, StoreError> {
                let Some(row) = row else {
                    return Ok(None);
                };
                let listings = sqlx::query_scalar(
                    "select client_listing_id from advertiser_listings
                     where source_id = $1 and advertiser_id = $2
                     order by client_listing_id",
                )
                .bind(&row.source_id)
                .bind(&row.id)
                .fetch_all(self.pool())
                .await?;
                Ok(Some(row.into_advertiser(listings)))
            }
        }

        /// Inserts leads that carry no external id, with their `received` events, in two statements;
        /// returns their ids in the order given.
        async fn insert_plain_leads<'a>(
            tx: &mut Transaction<'_, $db>,
            leads: impl ExactSizeIterator<Item = &'a NewLead>,
        ) -> Result<Vec<LeadId>, StoreError> {
            if leads.len() == 0 {
                return Ok(Vec::new());
            }
            let now = to_millis(Utc::now());
            let leads: Vec<&NewLead> = leads.collect();
            let mut insert = lead_insert(leads.iter().copied(), now);
            insert.push(" returning id");
            let mut ids: Vec<i64> = insert.build_query_scalar().fetch_all(&mut **tx).await?;
            // RETURNING promises no order, but the rows of one VALUES list get increasing ids.
            ids.sort_unstable();
            let mut history = QueryBuilder::<$db>::new("insert into lead_history (lead_id, at, kind, detail) ");
            history.push_values(ids.iter().zip(&leads), |mut row, (id, lead)| {
                let received = json!({ "source": lead.source.0 }).to_string();
                row.push_bind(id).push_bind(now).push_bind("received").push_bind(received);
            });
            history.build().execute(&mut **tx).await?;
            Ok(ids.into_iter().map(LeadId).collect())
        }

        /// `insert into leads … values …` for `leads`, every column a new lead sets.
        fn lead_insert<'a>(leads: impl Iterator<Item = &'a NewLead>, now: i64) -> QueryBuilder<'a, $db> {
            let mut insert = QueryBuilder::<$db>::new(
                "insert into leads (source_id, external_id, name, phone, phone_raw, email, comment, callback_url, payload,
                                    status, run_at, created_at, updated_at, advertiser_id, route_destination, route_pipeline,
                                    route_status, advertiser_email, origin_time, deal_spec, call_spec) ",
            );
            insert.push_values(leads, |mut row, lead| {
                row.push_bind(&lead.source.0)
                    .push_bind(&lead.external_id)
                    .push_bind(&lead.name)
                    .push_bind(lead.phone.e164())
                    .push_bind(lead.phone.raw())
                    .push_bind(lead.email.as_ref().map(|email| email.as_str()))
                    .push_bind(&lead.comment)
                    .push_bind(lead.callback_url.as_ref().map(url::Url::as_str))
                    .push_bind(lead.payload.to_string())
                    .push_bind(lead.initial_status().as_str())
                    .push_bind(now)
                    .push_bind(now)
                    .push_bind(now)
                    .push_bind(&lead.routing.advertiser_id)
                    .push_bind(&lead.routing.destination)
                    .push_bind(&lead.routing.pipeline)
                    .push_bind(&lead.routing.status)
                    .push_bind(lead.routing.advertiser_email.as_ref().map(|email| email.as_str()))
                    .push_bind(lead.origin_time.map(to_millis))
                    .push_bind(deal_spec_text(lead))
                    .push_bind(lead.call.as_ref().and_then(|call| serde_json::to_string(call).ok()));
            });
            insert
        }

        async fn insert_lead(tx: &mut Transaction<'_, $db>, lead: &NewLead) -> Result<Inserted, StoreError> {
            let now = to_millis(Utc::now());
            if let Some(check) = &lead.duplicate_check
                && let Some(earlier) = earlier_lead_of_client(tx, lead, check.window).await?
            {
                let repeat = HistoryEvent::now("repeat_received", json!({ "payload": lead.payload }));
                insert_history(tx, earlier, std::slice::from_ref(&repeat)).await?;
                if let Some(note) = &check.append_note {
                    queue_deal_note_in(tx, earlier, &json!({ "text": note })).await?;
                }
                return Ok(Inserted::Duplicate { id: earlier });
            }
            let mut insert = lead_insert(std::iter::once(lead), now);
            insert.push(" on conflict (source_id, external_id) where external_id is not null do nothing returning id");
            let id: Option<i64> = insert.build_query_scalar().fetch_optional(&mut **tx).await?;
            if let Some(id) = id {
                let received = HistoryEvent::now("received", serde_json::json!({ "source": lead.source.0 }));
                insert_history(tx, LeadId(id), std::slice::from_ref(&received)).await?;
                return Ok(Inserted::New(LeadId(id)));
            }
            let (id, payload): (i64, String) =
                sqlx::query_as("select id, payload from leads where source_id = $1 and external_id = $2")
                    .bind(&lead.source.0)
                    .bind(&lead.external_id)
                    .fetch_one(&mut **tx)
                    .await?;
            let same_payload = serde_json::from_str::<serde_json::Value>(&payload).is_ok_and(|stored| stored == lead.payload);
            Ok(Inserted::Existing { id: LeadId(id), same_payload })
        }

        /// The same client's latest lead of the same source that is still on its way, or was settled
        /// within `window`: the lead a repeat belongs to.
        async fn earlier_lead_of_client(
            tx: &mut Transaction<'_, $db>,
            lead: &NewLead,
            window: Duration,
        ) -> Result<Option<LeadId>, StoreError> {
            let settled_since = Utc::now() - chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
            // By phone and by e-mail apart, each through its own index: one `or` over both would read
            // every lead of the source, inside intake's transaction, at every checked lead.
            let id: Option<i64> = sqlx::query_scalar(
                "select max(id) from (
                     select id from (select id from leads
                                     where source_id = $1 and phone = $2
                                       and (status in ('pending', 'processing')
                                            or (status in ('approved', 'rejected') and updated_at >= $4))
                                     order by id desc limit 1) as by_phone
                     union all
                     select id from (select id from leads
                                     where $3 is not null and source_id = $1 and email = $3
                                       and (status in ('pending', 'processing')
                                            or (status in ('approved', 'rejected') and updated_at >= $4))
                                     order by id desc limit 1) as by_email
                 ) as earlier",
            )
            .bind(&lead.source.0)
            .bind(lead.phone.e164())
            .bind(lead.email.as_ref().map(|email| email.as_str()))
            .bind(to_millis(settled_since))
            .fetch_one(&mut **tx)
            .await?;
            Ok(id.map(LeadId))
        }

        /// Owes a note to the lead's CRM deal: due now if the deal exists, else when the lead is delivered.
        /// Returns whether it is due now, or `None` when there is no such lead.
        async fn queue_deal_note_in(
            tx: &mut Transaction<'_, $db>,
            lead: LeadId,
            payload: &serde_json::Value,
        ) -> Result<Option<bool>, StoreError> {
            let now = to_millis(Utc::now());
            lock_lead(tx, lead).await?;
            let status: Option<String> = sqlx::query_scalar(
                "insert into outbox (lead_id, kind, payload, status, run_at, created_at)
                 select id, 'deal_note', $2, case when crm_deal is not null then 'pending' else 'waiting' end, $3, $3
                 from leads where id = $1
                 returning status",
            )
            .bind(lead.0)
            .bind(payload.to_string())
            .bind(now)
            .fetch_optional(&mut **tx)
            .await?;
            Ok(status.map(|status| status == "pending"))
        }

        async fn insert_history(
            tx: &mut Transaction<'_, $db>,
            id: LeadId,
            events: &[HistoryEvent],
        ) -> Result<(), StoreError> {
            for event in events {
                // A CRM call's destination and status are columns too, for the dashboard's counts.
                let crm_call = (event.kind == "crm_call").then_some(&event.detail);
                let crm_destination = crm_call.and_then(|detail| detail["destination"].as_str());
                let crm_status = crm_call.and_then(|detail| detail["status"].as_i64());
                sqlx::query(
                    "insert into lead_history (lead_id, at, kind, detail, crm_destination, crm_status)
                     values ($1, $2, $3, $4, $5, $6)",
                )
                    .bind(id.0)
                    .bind(to_millis(event.at))
                    .bind(&event.kind)
                    .bind((!event.detail.is_null()).then(|| event.detail.to_string()))
                    .bind(crm_destination)
                    .bind(crm_status)
                    .execute(&mut **tx)
                    .await?;
            }
            Ok(())
        }

        /// Ends a write that only the lease holder may make: nothing is committed if the lease is gone.
        async fn finish_owned_write(
            mut tx: Transaction<'_, $db>,
            lease: &Lease,
            rows_affected: u64,
            events: &[HistoryEvent],
        ) -> Result<(), StoreError> {
            if rows_affected == 0 {
                tx.rollback().await?;
                return Err(StoreError::LeaseLost(lease.lead_id));
            }
            insert_history(&mut tx, lease.lead_id, events).await?;
            tx.commit().await?;
            Ok(())
        }

        /// Ends a settle (or a return to the queue): the client's phone passes to its next lead, in
        /// the same transaction. `phone` is `None` when the lease was lost and nothing was written.
        async fn finish_settle(
            mut tx: Transaction<'_, $db>,
            lease: &Lease,
            phone: Option<String>,
            events: &[HistoryEvent],
        ) -> Result<(), StoreError> {
            if let Some(phone) = &phone {
                release_client(&mut tx, phone, lease.lead_id).await?;
            }
            finish_owned_write(tx, lease, u64::from(phone.is_some()), events).await
        }

        /// Why a lead was not queued again: its status, or that it does not exist.
        async fn refused(mut tx: Transaction<'_, $db>, id: LeadId) -> Result<Requeue, StoreError> {
            let status: Option<String> =
                sqlx::query_scalar("select status from leads where id = $1").bind(id.0).fetch_optional(&mut *tx).await?;
            tx.rollback().await?;
            Ok(match status.as_deref().and_then(LeadStatus::parse) {
                Some(status) => Requeue::WrongStatus(status),
                None => Requeue::NotFound,
            })
        }

        async fn upsert_advertiser(
            tx: &mut Transaction<'_, $db>,
            advertiser: &Advertiser,
            now: i64,
        ) -> Result<(), StoreError> {
            sqlx::query(
                "insert into advertisers (source_id, id, document, name, email, send_lead_email,
                                          destination, pipeline, status, enabled, created_at, updated_at)
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)
                 on conflict (source_id, id) do update set document = excluded.document, name = excluded.name,
                     email = excluded.email, send_lead_email = excluded.send_lead_email,
                     destination = excluded.destination, pipeline = excluded.pipeline, status = excluded.status,
                     enabled = excluded.enabled, updated_at = excluded.updated_at",
            )
            .bind(&advertiser.source.0)
            .bind(advertiser.id.as_str())
            .bind(advertiser.document.as_str())
            .bind(&advertiser.name)
            .bind(advertiser.email.as_ref().map(Email::as_str))
            .bind(advertiser.send_lead_email)
            .bind(&advertiser.route.destination)
            .bind(&advertiser.route.pipeline)
            .bind(&advertiser.route.status)
            .bind(advertiser.enabled)
            .bind(now)
            .execute(&mut **tx)
            .await?;
            Ok(())
        }
        }
    };
}

pub(super) use shared_queries;
