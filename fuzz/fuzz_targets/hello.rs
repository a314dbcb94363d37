//! The daemon's handshake decoder (`astrid_types::wire::decode_hello`), which reads the first
//! frame of every connection before anything is authenticated. Also every later frame's
//! decoder. Holds: no panic; a hello it accepts offers a version this build speaks and reads
//! back the same after re-encoding.
#![no_main]

use astrid_types::wire::{self, ClientMessage};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(hello) = wire::decode_hello(data) {
        assert!(hello
            .versions
            .iter()
            .any(|v| wire::PROTOCOL_VERSIONS.contains(v)));
        let again = wire::encode(&ClientMessage::Hello {
            versions: hello.versions.clone(),
            credential: hello.credential.clone(),
            principal: hello.principal.clone(),
            client_name: hello.client_name.clone(),
        })
        .expect("an accepted hello encodes");
        assert_eq!(wire::decode_hello(&again).as_ref(), Ok(&hello));
    }
    if let Ok(msg) = wire::decode::<ClientMessage>(data) {
        let again = wire::encode(&msg).expect("a decoded message encodes");
        assert_eq!(wire::decode::<ClientMessage>(&again).ok(), Some(msg));
    }
});
