//! Resource pattern parsing, matching and narrowing, including the paths that try to climb
//! out.

use std::path::PathBuf;

use astrid_crypto::{CryptoError, Resource, ResourcePattern};
use astrid_types::CapsuleName;

fn pat(s: &str) -> ResourcePattern {
    ResourcePattern::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn read(p: &str) -> Resource {
    Resource::FsRead(PathBuf::from(p))
}

fn net(host: &str, port: u16) -> Resource {
    Resource::NetConnect {
        host: host.into(),
        port,
    }
}

#[test]
fn canonical_text_round_trips() {
    for s in [
        "fs:read:/",
        "fs:read:/**",
        "fs:read:/home/me/project/**",
        "fs:write:/tmp/*/out.txt",
        "net:connect:api.example.com:443",
        "net:connect:*.example.com:*",
        "net:connect:*:80",
        "net:connect:10.0.0.1:8080",
        "net:connect:[::1]:443",
        "process:exec:/usr/bin/git",
        "process:exec:git",
        "tool:fs.read_file",
        "tool:*",
        "capsule:astrid-capsule-fs",
        "kv:session",
        "identity:display_name",
        "uplink:frontends",
    ] {
        let p = pat(s);
        assert_eq!(p.to_string(), s);
        assert_eq!(ResourcePattern::parse_canonical(s).unwrap(), p);
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(json, format!("\"{s}\""));
        assert_eq!(serde_json::from_str::<ResourcePattern>(&json).unwrap(), p);
    }
    assert!(serde_json::from_str::<ResourcePattern>("\"fs:read:/a/../b\"").is_err());
}

#[test]
fn normalises_but_canonical_parse_is_strict() {
    let p = pat("net:connect:API.Example.COM:443");
    assert_eq!(p.to_string(), "net:connect:api.example.com:443");
    assert!(ResourcePattern::parse_canonical("net:connect:API.Example.COM:443").is_err());
    assert_eq!(
        pat("net:connect:[0:0:0:0:0:0:0:1]:443").to_string(),
        "net:connect:[::1]:443"
    );
}

#[test]
fn rejects_bad_patterns() {
    for bad in [
        "fs:read:/home/me/../etc/**",
        "fs:read:/home/me/..",
        "fs:read:/../etc",
        "fs:read:/home/./me",
        "fs:read:/home//me",
        "fs:read:/home/me/",
        "fs:read:home/me",
        "fs:read:",
        "fs:read:/a/**/b",
        "fs:read:/a/**/**",
        "fs:read:/a/b*",
        "fs:read:/a/\0b",
        "fs:exec:/bin/sh",
        "net:connect:example.com",
        "net:connect:example.com:0",
        "net:connect:example.com:65536",
        "net:connect:example.com:080",
        "net:connect:example.com:+80",
        "net:connect:::1:443",
        "net:connect:[::1:443",
        "net:connect:exa mple.com:443",
        "net:connect:example.com.:443",
        "net:connect:-bad.com:443",
        "net:connect:1.2.3:443",
        "net:connect:0x7f.1:443",
        "net:connect:*example.com:443",
        "process:exec:",
        "process:exec:..",
        "process:exec:/usr/../bin/sh",
        "process:exec:/usr/bin/*",
        "process:exec:sh -c",
        "tool:",
        "tool:a b",
        "capsule:Bad",
        "kv:",
        "identity:",
        "identity:*",
        "identity:Display",
        "identity:display-name",
        "uplink:",
        "uplink:*",
        "uplink:cli",
        "everything",
    ] {
        let err = ResourcePattern::parse(bad).expect_err(bad);
        assert!(matches!(err, CryptoError::Pattern { .. }), "{bad}: {err}");
    }
    let err = ResourcePattern::parse("fs:read:/a/../b").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid resource pattern `fs:read:/a/../b`: `..` segments are not allowed"
    );
}

#[test]
fn path_matching() {
    let p = pat("fs:read:/home/me/project/**");
    for ok in [
        "/home/me/project",
        "/home/me/project/a",
        "/home/me/project/a/b/c.txt",
    ] {
        assert!(p.matches(&read(ok)), "{ok}");
    }
    for no in [
        "/home/me",
        "/home/me/projectx",
        "/home/me/project/../secret",
        "/home/me/project/./a",
        "/home/me/project//a",
        "/home/me/project/a/",
        "home/me/project/a",
        "/home/me/project/a/..",
    ] {
        assert!(!p.matches(&read(no)), "{no}");
    }
    assert!(!p.matches(&Resource::FsWrite("/home/me/project/a".into())));

    let star = pat("fs:write:/tmp/*/out.txt");
    assert!(star.matches(&Resource::FsWrite("/tmp/x/out.txt".into())));
    assert!(!star.matches(&Resource::FsWrite("/tmp/out.txt".into())));
    assert!(!star.matches(&Resource::FsWrite("/tmp/x/y/out.txt".into())));
    assert!(!star.matches(&Resource::FsWrite("/tmp/../out.txt".into())));

    let root = pat("fs:read:/");
    assert!(root.matches(&read("/")));
    assert!(!root.matches(&read("/etc")));
    let all = pat("fs:read:/**");
    assert!(all.matches(&read("/")) && all.matches(&read("/etc/passwd")));
    assert!(!all.matches(&read("/etc/../root")));
    let exact = pat("fs:read:/etc/hosts");
    assert!(exact.matches(&read("/etc/hosts")));
    assert!(!exact.matches(&read("/etc/hosts/x")));
}

#[test]
fn net_matching() {
    let p = pat("net:connect:api.example.com:443");
    assert!(p.matches(&net("api.example.com", 443)));
    assert!(p.matches(&net("API.example.com", 443)));
    assert!(!p.matches(&net("api.example.com", 80)));
    assert!(!p.matches(&net("api.example.com.", 443)));
    assert!(!p.matches(&net("evil-api.example.com", 443)));

    let sub = pat("net:connect:*.example.com:*");
    assert!(sub.matches(&net("a.example.com", 1)));
    assert!(sub.matches(&net("a.b.example.com", 65535)));
    assert!(!sub.matches(&net("example.com", 443)));
    assert!(!sub.matches(&net("evilexample.com", 443)));
    assert!(!sub.matches(&net(".example.com", 443)));
    assert!(!sub.matches(&net("a..example.com", 443)));

    let ip = pat("net:connect:[::1]:8080");
    assert!(ip.matches(&net("::1", 8080)));
    assert!(ip.matches(&net("[0::1]", 8080)));
    assert!(!ip.matches(&net("127.0.0.1", 8080)));
    let v4 = pat("net:connect:127.0.0.1:80");
    assert!(v4.matches(&net("127.0.0.1", 80)));
    assert!(!v4.matches(&net("localhost", 80)));

    let any = pat("net:connect:*:443");
    assert!(any.matches(&net("10.1.2.3", 443)) && any.matches(&net("x.org", 443)));
    assert!(!any.matches(&net("", 443)));
}

#[test]
fn other_kinds_match_exactly() {
    assert!(pat("tool:fs.read_file").matches(&Resource::Tool("fs.read_file".into())));
    assert!(!pat("tool:fs.read_file").matches(&Resource::Tool("fs.write_file".into())));
    assert!(pat("tool:*").matches(&Resource::Tool("anything.at_all".into())));
    assert!(!pat("tool:*").matches(&Resource::Tool("bad name".into())));
    assert!(pat("process:exec:git").matches(&Resource::ProcessExec("git".into())));
    assert!(!pat("process:exec:git").matches(&Resource::ProcessExec("/usr/bin/git".into())));
    let fs = CapsuleName::new("fs").unwrap();
    assert!(pat("capsule:fs").matches(&Resource::Capsule(fs.clone())));
    assert!(!pat("capsule:fs").matches(&Resource::Kv(fs.clone())));
    assert!(pat("kv:fs").matches(&Resource::Kv(fs)));
    assert!(!pat("kv:fs").matches(&Resource::Kv(CapsuleName::new("fsx").unwrap())));
    let fact = |f: &str| Resource::Identity(astrid_types::FactName::new(f).unwrap());
    assert!(pat("identity:email").matches(&fact("email")));
    assert!(!pat("identity:email").matches(&fact("email_work")));
    assert!(pat("uplink:frontends").matches(&Resource::Uplink));
    assert!(!pat("uplink:frontends").matches(&fact("frontends")));
    assert!(!pat("identity:frontends").matches(&Resource::Uplink));
}

#[test]
fn narrowing() {
    let yes = [
        ("fs:read:/a/b/**", "fs:read:/a/**"),
        ("fs:read:/a/**", "fs:read:/a/**"),
        ("fs:read:/a", "fs:read:/a/**"),
        ("fs:read:/a/b/c", "fs:read:/a/*/c"),
        ("fs:read:/a/x/**", "fs:read:/a/*/**"),
        ("fs:read:/anything/**", "fs:read:/**"),
        ("fs:read:/", "fs:read:/**"),
        (
            "net:connect:a.example.com:443",
            "net:connect:*.example.com:*",
        ),
        (
            "net:connect:*.a.example.com:443",
            "net:connect:*.example.com:443",
        ),
        ("net:connect:[::1]:1", "net:connect:*:*"),
        ("tool:fs.read_file", "tool:*"),
        ("capsule:fs", "capsule:fs"),
    ];
    for (narrow, wide) in yes {
        assert!(
            pat(narrow).narrower_or_equal(&pat(wide)),
            "{narrow} <= {wide}"
        );
    }
    let no = [
        ("fs:read:/a/**", "fs:read:/a/b/**"),
        ("fs:read:/a/**", "fs:read:/a"),
        ("fs:read:/a/*/**", "fs:read:/a/x/**"),
        ("fs:read:/a/**", "fs:read:/a/*/**"),
        ("fs:read:/**", "fs:read:/"),
        ("fs:write:/a/b", "fs:read:/a/**"),
        ("fs:read:/a/b/c", "fs:read:/a/b"),
        (
            "net:connect:*.example.com:443",
            "net:connect:a.example.com:443",
        ),
        (
            "net:connect:example.com:443",
            "net:connect:*.example.com:443",
        ),
        (
            "net:connect:a.example.com:*",
            "net:connect:a.example.com:443",
        ),
        ("net:connect:*:443", "net:connect:*.example.com:443"),
        ("tool:*", "tool:fs.read_file"),
        ("kv:fs", "capsule:fs"),
        ("identity:email", "identity:display_name"),
        ("uplink:frontends", "tool:*"),
    ];
    for (narrow, wide) in no {
        assert!(
            !pat(narrow).narrower_or_equal(&pat(wide)),
            "{narrow} <= {wide}"
        );
    }
}
