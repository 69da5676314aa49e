//! What the operator console keeps: its users, their sessions, failed logins, the audit log, and
//! the lead list's search over the leads table.

use chrono::{DateTime, Utc};

use super::{Store, StoreError};
use crate::domain::operator::{ConsoleUser, Role, Username};
use crate::domain::{Lead, LeadId, LeadStatus, SourceId};

/// A logged-in session as the console checks it on every request.
#[derive(Debug, Clone)]
pub struct ConsoleSession {
    pub user: ConsoleUser,
    pub csrf_token: String,
    /// The leads page's search, kept here rather than in a URL.
    pub search: Option<String>,
    pub expires_at: DateTime<Utc>,
}

/// A session to start: the SHA-256 of its cookie, never the cookie itself.
#[derive(Debug, Clone)]
pub struct NewSession<'a> {
    pub token_hash: &'a str,
    pub user_id: i64,
    pub csrf_token: &'a str,
    pub expires_at: DateTime<Utc>,
}

/// One entry of the console's audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub detail: Option<String>,
}

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

    /// Adds a user; `None` when the name is taken.
    pub async fn add_console_user(
        &self,
        username: &Username,
        password_hash: &str,
        role: Role,
    ) -> Result<Option<i64>, StoreError> {
        match self {
            Self::Sqlite(store) => store.add_console_user(username, password_hash, role).await,
            Self::Postgres(store) => store.add_console_user(username, password_hash, role).await,
        }
    }

    /// Replaces a user's password and ends their sessions; `false` when there is no such user.
    pub async fn set_console_password(&self, username: &Username, password_hash: &str) -> Result<bool, StoreError> {
        match self {
            Self::Sqlite(store) => store.set_console_password(username, password_hash).await,
            Self::Postgres(store) => store.set_console_password(username, password_hash).await,
        }
    }

    /// Disables (ending their sessions) or enables a user; `false` when there is no such user.
    pub async fn set_console_user_disabled(&self, username: &Username, disabled: bool) -> Result<bool, StoreError> {
        match self {
            Self::Sqlite(store) => store.set_console_user_disabled(username, disabled).await,
            Self::Postgres(store) => store.set_console_user_disabled(username, disabled).await,
        }
    }

    pub async fn console_users(&self) -> Result<Vec<ConsoleUser>, StoreError> {
        match self {
            Self::Sqlite(store) => store.console_users().await,
            Self::Postgres(store) => store.console_users().await,
        }
    }

    /// The user of this name and their stored password hash.
    pub async fn console_user_for_login(
        &self,
        username: &Username,
    ) -> Result<Option<(ConsoleUser, String)>, StoreError> {
        match self {
            Self::Sqlite(store) => store.console_user_for_login(username).await,
            Self::Postgres(store) => store.console_user_for_login(username).await,
        }
    }

    /// Failed logins since `since`: for this user name, and from this address.
    pub async fn login_failures(
        &self,
        username: &str,
        address: &str,
        since: DateTime<Utc>,
    ) -> Result<(i64, i64), StoreError> {
        match self {
            Self::Sqlite(store) => store.login_failures(username, address, since).await,
            Self::Postgres(store) => store.login_failures(username, address, since).await,
        }
    }

    /// Counts one failed login, and forgets those older than `forget_before`.
    pub async fn record_login_failure(
        &self,
        username: &str,
        address: &str,
        forget_before: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(store) => store.record_login_failure(username, address, forget_before).await,
            Self::Postgres(store) => store.record_login_failure(username, address, forget_before).await,
        }
    }

    /// Starts a session, clearing the user's failed logins, and forgets expired sessions.
    pub async fn start_console_session(&self, session: &NewSession<'_>, username: &str) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(store) => store.start_console_session(session, username).await,
            Self::Postgres(store) => store.start_console_session(session, username).await,
        }
    }

    /// The session of this cookie hash, if it has not expired and its user is enabled.
    pub async fn console_session(&self, token_hash: &str) -> Result<Option<ConsoleSession>, StoreError> {
        match self {
            Self::Sqlite(store) => store.console_session(token_hash).await,
            Self::Postgres(store) => store.console_session(token_hash).await,
        }
    }

    pub async fn set_console_search(&self, token_hash: &str, search: Option<&str>) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(store) => store.set_console_search(token_hash, search).await,
            Self::Postgres(store) => store.set_console_search(token_hash, search).await,
        }
    }

    pub async fn end_console_session(&self, token_hash: &str) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(store) => store.end_console_session(token_hash).await,
            Self::Postgres(store) => store.end_console_session(token_hash).await,
        }
    }

    /// Appends to the audit log: who did what, now.
    pub async fn audit(&self, actor: &str, action: &str, detail: Option<&str>) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(store) => store.audit(actor, action, detail).await,
            Self::Postgres(store) => store.audit(actor, action, detail).await,
        }
    }

    /// The newest audit entries first.
    pub async fn audit_log(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        match self {
            Self::Sqlite(store) => store.audit_log(limit).await,
            Self::Postgres(store) => store.audit_log(limit).await,
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

macro_rules! console_queries {
    ($store:ident, $db:ty) => {
        mod console {
            use chrono::{DateTime, Utc};
            use sqlx::QueryBuilder;

            use super::super::{begin_write, $store};
            use $crate::domain::operator::{ConsoleUser, Role, Username};
            use $crate::domain::{Lead, LeadId, SourceId};
            use $crate::store::console::{
                AuditEntry, ConsoleSession, FailureGroup, LeadQuery, LeadSearch, NewSession, SourceActivity,
            };
            use $crate::store::rows::LeadRow;
            use $crate::store::{LEAD_COLUMNS, StoreError, from_millis, to_millis};

            type UserRow = (i64, String, String, bool);

            fn user((id, username, role, disabled): UserRow) -> Result<ConsoleUser, StoreError> {
                let role =
                    Role::parse(&role).map_err(|_| StoreError::Corrupt(format!("console user {id}: unknown role")))?;
                Ok(ConsoleUser { id, username: Username::from_stored(username), role, disabled })
            }

            impl $store {
                pub async fn add_console_user(
                    &self,
                    username: &Username,
                    password_hash: &str,
                    role: Role,
                ) -> Result<Option<i64>, StoreError> {
                    let now = to_millis(Utc::now());
                    let _turn = self.background_turn().await;
                    let id = sqlx::query_scalar(
                        "insert into console_users (username, password_hash, role, created_at, updated_at)
                         values ($1, $2, $3, $4, $4)
                         on conflict (username) do nothing returning id",
                    )
                    .bind(username.as_str())
                    .bind(password_hash)
                    .bind(role.as_str())
                    .bind(now)
                    .fetch_optional(self.writes())
                    .await?;
                    Ok(id)
                }

                pub async fn set_console_password(
                    &self,
                    username: &Username,
                    password_hash: &str,
                ) -> Result<bool, StoreError> {
                    let now = to_millis(Utc::now());
                    let _turn = self.background_turn().await;
                    let mut tx = begin_write(self.writes()).await?;
                    let id: Option<i64> = sqlx::query_scalar(
                        "update console_users set password_hash = $1, updated_at = $2 where username = $3 returning id",
                    )
                    .bind(password_hash)
                    .bind(now)
                    .bind(username.as_str())
                    .fetch_optional(&mut *tx)
                    .await?;
                    if let Some(id) = id {
                        sqlx::query("delete from console_sessions where user_id = $1")
                            .bind(id)
                            .execute(&mut *tx)
                            .await?;
                    }
                    tx.commit().await?;
                    Ok(id.is_some())
                }

                pub async fn set_console_user_disabled(
                    &self,
                    username: &Username,
                    disabled: bool,
                ) -> Result<bool, StoreError> {
                    let now = to_millis(Utc::now());
                    let _turn = self.background_turn().await;
                    let mut tx = begin_write(self.writes()).await?;
                    let id: Option<i64> = sqlx::query_scalar(
                        "update console_users set disabled = $1, updated_at = $2 where username = $3 returning id",
                    )
                    .bind(disabled)
                    .bind(now)
                    .bind(username.as_str())
                    .fetch_optional(&mut *tx)
                    .await?;
                    if let (Some(id), true) = (id, disabled) {
                        sqlx::query("delete from console_sessions where user_id = $1")
                            .bind(id)
                            .execute(&mut *tx)
                            .await?;
                    }
                    tx.commit().await?;
                    Ok(id.is_some())
                }

                pub async fn console_users(&self) -> Result<Vec<ConsoleUser>, StoreError> {
                    let rows: Vec<UserRow> =
                        sqlx::query_as("select id, username, role, disabled from console_users order by username")
                            .fetch_all(self.pool())
                            .await?;
                    rows.into_iter().map(user).collect()
                }

                pub async fn console_user_for_login(
                    &self,
                    username: &Username,
                ) -> Result<Option<(ConsoleUser, String)>, StoreError> {
                    let row: Option<(i64, String, String, bool, String)> = sqlx::query_as(
                        "select id, username, role, disabled, password_hash from console_users where username = $1",
                    )
                    .bind(username.as_str())
                    .fetch_optional(self.pool())
                    .await?;
                    row.map(|(id, name, role, disabled, hash)| Ok((user((id, name, role, disabled))?, hash)))
                        .transpose()
                }

                pub async fn login_failures(
                    &self,
                    username: &str,
                    address: &str,
                    since: DateTime<Utc>,
                ) -> Result<(i64, i64), StoreError> {
                    let counts = sqlx::query_as(
                        "select (select count(*) from console_login_failures where username = $1 and at >= $3),
                                (select count(*) from console_login_failures where address = $2 and at >= $3)",
                    )
                    .bind(username)
                    .bind(address)
                    .bind(to_millis(since))
                    .fetch_one(self.pool())
                    .await?;
                    Ok(counts)
                }

                pub async fn record_login_failure(
                    &self,
                    username: &str,
                    address: &str,
                    forget_before: DateTime<Utc>,
                ) -> Result<(), StoreError> {
                    let _turn = self.background_turn().await;
                    let mut tx = begin_write(self.writes()).await?;
                    sqlx::query("delete from console_login_failures where at < $1")
                        .bind(to_millis(forget_before))
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("insert into console_login_failures (username, address, at) values ($1, $2, $3)")
                        .bind(username)
                        .bind(address)
                        .bind(to_millis(Utc::now()))
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    Ok(())
                }

                pub async fn start_console_session(
                    &self,
                    session: &NewSession<'_>,
                    username: &str,
                ) -> Result<(), StoreError> {
                    let now = to_millis(Utc::now());
                    let _turn = self.background_turn().await;
                    let mut tx = begin_write(self.writes()).await?;
                    sqlx::query("delete from console_sessions where expires_at < $1")
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("delete from console_login_failures where username = $1")
                        .bind(username)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query(
                        "insert into console_sessions (token_hash, user_id, csrf_token, created_at, expires_at)
                         values ($1, $2, $3, $4, $5)",
                    )
                    .bind(session.token_hash)
                    .bind(session.user_id)
                    .bind(session.csrf_token)
                    .bind(now)
                    .bind(to_millis(session.expires_at))
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    Ok(())
                }

                pub async fn console_session(&self, token_hash: &str) -> Result<Option<ConsoleSession>, StoreError> {
                    let row: Option<(i64, String, String, bool, String, Option<String>, i64)> = sqlx::query_as(
                        "select u.id, u.username, u.role, u.disabled, s.csrf_token, s.search, s.expires_at
                         from console_sessions s join console_users u on u.id = s.user_id
                         where s.token_hash = $1 and s.expires_at > $2 and not u.disabled",
                    )
                    .bind(token_hash)
                    .bind(to_millis(Utc::now()))
                    .fetch_optional(self.pool())
                    .await?;
                    row.map(|(id, name, role, disabled, csrf_token, search, expires_at)| {
                        Ok(ConsoleSession {
                            user: user((id, name, role, disabled))?,
                            csrf_token,
                            search,
                            expires_at: from_millis(expires_at),
                        })
                    })
                    .transpose()
                }

                pub async fn set_console_search(
                    &self,
                    token_hash: &str,
                    search: Option<&str>,
                ) -> Result<(), StoreError> {
                    let _turn = self.background_turn().await;
                    sqlx::query("update console_sessions set search = $1 where token_hash = $2")
                        .bind(search)
                        .bind(token_hash)
                        .execute(self.writes())
                        .await?;
                    Ok(())
                }

                pub async fn end_console_session(&self, token_hash: &str) -> Result<(), StoreError> {
                    let _turn = self.background_turn().await;
                    sqlx::query("delete from console_sessions where token_hash = $1")
                        .bind(token_hash)
                        .execute(self.writes())
                        .await?;
                    Ok(())
                }

                pub async fn audit(&self, actor: &str, action: &str, detail: Option<&str>) -> Result<(), StoreError> {
                    let _turn = self.background_turn().await;
                    sqlx::query("insert into console_audit (at, actor, action, detail) values ($1, $2, $3, $4)")
                        .bind(to_millis(Utc::now()))
                        .bind(actor)
                        .bind(action)
                        .bind(detail)
                        .execute(self.writes())
                        .await?;
                    Ok(())
                }

                pub async fn audit_log(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
                    let rows: Vec<(i64, String, String, Option<String>)> =
                        sqlx::query_as("select at, actor, action, detail from console_audit order by id desc limit $1")
                            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                            .fetch_all(self.pool())
                            .await?;
                    Ok(rows
                        .into_iter()
                        .map(|(at, actor, action, detail)| AuditEntry { at: from_millis(at), actor, action, detail })
                        .collect())
                }

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

pub(super) use console_queries;
