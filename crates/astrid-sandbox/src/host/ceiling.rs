//! The manifest ceiling of a capability pattern: whether everything a pattern could grant
//! lies within what the capsule's manifest declares. An approval can never reach past it,
//! and an allow-always token is never minted past it.

use std::path::Path;

use astrid_crypto::{Resource, ResourcePattern};
use astrid_fsgate::Access;

use crate::context::CapsuleContext;

/// `Ok` when `pattern` lies within the capsule's manifest ceiling; otherwise why not.
pub(crate) fn within_manifest(
    ctx: &CapsuleContext,
    pattern: &ResourcePattern,
) -> Result<(), String> {
    let capsule = ctx.capsule();
    let caps = &ctx.manifest.capabilities;
    let fs = |p: &astrid_crypto::PathPattern, access: Access, key: &str| {
        let prefix = p.literal_prefix();
        match &ctx.fs {
            Some(roots) if roots.grants(Path::new(&prefix), access) => Ok(()),
            _ => Err(format!(
                "`{pattern}` lies outside capsule `{capsule}`'s [capabilities] {key}"
            )),
        }
    };
    match pattern {
        ResourcePattern::FsRead(p) => fs(p, Access::Read, "fs_read"),
        ResourcePattern::FsWrite(p) => fs(p, Access::Write, "fs_write"),
        ResourcePattern::NetConnect { .. } => {
            let declared = caps.net.iter().any(|entry| {
                ResourcePattern::parse(&format!("net:connect:{entry}"))
                    .is_ok_and(|ceiling| pattern.narrower_or_equal(&ceiling))
            });
            if declared {
                Ok(())
            } else {
                Err(format!(
                    "`{pattern}` lies outside capsule `{capsule}`'s [capabilities] net"
                ))
            }
        }
        ResourcePattern::ProcessExec(program) => {
            if caps.process.contains(program) {
                Ok(())
            } else {
                Err(format!(
                    "capsule `{capsule}` does not declare `{program}` in [capabilities] process"
                ))
            }
        }
        ResourcePattern::Identity(fact) => {
            if caps.declares_fact(fact.as_ref()) {
                Ok(())
            } else {
                Err(format!(
                    "capsule `{capsule}` does not declare `{fact}` in [capabilities] identity"
                ))
            }
        }
        ResourcePattern::Uplink => {
            if caps.uplink {
                Ok(())
            } else {
                Err(format!(
                    "capsule `{capsule}` does not set `uplink = true` in [capabilities]"
                ))
            }
        }
        ResourcePattern::Kv(owner) if caps.kv && owner.as_ref() == capsule => Ok(()),
        ResourcePattern::Kv(_) | ResourcePattern::Tool(_) | ResourcePattern::Capsule(_) => {
            Err(format!(
                "`{pattern}` is not something capsule `{capsule}`'s manifest declares; the \
                 operator grants it with `astrid caps grant`"
            ))
        }
    }
}

/// [`within_manifest`] for an effect the host is about to perform: the exact pattern for
/// it, or why there is none.
pub(crate) fn effect_within_manifest(
    ctx: &CapsuleContext,
    effect: &Resource,
) -> Result<(), String> {
    let exact = ResourcePattern::exact(effect)
        .ok_or_else(|| format!("`{effect}` cannot be written as an exact capability pattern"))?;
    within_manifest(ctx, &exact)
}

/// Whether the manifest's `[capabilities] net` declares `host:port`.
pub(crate) fn declared_net(ctx: &CapsuleContext, host: &str, port: u16) -> bool {
    let resource = Resource::NetConnect {
        host: host.to_string(),
        port,
    };
    ctx.manifest.capabilities.net.iter().any(|entry| {
        ResourcePattern::parse(&format!("net:connect:{entry}")).is_ok_and(|p| p.matches(&resource))
    })
}
