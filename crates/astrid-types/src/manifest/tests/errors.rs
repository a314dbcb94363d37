//! Every manifest rule, with the exact message an author sees.

use super::{err, err_text, expect, key_segment, BASE};

const PKG_ONLY: &str = "[package]\nname = \"echo\"\nversion = \"0.1.0\"\n";

#[test]
fn toml_syntax_errors_name_the_key() {
    let text = "[package]\nname = \"echo\nversion = \"0.1.0\"\n";
    let shown = err_text(text);
    assert!(
        shown.starts_with("caps/echo/Capsule.toml: `package.name`: "),
        "{shown}"
    );
    assert_eq!(
        err_text("[package]\nname = \"a\"\nname = \"b\"\n"),
        expect("package.name", "duplicate key")
    );
    let shown = err_text(&format!("{BASE}[[tool]]\nname = \n"));
    assert!(
        shown.starts_with("caps/echo/Capsule.toml: `tool[0].name`: "),
        "{shown}"
    );
}

#[test]
fn package_errors() {
    assert_eq!(
        err_text("[package]\nname = \"Echo\"\nversion = \"0.1.0\"\n"),
        expect(
            "package.name",
            "invalid capsule name `Echo`: must be 1-64 characters of a-z, 0-9 and `-`, starting with a letter"
        )
    );
    assert_eq!(
        err_text("[package]\nname = \"echo\"\nversion = \"1.0\"\n"),
        expect(
            "package.version",
            "unexpected end of input while parsing minor version number"
        )
    );
    assert_eq!(
        err_text("[package]\nname = \"echo\"\n"),
        expect("package.version", "missing field `version`")
    );
    assert_eq!(err_text(""), expect("package", "missing field `package`"));
    assert_eq!(
        err_text(&format!("{PKG_ONLY}bogus = 1\n")),
        expect(
            "package.bogus",
            "unknown field `bogus`, expected one of `name`, `version`, `description`, `background`"
        )
    );
    assert_eq!(
        err_text(&format!("{PKG_ONLY}background = \"yes\"\n")),
        expect(
            "package.background",
            "invalid type: string \"yes\", expected a boolean"
        )
    );
    assert_eq!(
        err("[hooks]\nmodels = {}\n"),
        expect(
            "hooks",
            "unknown field `hooks`, expected one of `package`, `component`, `imports`, `exports`, `publish`, `subscribe`, `tool`, `capabilities`, `env`, `secret`, `command`, `limits`"
        )
    );
}

#[test]
fn component_errors() {
    assert_eq!(
        err_text(PKG_ONLY),
        expect("component", "at least one [[component]] is required")
    );
    assert_eq!(
        err("[[component]]\nfile = \"b.wasm\"\n"),
        expect(
            "component[1]",
            "exactly one [[component]] is supported, found 2"
        )
    );
    assert_eq!(
        err("[[component]]\nfiles = \"b.wasm\"\n"),
        expect(
            "component[1].files",
            "unknown field `files`, expected `file` or `hash`"
        )
    );
    assert_eq!(
        err_text(&format!("{PKG_ONLY}[[component]]\nhash = \"blake3:00\"\nfile = \"a\"\n")),
        expect(
            "component[0].hash",
            "invalid artifact hash `blake3:00`: expected `blake3:` followed by 64 lowercase hex digits"
        )
    );
    assert_eq!(
        err_text(&format!("{PKG_ONLY}[[component]]\n")),
        expect("component[0].file", "missing field `file`")
    );
    for (file, reason) in [
        ("", "must not be empty"),
        (
            "../echo.wasm",
            "must be a file name next to Capsule.toml, without `/`",
        ),
        (
            "sub/echo.wasm",
            "must be a file name next to Capsule.toml, without `/`",
        ),
        (
            "sub\\\\echo.wasm",
            "must be a file name next to Capsule.toml, without `/`",
        ),
        ("..", "must be a file name, not `.` or `..`"),
        (".", "must be a file name, not `.` or `..`"),
        ("a\\tb", "must not contain control characters"),
    ] {
        let text = format!("{PKG_ONLY}[[component]]\nfile = \"{file}\"\n");
        assert_eq!(
            err_text(&text),
            expect("component[0].file", reason),
            "{file}"
        );
    }
}

#[test]
fn interface_errors() {
    let bad_name = |n: &str| {
        format!("invalid interface name `{n}`: expected `namespace:name` using a-z, 0-9 and `-`")
    };
    for name in [
        "Acme:x", "acme", "acme:", ":x", "acme:x:y", "acme:x/y", "acme:x@1",
    ] {
        assert_eq!(
            err(&format!("[imports]\n\"{name}\" = \"^1\"\n")),
            expect(&format!("imports.{}", key_segment(name)), &bad_name(name)),
        );
        assert_eq!(
            err(&format!("[exports]\n\"{name}\" = \"1.0.0\"\n")),
            expect(&format!("exports.{}", key_segment(name)), &bad_name(name)),
        );
    }
    assert_eq!(
        err("[exports]\n\"astrid:fs\" = \"1.0.0\"\n"),
        expect(
            "exports.\"astrid:fs\"",
            "`astrid:` interfaces are provided by the kernel and cannot be exported"
        )
    );
    assert_eq!(
        err("[imports]\n\"acme:x\" = \"^^1\"\n"),
        expect(
            "imports.\"acme:x\"",
            "unexpected character '^' while parsing major version number"
        )
    );
    assert_eq!(
        err("[exports]\n\"acme:x\" = \"^1\"\n"),
        expect(
            "exports.\"acme:x\"",
            "unexpected character '^' while parsing major version number"
        )
    );
}

#[test]
fn publish_errors() {
    assert_eq!(
        err("[publish]\n\"foo*bar\" = {}\n"),
        expect(
            "publish.\"foo*bar\"",
            "invalid topic pattern `foo*bar`: `*` may only appear once, at the end"
        )
    );
    for pattern in ["astrid.v1.x", "astrid.*", "_reply.*", "_reply.1"] {
        assert_eq!(
            err(&format!("[publish]\n\"{pattern}\" = {{}}\n")),
            expect(
                &format!("publish.\"{pattern}\""),
                "topics starting with `astrid.` or `_reply.` are reserved for the kernel"
            ),
        );
    }
    for pattern in ["*", "t*", "tool.*", "tool.v1.*", "tool.v1.execute*"] {
        assert_eq!(
            err(&format!("[publish]\n\"{pattern}\" = {{}}\n")),
            expect(
                &format!("publish.\"{pattern}\""),
                &format!(
                    "`{pattern}` would cover the tool-call topics `tool.v1.execute.*` without naming them; \
                     a capsule that invokes tools must name them explicitly \
                     (`\"tool.v1.execute.<name>\" = {{}}` or `\"tool.v1.execute.*\" = {{}}`), \
                     and this pattern must be narrowed to the topics the capsule really publishes"
                )
            ),
        );
    }
    assert_eq!(
        err("[publish]\n\"a.b\" = 1\n"),
        expect(
            "publish.\"a.b\"",
            "invalid type: integer `1`, expected struct PublishRule"
        )
    );
    assert_eq!(
        err("[publish]\n\"a.b\" = { x = 1 }\n"),
        expect(
            "publish.\"a.b\".x",
            "unknown field `x`, there are no fields"
        )
    );
}

#[test]
fn subscribe_errors() {
    assert_eq!(
        err("[subscribe]\n\"foo*bar\" = { handler = \"h\" }\n"),
        expect(
            "subscribe.\"foo*bar\"",
            "invalid topic pattern `foo*bar`: `*` may only appear once, at the end"
        )
    );
    assert_eq!(
        err("[subscribe]\n\"a.b\" = { handler = 3 }\n"),
        expect(
            "subscribe.\"a.b\".handler",
            "invalid type: integer `3`, expected a string"
        )
    );
    assert_eq!(
        err("[subscribe]\n\"a.b\" = { handlr = \"h\" }\n"),
        expect(
            "subscribe.\"a.b\".handlr",
            "unknown field `handlr`, expected `handler`"
        )
    );
    for handler in ["", "Echo", "on event", "9x", &"h".repeat(65)] {
        assert_eq!(
            err(&format!("[subscribe]\n\"a.b\" = {{ handler = \"{handler}\" }}\n")),
            expect(
                "subscribe.\"a.b\".handler",
                &format!("invalid handler name `{handler}`: must be 1-64 characters of a-z, 0-9, `_` and `-`, starting with a letter")
            ),
        );
    }
    // Subscribing to the kernel's own topics is allowed; publishing is not.
    assert!(super::parse(&format!(
        "{BASE}[subscribe]\n\"astrid.*\" = {{ handler = \"on-boot\" }}\n"
    ))
    .is_ok());
}

const TOOL: &str =
    "[[tool]]\nname = \"read_file\"\ndescription = \"Read\"\ninput_schema = { type = \"object\" }\n";

#[test]
fn tool_errors() {
    assert_eq!(
        err(&format!(
            "{TOOL}[subscribe]\n\"tool.v1.execute.read_file\" = {{ handler = \"other\" }}\n"
        )),
        expect(
            "subscribe.\"tool.v1.execute.read_file\".handler",
            "`tool.v1.execute.read_file` matches `tool.v1.execute.read_file`, which tool `read_file` already handles"
        )
    );
    assert_eq!(
        err(&format!(
            "{TOOL}[subscribe]\n\"tool.*\" = {{ handler = \"all\" }}\n"
        )),
        expect(
            "subscribe.\"tool.*\"",
            "`tool.*` would receive tool calls (`tool.v1.execute.*`) without naming them; declare tools in [[tool]], or name `tool.v1.execute.…` with a handler"
        )
    );
    // Neither a wildcard reaching tool calls nor a passive watch of others' tool calls.
    for (pattern, handler) in [("*", " handler = \"all\" "), ("tool.v1.*", "")] {
        let e = err(&format!("[subscribe]\n\"{pattern}\" = {{{handler}}}\n"));
        assert!(e.contains("without naming them"), "{pattern}: {e}");
    }
    assert!(err(&format!(
        "{TOOL}[subscribe]\n\"tool.v1.execute.*\" = {{}}\n"
    ))
    .contains("watch other capsules' tool calls"));
    // A dispatcher without [[tool]]s of its own may handle every tool topic.
    assert!(super::parse(&format!(
        "{BASE}[subscribe]\n\"tool.v1.execute.*\" = {{ handler = \"all\" }}\n"
    ))
    .is_ok());
    // Without a handler it only restates the implied permission.
    assert!(super::parse(&format!(
        "{BASE}{TOOL}[subscribe]\n\"tool.v1.execute.read_file\" = {{}}\n"
    ))
    .is_ok());

    for name in ["ReadFile", "read-file", "1x", "", &"t".repeat(65)] {
        assert_eq!(
            err(&TOOL.replace("read_file", name)),
            expect(
                "tool[0].name",
                &format!("invalid tool name `{name}`: must be 1-64 characters of a-z, 0-9 and `_`, starting with a letter")
            ),
        );
    }
    assert_eq!(
        err(&format!(
            "{TOOL}{}{TOOL}",
            TOOL.replace("read_file", "other")
        )),
        expect(
            "tool[2].name",
            "duplicate tool name `read_file` (first declared in tool[0])"
        )
    );
    assert_eq!(
        err(&TOOL.replace("\"Read\"", "\"  \"")),
        expect("tool[0].description", "must not be empty")
    );
    for schema in [
        "{ type = \"string\" }",
        "\"object\"",
        "[\"object\"]",
        "{ properties = {} }",
    ] {
        assert_eq!(
            err(&TOOL.replace("{ type = \"object\" }", schema)),
            expect(
                "tool[0].input_schema",
                "must be a JSON schema table with `type = \"object\"`"
            ),
            "{schema}"
        );
    }
    assert_eq!(
        err(&TOOL.replace(
            "{ type = \"object\" }",
            "{ type = \"object\", default = 1979-05-27 }"
        )),
        expect(
            "tool[0].input_schema",
            "TOML datetimes have no JSON form; write them as strings"
        )
    );
    assert_eq!(
        err(&format!(
            "{TOOL}[[tool]]\ndescription = \"x\"\ninput_schema = {{ type = \"object\" }}\n"
        )),
        expect("tool[1].name", "missing field `name`")
    );
    assert_eq!(
        err(&TOOL.replace("description", "summary")),
        expect(
            "tool[0].summary",
            "unknown field `summary`, expected one of `name`, `description`, `input_schema`"
        )
    );
}

/// Why an fs root is not one.
const ROOTERR: &str =
    "must be `~/`, `~/<path>`, an absolute path, `$user_home[/<path>]` or `$granted`";

fn cap_err(field: &str, value: &str) -> String {
    err(&format!("[capabilities]\n{field} = [\"{value}\"]\n"))
}

#[test]
fn capability_errors() {
    for field in ["fs_read", "fs_write"] {
        for (value, reason) in [
            ("data", ROOTERR),
            ("~", ROOTERR),
            ("~bob/x", ROOTERR),
            ("", ROOTERR),
            ("~/a/../b", "must not contain `..`"),
            ("/..", "must not contain `..`"),
            (
                "/srv//x",
                "must not contain empty segments (`//` or a trailing `/`)",
            ),
            (
                "/srv/x/",
                "must not contain empty segments (`//` or a trailing `/`)",
            ),
            (
                "~//x",
                "must not contain empty segments (`//` or a trailing `/`)",
            ),
            ("/./x", "must not contain `.` segments"),
        ] {
            assert_eq!(
                cap_err(field, value),
                expect(
                    &format!("capabilities.{field}[0]"),
                    &format!("`{value}` {reason}")
                ),
            );
        }
    }
    assert_eq!(
        err("[capabilities]\nfs_read = [\"/ok\", 3]\n"),
        expect(
            "capabilities.fs_read[1]",
            "invalid type: integer `3`, expected a string"
        )
    );
    assert_eq!(
        err("[capabilities]\nfs_read = [\"/ok\", \"rel\"]\n"),
        expect("capabilities.fs_read[1]", &format!("`rel` {ROOTERR}"))
    );
    for (value, reason) in [
        ("api.example.com", "must be `host:port`"),
        (":443", "has an empty host"),
        (
            "::1:443",
            "must write an IPv6 host in brackets, e.g. `[::1]:443`",
        ),
        (
            "a b:1",
            "has a host containing whitespace, `/`, `@`, `?` or `#`",
        ),
        (
            "u@h:1",
            "has a host containing whitespace, `/`, `@`, `?` or `#`",
        ),
        ("h:0", "has a port outside 1-65535"),
        ("h:65536", "has a port outside 1-65535"),
        ("h:+1", "has a port outside 1-65535"),
        ("h:", "has a port outside 1-65535"),
        ("h:https", "has a port outside 1-65535"),
    ] {
        assert_eq!(
            cap_err("net", value),
            expect("capabilities.net[0]", &format!("`{value}` {reason}")),
        );
    }
    for value in ["Display", "display-name", "", "*"] {
        assert_eq!(
            cap_err("identity", value),
            expect(
                "capabilities.identity[0]",
                &format!(
                    "`{value}` is not a profile fact name (1-64 characters of a-z, 0-9 and `_`, \
                     starting with a letter)"
                )
            ),
        );
    }
    assert!(super::parse(&format!(
        "{BASE}[capabilities]\nnet = [\"h:1\", \"h:65535\"]\n"
    ))
    .is_ok());
    for (value, reason) in [
        ("", "must not be empty"),
        (
            "git status",
            "must not contain whitespace or control characters",
        ),
        ("bin/git", "must be a program name or an absolute path"),
        ("/", "must be a program name or an absolute path"),
        ("..", "must be a program name or an absolute path"),
        ("/usr/../git", "must not contain `..`"),
    ] {
        assert_eq!(
            cap_err("process", value),
            expect("capabilities.process[0]", &format!("`{value}` {reason}")),
        );
    }
    assert!(super::parse(&format!(
        "{BASE}[capabilities]\nnet = [\"api.example.com:443\"]\n\
         process_net = [\"api.example.com:443\", \"localhost:8080\", \"[::1]:5432\"]\n"
    ))
    .is_ok());
    let elsewhere = "must be a host name (labels of a-z, 0-9 and `-`) or a loopback address: \
                     an address elsewhere cannot be routed into the sandbox";
    for (value, reason) in [
        ("api.example.com", "must be `host:port`"),
        (
            "api.example.com:*",
            "must name one port: the subprocess's route listens on it",
        ),
        ("10.0.0.5:80", elsewhere),
        ("x_y.example.com:443", elsewhere),
    ] {
        assert_eq!(
            err(&format!(
                "[capabilities]\nnet = [\"api.example.com:443\"]\nprocess_net = [\"{value}\"]\n"
            )),
            expect(
                "capabilities.process_net[0]",
                &format!("`{value}` {reason}")
            ),
        );
    }
    assert_eq!(
        cap_err("process_net", "api.example.com:443"),
        expect(
            "capabilities.process_net",
            "needs its targets in `net` as well (each connection is checked against `net`)"
        ),
    );
    assert_eq!(
        err("[capabilities]\nkv = \"yes\"\n"),
        expect(
            "capabilities.kv",
            "invalid type: string \"yes\", expected a boolean"
        )
    );
    assert_eq!(
        err("[capabilities]\nhttp = true\n"),
        expect(
            "capabilities.http",
            "unknown field `http`, expected one of `fs_read`, `fs_write`, `kv`, `net`, `process`, `process_net`, `identity`, `uplink`, `elicit`"
        )
    );
}

#[test]
fn env_errors() {
    for (name, key) in [
        ("1BAD", "env.1BAD"),
        ("A-B", "env.A-B"),
        ("A.B", "env.\"A.B\""),
    ] {
        assert_eq!(
            err(&format!("[env]\n\"{name}\" = {{}}\n")),
            expect(
                key,
                &format!("invalid setting name `{name}`: must be 1-64 characters of A-Z, a-z, 0-9 and `_`, not starting with a digit")
            ),
        );
    }
    assert_eq!(
        err("[env]\nAPI_KEY = { secret = true, default = \"x\" }\n"),
        expect(
            "env.API_KEY.default",
            "a secret setting cannot have a default"
        )
    );
    assert_eq!(
        err("[env]\nGREETING = { default = 3 }\n"),
        expect(
            "env.GREETING.default",
            "invalid type: integer `3`, expected a string"
        )
    );
    assert_eq!(
        err("[env]\nGREETING = { value = \"x\" }\n"),
        expect(
            "env.GREETING.value",
            "unknown field `value`, expected one of `default`, `description`, `secret`"
        )
    );
}

#[test]
fn keys_are_found_in_dotted_and_inline_forms() {
    assert_eq!(
        err_text("package.name = \"Echo\"\npackage.version = \"0.1.0\"\n"),
        expect(
            "package.name",
            "invalid capsule name `Echo`: must be 1-64 characters of a-z, 0-9 and `-`, starting with a letter"
        )
    );
    assert_eq!(
        err_text("package = { name = \"echo\", version = \"x\" }\n"),
        expect(
            "package.version",
            "unexpected character 'x' while parsing major version number"
        )
    );
    assert_eq!(
        err_text(&format!(
            "tool = [{{ name = \"x\", input_schema = {{ type = \"object\" }} }}]\n{BASE}"
        )),
        expect("tool[0].description", "missing field `description`")
    );
    assert_eq!(
        err("[subscribe]\n\"a.b\" = {}\n\"c.d\" = { handler = false }\n"),
        expect(
            "subscribe.\"c.d\".handler",
            "invalid type: boolean `false`, expected a string"
        )
    );
    assert_eq!(
        err("[capabilities]\nfs_read = [\n  \"/a\",\n  \"/b\",\n  [\"/c\"],\n]\n"),
        expect(
            "capabilities.fs_read[2]",
            "invalid type: sequence, expected a string"
        )
    );
}

#[test]
fn truncated_input_never_panics() {
    let text = super::full_text();
    let cuts = text.char_indices().map(|(i, _)| i).chain([text.len()]);
    for cut in cuts {
        // Every prefix either parses or yields an error naming this file.
        if let Err(e) = super::parse(&text[..cut]) {
            assert_eq!(e.file, std::path::Path::new(super::ORIGIN));
            assert!(!e.reason.is_empty());
        }
    }
}

#[test]
fn secrets_commands_and_limits_are_checked() {
    assert_eq!(
        err("[[secret]]\nname = \"api_key\"\nheader = \"Author ization\"\n"),
        expect(
            "secret[0].header",
            "`Author ization` is not a header name (letters, digits and `-`)"
        )
    );
    assert_eq!(
        err("[[secret]]\nname = \"k\"\nheader = \"x-api-key\"\n[[secret]]\nname = \"k\"\nheader = \"x\"\n"),
        expect("secret[1].name", "`k` is declared twice")
    );
    assert_eq!(
        err("[[secret]]\nname = \"k\"\nheader = \"x\"\nhost = \"a b:443\"\n"),
        expect(
            "secret[0].host",
            "`a b:443` has a host containing whitespace, `/`, `@`, `?` or `#`"
        )
    );
    assert_eq!(
        err("[[command]]\nname = \"Models\"\n"),
        expect(
            "command[0].name",
            "`Models` must be 1-64 characters of a-z, 0-9, `_` and `-`, starting with a letter"
        )
    );
    assert_eq!(
        err("[limits]\ntimeout_ms = 0\n"),
        expect("limits.timeout_ms", "must be at least 1")
    );
    assert_eq!(
        err("[limits]\ntimeout_ms = 3600001\n"),
        expect(
            "limits.timeout_ms",
            "3600001 is more than the maximum of 3600000 (one hour)"
        )
    );
}
