//! What the fuzz targets share: the fixed signing key the seeds were made with, the signed
//! tokens among the seeds, and the split of one input into parts.

use astrid_crypto::KeyPair;

/// The key every seed token and seed audit chain is signed with. Fixed, so a target can tell
/// a signature the seeds carry from one the fuzzer would have forged.
pub const SEED_KEY: [u8; 32] = [7; 32];

pub fn seed_key() -> KeyPair {
    KeyPair::from_seed(&SEED_KEY)
}

/// The tokens `make_seeds` signed with [`SEED_KEY`] (their storage bytes). No other byte
/// string may ever verify under that key.
pub const SIGNED_TOKENS: &[&[u8]] = &[
    include_bytes!("../seeds/token/signed-fs-read.bin"),
    include_bytes!("../seeds/token/signed-net-child.bin"),
    include_bytes!("../seeds/token/signed-bound-tool.bin"),
];

/// Splits `data` at the little-endian u16 its first two bytes hold (clamped): two inputs
/// from one, so a target can fuzz a pair (a log and its head, a pattern and a resource).
pub fn split2(data: &[u8]) -> (&[u8], &[u8]) {
    if data.len() < 2 {
        return (data, &[]);
    }
    let at = usize::from(u16::from_le_bytes([data[0], data[1]]));
    let rest = &data[2..];
    rest.split_at(at.min(rest.len()))
}

/// The input with a u16 length prefix, the inverse of [`split2`] (for writing seeds).
pub fn join2(a: &[u8], b: &[u8]) -> Vec<u8> {
    let len = u16::try_from(a.len()).expect("a seed part fits in u16");
    let mut out = len.to_le_bytes().to_vec();
    out.extend_from_slice(a);
    out.extend_from_slice(b);
    out
}
