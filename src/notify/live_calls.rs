//! Report, live: the calls ringing or talking now, each as a card saying who is calling, for `GET /api/v1/calls/live`.
//!
//! One board per node, refreshed from the store (so a call whose events reached another node
//! shows too) while anyone watches. The caller is looked up in the CRM once per call, in the
//! background: a slow CRM delays the card's contact, never the card.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use crate::config::{SourceConfig, SourceKind};
use crate::connectors::{Caller, Connector, Connectors};
use crate::domain::{CrmRef, Direction, Phone, PhoneRegion, SourceId};
use crate::store::{Store, StoreError};
use crate::telephony::live::{LiveCall, live_call};

/// How often the board looks at the open calls while someone watches.
const REFRESH: Duration = Duration::from_secs(1);
/// The most calls a board shows at once, oldest first.
const MOST_CALLS: usize = 200;
/// A caller's look-up that takes longer is given up; the card shows the number alone.
const LOOKUP_LIMIT: Duration = Duration::from_secs(10);

/// A call in progress as operators see it. Its `id` is stable for the call's life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallCard {
    pub id: String,
    pub source: SourceId,
    pub call_id: String,
    pub direction: Option<Direction>,
    /// The client's number in E.164.
    pub phone: Option<String>,
    /// Our number the client called, in E.164.
    pub our_number: Option<String>,
    pub ringing: Vec<String>,
    pub talking: Vec<String>,
    pub started_at: DateTime<Utc>,
    pub caller: CallerState,
}

/// What the CRM said about the number, so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum CallerState {
    /// Not asked yet, or the answer is on its way.
    LookingUp,
    /// No contact has this number.
    Unknown,
    Known {
        contact: CardRecord,
        open_deals: Vec<CardRecord>,
    },
    /// The CRM did not answer; the card shows the number alone.
    LookupFailed,
}

/// A CRM record on a card, with the page that opens it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CardRecord {
    pub id: String,
    pub name: Option<String>,
    pub url: Option<String>,
}

/// The cards of every call in progress, by card id.
pub type Board = BTreeMap<String, CallCard>;

/// Where the board is published; each watcher subscribes.
#[derive(Clone)]
pub struct LiveCalls {
    board: Arc<watch::Sender<Arc<Board>>>,
    /// Cancelled at shutdown, so that watchers' open streams end and the server can stop.
    closed: CancellationToken,
}

impl Default for LiveCalls {
    fn default() -> Self {
        Self { board: Arc::new(watch::Sender::new(Arc::default())), closed: CancellationToken::new() }
    }
}

impl LiveCalls {
    /// The board now, and each change after.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Board>> {
        self.board.subscribe()
    }

    /// Resolves when the node is shutting down.
    pub fn closed(&self) -> WaitForCancellationFutureOwned {
        self.closed.clone().cancelled_owned()
    }

    fn watched(&self) -> bool {
        self.board.receiver_count() > 0
    }
}

pub struct LiveBoard {
    pub store: Store,
    pub sources: Arc<BTreeMap<SourceId, SourceConfig>>,
    pub connectors: Connectors,
    pub phone_region: PhoneRegion,
    pub live: LiveCalls,
}

/// Callers looked up or being looked up, by card id.
type Callers = Arc<Mutex<HashMap<String, CallerState>>>;

impl LiveBoard {
    pub async fn run(self, shutdown: CancellationToken) {
        let callers = Callers::default();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => {
                    self.live.closed.cancel();
                    return;
                }
                () = tokio::time::sleep(REFRESH) => {}
            }
            if !self.live.watched() {
                // Unwatched, the board is not kept up to date: the next watcher starts from empty
                // rather than from calls that may have ended meanwhile.
                self.live.board.send_if_modified(|published| {
                    let stale = !published.is_empty();
                    *published = Arc::default();
                    stale
                });
                continue;
            }
            match self.cards(&callers).await {
                Ok(board) => {
                    self.live.board.send_if_modified(|published| {
                        let changed = **published != board;
                        if changed {
                            *published = Arc::new(board);
                        }
                        changed
                    });
                }
                Err(error) => tracing::warn!(%error, "could not read the calls in progress; trying again shortly"),
            }
        }
    }

    async fn cards(&self, callers: &Callers) -> Result<Board, StoreError> {
        let mut board = Board::new();
        for open in self.store.open_calls(MOST_CALLS).await? {
            let Some((source, SourceKind::Telephony(telephony))) =
                self.sources.get(&open.source).map(|source| (source, &source.kind))
            else {
                continue;
            };
            let events: Vec<_> = self
                .store
                .call_events(&open.source, &open.call_id)
                .await?
                .into_iter()
                .map(|stored| stored.event)
                .collect();
            let Some(mut call) = live_call(&events, self.phone_region) else { continue };
            // A card is for the people whose phones ring: extensions nobody mapped (an IVR or a
            // queue, which Telphin names as such only when they hang up) are not shown, nor is a
            // call that reached no one yet.
            call.ringing.retain(|extension| telephony.users.contains_key(extension));
            call.talking.retain(|extension| telephony.users.contains_key(extension));
            if call.ringing.is_empty() && call.talking.is_empty() {
                continue;
            }
            let id = format!("{}:{}", source.id, call.call_id);
            let caller = self.caller(callers, &id, source, call.client.as_ref());
            board.insert(id.clone(), card(id, source.id.clone(), call, caller));
        }
        callers.lock().unwrap_or_else(PoisonError::into_inner).retain(|id, _| board.contains_key(id));
        Ok(board)
    }

    /// What is known of the caller; the first time a card asks, the look-up starts.
    fn caller(&self, callers: &Callers, id: &str, source: &SourceConfig, phone: Option<&Phone>) -> CallerState {
        let Some(phone) = phone else { return CallerState::Unknown };
        let mut known = callers.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(state) = known.get(id) {
            return state.clone();
        }
        known.insert(id.to_owned(), CallerState::LookingUp);
        let (callers, id, phone) = (Arc::clone(callers), id.to_owned(), phone.clone());
        let connectors = Arc::clone(&self.connectors);
        let destination = source.route.destination.clone();
        tokio::spawn(async move {
            let Some(connector) = connectors.get(&destination) else { return };
            let state = match tokio::time::timeout(LOOKUP_LIMIT, look_up(connector, &phone)).await {
                Ok(state) => state,
                Err(_) => CallerState::LookupFailed,
            };
            callers.lock().unwrap_or_else(PoisonError::into_inner).insert(id, state);
        });
        CallerState::LookingUp
    }
}

async fn look_up(connector: &Connector, phone: &Phone) -> CallerState {
    let record = |record: &CrmRef, name: Option<String>| CardRecord {
        id: record.id.clone(),
        name,
        url: connector.card_url(record),
    };
    match connector.caller(phone, &mut Vec::new()).await {
        Ok(Some(Caller { contact, name, open_deals })) => CallerState::Known {
            contact: record(&contact, name),
            open_deals: open_deals.into_iter().map(|deal| record(&deal.record, deal.name)).collect(),
        },
        Ok(None) => CallerState::Unknown,
        Err(error) => {
            tracing::warn!(%error, "could not look a caller up for the live card");
            CallerState::LookupFailed
        }
    }
}

fn card(id: String, source: SourceId, call: LiveCall, caller: CallerState) -> CallCard {
    CallCard {
        id,
        source,
        call_id: call.call_id,
        direction: call.direction,
        phone: call.client.map(|phone| phone.e164().to_owned()),
        our_number: call.our_number.map(|phone| phone.e164().to_owned()),
        ringing: call.ringing,
        talking: call.talking,
        started_at: call.started_at,
        caller,
    }
}
