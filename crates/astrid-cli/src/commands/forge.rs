//! The Forge: `astrid capsule new NAME [--template tool|handler]` writes a capsule that
//! compiles first try (Capsule.toml, Cargo.toml, src/lib.rs, .cargo/config.toml,
//! AUTHORING.md), depending on the SDK found on this machine.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use astrid_types::CapsuleName;

use crate::args::CapsuleTemplate;

const CARGO_TOML: &str = include_str!("../../templates/capsule/Cargo.toml.in");
const CARGO_CONFIG: &str = include_str!("../../templates/capsule/cargo-config.toml.in");
const AUTHORING: &str = include_str!("../../templates/capsule/AUTHORING.md.in");
const TOOL_MANIFEST: &str = include_str!("../../templates/capsule/tool.Capsule.toml.in");
const TOOL_LIB: &str = include_str!("../../templates/capsule/tool.lib.rs.in");
const HANDLER_MANIFEST: &str = include_str!("../../templates/capsule/handler.Capsule.toml.in");
const HANDLER_LIB: &str = include_str!("../../templates/capsule/handler.lib.rs.in");

/// What the templates are filled with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// The capsule and Cargo package name.
    pub name: String,
    /// The Rust type: `my-tool` → `MyTool`.
    pub type_name: String,
    /// The tool (`my_tool_greet`) or the topic (`my-tool.v1.hello`).
    pub tool: String,
    pub topic: String,
    /// The `astrid-sdk` crate directory, absolute.
    pub sdk: String,
}

impl Names {
    pub fn new(name: &str, sdk: &Path) -> anyhow::Result<Self> {
        let parsed: CapsuleName = name.parse().map_err(|_| {
            anyhow::anyhow!(
                "`{name}` is not a capsule name: a lowercase letter, then up to 63 lowercase \
                 letters, digits or `-`"
            )
        })?;
        let name = parsed.to_string();
        let type_name: String = name
            .split('-')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let mut c = p.chars();
                c.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                    .unwrap_or_default()
            })
            .collect();
        Ok(Names {
            tool: format!("{}_greet", name.replace('-', "_")),
            topic: format!("{name}.v1.hello"),
            type_name,
            sdk: sdk.display().to_string(),
            name,
        })
    }

    fn fill(&self, template: &str) -> String {
        template
            .replace("{{name}}", &self.name)
            .replace("{{type}}", &self.type_name)
            .replace("{{tool}}", &self.tool)
            .replace("{{topic}}", &self.topic)
            .replace("{{sdk}}", &self.sdk)
    }
}

/// The files of a new capsule, relative to its directory.
pub fn files(names: &Names, template: CapsuleTemplate) -> Vec<(&'static str, String)> {
    let (manifest, lib, call, test) = match template {
        CapsuleTemplate::Tool => (
            TOOL_MANIFEST,
            TOOL_LIB,
            format!(
                "Call the tool directly, or as the agent would:\n\n```sh\necho \
                 '{{\"topic\":\"tool.v1.execute.{tool}\",\"payload\":{{\"args\":{{\"name\":\"Ada\"}}}}}}' \
                 | astrid-emit\nastrid -p \"Greet Ada with the {tool} tool.\"\n```",
                tool = names.tool
            ),
            "  `astrid-emit` (above) in a script, asserting on the reply; the tool's result is \
             JSON (`{\"text\": \"Hello, Ada!\", \"count\": 1}`)."
                .to_string(),
        ),
        CapsuleTemplate::Handler => (
            HANDLER_MANIFEST,
            HANDLER_LIB,
            format!(
                "Send it a request:\n\n```sh\necho '{{\"topic\":\"{topic}\",\"payload\":\"hi\"}}' \
                 | astrid-emit\n```",
                topic = names.topic
            ),
            "  `astrid-emit` (above) in a script, asserting on the reply.".to_string(),
        ),
    };
    let authoring = names
        .fill(AUTHORING)
        .replace("{{call}}", &call)
        .replace("{{test}}", &test);
    vec![
        ("Capsule.toml", names.fill(manifest)),
        ("Cargo.toml", names.fill(CARGO_TOML)),
        ("src/lib.rs", names.fill(lib)),
        (".cargo/config.toml", names.fill(CARGO_CONFIG)),
        ("AUTHORING.md", authoring),
    ]
}

/// Where the SDK is: `--sdk`, else `$ASTRID_SDK`, else `<exe dir>/../share/astrid/sdk/
/// astrid-sdk`, else the checkout this binary was built from. The crate directory must hold
/// a `Cargo.toml` naming `astrid-sdk`.
pub fn locate_sdk(
    flag: Option<&Path>,
    env: Option<PathBuf>,
    exe: Option<&Path>,
) -> anyhow::Result<PathBuf> {
    let is_sdk = |d: &Path| {
        std::fs::read_to_string(d.join("Cargo.toml"))
            .is_ok_and(|t| t.contains("name = \"astrid-sdk\""))
    };
    let explicit = flag
        .map(Path::to_path_buf)
        .or(env.filter(|p| !p.as_os_str().is_empty()));
    if let Some(dir) = explicit {
        if is_sdk(&dir) {
            return dir
                .canonicalize()
                .with_context(|| format!("resolving {}", dir.display()));
        }
        bail!(
            "{} is not the astrid-sdk crate (no Cargo.toml naming astrid-sdk)",
            dir.display()
        );
    }
    let mut looked = Vec::new();
    let candidates = [
        exe.and_then(Path::parent)
            .map(|b| b.join("../share/astrid/sdk/astrid-sdk")),
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sdk/astrid-sdk")),
    ];
    for dir in candidates.into_iter().flatten() {
        if is_sdk(&dir) {
            return dir
                .canonicalize()
                .with_context(|| format!("resolving {}", dir.display()));
        }
        looked.push(dir.display().to_string());
    }
    bail!(
        "no astrid-sdk found (looked in {}); pass --sdk DIR or set ASTRID_SDK to the astrid-sdk \
         crate of an Astrid checkout",
        looked.join(", ")
    )
}

/// Writes the capsule into `dir`, which must not exist or be empty. Returns the files.
pub fn write(dir: &Path, names: &Names, template: CapsuleTemplate) -> anyhow::Result<Vec<PathBuf>> {
    if dir.exists() {
        let empty = std::fs::read_dir(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .next()
            .is_none();
        if !empty {
            bail!(
                "{} exists and is not empty; choose another name or --dir",
                dir.display()
            );
        }
    }
    let mut written = Vec::new();
    for (rel, text) in files(names, template) {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_capsule_name() {
        let n = Names::new("my-first-tool", Path::new("/sdk")).unwrap();
        assert_eq!(n.type_name, "MyFirstTool");
        assert_eq!(n.tool, "my_first_tool_greet");
        assert_eq!(n.topic, "my-first-tool.v1.hello");
        let e = Names::new("My_Tool", Path::new("/sdk"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a capsule name"), "{e}");
    }

    #[test]
    fn every_placeholder_is_filled_and_the_manifests_parse() {
        let n = Names::new("greeter", Path::new("/opt/astrid/sdk/astrid-sdk")).unwrap();
        for template in [CapsuleTemplate::Tool, CapsuleTemplate::Handler] {
            let files = files(&n, template);
            let names: Vec<&str> = files.iter().map(|(f, _)| *f).collect();
            assert_eq!(
                names,
                [
                    "Capsule.toml",
                    "Cargo.toml",
                    "src/lib.rs",
                    ".cargo/config.toml",
                    "AUTHORING.md"
                ]
            );
            for (file, text) in &files {
                assert!(!text.contains("{{"), "{file} keeps a placeholder:\n{text}");
            }
            let manifest = &files[0].1;
            let parsed = astrid_types::Manifest::parse(manifest, Path::new("Capsule.toml"))
                .unwrap_or_else(|e| panic!("{e}\n{manifest}"));
            assert_eq!(parsed.package.name.as_ref(), "greeter");
            let cargo: toml::Value = toml::from_str(&files[1].1).unwrap();
            assert_eq!(
                cargo["dependencies"]["astrid-sdk"]["path"].as_str(),
                Some("/opt/astrid/sdk/astrid-sdk")
            );
            match template {
                CapsuleTemplate::Tool => {
                    assert_eq!(parsed.tools[0].name, "greeter_greet");
                    assert!(files[2].1.contains("fn greeter_greet("));
                }
                CapsuleTemplate::Handler => {
                    assert!(manifest.contains("\"greeter.v1.hello\" = { handler = \"hello\" }"));
                    assert!(files[2].1.contains("fn hello("));
                }
            }
        }
    }

    #[test]
    fn a_non_empty_directory_is_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("keep.txt"), "mine").unwrap();
        let n = Names::new("greeter", Path::new("/sdk")).unwrap();
        let e = write(dir.path(), &n, CapsuleTemplate::Tool).unwrap_err();
        assert!(e.to_string().contains("not empty"), "{e}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("keep.txt")).unwrap(),
            "mine"
        );
    }

    #[test]
    fn the_sdk_is_found_from_the_flag_or_the_checkout() {
        let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sdk/astrid-sdk");
        let found = locate_sdk(None, None, None).unwrap();
        assert_eq!(found, checkout.canonicalize().unwrap());
        let dir = tempfile::tempdir().unwrap();
        let e = locate_sdk(Some(dir.path()), None, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not the astrid-sdk crate"), "{e}");
    }
}
