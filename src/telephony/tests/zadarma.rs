//! Zadarma: the seed's scenarios from signed `NOTIFY_*` posts, extensions 101 and 102 ringing together.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, TimeDelta, Utc};
use hmac::{Hmac, Mac};
use sha1::Sha1;

use super::{CLIENT, CLIENT_E164, DID, DID_E164, complete, pairs, resent, reversed, run};
use crate::domain::{CallResult, CallStatus, Direction, LegEvent, Provider};
use crate::telephony::zadarma::{self, ZadarmaAccount};
use crate::telephony::{Assembly, IgnoredBecause};

pub(crate) const SECRET: &str = "f2a9c1d47b0e4e8c";
const CALL_ID: &str = "in_6c1e0a9b4f2d4e77b3a8c5d91e0f2a64";
/// The call's start in the account's zone (Moscow): 09:00:00 UTC.
const CALL_START: &str = "2024-03-01 12:00:00";

pub(crate) fn account() -> ZadarmaAccount {
    ZadarmaAccount { secret: SECRET.to_owned().into(), zone: chrono_tz::Europe::Moscow }
}

/// `second` seconds after the call started.
pub(crate) fn at(second: i64) -> DateTime<Utc> {
    "2024-03-01T09:00:00Z".parse::<DateTime<Utc>>().unwrap() + TimeDelta::seconds(second)
}

/// The form and its `Signature`, by the facts' table: base64(hex(HMAC-SHA1(secret, concat))).
pub(crate) fn signed(fields: &[(&str, &str)]) -> (Vec<(String, String)>, String) {
    let value = |name: &str| fields.iter().find(|(field, _)| *field == name).map_or("", |(_, value)| *value);
    let signed_fields: &[&str] = match value("event") {
        "NOTIFY_ANSWER" => &["caller_id", "destination", "call_start"],
        "NOTIFY_OUT_START" | "NOTIFY_OUT_END" => &["internal", "destination", "call_start"],
        "NOTIFY_RECORD" => &["pbx_call_id", "call_id_with_rec"],
        _ => &["caller_id", "called_did", "call_start"],
    };
    let concat: String = signed_fields.iter().map(|name| value(name)).collect();
    let mut mac = Hmac::<Sha1>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(concat.as_bytes());
    let hex: String = mac.finalize().into_bytes().iter().map(|byte| format!("{byte:02x}")).collect();
    (pairs(fields), BASE64.encode(hex))
}

/// One notification, signed, received `second` seconds after the call started.
fn notify(second: i64, fields: &[(&str, &str)]) -> Vec<LegEvent> {
    let (form, signature) = signed(fields);
    zadarma::parse(&form, Some(&signature), &account(), at(second)).unwrap()
}

fn start(second: i64) -> Vec<LegEvent> {
    notify(
        second,
        &[
            ("event", "NOTIFY_START"),
            ("call_start", CALL_START),
            ("pbx_call_id", CALL_ID),
            ("caller_id", CLIENT),
            ("called_did", DID),
        ],
    )
}

fn internal(second: i64, extension: &str) -> Vec<LegEvent> {
    notify(
        second,
        &[
            ("event", "NOTIFY_INTERNAL"),
            ("call_start", CALL_START),
            ("pbx_call_id", CALL_ID),
            ("caller_id", CLIENT),
            ("called_did", DID),
            ("internal", extension),
        ],
    )
}

fn answer(second: i64, extension: &str) -> Vec<LegEvent> {
    notify(
        second,
        &[
            ("event", "NOTIFY_ANSWER"),
            ("caller_id", CLIENT),
            ("destination", DID),
            ("call_start", CALL_START),
            ("pbx_call_id", CALL_ID),
            ("internal", extension),
        ],
    )
}

fn end(second: i64, extension: &str, disposition: &str, duration: &str, recording: Option<&str>) -> Vec<LegEvent> {
    notify(
        second,
        &[
            ("event", "NOTIFY_END"),
            ("call_start", CALL_START),
            ("pbx_call_id", CALL_ID),
            ("caller_id", CLIENT),
            ("called_did", DID),
            ("internal", extension),
            ("duration", duration),
            ("disposition", disposition),
            ("status_code", "16"),
            ("is_recorded", if recording.is_some() { "1" } else { "0" }),
            ("call_id_with_rec", recording.unwrap_or("")),
        ],
    )
}

fn outgoing(destination: &str, disposition: &str, duration: &str, end_second: i64) -> Vec<LegEvent> {
    let mut events = notify(
        0,
        &[
            ("event", "NOTIFY_OUT_START"),
            ("call_start", CALL_START),
            ("pbx_call_id", "out_91d2"),
            ("internal", "101"),
            ("destination", destination),
        ],
    );
    events.extend(notify(
        end_second,
        &[
            ("event", "NOTIFY_OUT_END"),
            ("call_start", CALL_START),
            ("pbx_call_id", "out_91d2"),
            ("caller_id", DID),
            ("destination", destination),
            ("internal", "101"),
            ("duration", duration),
            ("disposition", disposition),
            ("status_code", "16"),
            ("is_recorded", "0"),
            ("call_id_with_rec", ""),
        ],
    ));
    events
}

fn answered_in_parallel() -> Vec<LegEvent> {
    [
        start(0),
        internal(1, "101"),
        internal(1, "102"),
        answer(5, "102"),
        end(65, "102", "answered", "60", Some("1709283600.123")),
    ]
    .concat()
}

#[test]
fn an_incoming_call_answered_by_one_of_two_ringing_phones_completes_on_notify_end() {
    let events = answered_in_parallel();
    assert_eq!(run(Provider::Zadarma, &events[..4], at(600)), Assembly::Incomplete);
    let call = complete(run(Provider::Zadarma, &events, at(65)));
    assert_eq!((call.call_id.as_str(), call.direction), (CALL_ID, Direction::Incoming));
    assert_eq!(call.client.e164(), CLIENT_E164);
    assert_eq!(call.our_number.as_ref().map(|phone| phone.e164()), Some(DID_E164));
    assert_eq!((call.answered_by.as_deref(), call.result), (Some("102"), CallResult::Answered));
    assert_eq!(call.extensions, ["101", "102"]);
    assert_eq!((call.talk_seconds, call.wait_seconds), (60, 5));
    assert_eq!(call.recording.as_deref(), Some("1709283600.123"));
    assert_eq!((call.started_at, call.ended_at), (at(0), at(65)));
}

#[test]
fn an_incoming_call_nobody_answered_is_missed_with_the_waiting_time() {
    let events = [start(0), internal(1, "101"), internal(1, "102"), end(30, "102", "cancel", "0", None)].concat();
    let call = complete(run(Provider::Zadarma, &events, at(30)));
    assert_eq!((call.result, CallStatus::of(call.result).code()), (CallResult::Cancelled, 6));
    assert_eq!((call.answered_by, call.talk_seconds, call.wait_seconds), (None, 0, 30));
    assert_eq!(call.extensions, ["101", "102"]);
}

#[test]
fn an_answered_outgoing_call_names_the_caller_and_the_talk_time() {
    let call = complete(run(Provider::Zadarma, &outgoing(CLIENT, "answered", "42", 50), at(50)));
    assert_eq!(call.direction, Direction::Outgoing);
    assert_eq!(call.client.e164(), CLIENT_E164);
    assert_eq!((call.answered_by.as_deref(), call.result, call.talk_seconds), (Some("101"), CallResult::Answered, 42));
}

#[test]
fn an_unanswered_outgoing_call_takes_its_result_from_the_disposition() {
    for (disposition, result) in [("busy", CallResult::Busy), ("no answer", CallResult::NoAnswer)] {
        let call = complete(run(Provider::Zadarma, &outgoing(CLIENT, disposition, "0", 20), at(20)));
        assert_eq!((call.result, call.answered_by, call.talk_seconds), (result, None, 0), "{disposition}");
    }
    let call = complete(run(Provider::Zadarma, &outgoing(CLIENT, "unallocated number", "0", 2), at(2)));
    assert_eq!(CallStatus::of(call.result).code(), 5);
}

#[test]
fn a_call_between_two_extensions_is_ignored_as_internal() {
    assert_eq!(
        run(Provider::Zadarma, &outgoing("102", "answered", "17", 20), at(20)),
        Assembly::Ignored(IgnoredBecause::Internal)
    );
}

#[test]
fn a_call_that_only_an_unmapped_extension_took_is_ignored() {
    let events = [start(0), internal(1, "103"), answer(3, "103"), end(30, "103", "answered", "27", None)].concat();
    assert_eq!(run(Provider::Zadarma, &events, at(30)), Assembly::Ignored(IgnoredBecause::NoExtensionOfInterest));
}

#[test]
fn resending_every_event_later_changes_nothing() {
    let events = answered_in_parallel();
    let mut again = events.clone();
    // The repeats are stamped with their own, later receive times.
    again.extend(
        [
            start(90),
            internal(91, "101"),
            internal(91, "102"),
            answer(95, "102"),
            end(155, "102", "answered", "60", Some("1709283600.123")),
        ]
        .concat(),
    );
    assert_eq!(run(Provider::Zadarma, &again, at(200)), run(Provider::Zadarma, &events, at(65)));
    assert_eq!(run(Provider::Zadarma, &resent(&events), at(65)), run(Provider::Zadarma, &events, at(65)));
}

#[test]
fn events_in_reverse_order_give_the_same_call() {
    let events = answered_in_parallel();
    assert_eq!(run(Provider::Zadarma, &reversed(&events), at(65)), run(Provider::Zadarma, &events, at(65)));
}

#[test]
fn a_transfer_keeps_one_call() {
    let events = [
        start(0),
        internal(1, "101"),
        answer(3, "101"),
        internal(40, "102"),
        answer(45, "102"),
        end(105, "102", "answered", "102", None),
    ]
    .concat();
    let call = complete(run(Provider::Zadarma, &events, at(105)));
    assert_eq!(call.answered_by.as_deref(), Some("101"), "who took the call");
    assert_eq!(call.extensions, ["101", "102"]);
    assert_eq!(call.talk_seconds, 102);
}

#[test]
fn a_recording_notified_after_the_end_is_attached() {
    let mut events = [start(0), internal(1, "101"), answer(3, "101"), end(60, "101", "answered", "57", None)].concat();
    events.extend(notify(
        100,
        &[("event", "NOTIFY_RECORD"), ("call_id_with_rec", "1709283600.777"), ("pbx_call_id", CALL_ID)],
    ));
    let call = complete(run(Provider::Zadarma, &events, at(100)));
    assert_eq!(call.recording.as_deref(), Some("1709283600.777"));
    assert_eq!(call.ended_at, at(60), "the recording does not lengthen the call");
}
