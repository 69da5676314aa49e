//! Accept: channel endpoints that validate a lead, commit it, and answer at once.

pub mod partner;
