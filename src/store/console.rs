//! What the operator console keeps: its users, their sessions, failed logins and the audit log.

use chrono::{DateTime, Utc};

use super::{Store, StoreError};
use crate::domain::operator::{ConsoleUser, Role, Username};

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

impl Store {
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
}

macro_rules! console_queries {
    ($store:ident, $db:ty) => {
        mod console {
            use chrono::{DateTime, Utc};

            use super::super::{begin_write, $store};
            use $crate::domain::operator::{ConsoleUser, Role, Username};
            use $crate::store::console::{AuditEntry, ConsoleSession, NewSession};
            use $crate::store::{StoreError, from_millis, to_millis};

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
            }
        }
    };
}

pub(super) use console_queries;
