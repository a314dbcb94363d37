//! Signed bundles end to end with the real binaries: a publisher key from `astrid distro
//! keygen`, a bundle from `astrid distro pack` of packages built from this repository, the
//! operator's `astrid trust`, and `astrid distro verify|install` and `astrid init --offline`
//! against a real daemon. Every attack is tried on the bundle file as an attacker would: a
//! capsule byte flipped, a capsule swapped and re-signed by an untrusted key, the lock edited
//! to match a swapped capsule without a new signature, the file cut short. Each is refused
//! with its reason, and nothing is installed.
#![allow(
    clippy::disallowed_methods,
    reason = "the test drives the real astrid binary"
)]

mod common;

use std::path::Path;

use common::{
    astrid, build_distro, build_packages, failed, keygen, ok, text, write_distro_toml, StopDaemon,
};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `dir` locked and packed with `key` into `out`.
fn lock_and_pack(home: &Path, dir: &Path, key: &Path, out: &Path) {
    ok(astrid(home, &["distro", "lock", s(dir)]), "distro lock");
    let packed = ok(
        astrid(
            home,
            &["distro", "pack", s(dir), "--key", s(key), "--out", s(out)],
        ),
        "distro pack",
    );
    assert!(packed.contains("signed by"), "{packed}");
}

fn installed_names(home: &Path) -> Vec<String> {
    let list: serde_json::Value =
        serde_json::from_str(&ok(astrid(home, &["capsule", "list", "--json"]), "list")).unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

/// The offset of `needle` (a run from the middle of a package) in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("the package's bytes are in the bundle")
}

/// Where in `bundle` a run of `package`'s bytes from its second half lies, choosing a run that
/// occurs exactly once there: packages built with the same SDK share long runs of code, and
/// a byte flipped in the first match could land in another package.
fn unique_offset(bundle: &[u8], package: &[u8]) -> usize {
    const RUN: usize = 64;
    (package.len() / 2..package.len() - RUN)
        .step_by(RUN)
        .find_map(|start| {
            let run = &package[start..start + RUN];
            let mut at = bundle.windows(RUN).enumerate().filter(|(_, w)| *w == run);
            match (at.next(), at.next()) {
                (Some((i, _)), None) => Some(i),
                _ => None,
            }
        })
        .expect("some run of the package's bytes is unique in the bundle")
}

#[test]
fn only_an_intact_bundle_from_a_trusted_publisher_installs() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let distro = build_packages(&root, &["echo", "counter"]);
    write_distro_toml(&distro, "bundled", &["echo", "counter"]);
    let v2 = build_packages(&root.join("v2"), &["testdata/echo-v2"]).join("echo-0.2.0.capsule");
    let home = root.join("home");
    let _stop = StopDaemon(home.clone());
    let (key, public) = keygen(&root, "acme");
    let bundle = root.join("bundled.shuttle");
    lock_and_pack(&home, &distro, &key, &bundle);
    let good = std::fs::read(&bundle).unwrap();

    // Not trusted yet: refused before anything starts or changes.
    let e = failed(
        astrid(&home, &["distro", "install", s(&bundle)]),
        "an untrusted bundle",
    );
    assert!(
        e.contains("not a trusted publisher") && e.contains(&public),
        "{e}"
    );
    ok(
        astrid(&home, &["trust", "add", "acme", &public]),
        "trust add",
    );
    let listed = ok(astrid(&home, &["trust", "list", "--json"]), "trust list");
    assert!(
        listed.contains("\"acme\"") && listed.contains(&public),
        "{listed}"
    );
    let verified = ok(astrid(&home, &["distro", "verify", s(&bundle)]), "verify");
    assert!(verified.contains("signed by acme"), "{verified}");

    // Verify and install refuse alike, for the same reason.
    let attempt = |bytes: &[u8], what: &str, reason: &[&str]| {
        let path = root.join("attempt.shuttle");
        std::fs::write(&path, bytes).unwrap();
        for verb in ["verify", "install"] {
            let e = failed(astrid(&home, &["distro", verb, s(&path)]), what);
            for r in reason {
                assert!(
                    e.contains(r),
                    "{what}: `distro {verb}` does not say `{r}`:\n{e}"
                );
            }
        }
    };

    // 1. One byte of the echo package flipped inside the bundle.
    let echo = std::fs::read(distro.join("echo-0.1.0.capsule")).unwrap();
    let at = unique_offset(&good, &echo);
    let mut flipped = good.clone();
    flipped[at] ^= 0x01;
    attempt(
        &flipped,
        "a flipped byte",
        &["hash mismatch", "echo-0.1.0.capsule", "attempt.shuttle"],
    );

    // 2. echo swapped for another validly built echo, re-locked and signed by a key nobody
    //    trusts.
    let swapped = root.join("swapped");
    std::fs::create_dir(&swapped).unwrap();
    for f in ["Distro.toml", "counter-0.1.0.capsule"] {
        std::fs::copy(distro.join(f), swapped.join(f)).unwrap();
    }
    std::fs::copy(&v2, swapped.join("echo-0.2.0.capsule")).unwrap();
    let (mallory, mallory_public) = keygen(&root, "mallory");
    let evil = root.join("evil.shuttle");
    lock_and_pack(&home, &swapped, &mallory, &evil);
    attempt(
        &std::fs::read(&evil).unwrap(),
        "a bundle signed by an untrusted key",
        &["not a trusted publisher", &mallory_public],
    );

    // 3. The same swap with the lock edited to match, keeping acme's signature: the
    //    signature entry of the evil bundle replaced by the good one's (same length).
    let sig_of = |bytes: &[u8]| -> String {
        let t = text(bytes);
        let start = t.find("signature = \"").unwrap() + "signature = \"".len();
        t[start..start + 128].to_string()
    };
    let evil_bytes = std::fs::read(&evil).unwrap();
    let (theirs, ours) = (sig_of(&evil_bytes), sig_of(&good));
    let pub_at = find(&evil_bytes, mallory_public.as_bytes());
    let mut forged = evil_bytes.clone();
    forged[pub_at..pub_at + 64].copy_from_slice(public.as_bytes());
    let sig_at = find(&forged, theirs.as_bytes());
    forged[sig_at..sig_at + 128].copy_from_slice(ours.as_bytes());
    attempt(
        &forged,
        "a lock edited without a new signature",
        &["signature does not verify"],
    );

    // 4. Cut short.
    attempt(
        &good[..good.len() / 2],
        "a truncated bundle",
        &["truncated"],
    );

    // 5. Trusted once, then removed: refused again.
    ok(astrid(&home, &["trust", "remove", "acme"]), "trust remove");
    let e = failed(
        astrid(&home, &["distro", "install", s(&bundle)]),
        "a publisher no longer trusted",
    );
    assert!(e.contains("not a trusted publisher"), "{e}");

    // Nothing of any attempt was installed, and no lock was pinned.
    assert!(installed_names(&home).is_empty());
    let shown = ok(astrid(&home, &["distro", "show"]), "distro show");
    assert!(shown.contains("no distro lock is pinned"), "{shown}");

    // The intact bundle from a trusted publisher installs, pinned.
    ok(
        astrid(&home, &["trust", "add", "acme", &public]),
        "trust add",
    );
    let out = ok(astrid(&home, &["distro", "install", s(&bundle)]), "install");
    assert!(out.contains("signed by acme"), "{out}");
    let mut names = installed_names(&home);
    names.sort();
    assert_eq!(names, ["counter", "echo"]);
    let shown = ok(astrid(&home, &["distro", "show"]), "distro show");
    assert!(shown.contains("distro bundled 1.0.0"), "{shown}");
}

#[test]
fn init_offline_installs_a_signed_chat_distro_and_sets_up_the_provider() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let distro = build_distro(&root);
    let home = root.join("home");
    let _stop = StopDaemon(home.clone());
    let (key, public) = keygen(&root, "acme");
    let bundle = root.join("chat.shuttle");
    lock_and_pack(&home, &distro, &key, &bundle);
    // The build directory is gone: the bundle is all there is.
    std::fs::remove_dir_all(&distro).unwrap();

    let init = |home: &Path| {
        astrid(
            home,
            &[
                "init",
                "--yes",
                "--offline",
                s(&bundle),
                "--provider",
                "openai",
                "--base-url",
                "http://127.0.0.1:9",
                "--model",
                "m1",
            ],
        )
    };
    let e = failed(init(&home), "init --offline of an untrusted bundle");
    assert!(e.contains("not a trusted publisher"), "{e}");
    let status = astrid(&home, &["status"]);
    assert!(
        !status.status.success(),
        "a refused bundle must not even start the daemon: {}",
        text(&status.stdout)
    );

    ok(
        astrid(&home, &["trust", "add", "acme", &public]),
        "trust add",
    );
    let out = ok(init(&home), "init --offline");
    assert!(
        out.contains("signed by acme") && out.contains("model: m1"),
        "{out}"
    );
    let mut names = installed_names(&home);
    names.sort();
    assert_eq!(
        names,
        ["agent", "provider-openai", "registry", "session", "tool-fs"]
    );
}
