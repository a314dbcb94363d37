//! Install by name against a registry served on loopback by the test (a static file server,
//! as any host would be), with the real binaries and packages built from this repository:
//! `astrid registry publish` signs the index, `astrid capsule install @acme/echo`, `capsule
//! update echo` and `init --distro @acme/chat` resolve from it. Every refusal is tried as an
//! attacker would: an index edited after signing, an index signed by an untrusted key, a
//! package whose bytes differ from the index, an older index replayed. Each is refused with
//! its reason and installs nothing.
#![allow(
    clippy::disallowed_methods,
    reason = "the test drives the real astrid binary and the system tar"
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::static_http::StaticServer;
use common::{astrid, build_distro, build_packages, failed, keygen, ok, text, StopDaemon};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn publish(root: &Path, reg: &Path, artifact: &Path, name: &str, key: &Path) -> String {
    ok(
        astrid(
            root,
            &[
                "registry",
                "publish",
                s(reg),
                s(artifact),
                "--name",
                name,
                "--key",
                s(key),
            ],
        ),
        "registry publish",
    )
}

/// The installed version of `capsule`, if it is installed.
fn installed(home: &Path, capsule: &str) -> Option<String> {
    let list: serde_json::Value =
        serde_json::from_str(&ok(astrid(home, &["capsule", "list", "--json"]), "list")).unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == capsule)
        .map(|c| c["version"].as_str().unwrap().to_string())
}

/// The echo package at 0.1.0 as built, and a second release 0.2.0 of it: the same component
/// under a manifest with the next version, archived with the system tar as a publisher's own
/// tooling might.
fn two_echo_releases(root: &Path) -> (PathBuf, PathBuf) {
    let out = build_packages(root, &["echo"]);
    let v1 = out.join("echo-0.1.0.capsule");
    assert!(v1.is_file());
    let dir2 = root.join("echo-0.2.0");
    std::fs::create_dir_all(&dir2).unwrap();
    let manifest = std::fs::read_to_string(out.join("echo-0.1.0/Capsule.toml")).unwrap();
    let bumped = manifest.replacen("version = \"0.1.0\"", "version = \"0.2.0\"", 1);
    assert_ne!(manifest, bumped);
    std::fs::write(dir2.join("Capsule.toml"), bumped).unwrap();
    std::fs::copy(out.join("echo-0.1.0/echo.wasm"), dir2.join("echo.wasm")).unwrap();
    let v2 = root.join("echo-0.2.0.capsule");
    let tar = Command::new("tar")
        .args([
            "--format=ustar",
            "-cf",
            s(&v2),
            "-C",
            s(&dir2),
            "Capsule.toml",
            "echo.wasm",
        ])
        .output()
        .unwrap();
    ok(tar, "tar");
    (v1, v2)
}

#[test]
fn capsules_install_and_update_by_name_and_every_forgery_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (v1, v2) = two_echo_releases(root);
    let (key, public) = keygen(root, "acme");
    let reg = root.join("reg");
    let first = publish(root, &reg, &v1, "@acme/echo", &key);
    assert!(first.contains("published @acme/echo 0.1.0"), "{first}");
    publish(root, &reg, &v2, "@acme/echo", &key);
    // A published version never changes: other bytes claiming 0.1.0 (the same files archived
    // in another order) are refused, the same bytes again are not.
    let out = v1.parent().unwrap();
    let other = root.join("echo-0.1.0-other.capsule");
    let tar = Command::new("tar")
        .args(["--format=ustar", "-cf", s(&other), "-C"])
        .arg(out.join("echo-0.1.0"))
        .args(["echo.wasm", "Capsule.toml"])
        .output()
        .unwrap();
    ok(tar, "tar");
    assert_ne!(std::fs::read(&other).unwrap(), std::fs::read(&v1).unwrap());
    let changed = failed(
        astrid(
            root,
            &[
                "registry",
                "publish",
                s(&reg),
                s(&other),
                "--name",
                "@acme/echo",
                "--key",
                s(&key),
            ],
        ),
        "republishing 0.1.0 with other bytes",
    );
    assert!(changed.contains("never changes"), "{changed}");
    publish(root, &reg, &v1, "@acme/echo", &key);
    let server = StaticServer::start(&reg);
    let url = server.url.clone();

    let home = root.join("home");
    let _stop = StopDaemon(home.clone());
    // Nobody trusted yet: the index is refused before anything is downloaded.
    let untrusted = failed(
        astrid(
            &home,
            &["capsule", "install", "@acme/echo", "--registry", &url],
        ),
        "install from an untrusted registry",
    );
    assert!(untrusted.contains("not a trusted publisher"), "{untrusted}");
    assert!(untrusted.contains(&public), "{untrusted}");
    ok(
        astrid(&home, &["trust", "add", "acme", &public]),
        "trust add",
    );

    let hits = server.hits();
    let got = ok(
        astrid(
            &home,
            &[
                "capsule",
                "install",
                "@acme/echo@=0.1.0",
                "--registry",
                &url,
            ],
        ),
        "install @acme/echo@=0.1.0",
    );
    assert!(got.contains("installed echo 0.1.0"), "{got}");
    assert!(got.contains("signed by acme"), "{got}");
    assert_eq!(server.hits() - hits, 2, "the index and the package");
    assert_eq!(installed(&home, "echo").as_deref(), Some("0.1.0"));

    let search = ok(
        astrid(
            &home,
            &["registry", "search", "echo", "--registry", &url, "--json"],
        ),
        "search",
    );
    let rows: serde_json::Value = serde_json::from_str(&search).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 2, "{search}");

    // `capsule update NAME` takes the newest version from the registry (here through the
    // environment, as an operator would set it once).
    let mut update = Command::new(env!("CARGO_BIN_EXE_astrid"));
    update
        .args(["--home", s(&home), "capsule", "update", "echo"])
        .env("ASTRID_DAEMON", common::daemon_exe())
        .env("ASTRID_REGISTRY", &url);
    let updated = ok(update.output().unwrap(), "capsule update echo");
    assert!(updated.contains("updated echo 0.2.0"), "{updated}");
    assert_eq!(installed(&home, "echo").as_deref(), Some("0.2.0"));
    let again = ok(update.output().unwrap(), "capsule update echo, again");
    assert!(again.contains("up to date"), "{again}");

    // A second home for the refusals that would otherwise meet an installed echo.
    let home2 = root.join("home2");
    let _stop2 = StopDaemon(home2.clone());
    ok(
        astrid(&home2, &["trust", "add", "acme", &public]),
        "trust add",
    );
    let install2 = |what: &str| astrid(&home2, &["capsule", "install", what, "--registry", &url]);

    // 1. The index edited after signing (the 0.1.0 entry pointed at 0.2.0's file).
    let index_path = reg.join("index.toml");
    let signed = std::fs::read_to_string(&index_path).unwrap();
    let edited = signed.replacen("echo-0.1.0.capsule", "echo-0.2.0.capsule", 1);
    assert_ne!(signed, edited);
    std::fs::write(&index_path, &edited).unwrap();
    let e = failed(
        install2("@acme/echo@=0.1.0"),
        "install from an edited index",
    );
    assert!(e.contains("signature does not verify"), "{e}");
    std::fs::write(&index_path, &signed).unwrap();

    // 2. A package whose bytes differ from the index (one byte flipped, same size).
    let pkg = reg.join("capsules/acme/echo/echo-0.1.0.capsule");
    let original = std::fs::read(&pkg).unwrap();
    let mut flipped = original.clone();
    let at = flipped.len() / 2;
    flipped[at] ^= 0x01;
    std::fs::write(&pkg, &flipped).unwrap();
    let e = failed(
        install2("@acme/echo@=0.1.0"),
        "install of a flipped package",
    );
    assert!(e.contains("the signed index pins"), "{e}");
    std::fs::write(&pkg, &original).unwrap();

    // 3. An index signed by a key nobody trusts, naming its own (evil) package.
    let (mallory, _) = keygen(root, "mallory");
    let evil = root.join("evil");
    publish(root, &evil, &v1, "@acme/echo", &mallory);
    let evil_server = StaticServer::start(&evil);
    let e = failed(
        astrid(
            &home2,
            &[
                "capsule",
                "install",
                "@acme/echo",
                "--registry",
                &evil_server.url,
            ],
        ),
        "install from mallory's registry",
    );
    assert!(e.contains("not a trusted publisher"), "{e}");

    // 4. An older index replayed after a newer one was seen.
    let old_index = std::fs::read_to_string(&index_path).unwrap();
    ok(
        astrid(&home2, &["registry", "search", "--registry", &url]),
        "search (sees the current serial)",
    );
    publish(root, &reg, &v2, "@acme/echo", &key); // re-signed: serial + 1
    ok(
        astrid(&home2, &["registry", "search", "--registry", &url]),
        "search (sees the new serial)",
    );
    std::fs::write(&index_path, &old_index).unwrap();
    let e = failed(
        install2("@acme/echo"),
        "install from a replayed older index",
    );
    assert!(e.contains("older than serial"), "{e}");

    // None of it installed anything.
    assert_eq!(installed(&home2, "echo"), None);

    // A directory registry works the same (the current index back in place).
    publish(root, &reg, &v2, "@acme/echo", &key);
    let got = ok(
        astrid(
            &home2,
            &["capsule", "install", "@acme/echo", "--registry", s(&reg)],
        ),
        "install from a directory registry",
    );
    assert!(got.contains("installed echo 0.2.0"), "{got}");
}

#[test]
fn init_installs_a_signed_distro_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let distro = build_distro(root);
    let (key, public) = keygen(root, "acme");
    ok(astrid(root, &["distro", "lock", s(&distro)]), "distro lock");
    let bundle = root.join("chat.shuttle");
    ok(
        astrid(
            root,
            &[
                "distro",
                "pack",
                s(&distro),
                "--key",
                s(&key),
                "--out",
                s(&bundle),
            ],
        ),
        "distro pack",
    );
    let reg = root.join("reg");
    let published = publish(root, &reg, &bundle, "@acme/chat", &key);
    assert!(
        published.contains("published @acme/chat 1.0.0"),
        "{published}"
    );
    let server = StaticServer::start(&reg);

    let home = root.join("home");
    let _stop = StopDaemon(home.clone());
    ok(
        astrid(&home, &["trust", "add", "acme", &public]),
        "trust add",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_astrid"))
        .args(["--home", s(&home), "init", "--yes", "--provider", "openai"])
        .args(["--base-url", "http://127.0.0.1:9", "--model", "gpt-4o-mini"])
        .args(["--distro", "@acme/chat@^1", "--registry", &server.url])
        .env("ASTRID_DAEMON", common::daemon_exe())
        .env("OPENAI_API_KEY", "sk-test")
        .output()
        .unwrap();
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(said.contains("@acme/chat 1.0.0 from"), "{said}");
    assert!(
        said.contains("a signed bundle, from the registry"),
        "{said}"
    );
    assert!(said.contains("test-chat 1.0.0: 5 capsules"), "{said}");
    let shown = ok(astrid(&home, &["distro", "show"]), "distro show");
    assert!(shown.contains("test-chat"), "{shown}");
    assert_eq!(shown.matches("as pinned").count(), 5, "{shown}");
}
