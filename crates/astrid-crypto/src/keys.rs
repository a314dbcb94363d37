//! The runtime's ed25519 key: created once under `keys/`, never printed, never sent anywhere.

use std::fmt;
use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand::TryRngCore;
use zeroize::Zeroizing;

use crate::error::CryptoError;

/// File name of the secret seed inside the keys directory.
pub const RUNTIME_KEY_FILE: &str = "runtime.key";
/// File name of the public key (hex) beside it, for external verifiers.
pub const RUNTIME_PUB_FILE: &str = "runtime.pub";

const SEED_LEN: usize = 32;

/// An ed25519 public key together with its short id.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    key: VerifyingKey,
    id: String,
}

impl PublicKey {
    /// Refuses points that are not on the curve and the small-order ("weak") keys, for which
    /// a signature would prove nothing.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, CryptoError> {
        let key = VerifyingKey::from_bytes(bytes)
            .map_err(|_| CryptoError::PublicKey("not a valid ed25519 point".into()))?;
        if key.is_weak() {
            return Err(CryptoError::PublicKey("weak (small-order) key".into()));
        }
        Ok(Self::from_verifying(key))
    }

    fn from_verifying(key: VerifyingKey) -> Self {
        let id = key_id_of(key.as_bytes());
        PublicKey { key, id }
    }

    pub fn to_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// First 16 hex characters of BLAKE3(public key bytes).
    pub fn key_id(&self) -> &str {
        &self.id
    }

    /// Strict verification (rejects non-canonical signatures and small-order components),
    /// so one message has one valid signature per key.
    pub fn verify(&self, message: &[u8], signature: &[u8; 64]) -> Result<(), CryptoError> {
        self.key
            .verify_strict(message, &Signature::from_bytes(signature))
            .map_err(|_| CryptoError::BadSignature)
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.key.as_bytes()))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({}, id {})", self, self.id)
    }
}

impl FromStr for PublicKey {
    type Err = CryptoError;
    /// 64 hex characters.
    fn from_str(s: &str) -> Result<Self, CryptoError> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(s.trim(), &mut bytes)
            .map_err(|e| CryptoError::PublicKey(format!("expected 64 hex characters: {e}")))?;
        PublicKey::from_bytes(&bytes)
    }
}

fn key_id_of(public: &[u8; 32]) -> String {
    hex::encode(&blake3::hash(public).as_bytes()[..8])
}

/// Verifies `signature` over `message` with `public`.
pub fn verify_with(
    public: &PublicKey,
    message: &[u8],
    signature: &[u8; 64],
) -> Result<(), CryptoError> {
    public.verify(message, signature)
}

/// The runtime signing key. The secret is zeroized on drop (ed25519-dalek's `SigningKey`
/// does that) and never appears in `Debug` output.
pub struct KeyPair {
    signing: SigningKey,
    public: PublicKey,
}

impl KeyPair {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Result<Self, CryptoError> {
        let mut seed = Zeroizing::new([0u8; SEED_LEN]);
        rand::rngs::OsRng
            .try_fill_bytes(seed.as_mut())
            .map_err(CryptoError::Random)?;
        Ok(Self::from_seed(&seed))
    }

    /// Deterministic key from a 32-byte seed (tests, worked examples).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let signing = SigningKey::from_bytes(seed);
        let public = PublicKey::from_verifying(signing.verifying_key());
        KeyPair { signing, public }
    }

    /// Loads `<keys_dir>/runtime.key`, creating it (and `keys_dir`, mode 0700) on first use.
    /// The file holds the 32-byte seed, mode 0600; a key file readable by anyone else is
    /// refused rather than silently trusted.
    pub fn load_or_create(keys_dir: &Path) -> Result<Self, CryptoError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(keys_dir)
            .map_err(|e| CryptoError::io(keys_dir, e))?;
        let path = keys_dir.join(RUNTIME_KEY_FILE);
        let pair = match read_seed(&path)? {
            Some(seed) => Self::from_seed(&seed),
            None => create_key_file(keys_dir, &path)?,
        };
        pair.write_public_file(keys_dir)?;
        Ok(pair)
    }

    /// Creates a new key file at `path` (mode 0600, the 32-byte seed): a publisher's signing
    /// key. An existing file is never overwritten: losing a key that others trust is not
    /// undoable.
    pub fn create_file(path: &Path) -> Result<Self, CryptoError> {
        if fs::symlink_metadata(path).is_ok() {
            return Err(CryptoError::KeyFile {
                path: path.to_owned(),
                reason: "already exists; a key file is never overwritten".into(),
            });
        }
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        create_key_file(dir, path)
    }

    /// Loads a key file written by [`KeyPair::create_file`] (or `runtime.key`), refusing one
    /// that others may read.
    pub fn load_file(path: &Path) -> Result<Self, CryptoError> {
        let seed = read_seed(path)?.ok_or_else(|| CryptoError::KeyFile {
            path: path.to_owned(),
            reason: "does not exist".into(),
        })?;
        Ok(Self::from_seed(&seed))
    }

    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    pub fn key_id(&self) -> &str {
        self.public.key_id()
    }

    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }

    fn write_public_file(&self, keys_dir: &Path) -> Result<(), CryptoError> {
        let path = keys_dir.join(RUNTIME_PUB_FILE);
        let text = format!("{}\n", self.public);
        if fs::read_to_string(&path).is_ok_and(|t| t == text) {
            return Ok(());
        }
        fs::write(&path, text).map_err(|e| CryptoError::io(&path, e))
    }
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair")
            .field("key_id", &self.public.key_id())
            .field("public", &self.public.to_string())
            .finish_non_exhaustive()
    }
}

/// `Ok(None)` when the file does not exist.
fn read_seed(path: &Path) -> Result<Option<Zeroizing<[u8; SEED_LEN]>>, CryptoError> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(CryptoError::io(path, e)),
    };
    let bad = |reason: &str| CryptoError::KeyFile {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    if !meta.file_type().is_file() {
        return Err(bad("not a regular file"));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(CryptoError::KeyPermissions {
            path: path.to_owned(),
            mode: meta.mode() & 0o777,
        });
    }
    let mut bytes = Zeroizing::new(Vec::with_capacity(SEED_LEN + 1));
    fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| CryptoError::io(path, e))?;
    let mut seed = Zeroizing::new([0u8; SEED_LEN]);
    if bytes.len() != SEED_LEN {
        return Err(bad(&format!(
            "expected {SEED_LEN} bytes, found {}",
            bytes.len()
        )));
    }
    seed.copy_from_slice(&bytes);
    Ok(Some(seed))
}

/// Writes a new key to a temporary file and links it into place. `hard_link` fails when the
/// target exists, so two processes racing on first start end up sharing one key instead of
/// one of them overwriting the other's.
fn create_key_file(keys_dir: &Path, path: &Path) -> Result<KeyPair, CryptoError> {
    let mut seed = Zeroizing::new([0u8; SEED_LEN]);
    rand::rngs::OsRng
        .try_fill_bytes(seed.as_mut())
        .map_err(CryptoError::Random)?;
    let tmp: PathBuf = keys_dir.join(format!(
        ".{RUNTIME_KEY_FILE}.{}.{:016x}",
        std::process::id(),
        rand::random::<u64>()
    ));
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(seed.as_ref())?;
        f.sync_all()?;
        fs::hard_link(&tmp, path)
    })();
    let _ = fs::remove_file(&tmp);
    match result {
        Ok(()) => {
            if let Ok(dir) = fs::File::open(keys_dir) {
                let _ = dir.sync_all();
            }
            Ok(KeyPair::from_seed(&seed))
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            let seed = read_seed(path)?.ok_or_else(|| CryptoError::KeyFile {
                path: path.to_owned(),
                reason: "vanished while being created".into(),
            })?;
            Ok(KeyPair::from_seed(&seed))
        }
        Err(e) => Err(CryptoError::io(path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_file_is_created_once_and_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("publisher.key");
        let made = KeyPair::create_file(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let loaded = KeyPair::load_file(&path).unwrap();
        assert_eq!(loaded.public_key(), made.public_key());
        let again = KeyPair::create_file(&path).unwrap_err().to_string();
        assert!(again.contains("never overwritten"), "{again}");
        let missing = KeyPair::load_file(&dir.path().join("nope.key")).unwrap_err();
        assert!(missing.to_string().contains("does not exist"), "{missing}");
    }

    #[test]
    fn sign_verify_and_ids() {
        let kp = KeyPair::from_seed(&[7; 32]);
        let sig = kp.sign(b"hello");
        verify_with(kp.public_key(), b"hello", &sig).unwrap();
        assert!(matches!(
            verify_with(kp.public_key(), b"hellp", &sig),
            Err(CryptoError::BadSignature)
        ));
        assert_eq!(kp.key_id().len(), 16);
        assert_eq!(
            kp.key_id(),
            &blake3::hash(&kp.public_key().to_bytes()).to_hex()[..16]
        );
        let text = kp.public_key().to_string();
        assert_eq!(text.parse::<PublicKey>().unwrap(), *kp.public_key());
        assert!("zz".parse::<PublicKey>().is_err());
        let other = KeyPair::generate().unwrap();
        assert_ne!(other.key_id(), kp.key_id());
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let seed = [0xab; 32];
        let kp = KeyPair::from_seed(&seed);
        let dbg = format!("{kp:?}");
        assert!(dbg.contains(kp.key_id()), "{dbg}");
        assert!(!dbg.contains(&hex::encode(seed)), "{dbg}");
        assert!(!dbg.contains("171, 171"), "{dbg}");
    }

    #[test]
    fn weak_public_key_refused() {
        // The identity point: every signature "verifies" under it.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(matches!(
            PublicKey::from_bytes(&identity),
            Err(CryptoError::PublicKey(_))
        ));
    }
}
