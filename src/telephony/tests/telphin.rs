//! Telphin: the seed's scenarios from per-leg events, with IVR 099 in front of extensions 101 and 102.

use chrono::{DateTime, TimeDelta, Utc};

use super::{CLIENT, CLIENT_E164, DID, DID_E164, complete, resent, reversed, run};
use crate::domain::{CallResult, CallStatus, Direction, LegEvent, PhoneRegion, Provider};
use crate::telephony::live::live_call;
use crate::telephony::{Assembly, IgnoredBecause, telphin};

pub(crate) use super::pairs;

pub(crate) const CALL_ID: &str = "3a7c1e02-5b9f-4d0e-9a51-0c2f6d8e4b17";
/// 2024-03-01 09:00:00 UTC.
const T0: i64 = 1_709_283_600;

fn at(second: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(T0 + second, 0).unwrap()
}

fn address(extension: &str) -> String {
    format!("00012*{extension}@sip.telphin.com")
}

/// An event on an incoming leg ringing `extension`, as Telphin posts it.
fn incoming(event_type: &str, extension: &str, second: i64, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let fields = pairs(&[
        ("EventType", event_type),
        ("CallID", CALL_ID),
        ("SubCallID", &format!("sub-{extension}")),
        ("CallFlow", "IN"),
        ("CallerIDNum", CLIENT),
        ("CallerIDName", CLIENT),
        ("CalledDID", DID),
        ("CalledNumber", extension),
        ("CalledExtension", &address(extension)),
        ("CalledExtensionID", "4711"),
        ("CallAPIID", "3a7c1e02-5b9f-4d0e-9a51-0c2f6d8e4b17-1"),
        ("EventTime", &((T0 + second) * 1_000_000).to_string()),
    ]);
    overridden(fields, extra)
}

/// An event on an outgoing leg from `extension` to `called`.
fn outgoing(
    event_type: &str,
    extension: &str,
    called: &str,
    second: i64,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let fields = pairs(&[
        ("EventType", event_type),
        ("CallID", CALL_ID),
        ("SubCallID", &format!("sub-{extension}")),
        ("CallFlow", "OUT"),
        ("CallerIDNum", extension),
        ("CallerExtension", &address(extension)),
        ("CallerExtensionID", "4711"),
        ("CalledNumber", called),
        ("EventTime", &((T0 + second) * 1_000_000).to_string()),
    ]);
    overridden(fields, extra)
}

/// `fields` with `extra` replacing fields of the same name or added after them.
fn overridden(mut fields: Vec<(String, String)>, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    for (name, value) in extra {
        match fields.iter_mut().find(|(existing, _)| existing == name) {
            Some(field) => field.1 = (*value).to_owned(),
            None => fields.push(((*name).to_owned(), (*value).to_owned())),
        }
    }
    fields
}

fn hangup(status: &str, duration: &str) -> Vec<(&'static str, String)> {
    vec![("CallStatus", status.to_owned()), ("Duration", duration.to_owned())]
}

pub(crate) fn hangup_101_no_answer(second: i64) -> Vec<(String, String)> {
    incoming("hangup", "101", second, &[("CallStatus", "NOANSWER"), ("Duration", "15")])
}

fn parsed(payloads: Vec<Vec<(String, String)>>) -> Vec<LegEvent> {
    payloads.iter().flat_map(|payload| telphin::parse(payload).unwrap()).collect()
}

fn with<'a>(extra: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    extra.iter().map(|(name, value)| (*name, value.as_str())).collect()
}

/// 099 answers and rings 101 and 102 together; 102 answers, 101's leg gives up.
fn answered_in_parallel() -> Vec<LegEvent> {
    parsed(vec![
        incoming("dial-in", "101", 1, &[("CallStatus", "CALLING")]),
        incoming("dial-in", "102", 1, &[("CallStatus", "CALLING")]),
        incoming("answer", "102", 5, &[]),
        incoming("hangup", "101", 5, &with(&hangup("NOANSWER", "4"))),
        incoming("hangup", "102", 65, &[("CallStatus", "ANSWER"), ("Duration", "60"), ("RecID", "rec-102")]),
        incoming("hangup", "099", 65, &[("CallStatus", "ANSWER"), ("Duration", "65"), ("Bridged", "yes")]),
    ])
}

#[test]
fn an_incoming_call_answered_by_one_of_two_ringing_phones_is_one_answered_call() {
    let call = complete(run(Provider::Telphin, &answered_in_parallel(), at(65)));
    assert_eq!(call.call_id, CALL_ID);
    assert_eq!(call.direction, Direction::Incoming);
    assert_eq!(call.client.e164(), CLIENT_E164);
    assert_eq!(call.our_number.as_ref().map(|phone| phone.e164()), Some(DID_E164));
    assert_eq!(call.answered_by.as_deref(), Some("102"));
    assert_eq!(call.extensions, ["101", "102"], "the IVR is not an employee");
    assert_eq!(call.result, CallResult::Answered);
    assert_eq!((call.talk_seconds, call.wait_seconds), (60, 4));
    assert_eq!(call.recording.as_deref(), Some("rec-102"));
    assert_eq!((call.started_at, call.ended_at), (at(1), at(65)));
}

#[test]
fn an_incoming_call_nobody_answered_is_missed_with_the_waiting_time() {
    let events = parsed(vec![
        incoming("dial-in", "101", 1, &[("CallStatus", "CALLING")]),
        incoming("dial-in", "102", 1, &[("CallStatus", "CALLING")]),
        incoming("hangup", "101", 31, &with(&hangup("NOANSWER", "30"))),
        incoming("hangup", "102", 31, &with(&hangup("BUSY", "0"))),
        incoming("hangup", "099", 31, &[("CallStatus", "CANCEL"), ("Duration", "31"), ("Bridged", "no")]),
    ]);
    let call = complete(run(Provider::Telphin, &events, at(31)));
    assert_eq!(call.result, CallResult::NoAnswer, "a phone that rang out outweighs a busy one");
    assert_eq!(CallStatus::of(call.result).code(), 6);
    assert_eq!((call.answered_by, call.talk_seconds, call.wait_seconds), (None, 0, 30));
    assert_eq!(call.extensions, ["101", "102"]);
}

#[test]
fn an_answered_outgoing_call_completes_once_the_quiet_period_has_passed() {
    let events = parsed(vec![
        outgoing("dial-out", "101", CLIENT, 0, &[("CallStatus", "CALLING")]),
        outgoing("answer", "101", CLIENT, 8, &[]),
        outgoing("hangup", "101", CLIENT, 50, &[("CallStatus", "ANSWER"), ("Duration", "42")]),
    ]);
    assert_eq!(run(Provider::Telphin, &events, at(50)), Assembly::Incomplete);
    assert_eq!(run(Provider::Telphin, &events, at(79)), Assembly::Incomplete);
    let call = complete(run(Provider::Telphin, &events, at(80)));
    assert_eq!(call.direction, Direction::Outgoing);
    assert_eq!(call.client.e164(), CLIENT_E164);
    assert_eq!(call.our_number, None);
    assert_eq!((call.answered_by.as_deref(), call.result), (Some("101"), CallResult::Answered));
    assert_eq!((call.talk_seconds, call.wait_seconds), (42, 8));
}

#[test]
fn an_unanswered_outgoing_call_takes_its_result_from_the_hangup_status() {
    for (status, result, amocrm) in [("BUSY", CallResult::Busy, 7), ("NOANSWER", CallResult::NoAnswer, 6)] {
        let events = parsed(vec![
            outgoing("dial-out", "101", CLIENT, 0, &[("CallStatus", "CALLING")]),
            outgoing("hangup", "101", CLIENT, 20, &with(&hangup(status, "0"))),
        ]);
        let call = complete(run(Provider::Telphin, &events, at(60)));
        assert_eq!((call.result, CallStatus::of(call.result).code()), (result, amocrm), "{status}");
        assert_eq!((call.answered_by, call.talk_seconds, call.wait_seconds), (None, 0, 20));
        assert_eq!(call.extensions, ["101"]);
    }
}

#[test]
fn a_call_between_two_extensions_is_ignored_as_internal() {
    let events = parsed(vec![
        outgoing("dial-out", "101", "102", 0, &[("CallStatus", "CALLING")]),
        incoming("dial-in", "102", 0, &[("CallerIDNum", "101")]),
        incoming("answer", "102", 3, &[("CallerIDNum", "101")]),
        incoming("hangup", "102", 20, &[("CallerIDNum", "101"), ("CallStatus", "ANSWER"), ("Duration", "17")]),
        outgoing("hangup", "101", "102", 20, &with(&hangup("ANSWER", "17"))),
    ]);
    assert_eq!(run(Provider::Telphin, &events, at(60)), Assembly::Ignored(IgnoredBecause::Internal));
}

#[test]
fn a_call_that_only_an_unmapped_extension_took_is_ignored() {
    let events = parsed(vec![
        incoming("dial-in", "103", 0, &[("CallStatus", "CALLING")]),
        incoming("answer", "103", 2, &[]),
        incoming("hangup", "103", 30, &with(&hangup("ANSWER", "28"))),
        incoming("hangup", "099", 30, &[("CallStatus", "ANSWER"), ("Bridged", "yes")]),
    ]);
    assert_eq!(run(Provider::Telphin, &events, at(30)), Assembly::Ignored(IgnoredBecause::NoExtensionOfInterest));
}

#[test]
fn resending_every_event_changes_nothing() {
    let events = answered_in_parallel();
    let once = run(Provider::Telphin, &events, at(65));
    assert_eq!(run(Provider::Telphin, &resent(&events), at(65)), once);
    assert_eq!(run(Provider::Telphin, &resent(&events), at(3_600)), once, "and later still the same");
}

#[test]
fn events_in_reverse_order_give_the_same_call() {
    let events = answered_in_parallel();
    assert_eq!(run(Provider::Telphin, &reversed(&events), at(65)), run(Provider::Telphin, &events, at(65)));
}

#[test]
fn a_hangup_before_its_answer_still_counts_as_a_conversation() {
    let mut events = answered_in_parallel();
    events.swap(2, 4);
    assert_eq!(complete(run(Provider::Telphin, &events, at(65))).answered_by.as_deref(), Some("102"));
}

#[test]
fn a_transfer_keeps_one_call_and_the_real_client_from_remote_number() {
    let events = parsed(vec![
        incoming("dial-in", "101", 1, &[("CallStatus", "CALLING")]),
        incoming("answer", "101", 3, &[]),
        // After the transfer Telphin names the colleague in CallerIDNum and the client in RemoteNumber.
        incoming("dial-in", "102", 40, &[("CallerIDNum", "101"), ("RemoteNumber", CLIENT)]),
        incoming("hangup", "101", 42, &with(&hangup("ANSWER", "39"))),
        incoming("answer", "102", 45, &[("CallerIDNum", "101"), ("RemoteNumber", CLIENT)]),
        incoming(
            "hangup",
            "102",
            105,
            &[("CallerIDNum", "101"), ("RemoteNumber", CLIENT), ("CallStatus", "ANSWER"), ("Duration", "60")],
        ),
        incoming("hangup", "099", 105, &[("CallStatus", "ANSWER"), ("Bridged", "yes")]),
    ]);
    assert!(events.iter().all(|event| event.call_id == CALL_ID));
    let call = complete(run(Provider::Telphin, &events, at(105)));
    assert_eq!(call.client.e164(), CLIENT_E164);
    assert_eq!(call.answered_by.as_deref(), Some("101"), "who took the call");
    assert_eq!(call.extensions, ["101", "102"]);
    assert_eq!((call.talk_seconds, call.wait_seconds), (99, 2), "both conversations");
}

#[test]
fn a_call_without_a_router_completes_only_after_every_leg_hung_up_and_the_quiet_period() {
    let ringing =
        parsed(vec![incoming("dial-in", "101", 0, &[("CallStatus", "CALLING")]), incoming("answer", "101", 2, &[])]);
    let an_hour_later = at(2) + TimeDelta::hours(1);
    assert_eq!(run(Provider::Telphin, &ringing, an_hour_later), Assembly::Incomplete, "a long talk sends nothing");
    let mut ended = ringing;
    ended.extend(parsed(vec![incoming("hangup", "101", 600, &with(&hangup("ANSWER", "598")))]));
    assert_eq!(run(Provider::Telphin, &ended, at(629)), Assembly::Incomplete);
    let call = complete(run(Provider::Telphin, &ended, at(630)));
    assert_eq!((call.result, call.talk_seconds), (CallResult::Answered, 598));
}

#[test]
fn a_bridged_yes_from_the_ivr_counts_as_answered_even_without_the_answering_leg() {
    let events = parsed(vec![
        incoming("dial-in", "101", 0, &[("CallStatus", "CALLING")]),
        incoming("hangup", "101", 10, &with(&hangup("NOANSWER", "10"))),
        incoming("hangup", "099", 70, &[("CallStatus", "ANSWER"), ("Bridged", "yes")]),
    ]);
    let call = complete(run(Provider::Telphin, &events, at(70)));
    assert_eq!((call.result, call.answered_by), (CallResult::Answered, None));
}

#[test]
fn an_anonymous_caller_is_ignored_for_want_of_a_usable_number() {
    let events = parsed(vec![
        incoming("dial-in", "101", 0, &[("CallerIDNum", "anonymous")]),
        incoming("hangup", "101", 10, &[("CallerIDNum", "anonymous"), ("CallStatus", "CANCEL")]),
    ]);
    assert_eq!(
        run(Provider::Telphin, &events, at(60)),
        Assembly::Ignored(IgnoredBecause::UnusableNumber("anonymous".to_owned()))
    );
}

#[test]
fn the_ivr_hangup_before_the_employees_hangup_waits_for_it_or_for_the_quiet_period() {
    let events = parsed(vec![
        incoming("dial-in", "101", 1, &[("CallStatus", "CALLING")]),
        incoming("answer", "101", 4, &[]),
        incoming("hangup", "099", 64, &[("CallStatus", "ANSWER"), ("Bridged", "yes")]),
    ]);
    assert_eq!(run(Provider::Telphin, &events, at(64)), Assembly::Incomplete, "101's hangup may still come");
    let mut with_hangup = events.clone();
    with_hangup.extend(parsed(vec![incoming("hangup", "101", 64, &with(&hangup("ANSWER", "60")))]));
    let call = complete(run(Provider::Telphin, &with_hangup, at(64)));
    assert_eq!((call.answered_by.as_deref(), call.talk_seconds), (Some("101"), 60));
    // The hangup was lost: the router's verdict stands once the call has been quiet long enough.
    let call = complete(run(Provider::Telphin, &events, at(94)));
    assert_eq!((call.result, call.answered_by.as_deref(), call.talk_seconds), (CallResult::Answered, Some("101"), 0));
}

#[test]
fn the_live_card_follows_the_legs_from_ringing_to_talking_to_gone() {
    let events = answered_in_parallel();
    let both_ringing = live_call(&events[..2], PhoneRegion::RUSSIA).expect("a ringing call is live");
    assert_eq!(both_ringing.ringing, ["101", "102"]);
    assert!(both_ringing.talking.is_empty());
    assert_eq!(both_ringing.client.as_ref().map(|phone| phone.e164()), Some(CLIENT_E164));
    assert_eq!(both_ringing.our_number.as_ref().map(|phone| phone.e164()), Some(DID_E164));
    assert_eq!(both_ringing.direction, Some(Direction::Incoming));
    let answered = live_call(&events[..4], PhoneRegion::RUSSIA).expect("a conversation is live");
    assert!(answered.ringing.is_empty(), "{answered:?}");
    assert_eq!(answered.talking, ["102"]);
    assert_eq!(live_call(&events, PhoneRegion::RUSSIA), None, "every leg has hung up");
}

#[test]
fn a_call_between_colleagues_has_no_live_card() {
    let events = parsed(vec![outgoing("dial-out", "101", "102", 0, &[("CallStatus", "CALLING")])]);
    assert_eq!(live_call(&events, PhoneRegion::RUSSIA), None);
}
