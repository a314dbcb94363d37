//! Writes the seed corpora under `fuzz/seeds/` (run from `fuzz/`:
//! `cargo run --example make_seeds`). The signed tokens get fresh ids each run, and
//! `SIGNED_TOKENS` includes those files, so after a run the targets know the new ones.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use astrid_audit::{head_path, AuditLog, Decision, NewEntry};
use astrid_crypto::{mint_at, mint_bound_at, ResourcePattern};
use astrid_fuzz::{join2, seed_key};
use astrid_types::wire::{self, ClientMessage, Credential};
use astrid_types::{CapsuleName, PrincipalId};

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new("seeds").join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
}

fn hello(credential: Credential) -> Vec<u8> {
    wire::encode(&ClientMessage::Hello {
        versions: wire::PROTOCOL_VERSIONS.to_vec(),
        credential,
        principal: "default".into(),
        client_name: "astrid-cli".into(),
    })
    .unwrap()
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = u32::try_from(body.len()).unwrap().to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

fn main() {
    let key = seed_key();
    let principal = PrincipalId::new("fuzz").unwrap();

    // The handshake and the frames after it.
    let operator = hello(Credential::Operator("0123456789abcdef".into()));
    let device = hello(Credential::Device(
        "astrid-device.default.0001.secret".into(),
    ));
    let request = wire::encode(&ClientMessage::Request {
        id: 7,
        topic: "agent.v1.turn".into(),
        payload: br#"{"input":"hi"}"#.to_vec(),
        timeout_ms: 1000,
    })
    .unwrap();
    write("hello", "operator", &operator);
    write("hello", "device", &device);
    write(
        "hello",
        "version-1",
        &[0x00, 0x01, 0x01, 0x05, b'h', b'e', b'l', b'l', b'o'],
    );
    write("hello", "request", &request);
    let mut stream = vec![255u8];
    stream.extend(frame(&operator));
    stream.extend(frame(&request));
    write("frames", "hello-then-request", &stream);
    let mut torn = vec![8u8];
    torn.extend(frame(&operator)[..20].iter());
    write("frames", "torn", &torn);

    // Every first-party manifest.
    for entry in std::fs::read_dir("../capsules").unwrap().flatten() {
        let manifest = entry.path().join("Capsule.toml");
        if let Ok(text) = std::fs::read(&manifest) {
            write("manifest", &entry.file_name().to_string_lossy(), &text);
        }
    }

    // Tokens signed with the seed key: unbound, a narrowed child, and bound to a capsule.
    let fs = ResourcePattern::parse("fs:read:/home/u/**").unwrap();
    let t1 = mint_at(&key, principal.clone(), fs, 1_700_000_000_000, None, None).unwrap();
    let net = ResourcePattern::parse("net:connect:*.example.com:443").unwrap();
    let parent = mint_at(&key, principal.clone(), net, 1_700_000_000_000, None, None).unwrap();
    let narrow = ResourcePattern::parse("net:connect:api.example.com:443").unwrap();
    let t2 = mint_at(
        &key,
        principal.clone(),
        narrow,
        1_700_000_000_001,
        Some(Duration::from_secs(3600)),
        Some(&parent),
    )
    .unwrap();
    let tool = ResourcePattern::parse("tool:fs_read").unwrap();
    let capsule = CapsuleName::new("agent").unwrap();
    let t3 = mint_bound_at(
        &key,
        principal.clone(),
        capsule,
        tool,
        1_700_000_000_002,
        None,
        None,
    )
    .unwrap();
    write("token", "signed-fs-read.bin", &t1.to_bytes());
    write("token", "signed-net-child.bin", &t2.to_bytes());
    write("token", "signed-bound-tool.bin", &t3.to_bytes());
    write("token", "text", t1.to_text().as_bytes());

    // Pattern, wider pattern, resource.
    for (name, a, b, r) in [
        (
            "fs",
            "fs:read:/home/u/**",
            "fs:read:/home/**",
            "/home/u/notes.txt",
        ),
        (
            "fs-star",
            "fs:write:/tmp/*.log",
            "fs:write:/tmp/**",
            "/tmp/a.log",
        ),
        (
            "net",
            "net:connect:*.example.com:443",
            "net:connect:*:*",
            "api.example.com:443",
        ),
        (
            "net-v6",
            "net:connect:[::1]:8080",
            "net:connect:[::1]:*",
            "::1:8080",
        ),
        ("tool", "tool:fs_read", "tool:*", "fs_read"),
        (
            "exec",
            "process:exec:/usr/bin/git",
            "process:exec:/usr/bin/git",
            "/usr/bin/git",
        ),
        ("kv", "kv:session", "kv:session", "session"),
    ] {
        write(
            "pattern",
            name,
            &join2(a.as_bytes(), &join2(b.as_bytes(), r.as_bytes())),
        );
    }

    // A real chain and its head, whole and with a torn tail.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let log = AuditLog::open(&path, principal.clone(), Arc::new(seed_key())).unwrap();
    for (i, decision) in [Decision::Allowed, Decision::Denied, Decision::Allowed]
        .into_iter()
        .enumerate()
    {
        log.append(NewEntry::new(
            "tool-fs",
            "fs.read",
            format!("fs:read:/f{i}"),
            decision,
            "ok",
        ))
        .unwrap();
    }
    drop(log);
    let bytes = std::fs::read(&path).unwrap();
    let head = std::fs::read(head_path(&path)).unwrap();
    write("audit_open", "chain", &join2(&bytes, &head));
    let mut torn = bytes.clone();
    torn.extend_from_slice(&bytes[bytes.len() - 40..]);
    write("audit_open", "torn-tail", &join2(&torn, &head));
    write("audit_open", "no-head", &join2(&bytes, &[]));

    // Event streams as the providers' servers send them.
    let openai = "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n\
                  data: {\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}\r\n\r\n: keep-alive\n\n\
                  data: [DONE]\n\n";
    write("sse", "openai", &join2(&[3, 17, 40, 2], openai.as_bytes()));
    let anthropic = "\u{feff}event: message_start\ndata: {\"type\":\"message_start\"}\n\n\
                     event: content_block_delta\rdata: {\"delta\":{\"text\":\"hi\"}}\r\rid: 7\n\
                     data: a\ndata: b\n\nevent: message_stop\ndata: {}";
    write(
        "sse",
        "anthropic",
        &join2(&[9, 1, 1, 60], anthropic.as_bytes()),
    );

    // URLs the airlock sees, and addresses.
    for (name, url, ip) in [
        (
            "https",
            "https://api.example.com/v1/chat",
            &[8u8, 8, 8, 8][..],
        ),
        ("loopback", "http://127.0.0.1:8080/", &[127, 0, 0, 1]),
        ("mapped", "https://[::ffff:10.0.0.1]/", &[0u8; 16]),
        ("hex-ip", "https://0x7f.1/", &[169, 254, 169, 254]),
        (
            "localhost",
            "https://LocalHost./x",
            &[0x20, 0x02, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        ),
        ("userinfo", "https://user:pw@example.com/", &[100, 64, 0, 1]),
    ] {
        write("airlock", name, &join2(url.as_bytes(), ip));
    }
}
