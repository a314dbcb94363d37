//! One error type for callers that handle every kind of `astrid-types` failure alike.

use crate::graph::GraphError;
use crate::ids::IdError;
use crate::manifest::ManifestError;
use crate::topic::TopicError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TypesError {
    #[error(transparent)]
    Id(#[from] IdError),
    #[error(transparent)]
    Topic(#[from] TopicError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(transparent)]
    Graph(#[from] GraphError),
}
