//! The intake benchmark: durable partner intake against a no-op handler of the same server, then intake → CRM deal.
//!
//! `cargo bench --bench intake`; `BENCH_SECONDS` sets how long each intake case is measured. Clients
//! and server share the machine, so the figures that travel between machines are the ratios.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use amocrm_emulator::{EmulatorConfig, TrafficStats};
use axum::Json;
use axum::body::Bytes;
use axum::routing::post;
use leadgate::config::{
    AmoCrmAuth, AmoCrmConfig, Config, DestinationConfig, Durability, RetryPolicy, Route, SecurityConfig, SourceConfig,
    SourceFeedback, SourceKind, StoreConfig,
};
use leadgate::domain::{LeadId, LeadStatus, Phone, PhoneRegion, SourceId};
use leadgate::http::error::ApiError;
use leadgate::http::source_auth::AuthenticatedSource;
use leadgate::http::{AppState, StateParts};
use leadgate::notify::address_guard::AddressGuard;
use leadgate::pbx::recording_link::RecordingLinks;
use leadgate::startup::{App, Role};
use leadgate::store::{FileStore, LeadWriter, Store};
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

const SOURCE_KEY: &str = "bench-partner-key-0123456789";
const INTAKE_CLIENTS: usize = 64;
const WARM_UP: Duration = Duration::from_secs(1);
/// The intake cases take turns in slices this long, so a burst of background load on the
/// shared machine lands on all of them instead of skewing the ratio between two.
const SLICE: Duration = Duration::from_secs(1);
const DEFAULT_SECONDS: u64 = 5;
const END_TO_END_LEADS: usize = 500;
const END_TO_END_CLIENTS: usize = 16;
/// Far beyond what 500 leads need at 1000 CRM requests/s; only a stuck worker reaches it.
const END_TO_END_DEADLINE: Duration = Duration::from_secs(120);
const TARGET_RATIO: f64 = 0.25;
const TARGET_P99: Duration = Duration::from_millis(20);

/// Every lead gets a phone of its own: repeats would measure the worker's one-lead-per-phone
/// rule and the CRM's "known client" path instead of plain intake.
static NEXT_PHONE: AtomicU64 = AtomicU64::new(0);

fn main() -> anyhow::Result<()> {
    let seconds = match std::env::var("BENCH_SECONDS") {
        Ok(text) => {
            text.parse().map_err(|_| anyhow::anyhow!("BENCH_SECONDS=«{text}» is not a whole number of seconds"))?
        }
        Err(_) => DEFAULT_SECONDS,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run(seconds))
}

async fn run(seconds: u64) -> anyhow::Result<()> {
    println!(
        "leadgate intake benchmark: {INTAKE_CLIENTS} clients; each case measured {seconds} x {} s, the cases taking turns, \
         after {} s of warm-up; loopback; {} CPUs shared by clients and server",
        SLICE.as_secs(),
        WARM_UP.as_secs(),
        std::thread::available_parallelism().map_or(0, usize::from),
    );
    let normal = IntakeServer::start(Durability::ProcessCrash).await?;
    let full = IntakeServer::start(Durability::PowerLoss).await?;
    let mut cases = [
        LoadCase::new(normal.url("/bench/noop")),
        LoadCase::new(normal.url("/api/v1/leads")),
        LoadCase::new(full.url("/api/v1/leads")),
    ];
    for case in &cases {
        drive(&case.http, &case.url, WARM_UP).await;
    }
    for _ in 0..seconds {
        for case in &mut cases {
            let slice = drive(&case.http, &case.url, SLICE).await;
            case.measured.absorb(slice);
        }
    }
    normal.stop().await?;
    full.stop().await?;
    let [noop, durable_normal, durable_full] = cases.map(LoadCase::finish);
    print_intake(&noop, &durable_normal, &durable_full);
    let end_to_end = run_end_to_end().await?;
    end_to_end.print();
    Ok(())
}

/// One intake case: its endpoint, a client pool that keeps its connections open from one
/// slice to the next, and what its slices have measured so far.
struct LoadCase {
    url: String,
    http: reqwest::Client,
    measured: Measured,
}

impl LoadCase {
    fn new(url: String) -> Self {
        Self { url, http: reqwest::Client::new(), measured: Measured::default() }
    }

    fn finish(mut self) -> Measured {
        self.measured.latencies.sort_unstable();
        self.measured
    }
}

/// The partner router with one extra route that authenticates and parses like intake but stores nothing.
struct IntakeServer {
    address: SocketAddr,
    shutdown: CancellationToken,
    serving: JoinHandle<std::io::Result<()>>,
    writer_task: JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl IntakeServer {
    async fn start(durability: Durability) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let url = format!("sqlite://{}", dir.path().join("intake.db").display());
        let store = Store::open(&StoreConfig { url, durability, max_connections: 4 }).await?;
        // No worker runs, so nobody listens for the commit notifications.
        let (writer, writer_task) = LeadWriter::start(store.clone(), Arc::new(Notify::new()));
        // No callback is ever sent here; the guard is only a required part of the state.
        let guard = AddressGuard::new(&SecurityConfig::default());
        let files_url = url::Url::parse("http://127.0.0.1/")?;
        let files = FileStore::open(&dir.path().join("files"), "bench".to_owned(), files_url.clone()).await?;
        let recordings = RecordingLinks::new("bench".to_owned().into(), files_url);
        let sources = vec![bench_source()];
        let state = AppState::from(StateParts::new(
            store,
            writer,
            PhoneRegion::RUSSIA,
            sources,
            guard,
            None,
            files,
            recordings,
        ));
        // The router arrives with its state already applied, so the extra route gets the
        // source keys the authentication extractor needs on its own.
        let source_keys = state.source_keys.clone();
        let router = leadgate::http::router(state, Default::default())
            .route("/bench/noop", post(accept_without_storing).with_state(source_keys));
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let address = listener.local_addr()?;
        let shutdown = CancellationToken::new();
        let server = axum::serve(listener, router).with_graceful_shutdown(shutdown.clone().cancelled_owned());
        let serving = tokio::spawn(async move { server.await });
        Ok(Self { address, shutdown, serving, writer_task, _dir: dir })
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.serving.await??;
        self.writer_task.await?;
        Ok(())
    }
}

/// Everything `partner::accept` does before it reaches the store, answered the same way.
async fn accept_without_storing(_source: AuthenticatedSource, body: Bytes) -> Result<Json<Value>, ApiError> {
    let payload: Value = serde_json::from_slice(&body).map_err(|error| ApiError::Invalid(error.to_string()))?;
    let phone = payload.get("phone").and_then(Value::as_str).ok_or(ApiError::MissingNameOrPhone)?;
    Phone::parse(phone, PhoneRegion::RUSSIA).map_err(|error| ApiError::Invalid(error.to_string()))?;
    Ok(Json(json!({ "id": 0 })))
}

fn bench_source() -> SourceConfig {
    SourceConfig {
        id: SourceId("bench".to_owned()),
        kind: SourceKind::Partner { keys: SecretString::from(SOURCE_KEY).into() },
        route: Route {
            destination: "bench".to_owned(),
            pipeline: "TrendAgent".to_owned(),
            status: "Объект выбран".to_owned(),
            ..Route::default()
        },
        retry: RetryPolicy::default(),
        feedback: SourceFeedback::default(),
        requests_per_minute: None,
    }
}

/// `+7 99d ddd-dd-dd`: ten million distinct, possible Russian mobile numbers.
fn next_phone() -> String {
    let serial = NEXT_PHONE.fetch_add(1, Ordering::Relaxed) % 10_000_000;
    format!("+7 99{} {:03}-{:02}-{:02}", serial / 1_000_000, serial / 10_000 % 1000, serial / 100 % 100, serial % 100)
}

/// Posts one lead and returns the id the server answered with.
async fn post_lead(http: &reqwest::Client, url: &str) -> Result<i64, String> {
    let body =
        json!({ "name": "Иван Бенчмарков", "phone": next_phone(), "comment": "ЖК Север, корпус 2, двухкомнатная" });
    let response =
        http.post(url).bearer_auth(SOURCE_KEY).json(&body).send().await.map_err(|error| error.to_string())?;
    let status = response.status();
    let answer: Value = response.json().await.map_err(|error| error.to_string())?;
    match answer["id"].as_i64() {
        Some(id) if status.is_success() => Ok(id),
        _ => Err(format!("{status}: {answer}")),
    }
}

/// Latencies of the successful requests (sorted once complete), and what the run cost.
#[derive(Default)]
struct Measured {
    latencies: Vec<Duration>,
    failures: usize,
    first_failure: Option<String>,
    window: Duration,
}

impl Measured {
    fn throughput(&self) -> f64 {
        self.latencies.len() as f64 / self.window.as_secs_f64()
    }

    fn percentile(&self, percent: f64) -> Duration {
        percentile(&self.latencies, percent)
    }

    fn absorb(&mut self, other: Measured) {
        self.latencies.extend(other.latencies);
        self.failures += other.failures;
        self.first_failure = self.first_failure.take().or(other.first_failure);
        self.window += other.window;
    }
}

/// Nearest-rank percentile of sorted durations; zero when there are none.
fn percentile(sorted: &[Duration], percent: f64) -> Duration {
    let rank = (percent / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.saturating_sub(1)).copied().unwrap_or_default()
}

/// Closed-loop load for `duration`: each client posts, waits for the answer, posts again. The
/// window closes when the last request started in it is answered.
async fn drive(http: &reqwest::Client, url: &str, duration: Duration) -> Measured {
    let started = Instant::now();
    let window_end = started + duration;
    let mut clients = JoinSet::new();
    for _ in 0..INTAKE_CLIENTS {
        let (http, url) = (http.clone(), url.to_owned());
        clients.spawn(async move {
            let mut measured = Measured::default();
            while Instant::now() < window_end {
                let sent = Instant::now();
                match post_lead(&http, &url).await {
                    Ok(_) => measured.latencies.push(sent.elapsed()),
                    Err(error) => {
                        measured.failures += 1;
                        measured.first_failure.get_or_insert(error);
                    }
                }
            }
            measured
        });
    }
    let mut all = Measured::default();
    while let Some(Ok(measured)) = clients.join_next().await {
        all.absorb(measured);
    }
    all.window = started.elapsed();
    all
}

fn print_intake(noop: &Measured, normal: &Measured, full: &Measured) {
    println!();
    println!(
        "{:<44} {:>9} {:>10} {:>8} {:>8} {:>9}",
        "intake case", "requests", "leads/s", "p50 ms", "p99 ms", "failures"
    );
    for (name, measured) in [
        ("no-op handler (auth + JSON + phone parse)", noop),
        ("durable, synchronous=NORMAL (process crash)", normal),
        ("durable, synchronous=FULL (power loss)", full),
    ] {
        println!(
            "{name:<44} {:>9} {:>10.0} {:>8.2} {:>8.2} {:>9}",
            measured.latencies.len(),
            measured.throughput(),
            milliseconds(measured.percentile(50.0)),
            milliseconds(measured.percentile(99.0)),
            measured.failures,
        );
        if let Some(failure) = &measured.first_failure {
            println!("    first failure: {failure}");
        }
    }
    println!();
    for (name, measured) in [("NORMAL", normal), ("FULL", full)] {
        let ratio = measured.throughput() / noop.throughput();
        let p99 = measured.percentile(99.0);
        println!(
            "{name:<6} durable/no-op throughput {ratio:.2}x (target >= {TARGET_RATIO}x: {}), p99 {:.2} ms (target < {} ms: {})",
            verdict(ratio >= TARGET_RATIO),
            milliseconds(p99),
            TARGET_P99.as_millis(),
            verdict(p99 < TARGET_P99),
        );
    }
}

fn verdict(met: bool) -> &'static str {
    if met { "PASS" } else { "MISS" }
}

fn milliseconds(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// The whole gateway (intake, worker, amoCRM connector) against the emulator.
struct EndToEnd {
    intake: Measured,
    all_posted: Duration,
    all_settled: Duration,
    statuses: Vec<(String, i64)>,
    /// Per lead, from the commit of `pending` to the commit of its outcome.
    delivery: Vec<Duration>,
    deals_in_crm: usize,
    crm_traffic: TrafficStats,
}

async fn run_end_to_end() -> anyhow::Result<EndToEnd> {
    let emulator_config = EmulatorConfig { requests_per_second: 1000, ..EmulatorConfig::default() };
    let crm = amocrm_emulator::spawn(emulator_config, SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
    let dir = tempfile::tempdir()?;
    let mut config = Config::load(None)?;
    config.listen = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    config.store.url = format!("sqlite://{}", dir.path().join("end-to-end.db").display());
    let destination = AmoCrmConfig {
        name: "bench".to_owned(),
        base_url: crm.base_url().parse()?,
        auth: AmoCrmAuth::LongLivedToken(SecretString::from("sandbox-long-lived-token")),
        requests_per_second: 1000,
        timeout: Duration::from_secs(10),
    };
    config.destinations = BTreeMap::from([("bench".to_owned(), DestinationConfig::AmoCrm(destination))]);
    let source = bench_source();
    config.sources = BTreeMap::from([(source.id.clone(), source)]);
    let app = App::build(config).await?;
    let (url, store) = (format!("http://{}/api/v1/leads", app.address), app.store.clone());
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(app.run(Role::All, shutdown.clone()));

    let started = Instant::now();
    let (intake, ids) = post_batch(&url, END_TO_END_LEADS, END_TO_END_CLIENTS).await;
    let all_posted = started.elapsed();
    let statuses = wait_until_settled(&store, ids.len()).await?;
    let all_settled = started.elapsed();
    let mut delivery = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(lead) = store.find_lead(LeadId(id)).await?.filter(|lead| lead.status == LeadStatus::Approved) {
            delivery.push((lead.updated_at - lead.created_at).to_std().unwrap_or_default());
        }
    }
    delivery.sort_unstable();
    let deals_in_crm = crm.emulator.snapshot()["leads"].as_array().map_or(0, Vec::len);
    let crm_traffic = crm.emulator.traffic_stats();
    shutdown.cancel();
    running.await??;
    crm.shutdown().await;
    Ok(EndToEnd { intake, all_posted, all_settled, statuses, delivery, deals_in_crm, crm_traffic })
}

/// Posts `count` leads from `clients` concurrent clients; returns their latencies and ids.
async fn post_batch(url: &str, count: usize, clients: usize) -> (Measured, Vec<i64>) {
    let http = reqwest::Client::new();
    let remaining = Arc::new(AtomicUsize::new(count));
    let started = Instant::now();
    let mut posters = JoinSet::new();
    for _ in 0..clients {
        let (http, url, remaining) = (http.clone(), url.to_owned(), Arc::clone(&remaining));
        posters.spawn(async move {
            let (mut measured, mut ids) = (Measured::default(), Vec::new());
            while remaining.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| left.checked_sub(1)).is_ok() {
                let sent = Instant::now();
                match post_lead(&http, &url).await {
                    Ok(id) => {
                        measured.latencies.push(sent.elapsed());
                        ids.push(id);
                    }
                    Err(error) => {
                        measured.failures += 1;
                        measured.first_failure.get_or_insert(error);
                    }
                }
            }
            (measured, ids)
        });
    }
    let (mut all, mut all_ids) = (Measured::default(), Vec::with_capacity(count));
    while let Some(Ok((measured, ids))) = posters.join_next().await {
        all.absorb(measured);
        all_ids.extend(ids);
    }
    all.window = started.elapsed();
    all.latencies.sort_unstable();
    (all, all_ids)
}

/// Waits until no lead is `pending` or `processing` and returns the count per status.
/// Polls the store in-process: a status query per 10 ms costs the worker far less than
/// 500 HTTP requests would.
async fn wait_until_settled(store: &Store, expected: usize) -> anyhow::Result<Vec<(String, i64)>> {
    let deadline = Instant::now() + END_TO_END_DEADLINE;
    loop {
        let statuses = store.count_by_status(None).await?;
        let settled: i64 = statuses
            .iter()
            .filter(|(status, _)| !matches!(status.as_str(), "pending" | "processing"))
            .map(|(_, count)| count)
            .sum();
        if settled >= expected as i64 || Instant::now() >= deadline {
            return Ok(statuses);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

impl EndToEnd {
    fn print(&self) {
        let delivery = |percent: f64| milliseconds(percentile(&self.delivery, percent));
        let posted = self.intake.latencies.len();
        println!();
        println!(
            "end to end: {END_TO_END_LEADS} leads from {END_TO_END_CLIENTS} clients, synchronous=NORMAL, amoCRM emulator at 1000 requests/s"
        );
        println!(
            "  intake:   {posted} accepted in {:.0} ms ({:.0} leads/s), p50 {:.2} ms, p99 {:.2} ms, {} failures",
            milliseconds(self.all_posted),
            self.intake.throughput(),
            milliseconds(self.intake.percentile(50.0)),
            milliseconds(self.intake.percentile(99.0)),
            self.intake.failures,
        );
        println!(
            "  settled:  all after {:.0} ms ({:.0} leads/s end to end); statuses {:?}; deals in the emulator: {}",
            milliseconds(self.all_settled),
            posted as f64 / self.all_settled.as_secs_f64(),
            self.statuses,
            self.deals_in_crm,
        );
        println!(
            "  per lead, committed -> approved: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms ({} approved)",
            delivery(50.0),
            delivery(99.0),
            delivery(100.0),
            self.delivery.len(),
        );
        let traffic = &self.crm_traffic;
        println!(
            "  CRM:      {} API requests ({:.1} per lead), busiest second {} of {} allowed, {} answered 429",
            traffic.api_requests,
            traffic.api_requests as f64 / posted.max(1) as f64,
            traffic.max_requests_in_any_second,
            traffic.requests_per_second_limit,
            traffic.rate_limited,
        );
    }
}
