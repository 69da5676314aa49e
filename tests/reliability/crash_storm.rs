//! The real binary SIGKILLed at random while leads arrive and settle: each lead is decided once and reported once.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use amocrm_emulator::{Emulator, Latency, RequestRecord};
use futures::StreamExt;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::audit::{CallbackAudit, CrmAudit};
use crate::callback_receiver::CallbackReceiver;
use crate::gateway::gateway_config;
use crate::helpers::{SOURCE_KEY, TestProcess, get_lead, history_kinds, spawn_emulator};
use crate::lead_plan::LeadPlan;
use crate::load::{Acknowledgements, LOADERS, post_all, replay_ids};

/// The CRM's limit and the gateway's budget: generous, so that a debug run fits in CI's time.
const RATE: u32 = 300;
/// How long the CRM takes over each request: deliveries overlap, so every kill cuts some of them off.
const CRM_LATENCY: Duration = Duration::from_millis(30);
/// A kill comes at a random moment this many milliseconds after the last restart.
const KILL_GAP_MS: Range<u64> = 300..1500;
/// Leads are posted over three quarters of the expected storm, so kills hit intake as well as delivery.
const POSTING_SHARE_OF_STORM: f64 = 0.75;
const SETTLE_DEADLINE: Duration = Duration::from_secs(120);
const SETTLE_POLL: Duration = Duration::from_millis(250);

/// How big a storm is: `RELIABILITY_LEADS` and `RELIABILITY_KILLS`, and `RELIABILITY_SEED` to repeat
/// one's plan and kill moments.
struct Size {
    leads: usize,
    kills: usize,
    seed: u64,
}

impl Size {
    fn from_env() -> Self {
        let number = |name: &str, default: u64| {
            std::env::var(name).map_or(default, |value| value.parse().unwrap_or_else(|_| panic!("{name}={value}")))
        };
        Self {
            leads: number("RELIABILITY_LEADS", 1000) as usize,
            kills: number("RELIABILITY_KILLS", 20) as usize,
            seed: number("RELIABILITY_SEED", rand::random()),
        }
    }

    fn posting_span(&self) -> Duration {
        let mean_gap = Duration::from_millis((KILL_GAP_MS.start + KILL_GAP_MS.end) / 2);
        mean_gap.mul_f64(self.kills as f64 * POSTING_SHARE_OF_STORM)
    }
}

/// The storm's kills, each as the length of the CRM's request log when it happened.
struct Kills {
    log_lengths: Vec<usize>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_gateway_killed_again_and_again_under_load_loses_no_lead_and_duplicates_nothing() {
    let _alone = crate::helpers::MACHINE_WIDE.lock().await;
    let size = Size::from_env();
    let plan = Arc::new(LeadPlan::new(size.leads, "storm", 3_000_000, &mut StdRng::seed_from_u64(size.seed)));
    let crm = spawn_emulator(RATE).await;
    crm.emulator.set_latency(Some(Latency { delay: CRM_LATENCY, path_prefix: None, method: None }));
    let receiver = CallbackReceiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = gateway_config(&crm.base_url(), RATE);
    let started = Instant::now();

    let first = TestProcess::serve(dir.path(), &config).await;
    let (announce, address) = watch::channel(first.address);
    let load = tokio::spawn(post_all(Arc::clone(&plan), receiver.url(), address, size.posting_span()));
    let storm = Storm { size: &size, dir: dir.path(), config: &config, crm: &crm.emulator, announce: &announce };
    let (gateway, kills) = storm.kill_and_restart(first, &load).await;
    let acknowledged = load.await.unwrap();
    let base = format!("http://{}", gateway.address);
    let replayed = replay_ids(&plan, &receiver.url(), &base).await;
    let leads = read_until_settled(&base, &acknowledged.ids).await;
    let run = StormRun { seed: size.seed, acknowledged, kills, leads, wall_time: started.elapsed() };

    if let Some(evidence) = std::env::var_os("RELIABILITY_EVIDENCE") {
        write_evidence(Path::new(&evidence), &run.leads, &crm.emulator);
    }
    let audit = CrmAudit::of(&crm.emulator);
    let received = receiver.received();
    let callbacks = CallbackAudit::of(&received);
    let traffic = crm.emulator.traffic_stats();
    println!("{}", run.summary(&audit, &callbacks, &crm.emulator));

    let (lost, uncalled) = (run.lost(), run.uncalled());
    assert!(lost.is_empty(), "{} acknowledged leads have no outcome; the first: {:#}", lost.len(), lost[0]);
    assert!(uncalled.is_empty(), "{} outcomes were never called back; the first: {:#}", uncalled.len(), uncalled[0]);
    assert_eq!(replayed, run.acknowledged.ids, "a repeated Idempotency-Key answered another id");
    assert_eq!(run.acknowledged.ids.iter().collect::<BTreeSet<_>>().len(), plan.leads.len(), "two keys share an id");
    for (planned, id) in plan.leads.iter().zip(&run.acknowledged.ids) {
        let lead = &run.leads[id];
        assert_eq!(lead["phone"], planned.phone.as_str(), "lead {id} is not the one posted as {}", planned.key);
    }
    audit.assert_one_client_per_phone(&plan.distinct_phones());
    audit.assert_one_approval_per_phone(run.leads.values());
    callbacks.assert_one_outcome_each(&run.leads);
    assert!(traffic.max_requests_in_any_second <= u64::from(RATE), "{traffic:?}");
}

/// What a storm left behind: the partners' answers, the kills, and every lead as last read.
struct StormRun {
    seed: u64,
    acknowledged: Acknowledgements,
    kills: Kills,
    leads: BTreeMap<i64, Value>,
    wall_time: Duration,
}

impl StormRun {
    /// Acknowledged leads without an outcome.
    fn lost(&self) -> Vec<&Value> {
        self.leads.values().filter(|lead| !is_final(lead)).collect()
    }

    /// Outcomes whose callback was never delivered.
    fn uncalled(&self) -> Vec<&Value> {
        self.leads.values().filter(|lead| is_final(lead) && !is_called_back(lead)).collect()
    }

    /// The one line a run reports, with the figures `docs/RELIABILITY.md` quotes.
    fn summary(&self, audit: &CrmAudit, callbacks: &CallbackAudit<'_>, crm: &Emulator) -> String {
        let (kills, leads) = (self.kills.log_lengths.len(), self.leads.values());
        let resumed = leads.clone().map(resumed_creates).fold((0, 0), |sum, lead| (sum.0 + lead.0, sum.1 + lead.1));
        let traffic = crm.traffic_stats();
        [
            format!("reliability: seed {}", self.seed),
            format!("leads posted and acknowledged {}", self.acknowledged.ids.len()),
            format!("posts failed and repeated under their key {}", self.acknowledged.failed_posts),
            format!("kills {kills}, restarts {kills}"),
            format!("attempts cut off {}", leads.clone().map(cut_off_attempts).sum::<usize>()),
            format!("interrupted creates taken up {} (found already made {})", resumed.0, resumed.1),
            format!("lost {}", self.lost().len()),
            format!("duplicate contacts {}", audit.duplicate_contacts()),
            format!("duplicate deals {}", audit.duplicate_deals()),
            format!("duplicate notes {}", audit.duplicate_notes()),
            format!("callbacks received {} (repeats {})", callbacks.total, callbacks.duplicates()),
            format!("outcomes never called back {}", self.uncalled().len()),
            format!("max requests in any second {} (limit {RATE})", traffic.max_requests_in_any_second),
            format!("within one process {}", busiest_second_of_one_process(&crm.requests(), &self.kills)),
            format!("429 answers {}", traffic.rate_limited),
            format!("wall time {:.1}s", self.wall_time.as_secs_f64()),
        ]
        .join(", ")
    }
}

/// What the killer needs: the run's size, the gateway's directory and configuration, the CRM whose
/// log it marks, and where it announces each restarted gateway to the partners.
struct Storm<'a> {
    size: &'a Size,
    dir: &'a Path,
    config: &'a str,
    crm: &'a Emulator,
    announce: &'a watch::Sender<SocketAddr>,
}

impl Storm<'_> {
    /// SIGKILLs the gateway at random moments and starts it again on the same database, until the
    /// kills are done and every post is answered. Returns the last gateway, still running.
    async fn kill_and_restart(
        &self,
        mut gateway: TestProcess,
        load: &JoinHandle<Acknowledgements>,
    ) -> (TestProcess, Kills) {
        let mut rng = StdRng::seed_from_u64(self.size.seed.wrapping_add(1));
        let mut kills = Kills { log_lengths: Vec::new() };
        while kills.log_lengths.len() < self.size.kills || !load.is_finished() {
            // The crash moment itself is what is random here; nothing is being waited for.
            tokio::time::sleep(Duration::from_millis(rng.random_range(KILL_GAP_MS))).await;
            gateway.kill();
            kills.log_lengths.push(self.crm.requests().len());
            gateway = TestProcess::serve(self.dir, self.config).await;
            self.announce.send_replace(gateway.address);
        }
        (gateway, kills)
    }
}

/// Reads the leads until each has its outcome and a delivered callback, or the deadline passes;
/// returns the last state read of each.
async fn read_until_settled(base: &str, ids: &[i64]) -> BTreeMap<i64, Value> {
    let http = reqwest::Client::new();
    let until = Instant::now() + SETTLE_DEADLINE;
    let mut latest = BTreeMap::new();
    let mut unsettled: Vec<i64> = ids.to_vec();
    loop {
        let read: Vec<Value> = futures::stream::iter(&unsettled)
            .map(|id| get_lead(&http, base, SOURCE_KEY, *id))
            .buffer_unordered(LOADERS)
            .collect()
            .await;
        for lead in read {
            latest.insert(lead["id"].as_i64().unwrap(), lead);
        }
        unsettled.retain(|id| !(is_final(&latest[id]) && is_called_back(&latest[id])));
        if unsettled.is_empty() || Instant::now() >= until {
            return latest;
        }
        tokio::time::sleep(SETTLE_POLL).await;
    }
}

fn is_final(lead: &Value) -> bool {
    ["approved", "rejected"].contains(&lead["status"].as_str().unwrap_or_default())
}

fn is_called_back(lead: &Value) -> bool {
    history_kinds(lead).iter().any(|kind| kind == "callback_delivered")
}

/// Attempts whose end was never written: cut off by a kill or a lost lease after their first journal
/// entry. An attempt killed before it wrote anything leaves no trace, so this is a lower bound.
fn cut_off_attempts(lead: &Value) -> usize {
    let mut open = false;
    let mut cut_off = 0;
    for kind in history_kinds(lead) {
        match kind.as_str() {
            "claimed" => {
                cut_off += usize::from(open);
                open = true;
            }
            "retry_scheduled" | "approved" | "rejected" | "dead" => open = false,
            _ => {}
        }
    }
    cut_off
}

/// Creates that a kill interrupted and a resumed attempt took up, as its history shows: it looked for what
/// the create may have made, and found it when no create followed. Returns `(taken up, found already
/// made)`. It reads the amoCRM connector's calls, so it is a figure for the report, not a check.
fn resumed_creates(lead: &Value) -> (usize, usize) {
    let history = lead["history"].as_array().unwrap();
    let (mut resumed, mut found) = (0, 0);
    for (at, event) in history.iter().enumerate() {
        let Some(create) = create_looked_for(event) else {
            continue;
        };
        resumed += 1;
        found += usize::from(!history[at..].iter().any(|later| crm_call(later, "POST") == Some(create)));
    }
    (resumed, found)
}

/// The create path whose result this event looks for: the client looked up again (a contact), the
/// contact read with its deals (a deal), or the deal's notes (a note).
fn create_looked_for(event: &Value) -> Option<&'static str> {
    if event["kind"] == "client_looked_up_again" {
        return Some("/api/v4/contacts");
    }
    let path = crm_call(event, "GET")?.split('?').next()?;
    let numbered = |prefix: &str, suffix: &str| {
        path.strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix(suffix))
            .is_some_and(|id| !id.is_empty() && id.bytes().all(|byte| byte.is_ascii_digit()))
    };
    if numbered("/api/v4/contacts/", "") {
        Some("/api/v4/leads")
    } else if numbered("/api/v4/leads/", "/notes") {
        Some("/api/v4/leads/notes")
    } else {
        None
    }
}

fn crm_call<'a>(event: &'a Value, method: &str) -> Option<&'a str> {
    (event["kind"] == "crm_call" && event["detail"]["method"] == method).then(|| event["detail"]["path"].as_str())?
}

/// The most `/api/v4` arrivals within one second from any one process: the log is cut at each kill, so
/// this tells the budget kept within a process from the budget kept across a restart.
fn busiest_second_of_one_process(requests: &[RequestRecord], kills: &Kills) -> usize {
    let bounds: Vec<usize> =
        std::iter::once(0).chain(kills.log_lengths.iter().copied()).chain([requests.len()]).collect();
    bounds.windows(2).map(|lifetime| busiest_second(&requests[lifetime[0]..lifetime[1]])).max().unwrap_or(0)
}

/// The most `/api/v4` arrivals within any one second.
pub fn busiest_second(requests: &[RequestRecord]) -> usize {
    let arrivals: Vec<u64> =
        requests.iter().filter(|request| request.path.starts_with("/api/v4")).map(|request| request.at_ms).collect();
    let mut first = 0;
    let mut busiest = 0;
    for (last, at) in arrivals.iter().enumerate() {
        while at - arrivals[first] >= 1000 {
            first += 1;
        }
        busiest = busiest.max(last - first + 1);
    }
    busiest
}

/// Writes the leads as last read and the CRM's request log and state into `dir`, for a post-mortem.
fn write_evidence(dir: &Path, leads: &BTreeMap<i64, Value>, emulator: &Emulator) {
    std::fs::create_dir_all(dir).unwrap();
    let write = |name: &str, value: &Value| std::fs::write(dir.join(name), format!("{value:#}")).unwrap();
    write("leads.json", &serde_json::to_value(leads).unwrap());
    write("crm_requests.json", &serde_json::to_value(emulator.requests()).unwrap());
    write("crm_state.json", &emulator.snapshot());
}
