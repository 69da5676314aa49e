//! The Grupo ZAP benchmark: 200 portal connections post leads to the whole gateway while its worker delivers them.
//!
//! `cargo bench --bench portal`; `BENCH_SECONDS` sets how long each endpoint is measured. The portal
//! gives up on a lead after 5 s and sends it again, so the target is a p99 a hundred times inside that.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use amocrm_emulator::{EmulatorConfig, RunningEmulator};
use leadgate::config::{
    AmoCrmAuth, AmoCrmConfig, Config, DestinationConfig, RetryPolicy, Route, SourceConfig, SourceFeedback, SourceKind,
    ZapSource,
};
use leadgate::domain::SourceId;
use leadgate::domain::advertiser::{Advertiser, AdvertiserId, AdvertiserRoute};
use leadgate::domain::document::Document;
use leadgate::startup::{App, Role};
use leadgate::store::Store;
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

const SOURCE: &str = "zap";
const PORTAL_USER: &str = "vivareal";
const PORTAL_SECRET: &str = "bench-zap-secret-0123";
const PORTAL_CONNECTIONS: usize = 200;
const ADVERTISERS: usize = 100;
/// The portal counts a lead without an answer after this long as failed, so a slower answer
/// is counted as an error here too.
const PORTAL_TIMEOUT: Duration = Duration::from_secs(5);
const TARGET_P99: Duration = Duration::from_millis(50);
const WARM_UP: Duration = Duration::from_secs(1);
/// The endpoints take turns in slices this long, so background load on the shared machine and
/// the worker's growing backlog weigh on both alike.
const SLICE: Duration = Duration::from_secs(1);
const DEFAULT_SECONDS: u64 = 5;
/// Allowed by both the connector and the emulator: high enough that the CRM's pace is not what
/// intake waits on, while the worker still competes with intake for the CPUs and the database.
const CRM_REQUESTS_PER_SECOND: u32 = 2000;
/// Far beyond what the backlog needs at the CRM's pace; only a stuck worker reaches it.
const SETTLE_DEADLINE: Duration = Duration::from_secs(600);

/// Makes each lead's `originLeadId`, phone and e-mail unique, so none is a re-send or a known
/// client (the worker looks clients up by phone, then by e-mail), and spreads the leads evenly
/// over the advertisers.
static NEXT_LEAD: AtomicU64 = AtomicU64::new(0);

fn main() -> anyhow::Result<()> {
    let seconds = match std::env::var("BENCH_SECONDS") {
        Ok(text) => text.parse().map_err(|_| anyhow::anyhow!("BENCH_SECONDS=«{text}» is not a whole number"))?,
        Err(_) => DEFAULT_SECONDS,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run(seconds))
}

async fn run(seconds: u64) -> anyhow::Result<()> {
    println!(
        "leadgate Grupo ZAP benchmark: {PORTAL_CONNECTIONS} portal connections, {ADVERTISERS} advertisers; each endpoint \
         measured {seconds} x {} s, the endpoints taking turns, after {} s of warm-up; the worker delivers to the \
         amoCRM emulator ({CRM_REQUESTS_PER_SECOND} requests/s) meanwhile; loopback; {} CPUs shared by all",
        SLICE.as_secs(),
        WARM_UP.as_secs(),
        std::thread::available_parallelism().map_or(0, usize::from),
    );
    let gateway = Gateway::start().await?;
    let started = Instant::now();
    let mut cases = [LoadCase::new(Endpoint::PerAdvertiser)?, LoadCase::new(Endpoint::ByListing)?];
    for case in &cases {
        drive(case, &gateway.base_url, WARM_UP).await;
    }
    for _ in 0..seconds {
        for case in &mut cases {
            let slice = drive(case, &gateway.base_url, SLICE).await;
            case.measured.absorb(slice);
        }
    }
    let load_ended = Instant::now();
    let at_load_end = gateway.store.count_by_status(None).await?;
    // The portal's connections close here, before the gateway is asked to stop.
    let measured = cases.map(|case| (case.endpoint, case.measured.sorted()));
    print_intake(&measured);
    let settled = wait_until_settled(&gateway.store).await?;
    let settlement = Settlement { at_load_end, settled, since_load_end: load_ended.elapsed(), since_start: started };
    settlement.print(&gateway.crm);
    gateway.stop().await
}

/// The whole gateway (intake, worker, amoCRM connector) with a Grupo ZAP source and its
/// advertisers, delivering to an emulator.
struct Gateway {
    base_url: String,
    store: Store,
    crm: RunningEmulator,
    shutdown: CancellationToken,
    running: JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

impl Gateway {
    async fn start() -> anyhow::Result<Self> {
        let emulator = EmulatorConfig { requests_per_second: CRM_REQUESTS_PER_SECOND, ..EmulatorConfig::default() };
        let crm = amocrm_emulator::spawn(emulator, SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
        let dir = tempfile::tempdir()?;
        let mut config = Config::load(None)?;
        config.listen = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        config.store.url = format!("sqlite://{}", dir.path().join("portal.db").display());
        let destination = AmoCrmConfig {
            name: "crm".to_owned(),
            base_url: crm.base_url().parse()?,
            auth: AmoCrmAuth::LongLivedToken(SecretString::from("sandbox-long-lived-token")),
            requests_per_second: CRM_REQUESTS_PER_SECOND,
            timeout: Duration::from_secs(10),
        };
        config.destinations = BTreeMap::from([("crm".to_owned(), DestinationConfig::AmoCrm(destination))]);
        let source = portal_source();
        config.sources = BTreeMap::from([(source.id.clone(), source)]);
        let app = App::build(config).await?;
        let (base_url, store) = (format!("http://{}", app.address), app.store.clone());
        store.upsert_advertisers(&advertisers()?).await?;
        let shutdown = CancellationToken::new();
        let running = tokio::spawn(app.run(Role::All, shutdown.clone()));
        Ok(Self { base_url, store, crm, shutdown, running, _dir: dir })
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.running.await??;
        self.crm.shutdown().await;
        Ok(())
    }
}

fn portal_source() -> SourceConfig {
    SourceConfig {
        id: SourceId(SOURCE.to_owned()),
        kind: SourceKind::Zap(ZapSource {
            username: PORTAL_USER.to_owned(),
            secret_key: SecretString::from(PORTAL_SECRET),
            timezone: chrono_tz::America::Sao_Paulo,
        }),
        route: Route {
            destination: "crm".to_owned(),
            pipeline: "Воронка".to_owned(),
            status: "Первичный контакт".to_owned(),
            ..Route::default()
        },
        retry: RetryPolicy::default(),
        feedback: SourceFeedback::default(),
        requests_per_minute: None,
    }
}

/// `ADVERTISERS` enabled advertisers `imob-0`, `imob-1`, …, each owning the listing `L-<n>` and
/// sending its leads along the source's route.
fn advertisers() -> anyhow::Result<Vec<Advertiser>> {
    let documents = [Document::parse("11222333000181")?, Document::parse("56921485000100")?];
    (0..ADVERTISERS)
        .map(|number| {
            Ok(Advertiser {
                source: SourceId(SOURCE.to_owned()),
                id: AdvertiserId::parse(&format!("imob-{number}"))?,
                document: documents[number % documents.len()].clone(),
                name: format!("Imobiliária {number}"),
                email: None,
                send_lead_email: false,
                route: AdvertiserRoute::default(),
                listings: vec![listing(number)],
                enabled: true,
            })
        })
        .collect()
}

fn listing(advertiser: usize) -> String {
    format!("L-{advertiser}")
}

/// The two ways the portal can reach the gateway.
#[derive(Debug, Clone, Copy)]
enum Endpoint {
    /// `/grupozap/lead/{advertiser}`: the URL names the advertiser.
    PerAdvertiser,
    /// `/grupozap/lead`: the advertiser is whoever owns the lead's `clientListingId`.
    ByListing,
}

impl Endpoint {
    fn label(self) -> &'static str {
        match self {
            Self::PerAdvertiser => "/grupozap/lead/{advertiser}",
            Self::ByListing => "/grupozap/lead (by listing)",
        }
    }

    fn url(self, base_url: &str, advertiser: usize) -> String {
        match self {
            Self::PerAdvertiser => format!("{base_url}/grupozap/lead/imob-{advertiser}"),
            Self::ByListing => format!("{base_url}/grupozap/lead"),
        }
    }
}

/// The contract's sample lead with a fresh `originLeadId`, phone and e-mail, for the next advertiser in turn.
fn next_lead() -> (usize, Value) {
    let serial = NEXT_LEAD.fetch_add(1, Ordering::Relaxed);
    let advertiser = (serial % ADVERTISERS as u64) as usize;
    // São Paulo mobiles (11) 99xxx-xxxx: ten million distinct numbers.
    let phone = format!("99{:07}", serial % 10_000_000);
    let lead = json!({
        "leadOrigin": "VivaReal",
        "timestamp": "2017-10-23T15:50:30.619",
        "originLeadId": format!("bench-{serial}"),
        "originListingId": "87027856",
        "clientListingId": listing(advertiser),
        "name": "Nome Consumidor",
        "email": format!("consumidor-{serial}@example.com.br"),
        "ddd": "11",
        "phone": phone,
        "phoneNumber": format!("11{phone}"),
        "message": "Olá, tenho interesse neste imóvel. Aguardo o contato. Obrigado.",
        "temperature": "hot",
    });
    (advertiser, lead)
}

/// Posts one lead as the portal does; anything but `200 {"id": N}` is an error.
async fn post_lead(http: &reqwest::Client, url: &str, lead: &Value) -> Result<(), String> {
    let response = http
        .post(url)
        .basic_auth(PORTAL_USER, Some(PORTAL_SECRET))
        .json(lead)
        .send()
        .await
        .map_err(|error| error.to_string())?;
    let status = response.status();
    let answer: Value = response.json().await.map_err(|error| format!("{status}: {error}"))?;
    if status.is_success() && answer["id"].is_i64() { Ok(()) } else { Err(format!("{status}: {answer}")) }
}

/// One endpoint under load: a client per portal connection, kept (with its open connection)
/// from one slice to the next, and what its slices have measured so far.
struct LoadCase {
    endpoint: Endpoint,
    connections: Vec<reqwest::Client>,
    measured: Measured,
}

impl LoadCase {
    fn new(endpoint: Endpoint) -> anyhow::Result<Self> {
        let connections = (0..PORTAL_CONNECTIONS)
            .map(|_| reqwest::Client::builder().timeout(PORTAL_TIMEOUT).build())
            .collect::<Result<_, _>>()?;
        Ok(Self { endpoint, connections, measured: Measured::default() })
    }
}

/// Closed-loop load for `duration`: on each connection, post, wait for the answer, post again.
/// The window closes when the last request started inside it is answered.
async fn drive(case: &LoadCase, base_url: &str, duration: Duration) -> Measured {
    let started = Instant::now();
    let window_end = started + duration;
    let mut connections = JoinSet::new();
    for http in &case.connections {
        let (http, base_url, endpoint) = (http.clone(), base_url.to_owned(), case.endpoint);
        connections.spawn(async move {
            let mut measured = Measured::default();
            while Instant::now() < window_end {
                let (advertiser, lead) = next_lead();
                let url = endpoint.url(&base_url, advertiser);
                let sent = Instant::now();
                match post_lead(&http, &url, &lead).await {
                    Ok(()) => measured.latencies.push(sent.elapsed()),
                    Err(error) => {
                        measured.errors += 1;
                        measured.first_error.get_or_insert(error);
                    }
                }
            }
            measured
        });
    }
    let mut all = Measured::default();
    while let Some(joined) = connections.join_next().await {
        match joined {
            Ok(measured) => all.absorb(measured),
            Err(error) => {
                all.errors += 1;
                all.first_error.get_or_insert(format!("a connection's task failed: {error}"));
            }
        }
    }
    all.window = started.elapsed();
    all
}

/// Latencies of the answered leads (sorted by `sorted` before reading percentiles), and errors.
#[derive(Default)]
struct Measured {
    latencies: Vec<Duration>,
    errors: usize,
    first_error: Option<String>,
    window: Duration,
}

impl Measured {
    fn absorb(&mut self, other: Measured) {
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
        self.first_error = self.first_error.take().or(other.first_error);
        self.window += other.window;
    }

    fn sorted(mut self) -> Self {
        self.latencies.sort_unstable();
        self
    }

    fn per_second(&self) -> f64 {
        self.latencies.len() as f64 / self.window.as_secs_f64()
    }

    /// Nearest rank; zero when nothing was answered.
    fn percentile(&self, percent: f64) -> Duration {
        let rank = (percent / 100.0 * self.latencies.len() as f64).ceil() as usize;
        self.latencies.get(rank.saturating_sub(1)).copied().unwrap_or_default()
    }
}

fn print_intake(measured: &[(Endpoint, Measured)]) {
    println!();
    println!(
        "{:<30} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>7}",
        "endpoint", "requests", "leads/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors"
    );
    for (endpoint, measured) in measured {
        println!(
            "{:<30} {:>9} {:>9.0} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>7}",
            endpoint.label(),
            measured.latencies.len(),
            measured.per_second(),
            milliseconds(measured.percentile(50.0)),
            milliseconds(measured.percentile(90.0)),
            milliseconds(measured.percentile(99.0)),
            milliseconds(measured.percentile(100.0)),
            measured.errors,
        );
        if let Some(error) = &measured.first_error {
            println!("    first error: {error}");
        }
    }
    println!();
    for (endpoint, measured) in measured {
        let p99 = measured.percentile(99.0);
        let met = p99 < TARGET_P99 && measured.errors == 0 && !measured.latencies.is_empty();
        println!(
            "{:<30} p99 {:.2} ms, {} errors (target p99 < {} ms, 100x inside the portal's {} s timeout, no errors): {}",
            endpoint.label(),
            milliseconds(p99),
            measured.errors,
            TARGET_P99.as_millis(),
            PORTAL_TIMEOUT.as_secs(),
            if met { "PASS" } else { "MISS" },
        );
    }
}

/// Waits until no lead is `pending` or `processing`; returns the count per status and whether
/// that happened before the deadline.
async fn wait_until_settled(store: &Store) -> anyhow::Result<(Vec<(String, i64)>, bool)> {
    let deadline = Instant::now() + SETTLE_DEADLINE;
    loop {
        let statuses = store.count_by_status(None).await?;
        let settled = unsettled(&statuses) == 0;
        if settled || Instant::now() >= deadline {
            return Ok((statuses, settled));
        }
        // A status count per 100 ms costs the worker next to nothing against its backlog.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn unsettled(statuses: &[(String, i64)]) -> i64 {
    statuses
        .iter()
        .filter(|(status, _)| matches!(status.as_str(), "pending" | "processing"))
        .map(|(_, count)| count)
        .sum()
}

fn count_of(statuses: &[(String, i64)], wanted: &str) -> i64 {
    statuses.iter().filter(|(status, _)| status == wanted).map(|(_, count)| count).sum()
}

/// What the worker did with the leads, during the load and after it.
struct Settlement {
    at_load_end: Vec<(String, i64)>,
    settled: (Vec<(String, i64)>, bool),
    since_load_end: Duration,
    since_start: Instant,
}

impl Settlement {
    fn print(&self, crm: &RunningEmulator) {
        let (statuses, all_settled) = &self.settled;
        let accepted: i64 = statuses.iter().map(|(_, count)| count).sum();
        let settled = accepted - unsettled(statuses);
        let total = self.since_start.elapsed();
        let waiting_at_load_end = unsettled(&self.at_load_end);
        println!();
        println!(
            "delivery: {accepted} leads accepted (warm-up included); when the load stopped, {} were settled ({} \
             approved) and {waiting_at_load_end} still waiting",
            self.at_load_end.iter().map(|(_, count)| count).sum::<i64>() - waiting_at_load_end,
            count_of(&self.at_load_end, "approved"),
        );
        if *all_settled {
            println!(
                "  settled:  all {:.1} s after the load stopped, {:.1} s after the first lead ({:.0} leads/s end to end)",
                self.since_load_end.as_secs_f64(),
                total.as_secs_f64(),
                settled as f64 / total.as_secs_f64(),
            );
        } else {
            println!("  settled:  NOT within {} s of the load stopping", SETTLE_DEADLINE.as_secs());
        }
        println!(
            "  statuses: {statuses:?}; delivered (approved) {}; deals in the emulator {}",
            count_of(statuses, "approved"),
            crm.emulator.leads_count()
        );
        let traffic = crm.emulator.traffic_stats();
        println!(
            "  CRM:      {} API requests ({:.1} per lead), busiest second {} of {} allowed, {} answered 429",
            traffic.api_requests,
            traffic.api_requests as f64 / accepted.max(1) as f64,
            traffic.max_requests_in_any_second,
            traffic.requests_per_second_limit,
            traffic.rate_limited,
        );
    }
}

fn milliseconds(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
