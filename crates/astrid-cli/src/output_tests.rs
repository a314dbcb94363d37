use super::*;
use astrid_types::wire::LifecycleState;

fn info(name: &str, state: LifecycleState) -> CapsuleInfo {
    crate::test_support::capsule(name, state)
}

#[test]
fn short_hash_keeps_the_algorithm_and_twelve_digits() {
    let full = format!("blake3:{}", "0123456789abcdef".repeat(4));
    assert_eq!(short_hash(&full), "blake3:0123456789ab…");
    assert_eq!(short_hash("blake3:abc"), "blake3:abc");
    assert_eq!(short_hash("0123456789abcdef"), "0123456789ab…");
}

#[test]
fn durations_read_naturally() {
    assert_eq!(human_duration(0), "0s");
    assert_eq!(human_duration(999), "0s");
    assert_eq!(human_duration(45_000), "45s");
    assert_eq!(human_duration(3_723_000), "1h 2m 3s");
    assert_eq!(human_duration(3_600_000), "1h 0m 0s");
    assert_eq!(human_duration(2 * 86_400_000 + 5_000), "2d 0h 0m 5s");
}

#[test]
fn table_aligns_columns() {
    let rows = vec![
        vec!["echo".to_string(), "0.1.0".to_string(), "a".to_string()],
        vec![
            "longer-name".to_string(),
            "10.0.0".to_string(),
            "-".to_string(),
        ],
    ];
    assert_eq!(
        table(&["NAME", "VERSION", "X"], &rows),
        "NAME         VERSION  X\necho         0.1.0    a\nlonger-name  10.0.0   -\n"
    );
}

#[test]
fn ps_shows_short_hash_tools_and_failures() {
    let mut ok = info("echo", LifecycleState::Running);
    ok.tools = vec!["echo".into(), "shout".into()];
    let mut bad = info("broken", LifecycleState::Failed);
    bad.error = Some("missing import astrid:fs/files".into());
    let text = ps(&[ok, bad]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "NAME    VERSION  STATE    HASH                  TOOLS"
    );
    assert_eq!(
        lines[1],
        "echo    0.1.0    running  blake3:abababababab…  echo, shout"
    );
    assert_eq!(
        lines[2],
        "broken  0.1.0    failed   blake3:abababababab…  -"
    );
    assert_eq!(lines[3], "broken failed: missing import astrid:fs/files");
    assert_eq!(ps(&[]), "no capsules loaded\n");
}

#[test]
fn status_lists_each_capsule() {
    let s = DaemonStatus {
        pid: 4242,
        uptime_ms: 61_000,
        version: "0.1.0".into(),
        connected_clients: 3,
        capsules: vec![
            info("echo", LifecycleState::Ready),
            info("kv", LifecycleState::Loading),
        ],
    };
    let text = status(&s);
    assert!(text.starts_with("astrid daemon: running\n"), "{text}");
    assert!(text.contains("  pid:      4242\n"), "{text}");
    assert!(text.contains("  uptime:   1m 1s\n"), "{text}");
    assert!(text.contains("  clients:  3\n"), "{text}");
    assert!(
        text.ends_with("    echo 0.1.0 ready\n    kv 0.1.0 loading\n"),
        "{text}"
    );
}

#[test]
fn verbose_list_shows_every_field() {
    let mut c = info("fetch", LifecycleState::Ready);
    c.tools = vec!["get".into()];
    c.publish = vec!["fetch.v1.done".into()];
    c.subscribe = vec!["fetch.v1.request".into()];
    c.capabilities = vec!["fs_read: ~/data".into()];
    c.imports = vec!["acme:counter ^1".into()];
    c.exports = vec!["acme:fetch 1.0.0".into()];
    c.host_abi = vec![
        "astrid:sys/sys@1.0.0".into(),
        "astrid:http/http@1.1.0".into(),
    ];
    let text = capsule_list(&[c, info("empty", LifecycleState::Failed)], true);
    let expected = [
        "fetch 0.1.0 (ready)",
        &format!("  hash:         blake3:{}", "ab".repeat(32)),
        "  description:  the fetch capsule",
        "  tools:        get",
        "  publish:      fetch.v1.done",
        "  subscribe:    fetch.v1.request",
        "  capabilities: fs_read: ~/data",
        "  imports:      acme:counter ^1",
        "  exports:      acme:fetch 1.0.0",
        "  host abi:     astrid:sys/sys@1.0.0, astrid:http/http@1.1.0",
        "",
        "empty 0.1.0 (failed)",
    ];
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(&lines[..expected.len()], &expected);
    assert!(text.contains("  tools:        -\n"), "{text}");
    assert!(
        !text.contains("error:"),
        "no error line without an error: {text}"
    );
}

#[test]
fn short_list_is_a_table() {
    let text = capsule_list(&[info("echo", LifecycleState::Ready)], false);
    assert_eq!(
        text,
        "NAME  VERSION  STATE  DESCRIPTION\necho  0.1.0    ready  the echo capsule\n"
    );
    assert_eq!(capsule_list(&[], true), "no capsules installed\n");
}

#[test]
fn tree_shows_providers_and_exports() {
    let nodes = vec![
        TreeNode {
            name: "app".into(),
            version: "0.2.0".into(),
            imports: vec![
                ("astrid:sys/log".into(), "1.0.0".into(), "kernel".into()),
                ("acme:kv/store".into(), "^1".into(), "kv".into()),
            ],
            exports: vec![],
        },
        TreeNode {
            name: "kv".into(),
            version: "1.1.0".into(),
            imports: vec![],
            exports: vec![("acme:kv/store".into(), "1.1.0".into())],
        },
    ];
    let expected = "\
app 0.2.0
├── imports
│   ├── astrid:sys/log@1.0.0 -> kernel
│   └── acme:kv/store@^1 -> kv
└── exports: none
kv 1.1.0
├── imports: none
└── exports
    └── acme:kv/store@1.1.0
";
    assert_eq!(tree(&nodes), expected);
}
