//! Configuration: embedded defaults, then the file, then `LEADGATE_*` variables, checked into typed settings.

mod raw;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use secrecy::SecretString;
use url::Url;

use crate::domain::{PhoneRegion, SourceId};
use raw::{RawDestination, RawSettings, RawSource};

const DEFAULTS: &str = include_str!("default.toml");

/// Everything `serve` needs, each value already checked.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub store: StoreConfig,
    pub worker: WorkerConfig,
    pub phone_region: PhoneRegion,
    pub destinations: BTreeMap<String, DestinationConfig>,
    pub sources: BTreeMap<SourceId, SourceConfig>,
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub url: String,
    pub durability: Durability,
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

#[derive(Debug, Clone)]
pub struct SourceConfig {
    pub id: SourceId,
    pub key: SecretString,
    pub route: Route,
}

/// Where a source's leads go: the CRM account and, by name, the pipeline and stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub destination: String,
    pub pipeline: String,
    pub status: String,
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
        writeln!(
            formatter,
            "the configuration has {} problem(s):",
            self.problems.len()
        )?;
        for problem in &self.problems {
            writeln!(formatter, "  {problem}")?;
        }
        Ok(())
    }
}

impl Problem {
    fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
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
                let problem = Problem::new(
                    "--config",
                    format!("{} is not a readable file", path.display()),
                );
                return Err(ConfigError {
                    problems: vec![problem],
                });
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        figment = figment.merge(Env::prefixed("LEADGATE_").ignore(&["config"]).split("__"));
        Self::from_figment(&figment)
    }

    fn from_figment(figment: &Figment) -> Result<Self, ConfigError> {
        let mut problems = unknown_keys(figment);
        let config = match figment.extract::<RawSettings>() {
            Ok(raw) => check(raw, &mut problems),
            Err(error) => {
                problems.extend(error.into_iter().map(|error| {
                    let key = if error.path.is_empty() {
                        "(file)".to_owned()
                    } else {
                        error.path.join(".")
                    };
                    let origin = error
                        .metadata
                        .as_ref()
                        .map(|metadata| format!(" (from {})", metadata.name));
                    Problem::new(key, format!("{}{}", error.kind, origin.unwrap_or_default()))
                }));
                None
            }
        };
        match config {
            Some(config) if problems.is_empty() => Ok(config),
            _ => Err(ConfigError { problems }),
        }
    }
}

/// Serde would silently drop a misspelt key; a gateway that ignores `acess_token` fails much later
/// and much more confusingly, so every key nobody reads is reported.
fn unknown_keys(figment: &Figment) -> Vec<Problem> {
    let Ok(value) = figment.extract::<figment::value::Value>() else {
        return Vec::new();
    };
    let mut unknown = Vec::new();
    let _ = serde_ignored::deserialize(&value, |path| unknown.push(path.to_string()))
        .map(|_: RawSettings| ());
    unknown
        .into_iter()
        .map(|key| Problem::new(key, "unknown key"))
        .collect()
}

fn check(raw: RawSettings, problems: &mut Vec<Problem>) -> Option<Config> {
    let listen = raw.server.listen.parse::<SocketAddr>().map_err(|_| {
        Problem::new(
            "server.listen",
            format!(
                "«{}» is not an address such as 127.0.0.1:8080",
                raw.server.listen
            ),
        )
    });
    let durability = match raw.store.synchronous.as_str() {
        "normal" => Ok(Durability::ProcessCrash),
        "full" => Ok(Durability::PowerLoss),
        other => Err(Problem::new(
            "store.synchronous",
            format!("«{other}» must be \"normal\" or \"full\""),
        )),
    };
    let store_url = if raw.store.url.starts_with("sqlite:") {
        Ok(raw.store.url.clone())
    } else {
        Err(Problem::new(
            "store.url",
            format!("«{}» is not a sqlite:// URL", raw.store.url),
        ))
    };
    let phone_region = raw
        .phone
        .default_region
        .parse::<PhoneRegion>()
        .map_err(|message| Problem::new("phone.default_region", message));
    let worker = &raw.worker;
    if worker.batch_size == 0 {
        problems.push(Problem::new("worker.batch_size", "must be at least 1"));
    }
    for (key, value) in [
        ("worker.interval", worker.interval),
        ("worker.lease", worker.lease),
        ("worker.retry_initial", worker.retry_initial),
    ] {
        if value.is_zero() {
            problems.push(Problem::new(key, "must be longer than zero"));
        }
    }
    let destinations: BTreeMap<_, _> = raw
        .destinations
        .into_iter()
        .filter_map(|(name, destination)| {
            check_destination(&name, destination, problems).map(|checked| (name, checked))
        })
        .collect();
    let sources = raw
        .sources
        .into_iter()
        .filter_map(|(name, source)| check_source(&name, source, &destinations, problems))
        .map(|source| (source.id.clone(), source))
        .collect();

    let listen = listen.map_err(|problem| problems.push(problem)).ok();
    let durability = durability.map_err(|problem| problems.push(problem)).ok();
    let store_url = store_url.map_err(|problem| problems.push(problem)).ok();
    let phone_region = phone_region.map_err(|problem| problems.push(problem)).ok();
    Some(Config {
        listen: listen?,
        store: StoreConfig {
            url: store_url?,
            durability: durability?,
        },
        worker: WorkerConfig {
            interval: worker.interval,
            batch_size: worker.batch_size as usize,
            lease: worker.lease,
            retry_initial: worker.retry_initial,
            retry_max: worker.retry_max.max(worker.retry_initial),
            blocked_pause: worker.blocked_pause,
        },
        phone_region: phone_region?,
        destinations,
        sources,
    })
}

fn check_destination(
    name: &str,
    raw: RawDestination,
    problems: &mut Vec<Problem>,
) -> Option<DestinationConfig> {
    let key = |field: &str| format!("destinations.{name}.{field}");
    match raw.kind.as_deref() {
        Some("amocrm") => {}
        Some(other) => {
            problems.push(Problem::new(
                key("kind"),
                format!("«{other}» is not a known kind (known: amocrm)"),
            ));
            return None;
        }
        None => {
            problems.push(Problem::new(key("kind"), "missing (known: amocrm)"));
            return None;
        }
    }
    let base_url = match raw.base_url.as_deref().map(Url::parse) {
        Some(Ok(url)) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
            Some(url)
        }
        Some(_) => {
            let value = raw.base_url.unwrap_or_default();
            problems.push(Problem::new(
                key("base_url"),
                format!("«{value}» is not an http(s) URL such as https://example.amocrm.ru"),
            ));
            None
        }
        None => {
            problems.push(Problem::new(
                key("base_url"),
                "missing: the account's address, such as https://example.amocrm.ru",
            ));
            None
        }
    };
    let auth = check_amocrm_auth(
        raw.access_token,
        raw.client_id,
        raw.client_secret,
        raw.redirect_uri,
        raw.refresh_token,
    )
    .map_err(|(field, message)| problems.push(Problem::new(key(field), message)))
    .ok();
    let requests_per_second = raw.requests_per_second.unwrap_or(7);
    if requests_per_second == 0 {
        problems.push(Problem::new(
            key("requests_per_second"),
            "must be at least 1",
        ));
    }
    Some(DestinationConfig::AmoCrm(AmoCrmConfig {
        name: name.to_owned(),
        base_url: base_url?,
        auth: auth?,
        requests_per_second,
        timeout: raw.timeout.unwrap_or(Duration::from_secs(30)),
    }))
}

fn check_amocrm_auth(
    access_token: Option<SecretString>,
    client_id: Option<String>,
    client_secret: Option<SecretString>,
    redirect_uri: Option<String>,
    refresh_token: Option<SecretString>,
) -> Result<AmoCrmAuth, (&'static str, String)> {
    let oauth_given = client_id.is_some() || client_secret.is_some() || refresh_token.is_some();
    if !oauth_given {
        return access_token
            .map(AmoCrmAuth::LongLivedToken)
            .ok_or(("access_token", "missing: a long-lived token, or OAuth2 client_id, client_secret, redirect_uri and refresh_token".to_owned()));
    }
    let missing = |field: &'static str| {
        (
            field,
            "missing: OAuth2 needs client_id, client_secret, redirect_uri and refresh_token"
                .to_owned(),
        )
    };
    let redirect_text = redirect_uri.ok_or_else(|| missing("redirect_uri"))?;
    let redirect_uri = Url::parse(&redirect_text)
        .map_err(|_| ("redirect_uri", format!("«{redirect_text}» is not a URL")))?;
    Ok(AmoCrmAuth::OAuth(OAuthConfig {
        client_id: client_id.ok_or_else(|| missing("client_id"))?,
        client_secret: client_secret.ok_or_else(|| missing("client_secret"))?,
        redirect_uri,
        refresh_token: refresh_token.ok_or_else(|| missing("refresh_token"))?,
        access_token,
    }))
}

fn check_source(
    name: &str,
    raw: RawSource,
    destinations: &BTreeMap<String, DestinationConfig>,
    problems: &mut Vec<Problem>,
) -> Option<SourceConfig> {
    let key = |field: &str| format!("sources.{name}.{field}");
    let before = problems.len();
    match raw.kind.as_deref() {
        Some("partner") => {}
        Some(other) => problems.push(Problem::new(
            key("kind"),
            format!("«{other}» is not a known kind (known: partner)"),
        )),
        None => problems.push(Problem::new(key("kind"), "missing (known: partner)")),
    }
    let mut required =
        |field: &str, value: Option<String>| match value.filter(|value| !value.trim().is_empty()) {
            Some(value) => Some(value),
            None => {
                problems.push(Problem::new(key(field), "missing"));
                None
            }
        };
    let destination = required("destination", raw.destination);
    let pipeline = required("pipeline", raw.pipeline);
    let status = required("status", raw.status);
    use secrecy::ExposeSecret;
    let source_key = raw.key.filter(|secret| secret.expose_secret().len() >= 16);
    if source_key.is_none() {
        problems.push(Problem::new(
            key("key"),
            "missing or shorter than 16 characters",
        ));
    }
    if let Some(destination) = &destination
        && !destinations.contains_key(destination)
    {
        problems.push(Problem::new(
            key("destination"),
            format!("«{destination}» is not a [destinations.*] entry"),
        ));
    }
    if problems.len() > before {
        return None;
    }
    Some(SourceConfig {
        id: SourceId(name.to_owned()),
        key: source_key?,
        route: Route {
            destination: destination?,
            pipeline: pipeline?,
            status: status?,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_toml(text: &str) -> Result<Config, ConfigError> {
        Config::from_figment(&Figment::from(Toml::string(DEFAULTS)).merge(Toml::string(text)))
    }

    fn keys(error: ConfigError) -> Vec<String> {
        error
            .problems
            .into_iter()
            .map(|problem| problem.key)
            .collect()
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
            assert!(
                keys.iter().any(|key| key == expected),
                "{expected} missing from {keys:?}"
            );
        }
    }

    #[test]
    fn a_malformed_duration_names_its_key() {
        let keys = keys(load_toml("[worker]\ninterval = \"soon\"").unwrap_err());
        assert_eq!(keys, ["worker.interval"]);
    }

    #[test]
    fn oauth_needs_all_four_values() {
        let error = load_toml(
            "[destinations.main]\nkind = \"amocrm\"\nbase_url = \"https://a.amocrm.ru\"\nclient_id = \"id\"\nclient_secret = \"s\"\nredirect_uri = \"https://example.com/cb\"",
        )
        .unwrap_err();
        assert_eq!(keys(error), ["destinations.main.refresh_token"]);
    }
}
