//! A telephony source's settings: its PBX and credentials, who is who, and what unknown callers get.

use std::collections::BTreeMap;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::found::{Found, check_base_url};
use super::raw::{RawNumberRule, RawSource};
use crate::domain::{Phone, PhoneRegion, Provider, UserRef};
use crate::telephony::mango::MangoAccount;
use crate::telephony::zadarma::ZadarmaAccount;

/// `[sources.<name>]` of `kind = "telephony"`.
#[derive(Debug, Clone)]
pub struct TelephonySource {
    pub access: PbxAccess,
    /// The PBX's API, for recordings and calls started from here; `None` without its credentials.
    pub api: Option<PbxApi>,
    /// Extension → the CRM user it belongs to; calls of other extensions are not logged.
    pub users: BTreeMap<String, UserRef>,
    /// Responsible for contacts made from missed calls.
    pub missed_calls_user: Option<UserRef>,
    /// What unknown callers get, unless a rule of the number they called says otherwise.
    pub rule: CallRule,
    pub numbers: Vec<NumberRule>,
    /// A parked call attaches to a contact made up to this long after the call ended.
    pub attach_window: Duration,
    /// Telphin sends no summary: a call whose legs have all hung up is over after this long quiet.
    pub finish_after: Duration,
}

/// The PBX and what proves its events are its own.
#[derive(Debug, Clone)]
pub enum PbxAccess {
    /// Telphin signs nothing: the secret is in the URL it posts to.
    Telphin {
        key: SecretString,
    },
    Zadarma(ZadarmaAccount),
    Mango(MangoAccount),
}

impl PbxAccess {
    pub fn provider(&self) -> Provider {
        match self {
            Self::Telphin { .. } => Provider::Telphin,
            Self::Zadarma(_) => Provider::Zadarma,
            Self::Mango(_) => Provider::Mango,
        }
    }
}

/// How to reach the PBX's own API: where, and the credentials it takes.
#[derive(Debug, Clone)]
pub enum PbxApi {
    /// An OAuth application of the Telphin account (client credentials).
    Telphin { url: Url, client_id: String, client_secret: SecretString },
    /// The account's API key; requests are signed with its secret, as notifications are.
    Zadarma { url: Url, key: String, secret: SecretString },
    /// Signed with the same key and salt as the events.
    Mango { url: Url, account: MangoAccount },
}

impl PbxApi {
    /// Where each provider's API lives unless `api_url` says otherwise.
    pub fn default_url(provider: Provider) -> &'static str {
        match provider {
            Provider::Telphin => "https://apiproxy.telphin.ru",
            Provider::Zadarma => "https://api.zadarma.com",
            Provider::Mango => "https://app.mango-office.ru",
        }
    }
}

/// What a call from a number the CRM does not know makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoCreate {
    Nothing,
    Contact,
    ContactAndDeal,
}

/// The options a rule of an external number may override.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRule {
    pub incoming_unknown: AutoCreate,
    pub missed_unknown: AutoCreate,
    pub outgoing_unknown: AutoCreate,
    /// Where auto-made deals go, by name.
    pub pipeline: String,
    pub status: String,
}

/// `[[sources.<name>.numbers]]`: one of our numbers and what incoming calls to it get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberRule {
    pub number: Phone,
    pub name: String,
    pub rule: CallRule,
}

impl TelephonySource {
    /// The rule for a call: its number's, for incoming calls to a number with one, else the source's.
    /// Outgoing calls always follow the source's `outgoing_unknown`.
    pub fn rule_for(&self, incoming: bool, our_number: Option<&Phone>) -> &CallRule {
        let numbered = our_number.filter(|_| incoming).and_then(|number| {
            self.numbers.iter().find(|rule| rule.number.e164() == number.e164()).map(|rule| &rule.rule)
        });
        numbered.unwrap_or(&self.rule)
    }
}

pub(super) fn check_telephony(
    raw: &mut RawSource,
    region: Option<PhoneRegion>,
    pipeline: Option<&str>,
    status: Option<&str>,
    key: &dyn Fn(&str) -> String,
    found: &mut Found<'_>,
) -> Option<TelephonySource> {
    let access = check_access(raw, key, found);
    let api = access.as_ref().and_then(|access| check_api(raw, access, key, found));
    let mut users = BTreeMap::new();
    for (extension, user) in std::mem::take(&mut raw.users) {
        let extension = extension.trim().to_owned();
        if extension.is_empty() || !extension.chars().all(|c| c.is_ascii_digit()) {
            found.problem(key("users"), format!("«{extension}» is not an extension (its digits)"));
            continue;
        }
        match user_ref(user) {
            Some(user) => {
                users.insert(extension, user);
            }
            None => found.problem(key(&format!("users.{extension}")), "an empty user name or an id below 1"),
        }
    }
    let missed_calls_user = raw.missed_calls_user.take().and_then(|user| {
        let checked = user_ref(user);
        if checked.is_none() {
            found.problem(key("missed_calls_user"), "an empty user name or an id below 1");
        }
        checked
    });
    let mut choice = |field: &str, value: Option<&str>, default: AutoCreate, deals: bool| {
        auto_create(&key(field), value, default, deals, found)
    };
    let rule = CallRule {
        incoming_unknown: choice("incoming_unknown", raw.incoming_unknown.as_deref(), AutoCreate::Contact, true),
        missed_unknown: choice("missed_unknown", raw.missed_unknown.as_deref(), AutoCreate::Contact, false),
        outgoing_unknown: choice("outgoing_unknown", raw.outgoing_unknown.as_deref(), AutoCreate::Contact, true),
        pipeline: pipeline.unwrap_or_default().to_owned(),
        status: status.unwrap_or_default().to_owned(),
    };
    let numbers = check_numbers(std::mem::take(&mut raw.numbers), &rule, region, key, found);
    let attach_window = raw.attach_window.unwrap_or(Duration::from_secs(10 * 60));
    let finish_after = raw.finish_after.unwrap_or(Duration::from_secs(15));
    if finish_after.is_zero() || finish_after > Duration::from_secs(10 * 60) {
        found.problem(key("finish_after"), "must be between 1s and 10m");
    }
    if attach_window > Duration::from_secs(24 * 3600) {
        found.problem(key("attach_window"), "must be at most 24h");
    }
    Some(TelephonySource { access: access?, api, users, missed_calls_user, rule, numbers, attach_window, finish_after })
}

fn check_access(raw: &mut RawSource, key: &dyn Fn(&str) -> String, found: &mut Found<'_>) -> Option<PbxAccess> {
    let long_enough = |secret: Option<SecretString>, least: usize| secret.filter(|s| s.expose_secret().len() >= least);
    match raw.provider.take().as_deref() {
        Some("telphin") => {
            let secret = long_enough(raw.key.take(), 16);
            if secret.is_none() {
                found.problem(key("key"), "missing or shorter than 16 characters: it is the secret part of the URL");
            }
            Some(PbxAccess::Telphin { key: secret? })
        }
        Some("zadarma") => {
            let secret = long_enough(raw.secret.take(), 8);
            if secret.is_none() {
                found.problem(key("secret"), "missing: the API secret of the Zadarma account (Settings → API)");
            }
            let zone = raw.timezone.take().unwrap_or_else(|| "Europe/Moscow".to_owned());
            let timezone = zone.parse::<chrono_tz::Tz>().map_err(|_| {
                found.problem(key("timezone"), format!("«{zone}» is not an IANA time zone such as Europe/Moscow"))
            });
            Some(PbxAccess::Zadarma(ZadarmaAccount { secret: secret?, zone: timezone.ok()? }))
        }
        Some("mango") => {
            let (api_key, api_salt) = (long_enough(raw.api_key.take(), 8), long_enough(raw.api_salt.take(), 8));
            if api_key.is_none() {
                found.problem(key("api_key"), "missing: the unique code of the Mango Office VPBX (its API settings)");
            }
            if api_salt.is_none() {
                found.problem(key("api_salt"), "missing: the signature key of the Mango Office VPBX");
            }
            Some(PbxAccess::Mango(MangoAccount { api_key: api_key?, api_salt: api_salt? }))
        }
        Some(other) => {
            found.problem(key("provider"), format!("«{other}» is not a known PBX (known: telphin, zadarma, mango)"));
            None
        }
        None => {
            found.problem(key("provider"), "missing (known: telphin, zadarma, mango)");
            None
        }
    }
}

/// The API credentials of `access`'s provider; keys that belong to another provider are named.
fn check_api(
    raw: &mut RawSource,
    access: &PbxAccess,
    key: &dyn Fn(&str) -> String,
    found: &mut Found<'_>,
) -> Option<PbxApi> {
    let provider = access.provider();
    let foreign: &[(&str, bool)] = match provider {
        Provider::Telphin => &[
            ("secret", raw.secret.is_some()),
            ("api_key", raw.api_key.is_some()),
            ("api_salt", raw.api_salt.is_some()),
            ("timezone", raw.timezone.is_some()),
        ],
        Provider::Zadarma => &[
            ("key", raw.key.is_some()),
            ("client_id", raw.client_id.is_some()),
            ("client_secret", raw.client_secret.is_some()),
            ("api_salt", raw.api_salt.is_some()),
        ],
        Provider::Mango => &[
            ("key", raw.key.is_some()),
            ("client_id", raw.client_id.is_some()),
            ("client_secret", raw.client_secret.is_some()),
            ("secret", raw.secret.is_some()),
            ("timezone", raw.timezone.is_some()),
        ],
    };
    for (name, given) in foreign {
        if *given {
            found.problem(key(name), format!("not a setting of provider = \"{}\"", provider.as_str()));
        }
    }
    let url_key = key("api_url");
    let url_text = raw.api_url.take().unwrap_or_else(|| PbxApi::default_url(provider).to_owned());
    let url = check_base_url(Some(&url_text), &url_key, PbxApi::default_url(provider), found);
    match access {
        PbxAccess::Telphin { .. } => match (raw.client_id.take(), raw.client_secret.take()) {
            (Some(client_id), Some(client_secret)) if !client_id.trim().is_empty() => {
                Some(PbxApi::Telphin { url: url?, client_id: client_id.trim().to_owned(), client_secret })
            }
            (None, None) => None,
            _ => {
                found.problem(
                    key("client_id"),
                    "client_id and client_secret go together: the OAuth application of the Telphin account",
                );
                None
            }
        },
        PbxAccess::Zadarma(account) => {
            let api_key = raw.api_key.take()?.expose_secret().trim().to_owned();
            if api_key.is_empty() {
                found.problem(
                    key("api_key"),
                    "empty: the API key of the Zadarma account (Settings → API), or no api_key",
                );
                return None;
            }
            Some(PbxApi::Zadarma { url: url?, key: api_key, secret: account.secret.clone() })
        }
        PbxAccess::Mango(account) => Some(PbxApi::Mango { url: url?, account: account.clone() }),
    }
}

fn check_numbers(
    raw: Vec<RawNumberRule>,
    defaults: &CallRule,
    region: Option<PhoneRegion>,
    key: &dyn Fn(&str) -> String,
    found: &mut Found<'_>,
) -> Vec<NumberRule> {
    let mut numbers: Vec<NumberRule> = Vec::new();
    for (index, raw) in raw.into_iter().enumerate() {
        let key = |field: &str| key(&format!("numbers[{index}].{field}"));
        let number = match (raw.number.as_deref(), region) {
            (Some(text), Some(region)) => match Phone::parse(text, region) {
                Ok(number) => Some(number),
                Err(error) => {
                    found.problem(key("number"), error.to_string());
                    None
                }
            },
            (Some(_), None) => None,
            (None, _) => {
                found.problem(key("number"), "missing: our number the client calls");
                None
            }
        };
        if let Some(number) = &number
            && numbers.iter().any(|rule| rule.number.e164() == number.e164())
        {
            found.problem(key("number"), format!("{} already has a rule: at most one per number", number.e164()));
            continue;
        }
        let mut choice = |field: &str, value: Option<&str>, default: AutoCreate, deals: bool| {
            auto_create(&key(field), value, default, deals, found)
        };
        let rule = CallRule {
            incoming_unknown: choice(
                "incoming_unknown",
                raw.incoming_unknown.as_deref(),
                defaults.incoming_unknown,
                true,
            ),
            missed_unknown: choice("missed_unknown", raw.missed_unknown.as_deref(), defaults.missed_unknown, false),
            outgoing_unknown: defaults.outgoing_unknown,
            pipeline: raw.pipeline.unwrap_or_else(|| defaults.pipeline.clone()),
            status: raw.status.unwrap_or_else(|| defaults.status.clone()),
        };
        if let Some(number) = number {
            numbers.push(NumberRule { number, name: raw.name.unwrap_or_default(), rule });
        }
    }
    numbers
}

/// What unknown numbers get, from `value` at `key`; a value it cannot be is a problem, read as `default`.
fn auto_create(key: &str, value: Option<&str>, default: AutoCreate, deals: bool, found: &mut Found<'_>) -> AutoCreate {
    let message = match value {
        None => return default,
        Some("none") => return AutoCreate::Nothing,
        Some("contact") => return AutoCreate::Contact,
        Some("contact_and_deal") if deals => return AutoCreate::ContactAndDeal,
        Some(other) if deals => format!("«{other}» must be \"none\", \"contact\" or \"contact_and_deal\""),
        Some(other) => format!("«{other}» must be \"none\" or \"contact\""),
    };
    found.problem(key, message);
    default
}

fn user_ref(raw: UserRef) -> Option<UserRef> {
    match raw {
        UserRef::Id(id) if id > 0 => Some(UserRef::Id(id)),
        UserRef::Name(name) if !name.trim().is_empty() => Some(UserRef::Name(name.trim().to_owned())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, SourceKind};

    const DESTINATION: &str = r#"
        [destinations.main]
        kind = "amocrm"
        base_url = "https://example.amocrm.ru"
        access_token = "long-lived"
    "#;

    fn load(source: &str) -> Result<Config, Vec<String>> {
        Config::from_toml_str(&format!("{DESTINATION}{source}"))
            .map_err(|error| error.problems.into_iter().map(|problem| problem.to_string()).collect())
    }

    #[test]
    fn the_issue_s_example_reads_as_written() {
        let config = load(
            r#"
            [sources.pbx]
            kind = "telephony"
            provider = "telphin"
            key = "0123456789abcdef0123"
            destination = "main"
            users = { "101" = "Анна Смирнова", "102" = "Анна Смирнова", "103" = 5000003 }
            missed_calls_user = "Борис Петров"
            incoming_unknown = "contact_and_deal"
            missed_unknown = "contact"
            outgoing_unknown = "contact"
            pipeline = "Воронка"
            status = "Первичный контакт"
            attach_window = "10m"
            finish_after = "15s"

            [[sources.pbx.numbers]]
            number = "+7 495 123-45-67"
            name = "Реклама на Яндексе"
            incoming_unknown = "contact_and_deal"
            missed_unknown = "none"
            pipeline = "Реклама"
            status = "Новая заявка"
            "#,
        )
        .unwrap();
        let SourceKind::Telephony(pbx) = &config.sources[&crate::domain::SourceId("pbx".into())].kind else {
            panic!("not a telephony source");
        };
        assert_eq!(pbx.users["103"], UserRef::Id(5_000_003));
        assert_eq!(pbx.users["101"], UserRef::Name("Анна Смирнова".into()));
        assert_eq!(pbx.finish_after, Duration::from_secs(15));
        let ours = Phone::parse("+74951234567", PhoneRegion::RUSSIA).unwrap();
        let rule = pbx.rule_for(true, Some(&ours));
        assert_eq!((rule.missed_unknown, rule.pipeline.as_str()), (AutoCreate::Nothing, "Реклама"));
        assert_eq!(pbx.rule_for(false, Some(&ours)).pipeline, "Воронка", "outgoing calls follow the source");
    }

    #[test]
    fn a_repeated_number_a_wrong_option_and_a_missing_secret_are_named() {
        let problems = load(
            r#"
            [sources.pbx]
            kind = "telephony"
            provider = "zadarma"
            destination = "main"
            pipeline = "Воронка"
            status = "Первичный контакт"
            missed_unknown = "contact_and_deal"
            [[sources.pbx.numbers]]
            number = "+7 495 123-45-67"
            [[sources.pbx.numbers]]
            number = "8 495 123 45 67"
            "#,
        )
        .unwrap_err();
        for expected in [
            "sources.pbx.secret: missing",
            "sources.pbx.missed_unknown: «contact_and_deal» must be \"none\" or \"contact\"",
            "sources.pbx.numbers[1].number: +74951234567 already has a rule",
        ] {
            assert!(problems.iter().any(|problem| problem.starts_with(expected)), "{expected} in {problems:?}");
        }
    }

    #[test]
    fn api_credentials_are_read_per_provider_and_another_provider_s_keys_are_named() {
        let telphin = load(
            r#"
            [sources.pbx]
            kind = "telephony"
            provider = "telphin"
            key = "0123456789abcdef0123"
            client_id = "app"
            client_secret = "app-secret"
            destination = "main"
            pipeline = "Воронка"
            status = "Первичный контакт"
            "#,
        )
        .unwrap();
        let SourceKind::Telephony(pbx) = &telphin.sources[&crate::domain::SourceId("pbx".into())].kind else {
            panic!("not a telephony source");
        };
        let Some(PbxApi::Telphin { url, client_id, .. }) = &pbx.api else { panic!("no API: {:?}", pbx.api) };
        assert_eq!((url.as_str(), client_id.as_str()), ("https://apiproxy.telphin.ru/", "app"));

        let problems = load(
            r#"
            [sources.pbx]
            kind = "telephony"
            provider = "telphin"
            key = "0123456789abcdef0123"
            client_id = "app"
            api_salt = "belongs-to-mango"
            api_url = "not a url"
            destination = "main"
            pipeline = "Воронка"
            status = "Первичный контакт"
            "#,
        )
        .unwrap_err();
        for expected in [
            "sources.pbx.client_id: client_id and client_secret go together",
            "sources.pbx.api_salt: not a setting of provider = \"telphin\"",
            "sources.pbx.api_url: «not a url» is not an http(s) URL",
        ] {
            assert!(problems.iter().any(|problem| problem.starts_with(expected)), "{expected} in {problems:?}");
        }
    }

    #[test]
    fn telephony_keys_on_another_kind_are_named() {
        let problems = load(
            r#"
            [sources.site]
            kind = "proxy"
            key = "0123456789abcdef0123"
            destination = "main"
            pipeline = "Воронка"
            status = "Первичный контакт"
            finish_after = "15s"
            "#,
        )
        .unwrap_err();
        assert!(
            problems
                .iter()
                .any(|problem| problem
                    .starts_with("sources.site.finish_after: only for sources of kind = \"telephony\"")),
            "{problems:?}"
        );
    }
}
