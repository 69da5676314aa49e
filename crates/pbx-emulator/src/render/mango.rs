//! Mango Office: signed form POSTs with a `json` string: `events/call` per leg state, one `events/summary`, `events/record/added`.

use std::time::SystemTime;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use super::{PbxRequest, RECORD_NOTICE_DELAY, RecordingRef, RenderedCall, Role, unix_seconds};
use crate::account::{MangoAccount, ProviderKind};
use crate::script::{CallScript, Direction, FrontKind, Party};
use crate::sign;
use crate::timeline::{Flow, Leg, LegEnd, LegKind, StepKind, Timeline};

/// Disconnect reasons (facts §3.4): normal end, caller hung up, no answer in time, callee hung
/// up, busy, call taken by another operator, new operator assigned (transfer).
const NORMAL: u32 = 1100;
const CALLER_HUNG_UP: u32 = 1110;
const NO_ANSWER: u32 = 1111;
const CALLEE_HUNG_UP: u32 = 1120;
const BUSY: u32 = 1121;
const TAKEN_ELSEWHERE: u32 = 1182;
const TRANSFERRED: u32 = 1183;

struct Call<'a> {
    script: &'a CallScript,
    timeline: &'a Timeline,
    account: &'a MangoAccount,
    entry_id: String,
    call_ids: Vec<String>,
}

pub(super) fn render(script: &CallScript, timeline: &Timeline, account: &MangoAccount) -> RenderedCall {
    let call = Call {
        script,
        timeline,
        account,
        entry_id: mango_id(),
        call_ids: timeline.legs.iter().map(|_| mango_id()).collect(),
    };
    let mut seqs = vec![0_u32; timeline.legs.len()];
    let front = timeline.legs.iter().position(|leg| matches!(leg.kind, LegKind::Front(_)));
    let mut front_open = front.is_some();
    let mut requests = Vec::new();
    let mut last_reason = NORMAL;
    for step in &timeline.steps {
        let leg = &timeline.legs[step.leg];
        // Mango reports a call between two extensions as one leg, from the caller to the callee.
        if script.direction == Direction::Internal && leg.flow == Flow::Out {
            continue;
        }
        let at = timeline.at(step.at_ms);
        if let LegKind::Front(_) = leg.kind {
            if step.kind == StepKind::Ring {
                requests.push(call.leg_event(step.leg, &mut seqs, at, "Appeared", None, Role::Other));
            }
            continue;
        }
        // The IVR or queue leg ends when the call moves on to the phones.
        if let (Some(front), true) = (front, front_open) {
            requests.push(call.leg_event(front, &mut seqs, at, "Disconnected", Some(NORMAL), Role::Other));
            front_open = false;
        }
        let request = match step.kind {
            StepKind::Ring => call.leg_event(step.leg, &mut seqs, at, "Appeared", None, Role::Other),
            StepKind::Answer => call.leg_event(step.leg, &mut seqs, at, "Connected", None, Role::Answer(step.leg)),
            StepKind::Hangup(end) => {
                last_reason = reason(end, script.ended_by);
                call.leg_event(step.leg, &mut seqs, at, "Disconnected", Some(last_reason), Role::Hangup(step.leg))
            }
        };
        requests.push(request);
    }
    let ended_at = timeline.at(timeline.summary.ended_at_ms);
    requests.push(call.summary(ended_at, last_reason));
    let mut recordings = Vec::new();
    if script.recorded {
        for (leg, seconds) in talked_legs(script, timeline) {
            let id = mango_id();
            requests.push(call.record_added(&id, leg, ended_at + RECORD_NOTICE_DELAY));
            recordings.push(RecordingRef { id, seconds });
        }
    }
    RenderedCall { provider: ProviderKind::Mango, script: String::new(), call_id: call.entry_id, requests, recordings }
}

impl Call<'_> {
    fn signed(&self, path: &str, at: SystemTime, role: Role, body: &Value) -> PbxRequest {
        let json = body.to_string();
        let mut request = PbxRequest::new(path.trim_start_matches('/'), at, role);
        request.path = path.to_owned();
        request.push("vpbx_api_key", &self.account.api_key);
        request.push("sign", sign::mango(&self.account.api_key, &json, &self.account.api_salt));
        request.push("json", json);
        request
    }

    fn leg_event(
        &self,
        leg: usize,
        seqs: &mut [u32],
        at: SystemTime,
        state: &str,
        reason: Option<u32>,
        role: Role,
    ) -> PbxRequest {
        seqs[leg] += 1;
        let (from, to) = self.parties(leg);
        let location = match self.timeline.legs[leg].kind {
            LegKind::Front(FrontKind::Ivr) => "ivr",
            LegKind::Front(FrontKind::Queue) => "queue",
            LegKind::Extension | LegKind::External => "abonent",
        };
        let mut body = json!({
            "entry_id": self.entry_id,
            "call_id": self.call_ids[leg],
            "timestamp": unix_seconds(at),
            "seq": seqs[leg],
            "call_state": state,
            "location": location,
            "from": from,
            "to": to,
        });
        if let Some(reason) = reason {
            body["disconnect_reason"] = json!(reason);
        }
        self.signed("/events/call", at, role, &body)
    }

    fn sip(&self, extension: &str) -> String {
        format!("sip:{extension}@{}", self.account.sip_domain)
    }

    fn employee(&self, extension: &str) -> Value {
        json!({"extension": extension, "number": self.sip(extension)})
    }

    /// `from` and `to` of one leg.
    fn parties(&self, leg_index: usize) -> (Value, Value) {
        let script = self.script;
        let leg: &Leg = &self.timeline.legs[leg_index];
        let mut from = match script.direction {
            Direction::Incoming => json!({"number": script.client}),
            Direction::Outgoing | Direction::Internal => self.employee(script.employee.as_deref().unwrap_or_default()),
        };
        if let Some(previous) = leg.transferred_from {
            from = json!({"number": script.client, "taken_from_call_id": self.call_ids[previous]});
        }
        let mut to = match (leg.kind, leg.flow, script.direction) {
            (LegKind::Front(kind), _, _) => {
                let mut to = json!({"number": script.did});
                if kind == FrontKind::Queue {
                    to["acd_group"] = json!(leg.number);
                }
                to
            }
            (LegKind::Extension, Flow::In, _) => self.employee(&leg.number),
            (LegKind::External, _, _) => json!({"number": leg.number}),
            (LegKind::Extension, Flow::Out, _) => json!({"number": script.client}),
        };
        if script.direction == Direction::Incoming {
            to["line_number"] = json!(script.did);
        }
        (from, to)
    }

    fn summary(&self, ended_at: SystemTime, disconnect_reason: u32) -> PbxRequest {
        let script = self.script;
        let summary = &self.timeline.summary;
        let start = self.timeline.start;
        let (direction, from, to) = match script.direction {
            Direction::Incoming => {
                let mut to = Map::new();
                if let Some(extension) = &summary.extension {
                    to.insert("extension".to_owned(), json!(extension));
                }
                to.insert("number".to_owned(), json!(script.did));
                (1, json!({"number": script.client}), Value::Object(to))
            }
            Direction::Outgoing => {
                (2, self.employee(script.employee.as_deref().unwrap_or_default()), json!({"number": script.client}))
            }
            Direction::Internal => (
                0,
                self.employee(script.employee.as_deref().unwrap_or_default()),
                self.employee(script.ringing.first().map_or("", String::as_str)),
            ),
        };
        let forward_time = match script.direction {
            Direction::Incoming => unix_seconds(self.timeline.at(summary.forwarded_at_ms)),
            Direction::Outgoing | Direction::Internal => 0,
        };
        let mut body = json!({
            "entry_id": self.entry_id,
            "call_direction": direction,
            "from": from,
            "to": to,
            "create_time": unix_seconds(start),
            "forward_time": forward_time,
            "talk_time": summary.answered_at_ms.map_or(0, |at| unix_seconds(self.timeline.at(at))),
            "end_time": unix_seconds(ended_at),
            "entry_result": u8::from(summary.answered_at_ms.is_some()),
            "disconnect_reason": disconnect_reason,
        });
        if script.direction != Direction::Internal {
            body["line_number"] = json!(script.did);
        }
        self.signed("/events/summary", ended_at, Role::Other, &body)
    }

    fn record_added(&self, recording_id: &str, leg: usize, at: SystemTime) -> PbxRequest {
        // A transfer to an external number is recorded on the extension that made it.
        let owner =
            self.timeline.legs[leg].transferred_from.filter(|_| self.timeline.legs[leg].kind == LegKind::External);
        let extension = &self.timeline.legs[owner.unwrap_or(leg)].number;
        let body = json!({
            "entry_id": self.entry_id,
            "recording_id": recording_id,
            "user_id": user_id(extension),
            "product_id": self.account.product_id,
            "timestamp": unix_seconds(at),
        });
        self.signed("/events/record/added", at, Role::Other, &body)
    }
}

fn reason(end: LegEnd, ended_by: Party) -> u32 {
    match end {
        LegEnd::Talked(_) if ended_by == Party::Callee => CALLEE_HUNG_UP,
        LegEnd::Talked(_) | LegEnd::Cancelled => CALLER_HUNG_UP,
        LegEnd::Transferred(_) => TRANSFERRED,
        LegEnd::Busy => BUSY,
        LegEnd::NoAnswer => NO_ANSWER,
        LegEnd::AnsweredElsewhere => TAKEN_ELSEWHERE,
        LegEnd::FrontDone { .. } => NORMAL,
    }
}

/// The legs that talked, with their talk seconds, in the order they ended.
fn talked_legs(script: &CallScript, timeline: &Timeline) -> Vec<(usize, u32)> {
    timeline
        .steps
        .iter()
        .filter(|step| !(script.direction == Direction::Internal && timeline.legs[step.leg].flow == Flow::Out))
        .filter_map(|step| match step.kind {
            StepKind::Hangup(LegEnd::Talked(seconds) | LegEnd::Transferred(seconds)) => Some((step.leg, seconds)),
            _ => None,
        })
        .collect()
}

/// Mango's account-level employee id; the emulator derives it from the extension.
fn user_id(extension: &str) -> u64 {
    100_000 + extension.parse::<u64>().unwrap_or_default()
}

/// Mango ids look like base64 of `digits:digits`.
fn mango_id() -> String {
    let text = format!("{}:{}", rand::random_range(1_000_000_000_u64..10_000_000_000), rand::random_range(100..1000));
    STANDARD.encode(text)
}
