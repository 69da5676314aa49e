//! Fault injection: the real binary killed again and again, the CRM down for a while; nothing lost, nothing twice.

// Shared with the API suite, which uses all of them; this binary needs only a few.
#[allow(dead_code)]
#[path = "../api/callback_receiver.rs"]
mod callback_receiver;
#[allow(dead_code)]
#[path = "../api/helpers.rs"]
mod helpers;

mod audit;
mod crash_storm;
mod gateway;
mod lead_plan;
mod load;
mod outage;
mod restart_budget;
mod shutdown;
mod stale_look_up;
mod throttle_burst;
