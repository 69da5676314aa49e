//! A cloud PBX for leadgate's tests and demos: plays calls to a URL as Telphin, Zadarma or Mango Office send them, and serves their call-back and recording APIs.
//!
//! The wire formats follow `shared/docs/telephony.md`; where it is silent the crate's README
//! lists what the emulator assumes. It shares no types with leadgate, so a misreading on
//! either side shows up as a failing test.

mod account;
mod audio;
mod control;
mod inspect;
mod player;
mod render;
mod scenarios;
mod script;
mod server;
mod sign;
mod state;
mod timeline;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

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
pub use state::{CallbackRequest, Recording, RequestRecord, ServedRecording};

/// How long `RunningPbx::shutdown` lets in-flight requests finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Which PBX to be, with its account.
#[derive(Clone, Debug)]
pub struct PbxConfig {
    pub provider: Provider,
}

impl PbxConfig {
    /// The sandbox account of `kind` (see `Provider::sandbox`).
    pub fn sandbox(kind: ProviderKind) -> Self {
        PbxConfig { provider: Provider::sandbox(kind) }
    }
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub config: PbxConfig,
    /// `http://host:port` once serving; links to recordings point here.
    pub base_url: OnceLock<String>,
    state: Mutex<state::State>,
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, state::State> {
        // A panicking handler must not take the emulator down for the rest of a test run.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A handle to one emulated PBX. Clones share the same state.
#[derive(Clone, Debug)]
pub struct PbxEmulator {
    shared: Arc<Shared>,
}

impl PbxEmulator {
    pub fn new(config: PbxConfig) -> Self {
        let shared = Shared { config, base_url: OnceLock::new(), state: Mutex::new(state::State::default()) };
        PbxEmulator { shared: Arc::new(shared) }
    }

    /// The provider's API routes and the control routes under `/_control/`.
    pub fn router(&self) -> Router {
        server::routes(self.shared.config.provider.kind())
            .layer(axum::middleware::from_fn_with_state(self.shared.clone(), server::log_request))
            .merge(control::routes())
            .with_state(self.shared.clone())
    }

    pub fn provider(&self) -> &Provider {
        &self.shared.config.provider
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    pub(crate) fn from_shared(shared: Arc<Shared>) -> Self {
        PbxEmulator { shared }
    }
}

/// A PBX serving on a local port.
#[derive(Debug)]
pub struct RunningPbx {
    pub addr: SocketAddr,
    pub pbx: PbxEmulator,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl RunningPbx {
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

/// Serves a new PBX on a free loopback port.
///
/// # Errors
/// When no loopback port can be bound.
pub async fn spawn(config: PbxConfig) -> std::io::Result<RunningPbx> {
    spawn_on(config, SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await
}

/// Binds `listen` (port 0 picks a free port) and serves a new PBX in a tokio task.
///
/// # Errors
/// When the address cannot be bound.
pub async fn spawn_on(config: PbxConfig, listen: SocketAddr) -> std::io::Result<RunningPbx> {
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let pbx = PbxEmulator::new(config);
    let _ = pbx.shared.base_url.set(format!("http://{addr}"));
    let router = pbx.router();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let serving = axum::serve(listener, router).with_graceful_shutdown(async move {
            let _ = stopped.await;
        });
        if let Err(error) = serving.await {
            tracing::error!(?error, "PBX emulator stopped serving");
        }
    });
    tracing::debug!(%addr, "PBX emulator listening");
    Ok(RunningPbx { addr, pbx, stop, task })
}
