//! The configuration as written: plain values, deserialized before any of them is checked.

use std::collections::BTreeMap;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct RawSettings {
    pub server: RawServer,
    pub store: RawStore,
    pub worker: RawWorker,
    pub phone: RawPhone,
    #[serde(default)]
    pub destinations: BTreeMap<String, RawDestination>,
    #[serde(default)]
    pub sources: BTreeMap<String, RawSource>,
}

#[derive(Debug, Deserialize)]
pub struct RawServer {
    pub listen: String,
}

#[derive(Debug, Deserialize)]
pub struct RawStore {
    pub url: String,
    pub synchronous: String,
}

#[derive(Debug, Deserialize)]
pub struct RawWorker {
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    pub batch_size: u32,
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    #[serde(with = "humantime_serde")]
    pub retry_initial: Duration,
    #[serde(with = "humantime_serde")]
    pub retry_max: Duration,
    #[serde(with = "humantime_serde")]
    pub blocked_pause: Duration,
}

#[derive(Debug, Deserialize)]
pub struct RawPhone {
    pub default_region: String,
}

/// One CRM account. Flat rather than tagged by `kind`, so unknown keys are found inside it too.
#[derive(Debug, Deserialize)]
pub struct RawDestination {
    pub kind: Option<String>,
    pub base_url: Option<String>,
    pub access_token: Option<SecretString>,
    pub client_id: Option<String>,
    pub client_secret: Option<SecretString>,
    pub redirect_uri: Option<String>,
    pub refresh_token: Option<SecretString>,
    pub requests_per_second: Option<u32>,
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
}

#[derive(Debug, Deserialize)]
pub struct RawSource {
    pub kind: Option<String>,
    pub key: Option<SecretString>,
    pub destination: Option<String>,
    pub pipeline: Option<String>,
    pub status: Option<String>,
}
