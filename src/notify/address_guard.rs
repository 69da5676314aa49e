//! Where callbacks may go: public addresses only, unless the configuration allows more.
//!
//! A callback URL comes from the sender, so without this guard it could make the gateway
//! reach into its own network (SSRF). URLs are checked at intake and again at every delivery,
//! because the name's DNS answer may change in between; the check at delivery happens inside
//! the HTTP client's resolver, so the address checked is the address connected to.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

use crate::config::SecurityConfig;

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

/// The kind of address a callback may not reach, or `None` for a public one.
pub fn forbidden_kind(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(ip) => {
            let [first, second, ..] = ip.octets();
            if ip.is_loopback() {
                Some("loopback")
            } else if ip.is_private() || (first == 100 && (64..128).contains(&second)) {
                Some("private")
            } else if ip.is_link_local() {
                Some("link-local")
            } else if ip.is_multicast() || ip.is_broadcast() {
                Some("multicast")
            } else if ip.is_unspecified() || first == 0 {
                Some("unspecified")
            } else {
                None
            }
        }
        IpAddr::V6(ip) => {
            if let Some(mapped) = ip.to_ipv4_mapped() {
                return forbidden_kind(IpAddr::V4(mapped));
            }
            if ip.is_loopback() {
                Some("loopback")
            } else if ip.is_unique_local() {
                Some("private")
            } else if ip.is_unicast_link_local() {
                Some("link-local")
            } else if ip.is_multicast() {
                Some("multicast")
            } else if ip.is_unspecified() {
                Some("unspecified")
            } else {
                None
            }
        }
    }
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

    #[test]
    fn internal_ranges_are_forbidden_and_public_ones_are_not() {
        for (ip, kind) in [
            ("127.0.0.1", "loopback"),
            ("10.1.2.3", "private"),
            ("172.16.0.9", "private"),
            ("192.168.1.1", "private"),
            ("100.64.0.1", "private"),
            ("169.254.169.254", "link-local"),
            ("224.0.0.1", "multicast"),
            ("0.0.0.0", "unspecified"),
            ("::1", "loopback"),
            ("fd00::1", "private"),
            ("fe80::1", "link-local"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::", "unspecified"),
        ] {
            assert_eq!(forbidden_kind(ip.parse().unwrap()), Some(kind), "{ip}");
        }
        for ip in ["93.184.216.34", "8.8.8.8", "2a00:1450:4010:c0e::64"] {
            assert_eq!(forbidden_kind(ip.parse().unwrap()), None, "{ip}");
        }
    }

    #[tokio::test]
    async fn loopback_names_and_literals_are_refused_unless_allowed() {
        let strict = guard(false, &[]);
        for url in
            ["http://127.0.0.1:9000/cb", "http://localhost/cb", "http://[::1]/cb", "http://169.254.169.254/latest"]
        {
            let refused = strict.check(&url.parse().unwrap()).await;
            assert!(matches!(refused, Err(Refused::NotPublic { .. })), "{url}: {refused:?}");
        }
        assert_eq!(strict.check(&"ftp://example.com/x".parse().unwrap()).await, Err(Refused::Scheme));
        assert!(guard(true, &[]).check(&"http://127.0.0.1/cb".parse().unwrap()).await.is_ok());
        assert!(guard(false, &["localhost"]).check(&"http://localhost/cb".parse().unwrap()).await.is_ok());
        assert!(strict.check(&"https://93.184.216.34/cb".parse().unwrap()).await.is_ok());
    }
}
