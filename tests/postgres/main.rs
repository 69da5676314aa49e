//! The end-to-end suite of `tests/api` again, every test on a PostgreSQL database of its own.
//!
//! The server is `LEADGATE_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432`); each test
//! creates its own database there.

#[path = "../api/advertisers.rs"]
mod advertisers;
#[path = "../api/alerts.rs"]
mod alerts;
#[path = "../api/browser.rs"]
mod browser;
#[path = "../api/callback_receiver.rs"]
mod callback_receiver;
#[path = "../api/config_check.rs"]
mod config_check;
#[path = "../api/conformance.rs"]
mod conformance;
#[path = "../api/console.rs"]
mod console;
#[path = "../api/console_browser.rs"]
mod console_browser;
#[path = "../api/console_dashboard.rs"]
mod console_dashboard;
#[path = "../api/crash.rs"]
mod crash;
#[path = "../api/decision.rs"]
mod decision;
#[path = "../api/email.rs"]
mod email;
#[path = "../api/erasure.rs"]
mod erasure;
#[path = "../api/faults.rs"]
mod faults;
#[path = "../api/feedback.rs"]
mod feedback;
#[path = "../api/forms.rs"]
mod forms;
#[path = "../api/fuzz.rs"]
mod fuzz;
#[path = "../api/helpers.rs"]
mod helpers;
#[path = "../api/hostile.rs"]
mod hostile;
#[path = "../api/intake.rs"]
mod intake;
#[path = "../api/observability.rs"]
mod observability;
#[path = "../api/pbx_api.rs"]
mod pbx_api;
#[path = "../api/proxy.rs"]
mod proxy;
#[path = "../api/queue.rs"]
mod queue;
#[path = "../api/raw_db.rs"]
mod raw_db;
#[path = "../api/resend.rs"]
mod resend;
#[path = "../api/retention.rs"]
mod retention;
#[path = "../api/serve_defaults.rs"]
mod serve_defaults;
#[path = "../api/session_crm.rs"]
mod session_crm;
#[path = "../api/smtp_sink.rs"]
mod smtp_sink;
#[path = "../api/telephony.rs"]
mod telephony;
#[path = "../api/ticket_number.rs"]
mod ticket_number;
#[path = "../api/unavailable.rs"]
mod unavailable;
#[path = "../api/zap.rs"]
mod zap;
