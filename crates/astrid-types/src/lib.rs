//! Shared vocabulary of Astrid: identifiers, topics, the capsule manifest and the capsule
//! dependency graph. No I/O beyond reading a manifest file; builds for wasm32 too.

pub mod approval;
pub mod distro;
pub mod elicit;
pub mod error;
pub mod graph;
pub mod home;
pub mod ids;
pub mod manifest;
pub mod mcp;
pub mod text;
pub mod topic;
pub mod uplink;
pub mod wire;

pub use error::TypesError;
pub use graph::{boot_order, dependents_of, GraphError};
pub use home::AstridHome;
pub use ids::{ArtifactHash, CapsuleName, FactName, IdError, PrincipalId};
pub use manifest::{
    Capabilities, ComponentRef, EnvDecl, Manifest, ManifestError, Package, PublishRule,
    SubscribeRule, ToolDecl,
};
pub use topic::{
    is_kernel_topic, pattern_covers, pattern_matches, validate_pattern, validate_topic, TopicError,
};
