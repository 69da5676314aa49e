//! Configuration: embedded defaults, then the file, then `LEADGATE_*` variables, checked into typed settings.

mod alerts;
mod check;
mod form;
mod found;
mod raw;
mod session_crm;
mod telephony;
mod wait;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use secrecy::SecretString;
use url::Url;

use crate::domain::{CrmField, Email, PhoneRegion, SourceId};
pub use crate::notify::email::SmtpConfig;
use crate::notify::templates::EmailTemplates;
use crate::notify::visitor_email::VisitorEmailTemplates;
pub use alerts::AlertsConfig;
pub(crate) use check::listen_address;
pub use form::CONSENT_FIELD;
use raw::RawSettings;
pub use session_crm::{LEAD_VARIABLES, ROUTE_VARIABLES};
pub use telephony::{AutoCreate, CallRule, NumberRule, PbxAccess, PbxApi, TelephonySource};
pub use wait::DEFAULT_REGISTERED_MESSAGE;

const DEFAULTS: &str = include_str!("default.toml");
/// `LEADGATE_WORKER__BATCH_SIZE` sets `worker.batch_size`.
const ENV_PREFIX: &str = "LEADGATE_";
const ENV_SPLIT: &str = "__";
/// Keys whose values are secrets (`SecretString`), wherever they appear.
const SECRET_KEYS: [&str; 12] = [
    "password",
    "access_token",
    "client_secret",
    "refresh_token",
    "key",
    "secret_key",
    "callback_secret",
    "token",
    "secret",
    "api_key",
    "api_salt",
    "metrics_token",
];

/// Everything `serve` needs, each value already checked.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub log_format: LogFormat,
    /// This gateway's address as the outside world reaches it (for the portal's batch file).
    pub public_url: Option<Url>,
    /// Reverse proxies whose `X-Forwarded-For` / `Forwarded` name the visitor.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub store: StoreConfig,
    pub worker: WorkerConfig,
    pub phone_region: PhoneRegion,
    pub security: SecurityConfig,
    pub feedback: FeedbackConfig,
    pub smtp: Option<SmtpConfig>,
    pub admin_token: Option<SecretString>,
    /// Lets a scraper read `GET /metrics`; without it, there are no metrics over HTTP.
    pub metrics_token: Option<SecretString>,
    pub console: ConsoleConfig,
    /// `None` without an `[alerts]` section: then nobody is alerted.
    pub alerts: Option<AlertsConfig>,
    /// Where files that come with website leads are kept.
    pub files_dir: PathBuf,
    pub retention: Retention,
    pub destinations: BTreeMap<String, DestinationConfig>,
    pub sources: BTreeMap<SourceId, SourceConfig>,
}

/// How log lines are written: for people, or one JSON object per line for a collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// The operator console: the language of its pages, how long a login lasts, when logins lock.
#[derive(Debug, Clone)]
pub struct ConsoleConfig {
    pub language: ConsoleLanguage,
    pub session_lifetime: Duration,
    pub lockout_window: Duration,
    pub max_failures_per_user: u32,
    pub max_failures_per_address: u32,
    /// A source whose leads wait while none reached the CRM for this long is shown as stalled.
    pub stalled_after: Duration,
    /// Console user name → their PBX extension: whose phone rings, who a click-to-call rings.
    pub extensions: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConsoleLanguage {
    #[default]
    Russian,
    English,
}

/// Where callbacks may go: public addresses only, unless allowed here.
#[derive(Debug, Clone, Default)]
pub struct SecurityConfig {
    pub allow_private_callbacks: bool,
    pub callback_allow_hosts: Vec<String>,
}

/// How owed feedback (callbacks, e-mails) is delivered and retried.
#[derive(Debug, Clone)]
pub struct FeedbackConfig {
    pub timeout: Duration,
    pub retry_initial: Duration,
    pub retry_max: Duration,
    /// After this long since the outcome, an undelivered callback or e-mail is marked failed.
    pub max_age: Duration,
}

/// How long settled leads, their history details and their files are kept; `None` keeps them forever.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    pub leads: Option<Duration>,
    pub history: Option<Duration>,
    pub files: Option<Duration>,
}

impl Retention {
    pub fn is_forever(&self) -> bool {
        self == &Self::default()
    }
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// `sqlite://…` (one machine) or `postgres://…` (any number of nodes).
    pub url: String,
    /// SQLite only: what a committed lead survives.
    pub durability: Durability,
    /// PostgreSQL only: connections this node keeps open.
    pub max_connections: u32,
}

impl StoreConfig {
    pub fn is_postgres(&self) -> bool {
        self.url.starts_with("postgres://") || self.url.starts_with("postgresql://")
    }
}

/// What a committed lead survives: SQLite WAL with `synchronous=NORMAL` or `FULL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    ProcessCrash,
    PowerLoss,
}

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub interval: Duration,
    pub batch_size: usize,
    pub lease: Duration,
    pub retry_initial: Duration,
    pub retry_max: Duration,
    pub blocked_pause: Duration,
}

#[derive(Debug, Clone)]
pub enum DestinationConfig {
    AmoCrm(AmoCrmConfig),
    SessionCrm(SessionCrmConfig),
}

#[derive(Debug, Clone)]
pub struct AmoCrmConfig {
    pub name: String,
    pub base_url: Url,
    pub auth: AmoCrmAuth,
    pub requests_per_second: u32,
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub enum AmoCrmAuth {
    LongLivedToken(SecretString),
    OAuth(OAuthConfig),
}

#[derive(Debug, Clone)]
pub struct OAuthConfig {
    pub client_id: String,
    pub client_secret: SecretString,
    pub redirect_uri: Url,
    /// Only the first refresh token: amoCRM rotates it on every use, and the store keeps the current one.
    pub refresh_token: SecretString,
    pub access_token: Option<SecretString>,
}

/// A company's own CRM reached with a cookie session and a CSRF header (`kind = "session_crm"`).
#[derive(Debug, Clone)]
pub struct SessionCrmConfig {
    pub name: String,
    pub base_url: Url,
    pub username: String,
    pub password: SecretString,
    pub requests_per_second: u32,
    pub timeout: Duration,
    /// A link to a created ticket's card, with `{{ id }}` and `{{ number }}`.
    pub card_url: Option<Template>,
    pub session: SessionSettings,
    /// Boxed: six calls' templates would make every `DestinationConfig` several times larger.
    pub api: Box<SessionCrmApi>,
}

/// How the gateway logs in and keeps its session (`[destinations.<name>.session]`).
#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// Relative to the base URL's path; a redirect to it also means the session is gone.
    pub login_path: String,
    pub login_format: LoginFormat,
    /// Login field name → template over `username` and `password`.
    pub login_body: Vec<(String, Template)>,
    /// A login whose answer does not set this cookie has failed.
    pub session_cookie: String,
    pub csrf_cookie: String,
    pub csrf_header: String,
    /// Percent-decode the CSRF cookie's value for the header (Laravel's `XSRF-TOKEN`).
    pub csrf_decode: bool,
    /// Log in again once this long has passed since the last login.
    pub lifetime: Duration,
    /// Answers meaning "the session is gone": log in again and repeat the request once.
    pub relogin_statuses: Vec<u16>,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            login_path: "/api/auth/login".to_owned(),
            login_format: LoginFormat::Json,
            login_body: vec![
                ("login".to_owned(), Template("{{ username }}".to_owned())),
                ("password".to_owned(), Template("{{ password }}".to_owned())),
            ],
            session_cookie: "sessionid".to_owned(),
            csrf_cookie: "csrftoken".to_owned(),
            csrf_header: "X-CSRFToken".to_owned(),
            csrf_decode: false,
            lifetime: Duration::from_secs(25 * 60),
            relogin_statuses: vec![401, 403, 419],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginFormat {
    Json,
    Form,
}

/// The CRM calls of a delivery, each described by templates (`[destinations.<name>.api]`).
#[derive(Debug, Clone)]
pub struct SessionCrmApi {
    /// Tried in order until one finds the contact; a lookup that needs a value the lead lacks is skipped.
    pub find_contact: Vec<Endpoint>,
    pub create_organization: Option<Endpoint>,
    pub create_contact: Endpoint,
    pub create_ticket: Endpoint,
    pub add_message: Option<Endpoint>,
    /// Without it, files reach the CRM as links in the message.
    pub attach_file: Option<Endpoint>,
}

/// One CRM call: where it goes, what it sends, and what is read from its JSON answer.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub method: HttpMethod,
    /// Relative to the base URL's path.
    pub path: Template,
    pub query: Vec<(String, Template)>,
    /// Field name → template; each renders to a JSON string (a text part for an upload).
    pub body: Vec<(String, Template)>,
    /// The multipart field that carries an uploaded file (`attach_file` only).
    pub multipart_field: Option<String>,
    /// JSON pointers into the answer.
    pub id: String,
    pub organization_id: Option<String>,
    pub number: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpMethod {
    Get,
    Post,
    Put,
    Patch,
}

impl HttpMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
        }
    }
}

/// A minijinja template's source, known to parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(String);

impl Template {
    /// # Errors
    /// minijinja's reason when `source` does not parse.
    pub fn parse(source: &str) -> Result<Self, String> {
        minijinja::Environment::new()
            .template_from_str(source)
            .map(|_| Self(source.to_owned()))
            .map_err(|error| error.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone)]
pub struct SourceConfig {
    pub id: SourceId,
    pub kind: SourceKind,
    /// For a portal source, the default of advertisers that set no route of their own.
    pub route: Route,
    pub retry: RetryPolicy,
    pub feedback: SourceFeedback,
    /// The most requests a minute its endpoints take from all senders together; `None`: no limit.
    pub requests_per_minute: Option<std::num::NonZeroU32>,
}

/// The channel a source receives leads on, with its credentials.
#[derive(Debug, Clone)]
pub enum SourceKind {
    /// `POST /api/v1/leads` (the TrendAgent flow), authenticated by `key`.
    Partner { keys: Keys },
    /// Grupo ZAP's lead contract: `POST /grupozap/lead[/{advertiser}]` with HTTP Basic auth.
    Zap(ZapSource),
    /// Roistat's proxy-lead API: `/api/proxy/1.0/leads/add` and `/messages/add`, authenticated by `key`.
    Proxy(ProxySource),
    /// A website form: `GET`/`POST /forms/{source}`, open to visitors of the allowed sites.
    Form(FormSource),
    /// A cloud PBX's call events: `/telephony/{source}/…`, each provider authenticated its own way.
    Telephony(Box<TelephonySource>),
}

/// A source's keys: one, or several while its senders change over from an old key to a new one.
#[derive(Debug, Clone)]
pub struct Keys(Vec<SecretString>);

impl Keys {
    /// Whether `presented` is one of the keys. Each is compared in constant time and all are
    /// compared, so timing tells nothing about which came close.
    pub fn matches(&self, presented: &str) -> bool {
        use secrecy::ExposeSecret;
        use subtle::ConstantTimeEq;
        let each = self.0.iter().map(|key| bool::from(key.expose_secret().as_bytes().ct_eq(presented.as_bytes())));
        each.fold(false, |matched, this| matched | this)
    }
}

impl From<SecretString> for Keys {
    fn from(key: SecretString) -> Self {
        Self(vec![key])
    }
}

#[derive(Debug, Clone)]
pub struct ProxySource {
    pub keys: Keys,
    /// How long after delivery a repeat of the client's lead still counts as a duplicate.
    pub duplicate_window: Duration,
    /// The longest a `sync=1` request waits for the CRM.
    pub sync_timeout: Duration,
    pub wait_for_crm: Option<WaitForCrm>,
}

/// A form's or proxy site's answer that waits for the CRM's deal or ticket and gives its number
/// (`wait_for_crm`), and the e-mail that gives it when the answer could not.
#[derive(Debug, Clone)]
pub struct WaitForCrm {
    /// How long the answer waits, from the lead's arrival (`Lead::answer_deadline`).
    pub wait: Duration,
    /// The answer's text once the number is known; `{number}` stands for it.
    pub registered_message: String,
    /// `None` without an `[smtp]` section: then nobody is e-mailed.
    pub visitor_email: Option<VisitorEmailTemplates>,
}

impl WaitForCrm {
    pub fn registered(&self, number: &str) -> String {
        self.registered_message.replace("{number}", number)
    }
}

#[derive(Debug, Clone)]
pub struct FormSource {
    pub heading: String,
    /// Each CRM field filled from a form field, by the form field's `name`.
    pub fields: Vec<(CrmField, String)>,
    /// Each CRM field filled with a fixed value, which may hold `{variables}`.
    pub statics: Vec<(CrmField, String)>,
    /// Form fields a visitor must fill.
    pub required: Vec<String>,
    /// Form field name → its label on the page.
    pub labels: BTreeMap<String, String>,
    pub require_file: bool,
    /// Zero: the form takes no files.
    pub max_files: usize,
    pub max_file_bytes: u64,
    /// Off: leads are stored `skipped` and never reach the CRM.
    pub send_to_crm: bool,
    /// Hosts whose pages may post the form (checked against Origin or Referer); empty: any site.
    pub allowed_sites: Vec<String>,
    /// A hidden field humans leave empty; a submission that fills it is dropped as spam.
    pub honeypot: String,
    pub per_ip_per_minute: u32,
    pub success_message: String,
    pub wait_for_crm: Option<WaitForCrm>,
    /// A personal-data consent checkbox (Russia's 152-FZ) that must be ticked; `None`: no checkbox.
    /// Boxed: most forms have none, and every source's kind is as large as its largest.
    pub consent: Option<Box<Consent>>,
}

/// The consent a form asks for: the checkbox's text and the privacy policy it links to, both
/// stored with every lead the form accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub text: String,
    pub policy_url: url::Url,
}

#[derive(Debug, Clone)]
pub struct ZapSource {
    /// The Basic auth user name; `vivareal` in the portal's samples.
    pub username: String,
    /// The Basic auth password the portal issues to the gateway.
    pub secret_key: SecretString,
    /// The zone the contract's local `timestamp` is read in.
    pub timezone: chrono_tz::Tz,
}

impl SourceConfig {
    /// Where a lead of this source goes: its own routing (a portal advertiser's) over the source's.
    pub fn route_for(&self, routing: &crate::domain::Routing) -> Route {
        Route {
            destination: routing.destination.clone().unwrap_or_else(|| self.route.destination.clone()),
            pipeline: routing.pipeline.clone().unwrap_or_else(|| self.route.pipeline.clone()),
            status: routing.status.clone().unwrap_or_else(|| self.route.status.clone()),
            deal_fields: self.route.deal_fields.clone(),
            service: self.route.service.clone(),
            subject: self.route.subject.clone(),
        }
    }

    /// How the source's visitors are told their request's number, when it is set to.
    pub fn wait_for_crm(&self) -> Option<&WaitForCrm> {
        match &self.kind {
            SourceKind::Form(form) => form.wait_for_crm.as_ref(),
            SourceKind::Proxy(proxy) => proxy.wait_for_crm.as_ref(),
            SourceKind::Partner { .. } | SourceKind::Zap(_) | SourceKind::Telephony(_) => None,
        }
    }

    /// The keys of a partner source; portal sources authenticate otherwise.
    pub fn partner_keys(&self) -> Option<&Keys> {
        match &self.kind {
            SourceKind::Partner { keys } => Some(keys),
            SourceKind::Zap(_) | SourceKind::Proxy(_) | SourceKind::Form(_) | SourceKind::Telephony(_) => None,
        }
    }
}

/// When a failed lead is tried again, and when it is given up as `dead`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub schedule: RetrySchedule,
    /// Measured from the lead's arrival: a retry that would fall later makes the lead `dead`.
    pub max_age: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetrySchedule {
    /// `[worker] retry_initial`, doubling up to `retry_max`, with jitter.
    Exponential,
    /// A fixed interval, with jitter (the seed's Roistat policy: every 30 minutes).
    Every(Duration),
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { schedule: RetrySchedule::Exponential, max_age: Duration::from_secs(48 * 3600) }
    }
}

impl RetryPolicy {
    /// Roistat's proxy leads: every 30 minutes for two days.
    pub const PROXY: Self =
        Self { schedule: RetrySchedule::Every(Duration::from_secs(30 * 60)), max_age: Duration::from_secs(48 * 3600) };
}

/// What a source's outcomes owe: a callback (signed when a secret is set) and e-mails.
#[derive(Debug, Clone, Default)]
pub struct SourceFeedback {
    /// Each signs every callback: several while the receiver changes over to a new secret.
    pub callback_secrets: Vec<SecretString>,
    pub notify: Vec<Email>,
    pub messages: CallbackMessages,
    pub email: EmailTemplates,
}

/// The callback's `message` for each kind of outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackMessages {
    pub unique: String,
    pub not_unique: String,
}

impl Default for CallbackMessages {
    fn default() -> Self {
        Self {
            unique: "Клиент уникальный".to_owned(), not_unique: "Клиент не уникален".to_owned()
        }
    }
}

/// Where a source's leads go: the CRM account and, by name, the pipeline and stage (amoCRM) or the
/// service and subject of the ticket (session CRM); and which received fields also fill custom
/// fields of the deal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Route {
    pub destination: String,
    /// Empty for a session CRM's route.
    pub pipeline: String,
    pub status: String,
    /// Received field name → the deal's custom field id (`[sources.<name>.deal_fields]`).
    pub deal_fields: BTreeMap<String, i64>,
    /// A session CRM ticket's commercial service; `None` for amoCRM routes.
    pub service: Option<String>,
    pub subject: Option<String>,
}

/// One thing wrong with the configuration, named by its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

impl fmt::Display for Problem {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}: {}", self.key, self.message)
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(formatter, "the configuration has {} problem(s):", self.problems.len())?;
        for problem in &self.problems {
            writeln!(formatter, "  {problem}")?;
        }
        Ok(())
    }
}

impl Problem {
    fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self { key: key.into(), message: message.into() }
    }
}

impl Config {
    /// Loads the defaults, the file at `path` (if any) and the environment, in that order.
    ///
    /// # Errors
    /// Every problem found, each with its key: unknown keys, missing or malformed values,
    /// references to destinations that do not exist.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Toml::string(DEFAULTS));
        if let Some(path) = path {
            if !path.is_file() {
                let problem = Problem::new("--config", format!("{} is not a readable file", path.display()));
                return Err(ConfigError { problems: vec![problem] });
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        let environment = Env::prefixed(ENV_PREFIX).ignore(&["config"]).split(ENV_SPLIT);
        // figment reads a variable's value as TOML-like data, so a password of digits would be a
        // number (and `0123` would lose its zero): secrets are taken as written instead.
        let secrets: Vec<(String, String)> = environment
            .iter()
            .filter(|(key, _)| key.as_str().rsplit('.').next().is_some_and(|name| SECRET_KEYS.contains(&name)))
            .map(|(key, value)| (key.as_str().to_owned(), value))
            .collect();
        figment = figment.merge(environment);
        for (key, value) in secrets {
            figment = figment.merge(Serialized::default(&key, value));
        }
        Self::from_figment(&figment)
    }

    /// The embedded defaults under `text` as if it were the file, without the environment:
    /// for tests and tools that hold a configuration in memory.
    ///
    /// # Errors
    /// Every problem found, as `load` reports them.
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        Self::from_figment(&Figment::from(Toml::string(DEFAULTS)).merge(Toml::string(text)))
    }

    fn from_figment(figment: &Figment) -> Result<Self, ConfigError> {
        let mut problems = unknown_keys(figment);
        let config = match figment.extract::<RawSettings>() {
            Ok(raw) => check::check(raw, &mut problems),
            Err(_) => {
                problems.extend(type_errors(figment).into_iter().flatten().map(|error| type_problem(&error)));
                None
            }
        };
        match config {
            Some(config) if problems.is_empty() => Ok(config),
            _ => Err(ConfigError { problems }),
        }
    }
}

/// Every value of the wrong type or shape. Serde stops at the first one, so each section, and each
/// destination and source, is read on its own: one wrong value does not hide the others.
fn type_errors(figment: &Figment) -> Vec<figment::Error> {
    use raw::*;
    fn read<T: serde::de::DeserializeOwned>(figment: &Figment, key: &str, errors: &mut Vec<figment::Error>) {
        if !figment.contains(key) {
            return;
        }
        if let Err(mut error) = figment.extract_inner::<T>(key) {
            // figment appends the section's own key after the path within it.
            let section: Vec<String> = key.split('.').map(str::to_owned).collect();
            if error.path.ends_with(&section) {
                error.path.truncate(error.path.len() - section.len());
            }
            error.path.splice(0..0, section);
            errors.push(error);
        }
    }
    let mut errors = Vec::new();
    read::<RawServer>(figment, "server", &mut errors);
    read::<RawLog>(figment, "log", &mut errors);
    read::<RawStore>(figment, "store", &mut errors);
    read::<RawWorker>(figment, "worker", &mut errors);
    read::<RawPhone>(figment, "phone", &mut errors);
    read::<RawSecurity>(figment, "security", &mut errors);
    read::<RawFeedback>(figment, "feedback", &mut errors);
    read::<RawSmtp>(figment, "smtp", &mut errors);
    read::<RawAdmin>(figment, "admin", &mut errors);
    read::<RawFiles>(figment, "files", &mut errors);
    read::<RawConsole>(figment, "console", &mut errors);
    for (table, entries) in [("destinations", true), ("sources", false)] {
        let names = figment.find_value(table).ok().and_then(|value| value.into_dict()).unwrap_or_default();
        for name in names.keys() {
            let key = format!("{table}.{name}");
            if entries {
                read::<RawDestination>(figment, &key, &mut errors);
            } else {
                read::<RawSource>(figment, &key, &mut errors);
            }
        }
    }
    if errors.is_empty() {
        // A shape no single section shows (a section that is not a table, say): the whole.
        errors.extend(figment.extract::<RawSettings>().err());
    }
    errors
}

/// A value's problem under the key it was written as: the file's key, or the environment
/// variable's name when the value came from one.
fn type_problem(error: &figment::Error) -> Problem {
    let key = if error.path.is_empty() { "(file)".to_owned() } else { error.path.join(".") };
    let origin = error.metadata.as_ref().map(|metadata| match &metadata.source {
        Some(figment::Source::File(_)) => format!(" (from {})", metadata.name),
        // Set by the environment: the variable, as `load` maps keys to variables.
        _ if metadata.name.contains("environment") => {
            format!(" (from the environment variable {ENV_PREFIX}{})", error.path.join(ENV_SPLIT).to_uppercase())
        }
        _ => format!(" (from {})", metadata.name),
    });
    Problem::new(key, format!("{}{}", error.kind, origin.unwrap_or_default()))
}

/// Serde would silently drop a misspelt key; a gateway that ignores `acess_token` fails much later
/// and much more confusingly, so every key nobody reads is reported.
fn unknown_keys(figment: &Figment) -> Vec<Problem> {
    let Ok(value) = figment.extract::<figment::value::Value>() else {
        return Vec::new();
    };
    let mut unknown = Vec::new();
    let _ = serde_ignored::deserialize(&value, |path| unknown.push(path.to_string())).map(|_: RawSettings| ());
    // serde_ignored writes an optional table's step as `?`; the key as written has none.
    unknown.into_iter().map(|key| Problem::new(key.replace(".?", ""), "unknown key")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_toml(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml_str(text)
    }

    fn keys(error: ConfigError) -> Vec<String> {
        error.problems.into_iter().map(|problem| problem.key).collect()
    }

    #[test]
    fn the_embedded_defaults_alone_are_a_valid_configuration() {
        let config = load_toml("").unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.store.url, "sqlite://leadgate.db");
        assert_eq!(config.worker.batch_size, 50);
        assert!(config.destinations.is_empty() && config.sources.is_empty());
    }

    #[test]
    fn the_documented_example_is_accepted() {
        let config = load_toml(
            r#"
            [worker]
            interval = "60s"
            batch_size = 5
            [destinations.main]
            kind = "amocrm"
            base_url = "https://example.amocrm.ru"
            access_token = "long-lived"
            requests_per_second = 7
            [sources.trendagent]
            kind = "partner"
            key = "0123456789abcdef0123"
            destination = "main"
            pipeline = "TrendAgent"
            status = "Объект выбран"
            "#,
        )
        .unwrap();
        assert_eq!(config.worker.interval, Duration::from_secs(60));
        let source = &config.sources[&SourceId("trendagent".into())];
        assert_eq!(source.route.status, "Объект выбран");
    }

    #[test]
    fn every_problem_is_reported_by_its_key_at_once() {
        let error = load_toml(
            r#"
            [server]
            listne = "0.0.0.0:1"
            [destinations.main]
            kind = "amocrm"
            base_url = "not a url"
            acess_token = "typo"
            [sources.trendagent]
            kind = "partner"
            key = "0123456789abcdef0123"
            destination = "nowhere"
            pipeline = "TrendAgent"
            "#,
        )
        .unwrap_err();
        let keys = keys(error);
        for expected in [
            "server.listne",
            "destinations.main.acess_token",
            "destinations.main.base_url",
            "destinations.main.access_token",
            "sources.trendagent.status",
            "sources.trendagent.destination",
        ] {
            assert!(keys.iter().any(|key| key == expected), "{expected} missing from {keys:?}");
        }
    }

    #[test]
    fn retention_keeps_forever_unless_an_age_is_given_and_refuses_zero() {
        assert!(load_toml("").unwrap().retention.is_forever());
        let retention = load_toml("[retention]\nleads = \"365d\"\nfiles = \"90d\"").unwrap().retention;
        assert_eq!(retention.leads, Some(Duration::from_secs(365 * 24 * 3600)));
        assert_eq!((retention.history, retention.files), (None, Some(Duration::from_secs(90 * 24 * 3600))));
        assert_eq!(keys(load_toml("[retention]\nhistory = \"0s\"").unwrap_err()), ["retention.history"]);
        assert_eq!(keys(load_toml("[retention]\nleeds = \"1d\"").unwrap_err()), ["retention.leeds"]);
    }

    #[test]
    fn a_malformed_duration_names_its_key() {
        let keys = keys(load_toml("[worker]\ninterval = \"soon\"").unwrap_err());
        assert_eq!(keys, ["worker.interval"]);
    }

    #[test]
    fn values_of_the_wrong_type_in_several_sections_are_each_named_at_once() {
        let error = load_toml(
            r#"
            [worker]
            batch_size = "fifty"
            [store]
            max_connections = "many"
            [console]
            session_lifetime = 12
            [destinations.main]
            kind = "amocrm"
            base_url = "https://a.amocrm.ru"
            access_token = "t"
            requests_per_second = "seven"
            [sources.trendagent]
            kind = "partner"
            key = "0123456789abcdef0123"
            destination = "main"
            pipeline = "TrendAgent"
            status = "Объект выбран"
            notify = "ops@example.com, sales@example.com"
            "#,
        )
        .unwrap_err();
        let mut keys = keys(error);
        keys.sort();
        assert_eq!(
            keys,
            [
                "console.session_lifetime",
                "destinations.main.requests_per_second",
                "sources.trendagent.notify",
                "store.max_connections",
                "worker.batch_size"
            ]
        );
    }

    #[test]
    // Jail's closure must return figment's own (large) error type.
    #[allow(clippy::result_large_err)]
    fn a_wrong_value_from_the_environment_names_the_variable() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("LEADGATE_WORKER__BATCH_SIZE", "fifty");
            let error = Config::load(None).unwrap_err();
            let problem = error
                .problems
                .iter()
                .find(|problem| problem.key == "worker.batch_size")
                .unwrap_or_else(|| panic!("{error}"));
            assert!(problem.message.contains("LEADGATE_WORKER__BATCH_SIZE"), "{problem}");
            Ok(())
        });
    }

    #[test]
    fn oauth_needs_all_four_values() {
        let error = load_toml(
            "[destinations.main]\nkind = \"amocrm\"\nbase_url = \"https://a.amocrm.ru\"\nclient_id = \"id\"\nclient_secret = \"s\"\nredirect_uri = \"https://example.com/cb\"",
        )
        .unwrap_err();
        assert_eq!(keys(error), ["destinations.main.refresh_token"]);
    }

    const SOURCE: &str = "[destinations.main]\nkind = \"amocrm\"\nbase_url = \"https://a.amocrm.ru\"\naccess_token = \"t\"\n\
        [sources.partner]\nkind = \"partner\"\nkey = \"0123456789abcdef\"\ndestination = \"main\"\npipeline = \"P\"\nstatus = \"S\"\n";

    #[test]
    fn retry_policies_are_read_in_both_forms_and_default_to_exponential_for_two_days() {
        let source = |extra: &str| {
            let config = load_toml(&format!("{SOURCE}{extra}")).unwrap();
            config.sources[&SourceId("partner".into())].retry
        };
        assert_eq!(
            source(""),
            RetryPolicy { schedule: RetrySchedule::Exponential, max_age: Duration::from_secs(48 * 3600) }
        );
        assert_eq!(
            source("retry = { every = \"30m\", max_age = \"48h\" }"),
            RetryPolicy {
                schedule: RetrySchedule::Every(Duration::from_secs(1800)),
                max_age: Duration::from_secs(48 * 3600)
            }
        );
        assert_eq!(
            source("retry = { backoff = \"exponential\", max_age = \"2h\" }").max_age,
            Duration::from_secs(7200)
        );
        let error = load_toml(&format!("{SOURCE}retry = {{ backoff = \"linear\" }}")).unwrap_err();
        assert_eq!(keys(error), ["sources.partner.retry"]);
    }

    #[test]
    fn notification_addresses_need_smtp_and_must_be_addresses() {
        let error = load_toml(&format!("{SOURCE}notify = [\"sales@example.ru\", \"not an address\"]")).unwrap_err();
        let keys = keys(error);
        assert_eq!(keys, ["sources.partner.notify", "sources.partner.notify"]);
        let with_smtp = format!(
            "[smtp]\nurl = \"smtp://127.0.0.1:2525\"\nfrom = \"gate@example.ru\"\n{SOURCE}notify = [\"sales@example.ru\"]"
        );
        let config = load_toml(&with_smtp).unwrap();
        assert_eq!(config.sources[&SourceId("partner".into())].feedback.notify.len(), 1);
    }

    #[test]
    fn a_broken_email_template_and_a_bad_smtp_url_are_named() {
        let text = format!(
            "[smtp]\nurl = \"http://mail\"\nfrom = \"gate@example.ru\"\n{SOURCE}[sources.partner.email]\nnew_client_subject = \"{{{{ name\"\n"
        );
        let keys = keys(load_toml(&text).unwrap_err());
        assert!(
            keys.contains(&"smtp.url".to_owned()) && keys.contains(&"sources.partner.email".to_owned()),
            "{keys:?}"
        );
    }

    const DESTINATION: &str =
        "[destinations.main]\nkind = \"amocrm\"\nbase_url = \"https://a.amocrm.ru\"\naccess_token = \"t\"\n";

    #[test]
    fn a_proxy_source_retries_every_30_minutes_for_two_days_unless_told_otherwise() {
        let text = format!(
            "{DESTINATION}[sources.site]\nkind = \"proxy\"\nkey = \"0123456789abcdef\"\ndestination = \"main\"\npipeline = \"P\"\nstatus = \"S\"\n"
        );
        let config = load_toml(&text).unwrap();
        let source = &config.sources[&SourceId("site".into())];
        assert_eq!(source.retry, RetryPolicy::PROXY);
        let SourceKind::Proxy(proxy) = &source.kind else { panic!("not a proxy source") };
        assert_eq!(proxy.sync_timeout, Duration::from_secs(30));
        let error = load_toml(&format!("{text}sync_timeout = \"10m\"\n")).unwrap_err();
        assert_eq!(keys(error), ["sources.site.sync_timeout"]);
    }

    #[test]
    fn the_issues_example_form_configures_a_working_form() {
        let config = load_toml(&format!(
            "{DESTINATION}{}",
            r#"
            [sources.feedback]
            kind = "form"
            destination = "main"
            pipeline = "Воронка"
            status = "Первичный контакт"
            require_file = true
            fields = { name = "name", phone = "phone", email = "email", comment = "message" }
            static = { tags = "site, feedback" }
            "#
        ))
        .unwrap();
        let SourceKind::Form(form) = &config.sources[&SourceId("feedback".into())].kind else { panic!("not a form") };
        assert!(form.require_file && form.max_files > 0 && form.send_to_crm);
        assert_eq!(form.required, ["name", "phone"]);
        assert_eq!(form.statics, [(CrmField::Tags, "site, feedback".to_owned())]);
        assert_eq!(form.success_message, form::DEFAULT_SUCCESS_MESSAGE);
    }

    const SMTP: &str = "[smtp]\nurl = \"smtp://127.0.0.1:2525\"\nfrom = \"gate@example.ru\"\n";

    fn website_sources(extra: &str) -> String {
        format!(
            "{DESTINATION}[sources.site]\nkind = \"proxy\"\nkey = \"0123456789abcdef\"\ndestination = \"main\"\n\
             pipeline = \"P\"\nstatus = \"S\"\n{extra}\n\
             [sources.feedback]\nkind = \"form\"\ndestination = \"main\"\npipeline = \"P\"\nstatus = \"S\"\n\
             fields = {{ phone = \"phone\" }}\n{extra}\n"
        )
    }

    fn wait_of<'a>(config: &'a Config, source: &str) -> &'a WaitForCrm {
        config.sources[&SourceId(source.into())].wait_for_crm().expect("the source waits for the CRM")
    }

    #[test]
    fn form_and_proxy_sources_wait_for_the_crm_with_the_default_message_and_email() {
        let config = load_toml(&format!("{SMTP}{}", website_sources("wait_for_crm = \"5s\""))).unwrap();
        for source in ["site", "feedback"] {
            let wait = wait_of(&config, source);
            assert_eq!(wait.wait, Duration::from_secs(5));
            assert_eq!(wait.registered("T-000123"), "Ваша заявка зарегистрирована под номером T-000123");
            assert_eq!(wait.visitor_email, Some(VisitorEmailTemplates::default()));
        }
        let config = load_toml(&website_sources("")).unwrap();
        assert!(config.sources.values().all(|source| source.wait_for_crm().is_none()));
    }

    #[test]
    fn the_registered_message_and_the_visitors_templates_can_be_set_and_without_smtp_nobody_is_emailed() {
        let extra = "wait_for_crm = \"3s\"\nregistered_message = \"Заявка №{number} принята\"\n\
                     email = { visitor_subject = \"Номер {{ number }}\" }";
        let config = load_toml(&format!("{SMTP}{}", website_sources(extra))).unwrap();
        let wait = wait_of(&config, "feedback");
        assert_eq!(wait.registered("42"), "Заявка №42 принята");
        let email = wait.visitor_email.as_ref().expect("[smtp] is configured");
        assert_eq!(email.subject, "Номер {{ number }}");
        assert_eq!(email.body, VisitorEmailTemplates::default().body);
        assert_eq!(config.sources[&SourceId("feedback".into())].feedback.email, EmailTemplates::default());

        let config = load_toml(&website_sources(extra)).unwrap();
        assert_eq!(wait_of(&config, "site").visitor_email, None);
    }

    #[test]
    fn a_wait_out_of_bounds_or_a_message_without_the_number_is_named() {
        for wait in ["500ms", "31s"] {
            let error = load_toml(&website_sources(&format!("wait_for_crm = \"{wait}\""))).unwrap_err();
            assert_eq!(keys(error), ["sources.feedback.wait_for_crm", "sources.site.wait_for_crm"], "{wait}");
        }
        let extra = "wait_for_crm = \"5s\"\nregistered_message = \"Заявка принята\"";
        let error = load_toml(&website_sources(extra)).unwrap_err();
        assert!(error.problems.iter().all(|problem| problem.message.contains("{number}")), "{error}");
        assert_eq!(keys(error), ["sources.feedback.registered_message", "sources.site.registered_message"]);
    }

    #[test]
    fn waiting_keys_on_other_kinds_and_waiting_keys_without_a_wait_are_named() {
        let error =
            load_toml(&format!("{SOURCE}wait_for_crm = \"5s\"\nregistered_message = \"№{{number}}\"\n")).unwrap_err();
        assert!(error.problems.iter().all(|problem| problem.message.contains("\"form\" or \"proxy\"")), "{error}");
        assert_eq!(keys(error), ["sources.partner.wait_for_crm", "sources.partner.registered_message"]);

        let extra = "registered_message = \"№{number}\"\nemail = { visitor_body = \"{{ number }}\" }";
        let error = load_toml(&website_sources(extra)).unwrap_err();
        let keys = keys(error);
        for expected in ["sources.site.registered_message", "sources.feedback.email.visitor_body"] {
            assert!(keys.iter().any(|key| key == expected), "{expected} missing from {keys:?}");
        }
    }

    #[test]
    fn a_broken_visitor_template_is_named_at_load() {
        let extra = "wait_for_crm = \"5s\"\nemail = { visitor_body = \"{{ number\" }";
        let error = load_toml(&format!("{SMTP}{}", website_sources(extra))).unwrap_err();
        assert!(error.problems.iter().all(|problem| problem.message.contains("visitor_body")), "{error}");
        assert_eq!(keys(error), ["sources.feedback.email", "sources.site.email"]);
    }

    #[test]
    fn a_forms_consent_needs_its_text_and_an_http_policy_address_and_belongs_to_forms_only() {
        let form = |consent: &str| {
            format!(
                "{DESTINATION}[sources.feedback]\nkind = \"form\"\ndestination = \"main\"\npipeline = \"P\"\n\
                 status = \"S\"\nfields = {{ phone = \"phone\" }}\nconsent = {consent}\n"
            )
        };
        let config = load_toml(&form(r#"{ text = "Я согласен", policy_url = "https://example.ru/privacy" }"#)).unwrap();
        let SourceKind::Form(feedback) = &config.sources[&SourceId("feedback".into())].kind else { panic!("a form") };
        let consent = feedback.consent.as_ref().unwrap();
        assert_eq!((consent.text.as_str(), consent.policy_url.as_str()), ("Я согласен", "https://example.ru/privacy"));

        let named = keys(load_toml(&form(r#"{ text = " ", policy_url = "javascript:alert(1)" }"#)).unwrap_err());
        assert!(named.contains(&"sources.feedback.consent.text".to_owned()), "{named:?}");
        assert!(named.contains(&"sources.feedback.consent.policy_url".to_owned()), "{named:?}");
        let proxy = format!(
            "{DESTINATION}[sources.site]\nkind = \"proxy\"\nkey = \"0123456789abcdef\"\ndestination = \"main\"\n\
             pipeline = \"P\"\nstatus = \"S\"\nconsent = {{ text = \"x\", policy_url = \"https://e.ru\" }}\n"
        );
        assert!(keys(load_toml(&proxy).unwrap_err()).contains(&"sources.site.consent".to_owned()));
    }

    #[test]
    fn a_form_without_a_phone_field_or_with_a_bad_fixed_value_is_named() {
        let error = load_toml(&format!(
            "{DESTINATION}{}",
            r#"
            [sources.feedback]
            kind = "form"
            destination = "main"
            pipeline = "P"
            status = "S"
            fields = { name = "name", utm = "utm" }
            static = { price = "дорого" }
            required = ["city"]
            "#
        ))
        .unwrap_err();
        let keys = keys(error);
        for expected in [
            "sources.feedback.fields.utm",
            "sources.feedback.fields.phone",
            "sources.feedback.static.price",
            "sources.feedback.required",
        ] {
            assert!(keys.iter().any(|key| key == expected), "{expected} missing from {keys:?}");
        }
    }
}
