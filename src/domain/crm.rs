//! What a CRM record is to the gateway, whichever CRM keeps it: its kind, its id as text, its card.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The kinds of record a delivery makes or touches. amoCRM calls a deal a "lead"; a company's own
/// CRM may keep tickets instead of deals and messages instead of notes.
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

/// A CRM user as the configuration names them: by name as people see it, or by id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum UserRef {
    Name(String),
    Id(i64),
}

impl fmt::Display for UserRef {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name(name) => write!(formatter, "«{name}»"),
            Self::Id(id) => write!(formatter, "id {id}"),
        }
    }
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
