//! `dep-b`: half of an import cycle (`acme:b` needs `acme:a`), which the kernel must refuse
//! to boot.
#![forbid(unsafe_code)]

use astrid_sdk::prelude::*;

#[derive(Default)]
struct Dep;

#[capsule]
impl Dep {
    #[astrid::handler]
    fn ping(&self, _event: &Event) -> Result<Option<Vec<u8>>, CapsuleError> {
        Ok(Some(b"pong".to_vec()))
    }
}
