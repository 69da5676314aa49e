//! Telphin call events (`dial-in`, `dial-out`, `answer`, `hangup`), from form or query pairs into `LegEvent`s.
//!
//! Telphin signs nothing: the secret in the subscribed URL, checked by the handler, is the only
//! gate. Every value arrives as a string.

use chrono::{DateTime, Utc};

use super::{Fields, ProviderError, extension_in, is_extension, parse_number};
use crate::domain::{CallResult, Direction, LegEvent, LegEventKind};

/// The event in a Telphin webhook; none for the message and voicemail events we do not use.
///
/// # Errors
/// A missing `EventType`, `CallID`, `EventTime` (or `CallStatus` on a hangup), a value of the
/// wrong shape, or an event type Telphin is not known to send.
pub fn parse(pairs: &[(String, String)]) -> Result<Vec<LegEvent>, ProviderError> {
    let fields = Fields(pairs);
    let event_type = fields.required("EventType")?;
    let kind = match event_type.as_str() {
        "dial-in" | "dial-out" => LegEventKind::Ringing,
        "answer" => LegEventKind::Answered,
        "hangup" => hangup(&fields)?,
        "message-in" | "message-out" | "voicemail" => return Ok(Vec::new()),
        _ => return Err(ProviderError::UnknownEventType(event_type)),
    };
    let direction = match fields.text("CallFlow").map(|flow| flow.to_ascii_uppercase()).as_deref() {
        Some("IN") => Some(Direction::Incoming),
        Some("OUT") => Some(Direction::Outgoing),
        // The call-history API also knows `transfer`; the event type still tells a dial.
        _ => match event_type.as_str() {
            "dial-in" => Some(Direction::Incoming),
            "dial-out" => Some(Direction::Outgoing),
            _ => None,
        },
    };
    let parties = match direction {
        Some(Direction::Outgoing) => outgoing_parties(&fields),
        Some(Direction::Incoming) | None => incoming_parties(&fields),
    };
    let recording = match kind {
        LegEventKind::HungUp { .. } => fields.text("RecID"),
        _ => None,
    };
    Ok(vec![LegEvent {
        call_id: fields.required("CallID")?,
        leg_id: fields.text("SubCallID"),
        at: event_time(&fields)?,
        seq: None,
        direction,
        external_number: parties.external_number,
        our_number: fields.text("CalledDID"),
        extension: parties.extension,
        internal: parties.internal,
        location: None,
        kind,
        recording,
    }])
}

struct Parties {
    external_number: Option<String>,
    extension: Option<String>,
    internal: bool,
}

/// On an incoming leg the employee is the called side; after a transfer `RemoteNumber` holds the
/// client and `CallerIDNum` the colleague who transferred.
fn incoming_parties(fields: &Fields<'_>) -> Parties {
    let extension = fields
        .text("CalledExtension")
        .and_then(|address| extension_in(&address))
        .or_else(|| fields.text("CalledNumber").filter(|number| is_extension(number)));
    if let Some(remote) = fields.text("RemoteNumber") {
        return Parties { external_number: Some(remote), extension, internal: false };
    }
    let caller = fields.text("CallerIDNum");
    let internal = caller.as_deref().is_some_and(is_extension);
    Parties { external_number: caller.filter(|_| !internal), extension, internal }
}

/// On an outgoing leg the employee is the caller; a `CalledNumber` that is one of our extensions
/// makes it an internal call (Telphin's integration guide).
fn outgoing_parties(fields: &Fields<'_>) -> Parties {
    let extension = fields
        .text("CallerExtension")
        .and_then(|address| extension_in(&address))
        .or_else(|| fields.text("CallerIDNum").filter(|number| is_extension(number)));
    let called = fields.text("CalledNumber");
    let internal = called.as_deref().is_some_and(is_extension);
    Parties { external_number: called.filter(|_| !internal), extension, internal }
}

fn hangup(fields: &Fields<'_>) -> Result<LegEventKind, ProviderError> {
    let status = fields.required("CallStatus")?;
    let result = match status.to_ascii_uppercase().as_str() {
        "ANSWER" => CallResult::Answered,
        "BUSY" => CallResult::Busy,
        "NOANSWER" => CallResult::NoAnswer,
        "CANCEL" => CallResult::Cancelled,
        // CONGESTION, CHANUNAVAIL and anything undocumented: the call failed for a technical reason.
        _ => CallResult::Failed,
    };
    let duration_seconds = match fields.text("Duration") {
        Some(duration) => parse_number("Duration", &duration, "a whole number of seconds")?,
        None => 0,
    };
    let bridged = match fields.text("Bridged").map(|flag| flag.to_ascii_lowercase()).as_deref() {
        None => None,
        Some("yes") => Some(true),
        Some("no") => Some(false),
        Some(other) => {
            return Err(ProviderError::InvalidField {
                field: "Bridged",
                value: other.to_owned(),
                expected: "yes or no",
            });
        }
    };
    Ok(LegEventKind::HungUp { result, duration_seconds, bridged })
}

/// `EventTime` is Unix time in microseconds.
fn event_time(fields: &Fields<'_>) -> Result<DateTime<Utc>, ProviderError> {
    let text = fields.required("EventTime")?;
    let micros: i64 = parse_number("EventTime", &text, "a Unix time in microseconds")?;
    DateTime::from_timestamp_micros(micros).ok_or(ProviderError::InvalidField {
        field: "EventTime",
        value: text,
        expected: "a Unix time in microseconds",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telephony::tests::telphin::{CALL_ID, hangup_101_no_answer, pairs};

    #[test]
    fn a_dial_in_names_the_client_our_number_and_the_ringing_extension() {
        let events = parse(&pairs(&[
            ("EventType", "dial-in"),
            ("CallID", CALL_ID),
            ("SubCallID", "leg-101"),
            ("CallFlow", "IN"),
            ("CallerIDNum", "89161234567"),
            ("CalledDID", "74951234567"),
            ("CalledNumber", "101"),
            ("CalledExtension", "00012*101@sip.telphin.com"),
            ("CallStatus", "CALLING"),
            ("EventTime", "1700000000123456"),
        ]))
        .unwrap();
        let event = &events[0];
        assert_eq!(event.kind, LegEventKind::Ringing);
        assert_eq!(event.direction, Some(Direction::Incoming));
        assert_eq!(event.external_number.as_deref(), Some("89161234567"));
        assert_eq!(event.our_number.as_deref(), Some("74951234567"));
        assert_eq!(event.extension.as_deref(), Some("101"));
        assert_eq!(event.at.timestamp_micros(), 1_700_000_000_123_456);
        assert!(!event.internal);
    }

    #[test]
    fn a_hangup_carries_status_duration_and_recording() {
        let events = parse(&hangup_101_no_answer(0)).unwrap();
        assert_eq!(
            events[0].kind,
            LegEventKind::HungUp { result: CallResult::NoAnswer, duration_seconds: 15, bridged: None }
        );
    }

    #[test]
    fn message_and_voicemail_events_are_acknowledged_without_events() {
        for event_type in ["message-in", "message-out", "voicemail"] {
            assert_eq!(parse(&pairs(&[("EventType", event_type)])).unwrap(), vec![], "{event_type}");
        }
    }

    #[test]
    fn an_unknown_event_type_and_missing_fields_are_named() {
        let error = parse(&pairs(&[("EventType", "teleport")])).unwrap_err();
        assert!(matches!(error, ProviderError::UnknownEventType(name) if name == "teleport"));
        let error = parse(&pairs(&[("EventType", "answer"), ("EventTime", "1")])).unwrap_err();
        assert!(matches!(error, ProviderError::MissingField("CallID")), "{error}");
        let error = parse(&pairs(&[("EventType", "hangup"), ("CallID", "c")])).unwrap_err();
        assert!(matches!(error, ProviderError::MissingField("CallStatus")), "{error}");
        let error = parse(&pairs(&[("CallID", "c")])).unwrap_err();
        assert!(matches!(error, ProviderError::MissingField("EventType")), "{error}");
    }

    #[test]
    fn a_garbled_time_or_bridged_flag_is_refused_with_the_field_name() {
        let error = parse(&pairs(&[("EventType", "answer"), ("CallID", "c"), ("EventTime", "yesterday")])).unwrap_err();
        assert!(matches!(error, ProviderError::InvalidField { field: "EventTime", .. }), "{error}");
        let error = parse(&pairs(&[
            ("EventType", "hangup"),
            ("CallID", "c"),
            ("CallStatus", "ANSWER"),
            ("Bridged", "maybe"),
            ("EventTime", "1"),
        ]))
        .unwrap_err();
        assert!(matches!(error, ProviderError::InvalidField { field: "Bridged", .. }), "{error}");
    }
}
