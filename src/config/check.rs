//! Checking the written configuration into typed settings, collecting every problem by its key.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::found::{Found, check_base_url};
use super::raw::{
    RawConsole, RawDestination, RawEmailTemplates, RawFeedback, RawRetry, RawSettings, RawSmtp, RawSource,
};
use super::*;
use crate::domain::{Email, PhoneRegion, SourceId};
use crate::notify::templates::EmailTemplates;

/// `127.0.0.1:8080`, `[::1]:8080`, or a host name and port such as `localhost:8080`, resolved
/// now (to its first address) since the listener binds one address.
pub(crate) fn listen_address(written: &str) -> Result<SocketAddr, Problem> {
    if let Ok(address) = written.parse::<SocketAddr>() {
        return Ok(address);
    }
    let unusable = || {
        Problem::new("server.listen", format!("«{written}» is not an address such as 127.0.0.1:8080 or localhost:8080"))
    };
    let (host, port) = written.rsplit_once(':').ok_or_else(unusable)?;
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(unusable());
    }
    std::net::ToSocketAddrs::to_socket_addrs(written)
        .ok()
        .and_then(|mut addresses| addresses.next())
        .ok_or_else(|| Problem::new("server.listen", format!("«{host}» in «{written}» does not resolve to an address")))
}

pub(super) fn check(raw: RawSettings, problems: &mut Vec<Problem>) -> Option<Config> {
    let mut found = Found(problems);
    let listen = found.keep(listen_address(&raw.server.listen));
    let trusted_proxies: Vec<ipnet::IpNet> = raw
        .server
        .trusted_proxies
        .iter()
        .filter_map(|entry| {
            let parsed =
                entry.parse::<ipnet::IpNet>().or_else(|_| entry.parse::<std::net::IpAddr>().map(ipnet::IpNet::from));
            found.keep(parsed.map_err(|_| {
                Problem::new(
                    "server.trusted_proxies",
                    format!("«{entry}» is neither an address nor a network such as 10.0.0.0/8"),
                )
            }))
        })
        .collect();
    let durability = found.keep(match raw.store.synchronous.as_str() {
        "normal" => Ok(Durability::ProcessCrash),
        "full" => Ok(Durability::PowerLoss),
        other => Err(Problem::new("store.synchronous", format!("«{other}» must be \"normal\" or \"full\""))),
    });
    let store_url = found.keep(
        if ["sqlite:", "postgres://", "postgresql://"].iter().any(|scheme| raw.store.url.starts_with(scheme)) {
            Ok(raw.store.url.clone())
        } else {
            Err(Problem::new("store.url", format!("«{}» is neither a sqlite:// nor a postgres:// URL", raw.store.url)))
        },
    );
    // A PostgreSQL node keeps one connection listening for new leads and needs others to claim
    // and to renew leases while it delivers.
    if raw.store.max_connections < 3 {
        found.problem("store.max_connections", "must be at least 3");
    }
    let phone_region = found.keep(
        raw.phone
            .default_region
            .parse::<PhoneRegion>()
            .map_err(|message| Problem::new("phone.default_region", message)),
    );
    let worker = &raw.worker;
    if worker.batch_size == 0 {
        found.problem("worker.batch_size", "must be at least 1");
    }
    for (key, value) in [
        ("worker.interval", worker.interval),
        ("worker.lease", worker.lease),
        ("worker.retry_initial", worker.retry_initial),
        ("feedback.timeout", raw.feedback.timeout),
        ("feedback.retry_initial", raw.feedback.retry_initial),
    ] {
        if value.is_zero() {
            found.problem(key, "must be longer than zero");
        }
    }
    let feedback = check_feedback(&raw.feedback);
    let smtp = raw.smtp.and_then(|smtp| check_smtp(smtp, &mut found));
    let (admin_token, metrics_token) = raw.admin.map_or((None, None), |admin| (admin.token, admin.metrics_token));
    for (key, token) in [("admin.token", &admin_token), ("admin.metrics_token", &metrics_token)] {
        if token.as_ref().is_some_and(|token| token.expose_secret().len() < 16) {
            found.problem(key, "shorter than 16 characters");
        }
    }
    let console = check_console(&raw.console, &mut found);
    // Zero would remove every settled lead the moment it settles: surely a typo for a real age.
    for (key, age) in [
        ("retention.leads", raw.retention.leads),
        ("retention.history", raw.retention.history),
        ("retention.files", raw.retention.files),
    ] {
        if age.is_some_and(|age| age.is_zero()) {
            found.problem(key, "must be longer than zero; leave the key out to keep forever");
        }
    }
    let alerts = raw.alerts.and_then(|alerts| {
        super::alerts::check_alerts(alerts, smtp.is_some(), raw.security.allow_private_callbacks, &mut found)
    });
    let destination_kinds: BTreeMap<String, Option<String>> =
        raw.destinations.iter().map(|(name, destination)| (name.clone(), destination.kind.clone())).collect();
    let destinations: BTreeMap<_, _> = raw
        .destinations
        .into_iter()
        .filter_map(|(name, destination)| {
            check_destination(&name, destination, &mut found).map(|checked| (name, checked))
        })
        .collect();
    let sources = raw
        .sources
        .into_iter()
        .filter_map(|(name, source)| {
            check_source(&name, source, &destinations, &destination_kinds, smtp.is_some(), phone_region, &mut found)
        })
        .map(|source| (source.id.clone(), source))
        .collect();
    let log_format = match raw.log.format.as_str() {
        "text" => Some(LogFormat::Text),
        "json" => Some(LogFormat::Json),
        other => {
            found.problem("log.format", format!("«{other}» must be \"text\" or \"json\""));
            None
        }
    };
    let public_url = match raw.server.public_url.as_deref().map(Url::parse) {
        Some(Ok(url)) if matches!(url.scheme(), "http" | "https") => Some(url),
        Some(_) => {
            found.problem("server.public_url", "not an http(s) URL such as https://leads.example.com");
            None
        }
        None => None,
    };
    Some(Config {
        listen: listen?,
        log_format: log_format?,
        public_url,
        trusted_proxies,
        store: StoreConfig { url: store_url?, durability: durability?, max_connections: raw.store.max_connections },
        worker: WorkerConfig {
            interval: worker.interval,
            batch_size: worker.batch_size as usize,
            lease: worker.lease,
            retry_initial: worker.retry_initial,
            retry_max: worker.retry_max.max(worker.retry_initial),
            blocked_pause: worker.blocked_pause,
        },
        phone_region: phone_region?,
        security: SecurityConfig {
            allow_private_callbacks: raw.security.allow_private_callbacks,
            callback_allow_hosts: raw
                .security
                .callback_allow_hosts
                .iter()
                .map(|host| host.to_ascii_lowercase())
                .collect(),
        },
        feedback,
        smtp,
        admin_token,
        metrics_token,
        console: console?,
        alerts,
        files_dir: raw.files.dir.into(),
        retention: Retention { leads: raw.retention.leads, history: raw.retention.history, files: raw.retention.files },
        destinations,
        sources,
    })
}

fn check_console(raw: &RawConsole, found: &mut Found<'_>) -> Option<ConsoleConfig> {
    let language = match raw.language.as_str() {
        "ru" => Some(ConsoleLanguage::Russian),
        "en" => Some(ConsoleLanguage::English),
        other => {
            found.problem("console.language", format!("«{other}» must be \"ru\" or \"en\""));
            None
        }
    };
    for (key, value) in [
        ("console.session_lifetime", raw.session_lifetime),
        ("console.lockout_window", raw.lockout_window),
        ("console.stalled_after", raw.stalled_after),
    ] {
        if value.is_zero() {
            found.problem(key, "must be longer than zero");
        }
    }
    for (key, value) in [
        ("console.max_failures_per_user", raw.max_failures_per_user),
        ("console.max_failures_per_address", raw.max_failures_per_address),
    ] {
        if value == 0 {
            found.problem(key, "must be at least 1");
        }
    }
    let mut extensions = BTreeMap::new();
    for (user, extension) in &raw.extensions {
        let extension = extension.trim();
        if extension.is_empty() || !extension.bytes().all(|byte| byte.is_ascii_digit()) {
            found.problem(
                format!("console.extensions.{user}"),
                format!("«{extension}» is not an extension (its digits)"),
            );
        } else {
            extensions.insert(user.clone(), extension.to_owned());
        }
    }
    Some(ConsoleConfig {
        extensions,
        language: language?,
        session_lifetime: raw.session_lifetime,
        lockout_window: raw.lockout_window,
        max_failures_per_user: raw.max_failures_per_user,
        max_failures_per_address: raw.max_failures_per_address,
        stalled_after: raw.stalled_after,
    })
}

fn check_feedback(raw: &RawFeedback) -> FeedbackConfig {
    FeedbackConfig {
        timeout: raw.timeout,
        retry_initial: raw.retry_initial,
        retry_max: raw.retry_max.max(raw.retry_initial),
        max_age: raw.max_age,
    }
}

fn check_smtp(raw: RawSmtp, found: &mut Found<'_>) -> Option<SmtpConfig> {
    let url = match raw.url.as_deref().map(Url::parse) {
        Some(Ok(url)) if matches!(url.scheme(), "smtp" | "smtps" | "smtp+starttls") && url.host().is_some() => {
            Some(url)
        }
        Some(_) => {
            let value = raw.url.unwrap_or_default();
            found.problem(
                "smtp.url",
                format!("«{value}» is not smtp://host:port, smtp+starttls://host:port or smtps://host:port"),
            );
            None
        }
        None => {
            found.problem("smtp.url", "missing");
            None
        }
    };
    let from = match raw.from.as_deref().map(Email::parse) {
        Some(Ok(address)) => Some(address.as_str().to_owned()),
        Some(Err(error)) => {
            found.problem("smtp.from", error.to_string());
            None
        }
        None => {
            found.problem("smtp.from", "missing: the sender address of notifications");
            None
        }
    };
    Some(SmtpConfig {
        url: url?,
        from: from?,
        username: raw.username,
        password: raw.password,
        timeout: raw.timeout.unwrap_or(Duration::from_secs(30)),
    })
}

fn check_destination(name: &str, raw: RawDestination, found: &mut Found<'_>) -> Option<DestinationConfig> {
    let key = |field: &str| format!("destinations.{name}.{field}");
    let kind = raw.kind.clone();
    match kind.as_deref() {
        Some("amocrm") => {
            reject_keys_of_other_kinds(&raw, "amocrm", &key, found);
            check_amocrm(name, raw, found).map(DestinationConfig::AmoCrm)
        }
        Some("session_crm") => {
            reject_keys_of_other_kinds(&raw, "session_crm", &key, found);
            super::session_crm::check_session_crm(name, raw, found).map(DestinationConfig::SessionCrm)
        }
        Some(other) => {
            found.problem(key("kind"), format!("«{other}» is not a known kind (known: amocrm, session_crm)"));
            None
        }
        None => {
            found.problem(key("kind"), "missing (known: amocrm, session_crm)");
            None
        }
    }
}

/// A key of the other kind of destination would be silently ignored; it is named instead.
fn reject_keys_of_other_kinds(raw: &RawDestination, kind: &str, key: &dyn Fn(&str) -> String, found: &mut Found<'_>) {
    let amocrm_keys = [
        ("access_token", raw.access_token.is_some()),
        ("client_id", raw.client_id.is_some()),
        ("client_secret", raw.client_secret.is_some()),
        ("redirect_uri", raw.redirect_uri.is_some()),
        ("refresh_token", raw.refresh_token.is_some()),
    ];
    let session_crm_keys = [
        ("username", raw.username.is_some()),
        ("password", raw.password.is_some()),
        ("card_url", raw.card_url.is_some()),
        ("session", raw.session.is_some()),
        ("api", raw.api.is_some()),
    ];
    for (owner, keys) in [("amocrm", &amocrm_keys[..]), ("session_crm", &session_crm_keys[..])] {
        if kind == owner {
            continue;
        }
        for (name, given) in keys {
            if *given {
                found.problem(key(name), format!("only for destinations of kind = \"{owner}\""));
            }
        }
    }
}

/// The account's address: an http(s) URL with a host.
fn check_amocrm(name: &str, raw: RawDestination, found: &mut Found<'_>) -> Option<AmoCrmConfig> {
    let key = |field: &str| format!("destinations.{name}.{field}");
    let base_url = check_base_url(raw.base_url.as_deref(), &key("base_url"), "https://example.amocrm.ru", found);
    let auth =
        check_amocrm_auth(raw.access_token, raw.client_id, raw.client_secret, raw.redirect_uri, raw.refresh_token)
            .map_err(|(field, message)| found.problem(key(field), message))
            .ok();
    let requests_per_second = raw.requests_per_second.unwrap_or(7);
    if requests_per_second == 0 {
        found.problem(key("requests_per_second"), "must be at least 1");
    }
    Some(AmoCrmConfig {
        name: name.to_owned(),
        base_url: base_url?,
        auth: auth?,
        requests_per_second,
        timeout: raw.timeout.unwrap_or(Duration::from_secs(30)),
    })
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
        return access_token.map(AmoCrmAuth::LongLivedToken).ok_or((
            "access_token",
            "missing: a long-lived token, or OAuth2 client_id, client_secret, redirect_uri and refresh_token"
                .to_owned(),
        ));
    }
    let missing = |field: &'static str| {
        (field, "missing: OAuth2 needs client_id, client_secret, redirect_uri and refresh_token".to_owned())
    };
    let redirect_text = redirect_uri.ok_or_else(|| missing("redirect_uri"))?;
    let redirect_uri =
        Url::parse(&redirect_text).map_err(|_| ("redirect_uri", format!("«{redirect_text}» is not a URL")))?;
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
    mut raw: RawSource,
    destinations: &BTreeMap<String, DestinationConfig>,
    destination_kinds: &BTreeMap<String, Option<String>>,
    smtp_configured: bool,
    phone_region: Option<PhoneRegion>,
    found: &mut Found<'_>,
) -> Option<SourceConfig> {
    let key = |field: &str| format!("sources.{name}.{field}");
    let before = found.0.len();
    let required = |field: &str, value: Option<String>, found: &mut Found<'_>| match value
        .filter(|value| !value.trim().is_empty())
    {
        Some(value) => Some(value),
        None => {
            found.problem(key(field), "missing");
            None
        }
    };
    let destination = required("destination", raw.destination.take(), found);
    let to_session_crm = destination
        .as_deref()
        .and_then(|destination| destination_kinds.get(destination))
        .is_some_and(|kind| kind.as_deref() == Some("session_crm"));
    // A ticket has a service and a subject where an amoCRM deal has a pipeline and a stage.
    let (misplaced, owner) = if to_session_crm {
        ([("pipeline", raw.pipeline.is_some()), ("status", raw.status.is_some())], "amocrm")
    } else {
        ([("service", raw.service.is_some()), ("subject", raw.subject.is_some())], "session_crm")
    };
    for (field, given) in misplaced {
        if given {
            found.problem(key(field), format!("only for {owner} destinations"));
        }
    }
    let (pipeline, status, service, subject) = if to_session_crm {
        let service = required("service", raw.service.take(), found);
        let subject = required("subject", raw.subject.take(), found);
        (Some(String::new()), Some(String::new()), service, subject)
    } else {
        let pipeline = required("pipeline", raw.pipeline.take(), found);
        let status = required("status", raw.status.take(), found);
        (pipeline, status, None, None)
    };
    reject_keys_of_other_kinds_of_source(&raw, &key, found);
    let wait_for_crm = super::wait::check_wait_for_crm(&mut raw, smtp_configured, &key, found);
    let kind = match raw.kind.take().as_deref() {
        Some("partner") => source_keys(&mut raw, &key, found).map(|keys| SourceKind::Partner { keys }),
        Some("zap") => check_zap(raw.username.take(), raw.secret_key.take(), raw.timezone.as_deref(), &key, found),
        Some("proxy") => {
            let source_key = source_keys(&mut raw, &key, found);
            let sync_timeout = raw.sync_timeout.unwrap_or(Duration::from_secs(30));
            if sync_timeout.is_zero() || sync_timeout > Duration::from_secs(120) {
                found.problem(key("sync_timeout"), "must be between 1s and 120s: a site's request waits that long");
            }
            source_key.map(|keys| {
                SourceKind::Proxy(ProxySource {
                    keys,
                    duplicate_window: raw.duplicate_window.unwrap_or(Duration::from_secs(24 * 3600)),
                    sync_timeout,
                    wait_for_crm,
                })
            })
        }
        Some("form") => super::form::check_form(&mut raw, wait_for_crm, &key, found).map(SourceKind::Form),
        Some("telephony") => super::telephony::check_telephony(
            &mut raw,
            phone_region,
            pipeline.as_deref(),
            status.as_deref(),
            &key,
            found,
        )
        .map(|telephony| SourceKind::Telephony(Box::new(telephony))),
        Some(other) => {
            found.problem(
                key("kind"),
                format!("«{other}» is not a known kind (known: partner, zap, proxy, form, telephony)"),
            );
            None
        }
        None => {
            found.problem(key("kind"), "missing (known: partner, zap, proxy, form, telephony)");
            None
        }
    };
    // A destination that is written but broken has its own problems named; its sources say nothing more.
    if let Some(destination) = &destination
        && !destinations.contains_key(destination)
        && !destination_kinds.contains_key(destination)
    {
        found.problem(key("destination"), format!("«{destination}» is not a [destinations.*] entry"));
    }
    let default_retry =
        if matches!(kind, Some(SourceKind::Proxy(_))) { RetryPolicy::PROXY } else { RetryPolicy::default() };
    let retry =
        raw.retry.map_or(Ok(default_retry), check_retry).map_err(|message| found.problem(key("retry"), message));
    let mut notify = Vec::new();
    for address in &raw.notify {
        match Email::parse(address) {
            Ok(email) => notify.push(email),
            Err(error) => found.problem(key("notify"), error.to_string()),
        }
    }
    if !notify.is_empty() && !smtp_configured {
        found.problem(key("notify"), "e-mail notifications need an [smtp] section");
    }
    let messages = raw.messages.map_or_else(CallbackMessages::default, |messages| {
        let defaults = CallbackMessages::default();
        CallbackMessages {
            unique: messages.unique.unwrap_or(defaults.unique),
            not_unique: messages.not_unique.unwrap_or(defaults.not_unique),
        }
    });
    let email = raw.email.map_or_else(EmailTemplates::default, email_templates);
    if let Err(error) = email.check() {
        found.problem(key("email"), error.to_string());
    }
    let callback_secrets = match (raw.callback_secret.take(), raw.callback_secrets.take()) {
        (Some(_), Some(_)) => {
            found.problem(key("callback_secrets"), "give either callback_secret or callback_secrets, not both");
            Vec::new()
        }
        (Some(secret), None) => vec![secret],
        (None, Some(secrets)) if secrets.is_empty() => {
            found.problem(key("callback_secrets"), "is empty: leave it out to send callbacks unsigned");
            Vec::new()
        }
        (None, secrets) => secrets.unwrap_or_default(),
    };
    let requests_per_minute = raw.requests_per_minute.and_then(|limit| {
        let limit = std::num::NonZeroU32::new(limit);
        if limit.is_none() {
            found.problem(key("requests_per_minute"), "must be at least 1 (leave it out for no limit)");
        }
        limit
    });
    if found.0.len() > before {
        return None;
    }
    Some(SourceConfig {
        id: SourceId(name.to_owned()),
        kind: kind?,
        route: Route {
            destination: destination?,
            pipeline: pipeline?,
            status: status?,
            deal_fields: raw.deal_fields,
            service,
            subject,
        },
        retry: retry.ok()?,
        feedback: SourceFeedback { callback_secrets, notify, messages, email },
        requests_per_minute,
    })
}

/// `key = "…"`, or `keys = ["new", "old"]` during a change of key: each at least 16 characters.
fn source_keys(raw: &mut RawSource, key: &dyn Fn(&str) -> String, found: &mut Found<'_>) -> Option<Keys> {
    let long_enough = |secret: &SecretString| secret.expose_secret().len() >= 16;
    match (raw.key.take(), raw.keys.take()) {
        (Some(_), Some(_)) => {
            found.problem(key("keys"), "give either key or keys, not both");
            None
        }
        (Some(single), None) if long_enough(&single) => Some(Keys::from(single)),
        (None, Some(several)) if !several.is_empty() && several.iter().all(long_enough) => {
            let distinct: std::collections::BTreeSet<&str> = several.iter().map(|key| key.expose_secret()).collect();
            if distinct.len() < several.len() {
                found.problem(key("keys"), "lists the same key twice");
            }
            Some(Keys(several))
        }
        (None, Some(several)) if !several.is_empty() => {
            found.problem(key("keys"), "each key must be at least 16 characters");
            None
        }
        _ => {
            found.problem(key("key"), "missing or shorter than 16 characters");
            None
        }
    }
}

/// A key that belongs to another kind of source would be silently ignored; it is named instead.
fn reject_keys_of_other_kinds_of_source(raw: &RawSource, key: &dyn Fn(&str) -> String, found: &mut Found<'_>) {
    let kind = raw.kind.as_deref().unwrap_or_default();
    let form_keys = [
        ("heading", raw.heading.is_some()),
        ("fields", !raw.fields.is_empty()),
        ("static", !raw.statics.is_empty()),
        ("required", raw.required.is_some()),
        ("labels", !raw.labels.is_empty()),
        ("require_file", raw.require_file.is_some()),
        ("max_files", raw.max_files.is_some()),
        ("max_file_mb", raw.max_file_mb.is_some()),
        ("send_to_crm", raw.send_to_crm.is_some()),
        ("allowed_sites", !raw.allowed_sites.is_empty()),
        ("honeypot", raw.honeypot.is_some()),
        ("per_ip_per_minute", raw.per_ip_per_minute.is_some()),
        ("success_message", raw.success_message.is_some()),
        ("consent", raw.consent.is_some()),
    ];
    let proxy_keys =
        [("duplicate_window", raw.duplicate_window.is_some()), ("sync_timeout", raw.sync_timeout.is_some())];
    let zap_keys = [("username", raw.username.is_some()), ("secret_key", raw.secret_key.is_some())];
    let telephony_keys = [
        ("provider", raw.provider.is_some()),
        ("secret", raw.secret.is_some()),
        ("api_key", raw.api_key.is_some()),
        ("api_salt", raw.api_salt.is_some()),
        ("api_url", raw.api_url.is_some()),
        ("client_id", raw.client_id.is_some()),
        ("client_secret", raw.client_secret.is_some()),
        ("users", !raw.users.is_empty()),
        ("missed_calls_user", raw.missed_calls_user.is_some()),
        ("incoming_unknown", raw.incoming_unknown.is_some()),
        ("missed_unknown", raw.missed_unknown.is_some()),
        ("outgoing_unknown", raw.outgoing_unknown.is_some()),
        ("attach_window", raw.attach_window.is_some()),
        ("finish_after", raw.finish_after.is_some()),
        ("numbers", !raw.numbers.is_empty()),
    ];
    if raw.timezone.is_some() && kind != "zap" && kind != "telephony" {
        found.problem(key("timezone"), "only for sources of kind = \"zap\" or \"telephony\"");
    }
    for (owner, keys) in [
        ("form", &form_keys[..]),
        ("proxy", &proxy_keys[..]),
        ("zap", &zap_keys[..]),
        ("telephony", &telephony_keys[..]),
    ] {
        if kind == owner {
            continue;
        }
        for (name, given) in keys {
            if *given {
                found.problem(key(name), format!("only for sources of kind = \"{owner}\""));
            }
        }
    }
    let visitor_keys =
        [("wait_for_crm", raw.wait_for_crm.is_some()), ("registered_message", raw.registered_message.is_some())];
    for (name, given) in visitor_keys {
        if given && kind != "form" && kind != "proxy" {
            found.problem(key(name), "only for sources of kind = \"form\" or \"proxy\"");
        }
    }
}

fn check_zap(
    username: Option<String>,
    secret_key: Option<SecretString>,
    timezone: Option<&str>,
    key: &dyn Fn(&str) -> String,
    found: &mut Found<'_>,
) -> Option<SourceKind> {
    let username = username.filter(|name| !name.is_empty()).unwrap_or_else(|| "vivareal".to_owned());
    let secret_key = secret_key.filter(|secret| secret.expose_secret().len() >= 8);
    if secret_key.is_none() {
        found.problem(key("secret_key"), "missing or shorter than 8 characters: the password the portal sends");
    }
    let timezone = timezone.unwrap_or("America/Sao_Paulo");
    let timezone = timezone.parse::<chrono_tz::Tz>().map_err(|_| {
        found.problem(key("timezone"), format!("«{timezone}» is not an IANA time zone such as America/Sao_Paulo"))
    });
    Some(SourceKind::Zap(ZapSource { username, secret_key: secret_key?, timezone: timezone.ok()? }))
}

fn check_retry(raw: RawRetry) -> Result<RetryPolicy, String> {
    let schedule = match (raw.backoff.as_deref(), raw.every) {
        (Some("exponential") | None, None) => RetrySchedule::Exponential,
        (None, Some(every)) if !every.is_zero() => RetrySchedule::Every(every),
        (None, Some(_)) => return Err("`every` must be longer than zero".to_owned()),
        (Some(other), None) => return Err(format!("backoff «{other}» is not known (known: exponential)")),
        (Some(_), Some(_)) => return Err("give either `backoff` or `every`, not both".to_owned()),
    };
    Ok(RetryPolicy { schedule, max_age: raw.max_age.unwrap_or(RetryPolicy::default().max_age) })
}

fn email_templates(raw: RawEmailTemplates) -> EmailTemplates {
    let defaults = EmailTemplates::default();
    EmailTemplates {
        new_client_subject: raw.new_client_subject.unwrap_or(defaults.new_client_subject),
        new_client_body: raw.new_client_body.unwrap_or(defaults.new_client_body),
        known_client_subject: raw.known_client_subject.unwrap_or(defaults.known_client_subject),
        known_client_body: raw.known_client_body.unwrap_or(defaults.known_client_body),
    }
}
