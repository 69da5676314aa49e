//! Start-up and shutdown: open the store, build connectors, bind the listener, run HTTP and the workers.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Retention, RetryPolicy, SourceConfig, SourceFeedback, SourceKind};
use crate::connectors::Connector;
use crate::delivery::Deliverer;
use crate::domain::SourceId;
use crate::http::{self, AppState, StateParts};
use crate::intake::calls::CallAssembler;
use crate::notify::address_guard::AddressGuard;
use crate::notify::alerts::AlertWorker;
use crate::notify::callback::CallbackSender;
use crate::notify::email::Mailer;
use crate::notify::live_calls::LiveBoard;
use crate::notify::outbox::FeedbackWorker;
use crate::pbx::recording_link::RecordingLinks;
use crate::sandbox::Sandbox;
use crate::store::{FileStore, LeadWriter, Store};
use crate::worker::{Heartbeat, Worker};

/// What a node does, so intake and delivery can scale apart on a shared PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Role {
    /// Accept leads and deliver them.
    #[default]
    All,
    /// Accept leads over HTTP; other nodes deliver them.
    Intake,
    /// Deliver leads and feedback; HTTP answers `/healthz` and `/readyz` only.
    Worker,
}

impl Role {
    fn delivers(self) -> bool {
        self != Self::Intake
    }

    fn accepts(self) -> bool {
        self != Self::Worker
    }
}

/// How long stopping may take once shutdown is asked for: requests finish, intake commits what it
/// accepted, deliveries finish or are released. Service managers kill after 15 s or more; stopping
/// on our own first leaves the database consistent and logs what was cut short.
const SHUTDOWN_LIMIT: Duration = Duration::from_secs(12);

/// The demo source created when no source is configured.
pub const DEMO_SOURCE: &str = "demo";
/// The telephony source the sandbox adds beside it, fed by the sandbox PBX.
pub const DEMO_PBX_SOURCE: &str = "demo-pbx";

/// A gateway ready to serve: everything opened and bound, nothing running yet.
pub struct App {
    pub address: SocketAddr,
    pub store: Store,
    /// Set when no destination is configured and the sandbox CRM stands in.
    pub sandbox_url: Option<String>,
    /// Where the sandbox CRM keeps its records across restarts; `None`: it forgets them.
    pub sandbox_file: Option<std::path::PathBuf>,
    /// Set when no source is configured: the demo source's generated key.
    pub demo_key: Option<String>,
    /// With it, the demo telephony source's URL key, and where the sandbox PBX listens.
    pub demo_pbx: Option<(String, String)>,
    listener: TcpListener,
    state: AppState,
    /// Wakes the worker: this node's own intake, and other nodes' through the store.
    lead_wake: Arc<Notify>,
    worker: Worker,
    feedback: FeedbackWorker,
    /// `None` without `[alerts]`.
    alerts: Option<AlertWorker>,
    calls: CallAssembler,
    live_board: LiveBoard,
    writer_task: JoinHandle<()>,
    sandbox: Option<Sandbox>,
    retention: Retention,
    files: FileStore,
}

impl App {
    /// # Errors
    /// When the database cannot be opened, the SMTP settings are unusable, or the address
    /// cannot be bound.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let Config {
            listen,
            log_format: _,
            public_url,
            trusted_proxies,
            store: store_config,
            worker: worker_config,
            phone_region,
            security,
            feedback: feedback_config,
            smtp,
            admin_token,
            metrics_token,
            console,
            alerts: alerts_config,
            files_dir,
            retention,
            mut destinations,
            mut sources,
        } = config;
        // Before anything is counted: counts made without a recorder are lost.
        crate::metrics::install();
        let store = Store::open(&store_config).await?;
        let sandbox = if destinations.is_empty() {
            let state_file = crate::store::SqliteStore::database_path(&store_config.url)
                .map(|database| database.with_file_name(crate::sandbox::STATE_FILE));
            Some(Sandbox::start(state_file).await?)
        } else {
            None
        };
        let mut demo_key = None;
        let mut demo_pbx_key = None;
        if let Some(sandbox) = &sandbox {
            destinations.insert(crate::sandbox::DESTINATION.to_owned(), sandbox.destination());
            if sources.is_empty() {
                let key = store.generated_setting("demo_source_key", generate_key).await?;
                let id = SourceId(DEMO_SOURCE.to_owned());
                let demo = SourceConfig {
                    id: id.clone(),
                    kind: SourceKind::Partner { keys: SecretString::from(key.clone()).into() },
                    route: Sandbox::demo_route(),
                    retry: RetryPolicy::default(),
                    feedback: SourceFeedback::default(),
                    requests_per_minute: None,
                };
                sources.insert(id, demo);
                demo_key = Some(key);
                let pbx_key = store.generated_setting("demo_pbx_key", generate_key).await?;
                let id = SourceId(DEMO_PBX_SOURCE.to_owned());
                let demo_pbx = SourceConfig {
                    id: id.clone(),
                    kind: SourceKind::Telephony(Box::new(sandbox.demo_telephony(pbx_key.clone()))),
                    route: Sandbox::demo_route(),
                    retry: RetryPolicy::default(),
                    feedback: SourceFeedback::default(),
                    requests_per_minute: None,
                };
                sources.insert(id, demo_pbx);
                demo_pbx_key = Some(pbx_key);
            }
        }
        let connectors: BTreeMap<String, Connector> = destinations
            .iter()
            .map(|(name, destination)| {
                let connector = Connector::build(destination, store.clone(), phone_region, worker_config.blocked_pause);
                (name.clone(), connector)
            })
            .collect();
        for source in sources.values() {
            if let Some(problem) = crate::delivery::unsupported_route(source, &connectors[&source.route.destination]) {
                anyhow::bail!("sources.{}.destination: {problem}", source.id);
            }
        }
        let sources = Arc::new(sources);
        let guard = AddressGuard::new(&security);
        let lead_wake = Arc::new(Notify::new());
        let feedback_wake = Arc::new(Notify::new());
        let (writer, writer_task) = LeadWriter::start(store.clone(), Arc::clone(&lead_wake));
        let listener = TcpListener::bind(listen).await?;
        let address = listener.local_addr()?;
        // Links to website leads' files point here; without a public address, at the listener.
        let console = crate::http::state::ConsoleSettings::new(console, public_url.as_ref());
        let files_url = match public_url {
            Some(url) => url,
            None => url::Url::parse(&format!("http://{address}/"))?,
        };
        let link_secret = store.generated_setting("file_link_secret", generate_key).await?;
        let files = FileStore::open(&files_dir, link_secret, files_url.clone()).await?;
        let recording_secret = store.generated_setting("recording_link_secret", generate_key).await?;
        let recording_links = RecordingLinks::new(SecretString::from(recording_secret), files_url);
        let mut state = StateParts::new(
            store.clone(),
            writer,
            phone_region,
            sources.values().cloned().collect(),
            guard.clone(),
            admin_token,
            files.clone(),
            recording_links.clone(),
        )
        .with_console(console);
        state.metrics_token = metrics_token;
        state.trusted_proxies = trusted_proxies.into();
        let connectors = Arc::new(connectors);
        state.connectors = Arc::clone(&connectors);
        let state = AppState::from(state);
        let deliverer = Deliverer {
            store: store.clone(),
            connectors: Arc::clone(&connectors),
            sources: Arc::clone(&sources),
            worker: worker_config,
            files: files.clone(),
            feedback_wake: Arc::clone(&feedback_wake),
            recording_links,
        };
        let calls = CallAssembler {
            store: store.clone(),
            sources: Arc::clone(&sources),
            phone_region,
            wake: Arc::clone(&state.call_wake),
            lead_wake: Arc::clone(&lead_wake),
        };
        let live_board = LiveBoard {
            store: store.clone(),
            sources: Arc::clone(&sources),
            connectors: Arc::clone(&connectors),
            phone_region,
            live: state.live_calls.clone(),
        };
        let mailer = smtp.as_ref().map(Mailer::new).transpose()?;
        let alerts = alerts_config.map(|config| AlertWorker {
            store: store.clone(),
            sources: Arc::clone(&sources),
            config,
            webhook: CallbackSender::new(guard.clone(), feedback_config.timeout),
            mailer: mailer.clone(),
        });
        let feedback = FeedbackWorker {
            store: store.clone(),
            callbacks: CallbackSender::new(guard, feedback_config.timeout),
            mailer,
            sources,
            connectors,
            config: feedback_config,
            wake: feedback_wake,
        };
        Ok(Self {
            address,
            store,
            sandbox_url: sandbox.as_ref().map(Sandbox::base_url),
            sandbox_file: sandbox.as_ref().and_then(Sandbox::state_file).map(std::path::Path::to_path_buf),
            demo_pbx: demo_pbx_key.zip(sandbox.as_ref().map(Sandbox::pbx_url)),
            demo_key,
            listener,
            state,
            worker: Worker::new(deliverer, Arc::clone(&lead_wake), Heartbeat::default()),
            lead_wake,
            feedback,
            alerts,
            calls,
            live_board,
            writer_task,
            sandbox,
            retention,
            files,
        })
    }

    /// Serves until `shutdown` is cancelled, then stops intake first, lets the workers finish
    /// or release what they hold, and returns once every accepted lead is committed.
    ///
    /// # Errors
    /// When the HTTP server fails.
    pub async fn run(self, role: Role, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Self {
            listener,
            state,
            worker,
            feedback,
            alerts,
            calls,
            live_board,
            writer_task,
            sandbox,
            lead_wake,
            store,
            retention,
            files,
            ..
        } = self;
        let mut tasks = Vec::new();
        let worker_health = role.delivers().then(|| (worker.heartbeat(), worker.stale_after()));
        let health = http::health::routes(http::health::Readiness { store: store.clone(), worker: worker_health });
        if role.delivers() {
            store.wake_on_new_leads(lead_wake, shutdown.clone());
            tasks.push(tokio::spawn(worker.run(shutdown.clone())));
            tasks.push(tokio::spawn(feedback.run(shutdown.clone())));
            if let Some(alerts) = alerts {
                tasks.push(tokio::spawn(alerts.run(shutdown.clone())));
            }
            tasks.push(tokio::spawn(calls.run(shutdown.clone())));
            if !retention.is_forever() {
                tasks.push(tokio::spawn(crate::lifecycle::run(store.clone(), files, retention, shutdown.clone())));
            }
        }
        if role.accepts() {
            tasks.push(tokio::spawn(live_board.run(shutdown.clone())));
        }
        let router = if role.accepts() { http::router(state, health) } else { health.into() };
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        let server = axum::serve(listener, service).with_graceful_shutdown(shutdown.clone().cancelled_owned());
        let stopped = async {
            let served = server.await;
            // The router held the last handles to the lead writer: once it is gone, the writer
            // commits what is queued and stops.
            writer_task.await?;
            for task in tasks {
                task.await?;
            }
            if let Some(sandbox) = sandbox {
                sandbox.stop().await;
            }
            served.map_err(anyhow::Error::from)
        };
        let overdue = async {
            shutdown.cancelled().await;
            tokio::time::sleep(SHUTDOWN_LIMIT).await;
        };
        tokio::select! {
            result = stopped => result,
            () = overdue => {
                // Nothing acknowledged is lost by stopping here: a lead is answered only once
                // committed, and a delivery still running returns when its lease expires.
                tracing::warn!(limit_seconds = SHUTDOWN_LIMIT.as_secs(), "shutdown is taking too long; stopping with requests or deliveries unfinished");
                Ok(())
            }
        }
    }
}

fn generate_key() -> String {
    format!("{:032x}{:016x}", rand::random::<u128>(), rand::random::<u64>())
}
