//! Where callbacks may go: public addresses only, unless the configuration allows more.
//!
//! A callback URL comes from the sender, so without this guard it could make the gateway
//! reach into its own network (SSRF). URLs are checked at intake and again at every delivery,
//! because the name's DNS answer may change in between; the check at delivery happens inside
//! the HTTP client's resolver, so the address checked is the address connected to.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

use crate::config::SecurityConfig;
use crate::domain::address::forbidden_kind;

#[derive(Debug, Clone)]
pub struct AddressGuard {
    allow_private: bool,
    allowed_hosts: Arc<HashSet<String>>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refused {
    #[error("only http and https callbacks are allowed")]
    Scheme,
    #[error("{host} is a {kind} address; callbacks may only reach public addresses")]
    NotPublic { host: String, kind: &'static str },
    #[error("{0} does not resolve to any address")]
    Unresolvable(String),
}

impl AddressGuard {
    pub fn new(config: &SecurityConfig) -> Self {
        Self {
            allow_private: config.allow_private_callbacks,
            allowed_hosts: Arc::new(config.callback_allow_hosts.iter().cloned().collect()),
        }
    }

    /// Checks a URL before anything is sent to it: its scheme, a literal IP, and what its name
    /// resolves to now.
    ///
    /// # Errors
    /// When the URL may not be called; the error says why in words for the sender.
    pub async fn check(&self, url: &Url) -> Result<(), Refused> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Refused::Scheme);
        }
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        if self.allow_private || self.allowed_hosts.contains(&host) {
            return Ok(());
        }
        let addresses: Vec<IpAddr> = match url.host() {
            Some(Host::Ipv4(ip)) => vec![IpAddr::V4(ip)],
            Some(Host::Ipv6(ip)) => vec![IpAddr::V6(ip)],
            _ if let Some(kind) = internal_name(&host) => return Err(Refused::NotPublic { host, kind }),
            _ => {
                let port = url.port_or_known_default().unwrap_or(443);
                // A name that does not resolve now may resolve later; delivery checks again.
                match tokio::net::lookup_host((host.as_str(), port)).await {
                    Ok(found) => found.map(|address| address.ip()).collect(),
                    Err(_) => return Ok(()),
                }
            }
        };
        match addresses.into_iter().find_map(|ip| forbidden_kind(ip)) {
            Some(kind) => Err(Refused::NotPublic { host, kind }),
            None => Ok(()),
        }
    }

    fn permits(&self, host: &str, ip: IpAddr) -> bool {
        self.allow_private || self.allowed_hosts.contains(host) || forbidden_kind(ip).is_none()
    }
}

/// A host name that is internal whatever it resolves to today: `localhost` and the names under
/// it, the suffixes kept for private networks, and the public wildcard names that resolve to the
/// address written in them (`127.0.0.1.nip.io`). Names that merely fail to resolve are left to
/// the delivery-time check.
fn internal_name(host: &str) -> Option<&'static str> {
    let host = host.trim_end_matches('.');
    let under = |suffix: &str| host == suffix || host.ends_with(&format!(".{suffix}"));
    if ["localhost", "localtest.me", "lvh.me"].into_iter().any(under) {
        return Some("loopback");
    }
    if ["local", "internal", "localdomain", "home.arpa", "intranet", "corp", "lan"].into_iter().any(under) {
        return Some("private");
    }
    let wildcard = ["nip.io", "sslip.io", "xip.io"].into_iter().find(|suffix| under(suffix))?;
    let name = host.strip_suffix(wildcard)?.trim_end_matches('.');
    // `a.b.c.d.nip.io`, `name.a.b.c.d.nip.io`, `a-b-c-d.nip.io` or `name-a-b-c-d.nip.io`.
    let dotted: Vec<&str> = name.rsplit('.').take(4).collect();
    let dashed: Vec<&str> = name.rsplit('.').next().unwrap_or_default().rsplit('-').take(4).collect();
    [dotted, dashed].into_iter().find_map(|mut parts| {
        parts.reverse();
        let ip: Ipv4Addr = parts.join(".").parse().ok()?;
        forbidden_kind(IpAddr::V4(ip))
    })
}

/// The callback client's resolver: it drops every address the guard forbids, so a name that
/// turned private since intake fails to connect instead of reaching inside.
impl Resolve for AddressGuard {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.clone();
        Box::pin(async move {
            let host = name.as_str().to_ascii_lowercase();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let permitted: Vec<SocketAddr> =
                found.iter().copied().filter(|address| guard.permits(&host, address.ip())).collect();
            if permitted.is_empty() {
                let refused: Box<dyn std::error::Error + Send + Sync> = match found.first() {
                    Some(address) => {
                        Box::new(Refused::NotPublic { host, kind: forbidden_kind(address.ip()).unwrap_or("forbidden") })
                    }
                    None => Box::new(Refused::Unresolvable(host)),
                };
                return Err(refused);
            }
            let addresses: Addrs = Box::new(permitted.into_iter());
            Ok(addresses)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(allow_private: bool, hosts: &[&str]) -> AddressGuard {
        AddressGuard::new(&SecurityConfig {
            allow_private_callbacks: allow_private,
            callback_allow_hosts: hosts.iter().map(|host| (*host).to_owned()).collect(),
        })
    }

    #[tokio::test]
    async fn loopback_names_and_literals_are_refused_unless_allowed() {
        let strict = guard(false, &[]);
        for url in [
            "http://127.0.0.1:9000/cb",
            "http://localhost/cb",
            "http://[::1]/cb",
            "http://169.254.169.254/latest",
            "http://[::127.0.0.1]/cb",
            "http://[::ffff:0:7f00:1]/cb",
            "http://[64:ff9b::a9fe:a9fe]/latest",
            "http://[2002:7f00:1::1]/cb",
            "http://[fec0::1]/cb",
            "http://localhost./cb",
            "http://api.localhost/cb",
            "http://127.0.0.1.nip.io/cb",
            "http://app-10-0-0-1.sslip.io/cb",
            "http://metadata.internal/cb",
        ] {
            let refused = strict.check(&url.parse().unwrap()).await;
            assert!(matches!(refused, Err(Refused::NotPublic { .. })), "{url}: {refused:?}");
        }
        assert_eq!(strict.check(&"ftp://example.com/x".parse().unwrap()).await, Err(Refused::Scheme));
        assert!(guard(true, &[]).check(&"http://127.0.0.1/cb".parse().unwrap()).await.is_ok());
        assert!(guard(false, &["localhost"]).check(&"http://localhost/cb".parse().unwrap()).await.is_ok());
        assert!(strict.check(&"https://93.184.216.34/cb".parse().unwrap()).await.is_ok());
    }
}
