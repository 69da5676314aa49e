//! End-to-end tests of the PBX emulator over real HTTP on 127.0.0.1: what it sends to a receiver, and the API it serves.

mod control;
mod harness;
mod mango_events;
mod perturbations;
mod provider_apis;
mod telphin_api;
mod telphin_events;
mod zadarma_events;
