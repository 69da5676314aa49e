//! A cloud PBX for leadgate's tests and demos: plays calls to a URL as Telphin, Zadarma or Mango Office send them.
//!
//! The wire formats follow `shared/docs/telephony.md`; where it is silent the crate's README
//! lists what the emulator assumes. It shares no types with leadgate, so a misreading on
//! either side shows up as a failing test.

mod account;
mod player;
mod render;
mod scenarios;
mod script;
mod sign;
mod timeline;

pub use account::{
    MangoAccount, Provider, ProviderKind, TelphinAccount, UnknownProvider, ZadarmaAccount, ZadarmaApiKey,
};
pub use player::{ConnectionCheck, Delivery, Pacing, PlayError, PlayOptions, PlayReport, deliver, play};
pub use render::{PbxRequest, RecordingRef, RenderedCall, render};
pub use scenarios::{IVR, KNOWN_CLIENT, MANAGER, QUEUE, SANDBOX_DID, Scenario};
pub use script::{
    CallScript, Direction, Front, FrontKind, Missed, Outcome, Party, Perturbations, Reorder, ScriptError, Transfer,
    TransferTarget,
};
