//! What the CRM, the gateway and the callback receiver hold after a run: one client, one deal, one outcome each.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use amocrm_emulator::Emulator;
use chrono::{DateTime, FixedOffset};
use serde_json::Value;

use crate::callback_receiver::ReceivedCallback;
use crate::helpers::PIPELINE;

/// The emulated account after a run, indexed the way the checks ask.
pub struct CrmAudit {
    contacts_by_phone: BTreeMap<String, Vec<u64>>,
    /// Deals in the route's pipeline, by their main contact.
    deals_by_contact: BTreeMap<u64, Vec<u64>>,
    deals_outside_pipeline: Vec<u64>,
    notes_by_deal: BTreeMap<u64, usize>,
}

impl CrmAudit {
    pub fn of(emulator: &Emulator) -> Self {
        let mut contacts_by_phone = BTreeMap::<String, Vec<u64>>::new();
        for contact in emulator.contacts() {
            for phone in contact.phones {
                contacts_by_phone.entry(phone).or_default().push(contact.id);
            }
        }
        let mut deals_by_contact = BTreeMap::<u64, Vec<u64>>::new();
        let mut deals_outside_pipeline = Vec::new();
        for deal in emulator.leads() {
            match deal.contact_ids.first() {
                Some(contact) if deal.pipeline == PIPELINE => {
                    deals_by_contact.entry(*contact).or_default().push(deal.id)
                }
                _ => deals_outside_pipeline.push(deal.id),
            }
        }
        let mut notes_by_deal = BTreeMap::<u64, usize>::new();
        for note in emulator.notes().into_iter().filter(|note| note.entity_type == "leads") {
            *notes_by_deal.entry(note.entity_id).or_default() += 1;
        }
        Self { contacts_by_phone, deals_by_contact, deals_outside_pipeline, notes_by_deal }
    }

    /// Contacts beyond the first for one phone.
    pub fn duplicate_contacts(&self) -> usize {
        self.contacts_by_phone.values().map(|ids| ids.len() - 1).sum()
    }

    /// Deals beyond the first for one contact, plus deals that belong to no contact or pipeline.
    pub fn duplicate_deals(&self) -> usize {
        let extra: usize = self.deals_by_contact.values().map(|ids| ids.len() - 1).sum();
        extra + self.deals_outside_pipeline.len()
    }

    pub fn duplicate_notes(&self) -> usize {
        self.notes_by_deal.values().map(|count| count - 1).sum()
    }

    /// Every phone has exactly one contact, every contact exactly one deal with exactly one note, and
    /// the account holds nothing else.
    pub fn assert_one_client_per_phone(&self, phones: &BTreeSet<String>) {
        let held: BTreeSet<&String> = self.contacts_by_phone.keys().collect();
        assert_eq!(held, phones.iter().collect(), "contacts by phone differ from the phones posted");
        for (phone, contacts) in &self.contacts_by_phone {
            assert_eq!(contacts.len(), 1, "{phone} has contacts {contacts:?}");
            let deals = self.deals_by_contact.get(&contacts[0]).cloned().unwrap_or_default();
            assert_eq!(deals.len(), 1, "{phone} (contact {}) has deals {deals:?} in {PIPELINE}", contacts[0]);
            assert_eq!(self.notes_by_deal.get(&deals[0]), Some(&1), "notes on deal {} of {phone}", deals[0]);
        }
        assert!(self.deals_outside_pipeline.is_empty(), "stray deals {:?}", self.deals_outside_pipeline);
        assert_eq!(self.deals_by_contact.len(), phones.len(), "deals whose contact has no posted phone");
    }

    /// For each phone exactly one lead is approved as a new client, naming that phone's contact and
    /// deal; every other lead of the phone is rejected and names the same contact.
    pub fn assert_one_approval_per_phone<'a>(&self, leads: impl IntoIterator<Item = &'a Value>) {
        let mut by_phone = BTreeMap::<&str, Vec<&Value>>::new();
        for lead in leads {
            by_phone.entry(lead["phone"].as_str().unwrap()).or_default().push(lead);
        }
        for (phone, leads) in by_phone {
            let contact = self.contacts_by_phone[phone][0];
            let deal = self.deals_by_contact[&contact][0];
            let (approved, others): (Vec<&Value>, Vec<&Value>) =
                leads.into_iter().partition(|lead| lead["status"] == "approved");
            assert_eq!(approved.len(), 1, "{phone}: approved leads {:?}", ids(&approved));
            let outcome = &approved[0]["outcome"];
            assert_eq!(outcome["decision"], "new_client", "{phone}: {outcome}");
            assert_eq!((outcome["contact_id"].as_u64(), outcome["deal_id"].as_u64()), (Some(contact), Some(deal)));
            for lead in others {
                assert_eq!(lead["status"], "rejected", "{phone}: lead {}", lead["id"]);
                assert_eq!(lead["outcome"]["contact_id"].as_u64(), Some(contact), "{phone}: lead {}", lead["id"]);
            }
        }
    }
}

/// The callbacks a receiver got; those it answered 2xx, by the lead id in their body.
pub struct CallbackAudit<'a> {
    pub total: usize,
    by_id: BTreeMap<i64, Vec<&'a ReceivedCallback>>,
}

impl<'a> CallbackAudit<'a> {
    pub fn of(received: &'a [ReceivedCallback]) -> Self {
        let mut by_id = BTreeMap::<i64, Vec<&ReceivedCallback>>::new();
        for callback in received.iter().filter(|callback| callback.answered < 300) {
            let body: Value = serde_json::from_slice(&callback.body).unwrap();
            by_id.entry(body["id"].as_i64().unwrap()).or_default().push(callback);
        }
        Self { total: received.len(), by_id }
    }

    /// Deliveries beyond the first for one lead.
    pub fn duplicates(&self) -> usize {
        self.by_id.values().map(|callbacks| callbacks.len() - 1).sum()
    }

    /// Every lead was called back, and every repeat of its callback is the same message: the same
    /// `webhook-id` and byte for byte the same body, which states the lead's committed outcome.
    pub fn assert_one_outcome_each(&self, leads: &BTreeMap<i64, Value>) {
        let unknown: Vec<&i64> = self.by_id.keys().filter(|id| !leads.contains_key(id)).collect();
        assert!(unknown.is_empty(), "callbacks for leads never acknowledged: {unknown:?}");
        for (id, lead) in leads {
            let callbacks = self.by_id.get(id).map(Vec::as_slice).unwrap_or_default();
            assert!(!callbacks.is_empty(), "lead {id} got no callback");
            let first = callbacks[0];
            for repeat in &callbacks[1..] {
                assert_eq!(repeat.body, first.body, "lead {id} was called back with two different bodies");
                assert_eq!(repeat.headers["webhook-id"], first.headers["webhook-id"], "lead {id}: two webhook-ids");
            }
            let body: Value = serde_json::from_slice(&first.body).unwrap();
            assert_eq!(body["status"], lead["status"], "lead {id}: the callback contradicts the outcome");
        }
    }
}

/// The waits set by a lead's `retry_scheduled` events, from each event's time to its `retry_at`: those
/// after counted failures (5xx, timeouts), or those that did not count (429s, blocks).
pub fn retry_delays(lead: &Value, counted: bool) -> Vec<Duration> {
    let time = |value: &Value| DateTime::<FixedOffset>::parse_from_rfc3339(value.as_str().unwrap()).unwrap();
    lead["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["kind"] == "retry_scheduled" && event["detail"]["counted"] == counted)
        .map(|event| (time(&event["detail"]["retry_at"]) - time(&event["at"])).to_std().unwrap())
        .collect()
}

fn ids(leads: &[&Value]) -> Vec<i64> {
    leads.iter().filter_map(|lead| lead["id"].as_i64()).collect()
}
