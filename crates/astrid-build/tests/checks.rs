//! The checks that need no cargo run: foreign imports, missing exports, bad source trees.

use std::path::Path;

use astrid_build::{
    build_capsule, check_interfaces, componentize, load_package, BuildError, BuildOptions,
};
use wit_component::{dummy_module, embed_component_metadata, StringEncoding};
use wit_parser::{ManglingAndAbi, Resolve};

/// A core module for `world` in `wit`, with its component type embedded the way wit-bindgen
/// does, turned into a component by the same path `build_capsule` uses.
fn component_for(wit: &str, world: &str) -> Vec<u8> {
    let mut resolve = Resolve::default();
    let pkg = resolve.push_str("test.wit", wit).unwrap();
    let world = resolve.select_world(&[pkg], Some(world)).unwrap();
    let mut module = dummy_module(&resolve, world, ManglingAndAbi::Standard32);
    embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8, false).unwrap();
    componentize(&module, Path::new("test.wasm")).unwrap()
}

#[test]
fn wasi_imports_are_refused_by_name() {
    let component = component_for(
        r#"
        package wasi:cli@0.2.0;
        interface environment {
            get-environment: func() -> list<tuple<string, string>>;
        }
        world bad {
            import environment;
            export run: func();
        }
        "#,
        "bad",
    );
    match check_interfaces(&component, Path::new("bad.wasm")).unwrap_err() {
        BuildError::ForeignImports { path, imports } => {
            assert_eq!(path, Path::new("bad.wasm"));
            assert_eq!(imports, ["wasi:cli/environment@0.2.0"]);
        }
        other => panic!("expected foreign imports, got {other}"),
    }
}

#[test]
fn a_component_without_the_guest_export_is_refused() {
    let component = component_for(
        r#"
        package astrid:other@1.0.0;
        interface thing {
            poke: func();
        }
        world lonely {
            import thing;
            export thing;
        }
        "#,
        "lonely",
    );
    match check_interfaces(&component, Path::new("lonely.wasm")).unwrap_err() {
        BuildError::MissingExport {
            expected, found, ..
        } => {
            assert_eq!(expected, "astrid:capsule/guest@1.0.0");
            assert_eq!(found, ["astrid:other/thing@1.0.0"]);
        }
        other => panic!("expected a missing export, got {other}"),
    }
}

#[test]
fn a_module_that_is_not_wasm_is_refused() {
    match componentize(b"\0asmnot really", Path::new("junk.wasm")).unwrap_err() {
        BuildError::Componentize { path, reason } => {
            assert_eq!(path, Path::new("junk.wasm"));
            assert!(!reason.is_empty());
        }
        other => panic!("expected a componentize error, got {other}"),
    }
}

#[test]
fn source_tree_without_manifest_is_not_a_capsule() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Cargo.toml"), "[package]\nname = \"x\"\n").unwrap();
    match build_capsule(dir.path(), &BuildOptions::default()).unwrap_err() {
        BuildError::NotACapsule { reason, .. } => {
            assert!(reason.contains("Capsule.toml"), "{reason}")
        }
        other => panic!("expected not-a-capsule, got {other}"),
    }
}

#[test]
fn a_bad_manifest_fails_before_compiling() {
    let dir = tempfile::tempdir().unwrap();
    // A Cargo.toml cargo would reject: reaching cargo would give a Cargo error instead.
    std::fs::write(dir.path().join("Cargo.toml"), "not toml [").unwrap();
    std::fs::write(
        dir.path().join("Capsule.toml"),
        "[package]\nname = \"Bad Name\"\nversion = \"0.1.0\"\n\n[[component]]\nfile = \"x.wasm\"\n",
    )
    .unwrap();
    match build_capsule(dir.path(), &BuildOptions::default()).unwrap_err() {
        BuildError::Manifest { path, reason } => {
            assert!(path.ends_with("Capsule.toml"), "{}", path.display());
            assert!(reason.contains("package.name"), "{reason}");
        }
        other => panic!("expected a manifest error, got {other}"),
    }
}

#[test]
fn a_package_dir_without_hash_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Capsule.toml"),
        "[package]\nname = \"nohash\"\nversion = \"0.1.0\"\n\n[[component]]\nfile = \"x.wasm\"\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("x.wasm"), b"\0asm").unwrap();
    match load_package(dir.path()).unwrap_err() {
        BuildError::Manifest { reason, .. } => assert!(reason.contains("hash"), "{reason}"),
        other => panic!("expected a manifest error, got {other}"),
    }
}

#[test]
fn a_missing_path_is_an_io_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.capsule");
    match load_package(&missing).unwrap_err() {
        BuildError::Io { path, .. } => assert_eq!(path, missing),
        other => panic!("expected an io error, got {other}"),
    }
}
