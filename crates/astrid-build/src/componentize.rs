//! Core module → component, and the checks that keep a capsule inside the host ABI.

use std::path::Path;

use wit_component::{ComponentEncoder, DecodedWasm};

use crate::error::BuildError;

/// The interface every capsule exports.
pub const GUEST_EXPORT: &str = "astrid:capsule/guest@1.0.0";

/// The namespace of every interface the host provides.
const HOST_NAMESPACE: &str = "astrid:";

/// What a component imports and exports, by interface name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interfaces {
    /// Imported interfaces, such as `astrid:sys/sys@1.0.0`.
    pub imports: Vec<String>,
    /// Exported interfaces, such as `astrid:capsule/guest@1.0.0`.
    pub exports: Vec<String>,
}

/// Turns a core module built with wit-bindgen into a validated component. `path` is only used
/// in error messages.
pub fn componentize(module: &[u8], path: &Path) -> Result<Vec<u8>, BuildError> {
    let fail = |e: anyhow::Error| BuildError::Componentize {
        path: path.to_path_buf(),
        reason: format!("{e:#}"),
    };
    ComponentEncoder::default()
        .validate(true)
        .module(module)
        .map_err(fail)?
        .encode()
        .map_err(fail)
}

/// Decodes a component's world: the interfaces it imports and exports.
pub fn interfaces(component: &[u8], path: &Path) -> Result<Interfaces, BuildError> {
    let decoded = wit_component::decode(component).map_err(|e| BuildError::Componentize {
        path: path.to_path_buf(),
        reason: format!("not a decodable component: {e:#}"),
    })?;
    let DecodedWasm::Component(resolve, world) = decoded else {
        return Err(BuildError::Componentize {
            path: path.to_path_buf(),
            reason: "this is a WIT package, not a component".into(),
        });
    };
    let world = &resolve.worlds[world];
    // Anonymous interfaces are keyed by name, so `name_world_key` cannot hit its panic path.
    let name = |key| resolve.name_world_key(key);
    Ok(Interfaces {
        imports: world.imports.keys().map(name).collect(),
        exports: world.exports.keys().map(name).collect(),
    })
}

/// Checks that the component imports only `astrid:*` and exports the guest interface.
pub fn check_interfaces(component: &[u8], path: &Path) -> Result<Interfaces, BuildError> {
    let found = interfaces(component, path)?;
    let foreign: Vec<String> = found
        .imports
        .iter()
        .filter(|i| !i.starts_with(HOST_NAMESPACE))
        .cloned()
        .collect();
    if !foreign.is_empty() {
        return Err(BuildError::ForeignImports {
            path: path.to_path_buf(),
            imports: foreign,
        });
    }
    if !found.exports.iter().any(|e| e == GUEST_EXPORT) {
        return Err(BuildError::MissingExport {
            path: path.to_path_buf(),
            expected: GUEST_EXPORT.into(),
            found: found.exports.clone(),
        });
    }
    Ok(found)
}
