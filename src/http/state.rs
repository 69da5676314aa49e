//! The state every handler shares: the store, the lead writer, the sources and their limits.

use std::sync::Arc;

use axum::extract::FromRef;
use secrecy::SecretString;
use tokio::sync::Notify;

use super::source_auth::SourceKeys;
use crate::config::SourceConfig;
use crate::domain::PhoneRegion;
use crate::intake::limits::IntakeLimits;
use crate::notify::address_guard::AddressGuard;
use crate::notify::live_calls::LiveCalls;
use crate::pbx::PbxClients;
use crate::pbx::recording_link::RecordingLinks;
use crate::store::{FileStore, LeadWriter, Store};

/// Larger bodies are refused with 413 before they are read.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Every handler and middleware takes its own clone of the state, several per request, so a
/// clone is one reference count; the parts are built once, in [`StateParts`].
#[derive(Clone)]
pub struct AppState(Arc<StateParts>);

impl std::ops::Deref for AppState {
    type Target = StateParts;

    fn deref(&self) -> &StateParts {
        &self.0
    }
}

impl From<StateParts> for AppState {
    fn from(parts: StateParts) -> Self {
        Self(Arc::new(parts))
    }
}

pub struct StateParts {
    pub store: Store,
    pub writer: LeadWriter,
    pub phone_region: PhoneRegion,
    pub source_keys: SourceKeys,
    pub callback_guard: AddressGuard,
    pub admin_token: Option<SecretString>,
    /// Lets a scraper read `GET /metrics`; `None` (as `new` leaves it) turns the route off.
    pub metrics_token: Option<SecretString>,
    pub files: FileStore,
    pub intake_limits: IntakeLimits,
    /// Woken when call events are stored, so the call assembler looks at once.
    pub call_wake: Arc<Notify>,
    /// Each telephony source's PBX API, where it has credentials.
    pub pbx: PbxClients,
    pub recording_links: RecordingLinks,
    /// The calls in progress, for `GET /api/v1/calls/live`.
    pub live_calls: LiveCalls,
    pub console: Arc<ConsoleSettings>,
    /// Proxies whose forwarding headers name the visitor; none, as `new` leaves it.
    pub trusted_proxies: Arc<[ipnet::IpNet]>,
    /// This process's CRM connectors, for the console to read their state; empty where none
    /// were built (benchmarks).
    pub connectors: crate::connectors::Connectors,
}

impl FromRef<AppState> for SourceKeys {
    fn from_ref(state: &AppState) -> Self {
        state.source_keys.clone()
    }
}

impl StateParts {
    #[expect(clippy::too_many_arguments, reason = "each part is made by a different piece of start-up")]
    pub fn new(
        store: Store,
        writer: LeadWriter,
        phone_region: PhoneRegion,
        sources: Vec<SourceConfig>,
        callback_guard: AddressGuard,
        admin_token: Option<SecretString>,
        files: FileStore,
        recording_links: RecordingLinks,
    ) -> Self {
        let intake_limits = IntakeLimits::new(&sources);
        let pbx = crate::pbx::clients(&sources);
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
            metrics_token: None,
            files,
            intake_limits,
            call_wake,
            pbx,
            recording_links,
            live_calls: LiveCalls::default(),
            console,
            trusted_proxies: Arc::new([]),
            connectors: Arc::default(),
        }
    }

    /// The operator console's settings, where the configuration has them.
    pub fn with_console(self, console: ConsoleSettings) -> Self {
        Self { console: Arc::new(console), ..self }
    }
}

/// What the console needs besides the store: its configuration, and whether cookies are `Secure`.
#[derive(Debug, Clone)]
pub struct ConsoleSettings {
    pub config: crate::config::ConsoleConfig,
    /// `public_url` is https: the session cookie is only ever sent over TLS.
    pub secure_cookies: bool,
    /// The gateway's address for the outside world: the portal's batch file needs it.
    pub public_url: Option<url::Url>,
}

impl ConsoleSettings {
    pub fn new(config: crate::config::ConsoleConfig, public_url: Option<&url::Url>) -> Self {
        let secure_cookies = public_url.is_some_and(|url| url.scheme() == "https");
        Self { config, secure_cookies, public_url: public_url.cloned() }
    }
}

impl Default for ConsoleSettings {
    /// The embedded defaults, for a state built without a configuration (benchmarks).
    fn default() -> Self {
        let config = crate::config::Config::from_toml_str("").expect("the embedded defaults are valid").console;
        Self::new(config, None)
    }
}
