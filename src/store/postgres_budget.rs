//! A CRM account's request budget shared by every node on one PostgreSQL: a request holds a row
//! while it runs and for one window after its answer, and no node sends while the budget is held.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;

use super::StoreError;
use super::postgres::PostgresStore;

/// The database's clock in milliseconds: nodes' own clocks may disagree, the database's is one.
const NOW_MS: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

/// How long a slot is held for a request whose answer never comes back (its node died).
const IN_FLIGHT_HOLD: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct SharedRateBudget {
    store: PostgresStore,
    destination: String,
    requests_per_second: i64,
    /// This node's callers ask the database one at a time: a crowd of waiters would each hold a
    /// pooled connection, and starve the lease renewals that keep this node's leads its own.
    turn: Arc<Mutex<()>>,
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
        let hold = i64::try_from(IN_FLIGHT_HOLD.as_millis()).unwrap_or(i64::MAX);
        let answer: i64 = sqlx::query_scalar("select leadgate_take_rate_slot($1, $2, $3)")
            .bind(&self.destination)
            .bind(self.requests_per_second)
            .bind(hold)
            .fetch_one(self.store.pool())
            .await?;
        Ok(if answer > 0 { Ok(answer) } else { Err(Duration::from_millis(answer.unsigned_abs())) })
    }
}

impl SharedSlot {
    /// The request's answer has arrived: the slot frees one window from now.
    pub async fn release(self, window: Duration) {
        let window = i64::try_from(window.as_millis()).unwrap_or(1000);
        let released = sqlx::query(&format!("update rate_slots set held_until = {NOW_MS} + $1 where id = $2"))
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
