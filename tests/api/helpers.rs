//! `TestApp` (the gateway in-process) and `TestProcess` (the real binary), each on a random port
//! with a fresh database, talking HTTP to an amoCRM emulator.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::LazyLock;
use std::time::Duration;

use amocrm_emulator::{EmulatorConfig, RunningEmulator};
use leadgate::config::{
    AlertsConfig, AmoCrmAuth, AmoCrmConfig, Config, ConsoleConfig, DestinationConfig, FormSource, OAuthConfig,
    ProxySource, RetryPolicy, Route, SmtpConfig, SourceConfig, SourceFeedback, SourceKind, ZapSource,
};
use leadgate::domain::CrmField;
use leadgate::domain::Email;
use leadgate::domain::SourceId;
use leadgate::startup::{App, Role};
use leadgate::store::Store;
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const SOURCE_KEY: &str = "trendagent-test-key-0123456789";
pub const OTHER_SOURCE_KEY: &str = "other-partner-key-0123456789";
pub const PIPELINE: &str = "TrendAgent";
pub const STAGE: &str = "Объект выбран";

static TRACING: LazyLock<()> = LazyLock::new(|| {
    if std::env::var_os("TEST_LOG").is_some() {
        leadgate::telemetry::init(leadgate::config::LogFormat::Text);
    }
});

/// How the emulator and the gateway are set up for one test.
pub struct Setup {
    pub emulator_rate: u32,
    pub gateway_rate: u32,
    pub oauth: bool,
    pub retry_initial: Duration,
    pub lease: Duration,
    pub batch_size: usize,
    pub allow_private_callbacks: bool,
    pub retry: RetryPolicy,
    pub callback_secrets: Vec<String>,
    pub smtp_url: Option<String>,
    pub notify: Vec<String>,
    pub admin_token: Option<String>,
    /// Adds a Grupo ZAP source `zap` (Basic `vivareal` / `ZAP_SECRET`) routing to «Воронка».
    pub zap: bool,
    /// Adds the proxy-lead source `site` (key `PROXY_KEY`), routed to the zap pipeline.
    pub proxy: Option<ProxySource>,
    /// Adds the form source `feedback`, routed to the zap pipeline.
    pub form: Option<FormSource>,
    /// The operator console's settings, where a test needs other than the defaults.
    pub console: Option<ConsoleConfig>,
    /// `[server] public_url`, where a test needs one.
    pub public_url: Option<&'static str>,
    /// `[alerts]`; none by default.
    pub alerts: Option<AlertsConfig>,
}

pub const ZAP_SECRET: &str = "zap-secret-key-0123";
pub const ZAP_PIPELINE: &str = "Воронка";
pub const ZAP_STAGE: &str = "Первичный контакт";

pub const PROXY_KEY: &str = "roistat-proxy-key-0123456789";

/// A proxy source as a site switching from Roistat would configure it.
pub fn proxy_source() -> ProxySource {
    ProxySource {
        keys: SecretString::from(PROXY_KEY).into(),
        duplicate_window: Duration::from_secs(3600),
        sync_timeout: Duration::from_secs(5),
        wait_for_crm: None,
    }
}

/// The issue's example form: name, phone, e-mail and message, a required file, fixed tags.
pub fn feedback_form() -> FormSource {
    FormSource {
        heading: "Обратная связь".to_owned(),
        fields: vec![
            (CrmField::Name, "name".to_owned()),
            (CrmField::Phone, "phone".to_owned()),
            (CrmField::Email, "email".to_owned()),
            (CrmField::Comment, "message".to_owned()),
        ],
        statics: vec![(CrmField::Tags, "site, feedback".to_owned())],
        required: vec!["name".to_owned(), "phone".to_owned()],
        labels: BTreeMap::new(),
        require_file: true,
        max_files: 3,
        max_file_bytes: 1024 * 1024,
        send_to_crm: true,
        allowed_sites: Vec::new(),
        honeypot: "website".to_owned(),
        per_ip_per_minute: 1000,
        success_message: SUCCESS_MESSAGE.to_owned(),
        wait_for_crm: None,
        consent: None,
    }
}

pub const SUCCESS_MESSAGE: &str = "Ваша заявка отправлена. Мы свяжемся с вами в рабочее время по мск с 9:00 до 18:00";

pub const ADMIN_TOKEN: &str = "admin-token-0123456789abcdef";

impl Default for Setup {
    fn default() -> Self {
        Self {
            emulator_rate: 200,
            gateway_rate: 100,
            oauth: false,
            retry_initial: Duration::from_millis(200),
            lease: Duration::from_secs(30),
            batch_size: 50,
            allow_private_callbacks: true,
            retry: RetryPolicy::default(),
            callback_secrets: Vec::new(),
            smtp_url: None,
            notify: Vec::new(),
            admin_token: Some(ADMIN_TOKEN.to_owned()),
            zap: false,
            proxy: None,
            form: None,
            console: None,
            public_url: None,
            alerts: None,
        }
    }
}

pub struct TestApp {
    pub address: SocketAddr,
    pub http: reqwest::Client,
    pub crm: RunningEmulator,
    pub store: Store,
    /// The store this gateway runs on, for other processes (the CLI) to open.
    pub store_url: String,
    pub files_dir: PathBuf,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Setup::default()).await
}

pub async fn spawn_app_with(setup: Setup) -> TestApp {
    LazyLock::force(&TRACING);
    let crm = spawn_emulator(setup.emulator_rate).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::load(None).unwrap();
    config.listen = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let store_url = store_url(dir.path());
    config.store.url = store_url.clone();
    config.worker.retry_initial = setup.retry_initial;
    config.worker.retry_max = Duration::from_secs(2);
    config.worker.interval = Duration::from_millis(100);
    config.worker.lease = setup.lease;
    config.worker.batch_size = setup.batch_size;
    config.worker.blocked_pause = Duration::from_secs(2);
    config.security.allow_private_callbacks = setup.allow_private_callbacks;
    config.feedback.retry_initial = Duration::from_millis(200);
    config.feedback.retry_max = Duration::from_millis(500);
    config.feedback.timeout = Duration::from_secs(2);
    config.admin_token = setup.admin_token.map(SecretString::from);
    config.public_url = setup.public_url.map(|url| url.parse().unwrap());
    if let Some(console) = setup.console {
        config.console = console;
    }
    config.smtp = setup.smtp_url.map(|url| SmtpConfig {
        url: url.parse().unwrap(),
        from: "leadgate@example.ru".to_owned(),
        username: None,
        password: None,
        timeout: Duration::from_secs(2),
    });
    let feedback = SourceFeedback {
        callback_secrets: setup.callback_secrets.iter().map(|secret| SecretString::from(secret.as_str())).collect(),
        notify: setup.notify.iter().map(|address| Email::parse(address).unwrap()).collect(),
        ..SourceFeedback::default()
    };
    let auth = if setup.oauth {
        AmoCrmAuth::OAuth(OAuthConfig {
            client_id: "sandbox-client".into(),
            client_secret: SecretString::from("sandbox-secret"),
            redirect_uri: "https://example.com/oauth".parse().unwrap(),
            refresh_token: SecretString::from("sandbox-refresh-token-0"),
            access_token: None,
        })
    } else {
        AmoCrmAuth::LongLivedToken(SecretString::from("sandbox-long-lived-token"))
    };
    config.destinations = BTreeMap::from([(
        "main".to_owned(),
        DestinationConfig::AmoCrm(AmoCrmConfig {
            name: "main".into(),
            base_url: crm.base_url().parse().unwrap(),
            auth,
            requests_per_second: setup.gateway_rate,
            timeout: Duration::from_secs(5),
        }),
    )]);
    let route =
        Route { destination: "main".into(), pipeline: PIPELINE.into(), status: STAGE.into(), ..Route::default() };
    config.sources = [("trendagent", SOURCE_KEY), ("other", OTHER_SOURCE_KEY)]
        .into_iter()
        .map(|(id, key)| {
            let id = SourceId(id.to_owned());
            let source = SourceConfig {
                id: id.clone(),
                kind: SourceKind::Partner { keys: SecretString::from(key).into() },
                route: route.clone(),
                retry: setup.retry,
                feedback: feedback.clone(),
                requests_per_minute: None,
            };
            (id, source)
        })
        .collect();
    if setup.zap {
        let id = SourceId("zap".to_owned());
        let zap = SourceConfig {
            id: id.clone(),
            kind: SourceKind::Zap(ZapSource {
                username: "vivareal".to_owned(),
                secret_key: SecretString::from(ZAP_SECRET),
                timezone: chrono_tz::America::Sao_Paulo,
            }),
            route: Route {
                destination: "main".into(),
                pipeline: ZAP_PIPELINE.into(),
                status: ZAP_STAGE.into(),
                deal_fields: [("clientListingId".to_owned(), amocrm_emulator::LISTING_FIELD_ID as i64)].into(),
                ..Route::default()
            },
            retry: RetryPolicy::default(),
            feedback: feedback.clone(),
            requests_per_minute: None,
        };
        config.sources.insert(id, zap);
    }
    let website_route = Route {
        destination: "main".into(),
        pipeline: ZAP_PIPELINE.into(),
        status: ZAP_STAGE.into(),
        ..Route::default()
    };
    let website_sources =
        [("site", setup.proxy.map(SourceKind::Proxy)), ("feedback", setup.form.map(SourceKind::Form))];
    for (name, kind) in website_sources {
        let Some(kind) = kind else { continue };
        let id = SourceId(name.to_owned());
        let source = SourceConfig {
            id: id.clone(),
            kind,
            route: website_route.clone(),
            retry: setup.retry,
            feedback: feedback.clone(),
            requests_per_minute: None,
        };
        config.sources.insert(id, source);
    }
    config.alerts = setup.alerts;
    config.files_dir = dir.path().join("files");
    let app = App::build(config).await.unwrap();
    let (address, store) = (app.address, app.store.clone());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(app.run(Role::All, shutdown.clone()));
    let files_dir = dir.path().join("files");
    TestApp { address, http: reqwest::Client::new(), crm, store, store_url, files_dir, shutdown, task, _dir: dir }
}

pub async fn spawn_emulator(requests_per_second: u32) -> RunningEmulator {
    let config = EmulatorConfig { requests_per_second, ..EmulatorConfig::default() };
    amocrm_emulator::spawn(config, SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await.unwrap()
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    pub async fn post_lead(&self, body: &Value) -> reqwest::Response {
        self.http.post(self.url("/api/v1/leads")).bearer_auth(SOURCE_KEY).json(body).send().await.unwrap()
    }

    /// Posts and returns the new lead's id, asserting the 200 answer.
    pub async fn accept(&self, body: Value) -> i64 {
        accept_at(&self.http, &self.url(""), SOURCE_KEY, &body).await
    }

    pub async fn get_lead(&self, id: i64) -> Value {
        get_lead(&self.http, &self.url(""), SOURCE_KEY, id).await
    }

    /// Waits until the lead's status is one of `statuses`, and returns the lead.
    pub async fn wait_for(&self, id: i64, statuses: &[&str]) -> Value {
        wait_for_status(&self.http, &self.url(""), SOURCE_KEY, id, statuses).await
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap().unwrap();
    }
}

/// Polls `check` every 25 ms until it holds or `deadline` passes; returns whether it held.
pub async fn poll_until<F, Fut>(deadline: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = tokio::time::Instant::now() + deadline;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Posts a partner lead to the gateway at `base` and returns the id it answered with.
pub async fn accept_at(http: &reqwest::Client, base: &str, key: &str, body: &Value) -> i64 {
    let response = http.post(format!("{base}/api/v1/leads")).bearer_auth(key).json(body).send().await.unwrap();
    assert_eq!(response.status(), 200, "{body}");
    response.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

/// The emulator, with every `method` call to `path_prefix` held for `delay` before it is served.
pub async fn emulator_holding(path_prefix: &str, method: &str, delay: Duration) -> RunningEmulator {
    let crm = spawn_emulator(200).await;
    crm.emulator.set_latency(Some(amocrm_emulator::Latency {
        delay,
        path_prefix: Some(path_prefix.to_owned()),
        method: Some(method.to_owned()),
    }));
    crm
}

pub async fn get_lead(http: &reqwest::Client, base: &str, key: &str, id: i64) -> Value {
    let response = http.get(format!("{base}/api/v1/leads/{id}")).bearer_auth(key).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// Polls `GET /api/v1/leads/{id}` until its status is one of `statuses`; returns the lead.
pub async fn wait_for_status(http: &reqwest::Client, base: &str, key: &str, id: i64, statuses: &[&str]) -> Value {
    let until = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let lead = get_lead(http, base, key, id).await;
        if statuses.contains(&lead["status"].as_str().unwrap_or_default()) {
            return lead;
        }
        assert!(tokio::time::Instant::now() < until, "lead {id} never reached {statuses:?}: {lead:#}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

pub fn lead(name: &str, phone: &str) -> Value {
    json!({ "name": name, "phone": phone })
}

pub fn history_kinds(lead: &Value) -> Vec<String> {
    lead["history"].as_array().unwrap().iter().map(|event| event["kind"].as_str().unwrap().to_owned()).collect()
}

/// The real `leadgate` binary, started with a configuration file in its own directory.
pub struct TestProcess {
    pub address: SocketAddr,
    child: Child,
}

impl TestProcess {
    pub const BINARY: &str = env!("CARGO_BIN_EXE_leadgate");

    /// Writes `config` to `dir/leadgate.toml` and runs `leadgate serve` with it.
    pub async fn serve(dir: &Path, config: &str) -> Self {
        Self::serve_node(dir, config, &store_url(dir), "all").await
    }

    /// `leadgate serve --role <role>` on the store at `store_url`, as one node of several.
    pub async fn serve_node(dir: &Path, config: &str, store_url: &str, role: &str) -> Self {
        let stderr = if std::env::var_os("TEST_LOG").is_some() { Stdio::inherit() } else { Stdio::null() };
        Self::start(dir, config, store_url, role, ("warn", stderr)).await
    }

    /// `leadgate serve` with `RUST_LOG=filter`, its log written to `dir/leadgate.log`.
    #[allow(dead_code)] // only the observability suite reads logs
    pub async fn serve_logging(dir: &Path, config: &str, filter: &str) -> Self {
        let log = std::fs::File::create(dir.join("leadgate.log")).unwrap();
        Self::start(dir, config, &store_url(dir), "all", (filter, Stdio::from(log))).await
    }

    async fn start(dir: &Path, config: &str, store_url: &str, role: &str, (filter, stderr): (&str, Stdio)) -> Self {
        LazyLock::force(&TRACING);
        let port = free_port();
        std::fs::write(dir.join("leadgate.toml"), config).unwrap();
        let child = Command::new(Self::BINARY)
            .args(["serve", "--config", "leadgate.toml", "--role", role])
            .current_dir(dir)
            .env("LEADGATE_STORE__URL", store_url)
            .env("LEADGATE_SERVER__LISTEN", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", filter)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let process = Self { address: SocketAddr::from((Ipv4Addr::LOCALHOST, port)), child };
        let http = reqwest::Client::new();
        let up = poll_until(Duration::from_secs(20), || async {
            http.get(format!("http://{}/healthz", process.address)).send().await.is_ok()
        })
        .await;
        assert!(up, "leadgate did not start");
        process
    }

    /// SIGTERM, as a service manager stops it; returns how it exited, or `None` if it was still
    /// running after `deadline`.
    pub fn terminate(mut self, deadline: Duration) -> Option<std::process::ExitStatus> {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let until = std::time::Instant::now() + deadline;
        while std::time::Instant::now() < until {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// The process's resident memory now, in KiB (`VmRSS` of `/proc/<pid>/status`).
    #[allow(dead_code)] // only the hostile-input suites read it
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|line| line.starts_with("VmRSS:")).expect("VmRSS in /proc status");
        line.split_whitespace().nth(1).and_then(|kib| kib.parse().ok()).expect("VmRSS in kB")
    }

    /// Whether the process is still running (it did not crash or abort).
    #[allow(dead_code)] // only the hostile-input suites ask
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// SIGKILL: no shutdown code runs, exactly like a crash.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for TestProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether this build of the suite runs on PostgreSQL: the `postgres` test target compiles the
/// same tests as `api`, and each then runs on a database of its own there.
pub fn on_postgres() -> bool {
    env!("CARGO_CRATE_NAME").ends_with("postgres")
}

/// The store for a test whose files live in `dir`: a SQLite file there, or a PostgreSQL database
/// named after `dir`, so a gateway restarted on the same `dir` finds its data again. The server
/// is `LEADGATE_TEST_POSTGRES` (default: the local one, as CI has it).
pub fn store_url(dir: &Path) -> String {
    if !on_postgres() {
        return format!("sqlite://{}", dir.join("leadgate.db").display());
    }
    postgres_database(dir)
}

/// Adds a console user with `leadgate users add`, the password given on standard input as a
/// provisioning script would, to the store at `store_url`.
pub fn add_user_by_command(store_url: &str, name: &str, role: &str, password: &str) {
    let mut users = Command::new(TestProcess::BINARY)
        .args(["users", "add", name, "--role", role])
        .env("LEADGATE_STORE__URL", store_url)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::io::Write::write_all(users.stdin.as_mut().unwrap(), format!("{password}\n").as_bytes()).unwrap();
    assert!(users.wait().unwrap().success(), "users add {name}");
}

/// The CSRF token of the first form on the page.
pub fn csrf_of(html: &str) -> String {
    let start = html.find(r#"name="csrf" value=""#).expect("a form with a CSRF token") + r#"name="csrf" value=""#.len();
    html[start..start + html[start..].find('"').unwrap()].to_owned()
}

/// A PostgreSQL database named after `dir`, created on first use, on `LEADGATE_TEST_POSTGRES`.
pub fn postgres_database(dir: &Path) -> String {
    let server =
        std::env::var("LEADGATE_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let server = server.trim_end_matches('/');
    let mut hasher = std::hash::DefaultHasher::new();
    std::hash::Hash::hash(&dir, &mut hasher);
    let name = format!("leadgate_test_{:016x}", std::hash::Hasher::finish(&hasher));
    let exists = Command::new("psql")
        .args([&format!("{server}/postgres"), "-tAc", &format!("select 1 from pg_database where datname = '{name}'")])
        .output()
        .expect("psql runs (PostgreSQL's client is needed for the postgres half of the suite)");
    assert!(exists.status.success(), "cannot reach {server}: {}", String::from_utf8_lossy(&exists.stderr));
    if exists.stdout.is_empty() {
        let created = Command::new("psql")
            .args([&format!("{server}/postgres"), "-qc", &format!("create database {name}")])
            .output()
            .unwrap();
        assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    }
    format!("{server}/{name}")
}

/// Held by the tests that load the whole machine (the crash storm, the multi-node run), so that two
/// of them never run at once: on two CPUs, together they starve each other's lease renewals.
#[allow(dead_code)] // only the reliability suites take it
pub static MACHINE_WIDE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub fn free_port() -> u16 {
    std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap().local_addr().unwrap().port()
}

/// A configuration file for the binary, pointing at `crm`, with a budget of 100 requests/s.
pub fn config_file(crm_url: &str, extra: &str) -> String {
    budgeted_config_file(crm_url, 100, extra)
}

/// The binary's configuration: `rate` requests per second to the CRM at `crm_url`, 1 s leases and
/// fast retries; `extra` is appended to the source's table (or starts tables of its own).
pub fn budgeted_config_file(crm_url: &str, rate: u32, extra: &str) -> String {
    format!(
        r#"
[store]
url = "sqlite://leadgate.db"
[worker]
interval = "100ms"
lease = "1s"
retry_initial = "200ms"
retry_max = "2s"
[destinations.main]
kind = "amocrm"
base_url = "{crm_url}"
access_token = "sandbox-long-lived-token"
requests_per_second = {rate}
[sources.trendagent]
kind = "partner"
key = "{SOURCE_KEY}"
destination = "main"
pipeline = "{PIPELINE}"
status = "{STAGE}"
{extra}
"#
    )
}
