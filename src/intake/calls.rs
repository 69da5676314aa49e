//! Accept, second half: fold each call's stored events into one lead once the call is over.
//!
//! Runs apart from the PBX's requests, so their answers never wait. Idempotent: the lead's
//! external id is the provider's call id, so nodes that fold the same call at once, or a fold
//! repeated after a crash, store one lead.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::{SourceConfig, SourceKind};
use crate::domain::{Call, CallResult, DealSpec, Direction, NewLead, PhoneRegion, Provider, Routing, SourceId};
use crate::store::calls::{CallClosed, OpenCall};
use crate::store::{Inserted, Store, StoreError};
use crate::telephony::{Assembly, assemble};

/// How often open calls are looked at without news: Telphin's calls end by falling quiet.
const SWEEP: Duration = Duration::from_secs(1);
/// A call that has not ended this long after its last event lost its end on the way.
const LONGEST_OPEN: Duration = Duration::from_secs(6 * 3600);
const BATCH: usize = 200;

pub struct CallAssembler {
    pub store: Store,
    pub sources: Arc<BTreeMap<SourceId, SourceConfig>>,
    pub phone_region: PhoneRegion,
    /// Woken by intake when events arrive.
    pub wake: Arc<Notify>,
    /// Woken when a call became a lead.
    pub lead_wake: Arc<Notify>,
}

impl CallAssembler {
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(SWEEP) => {}
            }
            if let Err(error) = self.fold_open_calls().await {
                tracing::warn!(%error, "could not fold call events into calls; trying again shortly");
            }
        }
    }

    /// Looks at every open call once; each that is over becomes a lead or is set aside.
    ///
    /// # Errors
    /// When the store cannot be read or written; the calls stay open and are looked at again.
    pub async fn fold_open_calls(&self) -> Result<(), StoreError> {
        let mut made = false;
        for open in self.store.open_calls(BATCH).await? {
            made |= self.fold(&open).await?;
        }
        if made {
            self.lead_wake.notify_one();
        }
        Ok(())
    }

    async fn fold(&self, open: &OpenCall) -> Result<bool, StoreError> {
        let Some((source, SourceKind::Telephony(telephony))) =
            self.sources.get(&open.source).map(|source| (source, &source.kind))
        else {
            let reason = format!("source «{}» is no longer a configured telephony source", open.source);
            self.store.close_call(&open.source, &open.call_id, &CallClosed::Ignored(reason)).await?;
            return Ok(false);
        };
        let events: Vec<_> =
            self.store.call_events(&open.source, &open.call_id).await?.into_iter().map(|stored| stored.event).collect();
        let now = Utc::now();
        let assembly = assemble(
            telephony.access.provider(),
            &events,
            self.phone_region,
            now,
            telephony.finish_after,
            |extension| telephony.users.contains_key(extension),
        );
        let closed = match assembly {
            Assembly::Complete(call) if awaits_recording(&call, open, now, telephony.finish_after) => return Ok(false),
            Assembly::Complete(call) => {
                let id = match self.store.insert_leads(&[call_lead(source, *call)]).await?.first() {
                    Some(Inserted::New(id) | Inserted::Existing { id, .. } | Inserted::Duplicate { id }) => *id,
                    None => return Err(StoreError::Corrupt("a call's lead was not stored".to_owned())),
                };
                CallClosed::Complete(id)
            }
            Assembly::Ignored(because) => CallClosed::Ignored(format!("{because:?}")),
            Assembly::Incomplete if (now - open.last_event_at).to_std().is_ok_and(|quiet| quiet > LONGEST_OPEN) => {
                CallClosed::Ignored(format!(
                    "no end arrived within {}h of the last event",
                    LONGEST_OPEN.as_secs() / 3600
                ))
            }
            Assembly::Incomplete => return Ok(false),
        };
        let made = matches!(closed, CallClosed::Complete(_));
        crate::metrics::call_closed(&open.source.0, if made { "logged" } else { "ignored" });
        self.store.close_call(&open.source, &open.call_id, &closed).await?;
        Ok(made)
    }
}

/// Mango announces a conversation's recording (`record/added`) only after the call's summary:
/// an answered call waits for it until nothing has arrived for `finish_after`, so that its note
/// can link to the recording. Measured by arrival, since the PBX's clock says nothing of when
/// the next event will come.
fn awaits_recording(call: &Call, open: &OpenCall, now: DateTime<Utc>, finish_after: Duration) -> bool {
    let quiet = (now - open.last_event_at).to_std().is_ok_and(|quiet| quiet >= finish_after);
    call.provider == Provider::Mango && call.result == CallResult::Answered && call.recording.is_none() && !quiet
}

/// A finished call as the lead the queue delivers: the client's phone, the call's record.
fn call_lead(source: &SourceConfig, call: Call) -> NewLead {
    let name = match call.direction {
        Direction::Incoming => "Входящий звонок",
        Direction::Outgoing => "Исходящий звонок",
    };
    NewLead {
        source: source.id.clone(),
        external_id: Some(call.call_id.clone()),
        name: name.to_owned(),
        phone: call.client.clone(),
        email: None,
        comment: None,
        callback_url: None,
        payload: json!({ "provider": call.provider, "call_id": call.call_id }),
        routing: Routing::default(),
        origin_time: Some(call.started_at),
        deal: DealSpec::default(),
        skip_sending: false,
        duplicate_check: None,
        call: Some(Box::new(call)),
    }
}
