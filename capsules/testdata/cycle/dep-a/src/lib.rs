//! `dep-a`: half of an import cycle (`acme:a` needs `acme:b`), which the kernel must refuse
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
