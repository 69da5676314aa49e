//! The PostgreSQL benchmark: how a claim's cost grows with the backlog, and intake and delivery
//! throughput with 1, 2 and 4 worker processes sharing one database.
//!
//! `cargo bench --bench postgres`. `LEADGATE_BENCH_POSTGRES` names the server (default: the local
//! one), `BENCH_BACKLOGS` the backlog sizes (default `10000,100000,1000000`), `BENCH_LEADS` the
//! leads of each throughput run (default 2000). Each run gets a database of its own.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use amocrm_emulator::EmulatorConfig;
use futures::StreamExt;
use leadgate::config::{Durability, StoreConfig};
use leadgate::store::Store;
use serde_json::json;

const KEY: &str = "bench-partner-key-0123456789";
const CLAIMS: usize = 40;
const CLAIM_BATCH: usize = 50;
const POSTING_CLIENTS: usize = 32;
/// Raised far above amoCRM's 7/s, in the emulator and the connector alike, so that the CRM's pace
/// is not what the workers wait on.
const CRM_REQUESTS_PER_SECOND: u32 = 2000;

fn main() -> anyhow::Result<()> {
    let server =
        std::env::var("LEADGATE_BENCH_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let backlogs: Vec<usize> = std::env::var("BENCH_BACKLOGS")
        .unwrap_or_else(|_| "10000,100000,1000000".into())
        .split(',')
        .filter(|size| !size.trim().is_empty())
        .map(|size| size.trim().parse())
        .collect::<Result<_, _>>()?;
    let leads: usize = std::env::var("BENCH_LEADS").unwrap_or_else(|_| "2000".into()).parse()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        println!("## Claim latency against the backlog ({CLAIMS} claims of {CLAIM_BATCH} leads each)\n");
        println!("| pending leads | median | p99 | max |");
        println!("|---:|---:|---:|---:|");
        for backlog in backlogs {
            let (median, p99, max) = claim_latency(&server, backlog).await?;
            println!("| {backlog} | {median:.1} ms | {p99:.1} ms | {max:.1} ms |");
        }
        println!(
            "\n## Throughput with N worker processes ({leads} new clients, CRM budget {CRM_REQUESTS_PER_SECOND}/s)\n"
        );
        println!("| workers | intake (1 process, {POSTING_CLIENTS} clients) | delivery | CRM calls/s |");
        println!("|---:|---:|---:|---:|");
        for workers in [1, 2, 4] {
            let run = throughput(&server, leads, workers).await?;
            println!(
                "| {workers} | {:.0} leads/s | {:.0} leads/s | {:.0} |",
                run.intake_per_second, run.delivered_per_second, run.calls_per_second
            );
        }
        Ok(())
    })
}

/// A fresh, empty database on `server`.
fn fresh_database(server: &str, name: &str) -> anyhow::Result<String> {
    let admin = format!("{server}/postgres");
    for statement in [format!("drop database if exists {name} with (force)"), format!("create database {name}")] {
        let done = Command::new("psql").args([&admin, "-qc", &statement]).output()?;
        anyhow::ensure!(done.status.success(), "{}", String::from_utf8_lossy(&done.stderr));
    }
    Ok(format!("{server}/{name}"))
}

async fn open(url: &str) -> anyhow::Result<Store> {
    let config = StoreConfig { url: url.to_owned(), durability: Durability::ProcessCrash, max_connections: 4 };
    Ok(Store::open(&config).await?)
}

/// Median, p99 and maximum of `CLAIMS` claims with `backlog` leads pending, in milliseconds.
async fn claim_latency(server: &str, backlog: usize) -> anyhow::Result<(f64, f64, f64)> {
    let url = fresh_database(server, &format!("leadgate_bench_backlog_{backlog}"))?;
    let store = open(&url).await?;
    // Every lead a distinct client, all due, as a backlog after a long CRM outage looks.
    let fill = format!(
        "insert into leads (source_id, name, phone, phone_raw, payload, status, run_at, created_at, updated_at)
         select 'bench', 'Клиент', '+7999' || lpad(n::text, 7, '0'), 'x', '{{}}', 'pending', n, n, n
         from generate_series(1, {backlog}) as n;
         insert into client_queue (phone, lead_id, run_at, in_flight, started)
         select phone, id, run_at, false, false from leads;
         analyze leads;
         analyze client_queue;"
    );
    let filled = Command::new("psql").args([&url, "-qc", &fill]).output()?;
    anyhow::ensure!(filled.status.success(), "{}", String::from_utf8_lossy(&filled.stderr));
    let mut took = Vec::with_capacity(CLAIMS);
    for _ in 0..CLAIMS {
        let started = Instant::now();
        let claims = store.claim_due(CLAIM_BATCH, Duration::from_secs(600)).await?;
        took.push(started.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(claims.len() == CLAIM_BATCH, "a claim took {} leads", claims.len());
    }
    took.sort_by(f64::total_cmp);
    let at = |quantile: f64| took[((took.len() - 1) as f64 * quantile).round() as usize];
    Ok((at(0.5), at(0.99), at(1.0)))
}

struct Throughput {
    intake_per_second: f64,
    delivered_per_second: f64,
    calls_per_second: f64,
}

/// One intake process takes `leads` new clients; then `workers` worker processes deliver them.
async fn throughput(server: &str, leads: usize, workers: usize) -> anyhow::Result<Throughput> {
    let url = fresh_database(server, &format!("leadgate_bench_workers_{workers}"))?;
    let store = open(&url).await?;
    let emulator_config = EmulatorConfig { requests_per_second: CRM_REQUESTS_PER_SECOND, ..EmulatorConfig::default() };
    let crm = amocrm_emulator::spawn(emulator_config, SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("leadgate.toml"), config(&crm.base_url()))?;
    let mut nodes = vec![Node::start(dir.path(), &url, "intake")?];
    let intake = nodes[0].address;
    wait_until_up(intake).await?;

    let http = reqwest::Client::new();
    let started = Instant::now();
    let posted: Vec<bool> = futures::stream::iter(0..leads)
        .map(|n| {
            let request = http
                .post(format!("http://{intake}/api/v1/leads"))
                .bearer_auth(KEY)
                .json(&json!({ "name": "Клиент", "phone": format!("+7998{n:07}") }));
            async move { request.send().await.is_ok_and(|response| response.status().is_success()) }
        })
        .buffer_unordered(POSTING_CLIENTS)
        .collect()
        .await;
    let intake_seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(posted.iter().all(|ok| *ok), "some leads were refused");

    let calls_before = crm.emulator.traffic_stats().api_requests;
    let started = Instant::now();
    for _ in 0..workers {
        nodes.push(Node::start(dir.path(), &url, "worker")?);
    }
    loop {
        let counts = store.count_by_status(None).await?;
        let settled: i64 = counts.iter().filter(|(status, _)| status == "approved").map(|(_, count)| count).sum();
        if settled as usize == leads {
            break;
        }
        anyhow::ensure!(started.elapsed() < Duration::from_secs(900), "delivery stalled: {counts:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let delivery_seconds = started.elapsed().as_secs_f64();
    let calls = crm.emulator.traffic_stats().api_requests - calls_before;
    drop(nodes);
    crm.shutdown().await;
    Ok(Throughput {
        intake_per_second: leads as f64 / intake_seconds,
        delivered_per_second: leads as f64 / delivery_seconds,
        calls_per_second: calls as f64 / delivery_seconds,
    })
}

fn config(crm_url: &str) -> String {
    format!(
        r#"
[worker]
interval = "100ms"
batch_size = 50
[destinations.main]
kind = "amocrm"
base_url = "{crm_url}"
access_token = "sandbox-long-lived-token"
requests_per_second = {CRM_REQUESTS_PER_SECOND}
[sources.bench]
kind = "partner"
key = "{KEY}"
destination = "main"
pipeline = "TrendAgent"
status = "Объект выбран"
"#
    )
}

/// A `leadgate serve --role <role>` process, killed when dropped.
struct Node {
    address: SocketAddr,
    child: Child,
}

impl Node {
    fn start(dir: &Path, store_url: &str, role: &str) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?.port();
        let child = Command::new(env!("CARGO_BIN_EXE_leadgate"))
            .args(["serve", "--config", "leadgate.toml", "--role", role])
            .current_dir(dir)
            .env("LEADGATE_STORE__URL", store_url)
            .env("LEADGATE_SERVER__LISTEN", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .spawn()?;
        Ok(Self { address: SocketAddr::from((Ipv4Addr::LOCALHOST, port)), child })
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn wait_until_up(address: SocketAddr) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    for _ in 0..400 {
        if http.get(format!("http://{address}/healthz")).send().await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("the gateway at {address} did not start")
}
