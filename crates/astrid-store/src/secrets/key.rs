use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use rand::rngs::OsRng;
use rand::TryRngCore;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::StoreError;

pub(crate) const KEY_LEN: usize = 32;

/// The key that encrypts a principal's secrets. It lives in its own file outside the
/// database, so a copy of the database alone reveals no secret.
pub struct SecretKey(
    // Boxed so moving the key around never leaves stray copies of the bytes on the stack.
    Box<[u8; KEY_LEN]>,
);

impl SecretKey {
    /// Reads the key at `path`, or creates it (owner-only) when no file is there.
    ///
    /// An existing file that is not exactly 32 bytes or is accessible to anyone but its
    /// owner is an error, never replaced: a new key would make every stored secret
    /// unreadable, and a key others could read must be treated as leaked by the user.
    pub fn load_or_create(path: &Path) -> Result<SecretKey, StoreError> {
        if let Some(key) = load(path)? {
            return Ok(key);
        }
        create(path)
    }

    pub(crate) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl Drop for SecretKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl ZeroizeOnDrop for SecretKey {}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

fn key_error(path: &Path, reason: impl fmt::Display) -> StoreError {
    StoreError::KeyFile {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// `None` when nothing exists at `path`.
fn load(path: &Path) -> Result<Option<SecretKey>, StoreError> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(key_error(path, e)),
    };
    // Checked on the open handle, so the file judged is the file read.
    let meta = file.metadata().map_err(|e| key_error(path, e))?;
    if !meta.is_file() {
        return Err(key_error(path, "not a regular file"));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & !0o600 != 0 {
            return Err(key_error(
                path,
                format!("permissions {mode:04o} are wider than 0600"),
            ));
        }
    }
    if meta.len() != KEY_LEN as u64 {
        return Err(key_error(
            path,
            format!("holds {} bytes, expected {KEY_LEN}", meta.len()),
        ));
    }
    let mut key = SecretKey(Box::new([0; KEY_LEN]));
    file.read_exact(&mut key.0[..])
        .map_err(|e| key_error(path, e))?;
    Ok(Some(key))
}

fn create(path: &Path) -> Result<SecretKey, StoreError> {
    let name = path
        .file_name()
        .ok_or_else(|| key_error(path, "path has no file name"))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut key = SecretKey(Box::new([0; KEY_LEN]));
    OsRng
        .try_fill_bytes(&mut key.0[..])
        .map_err(|e| key_error(path, format!("no OS randomness: {e}")))?;
    let mut suffix = [0u8; 8];
    OsRng
        .try_fill_bytes(&mut suffix)
        .map_err(|e| key_error(path, format!("no OS randomness: {e}")))?;
    let mut temp_name = name.to_os_string();
    temp_name.push(format!(".tmp-{}", hex8(&suffix)));
    let temp = dir.join(temp_name);

    let written = write_private(&temp, key.bytes());
    // A hard link publishes the finished file atomically and, unlike rename, fails
    // instead of replacing a key another process published first.
    let published = written.and_then(|()| fs::hard_link(&temp, path));
    let _ = fs::remove_file(&temp);
    match published {
        Ok(()) => {
            sync_dir(&dir).map_err(|e| key_error(path, e))?;
            Ok(key)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            load(path)?.ok_or_else(|| key_error(path, "appeared and vanished while being created"))
        }
        Err(e) => Err(key_error(path, e)),
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut file = opts.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Makes the new directory entry itself durable, not only the file's contents.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

fn hex8(bytes: &[u8; 8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
