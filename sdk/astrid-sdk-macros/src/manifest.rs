//! Reading the capsule's `Capsule.toml` at compile time, so the `tool.v1.describe` reply is
//! exactly what the manifest declares and cannot drift from it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The handler every capsule with `[[tool]]`s answers `tool.v1.describe` under.
pub const DESCRIBE_HANDLER: &str = "astrid.describe-tools";

/// One `[[tool]]` entry, in the shape the describe reply uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolEntry {
    pub name: String,
    pub description: String,
    pub input_schema: serde_json::Value,
}

/// The part of the manifest the macro needs; everything else is the host's business and is
/// ignored here (the host validates the whole file when packaging and installing).
#[derive(Deserialize)]
struct Partial {
    #[serde(default)]
    tool: Vec<ToolEntry>,
    #[serde(default)]
    subscribe: std::collections::BTreeMap<String, Subscription>,
}

/// A `[subscribe]` entry: only where it routes matters here.
#[derive(Deserialize)]
struct Subscription {
    #[serde(default)]
    handler: Option<String>,
}

/// A manifest found for the crate being compiled.
pub struct Found {
    /// Absolute path, so the generated `include_bytes!` makes cargo rebuild when it changes.
    pub path: PathBuf,
    pub tools: Vec<ToolEntry>,
    /// `[subscribe]` entries with a handler, as (topic pattern, handler).
    pub routes: Vec<(String, String)>,
}

/// Where to look: an explicit path (relative to the crate root) must exist; the default
/// `Capsule.toml` next to `Cargo.toml` may be absent, which means "no manifest tools".
pub fn locate(explicit: Option<&str>) -> Result<Option<Found>, String> {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .ok_or("CARGO_MANIFEST_DIR is not set; build the capsule with cargo")?;
    let path = match explicit {
        Some(p) => dir.join(p),
        None => {
            let p = dir.join("Capsule.toml");
            if !p.is_file() {
                return Ok(None);
            }
            p
        }
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let tools = parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let routes = routes(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Some(Found {
        path,
        tools,
        routes,
    }))
}

/// The `[[tool]]` entries of a manifest.
pub fn parse(text: &str) -> Result<Vec<ToolEntry>, String> {
    let partial: Partial = toml::from_str(text).map_err(|e| e.to_string().trim().to_owned())?;
    for t in &partial.tool {
        if !t.input_schema.is_object() {
            return Err(format!(
                "tool `{}`: input_schema must be a table (a JSON schema object)",
                t.name
            ));
        }
    }
    Ok(partial.tool)
}

/// The `[subscribe]` entries that route to a handler, as (topic pattern, handler).
pub fn routes(text: &str) -> Result<Vec<(String, String)>, String> {
    let partial: Partial = toml::from_str(text).map_err(|e| e.to_string().trim().to_owned())?;
    Ok(partial
        .subscribe
        .into_iter()
        .filter_map(|(topic, s)| s.handler.map(|h| (topic, h)))
        .collect())
}

/// The reply to `tool.v1.describe`.
pub fn describe_json(tools: &[ToolEntry]) -> String {
    serde_json::to_string(tools).expect("JSON values always serialize")
}

/// `path` as a string for `include_bytes!`, which needs valid UTF-8.
pub fn path_str(path: &Path) -> Result<&str, String> {
    path.to_str()
        .ok_or_else(|| format!("{} is not a UTF-8 path", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tools_are_read_and_other_tables_ignored() {
        let tools = parse(
            r#"
            [package]
            name = "x"
            [capabilities]
            fs_read = ["/"]
            [[tool]]
            name = "a"
            description = "does a"
            input_schema = { type = "object", properties = { p = { type = "string" } }, required = ["p"] }
            [[tool]]
            name = "b"
            description = "does b"
            [tool.input_schema]
            type = "object"
            "#,
        )
        .unwrap();
        assert_eq!(tools.len(), 2);
        assert_eq!(tools[0].input_schema["required"][0], "p");
        assert_eq!(
            describe_json(&tools[1..]),
            r#"[{"name":"b","description":"does b","input_schema":{"type":"object"}}]"#
        );
    }

    #[test]
    fn routes_are_the_subscriptions_with_a_handler() {
        let routes = routes(
            r#"
            [subscribe]
            "hook.v1.git.post-commit" = { handler = "on_commit" }
            "hello.v1.feed.*" = {}
            "#,
        )
        .unwrap();
        assert_eq!(
            routes,
            vec![(
                "hook.v1.git.post-commit".to_string(),
                "on_commit".to_string()
            )]
        );
    }

    #[test]
    fn no_tools_is_an_empty_list() {
        assert!(parse("[package]\nname = \"x\"\n").unwrap().is_empty());
    }

    #[test]
    fn malformed_manifests_say_what_is_wrong() {
        let e = parse("[[tool]]\nname = \"a\"\n").unwrap_err();
        assert!(e.contains("description"), "{e}");
        let e = parse("[[tool]\n").unwrap_err();
        assert!(!e.is_empty());
        let e =
            parse("[[tool]]\nname = \"a\"\ndescription = \"d\"\ninput_schema = 3\n").unwrap_err();
        assert!(e.contains("tool `a`: input_schema must be a table"), "{e}");
    }
}
