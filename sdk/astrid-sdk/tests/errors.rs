//! Error text and conversions: what crosses the bus as text must name the WIT variant.

use astrid_sdk::{
    CapsuleError, FsError, HttpError, IpcError, KvError, ProcessError, SysCallError, SysError,
};

#[test]
fn display_is_wit_variant_then_message() {
    assert_eq!(
        FsError::NotFound("~/data/x".into()).to_string(),
        "not-found: ~/data/x"
    );
    assert_eq!(
        FsError::IsADirectory("d".into()).to_string(),
        "is-a-directory: d"
    );
    assert_eq!(IpcError::Timeout.to_string(), "timeout");
    assert_eq!(IpcError::Timeout.message(), "");
    assert_eq!(
        KvError::QuotaExceeded("full".into()).kind(),
        "quota-exceeded"
    );
    assert_eq!(
        SysCallError::Denied("rule".into()).to_string(),
        "denied: rule"
    );
}

#[test]
fn every_package_error_lifts_into_capsule_error() {
    fn fs() -> Result<(), CapsuleError> {
        Err(FsError::Denied("/etc/passwd".into()))?
    }
    fn kv() -> Result<(), CapsuleError> {
        Err(KvError::Denied("kv not granted".into()))?
    }
    fn ipc() -> Result<(), SysError> {
        Err(IpcError::Failed("remote".into()))?
    }
    assert_eq!(
        fs(),
        Err(CapsuleError::Failed("fs: denied: /etc/passwd".into()))
    );
    assert_eq!(
        kv(),
        Err(CapsuleError::Failed("kv: denied: kv not granted".into()))
    );
    assert_eq!(ipc(), Err(SysError::Ipc(IpcError::Failed("remote".into()))));
}

#[test]
fn json_errors_are_invalid_arguments() {
    let bad = serde_json::from_slice::<u32>(b"x").unwrap_err();
    assert!(matches!(
        CapsuleError::from(bad),
        CapsuleError::InvalidArgument(_)
    ));
    let bad = serde_json::from_slice::<u32>(b"x").unwrap_err();
    assert!(matches!(
        CapsuleError::from(SysError::from(bad)),
        CapsuleError::InvalidArgument(_)
    ));
    assert_eq!(
        CapsuleError::from("plain"),
        CapsuleError::Failed("plain".into())
    );
}

#[test]
fn http_and_process_errors_name_their_package() {
    assert_eq!(HttpError::UnknownHandle.to_string(), "unknown-handle");
    assert_eq!(
        HttpError::TooLarge("body over 1 MiB".into()).to_string(),
        "too-large: body over 1 MiB"
    );
    fn http() -> Result<(), CapsuleError> {
        Err(HttpError::Denied(
            "net: evil.example:443 not in the manifest".into(),
        ))?
    }
    fn process() -> Result<(), CapsuleError> {
        Err(ProcessError::NotFound("nosuchprog".into()))?
    }
    fn status() -> Result<(), CapsuleError> {
        Err(SysError::HttpStatus {
            status: 404,
            url: "https://x.example/a".into(),
        })?
    }
    assert_eq!(
        http(),
        Err(CapsuleError::Failed(
            "http: denied: net: evil.example:443 not in the manifest".into()
        ))
    );
    assert_eq!(
        process(),
        Err(CapsuleError::Failed(
            "process: not-found: nosuchprog".into()
        ))
    );
    assert_eq!(
        status(),
        Err(CapsuleError::Failed(
            "http: https://x.example/a answered status 404".into()
        ))
    );
    assert_eq!(
        SysError::from(ProcessError::Unavailable("no bwrap".into())),
        SysError::Process(ProcessError::Unavailable("no bwrap".into()))
    );
}

#[test]
fn uplink_errors_name_their_package() {
    fn notify() -> Result<(), CapsuleError> {
        Err(astrid_sdk::UplinkError::QuotaExceeded("30 a minute".into()))?
    }
    assert_eq!(
        notify(),
        Err(CapsuleError::Failed(
            "uplink: quota-exceeded: 30 a minute".into()
        ))
    );
}
