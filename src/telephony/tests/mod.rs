//! The seed's call situations per provider: documented payloads parsed and assembled end to end.

pub(crate) mod mango;
pub(crate) mod telphin;
pub(crate) mod zadarma;

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Assembly, assemble};
use crate::domain::{Call, LegEvent, PhoneRegion, Provider};

/// How long Telphin's calls must stay quiet before they count as finished, in these tests.
pub(crate) const FINISH_AFTER: Duration = Duration::from_secs(30);

/// The client's number as the providers send it, and as E.164.
pub(crate) const CLIENT: &str = "89161234567";
pub(crate) const CLIENT_E164: &str = "+79161234567";
pub(crate) const DID: &str = "74951234567";
pub(crate) const DID_E164: &str = "+74951234567";

pub(crate) fn pairs(fields: &[(&str, &str)]) -> Vec<(String, String)> {
    fields.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect()
}

/// 101 and 102 are mapped to CRM users; 103 is not.
pub(crate) fn mapped(extension: &str) -> bool {
    matches!(extension, "101" | "102")
}

pub(crate) fn run(provider: Provider, events: &[LegEvent], now: DateTime<Utc>) -> Assembly {
    assemble(provider, events, PhoneRegion::RUSSIA, now, FINISH_AFTER, mapped)
}

pub(crate) fn complete(assembly: Assembly) -> Call {
    match assembly {
        Assembly::Complete(call) => *call,
        other => panic!("expected a complete call, got {other:?}"),
    }
}

/// Every event arrives twice, the repeats after the originals.
pub(crate) fn resent(events: &[LegEvent]) -> Vec<LegEvent> {
    events.iter().chain(events.iter()).cloned().collect()
}

pub(crate) fn reversed(events: &[LegEvent]) -> Vec<LegEvent> {
    events.iter().rev().cloned().collect()
}
