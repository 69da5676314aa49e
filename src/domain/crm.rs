//! What a CRM record is to the gateway, whichever CRM keeps it: its kind, its id as text, its card; and how the configuration names a CRM user.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The kinds of record a delivery makes or touches. amoCRM calls a deal a "lead"; a company's own
/// CRM may keep tickets instead of deals and messages instead of notes. A logged call is a `Call`
/// even where the CRM keeps it as a note (amoCRM's `call_in`/`call_out`): it is found again by the
/// call's id, not by text, and a delivery that writes both must not confuse the two. A `User` is
/// someone made responsible for a record, never made by a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    Organization,
    Contact,
    Deal,
    Ticket,
    Note,
    Message,
    File,
    Call,
    User,
}

impl EntityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Organization => "organization",
            Self::Contact => "contact",
            Self::Deal => "deal",
            Self::Ticket => "ticket",
            Self::Note => "note",
            Self::Message => "message",
            Self::File => "file",
            Self::Call => "call",
            Self::User => "user",
        }
    }

    /// Deals and tickets are what later notes go to and what a sender asks about.
    pub fn is_deal(self) -> bool {
        matches!(self, Self::Deal | Self::Ticket)
    }
}

/// A record in the CRM: its kind and the id the CRM gave it, kept as text because CRMs number
/// records with integers, UUIDs or slugs alike. `number` is the name people use for it when
/// that differs from the id (a ticket's `T-000123`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrmRef {
    pub kind: EntityKind,
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
}

impl CrmRef {
    pub fn new(kind: EntityKind, id: impl Into<String>) -> Self {
        Self { kind, id: id.into(), number: None }
    }

    /// The id as JSON for senders: a number when the CRM numbers its records with integers
    /// (amoCRM's answers have always carried numbers), else the text.
    pub fn id_json(&self) -> serde_json::Value {
        match self.id.parse::<i64>() {
            Ok(number) if number.to_string() == self.id => number.into(),
            _ => self.id.clone().into(),
        }
    }
}

impl fmt::Display for CrmRef {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{} {}", self.kind.as_str(), self.id)
    }
}

/// A CRM user as the configuration names them: by the name people see in the CRM, or by the
/// CRM's id (`users = { "101" = "Анна Смирнова", "103" = 5000003 }` reads as `Name` and `Id`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum UserRef {
    Id(i64),
    Name(String),
}

impl fmt::Display for UserRef {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Id(id) => write!(formatter, "user {id}"),
            Self::Name(name) => write!(formatter, "user «{name}»"),
        }
    }
}

/// One record an outcome made or touched, with the link to its card for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entity {
    #[serde(flatten)]
    pub record: CrmRef,
    /// Made by this lead, rather than found and used (or moved).
    pub made: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_ids_reach_senders_as_numbers_and_others_as_text() {
        assert_eq!(CrmRef::new(EntityKind::Deal, "4242").id_json(), serde_json::json!(4242));
        assert_eq!(CrmRef::new(EntityKind::Ticket, "0042").id_json(), serde_json::json!("0042"));
        assert_eq!(CrmRef::new(EntityKind::Contact, "c-9").id_json(), serde_json::json!("c-9"));
    }

    #[test]
    fn users_are_configured_by_name_or_by_numeric_id() {
        let users: std::collections::BTreeMap<String, UserRef> =
            serde_json::from_value(serde_json::json!({ "101": "Анна Смирнова", "103": 5000003 })).unwrap();
        assert_eq!(users["101"], UserRef::Name("Анна Смирнова".into()));
        assert_eq!(users["103"], UserRef::Id(5000003));
        assert_eq!(users["101"].to_string(), "user «Анна Смирнова»");
    }

    #[test]
    fn an_entity_is_stored_flat_with_its_kind() {
        let entity = Entity {
            record: CrmRef { kind: EntityKind::Ticket, id: "7".into(), number: Some("T-000007".into()) },
            made: true,
            url: None,
        };
        let stored = serde_json::to_value(&entity).unwrap();
        assert_eq!(stored, serde_json::json!({ "kind": "ticket", "id": "7", "number": "T-000007", "made": true }));
        assert_eq!(serde_json::from_value::<Entity>(stored).unwrap(), entity);
    }
}
