//! Where callbacks may go: public addresses only, unless the configuration allows more.
//!
//! A callback URL comes from the sender, so without this guard it could make the gateway
//! reach into its own network (SSRF). URLs are checked at intake and again at every delivery,
//! because the name's DNS answer may change in between; the check at delivery happens inside
//! the HTTP client's resolver, so the address checked is the address connected to.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
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

/// The kind of address a callback may not reach, or `None` for a public one.
pub fn forbidden_kind(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(ip) => forbidden_v4(ip),
        IpAddr::V6(ip) => forbidden_v6(ip),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [first, second, third, _] = ip.octets();
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
    } else if first >= 240 || (first == 198 && (18..20).contains(&second)) || (first, second, third) == (192, 0, 0) {
        Some("reserved")
    } else {
        None
    }
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if ip.is_loopback() {
        return Some("loopback");
    }
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    // An IPv4 address written inside an IPv6 one reaches that IPv4 host (through the host's
    // own stack, a NAT64 gateway, a 6to4 or Teredo relay), so it is judged as that address.
    if let Some(embedded) = embedded_v4(ip) {
        return forbidden_v4(embedded);
    }
    let [first, second, ..] = ip.segments();
    if ip.is_unique_local() {
        Some("private")
    } else if ip.is_unicast_link_local() {
        Some("link-local")
    } else if first & 0xffc0 == 0xfec0 {
        Some("site-local")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if (first, second) == (0x2001, 0x0db8) || (first == 0x0100 && ip.segments()[1..4] == [0, 0, 0]) {
        Some("reserved")
    } else {
        None
    }
}

/// The IPv4 address an IPv6 address carries: IPv4-mapped and -compatible (`::ffff:a.b.c.d`,
/// `::a.b.c.d`), IPv4-translated (`::ffff:0:a.b.c.d`), NAT64 (`64:ff9b::/96`, `64:ff9b:1::/48`),
/// 6to4 (`2002:AABB:CCDD::/48`) and Teredo (`2001::/32`, the client's address inverted).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let segments = ip.segments();
    let last = |high: u16, low: u16| Ipv4Addr::from((u32::from(high) << 16) | u32::from(low));
    match segments {
        [0, 0, 0, 0, 0, 0 | 0xffff, high, low] => Some(last(high, low)),
        [0, 0, 0, 0, 0xffff, 0, high, low] => Some(last(high, low)),
        [0x64, 0xff9b, 0, 0, 0, 0, high, low] => Some(last(high, low)),
        [0x64, 0xff9b, 1, ..] => Some(last(segments[6], segments[7])),
        [0x2002, high, low, ..] => Some(last(high, low)),
        [0x2001, 0, .., high, low] => Some(last(!high, !low)),
        _ => None,
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
        forbidden_v4(ip)
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
            ("::127.0.0.1", "loopback"),
            ("::ffff:0:7f00:1", "loopback"),
            ("64:ff9b::a9fe:a9fe", "link-local"),
            ("64:ff9b:1::a00:1", "private"),
            ("2002:7f00:1::1", "loopback"),
            ("2001:0:4136:e378:8000:63bf:80ff:fffe", "loopback"),
            ("fec0::1", "site-local"),
            ("2001:db8::1", "reserved"),
            ("240.0.0.1", "reserved"),
            ("198.18.0.1", "reserved"),
        ] {
            assert_eq!(forbidden_kind(ip.parse().unwrap()), Some(kind), "{ip}");
        }
        for ip in ["93.184.216.34", "8.8.8.8", "2a00:1450:4010:c0e::64", "2002:5db8:d822::1", "64:ff9b::808:808"] {
            assert_eq!(forbidden_kind(ip.parse().unwrap()), None, "{ip}");
        }
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
