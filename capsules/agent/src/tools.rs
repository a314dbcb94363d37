//! The tool list the model sees and what comes back from running a tool, as pure functions.

use std::borrow::Cow;
use std::collections::HashSet;

use serde::Deserialize;
use serde_json::value::RawValue;

/// How much of a tool's output a `tool_result` event carries.
pub const EVENT_OUTPUT_MAX: usize = 2048;

/// The tools for the model, in a stable order, and their names.
#[derive(Debug, Default)]
pub struct ToolSet {
    /// `{"name", "description", "input_schema"}` objects as their capsules wrote them.
    pub specs: Vec<Box<RawValue>>,
    pub names: HashSet<String>,
    /// Entries that were left out, and why (for the log).
    pub skipped: Vec<String>,
}

/// Tool names, provider names and session ids each become one topic segment
/// (`tool.v1.execute.<name>`, `llm.v1.complete.<provider>`, `agent.v1.event.<id>`).
pub fn is_segment(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Flattens the `tool.v1.describe` replies (each a JSON array of tool specs) into one list.
/// `replies` are `(source, payload)` pairs; they are ordered by source first so the list is
/// the same from turn to turn (which keeps the provider's prompt cache warm), and the first
/// spec of a name wins.
pub fn collect(mut replies: Vec<(&str, &[u8])>) -> ToolSet {
    #[derive(Deserialize)]
    struct Named<'a> {
        #[serde(borrow)]
        name: Cow<'a, str>,
    }
    replies.sort_by(|a, b| a.0.cmp(b.0));
    let mut set = ToolSet::default();
    for (source, payload) in replies {
        let specs: Vec<Box<RawValue>> = match serde_json::from_slice(payload) {
            Ok(v) => v,
            Err(e) => {
                set.skipped
                    .push(format!("{source}: tool list is not a JSON array: {e}"));
                continue;
            }
        };
        for spec in specs {
            let name = match serde_json::from_str::<Named<'_>>(spec.get()) {
                Ok(n) if spec.get().starts_with('{') => n.name.into_owned(),
                _ => {
                    set.skipped
                        .push(format!("{source}: a tool spec has no name"));
                    continue;
                }
            };
            if !is_segment(&name) {
                set.skipped.push(format!(
                    "{source}: tool name `{name}` is not one topic segment"
                ));
            } else if set.names.contains(&name) {
                set.skipped.push(format!(
                    "{source}: tool `{name}` is already provided by another capsule"
                ));
            } else {
                set.names.insert(name);
                set.specs.push(spec);
            }
        }
    }
    set
}

/// Tool arguments are a JSON object. Providers already turn a bad argument string into
/// `{"_raw": "..."}`; this makes sure of it for whatever else arrives: a JSON string holding
/// an object is unwrapped, null or absent becomes `{}`, anything else goes under `_raw`.
pub fn normalise_arguments(args: Option<Box<RawValue>>) -> Box<RawValue> {
    let raw_obj = |s: &str| -> Box<RawValue> {
        let mut m = serde_json::Map::new();
        m.insert("_raw".to_owned(), serde_json::Value::String(s.to_owned()));
        object(&m)
    };
    let Some(args) = args else {
        return object(&serde_json::Map::new());
    };
    let text = args.get();
    match text.as_bytes().first() {
        Some(b'{') => args,
        Some(b'"') => match serde_json::from_str::<String>(text) {
            Ok(inner) => match serde_json::from_str::<Box<RawValue>>(&inner) {
                Ok(v) if v.get().starts_with('{') => v,
                _ => raw_obj(&inner),
            },
            Err(_) => raw_obj(text),
        },
        _ if text == "null" => object(&serde_json::Map::new()),
        _ => raw_obj(text),
    }
}

fn object(m: &serde_json::Map<String, serde_json::Value>) -> Box<RawValue> {
    // Encoding a map of strings cannot fail.
    serde_json::value::to_raw_value(m).unwrap_or_default()
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub fn prefix(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// What the model is shown of a tool's output: at most `max` bytes, with a note when cut.
pub fn for_model(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return Cow::Borrowed(text);
    }
    let head = prefix(text, max);
    Cow::Owned(format!(
        "{head}\n[output truncated: showed {} of {} bytes]",
        head.len(),
        text.len()
    ))
}

/// The text of a tool's reply: its `output` field, else the reply itself.
pub fn reply_text(reply: &[u8]) -> Cow<'_, str> {
    #[derive(Deserialize)]
    struct Reply<'a> {
        #[serde(borrow)]
        output: Cow<'a, str>,
    }
    match serde_json::from_slice::<Reply<'_>>(reply) {
        Ok(r) if reply.first() == Some(&b'{') => r.output,
        _ => String::from_utf8_lossy(reply),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_replies_are_flattened_deduplicated_and_ordered_by_source() {
        let fs = br#"[{"name":"fs_read","description":"r","input_schema":{"type":"object"}},
                      {"name":"fs_write","description":"w","input_schema":{"type":"object"}}]"#;
        let shell = br#"[{"name":"shell","description":"s","input_schema":{}},
                         {"name":"fs_read","description":"dup","input_schema":{}},
                         {"name":"bad.name","description":"","input_schema":{}},
                         {"description":"nameless"}]"#;
        let set = collect(vec![
            ("capsule:tool-shell", &shell[..]),
            ("capsule:tool-fs", &fs[..]),
            ("capsule:broken", b"not json"),
        ]);
        let names: Vec<String> = set
            .specs
            .iter()
            .map(|s| {
                serde_json::from_str::<serde_json::Value>(s.get()).unwrap()["name"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(names, ["fs_read", "fs_write", "shell"]);
        // The first source in order (tool-fs) keeps fs_read.
        assert!(set.specs[0].get().contains(r#""description":"r""#));
        assert_eq!(set.names.len(), 3);
        assert_eq!(set.skipped.len(), 4, "{:?}", set.skipped);
        assert!(set.skipped.iter().any(|s| s.contains("already provided")));
        assert!(set.skipped.iter().any(|s| s.contains("`bad.name`")));
    }

    #[test]
    fn arguments_always_end_up_an_object() {
        let raw = |s: &str| Some(RawValue::from_string(s.to_owned()).unwrap());
        assert_eq!(normalise_arguments(raw(r#"{"a":1}"#)).get(), r#"{"a":1}"#);
        assert_eq!(normalise_arguments(None).get(), "{}");
        assert_eq!(normalise_arguments(raw("null")).get(), "{}");
        assert_eq!(
            normalise_arguments(raw(r#""{\"p\":\"x\"}""#)).get(),
            r#"{"p":"x"}"#
        );
        assert_eq!(
            normalise_arguments(raw(r#""ls -l""#)).get(),
            r#"{"_raw":"ls -l"}"#
        );
        assert_eq!(
            normalise_arguments(raw("[1,2]")).get(),
            r#"{"_raw":"[1,2]"}"#
        );
    }

    #[test]
    fn output_is_cut_on_character_boundaries() {
        let s = "aé".repeat(1000); // 3000 bytes; every `é` starts at 3k+1
        let p = prefix(&s, EVENT_OUTPUT_MAX);
        assert!(p.len() <= EVENT_OUTPUT_MAX && p.len() >= EVENT_OUTPUT_MAX - 1);
        assert!(s.starts_with(p));
        assert_eq!(prefix("short", 10), "short");

        // Byte 101 is inside an `é`, so the cut falls back to 100.
        let m = for_model(&s, 101);
        assert!(m.starts_with(prefix(&s, 100)));
        assert!(
            m.ends_with("[output truncated: showed 100 of 3000 bytes]"),
            "{m}"
        );
        assert!(matches!(for_model("ok", 100), Cow::Borrowed("ok")));
    }

    #[test]
    fn tool_replies_yield_their_output_or_themselves() {
        assert_eq!(
            reply_text(br#"{"output":"line 1\nline 2"}"#),
            "line 1\nline 2"
        );
        assert_eq!(reply_text(br#"{"text":"HI"}"#), r#"{"text":"HI"}"#);
        assert_eq!(reply_text(b"plain"), "plain");
        assert_eq!(reply_text(b""), "");
    }

    #[test]
    fn tool_names_are_topic_segments() {
        assert!(is_segment("fs_read"));
        assert!(is_segment("http-fetch2"));
        assert!(!is_segment(""));
        assert!(!is_segment("a.b"));
        assert!(!is_segment("a*"));
    }
}
