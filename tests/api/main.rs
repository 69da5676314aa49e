//! End-to-end tests: the real router or the real binary, a fresh SQLite file each, the amoCRM emulator over HTTP.

mod advertisers;
mod browser;
mod callback_receiver;
mod config_check;
mod conformance;
mod crash;
mod decision;
mod email;
mod faults;
mod feedback;
mod forms;
mod fuzz;
mod helpers;
mod hostile;
mod intake;
mod pbx_api;
mod proxy;
mod queue;
mod resend;
mod serve_defaults;
mod session_crm;
mod smtp_sink;
mod telephony;
mod ticket_number;
mod unavailable;
mod zap;
