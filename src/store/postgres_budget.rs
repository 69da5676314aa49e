//! A CRM account's request budget shared by every node on one PostgreSQL: a request holds a row
//! while it runs and for one window after its answer, and no node sends while the budget is held.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, OnceCell};

use super::StoreError;
use super::postgres::PostgresStore;

/// The database's clock in milliseconds: nodes' own clocks may disagree, the database's is one.
const NOW_MS: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

/// How long a slot is held for a request whose answer never comes back, should its node's
/// presence outlive it (a node that dies loses its presence lock, and its slots free at once).
const IN_FLIGHT_HOLD: Duration = Duration::from_secs(60);

/// The first key of the session advisory lock by which a node shows it is alive; the second is
/// the node's number. `leadgate_take_rate_slot` looks for it in `pg_locks`.
const PRESENCE_LOCK: i32 = 7201;

#[derive(Clone)]
pub struct SharedRateBudget {
    store: PostgresStore,
    destination: String,
    requests_per_second: i64,
    /// This node's callers ask the database one at a time: a crowd of waiters would each hold a
    /// pooled connection, and starve the lease renewals that keep this node's leads its own.
    turn: Arc<Mutex<()>>,
    /// This node's number, once its presence lock is held.
    node: Arc<OnceCell<i32>>,
}

/// A slot of the shared budget, held until `release`.
pub struct SharedSlot {
    store: PostgresStore,
    id: i64,
}

impl SharedRateBudget {
    pub fn new(store: PostgresStore, destination: &str, requests_per_second: u32) -> Self {
        Self {
            store,
            destination: destination.to_owned(),
            requests_per_second: i64::from(requests_per_second.max(1)),
            turn: Arc::default(),
            node: Arc::default(),
        }
    }

    /// Waits until fewer than the budget's slots are held across all nodes, then takes one.
    ///
    /// # Errors
    /// When the database cannot be reached; the caller must not send then.
    pub async fn acquire(&self) -> Result<SharedSlot, StoreError> {
        let _turn = self.turn.lock().await;
        loop {
            match self.try_take().await? {
                Ok(id) => return Ok(SharedSlot { store: self.store.clone(), id }),
                Err(wait) => tokio::time::sleep(wait.clamp(Duration::from_millis(2), Duration::from_secs(1))).await,
            }
        }
    }

    /// A slot's id, or how long to wait before asking again (see `leadgate_take_rate_slot`).
    async fn try_take(&self) -> Result<Result<i64, Duration>, StoreError> {
        let node = *self.node.get_or_try_init(|| hold_presence(self.store.clone())).await?;
        let hold = i64::try_from(IN_FLIGHT_HOLD.as_millis()).unwrap_or(i64::MAX);
        let answer: i64 = sqlx::query_scalar("select leadgate_take_rate_slot($1, $2, $3, $4)")
            .bind(&self.destination)
            .bind(self.requests_per_second)
            .bind(hold)
            .bind(node)
            .fetch_one(self.store.pool())
            .await?;
        Ok(if answer > 0 { Ok(answer) } else { Err(Duration::from_millis(answer.unsigned_abs())) })
    }
}

impl SharedSlot {
    /// The request's answer has arrived: the slot frees one window from now.
    pub async fn release(self, window: Duration) {
        let window = i64::try_from(window.as_millis()).unwrap_or(1000);
        let released =
            sqlx::query(&format!("update rate_slots set held_until = {NOW_MS} + $1, in_flight = false where id = $2"))
                .bind(window)
                .bind(self.id)
                .execute(self.store.pool())
                .await;
        if let Err(error) = released {
            // The slot then stays held for the in-flight time: slower, never over the budget.
            tracing::warn!(%error, "could not release a slot of the shared rate budget");
        }
    }
}

/// Takes this node's presence lock on a connection of its own and keeps it for the life of the
/// process; returns the node's number. Should that connection break, it is opened and locked again.
async fn hold_presence(store: PostgresStore) -> Result<i32, StoreError> {
    let node = rand::random_range(1..i32::MAX);
    let mut connection = store.pool().acquire().await?.detach();
    sqlx::query("select pg_advisory_lock($1, $2)").bind(PRESENCE_LOCK).bind(node).execute(&mut connection).await?;
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(10)).await;
            if sqlx::query("select 1").execute(&mut connection).await.is_ok() {
                continue;
            }
            tracing::warn!("lost the connection that shows this node alive to the shared rate budget; reopening");
            let reopened = async {
                let mut fresh = store.pool().acquire().await?.detach();
                sqlx::query("select pg_advisory_lock($1, $2)")
                    .bind(PRESENCE_LOCK)
                    .bind(node)
                    .execute(&mut fresh)
                    .await?;
                Ok::<_, sqlx::Error>(fresh)
            };
            if let Ok(fresh) = reopened.await {
                connection = fresh;
            }
        }
    });
    Ok(node)
}
