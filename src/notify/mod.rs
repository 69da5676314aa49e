//! Report: tell the team, the sender and the visitor how a lead ended.

pub mod address_guard;
pub mod alert_conditions;
pub mod alerts;
pub mod callback;
pub mod email;
pub mod live_calls;
pub mod outbox;
pub mod templates;
pub mod visitor_email;
