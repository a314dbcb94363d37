//! Durable appends per second under concurrent writers (group commit), and verification
//! speed. The log lives in a temporary directory on the machine's normal disk; every
//! append is fsynced before it returns.

use std::sync::Arc;
use std::time::{Duration, Instant};

use astrid_audit::{verify, AuditLog, Decision, NewEntry};
use astrid_crypto::KeyPair;
use astrid_types::PrincipalId;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn entry(i: u64) -> NewEntry {
    NewEntry::new(
        "astrid-capsule-fs",
        "fs.read",
        format!("fs:read:/home/alice/project/src/file-{i}.rs"),
        Decision::Allowed,
        format!("{{\"bytes\":{i},\"sha\":\"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\"}}"),
    )
}

fn bench_dir() -> tempfile::TempDir {
    // Same filesystem as $HOME/.astrid would be on, not a tmpfs.
    let base = std::env::var_os("HOME").map_or_else(std::env::temp_dir, Into::into);
    tempfile::tempdir_in(base).unwrap()
}

/// Runs `iters` appends split over `writers` threads; returns the wall time.
fn appends(log: &Arc<AuditLog>, writers: u64, iters: u64) -> Duration {
    let start = Instant::now();
    std::thread::scope(|s| {
        for w in 0..writers {
            let log = log.clone();
            let n = iters / writers + u64::from(w < iters % writers);
            s.spawn(move || {
                for i in 0..n {
                    log.append(entry(i)).unwrap();
                }
            });
        }
    });
    start.elapsed()
}

fn append_benches(c: &mut Criterion) {
    let key = Arc::new(KeyPair::from_seed(&[8; 32]));
    let mut group = c.benchmark_group("audit");
    group.throughput(Throughput::Elements(1));
    for writers in [1u64, 4, 16] {
        let dir = bench_dir();
        let log = Arc::new(
            AuditLog::open(
                &dir.path().join("audit.log"),
                PrincipalId::new("alice").unwrap(),
                key.clone(),
            )
            .unwrap(),
        );
        group.bench_function(format!("append_durable_{writers}_writers"), |b| {
            b.iter_custom(|iters| appends(&log, writers, iters))
        });
        let stats = log.stats();
        eprintln!(
            "{writers} writers: {} entries in {} fsync batches ({:.1} entries per fsync)",
            stats.entries,
            stats.batches,
            stats.entries as f64 / stats.batches.max(1) as f64
        );
    }
    group.finish();
}

fn verify_benches(c: &mut Criterion) {
    const N: u64 = 10_000;
    let key = Arc::new(KeyPair::from_seed(&[8; 32]));
    let dir = bench_dir();
    let path = dir.path().join("audit.log");
    {
        let log = Arc::new(
            AuditLog::open(&path, PrincipalId::new("alice").unwrap(), key.clone()).unwrap(),
        );
        appends(&log, 16, N);
    }
    let mut group = c.benchmark_group("audit");
    group.throughput(Throughput::Elements(N));
    group.sample_size(10);
    group.bench_function("verify_10k_entries", |b| {
        b.iter(|| {
            assert_eq!(
                verify(&path, key.public_key(), &PrincipalId::new("alice").unwrap())
                    .unwrap()
                    .entries,
                N
            )
        })
    });
    group.finish();
}

/// Opening a 100,000-entry chain: what the daemon does on a principal's first audited
/// effect after a start. Open checks every record, link and seq, the head against the log,
/// and the signatures the head does not vouch for (here: the last entry only).
fn open_benches(c: &mut Criterion) {
    const N: u64 = 100_000;
    let key = Arc::new(KeyPair::from_seed(&[8; 32]));
    let alice = PrincipalId::new("alice").unwrap();
    let dir = bench_dir();
    let path = dir.path().join("audit.log");
    {
        let log = Arc::new(AuditLog::open(&path, alice.clone(), key.clone()).unwrap());
        appends(&log, 64, N);
    }
    eprintln!(
        "open bench: {} bytes for {N} entries",
        std::fs::metadata(&path).unwrap().len()
    );
    let mut group = c.benchmark_group("audit");
    group.throughput(Throughput::Elements(N));
    group.sample_size(10);
    group.bench_function("open_100k_entries", |b| {
        b.iter(|| {
            let log = AuditLog::open(&path, alice.clone(), key.clone()).unwrap();
            assert_eq!(log.last_seq(), N);
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = append_benches, verify_benches, open_benches
}
criterion_main!(benches);
