//! Fixtures shared by the CLI's unit tests.

use astrid_types::wire::{CapsuleInfo, LifecycleState};

/// A loaded capsule as the daemon would list it, with nothing declared.
pub(crate) fn capsule(name: &str, state: LifecycleState) -> CapsuleInfo {
    CapsuleInfo {
        name: name.into(),
        version: "0.1.0".into(),
        hash: format!("blake3:{}", "ab".repeat(32)),
        state,
        error: None,
        description: format!("the {name} capsule"),
        tools: vec![],
        publish: vec![],
        subscribe: vec![],
        capabilities: vec![],
        imports: vec![],
        exports: vec![],
        commands: vec![],
    }
}
