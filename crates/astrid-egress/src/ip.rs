//! The address policy: which IP addresses count as public.
//!
//! Every refusal names the range it matched, so the person reading the denial can tell a
//! typo from a metadata probe. Addresses that carry an IPv4 address inside an IPv6 one
//! (mapped, NAT64, 6to4, Teredo) are judged by the embedded IPv4 address where that is
//! meaningful, so a tunnel notation cannot smuggle a private target past the IPv4 rules.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `(network, prefix length, what it is)`.
const V4_REFUSED: &[(Ipv4Addr, u8, &str)] = &[
    (Ipv4Addr::new(0, 0, 0, 0), 8, "\"this network\""),
    (Ipv4Addr::new(10, 0, 0, 0), 8, "private"),
    (Ipv4Addr::new(100, 64, 0, 0), 10, "carrier-grade NAT"),
    (Ipv4Addr::new(127, 0, 0, 0), 8, "loopback"),
    (
        Ipv4Addr::new(169, 254, 0, 0),
        16,
        "link-local, includes the cloud metadata service",
    ),
    (Ipv4Addr::new(172, 16, 0, 0), 12, "private"),
    (Ipv4Addr::new(192, 0, 0, 0), 24, "IETF protocol assignments"),
    (Ipv4Addr::new(192, 0, 2, 0), 24, "documentation"),
    (Ipv4Addr::new(192, 88, 99, 0), 24, "6to4 relay anycast"),
    (Ipv4Addr::new(192, 168, 0, 0), 16, "private"),
    (Ipv4Addr::new(198, 18, 0, 0), 15, "benchmarking"),
    (Ipv4Addr::new(198, 51, 100, 0), 24, "documentation"),
    (Ipv4Addr::new(203, 0, 113, 0), 24, "documentation"),
    (Ipv4Addr::new(224, 0, 0, 0), 4, "multicast"),
    (Ipv4Addr::new(255, 255, 255, 255), 32, "broadcast"),
    (Ipv4Addr::new(240, 0, 0, 0), 4, "reserved"),
];

/// Ranges refused outright (no embedded address worth judging). Order matters only for
/// the name in the message: the most specific range comes first.
const V6_REFUSED: &[(Ipv6Addr, u8, &str)] = &[
    (Ipv6Addr::UNSPECIFIED, 128, "unspecified"),
    (Ipv6Addr::LOCALHOST, 128, "loopback"),
    (
        Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0),
        48,
        "local-use NAT64",
    ),
    (
        Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0),
        64,
        "discard-only",
    ),
    (
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0),
        32,
        "documentation",
    ),
    (
        Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0),
        23,
        "IETF protocol assignments",
    ),
    (
        Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0),
        20,
        "documentation",
    ),
    (
        Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0),
        7,
        "unique local (private)",
    ),
    (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10, "link-local"),
    (
        Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0),
        10,
        "site-local (deprecated)",
    ),
    (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8, "multicast"),
];

/// `Ok(())` for a public unicast address; otherwise `Err` with a sentence naming the range.
///
/// ```
/// use astrid_egress::check_ip;
/// assert!(check_ip("1.1.1.1".parse().unwrap()).is_ok());
/// let why = check_ip("169.254.169.254".parse().unwrap()).unwrap_err();
/// assert!(why.contains("169.254.0.0/16"));
/// ```
pub fn check_ip(ip: IpAddr) -> Result<(), String> {
    match ip {
        IpAddr::V4(v4) => check_v4(v4),
        IpAddr::V6(v6) => check_v6(v6),
    }
}

fn check_v4(ip: Ipv4Addr) -> Result<(), String> {
    let bits = u32::from(ip);
    for &(net, len, what) in V4_REFUSED {
        if prefix_match32(bits, u32::from(net), len) {
            return Err(format!("{ip} is in {net}/{len} ({what})"));
        }
    }
    Ok(())
}

fn check_v6(ip: Ipv6Addr) -> Result<(), String> {
    let bits = u128::from(ip);
    let embedded = |what: &str, v4: Ipv4Addr| {
        check_v4(v4).map_err(|why| format!("{ip} is {what} and embeds {why}"))
    };
    // IPv4-mapped ::ffff:0:0/96: the socket would talk IPv4 to the embedded address.
    if prefix_match128(bits, 0xffff_0000_0000, 96) {
        return embedded("IPv4-mapped (::ffff:0:0/96)", low32(bits));
    }
    // Well-known NAT64 64:ff9b::/96: the translator forwards to the embedded address.
    if prefix_match128(
        bits,
        u128::from(Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0)),
        96,
    ) {
        return embedded("NAT64 (64:ff9b::/96)", low32(bits));
    }
    // 6to4 2002::/16 carries the IPv4 endpoint in bits 16..48.
    if prefix_match128(bits, 0x2002 << 112, 16) {
        return embedded("6to4 (2002::/16)", Ipv4Addr::from((bits >> 80) as u32));
    }
    // Teredo 2001::/32 is refused outright (a tunnel we cannot vouch for); the client
    // address is stored inverted in the last 32 bits, named when it is private so the
    // reason is concrete.
    if prefix_match128(bits, 0x2001 << 112, 32) {
        let client = Ipv4Addr::from(!(bits as u32));
        return Err(match check_v4(client) {
            Err(why) => format!("{ip} is in 2001::/32 (Teredo tunnelling) and embeds {why}"),
            Ok(()) => format!("{ip} is in 2001::/32 (Teredo tunnelling)"),
        });
    }
    for &(net, len, what) in V6_REFUSED {
        if prefix_match128(bits, u128::from(net), len) {
            return Err(format!("{ip} is in {net}/{len} ({what})"));
        }
    }
    // Deprecated IPv4-compatible ::/96 (after :: and ::1 so those get their own names).
    if prefix_match128(bits, 0, 96) {
        return Err(format!("{ip} is in ::/96 (IPv4-compatible, deprecated)"));
    }
    // Everything else outside 2000::/3 is unallocated or special.
    if !prefix_match128(bits, 0x2000 << 112, 3) {
        return Err(format!("{ip} is outside 2000::/3 (not global unicast)"));
    }
    Ok(())
}

fn low32(bits: u128) -> Ipv4Addr {
    Ipv4Addr::from(bits as u32)
}

fn prefix_match32(addr: u32, net: u32, len: u8) -> bool {
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    addr & mask == net & mask
}

fn prefix_match128(addr: u128, net: u128, len: u8) -> bool {
    let mask = if len == 0 {
        0
    } else {
        u128::MAX << (128 - len)
    };
    addr & mask == net & mask
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(s: &str, range: &str) {
        let why = check_ip(s.parse().unwrap()).expect_err(s);
        assert!(why.contains(range), "{s}: {why} should name {range}");
    }

    #[test]
    fn ipv4_edges() {
        refused("172.31.255.255", "172.16.0.0/12");
        assert!(check_ip("172.32.0.0".parse().unwrap()).is_ok());
        refused("100.127.255.255", "100.64.0.0/10");
        assert!(check_ip("100.128.0.0".parse().unwrap()).is_ok());
        refused("198.19.255.255", "198.18.0.0/15");
        refused("192.88.99.1", "192.88.99.0/24");
        refused("198.51.100.7", "198.51.100.0/24");
        refused("203.0.113.9", "203.0.113.0/24");
        refused("240.0.0.1", "240.0.0.0/4");
        refused("192.0.0.9", "192.0.0.0/24");
        assert!(check_ip("223.255.255.255".parse().unwrap()).is_ok());
    }

    #[test]
    fn ipv6_embedded_and_special() {
        refused("::", "unspecified");
        refused("::7f00:1", "::/96");
        refused("::ffff:10.1.2.3", "10.0.0.0/8");
        assert!(check_ip("::ffff:8.8.8.8".parse().unwrap()).is_ok());
        assert!(check_ip("64:ff9b::808:808".parse().unwrap()).is_ok());
        refused("64:ff9b::a00:1", "10.0.0.0/8");
        refused("64:ff9b:1::808:808", "64:ff9b:1::/48");
        refused("2002:c0a8:101::1", "192.168.0.0/16");
        assert!(check_ip("2002:808:808::1".parse().unwrap()).is_ok());
        refused("2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001::/32");
        // Teredo whose inverted client is 127.0.0.1.
        refused("2001:0:1:2:3:4:80ff:fffe", "127.0.0.0/8");
        refused("2001:db8::1", "2001:db8::/32");
        refused("2001:1ff::1", "2001::/23");
        refused("100::1", "100::/64");
        refused("fec0::1", "fec0::/10");
        refused("ff02::1", "ff00::/8");
        refused("3fff::1", "3fff::/20");
        refused("4000::1", "2000::/3");
        assert!(check_ip("2001:200::1".parse().unwrap()).is_ok());
        assert!(check_ip("2a00:1450:4001::200e".parse().unwrap()).is_ok());
    }
}
