//! End-to-end tests of the session CRM emulator over real HTTP on 127.0.0.1, with a cookie store.

mod auth;
mod control;
mod csrf;
mod expiry;
mod flow;
mod harness;
