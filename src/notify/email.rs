//! Report by e-mail, the sending: one SMTP transport, built once, that tells a retry from a dead end.

use std::fmt;
use std::time::Duration;

use lettre::address::AddressError;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::AsyncSmtpTransportBuilder;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};
use url::{Host, Url};

/// Where and as whom outcome e-mails are sent.
///
/// `url` is `smtp://host[:25]` (plain, never upgraded), `smtp+starttls://host[:587]` (STARTTLS
/// required) or `smtps://host[:465]` (TLS from the first byte). Credentials come from
/// `username`/`password`, else from the URL's user info. `timeout` bounds one whole send,
/// from connecting to the server's last reply.
#[derive(Clone)]
pub struct SmtpConfig {
    pub url: Url,
    pub from: String,
    pub username: Option<String>,
    pub password: Option<SecretString>,
    pub timeout: Duration,
}

// By hand, because a password may sit in the URL's user info and `Url`'s own `Debug` prints it.
impl fmt::Debug for SmtpConfig {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("SmtpConfig")
            .field("url", &redacted(&self.url))
            .field("from", &self.from)
            .field("username", &self.username)
            .field("password", &self.password)
            .field("timeout", &self.timeout)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    #[error("«{address}» is not a valid e-mail address")]
    InvalidAddress {
        address: String,
        #[source]
        source: AddressError,
    },
    #[error("the SMTP URL {url} is not usable: {reason}")]
    InvalidUrl { url: String, reason: &'static str },
    #[error("TLS could not be set up for the SMTP host {host}")]
    Tls {
        host: String,
        #[source]
        source: lettre::transport::smtp::Error,
    },
    #[error("an e-mail needs at least one recipient")]
    NoRecipients,
    #[error("the SMTP server did not answer as one")]
    Unreachable,
    #[error("the e-mail could not be assembled")]
    Message(#[source] lettre::error::Error),
    #[error("the SMTP server did not finish taking the e-mail within {}ms", after.as_millis())]
    TimedOut {
        after: Duration,
        #[source]
        source: tokio::time::error::Elapsed,
    },
    /// The server refused the message, or could not be reached or understood.
    #[error("the SMTP server did not take the e-mail: {message}")]
    Transport {
        message: String,
        permanent: bool,
        #[source]
        source: lettre::transport::smtp::Error,
    },
}

impl EmailError {
    /// False when the same message may go through later (a 4xx reply, a timeout, a refused
    /// connection); true when sending it again unchanged will fail again.
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::Transport { permanent, .. } => *permanent,
            Self::TimedOut { .. } | Self::Unreachable => false,
            Self::InvalidAddress { .. }
            | Self::InvalidUrl { .. }
            | Self::Tls { .. }
            | Self::NoRecipients
            | Self::Message(_) => true,
        }
    }

    fn from_transport(source: lettre::transport::smtp::Error) -> Self {
        // A 5xx reply is final by SMTP's own rules; a client error means lettre will not send
        // this message to this server at all (no STARTTLS offered, no AUTH mechanism in common).
        let permanent = source.is_permanent() || source.is_client();
        Self::Transport { message: source.to_string(), permanent, source }
    }
}

/// Sends plain-text UTF-8 e-mails through one SMTP server.
#[derive(Debug, Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    timeout: Duration,
}

impl Mailer {
    /// Checks the sender address and the URL, and builds the transport (TLS setup included).
    /// Nothing is sent: a server that is down now is not a configuration error.
    ///
    /// # Errors
    /// An invalid `from`, an unknown scheme, a URL without a host, or TLS that cannot be set up.
    pub fn new(config: &SmtpConfig) -> Result<Self, EmailError> {
        let from = parse_mailbox(&config.from)?;
        let mut builder = transport_builder(&config.url)?.timeout(Some(config.timeout));
        if let Some(credentials) = credentials(config) {
            builder = builder.credentials(credentials);
        }
        Ok(Self { transport: builder.build(), from, timeout: config.timeout })
    }

    /// Sends one message, with every recipient in `To`, over a fresh connection.
    ///
    /// # Errors
    /// An [`EmailError`]; [`EmailError::is_permanent`] says whether retrying can help.
    #[tracing::instrument(skip_all, fields(recipients = to.len()))]
    pub async fn send(&self, to: &[String], subject: &str, body: &str) -> Result<(), EmailError> {
        if to.is_empty() {
            return Err(EmailError::NoRecipients);
        }
        let mut message = Message::builder().from(self.from.clone()).subject(subject).header(ContentType::TEXT_PLAIN);
        for recipient in to {
            message = message.to(parse_mailbox(recipient)?);
        }
        // lettre picks quoted-printable or base64 for non-ASCII text and RFC 2047 words for the
        // subject, so the message is 7-bit clean and needs no 8BITMIME from the server.
        let message = message.body(body.to_owned()).map_err(EmailError::Message)?;
        // lettre's own timeout covers only connecting: a server that accepts and then stalls
        // would hold this lead's report forever.
        tokio::time::timeout(self.timeout, self.transport.send(message))
            .await
            .map_err(|source| EmailError::TimedOut { after: self.timeout, source })?
            .map_err(EmailError::from_transport)?;
        Ok(())
    }
}

impl Mailer {
    /// Connects to the server and greets it (TLS and login included), sending nothing: for
    /// `config check`, so a wrong host, port or password shows before the first lead's e-mail.
    ///
    /// # Errors
    /// The server cannot be reached, refuses the greeting or the login, or does not answer in time.
    pub async fn check_reachable(&self) -> Result<(), EmailError> {
        let connected = tokio::time::timeout(self.timeout, self.transport.test_connection())
            .await
            .map_err(|source| EmailError::TimedOut { after: self.timeout, source })?
            .map_err(EmailError::from_transport)?;
        if connected { Ok(()) } else { Err(EmailError::Unreachable) }
    }
}

/// Checks an address the way [`Mailer::send`] will, for configuration checks.
///
/// # Errors
/// [`EmailError::InvalidAddress`] naming the address.
pub fn check_address(address: &str) -> Result<(), EmailError> {
    parse_mailbox(address).map(drop)
}

fn parse_mailbox(address: &str) -> Result<Mailbox, EmailError> {
    address.trim().parse().map_err(|source| EmailError::InvalidAddress { address: address.to_owned(), source })
}

fn transport_builder(url: &Url) -> Result<AsyncSmtpTransportBuilder, EmailError> {
    let invalid = |reason| EmailError::InvalidUrl { url: redacted(url), reason };
    // `host_str` keeps an IPv6 address's brackets, which name resolution does not accept.
    let host = match url.host() {
        Some(Host::Domain(domain)) => domain.to_owned(),
        Some(Host::Ipv4(address)) => address.to_string(),
        Some(Host::Ipv6(address)) => address.to_string(),
        None => return Err(invalid("it has no host")),
    };
    let tls_failed = |source| EmailError::Tls { host: host.clone(), source };
    let (builder, default_port) = match url.scheme() {
        "smtp" => (AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&host), 25),
        "smtp+starttls" => (AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&host).map_err(tls_failed)?, 587),
        "smtps" => (AsyncSmtpTransport::<Tokio1Executor>::relay(&host).map_err(tls_failed)?, 465),
        _ => return Err(invalid("the scheme must be smtp, smtp+starttls or smtps")),
    };
    Ok(builder.port(url.port().unwrap_or(default_port)))
}

fn credentials(config: &SmtpConfig) -> Option<Credentials> {
    let username = match &config.username {
        Some(username) => username.clone(),
        None if !config.url.username().is_empty() => percent_decoded(config.url.username()),
        None => return None,
    };
    let password = match &config.password {
        Some(password) => password.expose_secret().to_owned(),
        None => config.url.password().map(percent_decoded).unwrap_or_default(),
    };
    Some(Credentials::new(username, password))
}

/// User info in a URL is percent-encoded (`@` in a login is `%40`); the server wants it as typed.
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let escaped = bytes
            .get(index + 1..index + 3)
            .filter(|_| bytes[index] == b'%')
            .and_then(|hex| u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok());
        match escaped {
            Some(byte) => {
                decoded.push(byte);
                index += 3;
            }
            None => {
                decoded.push(bytes[index]);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

fn redacted(url: &Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        // Only fails for URLs that cannot carry user info, and those have no password to hide.
        let _ = shown.set_password(Some("***"));
    }
    shown.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> SmtpConfig {
        SmtpConfig {
            url: Url::parse(url).expect("a valid URL"),
            from: "Leadgate <leads@example.com>".to_owned(),
            username: None,
            password: None,
            timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn every_supported_scheme_builds_a_mailer() {
        for url in [
            "smtp://localhost",
            "smtp+starttls://mail.example.com",
            "smtps://mail.example.com:2465",
            "smtp://[::1]:2525",
        ] {
            Mailer::new(&config(url)).unwrap_or_else(|error| panic!("{url}: {error}"));
        }
    }

    #[test]
    fn an_unknown_scheme_is_refused() {
        let error = Mailer::new(&config("http://mail.example.com")).expect_err("not SMTP");

        assert!(matches!(error, EmailError::InvalidUrl { .. }), "{error:?}");
    }

    #[test]
    fn an_invalid_sender_is_refused_by_name() {
        let mut config = config("smtp://localhost");
        config.from = "leads at example.com".to_owned();

        let error = Mailer::new(&config).expect_err("an invalid sender");

        assert!(error.to_string().contains("«leads at example.com»"), "{error}");
        assert!(error.is_permanent());
    }

    #[test]
    fn credentials_come_from_the_url_when_the_fields_are_empty() {
        let config = config("smtp://robot%40example.com:p%40ss@localhost");

        let credentials = credentials(&config).expect("credentials from the URL");

        assert_eq!(credentials, Credentials::new("robot@example.com".to_owned(), "p@ss".to_owned()));
    }

    #[test]
    fn credential_fields_win_over_the_url() {
        let mut config = config("smtp://url-user:url-pass@localhost");
        config.username = Some("field-user".to_owned());
        config.password = Some(SecretString::from("field-pass"));

        let credentials = credentials(&config).expect("credentials from the fields");

        assert_eq!(credentials, Credentials::new("field-user".to_owned(), "field-pass".to_owned()));
    }

    #[test]
    fn debug_output_hides_a_password_in_the_url() {
        let config = config("smtp://user:hunter2@localhost");

        let shown = format!("{config:?}");

        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("user:***@localhost"), "{shown}");
    }

    #[test]
    fn check_address_accepts_a_display_name_and_refuses_garbage() {
        assert!(check_address("Отдел продаж <sales@example.com>").is_ok());
        assert!(check_address("sales@").is_err());
    }
}
