//! A call as provider-neutral data: who calls whom, who rings and answers, how long they talk, how the PBX misbehaves.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// How long extensions ring before an answer or a give-up, unless a script says otherwise.
pub const DEFAULT_RING_SECONDS: u32 = 12;
/// How long a transferred call rings at its new party before it is answered.
pub const TRANSFER_RING_SECONDS: u32 = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// The client calls our public number.
    Incoming,
    /// An extension calls the client.
    Outgoing,
    /// One extension calls another; no client takes part.
    Internal,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FrontKind {
    Ivr,
    Queue,
}

/// The IVR or queue extension an incoming call meets before any phone rings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Front {
    pub kind: FrontKind,
    pub extension: String,
    /// How long the caller stays there before the phones ring.
    pub seconds: u32,
}

/// How a call ends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// `by` is the ringing extension that picks up; `None` on outgoing calls, where the client answers.
    Answered {
        by: Option<String>,
        talk_seconds: u32,
    },
    Busy,
    /// Nobody picked up before the PBX's own timeout.
    NoAnswer,
    /// The caller gave up while it rang.
    CallerHungUp,
}

/// The ways a call can stay unanswered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Missed {
    Busy,
    NoAnswer,
    CallerHungUp,
}

impl From<Missed> for Outcome {
    fn from(missed: Missed) -> Self {
        match missed {
            Missed::Busy => Outcome::Busy,
            Missed::NoAnswer => Outcome::NoAnswer,
            Missed::CallerHungUp => Outcome::CallerHungUp,
        }
    }
}

/// Who puts the phone down first on an answered call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Party {
    Caller,
    Callee,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferTarget {
    Extension(String),
    /// An external number, reached through a new outgoing leg.
    Number(String),
}

/// A blind transfer: after the answering extension has talked its share, the call moves on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    pub to: TransferTarget,
    pub ring_seconds: u32,
    pub talk_seconds: u32,
}

/// Deliveries out of order, as a receiver must survive them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reorder {
    /// The answered leg's hangup (Zadarma: the call's end) arrives right before its answer.
    HangupBeforeAnswer,
    /// Every request of the call, last first.
    Reversed,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Perturbations {
    /// Every request goes out twice in a row, byte for byte the same.
    #[serde(default)]
    pub resend_every_event: bool,
    #[serde(default)]
    pub reorder: Option<Reorder>,
}

/// One call. Numbers are written exactly as the PBX will send them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallScript {
    pub name: String,
    pub direction: Direction,
    /// The external party: the caller of an incoming call, the dialled number of an outgoing
    /// one; unused on internal calls.
    pub client: String,
    pub client_name: Option<String>,
    /// Our public number (DID).
    pub did: String,
    /// Outgoing and internal calls: the extension that dials.
    pub employee: Option<String>,
    /// Incoming: the extensions ringing in parallel; internal: the one called extension.
    pub ringing: Vec<String>,
    pub front: Option<Front>,
    pub ring_seconds: u32,
    pub outcome: Outcome,
    pub transfer: Option<Transfer>,
    pub recorded: bool,
    pub ended_by: Party,
    /// `None` dates the call so that it has just ended when it is rendered.
    pub started_at: Option<SystemTime>,
    #[serde(default)]
    pub perturbations: Perturbations,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScriptError {
    #[error("an incoming call needs at least one ringing extension")]
    NothingRings,
    #[error("extension {0} answers but does not ring")]
    AnswererDoesNotRing(String),
    #[error("an answered incoming or internal call must name the extension that answers")]
    NoAnswerer,
    #[error("the client answers an outgoing call, not extension {0}")]
    ExtensionAnswersOutgoing(String),
    #[error("an outgoing call rings the client, not extensions")]
    ExtensionsRingOnOutgoing,
    #[error("an outgoing or internal call needs the extension that dials")]
    NoEmployee,
    #[error("an internal call rings exactly one extension")]
    InternalRingsOne,
    #[error("only an answered call can be transferred")]
    TransferWithoutAnswer,
    #[error("an IVR or queue only stands in front of incoming calls")]
    FrontOnNonIncoming,
    #[error("hangup-before-answer needs an answered call")]
    NothingToReorder,
    /// Zadarma's outgoing calls have no answer event to put a hangup in front of.
    #[error("this provider sends no answer event for this call, so there is nothing to reorder")]
    NoAnswerEvent,
}

impl CallScript {
    fn new(direction: Direction, client: &str, did: &str, outcome: Outcome) -> Self {
        CallScript {
            name: String::new(),
            direction,
            client: client.to_owned(),
            client_name: None,
            did: did.to_owned(),
            employee: None,
            ringing: Vec::new(),
            front: None,
            ring_seconds: DEFAULT_RING_SECONDS,
            outcome,
            transfer: None,
            recorded: false,
            ended_by: Party::Caller,
            started_at: None,
            perturbations: Perturbations::default(),
        }
    }

    /// `client` calls `did`; `extension` rings and talks `talk_seconds`.
    pub fn incoming_answered(client: &str, did: &str, extension: &str, talk_seconds: u32) -> Self {
        let outcome = Outcome::Answered { by: Some(extension.to_owned()), talk_seconds };
        CallScript { ringing: vec![extension.to_owned()], ..Self::new(Direction::Incoming, client, did, outcome) }
    }

    /// `client` calls `did`; `extension` rings and nobody talks.
    pub fn incoming_missed(client: &str, did: &str, extension: &str, missed: Missed) -> Self {
        CallScript { ringing: vec![extension.to_owned()], ..Self::new(Direction::Incoming, client, did, missed.into()) }
    }

    /// `extension` calls `client` from our number `did`; the client talks `talk_seconds`.
    pub fn outgoing_answered(extension: &str, client: &str, did: &str, talk_seconds: u32) -> Self {
        let outcome = Outcome::Answered { by: None, talk_seconds };
        CallScript { employee: Some(extension.to_owned()), ..Self::new(Direction::Outgoing, client, did, outcome) }
    }

    /// `extension` calls `client` from our number `did`; the client does not talk.
    pub fn outgoing_unanswered(extension: &str, client: &str, did: &str, missed: Missed) -> Self {
        CallScript {
            employee: Some(extension.to_owned()),
            ..Self::new(Direction::Outgoing, client, did, missed.into())
        }
    }

    /// `from` calls `to` inside the PBX; `did` is the account's number, which an internal call does not use.
    pub fn internal(from: &str, to: &str, did: &str, outcome: Outcome) -> Self {
        let outcome = match outcome {
            Outcome::Answered { by: None, talk_seconds } => Outcome::Answered { by: Some(to.to_owned()), talk_seconds },
            other => other,
        };
        CallScript {
            employee: Some(from.to_owned()),
            ringing: vec![to.to_owned()],
            ..Self::new(Direction::Internal, "", did, outcome)
        }
    }

    pub fn named(self, name: &str) -> Self {
        CallScript { name: name.to_owned(), ..self }
    }

    pub fn client_named(self, name: &str) -> Self {
        CallScript { client_name: Some(name.to_owned()), ..self }
    }

    /// The caller spends `seconds` in IVR `extension` before the phones ring.
    pub fn via_ivr(self, extension: &str, seconds: u32) -> Self {
        CallScript { front: Some(Front { kind: FrontKind::Ivr, extension: extension.to_owned(), seconds }), ..self }
    }

    /// The caller waits `seconds` in queue `extension` before the phones ring.
    pub fn via_queue(self, extension: &str, seconds: u32) -> Self {
        CallScript { front: Some(Front { kind: FrontKind::Queue, extension: extension.to_owned(), seconds }), ..self }
    }

    /// More extensions ring at the same time as the ones already named.
    pub fn parallel_ringing(mut self, extensions: &[&str]) -> Self {
        for extension in extensions {
            if !self.ringing.iter().any(|ringing| ringing == extension) {
                self.ringing.push((*extension).to_owned());
            }
        }
        self
    }

    pub fn ring_for(self, seconds: u32) -> Self {
        CallScript { ring_seconds: seconds, ..self }
    }

    /// Changes the talk time of an answered call; other calls stay as they are.
    pub fn with_talk(mut self, seconds: u32) -> Self {
        if let Outcome::Answered { talk_seconds, .. } = &mut self.outcome {
            *talk_seconds = seconds;
        }
        self
    }

    pub fn recorded(self) -> Self {
        CallScript { recorded: true, ..self }
    }

    pub fn ended_by(self, party: Party) -> Self {
        CallScript { ended_by: party, ..self }
    }

    pub fn starting_at(self, at: SystemTime) -> Self {
        CallScript { started_at: Some(at), ..self }
    }

    /// After the answering extension has talked, it hands the call to `extension`, who talks `talk_seconds`.
    pub fn transfer_to_extension(self, extension: &str, talk_seconds: u32) -> Self {
        self.transfer(TransferTarget::Extension(extension.to_owned()), talk_seconds)
    }

    /// After the answering extension has talked, it hands the call to external `number`.
    pub fn transfer_to_number(self, number: &str, talk_seconds: u32) -> Self {
        self.transfer(TransferTarget::Number(number.to_owned()), talk_seconds)
    }

    fn transfer(self, to: TransferTarget, talk_seconds: u32) -> Self {
        CallScript { transfer: Some(Transfer { to, ring_seconds: TRANSFER_RING_SECONDS, talk_seconds }), ..self }
    }

    pub fn resend_every_event(mut self) -> Self {
        self.perturbations.resend_every_event = true;
        self
    }

    pub fn reorder(mut self, reorder: Reorder) -> Self {
        self.perturbations.reorder = Some(reorder);
        self
    }

    pub fn is_answered(&self) -> bool {
        matches!(self.outcome, Outcome::Answered { .. })
    }

    /// # Errors
    /// The first inconsistency found, such as an answering extension that never rang.
    pub fn validate(&self) -> Result<(), ScriptError> {
        if self.front.is_some() && self.direction != Direction::Incoming {
            return Err(ScriptError::FrontOnNonIncoming);
        }
        if self.transfer.is_some() && !self.is_answered() {
            return Err(ScriptError::TransferWithoutAnswer);
        }
        if self.perturbations.reorder == Some(Reorder::HangupBeforeAnswer) && !self.is_answered() {
            return Err(ScriptError::NothingToReorder);
        }
        match self.direction {
            Direction::Incoming => self.validate_ringing(),
            Direction::Outgoing => {
                self.employee.as_ref().ok_or(ScriptError::NoEmployee)?;
                if !self.ringing.is_empty() {
                    return Err(ScriptError::ExtensionsRingOnOutgoing);
                }
                match &self.outcome {
                    Outcome::Answered { by: Some(extension), .. } => {
                        Err(ScriptError::ExtensionAnswersOutgoing(extension.clone()))
                    }
                    _ => Ok(()),
                }
            }
            Direction::Internal => {
                self.employee.as_ref().ok_or(ScriptError::NoEmployee)?;
                if self.ringing.len() != 1 {
                    return Err(ScriptError::InternalRingsOne);
                }
                self.validate_ringing()
            }
        }
    }

    fn validate_ringing(&self) -> Result<(), ScriptError> {
        if self.ringing.is_empty() {
            return Err(ScriptError::NothingRings);
        }
        match &self.outcome {
            Outcome::Answered { by: None, .. } => Err(ScriptError::NoAnswerer),
            Outcome::Answered { by: Some(by), .. } if !self.ringing.contains(by) => {
                Err(ScriptError::AnswererDoesNotRing(by.clone()))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_ringing_adds_each_extension_once() {
        let script = CallScript::incoming_answered("79161234567", "74951234567", "101", 30)
            .parallel_ringing(&["102", "101", "103"]);
        assert_eq!(script.ringing, ["101", "102", "103"]);
        assert_eq!(script.validate(), Ok(()));
    }

    #[test]
    fn an_answering_extension_that_never_rang_is_refused() {
        let mut script = CallScript::incoming_answered("79161234567", "74951234567", "101", 30);
        script.outcome = Outcome::Answered { by: Some("105".to_owned()), talk_seconds: 30 };
        assert_eq!(script.validate(), Err(ScriptError::AnswererDoesNotRing("105".to_owned())));
    }

    #[test]
    fn an_unanswered_call_cannot_be_transferred_or_reordered_around_its_answer() {
        let missed = CallScript::outgoing_unanswered("101", "79161234567", "74951234567", Missed::Busy);
        assert_eq!(missed.clone().transfer_to_extension("102", 10).validate(), Err(ScriptError::TransferWithoutAnswer));
        assert_eq!(missed.reorder(Reorder::HangupBeforeAnswer).validate(), Err(ScriptError::NothingToReorder));
    }

    #[test]
    fn an_internal_answered_call_is_answered_by_the_called_extension() {
        let script = CallScript::internal("101", "102", "74951234567", Outcome::Answered { by: None, talk_seconds: 5 });
        assert_eq!(script.outcome, Outcome::Answered { by: Some("102".to_owned()), talk_seconds: 5 });
        assert_eq!(script.validate(), Ok(()));
    }
}
