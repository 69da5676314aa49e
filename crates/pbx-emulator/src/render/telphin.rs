//! Telphin: one unsigned form POST per leg event (dial-in, dial-out, answer, hangup), and no summary event.

use std::time::SystemTime;

use super::{PbxRequest, RecordingRef, RenderedCall, Role, random_hex};
use crate::account::{ProviderKind, TelphinAccount};
use crate::script::{CallScript, Direction};
use crate::timeline::{Flow, Leg, LegEnd, LegKind, Step, StepKind, Timeline};

impl TelphinAccount {
    /// `prefix*ext@domain`, as `CallerExtension` and `CalledExtension` carry it.
    pub fn extension_name(&self, extension: &str) -> String {
        format!("{}*{extension}@{}", self.extension_prefix, self.domain)
    }

    /// The numeric id of an extension in API paths and in `RecID`; the emulator derives it from the number.
    pub fn extension_id(&self, extension: &str) -> u64 {
        469_000 + extension.parse::<u64>().unwrap_or_default()
    }
}

pub(super) fn render(script: &CallScript, timeline: &Timeline, account: &TelphinAccount) -> RenderedCall {
    let call_id = random_hex(32, true);
    let sub_call_ids: Vec<String> = timeline.legs.iter().map(|_| random_hex(32, true)).collect();
    let call_api_ids: Vec<String> = timeline.legs.iter().map(|_| random_hex(32, false)).collect();
    let mut recordings = Vec::new();
    let mut requests = Vec::with_capacity(timeline.steps.len());
    for step in &timeline.steps {
        let leg = &timeline.legs[step.leg];
        let (event_type, role) = match step.kind {
            StepKind::Ring if leg.flow == Flow::In => ("dial-in", Role::Other),
            StepKind::Ring => ("dial-out", Role::Other),
            StepKind::Answer => ("answer", Role::Answer(step.leg)),
            StepKind::Hangup(_) => ("hangup", Role::Hangup(step.leg)),
        };
        let at = timeline.at(step.at_ms);
        let mut request = PbxRequest::new(event_type, at, role);
        request.push("EventType", event_type);
        request.push("CallID", &call_id);
        request.push("SubCallID", &sub_call_ids[step.leg]);
        request.push("CallAPIID", &call_api_ids[step.leg]);
        push_parties(&mut request, script, timeline, step, account);
        request.push("CallStatus", status(step.kind));
        request.push("EventTime", micros(at).to_string());
        if let StepKind::Hangup(end) = step.kind {
            push_hangup(&mut request, end, script, timeline, step.leg, account, &mut recordings);
        }
        requests.push(request);
    }
    RenderedCall { provider: ProviderKind::Telphin, script: String::new(), call_id, requests, recordings }
}

/// The extension a leg belongs to: a transfer to an external number is an outgoing leg of the
/// extension that transferred.
fn owner<'a>(timeline: &'a Timeline, leg: &'a Leg) -> &'a str {
    match (leg.kind, leg.transferred_from) {
        (LegKind::External, Some(from)) => &timeline.legs[from].number,
        _ => &leg.number,
    }
}

/// The party on the other side of the PBX: the client, or on an internal call the caller.
fn far_party(script: &CallScript) -> &str {
    match script.direction {
        Direction::Internal => script.employee.as_deref().unwrap_or_default(),
        Direction::Incoming | Direction::Outgoing => &script.client,
    }
}

fn push_parties(
    request: &mut PbxRequest,
    script: &CallScript,
    timeline: &Timeline,
    step: &Step,
    account: &TelphinAccount,
) {
    let leg = &timeline.legs[step.leg];
    let transferred_by = leg.transferred_from.map(|from| timeline.legs[from].number.as_str());
    match leg.flow {
        Flow::In => {
            request.push("CallFlow", "IN");
            let (number, name) = match (transferred_by, script.direction) {
                (Some(by), _) => (by.to_owned(), by.to_owned()),
                (None, Direction::Incoming) => {
                    (script.client.clone(), script.client_name.clone().unwrap_or_else(|| script.client.clone()))
                }
                (None, _) => {
                    let caller = far_party(script).to_owned();
                    (caller.clone(), caller)
                }
            };
            request.push("CallerIDNum", number);
            request.push("CallerIDName", name);
            if script.direction == Direction::Incoming {
                request.push("CalledDID", &script.did);
            }
            request.push("CalledNumber", &leg.number);
            request.push("CalledExtension", account.extension_name(&leg.number));
            request.push("CalledExtensionID", account.extension_id(&leg.number).to_string());
            if transferred_by.is_some() && step.kind == StepKind::Ring {
                request.push("RemoteNumber", far_party(script));
            }
        }
        Flow::Out => {
            request.push("CallFlow", "OUT");
            let caller = owner(timeline, leg);
            request.push("CallerIDNum", caller);
            request.push("CallerIDName", caller);
            let called = match (leg.kind, script.direction) {
                (LegKind::External, _) => leg.number.as_str(),
                (_, Direction::Internal) => script.ringing.first().map_or("", String::as_str),
                _ => script.client.as_str(),
            };
            request.push("CalledNumber", called);
            request.push("CallerExtension", account.extension_name(caller));
            request.push("CallerExtensionID", account.extension_id(caller).to_string());
            if leg.kind == LegKind::External {
                request.push("Transfered", "yes");
            }
        }
    }
}

fn status(kind: StepKind) -> &'static str {
    match kind {
        StepKind::Ring => "CALLING",
        StepKind::Answer => "ANSWER",
        StepKind::Hangup(end) => match end {
            // An IVR or queue picks the call up itself to play to the caller; `Bridged` says
            // whether a person answered.
            LegEnd::Talked(_) | LegEnd::Transferred(_) | LegEnd::FrontDone { .. } => "ANSWER",
            LegEnd::Busy => "BUSY",
            LegEnd::NoAnswer => "NOANSWER",
            LegEnd::Cancelled | LegEnd::AnsweredElsewhere => "CANCEL",
        },
    }
}

fn push_hangup(
    request: &mut PbxRequest,
    end: LegEnd,
    script: &CallScript,
    timeline: &Timeline,
    leg_index: usize,
    account: &TelphinAccount,
    recordings: &mut Vec<RecordingRef>,
) {
    let duration = match end {
        LegEnd::Talked(seconds) | LegEnd::Transferred(seconds) | LegEnd::FrontDone { seconds, .. } => seconds,
        _ => 0,
    };
    request.push("Duration", duration.to_string());
    let talked = matches!(end, LegEnd::Talked(_) | LegEnd::Transferred(_));
    if talked && script.recorded {
        let owner = owner(timeline, &timeline.legs[leg_index]);
        let id = format!("{}-{}", account.extension_id(owner), random_hex(32, true));
        request.push("RecID", &id);
        recordings.push(RecordingRef { id, seconds: duration });
    }
    if let LegEnd::FrontDone { bridged, .. } = end {
        request.push("Bridged", if bridged { "yes" } else { "no" });
    }
}

fn micros(at: SystemTime) -> u128 {
    at.duration_since(SystemTime::UNIX_EPOCH).map(|elapsed| elapsed.as_micros()).unwrap_or_default()
}
