//! The journal of a delivery: what each finished step made, committed before the next step starts.
//!
//! The record is typed and versioned. A record this version cannot read stops the lead instead
//! of restarting it: a restarted lead would look its client up again, find the contact its own
//! earlier attempt made, and be wrongly judged a known client.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::domain::{CrmRef, EntityKind, HistoryEvent};
use crate::store::{Lease, Store, StoreError};

/// The version this build writes.
const VERSION: u32 = 2;

/// How far a lead's delivery got.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Progress {
    /// What the look-up found; once journaled, the lead is never decided again from scratch.
    pub found: Option<Found>,
    pub organization: Option<CrmRef>,
    pub contact: Option<CrmRef>,
    /// The deal or ticket the lead made, or the one it found.
    pub deal: Option<CrmRef>,
    pub note: Option<CrmRef>,
    /// The CRM's message template had nothing to write for this lead, so no note was sent.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub note_skipped: bool,
    /// The files attached so far, in the lead's order.
    #[serde(default)]
    pub files: Vec<CrmRef>,
    /// The create about to be sent when this was journaled: it may have happened.
    pub started: Option<Step>,
    /// A call from a number the CRM did not know waited for its contact to appear.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub parked: bool,
}

/// What the CRM knew of the client when the lead was decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "client", rename_all = "snake_case")]
// One per delivery attempt, read and written once per step: its size costs nothing worth a box.
#[expect(clippy::large_enum_variant)]
pub enum Found {
    New,
    Known {
        contact: CrmRef,
        organization: Option<CrmRef>,
        deal: Option<CrmRef>,
        /// The contact's responsible user, where the CRM says (a missed call is addressed to them).
        #[serde(default)]
        responsible: Option<CrmRef>,
    },
}

/// A create that changes the CRM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Organization,
    Contact,
    Deal,
    Note,
    File,
}

/// An earlier attempt's record that this version cannot read.
#[derive(Debug, thiserror::Error)]
#[error(
    "the journal of an earlier attempt cannot be read ({0}); the lead is stopped rather than delivered again from \
     the start, which could make a second contact or deal: check the CRM, then re-send or close the lead"
)]
pub struct Unreadable(String);

/// The record as stored.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    version: u32,
    progress: Progress,
}

pub struct Journal<'a> {
    store: &'a Store,
    lease: &'a Lease,
    extend_by: Duration,
    earlier: Option<serde_json::Value>,
    events: Vec<HistoryEvent>,
}

impl<'a> Journal<'a> {
    pub fn new(store: &'a Store, lease: &'a Lease, extend_by: Duration, earlier: Option<serde_json::Value>) -> Self {
        Self { store, lease, extend_by, earlier, events: Vec::new() }
    }

    /// What earlier attempts journaled, if they got that far.
    ///
    /// # Errors
    /// `Unreadable` when the record is of an unknown version or shape.
    pub fn earlier_progress(&self) -> Result<Option<Progress>, Unreadable> {
        self.earlier.as_ref().map(read).transpose()
    }

    /// Where CRM calls are recorded until the next step is journaled.
    pub fn calls(&mut self) -> &mut Vec<HistoryEvent> {
        &mut self.events
    }

    pub fn note(&mut self, event: HistoryEvent) {
        self.events.push(event);
    }

    /// Commits `progress` and the history since the last step, and extends the lease.
    ///
    /// # Errors
    /// `StoreError::LeaseLost` when another worker owns the lead now; the caller must stop.
    pub async fn record_step(&mut self, progress: &Progress) -> Result<(), StoreError> {
        let record = serde_json::to_value(Record { version: VERSION, progress: progress.clone() })
            .map_err(|error| StoreError::Corrupt(error.to_string()))?;
        self.store.record_step(self.lease, &record, &self.events, self.extend_by).await?;
        self.events.clear();
        Ok(())
    }

    /// The history not yet written, for the write that ends the attempt.
    pub fn take_events(&mut self) -> Vec<HistoryEvent> {
        std::mem::take(&mut self.events)
    }
}

fn read(stored: &serde_json::Value) -> Result<Progress, Unreadable> {
    match stored.get("version") {
        None => serde_json::from_value::<FirstVersion>(stored.clone())
            .map(Progress::from)
            .map_err(|error| Unreadable(format!("a record without a version that is not of version 1: {error}"))),
        Some(version) if version == VERSION => serde_json::from_value::<Record>(stored.clone())
            .map(|record| record.progress)
            .map_err(|error| Unreadable(format!("version {VERSION}: {error}"))),
        Some(other) => Err(Unreadable(format!("version {other}, which this build does not know"))),
    }
}

/// Version 1, written before the flows left the amoCRM connector: amoCRM's integer ids, no
/// version field. Leads caught mid-delivery by an upgrade resume from it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FirstVersion {
    found: Option<FirstFound>,
    contact_id: Option<i64>,
    deal_id: Option<i64>,
    note_id: Option<i64>,
    started: Option<Step>,
}

#[derive(Deserialize)]
#[serde(tag = "client", rename_all = "snake_case")]
enum FirstFound {
    New,
    KnownWithoutDeal { contact_id: i64 },
    KnownWithDeal { contact_id: i64, deal_id: i64 },
}

impl From<FirstVersion> for Progress {
    fn from(first: FirstVersion) -> Self {
        let record = |kind, id: i64| CrmRef::new(kind, id.to_string());
        let found = first.found.map(|found| match found {
            FirstFound::New => Found::New,
            FirstFound::KnownWithoutDeal { contact_id } => Found::Known {
                contact: record(EntityKind::Contact, contact_id),
                organization: None,
                deal: None,
                responsible: None,
            },
            FirstFound::KnownWithDeal { contact_id, deal_id } => Found::Known {
                contact: record(EntityKind::Contact, contact_id),
                organization: None,
                deal: Some(record(EntityKind::Deal, deal_id)),
                responsible: None,
            },
        });
        Self {
            found,
            organization: None,
            contact: first.contact_id.map(|id| record(EntityKind::Contact, id)),
            deal: first.deal_id.map(|id| record(EntityKind::Deal, id)),
            note: first.note_id.map(|id| record(EntityKind::Note, id)),
            note_skipped: false,
            files: Vec::new(),
            started: first.started,
            parked: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_record_reads_back_as_written() {
        let progress = Progress {
            found: Some(Found::New),
            contact: Some(CrmRef::new(EntityKind::Contact, "c-1")),
            deal: Some(CrmRef { kind: EntityKind::Ticket, id: "9".into(), number: Some("T-000009".into()) }),
            started: Some(Step::Note),
            ..Progress::default()
        };
        let stored = serde_json::to_value(Record { version: VERSION, progress: progress.clone() }).unwrap();
        assert_eq!(read(&stored).unwrap(), progress);
    }

    #[test]
    fn a_first_version_record_is_carried_over() {
        let stored = json!({
            "found": { "client": "known_with_deal", "contact_id": 5, "deal_id": 6 },
            "contact_id": 5, "deal_id": 6, "note_id": null, "started": "note",
        });
        let progress = read(&stored).unwrap();
        assert_eq!(progress.contact, Some(CrmRef::new(EntityKind::Contact, "5")));
        assert_eq!(progress.deal, Some(CrmRef::new(EntityKind::Deal, "6")));
        assert_eq!(progress.started, Some(Step::Note));
        assert!(matches!(progress.found, Some(Found::Known { deal: Some(_), .. })));
    }

    #[test]
    fn a_record_of_another_shape_or_version_is_unreadable_and_says_why() {
        let renamed = json!({ "version": 2, "progress": { "contact_ref": "5" } });
        assert!(read(&renamed).unwrap_err().to_string().contains("contact_ref"));
        let future = json!({ "version": 3, "progress": {} });
        assert!(read(&future).unwrap_err().to_string().contains("version 3"));
        let unknown = json!({ "found": { "client": "maybe" } });
        assert!(read(&unknown).unwrap_err().to_string().contains("cannot be read"));
    }
}
