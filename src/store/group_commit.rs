//! Group commit: concurrent intake requests are committed together, one transaction per batch.
//!
//! Each commit costs one fsync under `synchronous = FULL`; sharing it between every request that
//! arrived meanwhile is what lets the durable setting keep up with many clients.

use std::sync::Arc;

use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;

use super::{Inserted, Store, StoreError};
use crate::domain::NewLead;

/// The most leads one transaction takes; enough to amortise the commit, small enough to keep it short.
const MAX_BATCH: usize = 256;

type Reply = oneshot::Sender<Result<Inserted, StoreError>>;

/// The intake's handle for committing leads. Cheap to clone.
#[derive(Clone)]
pub struct LeadWriter {
    requests: mpsc::Sender<(NewLead, Reply)>,
}

impl LeadWriter {
    /// Starts the committing task. It ends once every `LeadWriter` is dropped and the queue is
    /// drained, so no accepted request is abandoned at shutdown. `committed` is notified after
    /// each commit that stored a new lead.
    pub fn start(store: Store, committed: Arc<Notify>) -> (Self, JoinHandle<()>) {
        let (requests, receiver) = mpsc::channel(4 * MAX_BATCH);
        let task = tokio::spawn(commit_batches(store, receiver, committed));
        (Self { requests }, task)
    }

    /// Returns once the lead is committed (or found to be a repeat of a committed one).
    ///
    /// # Errors
    /// When the transaction carrying the lead failed; then nothing of it was stored.
    pub async fn insert(&self, lead: NewLead) -> Result<Inserted, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.requests.send((lead, reply)).await.map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

async fn commit_batches(store: Store, mut receiver: mpsc::Receiver<(NewLead, Reply)>, committed: Arc<Notify>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while receiver.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (leads, replies): (Vec<NewLead>, Vec<Reply>) = batch.drain(..).unzip();
        let results = commit_batch(&store, &leads).await;
        if results.iter().any(|result| matches!(result, Ok(Inserted::New(_)))) {
            committed.notify_one();
        }
        for ((reply, result), lead) in replies.into_iter().zip(results).zip(&leads) {
            if let Ok(inserted) = &result {
                let kind = match inserted {
                    Inserted::New(_) => "new",
                    Inserted::Existing { .. } => "existing",
                    Inserted::Duplicate { .. } => "duplicate",
                };
                crate::metrics::lead_received(&lead.source.0, kind);
            }
            let _ = reply.send(result);
        }
    }
}

/// Commits `leads` in one transaction. When the database refuses one lead's data, that lead must
/// not take its neighbours down with it: each is then committed alone, and only the faulty one
/// fails. A database that is down fails the whole batch at once instead of once per lead.
async fn commit_batch(store: &Store, leads: &[NewLead]) -> Vec<Result<Inserted, StoreError>> {
    let error = match store.insert_leads(leads).await {
        Ok(results) => {
            tracing::debug!(leads = results.len(), "committed a batch of leads");
            return results.into_iter().map(Ok).collect();
        }
        Err(error) => error,
    };
    if leads.len() > 1 && error.concerns_the_data() {
        tracing::warn!(
            ?error,
            leads = leads.len(),
            "a lead's data failed its batch; committing the batch lead by lead"
        );
        let mut results = Vec::with_capacity(leads.len());
        for lead in leads {
            let result = store.insert_leads(std::slice::from_ref(lead)).await.map(|mut inserted| inserted.remove(0));
            if let Err(error) = &result {
                tracing::error!(%error, "could not commit a lead");
            }
            results.push(result.map_err(|error| error.for_each_lead()));
        }
        return results;
    }
    tracing::error!(%error, leads = leads.len(), "could not commit a batch of leads");
    leads.iter().map(|_| Err(error.for_each_lead())).collect()
}
