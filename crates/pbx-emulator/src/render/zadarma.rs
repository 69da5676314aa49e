//! Zadarma: NOTIFY_* form POSTs for the whole call (no per-leg hangups), each signed in the `Signature` header.

use std::time::SystemTime;

use super::{PbxRequest, RECORD_NOTICE_DELAY, RecordingRef, RenderedCall, Role, random_hex, unix_seconds};
use crate::account::{ProviderKind, ZadarmaAccount};
use crate::script::{CallScript, Direction, Outcome};
use crate::sign;
use crate::timeline::{Flow, LegKind, StepKind, Timeline};

/// The fields every event of one call shares.
struct Call<'a> {
    account: &'a ZadarmaAccount,
    pbx_call_id: String,
    call_start: String,
}

impl Call<'_> {
    fn request(&self, event: &str, at: SystemTime, role: Role) -> PbxRequest {
        let mut request = PbxRequest::new(event, at, role);
        request.push("event", event);
        request
    }

    /// Signs with the documented concatenation; without an API key and secret Zadarma sends no header.
    fn sign(&self, request: &mut PbxRequest, parts: &[&str]) {
        if let Some(api) = &self.account.api {
            let text: String = parts.iter().map(|name| request.field(name).unwrap_or_default()).collect();
            request.headers.push(("Signature".to_owned(), sign::zadarma(&api.secret, &text)));
        }
    }
}

pub(super) fn render(script: &CallScript, timeline: &Timeline, account: &ZadarmaAccount) -> RenderedCall {
    let incoming = script.direction == Direction::Incoming;
    let call = Call {
        account,
        pbx_call_id: format!("{}_{}", if incoming { "in" } else { "out" }, random_hex(32, false)),
        call_start: account.local_time(timeline.start),
    };
    let ended_at = timeline.at(timeline.steps.last().map_or(0, |step| step.at_ms));
    let first_answer = timeline.steps.iter().find(|step| step.kind == StepKind::Answer).map(|step| step.leg);
    let end_role = first_answer.map_or(Role::Other, Role::Hangup);
    let recording = (script.recorded && script.is_answered())
        .then(|| format!("{}.{}", unix_seconds(timeline.start), rand::random_range(1_000..100_000)));
    let mut requests = if incoming {
        let mut requests = vec![notify_start(&call, script, timeline.start)];
        requests.extend(ringing_and_answers(&call, script, timeline));
        requests.push(notify_end(&call, script, timeline, ended_at, end_role, recording.as_deref()));
        requests
    } else {
        vec![
            notify_out_start(&call, script, timeline.start),
            notify_out_end(&call, script, timeline, ended_at, end_role, recording.as_deref()),
        ]
    };
    let mut recordings = Vec::new();
    if let Some(id) = recording {
        let mut request = call.request("NOTIFY_RECORD", ended_at + RECORD_NOTICE_DELAY, Role::Other);
        request.push("call_id_with_rec", &id);
        request.push("pbx_call_id", &call.pbx_call_id);
        call.sign(&mut request, &["pbx_call_id", "call_id_with_rec"]);
        requests.push(request);
        recordings.push(RecordingRef { id, seconds: timeline.summary.talk_seconds });
    }
    RenderedCall {
        provider: ProviderKind::Zadarma,
        script: String::new(),
        call_id: call.pbx_call_id,
        requests,
        recordings,
    }
}

fn notify_start(call: &Call<'_>, script: &CallScript, at: SystemTime) -> PbxRequest {
    let mut request = call.request("NOTIFY_START", at, Role::Other);
    request.push("call_start", &call.call_start);
    request.push("pbx_call_id", &call.pbx_call_id);
    request.push("caller_id", &script.client);
    request.push("called_did", &script.did);
    call.sign(&mut request, &["caller_id", "called_did", "call_start"]);
    request
}

/// NOTIFY_INTERNAL when an extension starts ringing, NOTIFY_ANSWER when one picks up; the
/// IVR, queue and transfers to external numbers send nothing of their own.
fn ringing_and_answers(call: &Call<'_>, script: &CallScript, timeline: &Timeline) -> Vec<PbxRequest> {
    let mut requests = Vec::new();
    for step in &timeline.steps {
        let leg = &timeline.legs[step.leg];
        if leg.kind != LegKind::Extension || leg.flow != Flow::In {
            continue;
        }
        let at = timeline.at(step.at_ms);
        match step.kind {
            StepKind::Ring => {
                let mut request = call.request("NOTIFY_INTERNAL", at, Role::Other);
                request.push("call_start", &call.call_start);
                request.push("pbx_call_id", &call.pbx_call_id);
                request.push("caller_id", &script.client);
                request.push("called_did", &script.did);
                request.push("internal", &leg.number);
                call.sign(&mut request, &["caller_id", "called_did", "call_start"]);
                requests.push(request);
            }
            StepKind::Answer => {
                let mut request = call.request("NOTIFY_ANSWER", at, Role::Answer(step.leg));
                request.push("caller_id", &script.client);
                request.push("destination", &leg.number);
                request.push("call_start", &call.call_start);
                request.push("pbx_call_id", &call.pbx_call_id);
                request.push("internal", &leg.number);
                call.sign(&mut request, &["caller_id", "destination", "call_start"]);
                requests.push(request);
            }
            StepKind::Hangup(_) => {}
        }
    }
    requests
}

fn notify_end(
    call: &Call<'_>,
    script: &CallScript,
    timeline: &Timeline,
    at: SystemTime,
    role: Role,
    recording: Option<&str>,
) -> PbxRequest {
    let mut request = call.request("NOTIFY_END", at, role);
    request.push("call_start", &call.call_start);
    request.push("pbx_call_id", &call.pbx_call_id);
    request.push("caller_id", &script.client);
    request.push("called_did", &script.did);
    let internal = timeline.summary.extension.as_deref().unwrap_or_default();
    push_result(&mut request, timeline, internal, recording);
    call.sign(&mut request, &["caller_id", "called_did", "call_start"]);
    request
}

fn notify_out_start(call: &Call<'_>, script: &CallScript, at: SystemTime) -> PbxRequest {
    let mut request = call.request("NOTIFY_OUT_START", at, Role::Other);
    request.push("call_start", &call.call_start);
    request.push("pbx_call_id", &call.pbx_call_id);
    request.push("internal", script.employee.as_deref().unwrap_or_default());
    request.push("destination", destination(script));
    call.sign(&mut request, &["internal", "destination", "call_start"]);
    request
}

fn notify_out_end(
    call: &Call<'_>,
    script: &CallScript,
    timeline: &Timeline,
    at: SystemTime,
    role: Role,
    recording: Option<&str>,
) -> PbxRequest {
    let mut request = call.request("NOTIFY_OUT_END", at, role);
    request.push("call_start", &call.call_start);
    request.push("pbx_call_id", &call.pbx_call_id);
    let caller_id = match script.direction {
        Direction::Internal => script.employee.as_deref().unwrap_or_default(),
        _ => script.did.as_str(),
    };
    request.push("caller_id", caller_id);
    request.push("destination", destination(script));
    push_result(&mut request, timeline, script.employee.as_deref().unwrap_or_default(), recording);
    call.sign(&mut request, &["internal", "destination", "call_start"]);
    request
}

fn destination(script: &CallScript) -> &str {
    match script.direction {
        Direction::Internal => script.ringing.first().map_or("", String::as_str),
        _ => &script.client,
    }
}

/// `internal, duration, disposition, status_code, is_recorded, call_id_with_rec`.
fn push_result(request: &mut PbxRequest, timeline: &Timeline, internal: &str, recording: Option<&str>) {
    let summary = &timeline.summary;
    request.push("internal", internal);
    request.push("duration", summary.talk_seconds.to_string());
    // `status_code` is the Q.931 cause: 16 normal clearing, 17 user busy, 19 no answer.
    let (disposition, status_code) = match summary.outcome {
        Outcome::Answered { .. } => ("answered", "16"),
        Outcome::Busy => ("busy", "17"),
        Outcome::NoAnswer => ("no answer", "19"),
        Outcome::CallerHungUp => ("cancel", "16"),
    };
    request.push("disposition", disposition);
    request.push("status_code", status_code);
    request.push("is_recorded", if recording.is_some() { "1" } else { "0" });
    if let Some(id) = recording {
        request.push("call_id_with_rec", id);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn call_start_is_written_as_local_time_without_a_zone() {
        let account = ZadarmaAccount { api: None, utc_offset_minutes: 180 };
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_715_944_401);
        assert_eq!(account.local_time(at), "2024-05-17 14:13:21");
    }
}
