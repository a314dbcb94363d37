//! Builds the real `echo` capsule from this repository (cargo for wasm32, once per test
//! binary) and checks the package it writes and what `load_package` accepts.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use astrid_build::{
    build_capsule, interfaces, load_package, BuildError, BuildOptions, BuiltPackage, GUEST_EXPORT,
};
use astrid_types::{ArtifactHash, Manifest};

fn echo_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../capsules/echo")
}

/// The echo package, built once into a temporary directory that lives as long as the process.
fn built() -> &'static BuiltPackage {
    static BUILT: OnceLock<(tempfile::TempDir, BuiltPackage)> = OnceLock::new();
    let (_, pkg) = BUILT.get_or_init(|| {
        let out = tempfile::tempdir().expect("temp dir");
        let opts = BuildOptions {
            out_dir: Some(out.path().to_path_buf()),
            ..BuildOptions::default()
        };
        let pkg = build_capsule(&echo_src(), &opts).unwrap_or_else(|e| panic!("{e}"));
        (out, pkg)
    });
    pkg
}

/// Copies `src` to `dst` and flips one byte at `offset`.
fn copy_with_flipped_byte(src: &Path, dst: &Path, offset: usize) {
    let mut bytes = std::fs::read(src).unwrap();
    bytes[offset] ^= 0x01;
    std::fs::write(dst, bytes).unwrap();
}

#[test]
fn package_layout_is_dir_plus_archive() {
    let pkg = built();
    assert_eq!(pkg.name, "echo");
    assert_eq!(pkg.version, "0.1.0");
    assert_eq!(pkg.component_file, "echo.wasm");
    assert_eq!(pkg.dir.file_name().unwrap(), "echo-0.1.0");
    assert_eq!(pkg.archive.file_name().unwrap(), "echo-0.1.0.capsule");
    assert_eq!(pkg.dir.parent(), pkg.archive.parent());
    let mut files: Vec<String> = std::fs::read_dir(&pkg.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, ["Capsule.toml", "echo.wasm"]);
}

#[test]
fn component_validates_and_speaks_only_astrid() {
    let pkg = built();
    let bytes = std::fs::read(pkg.dir.join("echo.wasm")).unwrap();
    assert!(wasmparser::Parser::is_component(&bytes), "not a component");
    wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
        .validate_all(&bytes)
        .expect("component validates");

    let found = interfaces(&bytes, Path::new("echo.wasm")).unwrap();
    assert!(!found.imports.is_empty());
    for import in &found.imports {
        assert!(import.starts_with("astrid:"), "foreign import {import}");
    }
    for wanted in ["astrid:sys/sys@1.0.0", "astrid:ipc/ipc@1.0.0"] {
        assert!(
            found.imports.iter().any(|i| i == wanted),
            "{wanted} missing from {:?}",
            found.imports
        );
    }
    assert_eq!(found.exports, [GUEST_EXPORT]);
    assert_eq!(found, pkg.interfaces);
}

#[test]
fn manifest_records_the_component_hash() {
    let pkg = built();
    let manifest = Manifest::load(pkg.dir.join("Capsule.toml")).unwrap();
    let bytes = std::fs::read(pkg.dir.join("echo.wasm")).unwrap();
    assert_eq!(bytes.len(), pkg.component_size);
    let hash = ArtifactHash::of(&bytes);
    assert_eq!(manifest.components.len(), 1);
    assert_eq!(manifest.components[0].file, "echo.wasm");
    assert_eq!(manifest.components[0].hash.as_ref(), Some(&hash));
    assert_eq!(pkg.hash, hash);
    // Everything else is the source manifest unchanged.
    let mut source = Manifest::load(echo_src().join("Capsule.toml")).unwrap();
    assert_eq!(source.components[0].hash, None);
    source.components[0].hash = Some(hash);
    assert_eq!(source, manifest);
}

#[test]
fn archive_and_dir_load_to_the_same_package() {
    let pkg = built();
    let from_archive = load_package(&pkg.archive).unwrap();
    let from_dir = load_package(&pkg.dir).unwrap();
    let on_disk = std::fs::read(pkg.dir.join("echo.wasm")).unwrap();
    assert_eq!(from_archive.component, on_disk);
    assert_eq!(from_dir.component, on_disk);
    assert_eq!(from_archive.manifest_text, from_dir.manifest_text);
    assert_eq!(
        from_archive.manifest_text,
        std::fs::read_to_string(pkg.dir.join("Capsule.toml")).unwrap()
    );
    assert_eq!(from_archive.hash, pkg.hash);
    assert_eq!(from_archive.component_file, "echo.wasm");
    assert_eq!(from_archive.manifest.package.name.as_str(), "echo");
}

#[test]
fn tampered_archive_is_refused_with_both_hashes() {
    let pkg = built();
    // Flip a byte inside the component's data, not in a tar header, so the archive still
    // parses and only the hash can catch it.
    let mut archive = tar::Archive::new(std::fs::File::open(&pkg.archive).unwrap());
    let (offset, len) = archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap())
        .find(|e| e.path().unwrap().as_os_str() == "echo.wasm")
        .map(|e| (e.raw_file_position(), e.size()))
        .expect("echo.wasm in archive");
    let tmp = tempfile::tempdir().unwrap();
    let tampered = tmp.path().join("echo-0.1.0.capsule");
    copy_with_flipped_byte(&pkg.archive, &tampered, (offset + len / 2) as usize);

    let err = load_package(&tampered).unwrap_err();
    match &err {
        BuildError::HashMismatch {
            file,
            expected,
            actual,
        } => {
            assert!(file.ends_with("echo.wasm"), "{file}");
            assert!(file.contains("echo-0.1.0.capsule"), "{file}");
            assert_eq!(expected, &pkg.hash.to_string());
            assert_ne!(actual, expected);
            assert!(actual.starts_with("blake3:"));
        }
        other => panic!("expected a hash mismatch, got {other}"),
    }
    let shown = err.to_string();
    assert!(shown.contains(&pkg.hash.to_string()), "{shown}");
}

#[test]
fn tampered_package_dir_is_refused() {
    let pkg = built();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("echo-0.1.0");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(pkg.dir.join("Capsule.toml"), dir.join("Capsule.toml")).unwrap();
    copy_with_flipped_byte(&pkg.dir.join("echo.wasm"), &dir.join("echo.wasm"), 100);
    match load_package(&dir).unwrap_err() {
        BuildError::HashMismatch { file, expected, .. } => {
            assert_eq!(PathBuf::from(file), dir.join("echo.wasm"));
            assert_eq!(expected, pkg.hash.to_string());
        }
        other => panic!("expected a hash mismatch, got {other}"),
    }
}

#[test]
fn archive_with_an_extra_entry_is_refused() {
    let pkg = built();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("extra.capsule");
    let mut builder = tar::Builder::new(std::fs::File::create(&path).unwrap());
    for name in ["Capsule.toml", "echo.wasm"] {
        builder
            .append_path_with_name(pkg.dir.join(name), name)
            .unwrap();
    }
    let mut header = tar::Header::new_ustar();
    header.set_size(3);
    header.set_mode(0o644);
    builder
        .append_data(&mut header, "payload.sh", &b"hi\n"[..])
        .unwrap();
    builder.finish().unwrap();
    drop(builder);
    match load_package(&path).unwrap_err() {
        BuildError::Archive { reason, .. } => assert!(reason.contains("payload.sh"), "{reason}"),
        other => panic!("expected an archive error, got {other}"),
    }
}

#[test]
fn rebuilding_gives_the_same_bytes() {
    let pkg = built();
    let out = tempfile::tempdir().unwrap();
    let opts = BuildOptions {
        out_dir: Some(out.path().to_path_buf()),
        ..BuildOptions::default()
    };
    let again = build_capsule(&echo_src(), &opts).unwrap();
    assert_eq!(again.hash, pkg.hash);
    assert_eq!(
        std::fs::read(&again.archive).unwrap(),
        std::fs::read(&pkg.archive).unwrap(),
        "archives are deterministic"
    );
}
