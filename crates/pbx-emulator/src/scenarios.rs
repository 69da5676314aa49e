//! The named calls: the seed's ten Telphin ↔ amoCRM situations, and a few shapes the seed only implies.

use serde::Serialize;

use crate::script::{CallScript, Missed, Outcome};

/// Our public number in every scenario.
pub const SANDBOX_DID: &str = "74951234567";
/// The client of every "known" scenario: seed the CRM with this number before playing one.
pub const KNOWN_CLIENT: &str = "79161234567";
/// The extension that takes or makes the call.
pub const MANAGER: &str = "101";
/// The IVR in front of the seed's incoming calls.
pub const IVR: &str = "099";
/// The queue of `incoming-queue-no-answer`.
pub const QUEUE: &str = "098";

/// A named call a test or a person can play. Unknown clients differ per scenario, so
/// contacts created by one scenario never make another's client known.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Scenario {
    pub name: &'static str,
    /// The situation's number in the seed (Telphin's amoCRM guide, "Сценарии работы"), if it is one.
    pub seed_number: Option<u8>,
    /// The client's number is in the CRM before the call.
    pub client_known: bool,
    /// The seed's condition on creating contacts for unknown numbers; `None` when it does not matter.
    pub auto_contact: Option<bool>,
    pub description: &'static str,
    #[serde(skip)]
    build: fn() -> CallScript,
}

impl Scenario {
    /// A fresh script; its ids are drawn when it is rendered.
    pub fn script(&self) -> CallScript {
        (self.build)().named(self.name)
    }

    /// The scenario called `name`.
    pub fn find(name: &str) -> Option<Scenario> {
        SCENARIOS.iter().copied().find(|scenario| scenario.name == name)
    }

    /// Every scenario, the seed's ten first and in the seed's order.
    pub fn all() -> &'static [Scenario] {
        &SCENARIOS
    }

    /// The seed's ten only.
    pub fn seed() -> impl Iterator<Item = Scenario> {
        SCENARIOS.iter().copied().filter(|scenario| scenario.seed_number.is_some())
    }
}

fn incoming_answered(client: &str) -> CallScript {
    CallScript::incoming_answered(client, SANDBOX_DID, MANAGER, 95).via_ivr(IVR, 5).recorded()
}

fn incoming_missed(client: &str) -> CallScript {
    CallScript::incoming_missed(client, SANDBOX_DID, MANAGER, Missed::CallerHungUp).via_ivr(IVR, 5).ring_for(25)
}

fn outgoing_answered(client: &str) -> CallScript {
    CallScript::outgoing_answered(MANAGER, client, SANDBOX_DID, 140).ring_for(8).recorded()
}

const SCENARIOS: [Scenario; 17] = [
    Scenario {
        name: "incoming-known-answered",
        seed_number: Some(1),
        client_known: true,
        auto_contact: None,
        description: "a known client calls through IVR 099; 101 answers and talks 95 s; recorded",
        build: || incoming_answered(KNOWN_CLIENT),
    },
    Scenario {
        name: "incoming-unknown-answered",
        seed_number: Some(2),
        client_known: false,
        auto_contact: Some(true),
        description: "an unknown number calls through IVR 099; 101 answers and talks 95 s; recorded",
        build: || incoming_answered("79035550102"),
    },
    Scenario {
        name: "incoming-unknown-answered-no-autocontact",
        seed_number: Some(3),
        client_known: false,
        auto_contact: Some(false),
        description: "as incoming-unknown-answered, from another unknown number (the CRM side differs)",
        build: || incoming_answered("79035550103"),
    },
    Scenario {
        name: "incoming-known-missed",
        seed_number: Some(4),
        client_known: true,
        auto_contact: None,
        description: "a known client calls through IVR 099; 101 rings 25 s; the client gives up",
        build: || incoming_missed(KNOWN_CLIENT),
    },
    Scenario {
        name: "incoming-unknown-missed",
        seed_number: Some(5),
        client_known: false,
        auto_contact: Some(true),
        description: "an unknown number calls through IVR 099; 101 rings 25 s; the caller gives up",
        build: || incoming_missed("79035550105"),
    },
    Scenario {
        name: "outgoing-known-answered",
        seed_number: Some(6),
        client_known: true,
        auto_contact: None,
        description: "101 calls a known client; it rings 8 s; they talk 140 s; recorded",
        build: || outgoing_answered(KNOWN_CLIENT),
    },
    Scenario {
        name: "outgoing-unknown-answered",
        seed_number: Some(7),
        client_known: false,
        auto_contact: Some(true),
        description: "101 calls an unknown number; it rings 8 s; they talk 140 s; recorded",
        build: || outgoing_answered("79035550107"),
    },
    Scenario {
        name: "outgoing-unknown-answered-no-autocontact",
        seed_number: Some(8),
        client_known: false,
        auto_contact: Some(false),
        description: "as outgoing-unknown-answered, to another unknown number (the CRM side differs)",
        build: || outgoing_answered("79035550108"),
    },
    Scenario {
        name: "outgoing-known-unanswered",
        seed_number: Some(9),
        client_known: true,
        auto_contact: None,
        description: "101 calls a known client; nobody answers within 30 s",
        build: || CallScript::outgoing_unanswered(MANAGER, KNOWN_CLIENT, SANDBOX_DID, Missed::NoAnswer).ring_for(30),
    },
    Scenario {
        name: "outgoing-unknown-unanswered",
        seed_number: Some(10),
        client_known: false,
        auto_contact: Some(true),
        description: "101 calls an unknown number; the line is busy",
        build: || CallScript::outgoing_unanswered(MANAGER, "79035550110", SANDBOX_DID, Missed::Busy),
    },
    Scenario {
        name: "incoming-direct-answered",
        seed_number: None,
        client_known: true,
        auto_contact: None,
        description: "a known client calls; 101 rings without an IVR, answers and talks 45 s",
        build: || CallScript::incoming_answered(KNOWN_CLIENT, SANDBOX_DID, MANAGER, 45),
    },
    Scenario {
        name: "incoming-parallel-answered",
        seed_number: None,
        client_known: false,
        auto_contact: None,
        description: "through IVR 099, 101, 102 and 103 ring together; 102 answers and talks 60 s; recorded",
        build: || {
            let mut script = CallScript::incoming_answered("79035550112", SANDBOX_DID, "102", 60).via_ivr(IVR, 5);
            script.ringing = vec!["101".to_owned(), "102".to_owned(), "103".to_owned()];
            script.recorded()
        },
    },
    Scenario {
        name: "incoming-queue-no-answer",
        seed_number: None,
        client_known: false,
        auto_contact: None,
        description: "after 20 s in queue 098, 101 and 102 ring for 30 s and the PBX gives up",
        build: || {
            CallScript::incoming_missed("79035550113", SANDBOX_DID, MANAGER, Missed::NoAnswer)
                .via_queue(QUEUE, 20)
                .parallel_ringing(&["102"])
                .ring_for(30)
        },
    },
    Scenario {
        name: "incoming-busy",
        seed_number: None,
        client_known: false,
        auto_contact: None,
        description: "an unknown number calls 101 directly; 101 is busy",
        build: || CallScript::incoming_missed("79035550114", SANDBOX_DID, MANAGER, Missed::Busy),
    },
    Scenario {
        name: "incoming-transfer-to-extension",
        seed_number: None,
        client_known: true,
        auto_contact: None,
        description: "through IVR 099, 101 answers, talks 30 s and transfers to 103, who talks 60 s; recorded",
        build: || incoming_answered(KNOWN_CLIENT).transfer_to_extension("103", 60).with_talk(30),
    },
    Scenario {
        name: "incoming-transfer-to-number",
        seed_number: None,
        client_known: true,
        auto_contact: None,
        description: "101 answers, talks 20 s and transfers to external 79857654321, who talks 40 s",
        build: || {
            CallScript::incoming_answered(KNOWN_CLIENT, SANDBOX_DID, MANAGER, 20).transfer_to_number("79857654321", 40)
        },
    },
    Scenario {
        name: "internal-call",
        seed_number: None,
        client_known: false,
        auto_contact: None,
        description: "101 calls 102 inside the PBX; they talk 30 s (calls between extensions are not sent to the CRM)",
        build: || {
            CallScript::internal(MANAGER, "102", SANDBOX_DID, Outcome::Answered { by: None, talk_seconds: 30 })
                .ring_for(4)
        },
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scenario_is_a_valid_script_with_a_unique_name() {
        let mut names: Vec<&str> = Scenario::all().iter().map(|scenario| scenario.name).collect();
        for scenario in Scenario::all() {
            assert_eq!(scenario.script().validate(), Ok(()), "{}", scenario.name);
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Scenario::all().len());
    }

    #[test]
    fn the_seed_has_ten_numbered_scenarios_in_order() {
        let numbers: Vec<u8> = Scenario::seed().filter_map(|scenario| scenario.seed_number).collect();
        assert_eq!(numbers, (1..=10).collect::<Vec<u8>>());
    }
}
