//! Which PBX the emulator plays, and the account it plays with: credentials, extension naming, time zone.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    Telphin,
    Zadarma,
    Mango,
}

impl ProviderKind {
    pub const ALL: [ProviderKind; 3] = [ProviderKind::Telphin, ProviderKind::Zadarma, ProviderKind::Mango];

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Telphin => "telphin",
            ProviderKind::Zadarma => "zadarma",
            ProviderKind::Mango => "mango",
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown provider {0:?}: expected telphin, zadarma or mango")]
pub struct UnknownProvider(pub String);

impl FromStr for ProviderKind {
    type Err = UnknownProvider;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        ProviderKind::ALL
            .into_iter()
            .find(|kind| kind.as_str().eq_ignore_ascii_case(text))
            .ok_or_else(|| UnknownProvider(text.to_owned()))
    }
}

/// A Telphin account: the OAuth application leadgate uses, and how the PBX names extensions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TelphinAccount {
    pub client_id: String,
    pub client_secret: String,
    /// The customer id in `/api/ver1.0/client/{client_id}/…`; `@me` is accepted too.
    pub customer_id: u64,
    /// Extensions are written `prefix*ext@domain`.
    pub extension_prefix: String,
    pub domain: String,
    pub token_lifetime: Duration,
    /// The account's extension numbers, as its extension list shows them; the call-back takes
    /// only these.
    pub extensions: Vec<String>,
}

/// A Zadarma account. Without `api`, notifications carry no `Signature` and the API refuses every request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZadarmaAccount {
    pub api: Option<ZadarmaApiKey>,
    /// `call_start` is written as local time at this offset from UTC.
    pub utc_offset_minutes: i32,
}

impl ZadarmaAccount {
    /// `YYYY-MM-DD HH:MM:SS` at the account's offset, as `call_start` is written.
    pub(crate) fn local_time(&self, at: SystemTime) -> String {
        let utc = FixedOffset::east_opt(0).expect("a zero offset is valid");
        let offset = FixedOffset::east_opt(self.utc_offset_minutes * 60).unwrap_or(utc);
        DateTime::<Utc>::from(at).with_timezone(&offset).format("%Y-%m-%d %H:%M:%S").to_string()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZadarmaApiKey {
    pub key: String,
    pub secret: String,
}

/// A Mango Office account: the VPBX API key and salt that sign both directions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MangoAccount {
    pub api_key: String,
    pub api_salt: String,
    /// Extensions' SIP addresses are `sip:ext@domain`.
    pub sip_domain: String,
    pub product_id: u64,
}

/// A PBX with its account: what `play` renders as and what the server accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Provider {
    Telphin(TelphinAccount),
    Zadarma(ZadarmaAccount),
    Mango(MangoAccount),
}

impl Provider {
    /// The account used by the sandbox and by tests; its secrets are printed by the CLI.
    pub fn sandbox(kind: ProviderKind) -> Self {
        match kind {
            ProviderKind::Telphin => Provider::Telphin(TelphinAccount {
                client_id: "sandbox-telphin-app".to_owned(),
                client_secret: "sandbox-telphin-secret".to_owned(),
                customer_id: 37_649,
                extension_prefix: "100".to_owned(),
                domain: "sipproxy.telphin.ru".to_owned(),
                token_lifetime: Duration::from_secs(3_600),
                extensions: ["098", "099", "101", "102", "103", "104", "105"].map(str::to_owned).to_vec(),
            }),
            ProviderKind::Zadarma => Provider::Zadarma(ZadarmaAccount {
                api: Some(ZadarmaApiKey {
                    key: "sandbox-zadarma-key".to_owned(),
                    secret: "sandbox-zadarma-secret".to_owned(),
                }),
                utc_offset_minutes: 3 * 60,
            }),
            ProviderKind::Mango => Provider::Mango(MangoAccount {
                api_key: "sandbox-mango-key".to_owned(),
                api_salt: "sandbox-mango-salt".to_owned(),
                sip_domain: "sandbox.mangosip.ru".to_owned(),
                product_id: 400_000_001,
            }),
        }
    }

    pub fn kind(&self) -> ProviderKind {
        match self {
            Provider::Telphin(_) => ProviderKind::Telphin,
            Provider::Zadarma(_) => ProviderKind::Zadarma,
            Provider::Mango(_) => ProviderKind::Mango,
        }
    }

    /// `name: value` lines a person needs to point leadgate at this PBX; secrets included, on purpose.
    pub fn credential_lines(&self) -> Vec<(&'static str, String)> {
        match self {
            Provider::Telphin(account) => vec![
                ("client_id", account.client_id.clone()),
                ("client_secret", account.client_secret.clone()),
                ("customer id", account.customer_id.to_string()),
            ],
            Provider::Zadarma(ZadarmaAccount { api: Some(api), .. }) => {
                vec![("api key", api.key.clone()), ("api secret", api.secret.clone())]
            }
            Provider::Zadarma(ZadarmaAccount { api: None, .. }) => vec![("api key", "(none: unsigned)".to_owned())],
            Provider::Mango(account) => {
                vec![("vpbx_api_key", account.api_key.clone()), ("vpbx_api_salt", account.api_salt.clone())]
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_names_parse_in_any_case_and_print_lowercase() {
        assert_eq!("Mango".parse::<ProviderKind>(), Ok(ProviderKind::Mango));
        assert_eq!(ProviderKind::Zadarma.to_string(), "zadarma");
        assert!("asterisk".parse::<ProviderKind>().is_err());
    }
}
