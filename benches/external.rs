//! Intake measured from outside the process: the release binary pinned to one core, `wrk` and `oha`
//! pinned to the other, on SQLite and PostgreSQL, with 0 to 1,000,000 leads already pending.
//!
//! ```sh
//! apt-get install -y wrk && cargo install oha --locked   # the load generators
//! cargo bench --bench external
//! BENCH_BACKENDS=sqlite BENCH_BACKLOGS=0,100000 BENCH_SECONDS=3 cargo bench --bench external
//! ```
//!
//! `BENCH_BACKENDS` (default `sqlite,postgres`), `BENCH_BACKLOGS` (default `0,10000,100000,1000000`),
//! `BENCH_SECONDS` per closed-loop run (default 5; open-loop runs take twice as long),
//! `LEADGATE_BENCH_POSTGRES` (default: the local server). A plain program: it prints figures and
//! marks the targets PASS or MISS, and never fails on a miss.

#[path = "external/tools.rs"]
mod external_tools;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use amocrm_emulator::EmulatorConfig;
use leadgate::config::{Durability, StoreConfig};
use leadgate::store::Store;

use external_tools::{OpenLoop, Saturation, Target, oha, wrk};

const PARTNER_KEY: &str = "bench-partner-key-0123456789";
const PROXY_KEY: &str = "bench-proxy-key-0123456789";
/// amoCRM's own limit: the CRM is the slow end, as in production.
const CRM_REQUESTS_PER_SECOND: u32 = 7;
const CLAIMS: usize = 40;
const CLAIM_BATCH: usize = 50;

fn main() -> anyhow::Result<()> {
    external_tools::require_tools()?;
    let list = |name: &str, default: &str| -> Vec<String> {
        let text = std::env::var(name).unwrap_or_else(|_| default.to_owned());
        text.split(',').map(|item| item.trim().to_owned()).filter(|item| !item.is_empty()).collect()
    };
    let backends = list("BENCH_BACKENDS", "sqlite,postgres");
    let backlogs: Vec<u64> =
        list("BENCH_BACKLOGS", "0,10000,100000,1000000").iter().map(|size| size.parse()).collect::<Result<_, _>>()?;
    let seconds: u64 = std::env::var("BENCH_SECONDS").unwrap_or_else(|_| "5".into()).parse()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        for backend in &backends {
            run_backend(backend, &backlogs, Duration::from_secs(seconds)).await?;
        }
        Ok(())
    })
}

/// Every measurement of one backend, printed as it is taken. Each backlog size gets a database of
/// its own, filled before the gateway starts, so "pending" is what the runs started with.
async fn run_backend(backend: &str, backlogs: &[u64], span: Duration) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let emulator = EmulatorConfig { requests_per_second: CRM_REQUESTS_PER_SECOND, ..EmulatorConfig::default() };
    let crm = amocrm_emulator::spawn(emulator, SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
    std::fs::write(dir.path().join("leadgate.toml"), config(&crm.base_url()))?;
    println!("\n# {backend}\n");
    let mut run = 0;
    let (url, store) = fresh_database(backend, dir.path(), "empty").await?;
    let gateway = Gateway::start(dir.path(), &url)?;
    gateway.wait_until_up().await?;
    let (partner_at_zero, proxy_at_zero) = side_by_side(gateway.address, span, &mut run)?;
    flood(gateway.address, span, &mut run, &store).await?;
    gateway.stop()?;
    drop(store);
    let mut rows = Vec::new();
    for &backlog in backlogs {
        let (url, store) = fresh_database(backend, dir.path(), &backlog.to_string()).await?;
        let pending = fill_backlog(&url, backlog).await?;
        let claim = claim_latency(&store).await?;
        drop(store);
        let gateway = Gateway::start(dir.path(), &url)?;
        gateway.wait_until_up().await?;
        let intake = wrk(gateway.address, Target::Partner, span, next(&mut run))?;
        let open = oha(gateway.address, Target::Proxy, proxy_at_zero / 2.0, span * 2)?;
        let (rss, _) = gateway.memory_kib()?;
        let stopped = gateway.stop()?;
        println!("pending {pending}: measured");
        rows.push((pending, intake, open, claim, rss, stopped));
    }
    print_backlog_table(&rows, partner_at_zero);
    crm.shutdown().await;
    Ok(())
}

/// An empty database for one part of the run, and the store the benchmark reads it through.
async fn fresh_database(backend: &str, dir: &Path, name: &str) -> anyhow::Result<(String, Store)> {
    let url = match backend {
        "sqlite" => {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(dir.join(format!("{name}.db{suffix}")));
            }
            format!("sqlite://{}", dir.join(format!("{name}.db")).display())
        }
        "postgres" => fresh_postgres_database(&format!("leadgate_bench_external_{name}"))?,
        other => anyhow::bail!("unknown backend {other}"),
    };
    let config = StoreConfig { url: url.clone(), durability: Durability::ProcessCrash, max_connections: 4 };
    Ok((url, Store::open(&config).await?))
}

fn next(run: &mut u64) -> u64 {
    *run += 1;
    *run
}

/// The no-op route and durable intake in turns (ABAB), then open-loop latency at half of durable
/// saturation for intake and for the no-op route at the same rate. Returns the partner and proxy
/// routes' saturation.
fn side_by_side(address: SocketAddr, span: Duration, run: &mut u64) -> anyhow::Result<(f64, f64)> {
    let mut results: Vec<(Target, Saturation)> = Vec::new();
    for _ in 0..2 {
        for target in [Target::Healthz, Target::Partner, Target::Proxy] {
            results.push((target, wrk(address, target, span, next(run))?));
        }
    }
    println!("## Saturation, {} s per run, 64 connections, runs in turns\n", span.as_secs());
    println!("| route | run 1 req/s | run 2 req/s | p99 ms (run 1 / 2) | non-2xx or errors |");
    println!("|---|---:|---:|---:|---:|");
    let mean = |target: Target| {
        let runs: Vec<&Saturation> = results.iter().filter(|(t, _)| *t == target).map(|(_, s)| s).collect();
        println!(
            "| {} | {:.0} | {:.0} | {:.1} / {:.1} | {} |",
            target.label(),
            runs[0].per_second,
            runs[1].per_second,
            runs[0].p99_ms,
            runs[1].p99_ms,
            runs[0].failures + runs[1].failures
        );
        (runs[0].per_second + runs[1].per_second) / 2.0
    };
    let (noop, partner, proxy) = (mean(Target::Healthz), mean(Target::Partner), mean(Target::Proxy));
    let verdict = |pass: bool| if pass { "PASS" } else { "MISS" };
    for (name, durable) in [("partner", partner), ("proxy", proxy)] {
        let ratio = durable / noop;
        println!("\n{name} intake / no-op: {ratio:.2}x (target >= 0.25x: {})", verdict(ratio >= 0.25));
    }
    let rate = proxy / 2.0;
    let intake = oha(address, Target::Proxy, rate, span * 2)?;
    let noop = oha(address, Target::Healthz, rate, span * 2)?;
    println!("\n## Open loop at {rate:.0} requests/s (half of durable saturation), latency corrected\n");
    println!("| route | achieved/s | p50 ms | p99 ms | p99.9 ms | non-2xx or errors |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (target, open) in [(Target::Proxy, &intake), (Target::Healthz, &noop)] {
        println!(
            "| {} | {:.0} | {:.2} | {:.2} | {:.2} | {} |",
            target.label(),
            open.rate,
            open.p50_ms,
            open.p99_ms,
            open.p999_ms,
            open.failures
        );
    }
    let pass = intake.p99_ms <= noop.p99_ms + 10.0;
    println!("\nintake p99 <= no-op p99 + 10 ms: {}\n", verdict(pass));
    Ok((partner, proxy))
}

/// Every lead for one phone, as fast as intake takes them; then whether a claim still finds the
/// other clients at once.
async fn flood(address: SocketAddr, span: Duration, run: &mut u64, store: &Store) -> anyhow::Result<()> {
    let flood = wrk(address, Target::Flood, span, next(run))?;
    let started = Instant::now();
    let claims = store.claim_due(CLAIM_BATCH, Duration::from_secs(600)).await?;
    let took = started.elapsed().as_secs_f64() * 1000.0;
    println!(
        "## Same-phone flood\n\none phone: {:.0} leads/s, p99 {:.1} ms, non-2xx or errors {}; the next claim of {CLAIM_BATCH} \
         took {took:.2} ms and {} leads\n",
        flood.per_second,
        flood.p99_ms,
        flood.failures,
        claims.len()
    );
    Ok(())
}

type BacklogRow = (u64, Saturation, OpenLoop, (f64, f64), u64, Duration);

fn print_backlog_table(rows: &[BacklogRow], partner_at_zero: f64) {
    println!("\n## Against the backlog\n");
    println!(
        "| pending | intake leads/s | vs empty | p99 ms | open loop p50 / p99 / p99.9 ms | claim p50 / p99 ms | RSS MiB | SIGTERM → exit | non-2xx |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (pending, intake, open, claim, rss, stopped) in rows {
        println!(
            "| {pending} | {:.0} | {:.2}x | {:.1} | {:.1} / {:.1} / {:.1} | {:.2} / {:.2} | {} | {:.1} s | {} |",
            intake.per_second,
            intake.per_second / partner_at_zero,
            intake.p99_ms,
            open.p50_ms,
            open.p99_ms,
            open.p999_ms,
            claim.0,
            claim.1,
            rss / 1024,
            stopped.as_secs_f64(),
            intake.failures + open.failures
        );
    }
    let by_size = |size: u64| rows.iter().find(|row| row.0 == size);
    if let (Some(empty), Some(million)) = (by_size(0), by_size(1_000_000)) {
        let ratio = million.1.per_second / empty.1.per_second;
        println!("\nintake at ~1M pending / at the start: {ratio:.2}x (target >= 0.8x)");
        println!("RSS at ~1M pending: {} MiB (target < 64 MiB)", million.4 / 1024);
        if let Some(ten_thousand) = by_size(10_000) {
            let ratio = million.3.0 / ten_thousand.3.0;
            println!("claim p50 at ~1M / at ~10k: {ratio:.2}x (target <= 1.5x)");
        }
    }
}

/// Tops the backlog up to `wanted` pending leads, every one a new client, straight into the tables
/// (with the gateway stopped); returns how many are pending now.
async fn fill_backlog(url: &str, wanted: u64) -> anyhow::Result<u64> {
    let fill_sqlite = "with recursive n(i) as (select $1 union all select i + 1 from n where i < $2)
         insert into leads (source_id, name, phone, phone_raw, payload, status, run_at, created_at, updated_at)
         select 'partner', 'Backlog', '+7' || (9000000000 + i), 'x', '{}', 'pending', $3, $3, $3 from n";
    let fill_postgres =
        "insert into leads (source_id, name, phone, phone_raw, payload, status, run_at, created_at, updated_at)
         select 'partner', 'Backlog', '+7' || (9000000000 + i), 'x', '{}', 'pending', $3, $3, $3
         from generate_series($1::bigint, $2::bigint) as i";
    let queue = "insert into client_queue (phone, lead_id, run_at, in_flight, started)
         select phone, id, run_at, false, false from leads where id > $1 and status = 'pending'
         on conflict (phone) do nothing";
    let now = chrono::Utc::now().timestamp_millis();
    macro_rules! fill {
        ($pool:expr, $fill:expr) => {{
            let pool = $pool;
            let (pending, filled): (i64, i64) = sqlx::query_as(
                "select (select count(*) from leads where status = 'pending'),
                        (select count(*) from leads where source_id = 'partner' and name = 'Backlog')",
            )
            .fetch_one(&pool)
            .await?;
            let missing = i64::try_from(wanted)? - pending;
            let mut start = filled + 1;
            while start <= filled + missing {
                let end = (start + 99_999).min(filled + missing);
                let mut tx = pool.begin().await?;
                let last: i64 =
                    sqlx::query_scalar("select coalesce(max(id), 0) from leads").fetch_one(&mut *tx).await?;
                sqlx::query($fill).bind(start).bind(end).bind(now).execute(&mut *tx).await?;
                sqlx::query(queue).bind(last).execute(&mut *tx).await?;
                tx.commit().await?;
                start = end + 1;
            }
            let pending: i64 =
                sqlx::query_scalar("select count(*) from leads where status = 'pending'").fetch_one(&pool).await?;
            pool.close().await;
            u64::try_from(pending)?
        }};
    }
    Ok(if url.starts_with("sqlite") {
        fill!(sqlx::SqlitePool::connect(url).await?, fill_sqlite)
    } else {
        let pending = fill!(sqlx::PgPool::connect(url).await?, fill_postgres);
        let analyzed = Command::new("psql").args([url, "-qc", "analyze leads; analyze client_queue"]).output()?;
        anyhow::ensure!(analyzed.status.success(), "{}", String::from_utf8_lossy(&analyzed.stderr));
        pending
    })
}

/// Median and p99 of `CLAIMS` claims of `CLAIM_BATCH` leads, in milliseconds, with the gateway stopped
/// (with nothing pending, claims that find nothing).
async fn claim_latency(store: &Store) -> anyhow::Result<(f64, f64)> {
    let mut took = Vec::with_capacity(CLAIMS);
    for _ in 0..CLAIMS {
        let started = Instant::now();
        store.claim_due(CLAIM_BATCH, Duration::from_secs(600)).await?;
        took.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    took.sort_by(f64::total_cmp);
    let at = |quantile: f64| took[((took.len() - 1) as f64 * quantile).round() as usize];
    Ok((at(0.5), at(0.99)))
}

fn fresh_postgres_database(name: &str) -> anyhow::Result<String> {
    let server =
        std::env::var("LEADGATE_BENCH_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    for statement in [format!("drop database if exists {name} with (force)"), format!("create database {name}")] {
        let done = Command::new("psql").args([&format!("{server}/postgres"), "-qc", &statement]).output()?;
        anyhow::ensure!(done.status.success(), "{}", String::from_utf8_lossy(&done.stderr));
    }
    Ok(format!("{server}/{name}"))
}

fn config(crm_url: &str) -> String {
    format!(
        r#"
[destinations.main]
kind = "amocrm"
base_url = "{crm_url}"
access_token = "sandbox-long-lived-token"
requests_per_second = {CRM_REQUESTS_PER_SECOND}
[sources.partner]
kind = "partner"
key = "{PARTNER_KEY}"
destination = "main"
pipeline = "TrendAgent"
status = "Объект выбран"
[sources.site]
kind = "proxy"
key = "{PROXY_KEY}"
destination = "main"
pipeline = "Воронка"
status = "Первичный контакт"
"#
    )
}

/// `leadgate serve` (the release build) on its own core.
struct Gateway {
    address: SocketAddr,
    child: Child,
}

impl Gateway {
    fn start(dir: &Path, store_url: &str) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?.port();
        let child = Command::new("taskset")
            .args([
                "-c",
                external_tools::SERVER_CORE,
                env!("CARGO_BIN_EXE_leadgate"),
                "serve",
                "--config",
                "leadgate.toml",
            ])
            .current_dir(dir)
            .env("LEADGATE_STORE__URL", store_url)
            .env("LEADGATE_SERVER__LISTEN", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .spawn()?;
        Ok(Self { address: SocketAddr::from((Ipv4Addr::LOCALHOST, port)), child })
    }

    async fn wait_until_up(&self) -> anyhow::Result<()> {
        let http = reqwest::Client::new();
        for _ in 0..1200 {
            if http.get(format!("http://{}/healthz", self.address)).send().await.is_ok() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("the gateway did not start")
    }

    /// Resident and peak resident memory, KiB (`taskset` execs the gateway: same pid).
    fn memory_kib(&self) -> anyhow::Result<(u64, u64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let field = |name: &str| -> u64 {
            let line = status.lines().find(|line| line.starts_with(name)).unwrap_or_default();
            line.split_whitespace().nth(1).and_then(|kib| kib.parse().ok()).unwrap_or_default()
        };
        Ok((field("VmRSS:"), field("VmHWM:")))
    }

    /// SIGTERM; returns how long the gateway took to exit.
    fn stop(mut self) -> anyhow::Result<Duration> {
        let started = Instant::now();
        Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status()?;
        while self.child.try_wait()?.is_none() {
            anyhow::ensure!(started.elapsed() < Duration::from_secs(60), "still running a minute after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(started.elapsed())
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
