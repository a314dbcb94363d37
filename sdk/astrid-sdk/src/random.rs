//! Cryptographically secure randomness from the kernel.

use crate::bindings::astrid::sys::sys;
use crate::error::SysCallError;

/// The most bytes one host call returns.
pub const MAX_CHUNK: usize = 65536;

/// `len` random bytes (at most [`MAX_CHUNK`]).
pub fn bytes(len: u32) -> Result<Vec<u8>, SysCallError> {
    sys::random_bytes(len).map_err(Into::into)
}

/// Fills `buf` with random bytes, in as many calls as its length needs.
pub fn fill(buf: &mut [u8]) -> Result<(), SysCallError> {
    for chunk in buf.chunks_mut(MAX_CHUNK) {
        // chunks_mut bounds each chunk by MAX_CHUNK, which fits in u32.
        let len = u32::try_from(chunk.len()).unwrap_or(u32::MAX);
        let got = bytes(len)?;
        if got.len() != chunk.len() {
            return Err(SysCallError::InvalidArgument(format!(
                "asked for {} random bytes, got {}",
                chunk.len(),
                got.len()
            )));
        }
        chunk.copy_from_slice(&got);
    }
    Ok(())
}

/// A random `u64`.
pub fn u64() -> Result<u64, SysCallError> {
    let mut b = [0u8; 8];
    fill(&mut b)?;
    Ok(u64::from_le_bytes(b))
}
