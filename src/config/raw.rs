//! The configuration as written: plain values, deserialized before any of them is checked.

use std::collections::BTreeMap;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct RawSettings {
    pub server: RawServer,
    pub log: RawLog,
    pub store: RawStore,
    pub worker: RawWorker,
    pub phone: RawPhone,
    pub security: RawSecurity,
    pub feedback: RawFeedback,
    pub smtp: Option<RawSmtp>,
    pub admin: Option<RawAdmin>,
    pub files: RawFiles,
    #[serde(default)]
    pub retention: RawRetention,
    pub console: RawConsole,
    pub alerts: Option<super::alerts::RawAlerts>,
    #[serde(default)]
    pub destinations: BTreeMap<String, RawDestination>,
    #[serde(default)]
    pub sources: BTreeMap<String, RawSource>,
}

#[derive(Debug, Deserialize)]
pub struct RawLog {
    pub format: String,
}

#[derive(Debug, Deserialize)]
pub struct RawServer {
    pub listen: String,
    pub public_url: Option<String>,
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct RawStore {
    pub url: String,
    pub synchronous: String,
    pub max_connections: u32,
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
    pub username: Option<String>,
    pub password: Option<SecretString>,
    pub card_url: Option<String>,
    pub session: Option<RawSession>,
    pub api: Option<RawApi>,
}

/// `[destinations.<name>.session]` of a session CRM; every key has a default.
#[derive(Debug, Deserialize)]
pub struct RawSession {
    pub login_path: Option<String>,
    pub login_format: Option<String>,
    pub login_body: Option<BTreeMap<String, String>>,
    pub session_cookie: Option<String>,
    pub csrf_cookie: Option<String>,
    pub csrf_header: Option<String>,
    pub csrf_decode: Option<bool>,
    #[serde(default, with = "humantime_serde")]
    pub lifetime: Option<Duration>,
    pub relogin_statuses: Option<Vec<u16>>,
}

/// `[destinations.<name>.api]` of a session CRM.
#[derive(Debug, Deserialize)]
pub struct RawApi {
    pub find_contact: Option<OneOrMany<RawEndpoint>>,
    pub create_organization: Option<RawEndpoint>,
    pub create_contact: Option<RawEndpoint>,
    pub create_ticket: Option<RawEndpoint>,
    pub add_message: Option<RawEndpoint>,
    pub attach_file: Option<RawEndpoint>,
}

/// One CRM call. Every key besides the five named ones is a JSON pointer to read from the answer;
/// the flattened map takes them all, so `check` names those no call reads instead of serde_ignored.
#[derive(Debug, Deserialize)]
pub struct RawEndpoint {
    pub method: Option<String>,
    pub path: Option<String>,
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    #[serde(default)]
    pub body: BTreeMap<String, String>,
    pub multipart_field: Option<String>,
    #[serde(flatten)]
    pub reads: BTreeMap<String, String>,
}

/// A table or an array of tables. Written by hand rather than as an untagged enum, which would
/// buffer the value and hide misspelt keys inside it from serde_ignored.
#[derive(Debug)]
pub enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor<T>(std::marker::PhantomData<T>);

        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Visitor<T> {
            type Value = OneOrMany<T>;

            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("a table or an array of tables")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(OneOrMany::One)
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                Vec::<T>::deserialize(serde::de::value::SeqAccessDeserializer::new(seq)).map(OneOrMany::Many)
            }
        }

        deserializer.deserialize_any(Visitor(std::marker::PhantomData))
    }
}

#[derive(Debug, Deserialize)]
pub struct RawSource {
    pub kind: Option<String>,
    pub key: Option<SecretString>,
    /// Several keys at once, while senders change over to a new one.
    pub keys: Option<Vec<SecretString>>,
    pub username: Option<String>,
    pub secret_key: Option<SecretString>,
    pub timezone: Option<String>,
    pub destination: Option<String>,
    pub pipeline: Option<String>,
    pub status: Option<String>,
    /// A session CRM ticket's commercial service and subject.
    pub service: Option<String>,
    pub subject: Option<String>,
    pub callback_secret: Option<SecretString>,
    pub callback_secrets: Option<Vec<SecretString>>,
    #[serde(default)]
    pub notify: Vec<String>,
    pub retry: Option<RawRetry>,
    pub messages: Option<RawMessages>,
    pub email: Option<RawEmailTemplates>,
    #[serde(default)]
    pub deal_fields: BTreeMap<String, i64>,
    #[serde(default, with = "humantime_serde")]
    pub duplicate_window: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub sync_timeout: Option<Duration>,
    /// Form and proxy: how long the answer waits for the ticket's number; with `registered_message`.
    #[serde(default, with = "humantime_serde")]
    pub wait_for_crm: Option<Duration>,
    pub registered_message: Option<String>,
    pub heading: Option<String>,
    /// CRM field → form field name.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// CRM field → a fixed value, with `{variables}`.
    #[serde(default, rename = "static")]
    pub statics: BTreeMap<String, String>,
    pub required: Option<Vec<String>>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub require_file: Option<bool>,
    pub max_files: Option<u32>,
    pub max_file_mb: Option<u32>,
    pub send_to_crm: Option<bool>,
    #[serde(default)]
    pub allowed_sites: Vec<String>,
    pub honeypot: Option<String>,
    pub per_ip_per_minute: Option<u32>,
    pub requests_per_minute: Option<u32>,
    pub success_message: Option<String>,
    /// Forms: a personal-data consent checkbox the visitor must tick.
    pub consent: Option<RawConsent>,
    /// Telephony: the PBX and its credentials (Telphin's is `key`).
    pub provider: Option<String>,
    pub secret: Option<SecretString>,
    pub api_key: Option<SecretString>,
    pub api_salt: Option<SecretString>,
    /// Telephony: the PBX's API address and Telphin's OAuth application, for recordings and call-back.
    pub api_url: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<SecretString>,
    /// Telephony: extension → the CRM user, by name or id.
    #[serde(default)]
    pub users: BTreeMap<String, crate::domain::UserRef>,
    pub missed_calls_user: Option<crate::domain::UserRef>,
    pub incoming_unknown: Option<String>,
    pub missed_unknown: Option<String>,
    pub outgoing_unknown: Option<String>,
    #[serde(default, with = "humantime_serde")]
    pub attach_window: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub finish_after: Option<Duration>,
    #[serde(default)]
    pub numbers: Vec<RawNumberRule>,
}

#[derive(Debug, Deserialize)]
pub struct RawFiles {
    pub dir: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawRetention {
    #[serde(default, with = "humantime_serde")]
    pub leads: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub history: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub files: Option<Duration>,
}

/// `{ backoff = "exponential", max_age = "48h" }` or `{ every = "30m", max_age = "48h" }`.
#[derive(Debug, Deserialize)]
pub struct RawRetry {
    pub backoff: Option<String>,
    #[serde(default, with = "humantime_serde")]
    pub every: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub max_age: Option<Duration>,
}

#[derive(Debug, Deserialize)]
pub struct RawMessages {
    pub unique: Option<String>,
    pub not_unique: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct RawEmailTemplates {
    pub new_client_subject: Option<String>,
    pub new_client_body: Option<String>,
    pub known_client_subject: Option<String>,
    pub known_client_body: Option<String>,
    /// The visitor's e-mail with the number, for sources with `wait_for_crm`.
    pub visitor_subject: Option<String>,
    pub visitor_body: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct RawSecurity {
    pub allow_private_callbacks: bool,
    #[serde(default)]
    pub callback_allow_hosts: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct RawFeedback {
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub retry_initial: Duration,
    #[serde(with = "humantime_serde")]
    pub retry_max: Duration,
    #[serde(with = "humantime_serde")]
    pub max_age: Duration,
}

#[derive(Debug, Deserialize)]
pub struct RawSmtp {
    pub url: Option<String>,
    pub from: Option<String>,
    pub username: Option<String>,
    pub password: Option<SecretString>,
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
}

/// `[console]`: the operator console's language, sessions and lock-out.
#[derive(Debug, Deserialize)]
pub struct RawConsole {
    pub language: String,
    /// Console user → the PBX extension on their desk, for the live call card and click-to-call.
    #[serde(default)]
    pub extensions: BTreeMap<String, String>,
    #[serde(with = "humantime_serde")]
    pub session_lifetime: Duration,
    #[serde(with = "humantime_serde")]
    pub lockout_window: Duration,
    pub max_failures_per_user: u32,
    pub max_failures_per_address: u32,
    #[serde(with = "humantime_serde")]
    pub stalled_after: Duration,
}

#[derive(Debug, Deserialize)]
pub struct RawAdmin {
    pub token: Option<SecretString>,
    /// Read-only: `GET /metrics` and nothing else, for a Prometheus server.
    pub metrics_token: Option<SecretString>,
}

/// `[[sources.<name>.numbers]]`: one of our numbers and what incoming calls to it get.
#[derive(Debug, Deserialize)]
pub struct RawNumberRule {
    pub number: Option<String>,
    pub name: Option<String>,
    pub incoming_unknown: Option<String>,
    pub missed_unknown: Option<String>,
    pub pipeline: Option<String>,
    pub status: Option<String>,
}

/// A form's consent checkbox: what it says, and the privacy policy it links to.
#[derive(Debug, Deserialize)]
pub struct RawConsent {
    pub text: Option<String>,
    pub policy_url: Option<String>,
}
