//! Writes a small chain under a home directory and prints its export (JSON lines), for
//! trying the external verifier:
//!
//! ```sh
//! cargo run -p astrid-audit --example audit_demo -- /tmp/demo-home 25 > /tmp/alice.jsonl
//! python3 docs/verify_audit.py /tmp/alice.jsonl --principal alice --public-key "$(cat /tmp/demo-home/keys/runtime.pub)"
//! ```

use std::path::PathBuf;
use std::sync::Arc;

use astrid_audit::{export, log_path, AuditLog, Decision, NewEntry};
use astrid_crypto::KeyPair;
use astrid_types::PrincipalId;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let home = PathBuf::from(args.next().ok_or("usage: audit_demo HOME [COUNT]")?);
    let count: u64 = args.next().map_or(Ok(10), |c| c.parse())?;
    let key = Arc::new(KeyPair::load_or_create(&home.join("keys"))?);
    let principal = PrincipalId::new("alice")?;
    let path = log_path(&home.join("principals"), &principal);
    let log = AuditLog::open(&path, principal.clone(), key)?;
    for i in 0..count {
        let entry = match i % 4 {
            0 => NewEntry::new(
                "astrid-capsule-fs",
                "fs.read",
                format!("fs:read:/home/alice/notes-{i}.txt"),
                Decision::Allowed,
                format!("{{\"bytes\":{}}}", i * 7),
            ),
            1 => NewEntry::new(
                "astrid-capsule-http",
                "net.connect",
                "net:connect:evil.example:443",
                Decision::Denied,
                "no capability token covers this resource",
            ),
            2 => NewEntry::new(
                "kernel",
                "capability.mint",
                "fs:write:/home/alice/project/**",
                Decision::Recorded,
                "token 5f0c… minted for alice, expires never — approved \u{2714}",
            ),
            _ => NewEntry::new(
                "astrid-capsule-shell",
                "process.exec",
                "process:exec:git",
                Decision::Approved,
                "allow once\nexit 0\n",
            ),
        };
        log.append(entry)?;
    }
    drop(log);
    for line in export(&path, &principal)? {
        println!("{}", line?);
    }
    Ok(())
}
