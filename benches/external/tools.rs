//! The load generators of `benches/external.rs`: `wrk` for saturation, `oha` for open-loop latency.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::{PARTNER_KEY, PROXY_KEY};

pub const SERVER_CORE: &str = "0";
const GENERATOR_CORE: &str = "1";
const CONNECTIONS: &str = "64";

/// What a run sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `GET /healthz`: the same server and connection handling, no storage.
    Healthz,
    /// `POST /api/v1/leads`, a new client every request.
    Partner,
    /// `GET /api/proxy/1.0/leads/add?…`, a new client every request (the route `oha` can vary).
    Proxy,
    /// `POST /api/v1/leads`, every request the same phone.
    Flood,
}

impl Target {
    pub fn label(self) -> &'static str {
        match self {
            Self::Healthz => "no-op `GET /healthz`",
            Self::Partner => "durable `POST /api/v1/leads`",
            Self::Proxy => "durable `GET /api/proxy/1.0/leads/add`",
            Self::Flood => "durable, one phone",
        }
    }
}

/// A closed-loop run: as many requests as the server answers.
pub struct Saturation {
    pub per_second: f64,
    pub p99_ms: f64,
    /// Non-2xx answers, timeouts and socket errors.
    pub failures: u64,
}

/// An open-loop run: a fixed offered rate, latency counted from when each request was due.
pub struct OpenLoop {
    pub rate: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub failures: u64,
}

pub fn require_tools() -> anyhow::Result<()> {
    for (tool, install) in [
        ("wrk", "apt-get install -y wrk"),
        ("oha", "cargo install oha --locked"),
        ("taskset", "apt-get install -y util-linux"),
    ] {
        let found = Command::new("sh").args(["-c", &format!("command -v {tool}")]).output()?.status.success();
        anyhow::ensure!(found, "`{tool}` is not on PATH; install it with `{install}`");
    }
    Ok(())
}

/// The Lua script that makes every `wrk` request a new client (or, in `flood`, the same one).
fn lua_script() -> String {
    format!(
        r#"
local mode = "partner"
function init(args)
  math.randomseed(tonumber(args[1]))
  mode = args[2]
end
function request()
  -- real clients' phones arrive in no order: each lands at a random place in the phone indexes
  local number = math.random(0, 99999999)
  if mode == "proxy" then
    return wrk.format("GET", string.format("/api/proxy/1.0/leads/add?key={PROXY_KEY}&name=Load&phone=%%2B795%08d", number))
  end
  local phone = string.format("+795%08d", number)
  if mode == "flood" then phone = "+79700000000" end
  local headers = {{ ["Authorization"] = "Bearer {PARTNER_KEY}", ["Content-Type"] = "application/json" }}
  return wrk.format("POST", "/api/v1/leads", headers, string.format('{{"name":"Load","phone":"%s"}}', phone))
end
"#
    )
}

/// `wrk -t1 -c64` on the generator's core; `run` makes the phones of this run distinct from others'.
pub fn wrk(address: SocketAddr, target: Target, span: Duration, run: u64) -> anyhow::Result<Saturation> {
    let script = tempfile::Builder::new().suffix(".lua").tempfile()?;
    std::fs::write(script.path(), lua_script())?;
    let mode = match target {
        Target::Healthz => None,
        Target::Partner => Some("partner"),
        Target::Proxy => Some("proxy"),
        Target::Flood => Some("flood"),
    };
    let duration = format!("{}s", span.as_secs());
    let mut command = Command::new("taskset");
    command.args(["-c", GENERATOR_CORE, "wrk", "-t1", "-c", CONNECTIONS, "-d", &duration, "--latency"]);
    match mode {
        None => command.arg(format!("http://{address}/healthz")),
        Some(mode) => command
            .args(["-s", &script.path().to_string_lossy(), &format!("http://{address}"), "--"])
            .args([run.to_string(), mode.to_owned()]),
    };
    let output = command.output()?;
    let text = String::from_utf8_lossy(&output.stdout);
    anyhow::ensure!(output.status.success(), "wrk failed: {}", String::from_utf8_lossy(&output.stderr));
    let field = |prefix: &str| text.lines().map(str::trim).find_map(|line| line.strip_prefix(prefix)).map(str::trim);
    let per_second = field("Requests/sec:").unwrap_or("0").parse()?;
    let p99_ms = field("99%").map(wrk_millis).transpose()?.unwrap_or(f64::NAN);
    let non_2xx: u64 = field("Non-2xx or 3xx responses:").unwrap_or("0").parse()?;
    let socket_errors: u64 = field("Socket errors:")
        .map(|errors| errors.split(',').filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok()).sum())
        .unwrap_or(0);
    Ok(Saturation { per_second, p99_ms, failures: non_2xx + socket_errors })
}

fn wrk_millis(text: &str) -> anyhow::Result<f64> {
    let (number, factor) = if let Some(us) = text.strip_suffix("us") {
        (us, 0.001)
    } else if let Some(ms) = text.strip_suffix("ms") {
        (ms, 1.0)
    } else if let Some(s) = text.strip_suffix('s') {
        (s, 1000.0)
    } else {
        anyhow::bail!("unreadable wrk latency {text}")
    };
    Ok(number.parse::<f64>()? * factor)
}

/// `oha` at `rate` requests/s for `span`, latency corrected for coordinated omission.
pub fn oha(address: SocketAddr, target: Target, rate: f64, span: Duration) -> anyhow::Result<OpenLoop> {
    let rate = rate.max(1.0).round().to_string();
    let duration = format!("{}s", span.as_secs());
    let mut command = Command::new("taskset");
    command.args(["-c", GENERATOR_CORE, "oha", "--no-tui", "--output-format", "json", "--latency-correction"]);
    command.args(["-c", CONNECTIONS, "-q", &rate, "-z", &duration]);
    match target {
        Target::Healthz => command.arg(format!("http://{address}/healthz")),
        Target::Proxy => command.args([
            "--rand-regex-url",
            &format!(r"http://{address}/api/proxy/1[.]0/leads/add[?]key={PROXY_KEY}&name=Load&phone=%2B796[0-9]{{8}}"),
        ]),
        other => anyhow::bail!("no open-loop run for {other:?}"),
    };
    let output = command.output()?;
    anyhow::ensure!(output.status.success(), "oha failed: {}", String::from_utf8_lossy(&output.stderr));
    let report: Value = serde_json::from_slice(&output.stdout)?;
    let millis = |key: &str| report["latencyPercentiles"][key].as_f64().unwrap_or(f64::NAN) * 1000.0;
    let answered: u64 = report["statusCodeDistribution"]
        .as_object()
        .map(|codes| {
            codes.iter().filter(|(code, _)| !code.starts_with('2')).map(|(_, n)| n.as_u64().unwrap_or(0)).sum()
        })
        .unwrap_or(0);
    // Requests still in flight when the run's time is up are cut off by oha itself, not failed.
    let errors: u64 = report["errorDistribution"]
        .as_object()
        .map(|errors| {
            errors.iter().filter(|(error, _)| !error.contains("deadline")).map(|(_, n)| n.as_u64().unwrap_or(0)).sum()
        })
        .unwrap_or(0);
    Ok(OpenLoop {
        rate: report["summary"]["requestsPerSec"].as_f64().unwrap_or(f64::NAN),
        p50_ms: millis("p50"),
        p99_ms: millis("p99"),
        p999_ms: millis("p99.9"),
        failures: answered + errors,
    })
}
