//! End-to-end tests: the real router or the real binary, a fresh SQLite file each, the amoCRM emulator over HTTP.

mod config_check;
mod crash;
mod decision;
mod faults;
mod helpers;
mod intake;
mod serve_defaults;
