//! The worked example of docs/AUDIT-FORMAT.md, byte for byte. If this test fails, the
//! format changed and the document (and every external verifier) must change with it.

use astrid_audit::{AuditEntry, Decision, SealedEntry};
use astrid_crypto::KeyPair;
use astrid_types::PrincipalId;

fn seed() -> [u8; 32] {
    std::array::from_fn(|i| i as u8)
}

#[test]
fn worked_example_matches_the_document() {
    let key = KeyPair::from_seed(&seed());
    let entry = AuditEntry {
        seq: 1,
        time_ms: 1_767_225_600_000,
        principal: PrincipalId::new("alice").unwrap(),
        capsule: "astrid-capsule-fs".into(),
        action: "fs.read".into(),
        resource: "fs:read:/home/alice/notes.txt".into(),
        decision: Decision::Allowed,
        outcome: "{\"bytes\":42}".into(),
        prev_hash: [0; 32],
    };
    let sealed = SealedEntry::seal(entry, &key);
    println!("public key  {}", key.public_key());
    println!("key id      {}", key.key_id());
    println!("canonical   {}", hex::encode(&sealed.canonical));
    println!("hash        {}", hex::encode(sealed.hash));
    println!("signature   {}", hex::encode(sealed.signature));
    assert_eq!(key.public_key().to_string(), PUBLIC_KEY);
    assert_eq!(hex::encode(&sealed.canonical), CANONICAL);
    assert_eq!(hex::encode(sealed.hash), HASH);
    assert_eq!(hex::encode(sealed.signature), SIGNATURE);
}

const PUBLIC_KEY: &str = "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8";
const CANONICAL: &str = concat!(
    "6173747269642d61756469742d656e7472792d76310000000008000000000000",
    "0001000000080000019b76daa80000000005616c696365000000116173747269",
    "642d63617073756c652d66730000000766732e726561640000001d66733a7265",
    "61643a2f686f6d652f616c6963652f6e6f7465732e7478740000000101000000",
    "0c7b226279746573223a34327d00000020000000000000000000000000000000",
    "0000000000000000000000000000000000",
);
const HASH: &str = "b91979ef2647dace2a5bf974969ef5adac3cc301e63bf138307ea0589be95760";
const SIGNATURE: &str = "708b4502153b5d4e48d0dc772c45e6bcb0318b4f26aaefb03cab492b59cd4fe433f5dec85cee5f7e5b40b57173d34010dd78e89356c651e08216d0a352302606";
