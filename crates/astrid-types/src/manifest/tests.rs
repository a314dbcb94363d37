use std::path::Path;

use super::*;

const ORIGIN: &str = "caps/echo/Capsule.toml";

const BASE: &str = "[package]\nname = \"echo\"\nversion = \"0.1.0\"\n\
                    [[component]]\nfile = \"echo.wasm\"\n";

fn full_text() -> String {
    let hash = ArtifactHash::of(b"echo");
    format!(
        r#"
[package]
name = "echo"
version = "0.1.0"
description = "Echoes requests"
background = true

[[component]]
file = "echo.wasm"
hash = "{hash}"

[imports]
"astrid:ipc" = "^1.0"
"acme:counter" = "^1.0"

[exports]
"acme:echo" = "1.2.0"

[publish]
"echo.v1.out" = {{}}
"echo.v1.events.*" = {{}}

[subscribe]
"echo.v1.request" = {{ handler = "echo" }}
"echo.v1.dynamic.*" = {{}}

[[tool]]
name = "read_file"
description = "Read a file"
input_schema = {{ type = "object", properties = {{ path = {{ type = "string" }} }}, required = ["path"] }}

[[tool]]
name = "count"
description = "Count things"
input_schema = {{ type = "object", properties = {{ n = {{ type = "integer", maximum = 10, multipleOf = 0.5 }} }} }}

[capabilities]
fs_read = ["~/", "/srv/data"]
fs_write = ["~/out"]
kv = true
net = ["api.example.com:443", "[::1]:8080"]
process = ["git", "/usr/bin/env"]

[env]
GREETING = {{ default = "hello", description = "How to greet" }}
API_KEY = {{ secret = true, description = "Upstream key" }}
"#
    )
}

fn full() -> Manifest {
    Manifest::parse(&full_text(), Path::new(ORIGIN)).unwrap()
}

fn parse(text: &str) -> Result<Manifest, ManifestError> {
    Manifest::parse(text, Path::new(ORIGIN))
}

/// The error for BASE plus `extra`, as the user would see it.
fn err(extra: &str) -> String {
    err_text(&format!("{BASE}{extra}"))
}

fn err_text(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

fn expect(key: &str, reason: &str) -> String {
    format!("{ORIGIN}: `{key}`: {reason}")
}

#[test]
fn parses_the_full_example() {
    let m = full();
    assert_eq!(m.name().as_str(), "echo");
    assert_eq!(m.package.version, Version::new(0, 1, 0));
    assert_eq!(m.package.description, "Echoes requests");
    assert!(m.package.background);
    assert_eq!(m.components.len(), 1);
    assert_eq!(m.components[0].file, "echo.wasm");
    assert_eq!(m.components[0].hash, Some(ArtifactHash::of(b"echo")));
    assert_eq!(
        m.imports["acme:counter"],
        VersionReq::parse("^1.0").unwrap()
    );
    assert_eq!(m.exports["acme:echo"], Version::new(1, 2, 0));
    assert_eq!(m.publish.len(), 2);
    assert_eq!(
        m.subscribe["echo.v1.request"].handler.as_deref(),
        Some("echo")
    );
    assert_eq!(m.subscribe["echo.v1.dynamic.*"].handler, None);
    assert_eq!(m.tools[0].name, "read_file");
    assert_eq!(
        m.tools[0].input_schema,
        serde_json::json!({
            "type": "object",
            "properties": { "path": { "type": "string" } },
            "required": ["path"]
        })
    );
    let caps = &m.capabilities;
    assert_eq!(caps.fs_read, ["~/", "/srv/data"]);
    assert_eq!(caps.fs_write, ["~/out"]);
    assert!(caps.kv);
    assert_eq!(caps.net, ["api.example.com:443", "[::1]:8080"]);
    assert_eq!(caps.process, ["git", "/usr/bin/env"]);
    assert_eq!(m.env["GREETING"].default.as_deref(), Some("hello"));
    assert!(!m.env["GREETING"].secret);
    assert!(m.env["API_KEY"].secret);
    assert_eq!(m.env["API_KEY"].description, "Upstream key");
}

#[test]
fn optional_tables_default_to_empty() {
    let m = parse(BASE).unwrap();
    assert_eq!(m.package.description, "");
    assert!(!m.package.background);
    assert_eq!(m.components[0].hash, None);
    assert!(m.imports.is_empty() && m.exports.is_empty());
    assert!(m.publish.is_empty() && m.subscribe.is_empty() && m.tools.is_empty());
    assert_eq!(m.capabilities, Capabilities::default());
    assert!(m.env.is_empty());
    assert!(m.handlers().is_empty());
    assert!(!m.may_publish("echo.v1.out"));
    assert!(!m.may_subscribe("*"));
}

#[test]
fn toml_round_trip() {
    for m in [full(), parse(BASE).unwrap()] {
        let text = m.to_toml_string();
        assert_eq!(parse(&text).unwrap(), m, "{text}");
    }
}

#[test]
fn to_toml_drops_json_nulls_it_cannot_write() {
    let mut m = full();
    m.tools[0].input_schema = serde_json::json!({
        "type": "object", "default": null, "enum": [1, null, {"x": null}]
    });
    let back = parse(&m.to_toml_string()).unwrap();
    assert_eq!(
        back.tools[0].input_schema,
        serde_json::json!({ "type": "object", "enum": [1, {}] })
    );
}

#[test]
fn json_form_is_validated_by_validate() {
    let m = full();
    let json = serde_json::to_string(&m).unwrap();
    let mut again: Manifest = serde_json::from_str(&json).unwrap();
    assert_eq!(again, m);
    again.publish.insert("a*b".into(), PublishRule::default());
    assert_eq!(
        again.validate(Path::new("x")).unwrap_err().to_string(),
        "x: `publish.\"a*b\"`: invalid topic pattern `a*b`: `*` may only appear once, at the end"
    );
}

#[test]
fn handlers_include_tools() {
    assert_eq!(
        full().handlers(),
        vec![
            ("echo.v1.request".to_owned(), "echo".to_owned()),
            (
                "tool.v1.execute.read_file".to_owned(),
                "read_file".to_owned()
            ),
            ("tool.v1.execute.count".to_owned(), "count".to_owned()),
            (
                "tool.v1.describe".to_owned(),
                "astrid.describe-tools".to_owned()
            ),
        ]
    );
}

#[test]
fn publish_acl() {
    let m = full();
    assert!(m.may_publish("echo.v1.out"));
    assert!(m.may_publish("echo.v1.events.started"));
    assert!(!m.may_publish("echo.v1.events"));
    assert!(!m.may_publish("echo.v1.outx"));
    assert!(!m.may_publish("echo.v1.request"));
    assert!(!m.may_publish("echo.v1.events..x"));

    let open = parse(&format!("{BASE}[publish]\n\"a*\" = {{}}\n\"_*\" = {{}}\n")).unwrap();
    assert!(open.may_publish("anything.at_all"));
    assert!(open.may_publish("astrid"));
    assert!(open.may_publish("astridx.y"));
    assert!(!open.may_publish("astrid.v1.capsules_loaded"));
    assert!(!open.may_publish("_reply.42"));
}

#[test]
fn tool_invocation_needs_an_explicit_pattern() {
    let agent = parse(&format!(
        "{BASE}[publish]\n\"tool.v1.execute.*\" = {{}}\n\"llm.v1.*\" = {{}}\n"
    ))
    .unwrap();
    assert!(agent.may_invoke_tool("tool.v1.execute.shell"));
    assert_eq!(
        agent.tool_patterns().collect::<Vec<_>>(),
        ["tool.v1.execute.*"]
    );
    let one = parse(&format!(
        "{BASE}[publish]\n\"tool.v1.execute.fs_*\" = {{}}\n"
    ))
    .unwrap();
    assert!(one.may_invoke_tool("tool.v1.execute.fs_read"));
    assert!(!one.may_invoke_tool("tool.v1.execute.shell"));
    // Publishing somewhere else grants no tool at all.
    assert!(!full().may_invoke_tool("tool.v1.execute.shell"));
    assert_eq!(full().tool_patterns().count(), 0);

    for implicit in ["*", "t*", "tool.*", "tool.v1.*", "tool.v1.execute*"] {
        assert!(covers_tool_topics_implicitly(implicit), "{implicit}");
        assert!(!names_tool_topics(implicit), "{implicit}");
    }
    for fine in [
        "tool.v1.describe",
        "tool.v1.execute.*",
        "tool.v1.execute.x",
        "tools*",
        "a.*",
    ] {
        assert!(!covers_tool_topics_implicitly(fine), "{fine}");
    }
    assert!(is_tool_topic("tool.v1.execute.shell"));
    assert!(!is_tool_topic("tool.v1.describe"));
}

#[test]
fn subscribe_acl() {
    let m = full();
    assert!(m.may_subscribe("echo.v1.request"));
    assert!(m.may_subscribe("echo.v1.dynamic.*"));
    assert!(m.may_subscribe("echo.v1.dynamic.a.*"));
    assert!(m.may_subscribe("echo.v1.dynamic.thing"));
    assert!(!m.may_subscribe("echo.v1.*"));
    assert!(!m.may_subscribe("echo.v1.request*"));
    assert!(!m.may_subscribe("echo.v1.out"));
    assert!(m.may_subscribe("tool.v1.execute.read_file"));
    assert!(!m.may_subscribe("tool.v1.execute.*"));
    assert!(!m.may_subscribe("tool.v1.execute.other"));
    assert!(!m.may_subscribe("echo.v1.dynamic.*.x"));
}

#[test]
fn require_hashes() {
    let origin = Path::new(ORIGIN);
    assert_eq!(full().require_hashes(origin), Ok(()));
    let err = parse(BASE).unwrap().require_hashes(origin).unwrap_err();
    assert_eq!(err.key, "component[0].hash");
    assert_eq!(
        err.to_string(),
        expect(
            "component[0].hash",
            "missing; installation requires a hash (astrid-build fills it in)"
        )
    );
}

#[test]
fn load_reads_the_file() {
    let dir = std::env::temp_dir().join(format!("astrid-types-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("Capsule.toml");
    std::fs::write(&path, full_text()).unwrap();
    let loaded = Manifest::load(&path);
    let bad_path = dir.join("Bad.toml");
    std::fs::write(&bad_path, format!("{BASE}[publish]\n\"a..b\" = {{}}\n")).unwrap();
    let bad = Manifest::load(&bad_path);
    std::fs::remove_dir_all(&dir).unwrap();

    assert_eq!(loaded.unwrap(), full());
    let bad = bad.unwrap_err();
    assert_eq!(bad.file, bad_path);
    assert_eq!(bad.key, "publish.\"a..b\"");

    let missing = Manifest::load(dir.join("nope.toml")).unwrap_err();
    assert_eq!(missing.key, "");
    assert!(
        missing.reason.starts_with("cannot read: "),
        "{}",
        missing.reason
    );
    let shown = missing.to_string();
    assert!(
        shown.starts_with(&format!(
            "{}: cannot read: ",
            dir.join("nope.toml").display()
        )),
        "{shown}"
    );
}

#[test]
fn error_display_format() {
    let e = ManifestError::new(Path::new("a/Capsule.toml"), "tool[2].input_schema", "bad");
    assert_eq!(e.to_string(), "a/Capsule.toml: `tool[2].input_schema`: bad");
    let e = ManifestError::new(Path::new("a/Capsule.toml"), "", "cannot read: x");
    assert_eq!(e.to_string(), "a/Capsule.toml: cannot read: x");
}

#[test]
fn key_segments_are_quoted_when_needed() {
    assert_eq!(key_segment("fs_read"), "fs_read");
    assert_eq!(key_segment("A-b_9"), "A-b_9");
    assert_eq!(key_segment("echo.v1.out"), "\"echo.v1.out\"");
    assert_eq!(key_segment(""), "\"\"");
    assert_eq!(key_segment("a\"b\\c"), "\"a\\\"b\\\\c\"");
    assert_eq!(key_segment("a\nb"), "\"a\\u000Ab\"");
}

mod errors;

#[test]
fn fs_roots_may_be_symbolic() {
    let m = parse(&format!(
        "{BASE}[capabilities]\nfs_read = [\"$user_home\", \"$user_home/docs\", \"$granted\"]\n"
    ))
    .unwrap();
    assert_eq!(
        m.capabilities.fs_read,
        ["$user_home", "$user_home/docs", "$granted"]
    );
    for bad in ["$granted/x", "$user_homes", "$home", "$user_home/../x"] {
        let e = err(&format!("[capabilities]\nfs_read = [\"{bad}\"]\n"));
        assert!(e.contains("fs_read"), "{bad}: {e}");
    }
}
