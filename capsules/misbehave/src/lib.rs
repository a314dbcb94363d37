//! `misbehave`: a hostile capsule. Each handler tries one thing the kernel must stop, either
//! by trapping the instance (spin, alloc, panic) or by returning a typed denial (the rest).
//! Handlers that expect a denial reply with the error text, so tests can read it.
#![forbid(unsafe_code)]

use std::hint::black_box;

use astrid_sdk::prelude::*;

#[derive(Default)]
struct Misbehave;

/// The reply for a call that should have been refused.
fn denial<T>(result: Result<T, impl std::fmt::Display>) -> Vec<u8> {
    match result {
        Ok(_) => b"ALLOWED (expected a denial)".to_vec(),
        Err(e) => e.to_string().into_bytes(),
    }
}

#[capsule]
impl Misbehave {
    /// Never returns: only the epoch deadline can stop it.
    #[astrid::handler]
    fn spin(&self, _event: &Event) -> Result<Option<Vec<u8>>, CapsuleError> {
        let mut n: u64 = 0;
        loop {
            n = black_box(n.wrapping_add(1));
        }
    }

    /// Grows memory 1 MiB at a time, writing every page, until the limiter says no.
    #[astrid::handler]
    fn alloc(&self, _event: &Event) -> Result<Option<Vec<u8>>, CapsuleError> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            let chunk = vec![0xA5u8; 1 << 20];
            hoard.push(black_box(chunk));
        }
    }

    #[astrid::handler]
    fn panic(&self, _event: &Event) -> Result<Option<Vec<u8>>, CapsuleError> {
        panic!("misbehave: deliberate panic");
    }

    /// `secret.topic` is not in `[publish]`.
    #[astrid::handler]
    fn publish_undeclared(&self, _event: &Event) -> Result<Option<Vec<u8>>, CapsuleError> {
        Ok(Some(denial(ipc::publish("secret.topic", b"leak"))))
    }

    /// Re-publishes its own trigger: an event loop through the bus, which the kernel's hop
    /// limit must end. Replies with how the last publish went.
    #[astrid::handler]
    fn loop_forever(&self, event: &Event) -> Result<Option<Vec<u8>>, CapsuleError> {
        Ok(Some(denial(ipc::publish(
            "misbehave.v1.loop",
            &event.payload,
        ))))
    }

    /// `astrid.` topics belong to the kernel.
    #[astrid::handler]
    fn publish_kernel(&self, _event: &Event) -> Result<Option<Vec<u8>>, CapsuleError> {
        Ok(Some(denial(ipc::publish(
            "astrid.v1.capsule.loaded",
            br#"{"name":"echo"}"#,
        ))))
    }

    /// Claims to be `echo` in the payload; the kernel must still stamp `capsule:misbehave`.
    #[astrid::handler]
    fn forge(&self, _event: &Event) -> Result<Option<Vec<u8>>, CapsuleError> {
        ipc::publish("echo.v1.request", br#"{"source":"capsule:echo"}"#)?;
        Ok(Some(b"sent".to_vec()))
    }

    /// The manifest does not grant `kv`.
    #[astrid::handler]
    fn kv_denied(&self, _event: &Event) -> Result<Option<Vec<u8>>, CapsuleError> {
        Ok(Some(denial(kv::get("anything"))))
    }

    /// The manifest declares no `net` targets.
    #[astrid::handler]
    fn http_denied(&self, _event: &Event) -> Result<Option<Vec<u8>>, CapsuleError> {
        Ok(Some(denial(
            http::Request::get("https://example.com/").send(),
        )))
    }

    /// The manifest declares no programs.
    #[astrid::handler]
    fn process_denied(&self, _event: &Event) -> Result<Option<Vec<u8>>, CapsuleError> {
        let run = process::Command::new("sh")
            .arg("-c")
            .arg("id")
            .cwd("/tmp")
            .run();
        Ok(Some(denial(run)))
    }

    /// The manifest grants no file roots.
    #[astrid::handler]
    fn fs_denied(&self, _event: &Event) -> Result<Option<Vec<u8>>, CapsuleError> {
        Ok(Some(denial(fs::read("/etc/passwd"))))
    }
}
