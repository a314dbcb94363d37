//! Capability token decoding and signature verification (`CapabilityToken::from_bytes`,
//! `from_text`, `verify_signature`), which read what a capsule or a person hands the kernel.
//! Holds: no panic; decoding is a strict inverse of encoding (one token, one byte string);
//! nothing but the seeds' own signed tokens verifies under the seeds' key (no forgery, no
//! malleable signature).
#![no_main]

use std::sync::OnceLock;

use astrid_crypto::{CapabilityToken, KeyPair};
use astrid_fuzz::{seed_key, SIGNED_TOKENS};
use libfuzzer_sys::fuzz_target;

fn key() -> &'static KeyPair {
    static KEY: OnceLock<KeyPair> = OnceLock::new();
    KEY.get_or_init(seed_key)
}

fn check(token: &CapabilityToken, bytes: &[u8]) {
    assert_eq!(token.to_bytes(), bytes, "a token with two encodings");
    let text = token.to_text();
    assert_eq!(CapabilityToken::from_text(&text).as_ref().ok(), Some(token));
    if token.verify_signature(key().public_key()).is_ok() {
        assert!(
            SIGNED_TOKENS.contains(&bytes),
            "a token the seeds never signed verifies: {text}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(token) = CapabilityToken::from_bytes(data) {
        check(&token, data);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(token) = CapabilityToken::from_text(text) {
            check(&token, &token.to_bytes());
        }
    }
});
