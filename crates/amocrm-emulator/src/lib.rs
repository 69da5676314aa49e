//! amoCRM API v4 emulator: configuration, shared state, and serving it over HTTP.

mod api;
mod catalog;
mod control;
mod input;
mod inspect;
mod limits;
mod oauth;
mod problem;
mod seed;
mod state;
mod tokens;
mod traffic;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use catalog::{AccountUser, LISTING_FIELD_ID, POSITION_FIELD_ID, USER_ID};
pub use inspect::{ContactSummary, LeadSummary, NoteSummary};
pub use seed::{SeedContact, SeedError, SeedLead, SeededContact};
pub use traffic::{Fault, FaultLimit, Latency, RequestRecord, TrafficStats};

pub(crate) const API_PREFIX: &str = "/api/v4";
/// How long `RunningEmulator::shutdown` lets in-flight requests finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// What the emulated account accepts. `Default` is the sandbox account used in tests and demos.
#[derive(Clone, Debug)]
pub struct EmulatorConfig {
    /// Allowed `/api/v4` arrivals per sliding second; one more gets 429 (amoCRM documents 7).
    pub requests_per_second: u32,
    pub long_lived_token: Option<String>,
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uri: String,
    /// The refresh token that is valid at start.
    pub refresh_token: Option<String>,
    /// The authorization code that is valid at start; it works once.
    pub authorization_code: Option<String>,
    pub access_token_lifetime: Duration,
    /// Adds `Retry-After` to 429 answers when set; amoCRM is not known to send it.
    pub retry_after_seconds: Option<u64>,
    /// `(pipeline name, stage names)`; the first pipeline is the main one. The incoming
    /// stage and the closing stages 142/143 are added to every pipeline.
    pub pipelines: Vec<(String, Vec<String>)>,
    /// The account's users, as `GET /api/v4/users` lists them; the first one is responsible for
    /// whatever is created without a responsible user. Default: the administrator (`USER_ID`)
    /// and three managers.
    pub users: Vec<AccountUser>,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        let pipeline = |name: &str, stages: &[&str]| {
            let stages = stages.iter().map(|stage| (*stage).to_owned()).collect();
            (name.to_owned(), stages)
        };
        EmulatorConfig {
            requests_per_second: 7,
            long_lived_token: Some("sandbox-long-lived-token".to_owned()),
            client_id: "sandbox-client".to_owned(),
            client_secret: "sandbox-secret".to_owned(),
            redirect_uri: "https://example.com/oauth".to_owned(),
            refresh_token: Some("sandbox-refresh-token-0".to_owned()),
            authorization_code: Some("sandbox-code".to_owned()),
            access_token_lifetime: Duration::from_secs(24 * 60 * 60),
            retry_after_seconds: None,
            pipelines: vec![
                pipeline("Воронка", &["Первичный контакт", "Переговоры"]),
                pipeline("TrendAgent", &["Новая заявка", "Объект выбран", "Бронь"]),
            ],
            users: catalog::default_users(),
        }
    }
}

/// The mutable part of the emulator, always changed under one lock so a request sees a
/// consistent account. The lock is never held across an `.await`.
#[derive(Debug)]
pub(crate) struct State {
    pub crm: state::Crm,
    pub tokens: tokens::Tokens,
    pub traffic: traffic::Traffic,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub config: EmulatorConfig,
    pub started: Instant,
    state: Mutex<State>,
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking handler must not take the emulator down for the rest of a test run.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn elapsed_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }
}

/// A handle to one emulated account. Clones share the same state.
#[derive(Clone, Debug)]
pub struct Emulator {
    shared: Arc<Shared>,
}

impl Emulator {
    pub fn new(config: EmulatorConfig) -> Self {
        let state = State {
            crm: state::Crm::new(catalog::build_pipelines(&config.pipelines), config.users.clone()),
            tokens: tokens::Tokens::new(&config),
            traffic: traffic::Traffic::default(),
        };
        Emulator { shared: Arc::new(Shared { config, started: Instant::now(), state: Mutex::new(state) }) }
    }

    /// The API (`/api/v4`, `/oauth2/access_token`) and the control routes (`/_emulator`).
    pub fn router(&self) -> Router {
        let gated = api::routes()
            .route("/oauth2/access_token", post(oauth::access_token))
            .fallback(api::unknown_route)
            .layer(axum::middleware::from_fn_with_state(self.shared.clone(), limits::gate));
        gated.merge(control::routes()).with_state(self.shared.clone())
    }

    /// Everything the account holds, as `GET /_emulator/state` shows it.
    pub fn snapshot(&self) -> serde_json::Value {
        control::snapshot(&self.shared.lock().crm)
    }

    /// The account's records and id counters, to be saved and given back to [`Emulator::restore`].
    pub fn records(&self) -> serde_json::Value {
        self.shared.lock().crm.records()
    }

    /// Replaces the account's records and id counters with saved ones.
    ///
    /// # Errors
    /// When `saved` is not what [`Emulator::records`] gives.
    pub fn restore(&self, saved: serde_json::Value) -> Result<(), serde_json::Error> {
        self.shared.lock().crm.restore(saved)
    }

    /// Traffic counters, as `GET /_emulator/stats` shows them.
    pub fn stats(&self) -> serde_json::Value {
        serde_json::to_value(self.traffic_stats()).unwrap_or_default()
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    pub(crate) fn from_shared(shared: Arc<Shared>) -> Self {
        Emulator { shared }
    }
}

/// An emulator serving on a local port.
#[derive(Debug)]
pub struct RunningEmulator {
    pub addr: SocketAddr,
    pub emulator: Emulator,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl RunningEmulator {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, lets in-flight requests finish for a short grace period, then aborts.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        let mut task = self.task;
        if tokio::time::timeout(SHUTDOWN_GRACE, &mut task).await.is_err() {
            task.abort();
        }
    }
}

/// Binds `listen` (port 0 picks a free port) and serves the emulator in a tokio task.
///
/// # Errors
/// When the address cannot be bound.
pub async fn spawn(config: EmulatorConfig, listen: SocketAddr) -> std::io::Result<RunningEmulator> {
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let emulator = Emulator::new(config);
    let router = emulator.router();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let serving = axum::serve(listener, router).with_graceful_shutdown(async move {
            let _ = stopped.await;
        });
        if let Err(error) = serving.await {
            tracing::error!(?error, "amoCRM emulator stopped serving");
        }
    });
    tracing::debug!(%addr, "amoCRM emulator listening");
    Ok(RunningEmulator { addr, emulator, stop, task })
}
