//! Resource pattern parsing and the two relations every grant decision uses, `matches` and
//! `narrower_or_equal`. The input is three parts: pattern A, pattern B, and a resource of A's
//! kind. Holds: no panic; a parsed pattern's text is canonical and parses back to it; every
//! pattern is narrower than or equal to itself; narrowing never widens (A ⊆ B and A grants r
//! ⇒ B grants r); the exact pattern of a resource is narrower than every pattern granting it.
#![no_main]

use std::path::PathBuf;

use astrid_crypto::{Resource, ResourcePattern};
use astrid_fuzz::split2;
use astrid_types::{CapsuleName, FactName};
use libfuzzer_sys::fuzz_target;

/// A resource of the kind `p` grants, named by `text`.
fn resource_like(p: &ResourcePattern, text: &str) -> Option<Resource> {
    Some(match p {
        ResourcePattern::FsRead(_) => Resource::FsRead(PathBuf::from(text)),
        ResourcePattern::FsWrite(_) => Resource::FsWrite(PathBuf::from(text)),
        ResourcePattern::NetConnect { .. } => {
            let (host, port) = text.rsplit_once(':')?;
            Resource::NetConnect {
                host: host.to_string(),
                port: port.parse().ok()?,
            }
        }
        ResourcePattern::ProcessExec(_) => Resource::ProcessExec(text.to_string()),
        ResourcePattern::Tool(_) => Resource::Tool(text.to_string()),
        ResourcePattern::Capsule(_) => Resource::Capsule(CapsuleName::new(text).ok()?),
        ResourcePattern::Kv(_) => Resource::Kv(CapsuleName::new(text).ok()?),
        ResourcePattern::Identity(_) => Resource::Identity(FactName::new(text).ok()?),
        ResourcePattern::Uplink => Resource::Uplink,
    })
}

fn parse(bytes: &[u8]) -> Option<ResourcePattern> {
    let p = ResourcePattern::parse(std::str::from_utf8(bytes).ok()?).ok()?;
    let canonical = p.to_string();
    assert_eq!(
        ResourcePattern::parse_canonical(&canonical).as_ref().ok(),
        Some(&p),
        "`{canonical}` is not canonical"
    );
    assert!(p.narrower_or_equal(&p), "`{p}` is not narrower than itself");
    Some(p)
}

fuzz_target!(|data: &[u8]| {
    let (a, rest) = split2(data);
    let (b, r) = split2(rest);
    let (pa, pb) = (parse(a), parse(b));
    let (Some(pa), Ok(r)) = (pa, std::str::from_utf8(r)) else {
        return;
    };
    let Some(resource) = resource_like(&pa, r) else {
        return;
    };
    if !pa.matches(&resource) {
        return;
    }
    if let Some(exact) = ResourcePattern::exact(&resource) {
        assert!(
            exact.narrower_or_equal(&pa),
            "`{exact}`, the exact pattern of {resource}, is not within `{pa}`, which grants it"
        );
    }
    if let Some(pb) = pb {
        if pa.narrower_or_equal(&pb) {
            assert!(
                pb.matches(&resource),
                "`{pa}` ⊆ `{pb}` but only the first grants {resource}"
            );
        }
    }
});
