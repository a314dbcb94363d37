//! The principal's tool list, from the capsules' `tool.v1.describe` replies.

use astrid_types::topic::validate_topic;
use serde_json::{Map, Value};

/// Longest description passed on, in characters; longer ones are cut with a note. A tool's
/// description goes into the MCP host's model prompt, so it is bounded like any input.
pub const MAX_DESCRIPTION: usize = 4096;
/// Largest input schema passed on (serialized bytes); a tool with a larger one is left out.
pub const MAX_SCHEMA_BYTES: usize = 64 * 1024;

/// One tool as an MCP host sees it, and the capsule that answers it.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolDef {
    pub name: String,
    pub description: String,
    pub input_schema: Map<String, Value>,
    /// `capsule:<name>`, the source of the describe reply.
    pub source: String,
}

/// Turns the gathered `(source, reply)` pairs into a tool list sorted by name. A reply that
/// is not the documented shape, a name that is not one topic segment, or an oversized schema
/// drops that tool (logged); two capsules declaring one name keep the first source in order,
/// since the bus would deliver a call to both and the first reply would win.
pub fn parse_describe(replies: &[(String, Vec<u8>)]) -> Vec<ToolDef> {
    let mut sorted: Vec<&(String, Vec<u8>)> = replies.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out: Vec<ToolDef> = Vec::new();
    for (source, bytes) in sorted {
        let list = match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Array(list)) => list,
            _ => {
                tracing::warn!(%source, "tool.v1.describe reply is not a JSON array; ignored");
                continue;
            }
        };
        for item in list {
            match tool_def(source, item) {
                Ok(t) if out.iter().any(|o| o.name == t.name) => {
                    tracing::warn!(%source, tool = %t.name, "tool name declared twice; ignored");
                }
                Ok(t) => out.push(t),
                Err(why) => tracing::warn!(%source, "tool left out: {why}"),
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn tool_def(source: &str, item: Value) -> Result<ToolDef, String> {
    let Value::Object(mut obj) = item else {
        return Err("entry is not an object".into());
    };
    let name = match obj.remove("name") {
        Some(Value::String(n)) => n,
        _ => return Err("entry has no string `name`".into()),
    };
    if name.contains('.') || validate_topic(&format!("tool.v1.execute.{name}")).is_err() {
        return Err(format!("`{name}` is not a single topic segment"));
    }
    let description = match obj.remove("description") {
        Some(Value::String(d)) => cap_description(d),
        _ => String::new(),
    };
    let input_schema = match obj.remove("input_schema") {
        Some(Value::Object(s)) => s,
        None | Some(Value::Null) => {
            let mut s = Map::new();
            s.insert("type".into(), Value::String("object".into()));
            s
        }
        Some(_) => return Err(format!("`{name}`: input_schema is not an object")),
    };
    let size = serde_json::to_vec(&input_schema).map_or(usize::MAX, |v| v.len());
    if size > MAX_SCHEMA_BYTES {
        return Err(format!(
            "`{name}`: input schema of {size} bytes exceeds {MAX_SCHEMA_BYTES}"
        ));
    }
    Ok(ToolDef {
        name,
        description,
        input_schema,
        source: source.to_string(),
    })
}

fn cap_description(d: String) -> String {
    if d.chars().count() <= MAX_DESCRIPTION {
        return d;
    }
    let mut cut: String = d.chars().take(MAX_DESCRIPTION).collect();
    cut.push_str(" […cut]");
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(source: &str, v: Value) -> (String, Vec<u8>) {
        (source.to_string(), serde_json::to_vec(&v).unwrap())
    }

    #[test]
    fn tools_are_collected_sorted_and_first_source_wins() {
        let replies = vec![
            reply(
                "capsule:tool-shell",
                serde_json::json!([{"name": "shell", "description": "run",
                    "input_schema": {"type": "object"}}]),
            ),
            reply(
                "capsule:tool-fs",
                serde_json::json!([
                    {"name": "fs_read", "description": "read", "input_schema": {"type": "object"}},
                    {"name": "shell", "description": "impostor"}
                ]),
            ),
        ];
        let tools = parse_describe(&replies);
        let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["fs_read", "shell"]);
        // `capsule:tool-fs` sorts first, so its `shell` is the one kept.
        assert_eq!(tools[1].source, "capsule:tool-fs");
        assert_eq!(tools[1].description, "impostor");
        assert_eq!(tools[1].input_schema["type"], "object");
    }

    #[test]
    fn malformed_entries_and_names_are_dropped() {
        let replies = vec![
            reply("capsule:a", serde_json::json!({"not": "a list"})),
            reply(
                "capsule:b",
                serde_json::json!([
                    {"name": "a.b"}, {"name": "x*"}, {"description": "no name"},
                    {"name": "bad_schema", "input_schema": 3},
                    {"name": "ok"}
                ]),
            ),
        ];
        let tools = parse_describe(&replies);
        assert_eq!(tools.len(), 1);
        assert_eq!(tools[0].name, "ok");
    }

    #[test]
    fn long_descriptions_are_cut_and_huge_schemas_refused() {
        let long = "é".repeat(MAX_DESCRIPTION + 10);
        let big: Map<String, Value> = (0..5000)
            .map(|i| (format!("property_{i}"), Value::String("x".repeat(10))))
            .collect();
        let replies = vec![reply(
            "capsule:c",
            serde_json::json!([
                {"name": "long", "description": long},
                {"name": "big", "input_schema": big}
            ]),
        )];
        let tools = parse_describe(&replies);
        assert_eq!(tools.len(), 1);
        assert!(tools[0].description.ends_with(" […cut]"));
        assert_eq!(
            tools[0].description.chars().count(),
            MAX_DESCRIPTION + " […cut]".chars().count()
        );
    }
}
