//! Which IP addresses are not on the public internet: loopback, private, link-local, reserved, and IPv4 inside IPv6.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
