//! The gateway's vocabulary: values parsed once at the edge and trusted everywhere inside.

pub mod email;
pub mod lead;
pub mod phone;

pub use email::Email;
pub use lead::{Decision, HistoryEvent, Lead, LeadId, LeadStatus, NewLead, Outcome, SourceId};
pub use phone::{Phone, PhoneRegion};
