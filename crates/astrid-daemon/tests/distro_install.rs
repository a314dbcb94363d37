//! `DistroInstall` against a real daemon, from a client that skips the CLI's own checks: the
//! kernel refuses a package that is not what the lock pins (component or `Capsule.toml`) and a
//! lock naming a capsule that is neither uploaded nor installed as pinned. Each refusal
//! installs and pins nothing; the package refusal is on the record. The same lock with the
//! right packages installs, and from then on the pin holds for a plain update.

mod common;

use astrid_audit::Decision;
use astrid_types::distro::{DistroLock, LockedCapsule};
use astrid_types::wire::{ControlCommand, ControlResponse, PackageUpload};
use astrid_types::ArtifactHash;
use common::{chain, control, list, package, upload, Capsule, TestHome};

fn pin(c: Capsule) -> LockedCapsule {
    let p = package(c);
    LockedCapsule {
        name: p.manifest.package.name.clone(),
        version: p.manifest.package.version.clone(),
        hash: p.hash,
        manifest: ArtifactHash::of(p.manifest_text.as_bytes()),
    }
}

fn lock(mut capsules: Vec<LockedCapsule>) -> DistroLock {
    capsules.sort_by(|a, b| a.name.cmp(&b.name));
    DistroLock {
        name: "test".into(),
        version: "1.0.0".parse().unwrap(),
        manifest: ArtifactHash::of(b"Distro.toml"),
        capsules,
    }
}

fn install(lock: DistroLock, packages: Vec<PackageUpload>) -> ControlCommand {
    ControlCommand::DistroInstall { lock, packages }
}

#[tokio::test]
async fn the_daemon_checks_a_distro_against_its_lock_itself() {
    let home = TestHome::new();
    let daemon = home.start().await;
    let c = daemon.client().await;
    let nothing_pinned = |r| matches!(r, Ok(ControlResponse::Distro(None)));

    // echo uploaded under a lock pinning counter's component for it.
    let mut wrong = pin(Capsule::Echo);
    wrong.hash = pin(Capsule::Counter).hash;
    let err = control(&c, install(lock(vec![wrong]), vec![upload(Capsule::Echo)]))
        .await
        .unwrap_err();
    assert!(
        err.contains("pinned by Distro.lock to component")
            && err.contains(&pin(Capsule::Counter).hash.to_string())
            && err.contains(&pin(Capsule::Echo).hash.to_string()),
        "{err}"
    );
    let denied: Vec<_> = chain(&home.home, "default")
        .into_iter()
        .filter(|e| e.action == "distro.install" && e.decision == Decision::Denied)
        .collect();
    assert_eq!(denied.len(), 1, "{denied:?}");
    assert_eq!(denied[0].resource, "capsule:echo");

    // The right component under another Capsule.toml (what the lock pins is the manifest
    // that declares the capabilities).
    let mut widened = upload(Capsule::Echo);
    widened.manifest_toml = widened
        .manifest_toml
        .replace("description = \"", "description = \"widened: ");
    let err = control(&c, install(lock(vec![pin(Capsule::Echo)]), vec![widened]))
        .await
        .unwrap_err();
    assert!(err.contains("to Capsule.toml"), "{err}");

    // A lock naming counter, with only echo uploaded and counter not installed.
    let err = control(
        &c,
        install(
            lock(vec![pin(Capsule::Echo), pin(Capsule::Counter)]),
            vec![upload(Capsule::Echo)],
        ),
    )
    .await
    .unwrap_err();
    assert!(
        err.contains("`counter`") && err.contains("neither uploaded nor installed"),
        "{err}"
    );

    // None of it installed or pinned anything.
    assert!(list(&c).await.is_empty());
    assert!(nothing_pinned(
        control(&c, ControlCommand::DistroShow).await
    ));

    // The right packages install, pinned; a plain update to another echo is then refused.
    let good = lock(vec![pin(Capsule::Echo), pin(Capsule::Counter)]);
    match control(
        &c,
        install(
            good.clone(),
            vec![upload(Capsule::Echo), upload(Capsule::Counter)],
        ),
    )
    .await
    {
        Ok(ControlResponse::Capsules(done)) => assert_eq!(done.len(), 2),
        other => panic!("expected the installed capsules, got {other:?}"),
    }
    match control(&c, ControlCommand::DistroShow).await {
        Ok(ControlResponse::Distro(Some(pinned))) => assert_eq!(pinned, good),
        other => panic!("expected the lock, got {other:?}"),
    }
    let err = control(&c, ControlCommand::Update(upload(Capsule::EchoV2)))
        .await
        .unwrap_err();
    assert!(err.contains("pinned by Distro.lock"), "{err}");
    // Installing the same distro again changes nothing and restarts nothing.
    match control(
        &c,
        install(good, vec![upload(Capsule::Echo), upload(Capsule::Counter)]),
    )
    .await
    {
        Ok(ControlResponse::Capsules(done)) => assert!(done.is_empty(), "{done:?}"),
        other => panic!("expected no change, got {other:?}"),
    }
}
