//! Capsule dependency graph: boot order from `[imports]`/`[exports]`, and which capsules
//! would lose their only provider if one were removed.

use std::collections::BTreeSet;

use semver::{Version, VersionReq};

use crate::manifest::{Manifest, HOST_NAMESPACE};

const V1_0: Version = Version::new(1, 0, 0);
const V1_1: Version = Version::new(1, 1, 0);
const V1_2: Version = Version::new(1, 2, 0);

/// Every version of every `astrid:` host package the kernel serves, side by side (the WIT
/// is in `wit/`; a released version is never changed or dropped, a new one is added).
pub const HOST_PACKAGES: &[(&str, &[Version])] = &[
    ("astrid:sys", &[V1_0]),
    ("astrid:ipc", &[V1_0]),
    ("astrid:kv", &[V1_0]),
    ("astrid:fs", &[V1_0]),
    ("astrid:approval", &[V1_0]),
    ("astrid:http", &[V1_0, V1_1, V1_2]),
    ("astrid:process", &[V1_0]),
    ("astrid:identity", &[V1_0]),
    ("astrid:uplink", &[V1_0]),
    ("astrid:net", &[V1_0]),
    ("astrid:elicit", &[V1_0]),
    ("astrid:io", &[V1_0]),
];

/// Whether the kernel serves a version of host package `package` matching `req`.
pub fn host_serves(package: &str, req: &VersionReq) -> bool {
    HOST_PACKAGES
        .iter()
        .any(|(name, versions)| *name == package && versions.iter().any(|v| req.matches(v)))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// `path` starts and ends with the same capsule; each one imports from the next.
    #[error("dependency cycle: {}", path.join(" -> "))]
    Cycle { path: Vec<String> },
    #[error(
        "capsule `{capsule}` imports `{import}` {requirement} but no installed capsule exports a matching version"
    )]
    MissingProvider {
        capsule: String,
        import: String,
        requirement: String,
    },
    #[error("capsule `{name}` is listed more than once")]
    DuplicateName { name: String },
}

/// Who satisfies one import.
enum Provider {
    Kernel,
    Capsule(usize),
    None,
}

/// Indices of capsules other than `importer` that export `iface` at a version matching `req`.
fn exporters<'a>(
    manifests: &'a [Manifest],
    importer: usize,
    iface: &'a str,
    req: &'a VersionReq,
) -> impl Iterator<Item = usize> + 'a {
    manifests.iter().enumerate().filter_map(move |(i, m)| {
        let v = m.exports.get(iface)?;
        (i != importer && req.matches(v)).then_some(i)
    })
}

/// The provider the kernel will link: the kernel for host interfaces, otherwise the highest
/// matching version, earliest in input order on a tie (so the choice is deterministic).
fn provider(manifests: &[Manifest], importer: usize, iface: &str, req: &VersionReq) -> Provider {
    if iface.starts_with(HOST_NAMESPACE) {
        return if host_serves(iface, req) {
            Provider::Kernel
        } else {
            Provider::None
        };
    }
    let mut best: Option<usize> = None;
    for i in exporters(manifests, importer, iface, req) {
        let newer = best.is_none_or(|b| manifests[i].exports[iface] > manifests[b].exports[iface]);
        if newer {
            best = Some(i);
        }
    }
    best.map_or(Provider::None, Provider::Capsule)
}

fn check_unique(manifests: &[Manifest]) -> Result<(), GraphError> {
    let mut seen = BTreeSet::new();
    for m in manifests {
        if !seen.insert(m.package.name.as_str()) {
            return Err(GraphError::DuplicateName {
                name: m.package.name.to_string(),
            });
        }
    }
    Ok(())
}

/// For each capsule, the capsules it must boot after.
fn dependencies(manifests: &[Manifest]) -> Result<Vec<BTreeSet<usize>>, GraphError> {
    let mut deps = vec![BTreeSet::new(); manifests.len()];
    for (i, m) in manifests.iter().enumerate() {
        for (iface, req) in &m.imports {
            match provider(manifests, i, iface, req) {
                Provider::Kernel => {}
                Provider::Capsule(p) => {
                    deps[i].insert(p);
                }
                Provider::None => {
                    return Err(GraphError::MissingProvider {
                        capsule: m.package.name.to_string(),
                        import: iface.clone(),
                        requirement: req.to_string(),
                    })
                }
            }
        }
    }
    Ok(deps)
}

/// Indices of `manifests` in boot order: every capsule after the providers of its imports;
/// among capsules that are ready at the same time, input order is kept.
pub fn boot_order(manifests: &[Manifest]) -> Result<Vec<usize>, GraphError> {
    check_unique(manifests)?;
    let deps = dependencies(manifests)?;
    let mut placed = vec![false; manifests.len()];
    let mut order = Vec::with_capacity(manifests.len());
    // Quadratic, but a principal has tens of capsules, and rescanning from the start each
    // round is what makes ties keep input order.
    while order.len() < manifests.len() {
        let ready =
            (0..manifests.len()).find(|&i| !placed[i] && deps[i].iter().all(|&d| placed[d]));
        match ready {
            Some(i) => {
                placed[i] = true;
                order.push(i);
            }
            None => return Err(cycle(manifests, &deps, &placed)),
        }
    }
    Ok(order)
}

/// Every unplaced capsule waits on another unplaced one, so walking "first unplaced
/// dependency" edges from any of them must revisit a node: that loop is the cycle.
fn cycle(manifests: &[Manifest], deps: &[BTreeSet<usize>], placed: &[bool]) -> GraphError {
    let start = placed.iter().position(|p| !p).unwrap_or(0);
    let mut walk = vec![start];
    let mut at = start;
    // The loop only ends without a repeat if `boot_order` called us when not stuck; the
    // report then degrades to the walk so far rather than panicking.
    while let Some(&next) = deps[at].iter().find(|&&d| !placed[d]) {
        if let Some(pos) = walk.iter().position(|&w| w == next) {
            walk.drain(..pos);
            break;
        }
        walk.push(next);
        at = next;
    }
    // Start the report at the earliest capsule in input order, so it is stable.
    let min = walk
        .iter()
        .enumerate()
        .min_by_key(|(_, &i)| i)
        .map_or(0, |(pos, _)| pos);
    walk.rotate_left(min);
    walk.push(walk[0]);
    GraphError::Cycle {
        path: walk
            .into_iter()
            .map(|i| manifests[i].package.name.to_string())
            .collect(),
    }
}

/// Capsules with at least one import that only `name` can satisfy: removing `name` would
/// leave them without a provider. In input order.
pub fn dependents_of(manifests: &[Manifest], name: &str) -> Vec<String> {
    let Some(target) = manifests
        .iter()
        .position(|m| m.package.name.as_str() == name)
    else {
        return Vec::new();
    };
    manifests
        .iter()
        .enumerate()
        .filter(|&(i, m)| {
            i != target
                && m.imports.iter().any(|(iface, req)| {
                    !iface.starts_with(HOST_NAMESPACE)
                        && exporters(manifests, i, iface, req).eq([target])
                })
        })
        .map(|(_, m)| m.package.name.to_string())
        .collect()
}

#[cfg(test)]
mod tests;
