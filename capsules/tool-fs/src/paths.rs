//! Turning the model's paths into the absolute paths the host expects.
//!
//! The host refuses `..` segments outright, so paths are normalised lexically here; that is
//! only convenience, not a boundary: whatever comes out is still checked by the host against
//! the manifest, the principal's capability tokens and the human.

/// The absolute (or `~/`) form of `path`: absolute and home paths are normalised, relative
/// ones are joined onto the session's workspace first.
pub fn resolve(path: &str, workspace: Option<&str>) -> Result<String, String> {
    if path.trim().is_empty() {
        return Err("the path is empty".to_owned());
    }
    if path.chars().any(char::is_control) {
        return Err(format!("{path:?} contains control characters"));
    }
    if path == "~" {
        return Ok("~/".to_owned());
    }
    if let Some(rest) = path.strip_prefix("~/") {
        return normalise(rest, path).map(|p| format!("~/{p}"));
    }
    // `~user/...` means another account's home in a shell; joining it onto the workspace as
    // a file named `~user` would touch something the model did not mean.
    if path.starts_with('~') {
        return Err(format!(
            "`{path}`: `~user` paths are not supported; use `~/...`, an absolute path or a \
             path relative to the workspace"
        ));
    }
    if let Some(rest) = path.strip_prefix('/') {
        return normalise(rest, path).map(|p| format!("/{p}"));
    }
    let Some(ws) = workspace.filter(|w| !w.is_empty()) else {
        return Err(format!(
            "`{path}` is a relative path and this session has no workspace; give an absolute path"
        ));
    };
    if !(ws.starts_with('/') || ws.starts_with("~/")) {
        return Err(format!(
            "the session workspace `{ws}` is not absolute, so `{path}` cannot be resolved"
        ));
    }
    resolve(&format!("{}/{path}", ws.trim_end_matches('/')), None)
}

/// Resolves `.` and `..` in the `/`-separated `rest`; `original` is for the error message.
fn normalise(rest: &str, original: &str) -> Result<String, String> {
    let mut out: Vec<&str> = Vec::new();
    for seg in rest.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if out.pop().is_none() {
                    return Err(format!("`{original}` goes above its root"));
                }
            }
            s => out.push(s),
        }
    }
    Ok(out.join("/"))
}

/// How to show a resolved path to the model: relative to the workspace when inside it.
pub fn display(abs: &str, workspace: Option<&str>) -> String {
    if let Some(ws) = workspace.map(|w| w.trim_end_matches('/')) {
        if !ws.is_empty() {
            if abs == ws {
                return ".".to_owned();
            }
            if let Some(rel) = abs.strip_prefix(ws).and_then(|r| r.strip_prefix('/')) {
                return rel.to_owned();
            }
        }
    }
    abs.to_owned()
}

/// `parent/name`, without doubling the separator after a root such as `/` or `~/`.
pub fn join(parent: &str, name: &str) -> String {
    if parent.ends_with('/') {
        format!("{parent}{name}")
    } else {
        format!("{parent}/{name}")
    }
}

/// The directory containing `abs`, unless `abs` is a root.
pub fn parent(abs: &str) -> Option<&str> {
    let trimmed = abs.trim_end_matches('/');
    let idx = trimmed.rfind('/')?;
    match &trimmed[..idx] {
        "" => Some("/"),
        "~" => Some("~/"),
        p => Some(p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_join_the_workspace() {
        let ws = Some("/home/u/proj");
        assert_eq!(resolve("a/b.txt", ws).unwrap(), "/home/u/proj/a/b.txt");
        assert_eq!(resolve("./a/../b", ws).unwrap(), "/home/u/proj/b");
        assert_eq!(resolve(".", ws).unwrap(), "/home/u/proj");
        assert_eq!(resolve("../x", ws).unwrap(), "/home/u/x");
        assert_eq!(resolve("a", Some("/w/")).unwrap(), "/w/a");
        assert_eq!(resolve("a", Some("~/w")).unwrap(), "~/w/a");
    }

    #[test]
    fn absolute_and_home_paths_are_normalised() {
        assert_eq!(resolve("/etc//x/./y/", None).unwrap(), "/etc/x/y");
        assert_eq!(resolve("/", None).unwrap(), "/");
        assert_eq!(resolve("~/notes/../a", None).unwrap(), "~/a");
        assert_eq!(resolve("~", None).unwrap(), "~/");
        let e = resolve("/../etc", None).unwrap_err();
        assert!(e.contains("goes above its root"), "{e}");
        let e = resolve("~/../x", None).unwrap_err();
        assert!(e.contains("goes above its root"), "{e}");
    }

    #[test]
    fn other_users_homes_and_empty_paths_are_refused() {
        for bad in ["~root/.ssh/id_rsa", "~other", "", "  ", "a\0b"] {
            assert!(resolve(bad, Some("/ws")).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn relative_without_workspace_is_an_error() {
        for ws in [None, Some("")] {
            let e = resolve("a.txt", ws).unwrap_err();
            assert!(e.contains("no workspace"), "{e}");
        }
        let e = resolve("a.txt", Some("rel/ws")).unwrap_err();
        assert!(e.contains("not absolute"), "{e}");
        assert!(resolve("  ", Some("/w")).unwrap_err().contains("empty"));
        assert!(resolve("a\nb", Some("/w")).unwrap_err().contains("control"));
    }

    #[test]
    fn display_is_workspace_relative_when_inside() {
        let ws = Some("/w/p");
        assert_eq!(display("/w/p/src/a.rs", ws), "src/a.rs");
        assert_eq!(display("/w/p", ws), ".");
        assert_eq!(display("/w/pp/a", ws), "/w/pp/a");
        assert_eq!(display("/etc/x", None), "/etc/x");
    }

    #[test]
    fn join_and_parent() {
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("~/", "a"), "~/a");
        assert_eq!(join("/w", "a"), "/w/a");
        assert_eq!(parent("/w/a/b"), Some("/w/a"));
        assert_eq!(parent("/w"), Some("/"));
        assert_eq!(parent("~/a"), Some("~/"));
        assert_eq!(parent("/"), None);
    }
}
