//! Assemble: one call's `LegEvent`s, repeats and disorder included, folded into one `Call` once the call is over.
//!
//! The function is pure: the handler stores every event and calls it again after each one (and
//! on a timer, for Telphin's quiet period); the same events always give the same answer.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::outcome::{leg_talk, summary_talk};
use crate::domain::{Call, CallResult, LegEvent, LegEventKind, LegLocation, Phone, PhoneRegion, Provider};

/// What the events of one call amount to so far.
#[derive(Debug, Clone, PartialEq)]
pub enum Assembly {
    /// The call may still be going on; ask again after more events or later.
    Incomplete,
    Complete(Box<Call>),
    /// The call is over but is none of a CRM's business.
    Ignored(IgnoredBecause),
}

/// Why a finished call is not logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IgnoredBecause {
    /// Between two of our extensions.
    Internal,
    /// No extension the caller cares about rang, answered or dialled.
    NoExtensionOfInterest,
    /// No event named the client.
    NoExternalNumber,
    /// The client's number, as sent, is not a phone number (`anonymous`, a short code).
    UnusableNumber(String),
    /// No event said whether the call was incoming or outgoing.
    UnknownDirection,
}

/// Folds the events of one call (one `call_id`, in any order, repeats included) into a `Call`
/// once the provider's signals say it is over: Zadarma's `NOTIFY_END`/`NOTIFY_OUT_END` and
/// Mango's summary. Telphin sends no summary: its call is over when every known leg hung up and
/// either an IVR/queue hangup carrying `Bridged` arrived or nothing arrived for `finish_after`
/// (the newest event's `at` against `now`); a `Bridged` hangup followed by `finish_after` of
/// quiet also ends a call whose other hangup was lost. `extensions_of_interest` says which
/// employee extensions a CRM maps to users.
pub fn assemble(
    provider: Provider,
    events: &[LegEvent],
    region: PhoneRegion,
    now: DateTime<Utc>,
    finish_after: Duration,
    extensions_of_interest: impl Fn(&str) -> bool,
) -> Assembly {
    let events = ordered(events);
    if events.is_empty() || !is_over(provider, &events, now, finish_after) {
        return Assembly::Incomplete;
    }
    match build(provider, &events, region, &extensions_of_interest) {
        Ok(call) => Assembly::Complete(Box::new(call)),
        Err(because) => Assembly::Ignored(because),
    }
}

/// Sorted by time, then Mango's `seq`, then the natural order of a leg's life, then by leg, so
/// that arrival order never matters; a repeat (the same event, maybe stamped with a later
/// receive time) is kept once, at its first time.
pub(super) fn ordered(events: &[LegEvent]) -> Vec<LegEvent> {
    let mut sorted = events.to_vec();
    sorted.sort_by(|one, other| order_key(one).cmp(&order_key(other)));
    let mut kept: Vec<LegEvent> = Vec::with_capacity(sorted.len());
    for event in sorted {
        if !kept.iter().any(|seen| LegEvent { at: event.at, ..seen.clone() } == event) {
            kept.push(event);
        }
    }
    kept
}

type OrderKey<'a> = (DateTime<Utc>, u64, u8, Option<&'a str>, Option<&'a str>, Option<&'a str>, Option<&'a str>);

fn order_key(event: &LegEvent) -> OrderKey<'_> {
    (
        event.at,
        event.seq.unwrap_or(u64::MAX),
        stage(&event.kind),
        event.leg_id.as_deref(),
        event.extension.as_deref(),
        event.external_number.as_deref(),
        event.recording.as_deref(),
    )
}

fn stage(kind: &LegEventKind) -> u8 {
    match kind {
        LegEventKind::Ringing => 0,
        LegEventKind::Answered => 1,
        LegEventKind::HungUp { .. } => 2,
        LegEventKind::Summary { .. } => 3,
        LegEventKind::Recording => 4,
    }
}

/// Whether nothing arrived for `finish_after` before `now`.
fn quiet(events: &[LegEvent], now: DateTime<Utc>, finish_after: Duration) -> bool {
    let newest = events.iter().map(|event| event.at).max().unwrap_or(now);
    now - newest >= TimeDelta::from_std(finish_after).unwrap_or(TimeDelta::MAX)
}

fn is_over(provider: Provider, events: &[LegEvent], now: DateTime<Utc>, finish_after: Duration) -> bool {
    match provider {
        Provider::Zadarma | Provider::Mango => {
            events.iter().any(|event| matches!(event.kind, LegEventKind::Summary { .. }))
        }
        Provider::Telphin => {
            let closed = |key: Option<&str>| {
                events.iter().any(|event| event.leg_key() == key && matches!(event.kind, LegEventKind::HungUp { .. }))
            };
            let all_closed = events.iter().all(|event| closed(event.leg_key()));
            let router_done = events.iter().any(|event| event.bridged().is_some());
            let quiet = quiet(events, now, finish_after);
            // A leg still open may be a conversation in progress, which sends nothing for its
            // whole length; only the router's verdict may close a call with a hangup missing.
            (all_closed && (router_done || quiet)) || (router_done && quiet)
        }
    }
}

/// The events of the people in the call: not IVR or queue legs. Telphin names those only by
/// the `Bridged` flag on their hangup, so an extension that sent one is a router throughout.
pub(super) fn employee_events(events: &[LegEvent]) -> Vec<&LegEvent> {
    let routers: Vec<(Option<&str>, Option<&str>)> = events
        .iter()
        .filter(|event| {
            event.bridged().is_some() || matches!(event.location, Some(LegLocation::Ivr | LegLocation::Queue))
        })
        .map(|event| (event.extension.as_deref(), event.leg_id.as_deref()))
        .collect();
    let is_router = |event: &LegEvent| match event.extension.as_deref() {
        Some(extension) => routers.iter().any(|(router, _)| *router == Some(extension)),
        None => event.leg_id.is_some() && routers.iter().any(|(_, leg)| *leg == event.leg_id.as_deref()),
    };
    events
        .iter()
        .filter(|event| !matches!(event.location, Some(LegLocation::Ivr | LegLocation::Queue)) && !is_router(event))
        .collect()
}

fn build(
    provider: Provider,
    events: &[LegEvent],
    region: PhoneRegion,
    extensions_of_interest: &impl Fn(&str) -> bool,
) -> Result<Call, IgnoredBecause> {
    let summary = events.iter().rev().find(|event| matches!(event.kind, LegEventKind::Summary { .. }));
    if summary.is_some_and(|summary| summary.internal) {
        return Err(IgnoredBecause::Internal);
    }
    let employees = employee_events(events);
    let mut extensions: Vec<String> = Vec::new();
    for extension in employees.iter().filter_map(|event| event.extension.as_ref()) {
        if !extensions.contains(extension) {
            extensions.push(extension.clone());
        }
    }
    let client = client(summary, events, region)?;
    if !extensions.iter().any(|extension| extensions_of_interest(extension)) {
        return Err(IgnoredBecause::NoExtensionOfInterest);
    }
    let direction = summary
        .and_then(|summary| summary.direction)
        .or_else(|| events.iter().find_map(|event| event.direction))
        .ok_or(IgnoredBecause::UnknownDirection)?;
    let talk = match summary.map(|summary| &summary.kind) {
        Some(LegEventKind::Summary { result, talk_seconds, .. }) => {
            summary_talk(*result, *talk_seconds, &employees, summary)
        }
        _ => leg_talk(&employees, events),
    };
    let started_at = events
        .iter()
        .filter_map(|event| match event.kind {
            LegEventKind::Summary { started_at, .. } => started_at,
            _ => None,
        })
        .chain(events.first().map(|event| event.at))
        .min()
        .expect("a complete call has events");
    let ended_at = summary
        .map(|summary| summary.at)
        .or_else(|| events.iter().filter(|event| event.kind != LegEventKind::Recording).map(|event| event.at).max())
        .unwrap_or(started_at)
        .max(started_at);
    let waited_until = match talk.answered_at {
        Some(answered_at) => answered_at.clamp(started_at, ended_at),
        None if talk.result == CallResult::Answered => started_at,
        None => ended_at,
    };
    let recording =
        talk.legs.iter().copied().chain(summary).chain(events.iter()).find_map(|event| event.recording.clone());
    let our_number = summary
        .into_iter()
        .chain(events.iter())
        .filter_map(|event| event.our_number.as_deref())
        .find_map(|number| Phone::parse(dialable(number), region).ok());
    Ok(Call {
        provider,
        call_id: events[0].call_id.clone(),
        direction,
        client,
        our_number,
        answered_by: talk.answered_by,
        extensions,
        result: talk.result,
        talk_seconds: talk.seconds,
        wait_seconds: seconds_between(started_at, waited_until),
        recording,
        started_at,
        ended_at,
    })
}

/// The client: the summary's party first, then the first event that names one. Internal legs
/// (a consultation during a transfer) never do.
fn client(summary: Option<&LegEvent>, events: &[LegEvent], region: PhoneRegion) -> Result<Phone, IgnoredBecause> {
    let mut candidates = summary
        .iter()
        .copied()
        .chain(events.iter())
        .filter(|event| !event.internal)
        .filter_map(|event| event.external_number.as_deref())
        .peekable();
    let Some(first) = candidates.peek().copied() else {
        return Err(if events.iter().any(|event| event.internal) {
            IgnoredBecause::Internal
        } else {
            IgnoredBecause::NoExternalNumber
        });
    };
    candidates
        .find_map(|number| Phone::parse(dialable(number), region).ok())
        .ok_or_else(|| IgnoredBecause::UnusableNumber(first.to_owned()))
}

/// The number inside a SIP or tel URI (`sip:+79161234567@host`); plain numbers stay.
pub(super) fn dialable(number: &str) -> &str {
    let number = number.trim();
    let number = number.strip_prefix("sip:").or_else(|| number.strip_prefix("tel:")).unwrap_or(number);
    number.split('@').next().unwrap_or(number)
}

fn seconds_between(from: DateTime<Utc>, to: DateTime<Utc>) -> u32 {
    u32::try_from((to - from).num_seconds().max(0)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_and_tel_uris_give_up_their_number() {
        assert_eq!(dialable("sip:+79161234567@vpbx.mangosip.ru"), "+79161234567");
        assert_eq!(dialable("tel:89161234567"), "89161234567");
        assert_eq!(dialable(" 89161234567 "), "89161234567");
    }
}
