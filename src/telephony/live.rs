//! A call still going on, as an operator's card shows it: who calls, on which of our numbers, which extensions ring, who talks.

use chrono::{DateTime, Utc};

use super::assemble::{dialable, employee_events, ordered};
use crate::domain::{Direction, LegEvent, LegEventKind, Phone, PhoneRegion};

/// One call between its first event and its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveCall {
    pub call_id: String,
    pub direction: Option<Direction>,
    /// The client's number, once an event named one that is a phone number.
    pub client: Option<Phone>,
    pub our_number: Option<Phone>,
    /// Extensions ringing now, in the order they started.
    pub ringing: Vec<String>,
    /// Extensions in conversation now.
    pub talking: Vec<String>,
    pub started_at: DateTime<Utc>,
}

/// The call as it stands after `events` (one call's, in any order, repeats included); `None`
/// once it is over (a summary, or every leg hung up) or when it is between colleagues only.
pub fn live_call(events: &[LegEvent], region: PhoneRegion) -> Option<LiveCall> {
    let events = ordered(events);
    let first = events.first()?;
    if events.iter().any(|event| matches!(event.kind, LegEventKind::Summary { .. })) {
        return None;
    }
    if events.iter().all(|event| event.internal) {
        return None;
    }
    let leg_is_open = |key: Option<&str>| {
        !events.iter().any(|event| event.leg_key() == key && matches!(event.kind, LegEventKind::HungUp { .. }))
    };
    if !events.iter().any(|event| event.kind != LegEventKind::Recording && leg_is_open(event.leg_key())) {
        return None;
    }
    let (mut ringing, mut talking) = (Vec::new(), Vec::new());
    for event in employee_events(&events) {
        let Some(extension) = event.extension.as_ref() else { continue };
        if !leg_is_open(event.leg_key()) || ringing.contains(extension) && event.kind == LegEventKind::Ringing {
            continue;
        }
        match event.kind {
            LegEventKind::Ringing if !talking.contains(extension) => ringing.push(extension.clone()),
            LegEventKind::Answered => {
                // Phones ringing in parallel stop when one answers; Zadarma sends no hangup for them.
                ringing.clear();
                if !talking.contains(extension) {
                    talking.push(extension.clone());
                }
            }
            _ => {}
        }
    }
    let number = |text: &str| Phone::parse(dialable(text), region).ok();
    let external = events.iter().filter(|event| !event.internal);
    Some(LiveCall {
        call_id: first.call_id.clone(),
        direction: events.iter().find_map(|event| event.direction),
        client: external.clone().filter_map(|event| event.external_number.as_deref()).find_map(number),
        our_number: external.filter_map(|event| event.our_number.as_deref()).find_map(number),
        ringing,
        talking,
        started_at: first.at,
    })
}
