//! End-to-end tests of the amoCRM emulator over real HTTP on 127.0.0.1.

mod auth;
mod contacts;
mod control;
mod harness;
mod leads;
mod limits;
mod notes;
mod users;
