//! Phone calls from a cloud PBX: one provider event as `LegEvent`, one assembled conversation as `Call`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Phone;

/// The cloud PBX a call came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    Telphin,
    Zadarma,
    Mango,
}

impl Provider {
    /// The provider's name as configured (`provider = "telphin"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Telphin => "telphin",
            Self::Zadarma => "zadarma",
            Self::Mango => "mango",
        }
    }
}

/// Who started the call: the client (`Incoming`) or an employee (`Outgoing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Incoming,
    Outgoing,
}

/// Where in the PBX a leg rang, when the provider says so (Mango's `location`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LegLocation {
    Ivr,
    Queue,
    Employee,
}

/// One event as a provider reported it, normalized but not yet interpreted: the assembler folds
/// a call's events, repeats and all, into one `Call`. Stored as JSON until the call is complete.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LegEvent {
    /// The whole call: Telphin `CallID`, Zadarma `pbx_call_id`, Mango `entry_id`.
    pub call_id: String,
    /// One leg of it: Telphin `SubCallID`, Mango `call_id`; Zadarma has none.
    pub leg_id: Option<String>,
    /// When it happened by the provider's clock (or when it was received, where the provider
    /// sends no usable time).
    pub at: DateTime<Utc>,
    /// Mango's per-call counter, which orders events within one second.
    pub seq: Option<u64>,
    pub direction: Option<Direction>,
    /// The client's number exactly as sent, before any normalization.
    pub external_number: Option<String>,
    /// Our public number (DID) the call arrived on or went out from, as sent.
    pub our_number: Option<String>,
    /// The employee's extension on this leg.
    pub extension: Option<String>,
    /// Both parties of this leg are our extensions (a call between colleagues, or a consultation
    /// during a transfer).
    pub internal: bool,
    pub location: Option<LegLocation>,
    pub kind: LegEventKind,
    /// The provider's recording id (Telphin `RecID`, Zadarma `call_id_with_rec`, Mango `recording_id`).
    pub recording: Option<String>,
}

/// What happened to the leg.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LegEventKind {
    Ringing,
    Answered,
    /// The leg ended. `bridged` is Telphin's verdict for the whole call, sent only by IVR and
    /// queue extensions.
    HungUp {
        result: CallResult,
        duration_seconds: u32,
        bridged: Option<bool>,
    },
    /// The provider's final word on the whole call (Zadarma `NOTIFY_END`/`NOTIFY_OUT_END`, Mango
    /// `events/summary`); Telphin sends none.
    Summary {
        result: CallResult,
        talk_seconds: u32,
        started_at: Option<DateTime<Utc>>,
    },
    /// A recording of the call is ready; its id is in `LegEvent::recording`.
    Recording,
}

/// How a call or a leg ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallResult {
    Answered,
    Busy,
    NoAnswer,
    /// The caller gave up before anyone answered.
    Cancelled,
    WrongNumber,
    Failed,
}

impl LegEvent {
    /// A leg is an extension's part of the call: the provider's leg id, else the extension.
    pub fn leg_key(&self) -> Option<&str> {
        self.leg_id.as_deref().or(self.extension.as_deref())
    }

    /// Whether the PBX says the call was answered somewhere (Telphin's IVR and queue hangups).
    pub fn bridged(&self) -> Option<bool> {
        match self.kind {
            LegEventKind::HungUp { bridged, .. } => bridged,
            _ => None,
        }
    }
}

/// One conversation, or one attempt at it, as a CRM should log it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Call {
    pub provider: Provider,
    pub call_id: String,
    pub direction: Direction,
    /// The client's number, normalized.
    pub client: Phone,
    /// Our DID, when the provider sent one that is a phone number.
    pub our_number: Option<Phone>,
    /// The extension that took the call (incoming) or made it (outgoing and answered).
    pub answered_by: Option<String>,
    /// Every employee extension that rang, answered or dialled, in order, without repeats.
    pub extensions: Vec<String>,
    pub result: CallResult,
    /// Seconds of conversation; 0 when nobody answered.
    pub talk_seconds: u32,
    /// Seconds the client waited: until the answer, or until the end of a missed call.
    pub wait_seconds: u32,
    pub recording: Option<String>,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leg_event_survives_a_round_trip_through_json() {
        let event = LegEvent {
            call_id: "c1".to_owned(),
            leg_id: Some("l1".to_owned()),
            at: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            seq: Some(3),
            direction: Some(Direction::Incoming),
            external_number: Some("89991234567".to_owned()),
            our_number: Some("74951234567".to_owned()),
            extension: Some("101".to_owned()),
            internal: false,
            location: Some(LegLocation::Employee),
            kind: LegEventKind::HungUp { result: CallResult::NoAnswer, duration_seconds: 12, bridged: Some(false) },
            recording: None,
        };
        let json = serde_json::to_string(&event).unwrap();
        assert!(json.contains(r#""type":"hung_up""#), "{json}");
        assert!(json.contains(r#""result":"no_answer""#), "{json}");
        assert_eq!(serde_json::from_str::<LegEvent>(&json).unwrap(), event);
    }
}
