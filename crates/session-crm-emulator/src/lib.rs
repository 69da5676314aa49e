//! A company's own CRM reached with a cookie session and a CSRF header: configuration, shared state, serving it.

mod api;
mod control;
mod cookies;
mod error;
mod gate;
mod inspect;
mod records;
mod sessions;
mod traffic;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use cookies::{CSRF_COOKIE, CSRF_HEADER, SESSION_COOKIE};
pub use inspect::{NotAClientError, NotAServerError};
pub use records::{Attachment, Contact, Message, Organization, Ticket};
pub use traffic::RequestRecord;

pub const LOGIN_PATH: &str = "/api/auth/login";
pub(crate) const API_PREFIX: &str = "/api/";
/// How long `RunningSessionCrm::shutdown` lets in-flight requests finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// What the emulated CRM accepts. `Default` is the sandbox account used in tests and demos.
#[derive(Clone, Debug)]
pub struct SessionCrmConfig {
    pub username: String,
    pub password: String,
    /// A session unused for this long is gone (Laravel's `SESSION_LIFETIME` works this way).
    pub session_idle_timeout: Duration,
    /// A session is gone this long after its login however busy it is; `Max-Age` announces it.
    pub session_lifetime: Duration,
    /// Requests without a live session get `302` to the login path instead of `401`, as
    /// Django's `login_required` and Laravel's non-JSON requests do.
    pub redirect_to_login: bool,
    /// Rotate a session's CSRF token after every this many unsafe requests; `None` rotates
    /// only at login and on control requests.
    pub rotate_csrf_every: Option<u32>,
    /// Larger uploads get 413.
    pub max_upload_bytes: usize,
    /// Laravel's `XSRF-TOKEN`: the token ends in `=` padding, the cookie carries it
    /// percent-encoded (`…%3D`), and the header must carry it decoded.
    pub csrf_cookie_encoded: bool,
}

impl Default for SessionCrmConfig {
    fn default() -> Self {
        SessionCrmConfig {
            username: "sandbox".to_owned(),
            password: "sandbox-password".to_owned(),
            session_idle_timeout: Duration::from_secs(2 * 60 * 60),
            session_lifetime: Duration::from_secs(12 * 60 * 60),
            redirect_to_login: false,
            rotate_csrf_every: None,
            max_upload_bytes: 10 * 1024 * 1024,
            csrf_cookie_encoded: false,
        }
    }
}

/// The mutable part of the CRM, always changed under one lock so a request sees a consistent
/// CRM. The lock is never held across an `.await`.
#[derive(Debug)]
pub(crate) struct State {
    pub records: records::Records,
    pub sessions: sessions::Sessions,
    pub traffic: traffic::Traffic,
    pub login_count: u64,
    pub failed_login_count: u64,
}

impl State {
    fn new(config: &SessionCrmConfig) -> Self {
        State {
            records: records::Records::default(),
            sessions: sessions::Sessions::new(
                config.session_idle_timeout,
                config.session_lifetime,
                config.csrf_cookie_encoded,
            ),
            traffic: traffic::Traffic::default(),
            login_count: 0,
            failed_login_count: 0,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub config: SessionCrmConfig,
    state: Mutex<State>,
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking handler must not take the emulator down for the rest of a test run.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A handle to one emulated CRM. Clones share the same state.
#[derive(Clone, Debug)]
pub struct SessionCrm {
    shared: Arc<Shared>,
}

impl SessionCrm {
    pub fn new(config: SessionCrmConfig) -> Self {
        let state = Mutex::new(State::new(&config));
        SessionCrm { shared: Arc::new(Shared { config, state }) }
    }

    /// The API under `/api/` and the control routes under `/_control/`.
    pub fn router(&self) -> Router {
        let gated = api::routes(&self.shared.config)
            .fallback(api::unknown_route)
            .layer(axum::middleware::from_fn_with_state(self.shared.clone(), gate::gate));
        gated.merge(control::routes()).with_state(self.shared.clone())
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }
}

/// A CRM serving on a local port.
#[derive(Debug)]
pub struct RunningSessionCrm {
    pub addr: SocketAddr,
    pub crm: SessionCrm,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl RunningSessionCrm {
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

/// Serves a new CRM on a free loopback port.
///
/// # Errors
/// When no loopback port can be bound.
pub async fn spawn(config: SessionCrmConfig) -> std::io::Result<RunningSessionCrm> {
    spawn_on(config, SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await
}

/// Binds `listen` (port 0 picks a free port) and serves a new CRM in a tokio task.
///
/// # Errors
/// When the address cannot be bound.
pub async fn spawn_on(config: SessionCrmConfig, listen: SocketAddr) -> std::io::Result<RunningSessionCrm> {
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let crm = SessionCrm::new(config);
    let router = crm.router();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let serving = axum::serve(listener, router).with_graceful_shutdown(async move {
            let _ = stopped.await;
        });
        if let Err(error) = serving.await {
            tracing::error!(?error, "session CRM emulator stopped serving");
        }
    });
    tracing::debug!(%addr, "session CRM emulator listening");
    Ok(RunningSessionCrm { addr, crm, stop, task })
}
