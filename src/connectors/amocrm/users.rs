//! The account's users by name or id: read from `GET /api/v4/users` once, and again when one is not found.

use tokio::sync::{Mutex, RwLock};

use super::AmoCrm;
use super::operations::user_ref;
use super::wire::{AmoUser, UsersEmbedded};
use crate::connectors::{Calls, DeliveryError};
use crate::domain::{CrmRef, UserRef};

/// The users last read from the account.
#[derive(Default)]
pub struct Users {
    known: RwLock<Vec<AmoUser>>,
    /// One refresh at a time, as for the pipelines: a batch of calls answered by a user the
    /// gateway has not seen yet would otherwise read the list once per call.
    refreshing: Mutex<()>,
}

/// What the list says about a configured user.
enum Match {
    One(i64),
    Several(Vec<i64>),
    None,
}

impl Users {
    async fn find(&self, who: &UserRef) -> Match {
        let known = self.known.read().await;
        let ids: Vec<i64> = known
            .iter()
            .filter(|user| match who {
                UserRef::Id(id) => user.id == *id,
                UserRef::Name(name) => user.name.trim() == name.trim(),
            })
            .map(|user| user.id)
            .collect();
        match ids.as_slice() {
            [] => Match::None,
            [id] => Match::One(*id),
            _ => Match::Several(ids),
        }
    }

    async fn names(&self) -> String {
        let known = self.known.read().await;
        let mut names: Vec<&str> = known.iter().map(|user| user.name.as_str()).collect();
        names.sort_unstable();
        names.join(", ")
    }
}

impl AmoCrm {
    /// The user the configuration names. Names are matched exactly (spaces around them aside),
    /// since amoCRM does not keep them unique; an id must belong to a user of the account.
    ///
    /// # Errors
    /// `Misconfigured` naming the user when the account has none by that name or id, or several
    /// by that name; otherwise as for every call. The list is read again before either answer.
    pub async fn crm_user(&self, who: &UserRef, calls: &mut Calls) -> Result<CrmRef, DeliveryError> {
        if let Match::One(id) = self.users.find(who).await {
            return Ok(user_ref(id));
        }
        {
            let _refreshing = self.users.refreshing.lock().await;
            // Another caller may have read the list while this one waited.
            if !matches!(self.users.find(who).await, Match::One(_)) {
                let pages: Vec<UsersEmbedded> = self.client.get_pages(calls, "/api/v4/users").await?;
                *self.users.known.write().await = pages.into_iter().flat_map(|page| page.users).collect();
            }
        }
        match self.users.find(who).await {
            Match::One(id) => Ok(user_ref(id)),
            Match::Several(ids) => {
                let ids: Vec<String> = ids.iter().map(i64::to_string).collect();
                Err(DeliveryError::Misconfigured(format!(
                    "{who} names {} amoCRM users (ids {}); name the user by id instead",
                    ids.len(),
                    ids.join(", ")
                )))
            }
            Match::None => Err(DeliveryError::Misconfigured(match who {
                UserRef::Id(_) => format!("amoCRM has no {who} in the account"),
                UserRef::Name(_) => {
                    format!("amoCRM has no {who} in the account (it has: {})", self.users.names().await)
                }
            })),
        }
    }
}
