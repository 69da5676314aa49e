//! A script unrolled into legs and timed leg steps (ring, answer, hangup), the common ground of the three renderers.

use std::time::SystemTime;

use crate::script::{CallScript, Direction, FrontKind, Outcome, Party, TransferTarget};

/// A busy extension says so at once; the caller hears it this long before the call is over.
const BUSY_MS: u64 = 1_000;
/// Steps that happen "at the same time" still reach a receiver one after another.
const TICK_MS: u64 = 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LegKind {
    Front(FrontKind),
    Extension,
    /// An external number reached by a transfer.
    External,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flow {
    In,
    Out,
}

/// One ringing party of the call.
#[derive(Clone, Debug)]
pub(crate) struct Leg {
    pub kind: LegKind,
    /// The extension, or the external number of an `External` leg.
    pub number: String,
    pub flow: Flow,
    /// The leg that handed the call to this one.
    pub transferred_from: Option<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LegEnd {
    Talked(u32),
    /// Talked this long, then handed the call on.
    Transferred(u32),
    Busy,
    NoAnswer,
    /// The caller gave up while this leg rang.
    Cancelled,
    /// Another leg ringing in parallel picked up.
    AnsweredElsewhere,
    /// The IVR or queue leg, closed when the whole call ends.
    FrontDone {
        bridged: bool,
        seconds: u32,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StepKind {
    Ring,
    Answer,
    Hangup(LegEnd),
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Step {
    pub at_ms: u64,
    pub leg: usize,
    pub kind: StepKind,
}

/// What the whole call came to, for the providers that report it in one event.
#[derive(Clone, Debug)]
pub(crate) struct Summary {
    /// When the phones started ringing: after the IVR or queue, if any.
    pub forwarded_at_ms: u64,
    pub answered_at_ms: Option<u64>,
    /// When the last phone hung up; an IVR or queue leg closes just after.
    pub ended_at_ms: u64,
    /// All talk, across a transfer.
    pub talk_seconds: u32,
    /// The extension that talked last, or the first that rang.
    pub extension: Option<String>,
    pub outcome: Outcome,
}

#[derive(Clone, Debug)]
pub(crate) struct Timeline {
    pub start: SystemTime,
    pub legs: Vec<Leg>,
    pub steps: Vec<Step>,
    pub summary: Summary,
}

impl Timeline {
    pub fn at(&self, at_ms: u64) -> SystemTime {
        self.start + std::time::Duration::from_millis(at_ms)
    }
}

struct Builder {
    legs: Vec<Leg>,
    steps: Vec<Step>,
}

impl Builder {
    fn leg(&mut self, kind: LegKind, number: &str, flow: Flow, transferred_from: Option<usize>) -> usize {
        self.legs.push(Leg { kind, number: number.to_owned(), flow, transferred_from });
        self.legs.len() - 1
    }

    fn step(&mut self, at_ms: u64, leg: usize, kind: StepKind) {
        self.steps.push(Step { at_ms, leg, kind });
    }
}

/// Unrolls a script that `CallScript::validate` accepted.
pub(crate) fn unroll(script: &CallScript, start: SystemTime) -> Timeline {
    let mut builder = Builder { legs: Vec::new(), steps: Vec::new() };
    let summary = match script.direction {
        Direction::Incoming => incoming(script, &mut builder),
        Direction::Outgoing => outgoing(script, &mut builder),
        Direction::Internal => internal(script, &mut builder),
    };
    let mut steps = builder.steps;
    steps.sort_by_key(|step| step.at_ms);
    Timeline { start, legs: builder.legs, steps, summary }
}

fn seconds(ms: u64) -> u32 {
    u32::try_from(ms / 1_000).unwrap_or(u32::MAX)
}

fn incoming(script: &CallScript, builder: &mut Builder) -> Summary {
    let front = script.front.as_ref().map(|front| {
        let leg = builder.leg(LegKind::Front(front.kind), &front.extension, Flow::In, None);
        builder.step(0, leg, StepKind::Ring);
        leg
    });
    let forwarded_at_ms = script.front.as_ref().map_or(0, |front| u64::from(front.seconds) * 1_000);
    let ringing = ring_all(script, builder, forwarded_at_ms);
    let summary = settle(script, builder, &ringing, forwarded_at_ms);
    if let Some(front) = front {
        let bridged = summary.answered_at_ms.is_some();
        let closed_at_ms = summary.ended_at_ms + TICK_MS;
        let end = LegEnd::FrontDone { bridged, seconds: seconds(closed_at_ms) };
        builder.step(closed_at_ms, front, StepKind::Hangup(end));
    }
    summary
}

fn outgoing(script: &CallScript, builder: &mut Builder) -> Summary {
    let employee = script.employee.clone().unwrap_or_default();
    let leg = builder.leg(LegKind::Extension, &employee, Flow::Out, None);
    builder.step(0, leg, StepKind::Ring);
    let mut summary = settle(script, builder, &[leg], 0);
    summary.extension = Some(employee);
    summary
}

fn internal(script: &CallScript, builder: &mut Builder) -> Summary {
    let caller = builder.leg(LegKind::Extension, script.employee.as_deref().unwrap_or_default(), Flow::Out, None);
    builder.step(0, caller, StepKind::Ring);
    let callee = ring_all(script, builder, TICK_MS);
    let summary = settle(script, builder, &callee, 0);
    // The caller's leg mirrors the callee's: it is answered and ends with it.
    let mirrored: Vec<Step> = builder.steps.iter().filter(|step| step.leg == callee[0]).copied().collect();
    for step in mirrored.into_iter().filter(|step| step.kind != StepKind::Ring) {
        let at_ms = match (step.kind, script.ended_by) {
            (StepKind::Hangup(_), Party::Callee) => step.at_ms + TICK_MS,
            (StepKind::Hangup(_), Party::Caller) => step.at_ms.saturating_sub(TICK_MS),
            _ => step.at_ms + TICK_MS,
        };
        builder.step(at_ms, caller, step.kind);
    }
    summary
}

fn ring_all(script: &CallScript, builder: &mut Builder, at_ms: u64) -> Vec<usize> {
    let legs: Vec<usize> =
        script.ringing.iter().map(|extension| builder.leg(LegKind::Extension, extension, Flow::In, None)).collect();
    for &leg in &legs {
        builder.step(at_ms, leg, StepKind::Ring);
    }
    legs
}

/// Rings `legs` from `rung_at_ms` to the script's outcome; returns when and how the call ended.
fn settle(script: &CallScript, builder: &mut Builder, legs: &[usize], rung_at_ms: u64) -> Summary {
    let first_extension = legs.first().map(|&leg| builder.legs[leg].number.clone());
    let ring_ms = u64::from(script.ring_seconds) * 1_000;
    let mut summary = Summary {
        forwarded_at_ms: rung_at_ms,
        answered_at_ms: None,
        ended_at_ms: rung_at_ms + ring_ms,
        talk_seconds: 0,
        extension: first_extension,
        outcome: script.outcome.clone(),
    };
    let end = match &script.outcome {
        Outcome::Answered { by, talk_seconds } => {
            let answering = by
                .as_ref()
                .and_then(|by| legs.iter().copied().find(|&leg| builder.legs[leg].number == *by))
                .unwrap_or(legs[0]);
            let answered_at_ms = rung_at_ms + ring_ms;
            builder.step(answered_at_ms, answering, StepKind::Answer);
            for &other in legs.iter().filter(|&&leg| leg != answering) {
                builder.step(answered_at_ms + TICK_MS, other, StepKind::Hangup(LegEnd::AnsweredElsewhere));
            }
            summary.answered_at_ms = Some(answered_at_ms);
            summary.extension = Some(builder.legs[answering].number.clone());
            talk(script, builder, answering, answered_at_ms, *talk_seconds, &mut summary);
            return summary;
        }
        Outcome::Busy => {
            summary.ended_at_ms = rung_at_ms + BUSY_MS;
            LegEnd::Busy
        }
        Outcome::NoAnswer => LegEnd::NoAnswer,
        Outcome::CallerHungUp => LegEnd::Cancelled,
    };
    for &leg in legs {
        builder.step(summary.ended_at_ms, leg, StepKind::Hangup(end));
    }
    summary
}

/// The answered part: talk, perhaps a transfer and more talk, then the hangups.
fn talk(
    script: &CallScript,
    builder: &mut Builder,
    leg: usize,
    from_ms: u64,
    talk_seconds: u32,
    summary: &mut Summary,
) {
    let handed_over_ms = from_ms + u64::from(talk_seconds) * 1_000;
    summary.talk_seconds = talk_seconds;
    let Some(transfer) = &script.transfer else {
        builder.step(handed_over_ms, leg, StepKind::Hangup(LegEnd::Talked(talk_seconds)));
        summary.ended_at_ms = handed_over_ms;
        return;
    };
    let next = match &transfer.to {
        TransferTarget::Extension(extension) => builder.leg(LegKind::Extension, extension, Flow::In, Some(leg)),
        TransferTarget::Number(number) => builder.leg(LegKind::External, number, Flow::Out, Some(leg)),
    };
    builder.step(handed_over_ms, next, StepKind::Ring);
    builder.step(handed_over_ms + TICK_MS, leg, StepKind::Hangup(LegEnd::Transferred(talk_seconds)));
    let answered_ms = handed_over_ms + u64::from(transfer.ring_seconds) * 1_000;
    builder.step(answered_ms, next, StepKind::Answer);
    let ended_ms = answered_ms + u64::from(transfer.talk_seconds) * 1_000;
    builder.step(ended_ms, next, StepKind::Hangup(LegEnd::Talked(transfer.talk_seconds)));
    summary.talk_seconds += transfer.talk_seconds;
    summary.ended_at_ms = ended_ms;
    if let TransferTarget::Extension(extension) = &transfer.to {
        summary.extension = Some(extension.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::Missed;

    fn kinds(timeline: &Timeline) -> Vec<(String, StepKind)> {
        timeline.steps.iter().map(|step| (timeline.legs[step.leg].number.clone(), step.kind)).collect()
    }

    #[test]
    fn an_incoming_call_through_an_ivr_closes_the_ivr_leg_last_and_bridged() {
        let script = CallScript::incoming_answered("79161234567", "74951234567", "101", 60)
            .via_ivr("099", 5)
            .parallel_ringing(&["102"]);
        let timeline = unroll(&script, SystemTime::UNIX_EPOCH);
        let end = LegEnd::FrontDone { bridged: true, seconds: 77 };
        assert_eq!(
            kinds(&timeline),
            [
                ("099".to_owned(), StepKind::Ring),
                ("101".to_owned(), StepKind::Ring),
                ("102".to_owned(), StepKind::Ring),
                ("101".to_owned(), StepKind::Answer),
                ("102".to_owned(), StepKind::Hangup(LegEnd::AnsweredElsewhere)),
                ("101".to_owned(), StepKind::Hangup(LegEnd::Talked(60))),
                ("099".to_owned(), StepKind::Hangup(end)),
            ]
        );
        assert_eq!(timeline.summary.answered_at_ms, Some(17_000));
    }

    #[test]
    fn a_transfer_rings_the_new_party_before_the_old_one_hangs_up() {
        let script =
            CallScript::incoming_answered("79161234567", "74951234567", "101", 20).transfer_to_extension("103", 40);
        let timeline = unroll(&script, SystemTime::UNIX_EPOCH);
        let order: Vec<_> = kinds(&timeline).into_iter().skip(2).collect();
        assert_eq!(order[0], ("103".to_owned(), StepKind::Ring));
        assert_eq!(order[1], ("101".to_owned(), StepKind::Hangup(LegEnd::Transferred(20))));
        assert_eq!(timeline.legs[1].transferred_from, Some(0));
        assert_eq!(timeline.summary.talk_seconds, 60);
        assert_eq!(timeline.summary.extension.as_deref(), Some("103"));
    }

    #[test]
    fn a_busy_outgoing_call_ends_a_second_after_it_started() {
        let script = CallScript::outgoing_unanswered("101", "79161234567", "74951234567", Missed::Busy);
        let timeline = unroll(&script, SystemTime::UNIX_EPOCH);
        assert_eq!(kinds(&timeline)[1], ("101".to_owned(), StepKind::Hangup(LegEnd::Busy)));
        assert_eq!(timeline.summary.ended_at_ms, 1_000);
    }
}
