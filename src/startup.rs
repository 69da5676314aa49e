//! Start-up and shutdown: open the store, build connectors, bind the listener, run HTTP and the worker.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use secrecy::SecretString;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, SourceConfig};
use crate::connectors::Connector;
use crate::delivery::Deliverer;
use crate::domain::SourceId;
use crate::http::{self, AppState};
use crate::sandbox::Sandbox;
use crate::store::{LeadWriter, Store};
use crate::worker::Worker;

/// The demo source created when no source is configured.
pub const DEMO_SOURCE: &str = "demo";

/// A gateway ready to serve: everything opened and bound, nothing running yet.
pub struct App {
    pub address: SocketAddr,
    pub store: Store,
    /// Set when no destination is configured and the sandbox CRM stands in.
    pub sandbox_url: Option<String>,
    /// Set when no source is configured: the demo source's generated key.
    pub demo_key: Option<String>,
    listener: TcpListener,
    state: AppState,
    worker: Worker,
    writer_task: JoinHandle<()>,
    sandbox: Option<Sandbox>,
}

impl App {
    /// # Errors
    /// When the database cannot be opened or the address cannot be bound.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let Config {
            listen,
            store: store_config,
            worker: worker_config,
            phone_region,
            mut destinations,
            mut sources,
        } = config;
        let store = Store::open(&store_config).await?;
        let sandbox = if destinations.is_empty() {
            Some(Sandbox::start().await?)
        } else {
            None
        };
        let mut demo_key = None;
        if let Some(sandbox) = &sandbox {
            destinations.insert(
                crate::sandbox::DESTINATION.to_owned(),
                sandbox.destination(),
            );
            if sources.is_empty() {
                let key = store
                    .generated_setting("demo_source_key", generate_key)
                    .await?;
                let id = SourceId(DEMO_SOURCE.to_owned());
                let demo = SourceConfig {
                    id: id.clone(),
                    key: SecretString::from(key.clone()),
                    route: Sandbox::demo_route(),
                };
                sources.insert(id, demo);
                demo_key = Some(key);
            }
        }
        let connectors: BTreeMap<String, Connector> = destinations
            .iter()
            .map(|(name, destination)| {
                (
                    name.clone(),
                    Connector::build(
                        destination,
                        store.clone(),
                        phone_region,
                        worker_config.blocked_pause,
                    ),
                )
            })
            .collect();
        let wake = Arc::new(Notify::new());
        let (writer, writer_task) = LeadWriter::start(store.clone(), Arc::clone(&wake));
        let state = AppState::new(
            store.clone(),
            writer,
            phone_region,
            sources.values().cloned().collect(),
        );
        let deliverer = Deliverer {
            store: store.clone(),
            connectors: Arc::new(connectors),
            sources: Arc::new(sources),
            worker: worker_config,
        };
        let listener = TcpListener::bind(listen).await?;
        Ok(Self {
            address: listener.local_addr()?,
            store,
            sandbox_url: sandbox.as_ref().map(Sandbox::base_url),
            demo_key,
            listener,
            state,
            worker: Worker::new(deliverer, wake),
            writer_task,
            sandbox,
        })
    }

    /// Serves until `shutdown` is cancelled, then stops intake first, lets the worker finish
    /// or release what it holds, and returns once every accepted lead is committed.
    ///
    /// # Errors
    /// When the HTTP server fails.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Self {
            listener,
            state,
            worker,
            writer_task,
            sandbox,
            ..
        } = self;
        let worker_task = tokio::spawn(worker.run(shutdown.clone()));
        let server = axum::serve(listener, http::router(state))
            .with_graceful_shutdown(shutdown.clone().cancelled_owned());
        let served = server.await;
        // The router held the last handles to the lead writer: once it is gone, the writer
        // commits what is queued and stops.
        writer_task.await?;
        worker_task.await?;
        if let Some(sandbox) = sandbox {
            sandbox.stop().await;
        }
        served.map_err(Into::into)
    }
}

fn generate_key() -> String {
    format!(
        "{:032x}{:016x}",
        rand::random::<u128>(),
        rand::random::<u64>()
    )
}
