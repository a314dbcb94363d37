//! Fixtures shared by the CLI's unit tests.

use astrid_types::wire::{
    AlwaysOffer, ApprovalRequest, ApprovalResource, CapsuleInfo, LifecycleState, ResourceKind,
};

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
        host_abi: vec![],
    }
}

/// tool-fs asking to write `/w/out.txt` for `default`.
pub(crate) fn request(id: u64, always: AlwaysOffer) -> ApprovalRequest {
    ApprovalRequest {
        id,
        principal: "default".into(),
        capsule: "tool-fs".into(),
        action: "fs.write".into(),
        resource: ApprovalResource {
            kind: ResourceKind::FsWrite,
            target: "/w/out.txt".into(),
        },
        detail: String::new(),
        capsule_says: None,
        always,
    }
}

/// The allow-always offer for that write: a token bound to tool-fs.
pub(crate) fn token_offer() -> AlwaysOffer {
    AlwaysOffer::Token {
        pattern: "fs:write:/w/out.txt".into(),
        capsule: "tool-fs".into(),
    }
}
