//! The airlock's URL and address policy (`astrid_egress::preflight`, `check_ip`), the gate
//! every outbound request of a capsule passes. The input is a URL, then bytes read as IP
//! addresses. Holds, with no consent given: no panic; an accepted URL is https, carries no
//! credentials, and names neither localhost nor an address the standard library's (nightly)
//! IANA-registry view calls not globally reachable; the verdict survives the URL's own
//! normalised serialisation; an address `check_ip` accepts is globally reachable, and an
//! IPv4 address gets the same verdict as its IPv4-mapped IPv6 form. The URL text is also
//! parsed as a subresource-integrity value (`astrid_egress::Integrity`, which a capsule
//! hands the host): no panic, and a value that parses checks any body to a match or to the
//! body's own digest in the same `algorithm-base64` form.
#![no_main]
#![feature(ip)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use astrid_egress::{check_ip, preflight, Consent, Integrity, Url};
use astrid_fuzz::split2;
use libfuzzer_sys::fuzz_target;
use url::Host;

fn v4_reachable(ip: Ipv4Addr) -> bool {
    ip.is_global()
}

fn v6_reachable(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        // Not an IPv6 destination: the socket talks IPv4 to what it embeds.
        v4_reachable(v4)
    } else if s[0] == 0x2002 {
        // 6to4: a relay forwards to the embedded IPv4 endpoint, which the airlock judges
        // (the registry marks the whole block not applicable).
        v4_reachable(Ipv4Addr::from((u32::from(s[1]) << 16) | u32::from(s[2])))
    } else {
        ip.is_global()
    }
}

fn check_addresses(bytes: &[u8]) {
    if let Ok(b) = <[u8; 4]>::try_from(bytes.get(..4).unwrap_or_default()) {
        let v4 = Ipv4Addr::from(b);
        let ok = check_ip(IpAddr::V4(v4)).is_ok();
        assert!(!ok || v4_reachable(v4), "check_ip accepts {v4}");
        assert_eq!(
            check_ip(IpAddr::V6(v4.to_ipv6_mapped())).is_ok(),
            ok,
            "{v4} and its mapped form differ"
        );
    }
    if let Ok(b) = <[u8; 16]>::try_from(bytes.get(..16).unwrap_or_default()) {
        let v6 = Ipv6Addr::from(b);
        assert!(
            check_ip(IpAddr::V6(v6)).is_err() || v6_reachable(v6),
            "check_ip accepts {v6}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let (url, addresses) = split2(data);
    check_addresses(addresses);
    let Ok(text) = std::str::from_utf8(url) else {
        return;
    };
    if let Ok(pinned) = Integrity::parse(text) {
        if let Err(got) = pinned.check(addresses) {
            let (alg, b64) = got.split_once('-').expect("ALGORITHM-BASE64");
            assert!(matches!(alg, "sha256" | "sha384" | "sha512"), "{got}");
            assert!(
                Integrity::parse(&got).is_ok(),
                "its own digest parses: {got}"
            );
            assert!(!b64.is_empty());
        }
    }
    let Ok(url) = Url::parse(text) else {
        return;
    };
    let none = Consent::default();
    let verdict = preflight(&url, &none);
    if verdict.is_ok() {
        assert_eq!(url.scheme(), "https", "{url}");
        assert!(
            url.username().is_empty() && url.password().is_none(),
            "{url}"
        );
        match url.host() {
            Some(Host::Ipv4(ip)) => assert!(v4_reachable(ip), "{url}"),
            Some(Host::Ipv6(ip)) => assert!(v6_reachable(ip), "{url}"),
            Some(Host::Domain(name)) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                assert!(
                    name != "localhost" && !name.ends_with(".localhost"),
                    "{url}"
                );
            }
            None => panic!("a URL without a host was accepted: {url}"),
        }
    }
    let again = Url::parse(url.as_str()).expect("a URL's own serialisation parses");
    assert_eq!(
        preflight(&again, &none).is_ok(),
        verdict.is_ok(),
        "{url} and its serialisation differ"
    );
});
