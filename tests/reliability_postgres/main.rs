//! The fault-injection suite of `tests/reliability` again on PostgreSQL, and the multi-node test:
//! several gateway processes sharing one PostgreSQL queue and one CRM rate budget.

// Shared with the API suite, which uses all of them; this binary needs only a few.
#[allow(dead_code)]
#[path = "../api/callback_receiver.rs"]
mod callback_receiver;
#[allow(dead_code)]
#[path = "../api/helpers.rs"]
mod helpers;

#[path = "../reliability/audit.rs"]
mod audit;
#[path = "../reliability/crash_storm.rs"]
mod crash_storm;
#[path = "../reliability/gateway.rs"]
mod gateway;
#[path = "../reliability/lead_plan.rs"]
mod lead_plan;
#[path = "../reliability/load.rs"]
mod load;
mod multi_node;
#[path = "../reliability/outage.rs"]
mod outage;
#[path = "../reliability/restart_budget.rs"]
mod restart_budget;
#[path = "../reliability/shutdown.rs"]
mod shutdown;
#[path = "../reliability/stale_look_up.rs"]
mod stale_look_up;
#[path = "../reliability/throttle_burst.rs"]
mod throttle_burst;
