//! One platform's release archive: a plain tar holding exactly the release's executables
//! ([`BINARIES`]), nothing else. Packing is deterministic (fixed order, mode, owner and
//! time), so the same binaries always make the same archive and the same hash. Unpacking
//! reads an archive whose hash the signed channel already vouched for, and still refuses
//! anything but those regular files: a wrong archive must not write outside the staging
//! directory or leave a half-filled one looking complete.

use std::io::{Read, Write};
use std::path::Path;

use crate::channel::BINARIES;
use crate::RegistryError;

/// Largest single executable unpacked.
pub const MAX_BINARY_BYTES: u64 = 512 << 20;

fn bad(what: &Path, reason: impl Into<String>) -> RegistryError {
    RegistryError::Archive {
        what: what.display().to_string(),
        reason: reason.into(),
    }
}

/// The archive of the [`BINARIES`] in `bin_dir`.
pub fn pack(bin_dir: &Path) -> Result<Vec<u8>, RegistryError> {
    let mut builder = tar::Builder::new(Vec::new());
    for name in BINARIES {
        let path = bin_dir.join(name);
        let bytes = std::fs::read(&path).map_err(|e| {
            bad(
                bin_dir,
                format!(
                    "{}: {e} (a release holds {})",
                    path.display(),
                    BINARIES.join(", ")
                ),
            )
        })?;
        let mut header = tar::Header::new_ustar();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o755);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, name, bytes.as_slice())
            .map_err(|e| bad(bin_dir, e.to_string()))?;
    }
    builder
        .into_inner()
        .map_err(|e| bad(bin_dir, e.to_string()))
}

/// Writes the [`BINARIES`] of `archive` into the existing, empty directory `into`
/// (mode 0755, synced to disk). `what` names the archive in errors.
pub fn unpack(archive: &[u8], into: &Path, what: &Path) -> Result<(), RegistryError> {
    let mut seen = [false; BINARIES.len()];
    let mut tar = tar::Archive::new(archive);
    let entries = tar.entries().map_err(|e| bad(what, e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| bad(what, format!("unreadable: {e}")))?;
        let path = entry
            .path()
            .map_err(|e| bad(what, e.to_string()))?
            .into_owned();
        let name = path.to_str().unwrap_or_default();
        let Some(i) = BINARIES.iter().position(|b| *b == name) else {
            return Err(bad(
                what,
                format!(
                    "it holds `{}`; a release holds only {}",
                    path.display(),
                    BINARIES.join(", ")
                ),
            ));
        };
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Err(bad(what, format!("`{name}` is not a regular file")));
        }
        if std::mem::replace(&mut seen[i], true) {
            return Err(bad(what, format!("`{name}` is in it twice")));
        }
        let size = entry.size();
        if size > MAX_BINARY_BYTES {
            return Err(bad(what, format!("`{name}` is {size} bytes, too large")));
        }
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| bad(what, format!("`{name}`: {e}")))?;
        write_executable(&into.join(name), &bytes).map_err(|e| bad(what, e))?;
    }
    if let Some(i) = seen.iter().position(|s| !s) {
        return Err(bad(what, format!("`{}` is missing", BINARIES[i])));
    }
    std::fs::File::open(into)
        .and_then(|d| d.sync_all())
        .map_err(|e| bad(what, format!("{}: {e}", into.display())))
}

fn write_executable(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o755)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bins(dir: &Path) {
        for (i, b) in BINARIES.iter().enumerate() {
            std::fs::write(dir.join(b), format!("binary {i}")).unwrap();
        }
    }

    #[test]
    fn packs_deterministically_and_unpacks_every_binary() {
        let src = tempfile::tempdir().unwrap();
        bins(src.path());
        let a = pack(src.path()).unwrap();
        assert_eq!(
            a,
            pack(src.path()).unwrap(),
            "the same binaries, the same bytes"
        );
        let out = tempfile::tempdir().unwrap();
        unpack(&a, out.path(), Path::new("a.tar")).unwrap();
        for (i, b) in BINARIES.iter().enumerate() {
            let p = out.path().join(b);
            assert_eq!(std::fs::read_to_string(&p).unwrap(), format!("binary {i}"));
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(p.metadata().unwrap().permissions().mode() & 0o777, 0o755);
        }
        // A missing binary cannot be packed.
        std::fs::remove_file(src.path().join("astrid-emit")).unwrap();
        assert!(pack(src.path())
            .unwrap_err()
            .to_string()
            .contains("astrid-emit"));
    }

    type Member<'a> = (&'a str, &'a [u8], tar::EntryType);

    fn archive_of(entries: &[Member<'_>]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, bytes, kind) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(bytes.len() as u64);
            h.set_mode(0o755);
            h.set_entry_type(*kind);
            // `set_path` would refuse `..`; an attacker's tar writes the name field directly.
            let field = &mut h.as_old_mut().name;
            field[..name.len()].copy_from_slice(name.as_bytes());
            h.set_cksum();
            b.append(&h, *bytes).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn anything_but_the_release_regular_files_is_refused() {
        use tar::EntryType::{Regular, Symlink};
        let all: Vec<Member<'_>> = BINARIES.iter().map(|b| (*b, &b"x"[..], Regular)).collect();
        let cases: Vec<(Vec<Member<'_>>, &str)> = vec![
            (all[..4].to_vec(), "`astrid-netfwd` is missing"),
            (
                [all[..3].to_vec(), all[4..].to_vec()].concat(),
                "`astrid-emit` is missing",
            ),
            (
                [all.clone(), vec![("../escape", &b"x"[..], Regular)]].concat(),
                "a release holds only",
            ),
            (
                [all.clone(), vec![("astrid", &b"y"[..], Regular)]].concat(),
                "twice",
            ),
            (
                [
                    all[..4].to_vec(),
                    vec![("astrid-netfwd", &b""[..], Symlink)],
                ]
                .concat(),
                "not a regular file",
            ),
        ];
        for (entries, expected) in cases {
            let out = tempfile::tempdir().unwrap();
            let err = unpack(&archive_of(&entries), out.path(), Path::new("bad.tar"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{err}");
            assert!(!out.path().parent().unwrap().join("escape").exists());
        }
        let out = tempfile::tempdir().unwrap();
        assert!(unpack(b"not a tar", out.path(), Path::new("junk.tar")).is_err());
    }
}
