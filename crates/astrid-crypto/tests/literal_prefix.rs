//! The literal part of a filesystem pattern: what a credential grant must name.

use std::path::PathBuf;

use astrid_crypto::ResourcePattern;

fn prefix(p: &str) -> Option<PathBuf> {
    ResourcePattern::parse(p).unwrap().fs_literal_prefix()
}

#[test]
fn the_literal_prefix_stops_at_the_first_wildcard() {
    assert_eq!(
        prefix("fs:read:/h/.ssh/id_ed25519"),
        Some("/h/.ssh/id_ed25519".into())
    );
    assert_eq!(prefix("fs:write:/h/.ssh/**"), Some("/h/.ssh".into()));
    assert_eq!(prefix("fs:read:/h/*/config"), Some("/h".into()));
    assert_eq!(prefix("fs:read:/**"), Some("/".into()));
    assert_eq!(prefix("process:exec:sh"), None);
}
