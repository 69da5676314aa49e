//! leadgate: accept a lead, store it, decide against the CRM, deliver it exactly once, report back.

pub mod cli;
pub mod config;
pub mod connectors;
/// The operator console at /admin: users, sessions, the lead list, timelines, re-sends.
pub mod console;
pub mod delivery;
pub mod domain;
pub mod http;
pub mod intake;
pub mod lifecycle;
pub mod metrics;
pub mod notify;
pub mod pbx;
pub mod sandbox;
pub mod startup;
pub mod store;
pub mod telemetry;
/// Calls from cloud PBXs (Telphin, Zadarma, Mango): provider events parsed, one call's events assembled.
pub mod telephony;
pub mod worker;
