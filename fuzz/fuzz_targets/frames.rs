//! The socket's length-prefixed framing (`astrid_client::framing::read_frame`), shared by the
//! daemon and every client. The first byte picks the frame limit. Holds: no panic; no frame
//! over the limit is returned; a clean end comes exactly when every byte was framed, so no
//! byte is lost or invented between frames.
#![no_main]

use std::sync::OnceLock;

use astrid_client::framing::read_frame;
use astrid_types::wire::{self, ClientMessage};
use libfuzzer_sys::fuzz_target;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&limit, stream)) = data.split_first() else {
        return;
    };
    let max = usize::from(limit) * 16;
    let mut reader = stream;
    let mut framed = 0usize;
    runtime().block_on(async {
        loop {
            match read_frame(&mut reader, max).await {
                Ok(Some(frame)) => {
                    assert!(frame.len() <= max, "a frame over the limit was returned");
                    framed += 4 + frame.len();
                    let _ = wire::decode::<ClientMessage>(&frame);
                }
                Ok(None) => {
                    assert_eq!(framed, stream.len(), "a clean end before the last byte");
                    break;
                }
                Err(_) => {
                    assert!(
                        framed < stream.len(),
                        "an error after every byte was framed"
                    );
                    break;
                }
            }
        }
    });
});
