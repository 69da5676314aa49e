//! Zadarma PBX notifications (`NOTIFY_*` form posts), checked against their `Signature` header and turned into `LegEvent`s.
//!
//! Times: every notification carries `call_start`, the start of the whole call as a zone-less
//! `YYYY-MM-DD hh:mm:ss`. Its zone is unconfirmed; Zadarma keeps a time zone per account (its
//! API has `info/timezone`), so the caller passes the account's zone. An event's own moment is
//! when we received it, except for the two that open a call, whose moment is `call_start`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, NaiveDateTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha1::Sha1;

use super::{Fields, ProviderError, is_extension, lower_hex, parse_number, same_secret};
use crate::domain::{CallResult, Direction, LegEvent, LegEventKind};

/// How far ahead of our clock a `call_start` may be before we distrust it (clock skew).
const CLOCK_SKEW: TimeDelta = TimeDelta::seconds(60);

/// The account settings a notification is checked and read with.
#[derive(Debug, Clone)]
pub struct ZadarmaAccount {
    /// The API secret that signs notifications.
    pub secret: SecretString,
    /// The account's time zone, in which `call_start` is written.
    pub zone: Tz,
}

/// The value to answer Zadarma's URL check (`?zd_echo=<value>`) with, as the whole body.
pub fn echo_reply(query: &[(String, String)]) -> Option<&str> {
    Fields(query).raw("zd_echo")
}

/// The event in a notification whose `Signature` header matched; none for notifications we do
/// not log calls from (`NOTIFY_IVR`, `SPEECH_RECOGNITION`, `SMS`).
///
/// # Errors
/// A missing `event`, `Signature` or required field, a signature that does not match, a value
/// of the wrong shape, or an event Zadarma is not known to send.
pub fn parse(
    pairs: &[(String, String)],
    signature: Option<&str>,
    account: &ZadarmaAccount,
    received_at: DateTime<Utc>,
) -> Result<Vec<LegEvent>, ProviderError> {
    let fields = Fields(pairs);
    let event = fields.required("event")?;
    let signed: &[&str] = match event.as_str() {
        "NOTIFY_START" | "NOTIFY_INTERNAL" | "NOTIFY_END" => &["caller_id", "called_did", "call_start"],
        "NOTIFY_ANSWER" => &["caller_id", "destination", "call_start"],
        "NOTIFY_OUT_START" | "NOTIFY_OUT_END" => &["internal", "destination", "call_start"],
        "NOTIFY_RECORD" => &["pbx_call_id", "call_id_with_rec"],
        "NOTIFY_IVR" | "SPEECH_RECOGNITION" | "SMS" => return Ok(Vec::new()),
        _ => return Err(ProviderError::UnknownEventType(event)),
    };
    verify(&fields, signed, signature, &account.secret)?;
    let call_start = || call_start(&fields, account.zone, received_at);
    let incoming = Some(Direction::Incoming);
    let outgoing = Some(Direction::Outgoing);
    let (at, direction, kind) = match event.as_str() {
        "NOTIFY_START" => (call_start()?, incoming, LegEventKind::Ringing),
        "NOTIFY_INTERNAL" => (received_at, incoming, LegEventKind::Ringing),
        "NOTIFY_ANSWER" => (received_at, incoming, LegEventKind::Answered),
        "NOTIFY_END" => (received_at, incoming, summary(&fields, call_start()?)?),
        "NOTIFY_OUT_START" => (call_start()?, outgoing, LegEventKind::Ringing),
        "NOTIFY_OUT_END" => (received_at, outgoing, summary(&fields, call_start()?)?),
        _ => (received_at, None, LegEventKind::Recording),
    };
    // Outgoing notifications name the client in `destination`, incoming ones in `caller_id`.
    let client_field = if direction == outgoing { "destination" } else { "caller_id" };
    let client = fields.text(client_field);
    let internal = client.as_deref().is_some_and(is_extension);
    let recording = match kind {
        LegEventKind::Recording => Some(fields.required("call_id_with_rec")?),
        LegEventKind::Summary { .. } if fields.text("is_recorded").as_deref() == Some("1") => {
            fields.text("call_id_with_rec")
        }
        _ => None,
    };
    Ok(vec![LegEvent {
        call_id: fields.required("pbx_call_id")?,
        leg_id: None,
        at,
        seq: None,
        direction,
        external_number: client.filter(|_| !internal),
        our_number: fields.text("called_did"),
        extension: fields.text("internal"),
        internal,
        location: None,
        kind,
        recording,
    }])
}

/// `Signature` = base64 of the lowercase hex HMAC-SHA1 of the listed fields, concatenated as
/// received (an absent field counts as empty, as in Zadarma's PHP library).
fn verify(
    fields: &Fields<'_>,
    signed: &[&str],
    signature: Option<&str>,
    secret: &SecretString,
) -> Result<(), ProviderError> {
    let signature = signature.ok_or(ProviderError::MissingSignature("Signature header"))?;
    let concat: String = signed.iter().map(|name| fields.raw(name).unwrap_or_default()).collect();
    if same_secret(sign(&concat, secret).as_bytes(), signature.as_bytes()) {
        Ok(())
    } else {
        Err(ProviderError::BadSignature)
    }
}

/// `base64(lowercase-hex(HMAC-SHA1(secret, concat)))`: how Zadarma signs notifications and API requests.
pub(crate) fn sign(concat: &str, secret: &SecretString) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret.expose_secret().as_bytes()).expect("HMAC takes any key length");
    mac.update(concat.as_bytes());
    BASE64.encode(lower_hex(&mac.finalize().into_bytes()))
}

fn summary(fields: &Fields<'_>, started_at: DateTime<Utc>) -> Result<LegEventKind, ProviderError> {
    let disposition = fields.required("disposition")?;
    let result = match disposition.as_str() {
        "answered" => CallResult::Answered,
        "busy" => CallResult::Busy,
        "cancel" => CallResult::Cancelled,
        "no answer" => CallResult::NoAnswer,
        "unallocated number" => CallResult::WrongNumber,
        // `failed` and the account limits (`no money`, `line limit`, …): the call never went out.
        _ => CallResult::Failed,
    };
    let duration: u32 = match fields.text("duration") {
        Some(duration) => parse_number("duration", &duration, "a whole number of seconds")?,
        None => 0,
    };
    let talk_seconds = if result == CallResult::Answered { duration } else { 0 };
    Ok(LegEventKind::Summary { result, talk_seconds, started_at: Some(started_at) })
}

/// `call_start` read in the account's zone; the receive time when it is missing, unreadable,
/// or later than the moment we received it (then the zone is wrong, and our clock is better).
fn call_start(fields: &Fields<'_>, zone: Tz, received_at: DateTime<Utc>) -> Result<DateTime<Utc>, ProviderError> {
    let Some(text) = fields.text("call_start") else {
        return Ok(received_at);
    };
    let parsed = NaiveDateTime::parse_from_str(&text, "%Y-%m-%d %H:%M:%S")
        .ok()
        .and_then(|local| zone.from_local_datetime(&local).earliest())
        .map(|instant| instant.with_timezone(&Utc));
    Ok(parsed.filter(|start| *start <= received_at + CLOCK_SKEW).unwrap_or(received_at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telephony::tests::pairs;
    use crate::telephony::tests::zadarma::{SECRET, account, at, signed};

    /// The documented formula spelt out step by step on a fixed example, independently of `sign`.
    #[test]
    fn a_signature_computed_by_the_documented_formula_is_accepted() {
        let concat = concat!("+79161234567", "+74951234567", "2024-03-01 12:00:00"); // caller_id + called_did + call_start
        let mut mac = Hmac::<Sha1>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(concat.as_bytes());
        let hex: String = mac.finalize().into_bytes().iter().map(|byte| format!("{byte:02x}")).collect();
        let expected = BASE64.encode(hex);
        assert_eq!(expected.len(), 56);
        let form = pairs(&[
            ("event", "NOTIFY_START"),
            ("call_start", "2024-03-01 12:00:00"),
            ("pbx_call_id", "in_1"),
            ("caller_id", "+79161234567"),
            ("called_did", "+74951234567"),
        ]);
        let events = parse(&form, Some(&expected), &account(), at(5)).unwrap();
        assert_eq!(events[0].external_number.as_deref(), Some("+79161234567"));
        assert_eq!(events[0].our_number.as_deref(), Some("+74951234567"));
    }

    #[test]
    fn a_tampered_field_or_a_missing_header_is_refused() {
        let (mut form, signature) = signed(&[
            ("event", "NOTIFY_OUT_START"),
            ("call_start", "2024-03-01 12:00:00"),
            ("pbx_call_id", "out_1"),
            ("internal", "101"),
            ("destination", "89161234567"),
        ]);
        assert!(parse(&form, Some(&signature), &account(), at(5)).is_ok());
        assert!(matches!(parse(&form, None, &account(), at(5)), Err(ProviderError::MissingSignature(_))));
        form[4].1 = "89160000000".to_owned();
        assert!(matches!(parse(&form, Some(&signature), &account(), at(5)), Err(ProviderError::BadSignature)));
    }

    #[test]
    fn zd_echo_is_answered_with_its_own_value() {
        assert_eq!(echo_reply(&pairs(&[("zd_echo", "a1b2c3")])), Some("a1b2c3"));
        assert_eq!(echo_reply(&pairs(&[])), None);
    }

    #[test]
    fn call_start_is_read_in_the_account_zone_and_distrusted_when_in_the_future() {
        let fields = pairs(&[("call_start", "2024-03-01 12:00:00")]);
        let moscow = call_start(&Fields(&fields), chrono_tz::Europe::Moscow, at(60)).unwrap();
        assert_eq!(moscow.to_rfc3339(), "2024-03-01T09:00:00+00:00");
        let received = "2024-03-01T09:30:00Z".parse::<DateTime<Utc>>().unwrap();
        let utc_reading = call_start(&Fields(&fields), chrono_tz::UTC, received).unwrap();
        assert_eq!(utc_reading, received, "12:00 UTC is after 09:30 UTC: the zone is wrong, the receive time wins");
        let garbled = pairs(&[("call_start", "1st of March")]);
        assert_eq!(call_start(&Fields(&garbled), chrono_tz::UTC, received).unwrap(), received);
    }

    #[test]
    fn ivr_sms_and_speech_notifications_are_acknowledged_without_events_and_unknown_ones_refused() {
        for event in ["NOTIFY_IVR", "SMS", "SPEECH_RECOGNITION"] {
            assert_eq!(parse(&pairs(&[("event", event)]), None, &account(), at(0)).unwrap(), vec![]);
        }
        let error = parse(&pairs(&[("event", "NOTIFY_TELEPORT")]), None, &account(), at(0)).unwrap_err();
        assert!(matches!(error, ProviderError::UnknownEventType(name) if name == "NOTIFY_TELEPORT"));
    }

    #[test]
    fn an_end_without_disposition_names_the_field() {
        let (form, signature) = signed(&[
            ("event", "NOTIFY_END"),
            ("call_start", "2024-03-01 12:00:00"),
            ("pbx_call_id", "in_1"),
            ("caller_id", "89161234567"),
            ("called_did", "74951234567"),
        ]);
        let error = parse(&form, Some(&signature), &account(), at(5)).unwrap_err();
        assert!(matches!(error, ProviderError::MissingField("disposition")), "{error}");
    }
}
