//! `dep-b` 0.0.1: exports `acme:b` and imports nothing, so it can be installed before `dep-a`;
//! updating it to `testdata/cycle/dep-b` (which imports `acme:a`) would close a cycle.
#![forbid(unsafe_code)]

use astrid_sdk::prelude::*;

#[derive(Default)]
struct Dep;

#[capsule]
impl Dep {
    #[astrid::handler]
    fn ping(&self, _event: &Event) -> Result<Option<Vec<u8>>, CapsuleError> {
        Ok(Some(b"pong 0.0.1".to_vec()))
    }
}
