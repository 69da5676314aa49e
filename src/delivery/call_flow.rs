//! Decide and deliver a call: log it on the client's contact, make a contact (and deal) for an unknown number, or wait for one.
//!
//! The seed's ten scenarios are the combinations of direction, answered or not, and known or
//! not; the source's options (and a rule of the number the client called) say what an unknown
//! number gets. Each create is journaled before the next, as for leads.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use url::Url;

use super::journal::{Found, Journal, Progress, Step};
use crate::config::{AutoCreate, Route, TelephonySource};
use crate::connectors::{ClientFound, Connector, DeliveryError, Search};
use crate::domain::{
    AutoContact, AutoContactKind, AutoDeal, Call, CallNote, CallResult, CallStatus, CrmRef, Decision, Direction,
    Entity, HistoryEvent, Lead, Outcome,
};

/// How often a parked call looks for its contact again.
const RECHECK: Duration = Duration::from_secs(30);

/// Where a call's delivery ended: settled, or parked until a contact with its number may appear.
pub enum Settled {
    Done(Outcome),
    Parked { until: DateTime<Utc> },
}

pub struct CallDelivery<'a, 'j> {
    pub lead: &'a Lead,
    pub call: &'a Call,
    pub telephony: &'a TelephonySource,
    pub route: &'a Route,
    pub connector: &'a Connector,
    /// Where the call's recording plays, when it has one the gateway can fetch.
    pub recording_link: Option<Url>,
    pub journal: &'a mut Journal<'j>,
}

impl CallDelivery<'_, '_> {
    /// # Errors
    /// Why it stopped; finished steps stay journaled.
    pub async fn run(mut self, earlier: Option<Progress>) -> Result<Settled, DeliveryError> {
        let interrupted = earlier.as_ref().and_then(|progress| progress.started);
        let mut progress = earlier.unwrap_or_default();
        let incoming = self.call.direction == Direction::Incoming;
        let answered = self.call.result == CallResult::Answered;
        let rule = self.telephony.rule_for(incoming, self.call.our_number.as_ref());
        let actor = self.actor().await?;
        let found = match progress.found.clone() {
            Some(found) => found,
            None => {
                let search = Search { by_email: false, with_deal: false };
                let found = self.connector.find_client(self.lead, self.route, search, self.journal.calls()).await?;
                let found = match found {
                    Some(ClientFound { contact, organization, responsible, .. }) => {
                        Found::Known { contact, organization, deal: None, responsible }
                    }
                    None => Found::New,
                };
                self.journal
                    .note(HistoryEvent::now("client_looked_up", serde_json::to_value(&found).unwrap_or_default()));
                found
            }
        };
        let option = match (incoming, answered) {
            (true, true) => rule.incoming_unknown,
            (true, false) => rule.missed_unknown,
            (false, _) => rule.outgoing_unknown,
        };
        if found == Found::New && option == AutoCreate::Nothing {
            return self.park(&mut progress).await;
        }
        if progress.found.is_none() {
            progress.found = Some(found.clone());
            progress.started = Some(if found == Found::New { Step::Contact } else { Step::Note });
            self.journal.record_step(&progress).await?;
        }
        let (contact, contact_responsible) = match &found {
            Found::Known { contact, responsible, .. } => (contact.clone(), responsible.clone()),
            Found::New => {
                let (kind, responsible) = match (incoming, answered) {
                    (true, true) => (AutoContactKind::Incoming, actor.clone()),
                    (true, false) => (AutoContactKind::IncomingMissed, self.missed_calls_user().await?),
                    (false, _) => (AutoContactKind::Outgoing, actor.clone()),
                };
                // An outgoing call nobody answered makes at most a contact, never a deal.
                let deal_due = option == AutoCreate::ContactAndDeal && (incoming || answered);
                // A create cut short may have happened: the contact is looked for before it is made again.
                if progress.contact.is_none() && interrupted == Some(Step::Contact) {
                    let search = Search { by_email: false, with_deal: false };
                    let again = self.connector.find_client(self.lead, self.route, search, self.journal.calls()).await?;
                    progress.contact = again.map(|found| found.contact);
                }
                let contact = match &progress.contact {
                    Some(contact) => contact.clone(),
                    None => {
                        let dialled = self.call.our_number.as_ref().filter(|_| incoming);
                        let spec = AutoContact::new(kind, self.call.client.clone(), responsible.clone(), dialled);
                        let contact = self.connector.create_auto_contact(&spec, self.journal.calls()).await?;
                        progress.contact = Some(contact.clone());
                        progress.started = Some(if deal_due { Step::Deal } else { Step::Note });
                        self.journal.record_step(&progress).await?;
                        contact
                    }
                };
                let route =
                    Route { pipeline: rule.pipeline.clone(), status: rule.status.clone(), ..self.route.clone() };
                if deal_due && progress.deal.is_none() && interrupted == Some(Step::Deal) {
                    progress.deal = self.connector.find_deal_of(&contact, &route, self.journal.calls()).await?;
                }
                if deal_due && progress.deal.is_none() {
                    let spec =
                        AutoDeal::new(self.call.direction, &self.call.client, contact.clone(), responsible.clone());
                    let deal = self.connector.create_auto_deal(&spec, &route, self.journal.calls()).await?;
                    progress.deal = Some(deal);
                    progress.started = Some(Step::Note);
                    self.journal.record_step(&progress).await?;
                }
                (contact, responsible)
            }
        };
        if progress.note.is_none() {
            let earlier = match interrupted {
                Some(Step::Note) => {
                    self.connector.find_call(&contact, &self.call.call_id, self.journal.calls()).await?
                }
                _ => None,
            };
            let logged = match earlier {
                Some(logged) => logged,
                None => {
                    // A missed incoming call is for the client's responsible user to return.
                    let responsible = if incoming && !answered { contact_responsible.or(actor) } else { actor };
                    let note = self.note(responsible);
                    self.connector.log_call(&contact, &note, self.journal.calls()).await?
                }
            };
            progress.note = Some(logged);
            progress.started = None;
            self.journal.record_step(&progress).await?;
        }
        let decision = match (&found, progress.parked) {
            (Found::New, _) => Decision::CallAutoContact,
            (Found::Known { .. }, true) => Decision::CallAttached,
            (Found::Known { .. }, false) => Decision::CallLogged,
        };
        Ok(Settled::Done(self.outcome(decision, &found, &progress)))
    }

    /// The CRM user who answered the call, or made it.
    async fn actor(&mut self) -> Result<Option<CrmRef>, DeliveryError> {
        let extension = self.call.answered_by.as_ref().or_else(|| match self.call.direction {
            Direction::Outgoing => self.call.extensions.first(),
            Direction::Incoming => None,
        });
        let Some(user) = extension.and_then(|extension| self.telephony.users.get(extension)) else {
            return Ok(None);
        };
        self.connector.crm_user(user, self.journal.calls()).await.map(Some)
    }

    async fn missed_calls_user(&mut self) -> Result<Option<CrmRef>, DeliveryError> {
        match &self.telephony.missed_calls_user {
            Some(user) => self.connector.crm_user(user, self.journal.calls()).await.map(Some),
            None => Ok(None),
        }
    }

    /// Nothing is made for an unknown number: the call waits for a contact with it (made by a
    /// manager or another channel) until `attach_window` after it ended, then is dropped.
    async fn park(&mut self, progress: &mut Progress) -> Result<Settled, DeliveryError> {
        let deadline = self.call.ended_at + self.telephony.attach_window;
        let now = Utc::now();
        if now >= deadline {
            self.journal.note(HistoryEvent::now(
                "call_dropped",
                json!({ "reason": "no contact with this number appeared within attach_window", "window_ended_at": deadline }),
            ));
            return Ok(Settled::Done(Outcome { decision: Decision::CallDropped, entities: Vec::new() }));
        }
        if !progress.parked {
            progress.parked = true;
            self.journal.record_step(progress).await?;
        }
        let until = deadline.min(now + RECHECK);
        self.journal.note(HistoryEvent::now("call_parked", json!({ "next_look_at": until, "until": deadline })));
        Ok(Settled::Parked { until })
    }

    fn note(&self, responsible: Option<CrmRef>) -> CallNote {
        let call = self.call;
        let answered = call.result == CallResult::Answered;
        CallNote {
            direction: call.direction,
            uniq: call.call_id.clone(),
            phone: call.client.clone(),
            duration_seconds: if answered { call.talk_seconds } else { call.wait_seconds },
            call_status: CallStatus::of(call.result),
            responsible,
            link: self.recording_link.clone(),
        }
    }

    fn outcome(&self, decision: Decision, found: &Found, progress: &Progress) -> Outcome {
        let entity =
            |record: &CrmRef, made: bool| Entity { record: record.clone(), made, url: self.connector.card_url(record) };
        let mut entities = Vec::new();
        if let Some(contact) = progress.contact.as_ref().or(match found {
            Found::Known { contact, .. } => Some(contact),
            Found::New => None,
        }) {
            entities.push(entity(contact, *found == Found::New));
        }
        entities.extend(progress.deal.iter().chain(&progress.note).map(|record| entity(record, true)));
        Outcome { decision, entities }
    }
}
