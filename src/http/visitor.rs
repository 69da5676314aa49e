//! Who is asking: the visitor's address, read from `Forwarded` or `X-Forwarded-For` only when the connection comes from a trusted proxy.
//!
//! Anyone can write those headers, so they are believed only as far as proxies we trust added
//! them: the chain is read from the nearest hop back, and the first address that is not a
//! trusted proxy is the visitor.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;

/// The visitor's address as resolved for this request; absent only when the connection's own
/// address is unknown (a router driven without a socket, in benchmarks).
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let resolved = parts.extensions.get::<ClientIp>().copied();
        let peer = || Self(parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip()));
        Ok(resolved.unwrap_or_else(peer))
    }
}

/// Resolves the visitor once per request, for every handler and the access log.
pub async fn resolve(State(trusted): State<Arc<[IpNet]>>, mut request: Request, next: Next) -> Response {
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip());
    let visitor = peer.map(|peer| visitor(peer, request.headers(), &trusted));
    request.extensions_mut().insert(ClientIp(visitor));
    next.run(request).await
}

/// The visitor behind `peer`: `peer` itself unless it is a trusted proxy, else the nearest
/// address in the forwarding chain that is not one (or the farthest, when all are trusted).
pub fn visitor(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |address: &IpAddr| trusted.iter().any(|network| network.contains(address));
    if !is_trusted(&peer) {
        return peer;
    }
    let chain = forwarded_chain(headers);
    let mut visitor = peer;
    for hop in chain.iter().rev() {
        let Some(address) = hop else {
            // An obfuscated or unreadable hop: nothing beyond it can be placed.
            return visitor;
        };
        visitor = *address;
        if !is_trusted(address) {
            break;
        }
    }
    visitor
}

/// The addresses the proxies wrote, farthest first: `Forwarded`'s `for=` when present (RFC 7239),
/// else `X-Forwarded-For`. A hop that is not an address (`unknown`, `_hidden`) is `None`.
fn forwarded_chain(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let values = |name: &str| -> Vec<String> {
        headers.get_all(name).iter().filter_map(|value| value.to_str().ok()).map(str::to_owned).collect()
    };
    let forwarded = values("forwarded");
    if !forwarded.is_empty() {
        return forwarded
            .iter()
            .flat_map(|value| value.split(','))
            .map(|element| {
                let node = element.split(';').find_map(|pair| {
                    let (name, value) = pair.trim().split_once('=')?;
                    name.eq_ignore_ascii_case("for").then(|| value.trim().trim_matches('"').to_owned())
                });
                node.and_then(|node| address_of_node(&node))
            })
            .collect();
    }
    values("x-forwarded-for").iter().flat_map(|value| value.split(',')).map(|hop| address_of_node(hop.trim())).collect()
}

/// `192.0.2.1`, `192.0.2.1:4711`, `[2001:db8::1]`, `[2001:db8::1]:4711` or a bare IPv6 address.
fn address_of_node(node: &str) -> Option<IpAddr> {
    if let Ok(address) = node.parse::<IpAddr>() {
        return Some(address);
    }
    if let Ok(address) = node.parse::<SocketAddr>() {
        return Some(address.ip());
    }
    node.strip_prefix('[').and_then(|rest| rest.split(']').next()).and_then(|inner| inner.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_static(value));
        }
        headers
    }

    fn trusted() -> Vec<IpNet> {
        vec!["10.0.0.0/8".parse().unwrap(), "2001:db8::/32".parse().unwrap()]
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_connection_from_outside_the_trusted_proxies_is_the_visitor_whatever_its_headers_say() {
        let forged = headers(&[("x-forwarded-for", "198.51.100.7"), ("forwarded", "for=198.51.100.8")]);
        assert_eq!(visitor(ip("203.0.113.5"), &forged, &trusted()), ip("203.0.113.5"));
        assert_eq!(visitor(ip("10.0.0.2"), &forged, &[]), ip("10.0.0.2"));
    }

    #[test]
    fn behind_trusted_proxies_the_nearest_untrusted_hop_is_the_visitor() {
        // The visitor's own header claims 1.1.1.1; our proxies appended the real hops after it.
        let chain = headers(&[("x-forwarded-for", "1.1.1.1, 203.0.113.5, 10.0.0.9")]);
        assert_eq!(visitor(ip("10.0.0.2"), &chain, &trusted()), ip("203.0.113.5"));
        let split = headers(&[("x-forwarded-for", "1.1.1.1"), ("x-forwarded-for", "203.0.113.5")]);
        assert_eq!(visitor(ip("10.0.0.2"), &split, &trusted()), ip("203.0.113.5"));
    }

    #[test]
    fn forwarded_is_read_before_x_forwarded_for_in_each_spelling_of_a_node() {
        let both = headers(&[
            ("forwarded", "for=198.51.100.1;proto=https, For=\"[2001:db9::17]:4711\""),
            ("x-forwarded-for", "192.0.2.99"),
        ]);
        assert_eq!(visitor(ip("10.1.1.1"), &both, &trusted()), ip("2001:db9::17"));
        let trusted_v6_hop = headers(&[("forwarded", "for=198.51.100.1:80, for=\"[2001:db8::5]\"")]);
        assert_eq!(visitor(ip("10.1.1.1"), &trusted_v6_hop, &trusted()), ip("198.51.100.1"));
    }

    #[test]
    fn an_unknown_hop_stops_the_walk_at_the_last_placed_address() {
        let hidden = headers(&[("forwarded", "for=198.51.100.1, for=_hidden, for=10.0.0.7")]);
        assert_eq!(visitor(ip("10.0.0.2"), &hidden, &trusted()), ip("10.0.0.7"));
        assert_eq!(visitor(ip("10.0.0.2"), &headers(&[]), &trusted()), ip("10.0.0.2"));
    }
}
