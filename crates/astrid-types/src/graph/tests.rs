use std::path::Path;

use super::*;

/// A minimal valid manifest with the given imports and exports.
fn cap(name: &str, imports: &[(&str, &str)], exports: &[(&str, &str)]) -> Manifest {
    let table = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| format!("\"{k}\" = \"{v}\"\n"))
            .collect::<String>()
    };
    let text = format!(
        "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\n[[component]]\nfile = \"{name}.wasm\"\n\
         [imports]\n{}[exports]\n{}",
        table(imports),
        table(exports)
    );
    Manifest::parse(&text, Path::new("Capsule.toml")).unwrap()
}

#[test]
fn empty_and_independent_keep_input_order() {
    assert_eq!(boot_order(&[]), Ok(vec![]));
    let ms = [cap("c", &[], &[]), cap("a", &[], &[]), cap("b", &[], &[])];
    assert_eq!(boot_order(&ms), Ok(vec![0, 1, 2]));
}

#[test]
fn providers_boot_first_and_ties_keep_input_order() {
    let ms = [
        cap("app", &[("acme:x", "^1.0")], &[]),
        cap("lib", &[], &[("acme:x", "1.2.0")]),
        cap("other", &[], &[]),
    ];
    assert_eq!(boot_order(&ms), Ok(vec![1, 0, 2]));

    // A chain declared backwards boots forwards.
    let ms = [
        cap("top", &[("acme:mid", "^1")], &[]),
        cap("mid", &[("acme:base", "^1")], &[("acme:mid", "1.0.0")]),
        cap("base", &[], &[("acme:base", "1.0.0")]),
    ];
    assert_eq!(boot_order(&ms), Ok(vec![2, 1, 0]));
}

#[test]
fn host_packages_are_provided_by_the_kernel_at_every_version_it_serves() {
    let ms = [cap(
        "a",
        &[
            ("astrid:fs", "^1"),
            ("astrid:ipc", "=1.0.0"),
            ("astrid:http", "=1.0.0"),
        ],
        &[],
    )];
    assert_eq!(boot_order(&ms), Ok(vec![0]));
    let ms = [cap("b", &[("astrid:http", "^1.1")], &[])];
    assert_eq!(boot_order(&ms), Ok(vec![0]));
    for (iface, req) in [
        ("astrid:fs", "^2"),
        ("astrid:fs", "^1.1"),
        ("astrid:nonesuch", "^1"),
    ] {
        let ms = [cap("a", &[(iface, req)], &[])];
        let err = boot_order(&ms).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "capsule `a` imports `{iface}` {} but no installed capsule exports a matching version",
                req.parse::<semver::VersionReq>().unwrap()
            )
        );
    }
}

#[test]
fn missing_providers() {
    let ms = [
        cap("b", &[], &[("acme:x", "2.0.0")]),
        cap("a", &[("acme:x", "^1.0")], &[]),
    ];
    assert_eq!(
        boot_order(&ms),
        Err(GraphError::MissingProvider {
            capsule: "a".into(),
            import: "acme:x".into(),
            requirement: "^1.0".into(),
        })
    );
    assert_eq!(
        boot_order(&ms).unwrap_err().to_string(),
        "capsule `a` imports `acme:x` ^1.0 but no installed capsule exports a matching version"
    );
    // A capsule never satisfies its own import.
    let ms = [cap("a", &[("acme:x", "^1")], &[("acme:x", "1.0.0")])];
    assert!(matches!(
        boot_order(&ms),
        Err(GraphError::MissingProvider { capsule, .. }) if capsule == "a"
    ));
}

#[test]
fn cycles_are_reported_from_the_earliest_member() {
    let ms = [
        cap("a", &[("acme:y", "^1")], &[("acme:x", "1.0.0")]),
        cap("b", &[("acme:x", "^1")], &[("acme:y", "1.0.0")]),
    ];
    let err = boot_order(&ms).unwrap_err();
    assert_eq!(
        err,
        GraphError::Cycle {
            path: vec!["a".into(), "b".into(), "a".into()]
        }
    );
    assert_eq!(err.to_string(), "dependency cycle: a -> b -> a");

    // `d` depends on the cycle but is not part of it; `free` boots fine before failing.
    let ms = [
        cap("free", &[], &[]),
        cap("d", &[("acme:p", "^1")], &[]),
        cap("r", &[("acme:q", "^1")], &[("acme:p", "1.0.0")]),
        cap("q", &[("acme:s", "^1")], &[("acme:q", "1.0.0")]),
        cap("p", &[("acme:p", "^1")], &[("acme:s", "1.0.0")]),
    ];
    assert_eq!(
        boot_order(&ms).unwrap_err().to_string(),
        "dependency cycle: r -> q -> p -> r"
    );
}

#[test]
fn duplicate_names() {
    let ms = [cap("a", &[], &[]), cap("b", &[], &[]), cap("a", &[], &[])];
    let err = boot_order(&ms).unwrap_err();
    assert_eq!(err, GraphError::DuplicateName { name: "a".into() });
    assert_eq!(err.to_string(), "capsule `a` is listed more than once");
}

#[test]
fn highest_matching_version_is_the_provider() {
    let ms = [
        cap("consumer", &[("acme:x", "^1")], &[]),
        cap("old", &[], &[("acme:x", "1.0.0")]),
        cap("new", &[], &[("acme:x", "1.5.0")]),
        cap("too-new", &[], &[("acme:x", "2.0.0")]),
    ];
    // Linking `new` means `consumer` waits for it, not just for `old`.
    assert_eq!(boot_order(&ms), Ok(vec![1, 2, 0, 3]));
}

#[test]
fn dependents() {
    let ms = [
        cap("lib", &[], &[("acme:x", "1.0.0"), ("acme:only", "1.0.0")]),
        cap("alt", &[], &[("acme:x", "1.1.0")]),
        cap("uses-x", &[("acme:x", "^1")], &[]),
        cap(
            "uses-only",
            &[("astrid:fs", "^1"), ("acme:only", "^1")],
            &[],
        ),
        cap("pinned", &[("acme:x", "=1.0.0")], &[]),
        cap("host-only", &[("astrid:fs", "^1")], &[]),
    ];
    assert_eq!(dependents_of(&ms, "lib"), vec!["uses-only", "pinned"]);
    assert_eq!(dependents_of(&ms, "alt"), Vec::<String>::new());
    assert_eq!(dependents_of(&ms, "uses-x"), Vec::<String>::new());
    assert_eq!(dependents_of(&ms, "nope"), Vec::<String>::new());
}
