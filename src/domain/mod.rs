//! The gateway's vocabulary: values parsed once at the edge and trusted everywhere inside.

pub mod address;
pub mod advertiser;
pub mod advertiser_file;
pub mod advertiser_form;
pub mod call;
pub mod call_log;
pub mod crm;
pub mod deal;
pub mod document;
pub mod email;
pub mod lead;
pub mod operator;
pub mod phone;
pub mod text;

pub use call::{Call, CallResult, Direction, LegEvent, LegEventKind, LegLocation, Provider};
pub use call_log::{AutoContact, AutoContactKind, AutoDeal, CallNote, CallStatus};
pub use crm::{CrmRef, Entity, EntityKind, UserRef};
pub use deal::{Attachment, CrmField, DealSpec, DuplicateCheck};
pub use email::Email;
pub use lead::{Decision, HistoryEvent, Lead, LeadId, LeadStatus, NewLead, Outcome, Routing, SourceId};
pub use phone::{Phone, PhoneRegion};
