//! Report: tell the team and the sender how a lead ended.

pub mod address_guard;
pub mod callback;
pub mod email;
pub mod outbox;
pub mod templates;
