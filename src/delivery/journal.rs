//! The journal a connector writes while it works: finished steps and the history behind them.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::domain::HistoryEvent;
use crate::store::{Lease, Store, StoreError};

pub struct Journal<'a> {
    store: &'a Store,
    lease: &'a Lease,
    extend_by: Duration,
    earlier: Option<serde_json::Value>,
    events: Vec<HistoryEvent>,
}

impl<'a> Journal<'a> {
    pub fn new(store: &'a Store, lease: &'a Lease, extend_by: Duration, earlier: Option<serde_json::Value>) -> Self {
        Self { store, lease, extend_by, earlier, events: Vec::new() }
    }

    /// What earlier attempts journaled, if they got that far.
    pub fn earlier_progress<T: DeserializeOwned>(&self) -> Option<T> {
        self.earlier.clone().and_then(|value| serde_json::from_value(value).ok())
    }

    /// Where CRM calls are recorded until the next step is journaled.
    pub fn calls(&mut self) -> &mut Vec<HistoryEvent> {
        &mut self.events
    }

    pub fn note(&mut self, event: HistoryEvent) {
        self.events.push(event);
    }

    /// Commits `progress` and the history since the last step, and extends the lease.
    ///
    /// # Errors
    /// `StoreError::LeaseLost` when another worker owns the lead now; the caller must stop.
    pub async fn record_step(&mut self, progress: &impl Serialize) -> Result<(), StoreError> {
        let progress = serde_json::to_value(progress).map_err(|error| StoreError::Corrupt(error.to_string()))?;
        self.store.record_step(self.lease, &progress, &self.events, self.extend_by).await?;
        self.events.clear();
        Ok(())
    }

    /// The history not yet written, for the write that ends the attempt.
    pub fn take_events(&mut self) -> Vec<HistoryEvent> {
        std::mem::take(&mut self.events)
    }
}
