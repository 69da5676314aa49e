//! Mango Office: the seed's scenarios from signed `events/call`, `events/summary` and `events/record/added` posts.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{CLIENT, CLIENT_E164, DID, DID_E164, complete, pairs, resent, reversed, run};
use crate::domain::{CallResult, CallStatus, Direction, LegEvent, Provider};
use crate::telephony::mango::{self, MangoAccount};
use crate::telephony::{Assembly, IgnoredBecause};

pub(crate) const KEY: &str = "k8w3n5q0r2t7y1u4i6o9p3a5s7d2f4g6";
pub(crate) const SALT: &str = "z1x3c5v7b9n2m4q6";
const ENTRY: &str = "MTAxMjQ4NTk1ODo0Mjk=";
/// 2024-03-01 09:00:00 UTC.
const T0: i64 = 1_709_283_600;

pub(crate) fn account() -> MangoAccount {
    MangoAccount { api_key: KEY.to_owned().into(), api_salt: SALT.to_owned().into() }
}

pub(crate) fn at(second: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(T0 + second, 0).unwrap()
}

/// The form Mango posts: `sign` = lowercase hex(sha256(key + json + salt)).
pub(crate) fn form(json: &str) -> Vec<(String, String)> {
    let digest = Sha256::digest(format!("{KEY}{json}{SALT}"));
    let sign: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    pairs(&[("vpbx_api_key", KEY), ("sign", &sign), ("json", json)])
}

fn post(path: &str, event: &Value) -> Vec<LegEvent> {
    mango::parse(path, &form(&event.to_string()), &account()).unwrap()
}

/// One leg of the call, between the parties its `events/call` posts name.
struct Leg {
    id: &'static str,
    location: &'static str,
    from: Value,
    to: Value,
}

impl Leg {
    fn ringing(id: &'static str, extension: &str) -> Self {
        Self { id, location: "abonent", from: client(), to: employee(extension) }
    }

    fn state(&self, seq: u64, second: i64, state: &str, reason: Option<u32>) -> Vec<LegEvent> {
        let mut event = json!({
            "entry_id": ENTRY, "call_id": self.id, "timestamp": T0 + second, "seq": seq,
            "call_state": state, "location": self.location, "from": self.from, "to": self.to,
        });
        if let Some(reason) = reason {
            event["disconnect_reason"] = json!(reason);
        }
        post("/events/call", &event)
    }
}

fn client() -> Value {
    json!({ "number": CLIENT })
}

fn employee(extension: &str) -> Value {
    json!({ "extension": extension, "number": format!("sip:{extension}@vpbx400000000.mangosip.ru"), "line_number": DID })
}

fn summary(direction: u8, from: Value, to: Value, talk: i64, end: i64, reason: u32) -> Vec<LegEvent> {
    post(
        "events/summary",
        &json!({
            "entry_id": ENTRY, "call_direction": direction, "from": from, "to": to, "line_number": DID,
            "create_time": T0, "forward_time": T0 + 1, "talk_time": if talk > 0 { T0 + talk } else { 0 },
            "end_time": T0 + end, "entry_result": 1, "disconnect_reason": reason,
        }),
    )
}

fn incoming_summary(extension: &str, talk: i64, end: i64, reason: u32) -> Vec<LegEvent> {
    summary(
        1,
        client(),
        json!({ "extension": extension, "number": format!("sip:{extension}@vpbx") }),
        talk,
        end,
        reason,
    )
}

/// IVR first, then 101 and 102 ring together; 102 answers, 101's leg is dropped.
fn answered_in_parallel() -> Vec<LegEvent> {
    let ivr = Leg { id: "ivr", location: "ivr", from: client(), to: json!({ "number": DID, "line_number": DID }) };
    let (l101, l102) = (Leg::ringing("l101", "101"), Leg::ringing("l102", "102"));
    [
        ivr.state(1, 0, "Appeared", None),
        ivr.state(2, 1, "Disconnected", Some(1100)),
        l101.state(3, 1, "Appeared", None),
        l102.state(4, 1, "Appeared", None),
        l102.state(5, 5, "Connected", None),
        l101.state(6, 5, "Disconnected", Some(1111)),
        l102.state(7, 65, "Disconnected", Some(1110)),
        incoming_summary("102", 5, 65, 1110),
    ]
    .concat()
}

#[test]
fn an_incoming_call_answered_by_one_of_two_ringing_phones_completes_on_the_summary() {
    let events = answered_in_parallel();
    assert_eq!(run(Provider::Mango, &events[..7], at(600)), Assembly::Incomplete);
    let call = complete(run(Provider::Mango, &events, at(65)));
    assert_eq!((call.call_id.as_str(), call.direction), (ENTRY, Direction::Incoming));
    assert_eq!(call.client.e164(), CLIENT_E164);
    assert_eq!(call.our_number.as_ref().map(|phone| phone.e164()), Some(DID_E164));
    assert_eq!((call.answered_by.as_deref(), call.result), (Some("102"), CallResult::Answered));
    assert_eq!(call.extensions, ["101", "102"]);
    assert_eq!((call.talk_seconds, call.wait_seconds), (60, 5), "talk = end_time - talk_time");
    assert_eq!((call.started_at, call.ended_at, call.recording), (at(0), at(65), None));
}

#[test]
fn the_recording_added_after_the_summary_is_attached_on_the_next_assembly() {
    let mut events = answered_in_parallel();
    events.extend(post("events/record/added", &json!({
        "entry_id": ENTRY, "recording_id": "MToxMDE2NzI0MTo0Mjk6MA==", "user_id": 101, "product_id": 1, "timestamp": T0 + 70,
    })));
    let call = complete(run(Provider::Mango, &events, at(70)));
    assert_eq!(call.recording.as_deref(), Some("MToxMDE2NzI0MTo0Mjk6MA=="));
    assert_eq!(call.ended_at, at(65));
}

#[test]
fn an_incoming_call_nobody_answered_is_missed_with_the_waiting_time() {
    let (l101, l102) = (Leg::ringing("l101", "101"), Leg::ringing("l102", "102"));
    let events = [
        l101.state(1, 1, "Appeared", None),
        l102.state(2, 1, "Appeared", None),
        l101.state(3, 30, "Disconnected", Some(1110)),
        l102.state(4, 30, "Disconnected", Some(1110)),
        incoming_summary("102", 0, 30, 1110),
    ]
    .concat();
    let call = complete(run(Provider::Mango, &events, at(30)));
    assert_eq!((call.result, CallStatus::of(call.result).code()), (CallResult::Cancelled, 6));
    assert_eq!((call.answered_by, call.talk_seconds, call.wait_seconds), (None, 0, 30));
    assert_eq!(call.extensions, ["101", "102"]);
}

fn outgoing(talk: i64, end: i64, reason: u32) -> Vec<LegEvent> {
    let from = json!({ "extension": "101", "number": "sip:101@vpbx400000000.mangosip.ru" });
    let out =
        Leg { id: "o1", location: "abonent", from: from.clone(), to: json!({ "number": CLIENT, "line_number": DID }) };
    let mut events = out.state(1, 0, "Appeared", None);
    if talk > 0 {
        events.extend(out.state(2, talk, "Connected", None));
    }
    events.extend(out.state(3, end, "Disconnected", Some(reason)));
    events.extend(summary(2, from, json!({ "number": CLIENT }), talk, end, reason));
    events
}

#[test]
fn an_answered_outgoing_call_names_the_caller_and_the_talk_time() {
    let call = complete(run(Provider::Mango, &outgoing(8, 50, 1120), at(50)));
    assert_eq!((call.direction, call.client.e164()), (Direction::Outgoing, CLIENT_E164));
    assert_eq!((call.answered_by.as_deref(), call.result), (Some("101"), CallResult::Answered));
    assert_eq!((call.talk_seconds, call.wait_seconds), (42, 8));
}

#[test]
fn an_unanswered_outgoing_call_takes_its_result_from_the_disconnect_reason() {
    for (reason, result) in [(1121, CallResult::Busy), (1111, CallResult::NoAnswer), (1133, CallResult::WrongNumber)] {
        let call = complete(run(Provider::Mango, &outgoing(0, 20, reason), at(20)));
        assert_eq!((call.result, call.answered_by, call.talk_seconds), (result, None, 0), "{reason}");
    }
}

#[test]
fn a_call_between_two_extensions_is_ignored_as_internal() {
    let colleagues = Leg { id: "i1", location: "abonent", from: employee("101"), to: employee("102") };
    let events = [
        colleagues.state(1, 0, "Appeared", None),
        colleagues.state(2, 3, "Connected", None),
        summary(0, employee("101"), employee("102"), 3, 20, 1100),
    ]
    .concat();
    assert!(events[0].internal);
    assert_eq!(run(Provider::Mango, &events, at(20)), Assembly::Ignored(IgnoredBecause::Internal));
}

#[test]
fn a_call_that_only_an_unmapped_extension_took_is_ignored() {
    let l103 = Leg::ringing("l103", "103");
    let events =
        [l103.state(1, 0, "Appeared", None), l103.state(2, 2, "Connected", None), incoming_summary("103", 2, 30, 1100)]
            .concat();
    assert_eq!(run(Provider::Mango, &events, at(30)), Assembly::Ignored(IgnoredBecause::NoExtensionOfInterest));
}

#[test]
fn resending_every_event_changes_nothing() {
    let events = answered_in_parallel();
    assert_eq!(run(Provider::Mango, &resent(&events), at(65)), run(Provider::Mango, &events, at(65)));
}

#[test]
fn events_in_reverse_order_give_the_same_call() {
    let events = answered_in_parallel();
    assert_eq!(run(Provider::Mango, &reversed(&events), at(65)), run(Provider::Mango, &events, at(65)));
}

#[test]
fn a_transfer_keeps_one_call() {
    let l101 = Leg::ringing("l101", "101");
    // The leg from 101 to 102 is between colleagues; the client stays in the same entry.
    let l102 = Leg { id: "l102", location: "abonent", from: employee("101"), to: employee("102") };
    let events = [
        l101.state(1, 1, "Appeared", None),
        l101.state(2, 3, "Connected", None),
        l102.state(3, 40, "Appeared", None),
        l102.state(4, 45, "Connected", None),
        l101.state(5, 46, "Disconnected", Some(1100)),
        l102.state(6, 105, "Disconnected", Some(1110)),
        incoming_summary("102", 3, 105, 1110),
    ]
    .concat();
    let call = complete(run(Provider::Mango, &events, at(105)));
    assert_eq!(call.client.e164(), CLIENT_E164);
    assert_eq!(call.answered_by.as_deref(), Some("101"), "who took the call");
    assert_eq!(call.extensions, ["101", "102"]);
    assert_eq!(call.talk_seconds, 102);
}
