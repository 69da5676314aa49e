//! The state every handler shares: the store, the lead writer, the sources and their limits.

use std::sync::Arc;

use axum::extract::FromRef;
use secrecy::SecretString;
use tokio::sync::Notify;

use super::source_auth::SourceKeys;
use crate::config::SourceConfig;
use crate::domain::PhoneRegion;
use crate::intake::form_limits::FormLimits;
use crate::notify::address_guard::AddressGuard;
use crate::store::{FileStore, LeadWriter, Store};

/// Larger bodies are refused with 413 before they are read.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub writer: LeadWriter,
    pub phone_region: PhoneRegion,
    pub source_keys: SourceKeys,
    pub callback_guard: AddressGuard,
    pub admin_token: Option<SecretString>,
    pub files: FileStore,
    pub form_limits: FormLimits,
    /// Woken when call events are stored, so the call assembler looks at once.
    pub call_wake: Arc<Notify>,
    pub console: Arc<crate::console::ConsoleSettings>,
}

impl FromRef<AppState> for SourceKeys {
    fn from_ref(state: &AppState) -> Self {
        state.source_keys.clone()
    }
}

impl AppState {
    pub fn new(
        store: Store,
        writer: LeadWriter,
        phone_region: PhoneRegion,
        sources: Vec<SourceConfig>,
        callback_guard: AddressGuard,
        admin_token: Option<SecretString>,
        files: FileStore,
    ) -> Self {
        let form_limits = FormLimits::new(&sources);
        let source_keys = SourceKeys(Arc::new(sources));
        let call_wake = Arc::new(Notify::new());
        let console = Arc::default();
        Self {
            store,
            writer,
            phone_region,
            source_keys,
            callback_guard,
            admin_token,
            files,
            form_limits,
            call_wake,
            console,
        }
    }

    /// The operator console's settings, where the configuration has them.
    pub fn with_console(self, console: crate::console::ConsoleSettings) -> Self {
        Self { console: Arc::new(console), ..self }
    }
}
