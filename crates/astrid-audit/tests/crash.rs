//! Crash test: a child process appends from several threads and prints each acknowledged
//! seq; it is killed with SIGKILL mid-stream, several times. After each kill the chain must
//! reopen, verify, and hold every acknowledged entry.
//!
//! `harness = false`: the same binary is the child when `ASTRID_AUDIT_CRASH_CHILD` is set.
#![allow(
    clippy::disallowed_methods,
    reason = "tests drive real processes and sockets"
)]

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use astrid_audit::{read_entries, verify, AuditLog};
use common::{alice, entry, key};

const CHILD_ENV: &str = "ASTRID_AUDIT_CRASH_CHILD";
const TEST_NAME: &str = "kill9_mid_append_keeps_every_acknowledged_entry";
const ROUNDS: usize = 3;
const ACKS_BEFORE_KILL: usize = 1000;

fn main() {
    if let Some(path) = std::env::var_os(CHILD_ENV) {
        child(Path::new(&path));
    }
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        // Test-runner discovery (cargo nextest): one test, none ignored.
        if !args.iter().any(|a| a == "--ignored") {
            println!("{TEST_NAME}: test");
        }
        return;
    }
    kill9_mid_append_keeps_every_acknowledged_entry();
    println!("test {TEST_NAME} ... ok");
}

/// Appends forever from four threads; prints `ACK <seq>` after each append returns.
fn child(path: &Path) -> ! {
    let log = Arc::new(AuditLog::open(path, alice(), key()).expect("child open"));
    let out = Arc::new(Mutex::new(std::io::stdout()));
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let log = log.clone();
            let out = out.clone();
            std::thread::spawn(move || {
                for i in 0.. {
                    let seq = log.append(entry(t * 1_000_000 + i)).expect("append");
                    let mut out = out.lock().unwrap();
                    writeln!(out, "ACK {seq}").unwrap();
                    out.flush().unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
    unreachable!("appenders never stop");
}

fn kill9_mid_append_keeps_every_acknowledged_entry() {
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("principals/alice/audit.log");
    let mut acked: BTreeSet<u64> = BTreeSet::new();
    for round in 0..ROUNDS {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env(CHILD_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut this_round = 0;
        let mut killed = false;
        // Lines keep arriving after the kill until the pipe drains: those entries were
        // acknowledged before the process died and must survive too.
        for line in stdout.lines() {
            let line = line.unwrap();
            let Some(seq) = line
                .strip_prefix("ACK ")
                .and_then(|s| s.parse::<u64>().ok())
            else {
                continue;
            };
            assert!(acked.insert(seq), "seq {seq} acknowledged twice");
            this_round += 1;
            if this_round == ACKS_BEFORE_KILL && !killed {
                child.kill().unwrap();
                killed = true;
            }
        }
        let status = child.wait().unwrap();
        assert!(killed, "round {round}: child exited on its own: {status}");
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9),
            "{status}"
        );

        // Framing, order and links after every kill; signatures are checked for the whole
        // chain once at the end (ed25519 verification is slow in debug builds).
        let entries: Vec<_> = read_entries(&path).unwrap().map(Result::unwrap).collect();
        let mut prev = [0u8; 32];
        for (seq, e) in (1..).zip(&entries) {
            assert_eq!(e.entry.seq, seq, "round {round}");
            assert_eq!(
                e.entry.prev_hash, prev,
                "round {round}: broken link at {seq}"
            );
            prev = e.hash;
        }
        let last_seq = entries.len() as u64;
        let on_disk: BTreeSet<u64> = (1..=last_seq).collect();
        let max_acked = *acked.last().unwrap();
        assert!(
            last_seq >= max_acked,
            "round {round}: acknowledged {max_acked} but chain ends at {last_seq}"
        );
        assert!(
            acked.is_subset(&on_disk),
            "round {round}: an acknowledged entry is missing"
        );

        // Reopening (what the restarted daemon does) cuts any torn tail and continues.
        let log = AuditLog::open(&path, alice(), key()).unwrap();
        assert_eq!(log.last_seq(), last_seq);
        let next = log.append(entry(0)).unwrap();
        assert_eq!(next, last_seq + 1);
        acked.insert(next);
        eprintln!(
            "round {round}: {this_round} acknowledged, chain at {next}, torn tail cut: {} bytes",
            log.recovered_bytes()
        );
    }
    let report = verify(&path, key().public_key(), &alice())
        .unwrap_or_else(|e| panic!("chain does not verify after the kills: {e}"));
    assert_eq!(report.last_seq, *acked.last().unwrap());
    assert_eq!(report.entries, report.last_seq);
}
