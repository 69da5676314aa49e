//! Mango Office VPBX events (`events/call`, `events/summary`, `events/record/added`), checked against their `sign` and turned into `LegEvent`s.

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use super::{Fields, ProviderError, clean, is_extension, lower_hex, same_secret, timestamp_seconds};
use crate::domain::{CallResult, Direction, LegEvent, LegEventKind, LegLocation};

/// The VPBX credentials events are signed with.
#[derive(Debug, Clone)]
pub struct MangoAccount {
    pub api_key: SecretString,
    pub api_salt: SecretString,
}

/// The event in a Mango request. `event_path` is what Mango appended to our base URL
/// (`events/call`, `/events/summary`, …). Mango's "check connection" posts nothing and gets no
/// events; so do signed events we do not log calls from (`events/recording`, `events/dtmf`,
/// `events/sms`, `result/…`).
///
/// # Errors
/// A missing `vpbx_api_key`, `sign` or `json`, a key that is not ours, a signature that does not
/// match, an event without its ids or times, or a path Mango is not known to call.
pub fn parse(
    event_path: &str,
    pairs: &[(String, String)],
    account: &MangoAccount,
) -> Result<Vec<LegEvent>, ProviderError> {
    let fields = Fields(pairs);
    if fields.is_empty() {
        return Ok(Vec::new());
    }
    let path = event_path.trim_matches('/');
    let path = path.strip_prefix("events/").unwrap_or(path);
    let used = matches!(path, "call" | "summary" | "record/added");
    if !used && !matches!(path, "recording" | "dtmf" | "sms") && !path.starts_with("result/") {
        return Err(ProviderError::UnknownEventType(event_path.to_owned()));
    }
    let json = verify(&fields, account)?;
    match path {
        "call" => call(&decode(json)?),
        "summary" => summary(&decode(json)?),
        "record/added" => record_added(&decode(json)?),
        _ => Ok(Vec::new()),
    }
}

/// `sign` = lowercase hex SHA-256 of key + json + salt, over `json` exactly as received.
fn verify<'a>(fields: &Fields<'a>, account: &MangoAccount) -> Result<&'a str, ProviderError> {
    let key = fields.raw("vpbx_api_key").ok_or(ProviderError::MissingField("vpbx_api_key"))?;
    let sign = fields.raw("sign").ok_or(ProviderError::MissingSignature("sign field"))?;
    let json = fields.raw("json").ok_or(ProviderError::MissingField("json"))?;
    let our_key = account.api_key.expose_secret();
    if !same_secret(our_key.as_bytes(), key.as_bytes()) {
        return Err(ProviderError::ForeignApiKey);
    }
    if same_secret(account.sign(json).as_bytes(), sign.as_bytes()) {
        Ok(json)
    } else {
        Err(ProviderError::BadSignature)
    }
}

impl MangoAccount {
    /// Lowercase hex SHA-256 of key + json + salt: how Mango signs events and API requests.
    pub fn sign(&self, json: &str) -> String {
        let digest = Sha256::new()
            .chain_update(self.api_key.expose_secret().as_bytes())
            .chain_update(json.as_bytes())
            .chain_update(self.api_salt.expose_secret().as_bytes())
            .finalize();
        lower_hex(&digest)
    }
}

fn decode<T: DeserializeOwned>(json: &str) -> Result<T, ProviderError> {
    serde_json::from_str(json).map_err(ProviderError::InvalidJson)
}

/// Mango writes ids and numbers as JSON strings or numbers, depending on the field and the year.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Scalar {
    Integer(i64),
    Text(String),
}

impl Scalar {
    fn text(&self) -> Option<String> {
        match self {
            Self::Integer(number) => Some(number.to_string()),
            Self::Text(text) => clean(text),
        }
    }

    fn integer(&self, field: &'static str) -> Result<i64, ProviderError> {
        match self {
            Self::Integer(number) => Ok(*number),
            Self::Text(text) => text.trim().parse().map_err(|_| ProviderError::InvalidField {
                field,
                value: text.clone(),
                expected: "a whole number",
            }),
        }
    }
}

fn text(value: Option<&Scalar>) -> Option<String> {
    value.and_then(Scalar::text)
}

fn required_text(value: Option<&Scalar>, field: &'static str) -> Result<String, ProviderError> {
    text(value).ok_or(ProviderError::MissingField(field))
}

fn required_time(value: Option<&Scalar>, field: &'static str) -> Result<DateTime<Utc>, ProviderError> {
    timestamp_seconds(field, value.ok_or(ProviderError::MissingField(field))?.integer(field)?)
}

#[derive(Debug, Default, Deserialize)]
struct Party {
    extension: Option<Scalar>,
    number: Option<Scalar>,
    line_number: Option<Scalar>,
}

impl Party {
    /// An extension of ours: named as one, or a SIP address of one in `number`.
    fn is_ours(&self) -> bool {
        text(self.extension.as_ref()).is_some() || text(self.number.as_ref()).as_deref().is_some_and(is_extension)
    }
}

#[derive(Debug, Deserialize)]
struct CallEvent {
    entry_id: Option<Scalar>,
    call_id: Option<Scalar>,
    timestamp: Option<Scalar>,
    seq: Option<Scalar>,
    call_state: Option<String>,
    location: Option<String>,
    from: Option<Party>,
    to: Option<Party>,
    disconnect_reason: Option<Scalar>,
}

fn call(event: &CallEvent) -> Result<Vec<LegEvent>, ProviderError> {
    let kind = match event.call_state.as_deref() {
        Some("Appeared") => LegEventKind::Ringing,
        Some("Connected") => LegEventKind::Answered,
        Some("Disconnected") => LegEventKind::HungUp {
            result: disconnect_result(event.disconnect_reason.as_ref())?,
            duration_seconds: 0,
            bridged: None,
        },
        Some("OnHold") => return Ok(Vec::new()),
        Some(other) => {
            return Err(ProviderError::InvalidField {
                field: "call_state",
                value: other.to_owned(),
                expected: "Appeared, Connected, OnHold or Disconnected",
            });
        }
        None => return Err(ProviderError::MissingField("call_state")),
    };
    let nobody = Party::default();
    let (from, to) = (event.from.as_ref().unwrap_or(&nobody), event.to.as_ref().unwrap_or(&nobody));
    let seq = event.seq.as_ref().map(|seq| seq.integer("seq")).transpose()?;
    let (direction, internal) = match (from.is_ours(), to.is_ours()) {
        (true, true) => (None, true),
        (true, false) => (Some(Direction::Outgoing), false),
        (false, _) => (Some(Direction::Incoming), false),
    };
    let (client, employee) = if direction == Some(Direction::Outgoing) { (to, from) } else { (from, to) };
    Ok(vec![LegEvent {
        call_id: required_text(event.entry_id.as_ref(), "entry_id")?,
        leg_id: text(event.call_id.as_ref()),
        at: required_time(event.timestamp.as_ref(), "timestamp")?,
        seq: seq.and_then(|seq| u64::try_from(seq).ok()),
        direction,
        external_number: if internal { None } else { text(client.number.as_ref()) },
        our_number: text(to.line_number.as_ref()),
        extension: text(employee.extension.as_ref()),
        internal,
        location: match event.location.as_deref() {
            Some("ivr") => Some(LegLocation::Ivr),
            Some("queue") => Some(LegLocation::Queue),
            Some("abonent") => Some(LegLocation::Employee),
            _ => None,
        },
        kind,
        recording: None,
    }])
}

#[derive(Debug, Deserialize)]
struct Summary {
    entry_id: Option<Scalar>,
    call_direction: Option<Scalar>,
    from: Option<Party>,
    to: Option<Party>,
    line_number: Option<Scalar>,
    create_time: Option<Scalar>,
    talk_time: Option<Scalar>,
    end_time: Option<Scalar>,
    disconnect_reason: Option<Scalar>,
}

/// `entry_result` is not read: public sources disagree on which value means "talked". A call was
/// answered when it has a `talk_time` (the moment of answer, 0 when there was none).
fn summary(event: &Summary) -> Result<Vec<LegEvent>, ProviderError> {
    let direction_code = event.call_direction.as_ref().ok_or(ProviderError::MissingField("call_direction"))?;
    let (direction, internal) = match direction_code.integer("call_direction")? {
        0 => (None, true),
        1 => (Some(Direction::Incoming), false),
        2 => (Some(Direction::Outgoing), false),
        other => {
            return Err(ProviderError::InvalidField {
                field: "call_direction",
                value: other.to_string(),
                expected: "0 (internal), 1 (incoming) or 2 (outgoing)",
            });
        }
    };
    let end = required_time(event.end_time.as_ref(), "end_time")?;
    let answered_at = match &event.talk_time {
        Some(talk_time) if talk_time.integer("talk_time")? > 0 => Some(required_time(Some(talk_time), "talk_time")?),
        _ => None,
    };
    let result = match answered_at {
        Some(_) => CallResult::Answered,
        None => match disconnect_result(event.disconnect_reason.as_ref())? {
            CallResult::Answered => CallResult::NoAnswer,
            other => other,
        },
    };
    let talk_seconds = answered_at.map_or(0, |answered| u32::try_from((end - answered).num_seconds()).unwrap_or(0));
    let started_at = event.create_time.as_ref().map(|time| required_time(Some(time), "create_time")).transpose()?;
    let nobody = Party::default();
    let (from, to) = (event.from.as_ref().unwrap_or(&nobody), event.to.as_ref().unwrap_or(&nobody));
    let (client, employee) = if direction == Some(Direction::Outgoing) { (to, from) } else { (from, to) };
    Ok(vec![LegEvent {
        call_id: required_text(event.entry_id.as_ref(), "entry_id")?,
        leg_id: None,
        at: end,
        seq: None,
        direction,
        external_number: if internal { None } else { text(client.number.as_ref()) },
        our_number: text(event.line_number.as_ref()),
        extension: text(employee.extension.as_ref()),
        internal,
        location: None,
        kind: LegEventKind::Summary { result, talk_seconds, started_at },
        recording: None,
    }])
}

#[derive(Debug, Deserialize)]
struct RecordAdded {
    entry_id: Option<Scalar>,
    recording_id: Option<Scalar>,
    timestamp: Option<Scalar>,
}

fn record_added(event: &RecordAdded) -> Result<Vec<LegEvent>, ProviderError> {
    Ok(vec![LegEvent {
        call_id: required_text(event.entry_id.as_ref(), "entry_id")?,
        leg_id: None,
        at: required_time(event.timestamp.as_ref(), "timestamp")?,
        seq: None,
        direction: None,
        external_number: None,
        our_number: None,
        extension: None,
        internal: false,
        location: None,
        kind: LegEventKind::Recording,
        recording: Some(required_text(event.recording_id.as_ref(), "recording_id")?),
    }])
}

/// Mango's disconnect reasons as results (facts §3.4, §5.2). Normal clearing (1100, 1120) says
/// nothing about whether anyone talked; for a whole call the summary's `talk_time` decides.
fn disconnect_result(reason: Option<&Scalar>) -> Result<CallResult, ProviderError> {
    let Some(reason) = reason else { return Ok(CallResult::NoAnswer) };
    Ok(match reason.integer("disconnect_reason")? {
        1100 | 1120 => CallResult::Answered,
        1110 => CallResult::Cancelled,
        1111 | 1163 | 1164 => CallResult::NoAnswer,
        1121 | 1122 => CallResult::Busy,
        1133 => CallResult::WrongNumber,
        _ => CallResult::Failed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telephony::tests::mango::{KEY, account, form};
    use crate::telephony::tests::pairs;

    const SUMMARY: &str = r#"{"entry_id":"MTAx","call_direction":1,"from":{"number":"89161234567"},"to":{"extension":"101"},"line_number":"74951234567","create_time":1709283600,"forward_time":1709283601,"talk_time":1709283605,"end_time":1709283665,"entry_result":1,"disconnect_reason":1110}"#;

    #[test]
    fn a_sign_computed_by_the_documented_formula_is_accepted() {
        let events = parse("events/summary", &form(SUMMARY), &account()).unwrap();
        assert_eq!(
            events[0].kind,
            LegEventKind::Summary {
                result: CallResult::Answered,
                talk_seconds: 60,
                started_at: DateTime::from_timestamp(1_709_283_600, 0)
            }
        );
        assert_eq!(events[0].external_number.as_deref(), Some("89161234567"));
    }

    #[test]
    fn a_tampered_json_a_missing_sign_or_a_foreign_key_is_refused() {
        let mut tampered = form(SUMMARY);
        tampered[2].1 = SUMMARY.replace("89161234567", "89160000000");
        assert!(matches!(parse("events/summary", &tampered, &account()), Err(ProviderError::BadSignature)));
        let unsigned: Vec<_> = form(SUMMARY).into_iter().filter(|(name, _)| name != "sign").collect();
        assert!(matches!(parse("events/summary", &unsigned, &account()), Err(ProviderError::MissingSignature(_))));
        let mut foreign = form(SUMMARY);
        foreign[0].1 = format!("{KEY}x");
        assert!(matches!(parse("events/summary", &foreign, &account()), Err(ProviderError::ForeignApiKey)));
    }

    #[test]
    fn the_connection_check_and_unused_events_give_no_events_and_unknown_paths_are_refused() {
        assert_eq!(parse("/events/call", &[], &account()).unwrap(), vec![]);
        for path in ["events/recording", "events/dtmf", "events/sms", "result/callback"] {
            assert_eq!(parse(path, &form(r#"{"entry_id":"MTAx"}"#), &account()).unwrap(), vec![], "{path}");
        }
        let error = parse("events/teleport", &form("{}"), &account()).unwrap_err();
        assert!(matches!(error, ProviderError::UnknownEventType(path) if path == "events/teleport"));
    }

    #[test]
    fn an_event_without_its_ids_or_of_another_shape_says_what_is_wrong() {
        let error = parse("events/call", &form(r#"{"call_state":"Appeared","timestamp":1}"#), &account()).unwrap_err();
        assert!(matches!(error, ProviderError::MissingField("entry_id")), "{error}");
        let error = parse("events/summary", &form(r#"{"entry_id":"MTAx","end_time":1}"#), &account()).unwrap_err();
        assert!(matches!(error, ProviderError::MissingField("call_direction")), "{error}");
        let error = parse("events/call", &form("[1, 2]"), &account()).unwrap_err();
        assert!(matches!(error, ProviderError::InvalidJson(_)), "{error}");
        let missing_json = pairs(&[("vpbx_api_key", KEY), ("sign", "00")]);
        assert!(matches!(parse("events/call", &missing_json, &account()), Err(ProviderError::MissingField("json"))));
    }

    #[test]
    fn ids_and_times_sent_as_strings_are_read_like_numbers() {
        let json = r#"{"entry_id":12345,"call_id":"l1","timestamp":"1709283600","seq":"4","call_state":"OnHold"}"#;
        assert_eq!(parse("events/call", &form(json), &account()).unwrap(), vec![]);
        let json = r#"{"entry_id":12345,"call_id":"l1","timestamp":"1709283600","seq":"4","call_state":"Appeared","location":"queue","from":{"number":"89161234567"},"to":{"line_number":"74951234567"}}"#;
        let event = &parse("events/call", &form(json), &account()).unwrap()[0];
        assert_eq!((event.call_id.as_str(), event.seq, event.location), ("12345", Some(4), Some(LegLocation::Queue)));
        assert_eq!(event.at.timestamp(), 1_709_283_600);
    }
}
