//! The worker: wakes when a lead arrives or every `interval`, claims due leads, delivers them.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::Utc;

use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::delivery::Deliverer;
use crate::store::StoreError;

/// How long in-flight deliveries may run on after shutdown was asked for. Whatever is still
/// running then is abandoned; its lease expires and the lead is claimed again later.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

pub struct Worker {
    deliverer: Deliverer,
    wake: Arc<Notify>,
    heartbeat: Heartbeat,
}

/// When the worker last went round its loop, for `/readyz`: a worker stuck on its database
/// keeps the process alive but delivers nothing.
#[derive(Clone, Default)]
pub struct Heartbeat(Arc<AtomicI64>);

impl Heartbeat {
    fn beat(&self) {
        self.0.store(Utc::now().timestamp_millis(), Ordering::Relaxed);
    }

    /// How long ago the last round was; `None` before the first.
    pub fn age(&self) -> Option<Duration> {
        let last = self.0.load(Ordering::Relaxed);
        (last > 0).then(|| Duration::from_millis(u64::try_from(Utc::now().timestamp_millis() - last).unwrap_or(0)))
    }
}

impl Worker {
    pub fn new(deliverer: Deliverer, wake: Arc<Notify>, heartbeat: Heartbeat) -> Self {
        Self { deliverer, wake, heartbeat }
    }

    pub fn heartbeat(&self) -> Heartbeat {
        self.heartbeat.clone()
    }

    /// How old the heartbeat may get before the worker counts as stuck: a few of its rounds.
    pub fn stale_after(&self) -> Duration {
        (self.deliverer.worker.interval * 3).max(Duration::from_secs(30))
    }

    /// Runs until `shutdown`, with at most `batch_size` leads in flight.
    pub async fn run(self, shutdown: CancellationToken) {
        let config = &self.deliverer.worker;
        let slots = Arc::new(Semaphore::new(config.batch_size));
        let mut in_flight = JoinSet::new();
        let mut tick = tokio::time::interval(config.interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut maybe_more = false;
        loop {
            self.heartbeat.beat();
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = tick.tick() => {}
                () = self.wake.notified() => {}
                Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {
                    // A freed slot is only worth a claim if the last one found work.
                    if !maybe_more {
                        continue;
                    }
                }
            }
            maybe_more = self.claim_into(&slots, &mut in_flight).await;
        }
        let drained =
            tokio::time::timeout(SHUTDOWN_GRACE, async { while in_flight.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            tracing::warn!(
                abandoned = in_flight.len(),
                "shutdown grace ran out; unfinished leads return when their leases expire"
            );
        }
    }

    /// Claims as many due leads as there are free slots and starts delivering them.
    /// Returns whether the claim found anything, i.e. whether more may be waiting.
    async fn claim_into(&self, slots: &Arc<Semaphore>, in_flight: &mut JoinSet<()>) -> bool {
        let free = slots.available_permits();
        if free == 0 {
            return true;
        }
        match self.deliverer.store.claim_due(free, self.deliverer.worker.lease).await {
            Ok(claims) => {
                let found = !claims.is_empty();
                for claim in claims {
                    let permit = Arc::clone(slots).try_acquire_owned().expect("claimed no more than the free slots");
                    let deliverer = self.deliverer.clone();
                    in_flight.spawn(async move {
                        deliverer.deliver(claim).await;
                        drop(permit);
                    });
                }
                found
            }
            Err(error) => {
                tracing::error!(%error, "could not claim leads; retrying at the next tick");
                false
            }
        }
    }

    /// Claims one batch and delivers it to the end; returns how many leads it took.
    /// Lets tests and tools drive the worker step by step.
    pub async fn process_next(&self) -> Result<usize, StoreError> {
        let claims =
            self.deliverer.store.claim_due(self.deliverer.worker.batch_size, self.deliverer.worker.lease).await?;
        let count = claims.len();
        futures::future::join_all(claims.into_iter().map(|claim| self.deliverer.deliver(claim))).await;
        Ok(count)
    }
}
