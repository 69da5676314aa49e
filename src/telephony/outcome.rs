//! How an assembled call ended: who talked and for how long, or why nobody did.

use std::cmp::Reverse;

use chrono::{DateTime, Utc};

use crate::domain::{CallResult, LegEvent, LegEventKind};

/// Who talked, for how long, and how the call ended.
pub(super) struct Talk<'a> {
    pub(super) result: CallResult,
    pub(super) seconds: u32,
    pub(super) answered_by: Option<String>,
    pub(super) answered_at: Option<DateTime<Utc>>,
    /// The hangups of the answered legs, where their recordings are.
    pub(super) legs: Vec<&'a LegEvent>,
}

/// Telphin's rule: a leg talked when it was answered and its hangup says `ANSWER`. Legs of one
/// call follow each other (a transfer hands the client on), so their durations add up.
pub(super) fn leg_talk<'a>(employees: &[&'a LegEvent], events: &[LegEvent]) -> Talk<'a> {
    let people: Vec<&'a LegEvent> = employees.iter().copied().filter(|event| !event.internal).collect();
    let answer_of = |hangup: &LegEvent| {
        people.iter().copied().find(|event| event.kind == LegEventKind::Answered && event.leg_key() == hangup.leg_key())
    };
    let mut talked: Vec<(&LegEvent, &'a LegEvent, u32)> = Vec::new();
    for hangup in people.iter().copied() {
        if let LegEventKind::HungUp { result: CallResult::Answered, duration_seconds, .. } = hangup.kind
            && let Some(answer) = answer_of(hangup)
        {
            talked.push((answer, hangup, duration_seconds));
        }
    }
    talked.sort_by_key(|(answer, _, _)| answer.at);
    // A router's `Bridged=yes` is the PBX saying someone talked, even if that leg's hangup was
    // lost or its events are not ours to see (an extension without a subscription); then the
    // first answer seen, if any, names who took the call.
    let bridged = events.iter().any(|event| event.bridged() == Some(true));
    let answer = match talked.first() {
        Some((answer, _, _)) => Some(*answer),
        None if bridged => people.iter().copied().find(|event| event.kind == LegEventKind::Answered),
        None => None,
    };
    let result = if answer.is_some() || bridged { CallResult::Answered } else { missed_result(&people, events) };
    Talk {
        result,
        seconds: talked.iter().map(|(_, _, seconds)| seconds).sum(),
        answered_by: answer.and_then(|answer| answer.extension.clone()),
        answered_at: answer.map(|answer| answer.at),
        legs: talked.iter().map(|(_, hangup, _)| *hangup).collect(),
    }
}

/// Zadarma and Mango state the outcome in their summary; the answering leg, when one was seen,
/// names who took the call, else the summary's extension does.
pub(super) fn summary_talk<'a>(
    result: CallResult,
    seconds: u32,
    employees: &[&'a LegEvent],
    summary: Option<&LegEvent>,
) -> Talk<'a> {
    if result != CallResult::Answered {
        return Talk { result, seconds: 0, answered_by: None, answered_at: None, legs: Vec::new() };
    }
    let answer = employees.iter().copied().find(|event| event.kind == LegEventKind::Answered && !event.internal);
    Talk {
        result,
        seconds,
        answered_by: answer
            .and_then(|event| event.extension.clone())
            .or_else(|| summary.and_then(|event| event.extension.clone())),
        answered_at: answer.map(|event| event.at),
        legs: Vec::new(),
    }
}

/// A missed call's outcome: the hangup closest to a conversation among the employees' legs
/// (one phone ringing out outweighs another being busy), else the router's; the latest on a tie.
fn missed_result(people: &[&LegEvent], events: &[LegEvent]) -> CallResult {
    closest_hangup(people.iter().copied()).or_else(|| closest_hangup(events.iter())).unwrap_or(CallResult::NoAnswer)
}

/// A hangup that says `ANSWER` without an answer before it counts as unanswered (Telphin's rule).
fn closest_hangup<'a>(events: impl Iterator<Item = &'a LegEvent>) -> Option<CallResult> {
    events
        .filter_map(|event| match event.kind {
            LegEventKind::HungUp { result: CallResult::Answered, .. } => Some(CallResult::NoAnswer),
            LegEventKind::HungUp { result, .. } => Some(result),
            _ => None,
        })
        .enumerate()
        .min_by_key(|(index, result)| (closeness(*result), Reverse(*index)))
        .map(|(_, result)| result)
}

fn closeness(result: CallResult) -> u8 {
    match result {
        CallResult::Answered => 0,
        CallResult::NoAnswer | CallResult::Cancelled => 1,
        CallResult::Busy => 2,
        CallResult::WrongNumber => 3,
        CallResult::Failed => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_phone_does_not_hide_one_that_rang_out() {
        assert!(closeness(CallResult::NoAnswer) < closeness(CallResult::Busy));
        assert!(closeness(CallResult::Busy) < closeness(CallResult::Failed));
    }
}
