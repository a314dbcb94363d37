//! `#[capsule]` dispatch, exercised natively through the `Capsule` trait it implements (the
//! host imports are never called here, so no wasm runtime is needed).

use std::cell::{Cell, RefCell};

use astrid_sdk::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Default)]
struct Probe {
    installs: Cell<u32>,
    upgraded_from: RefCell<Option<String>>,
}

#[derive(Deserialize)]
struct AddArgs {
    a: i64,
    b: i64,
}

#[derive(Serialize)]
struct Sum {
    sum: i64,
}

#[capsule]
impl Probe {
    #[astrid::tool]
    fn add(&self, args: AddArgs) -> Result<Sum, CapsuleError> {
        Ok(Sum {
            sum: args.a + args.b,
        })
    }

    /// The two-argument form: the context rides along with the arguments.
    #[astrid::tool]
    fn whereami(
        &self,
        args: AddArgs,
        ctx: &ToolContext,
    ) -> Result<serde_json::Value, CapsuleError> {
        let Some(ws) = ctx.workspace.as_deref() else {
            return Err(CapsuleError::failed("no workspace"));
        };
        Ok(serde_json::json!({
            "output": format!("{}:{}:{}", ctx.session, ws, args.a + args.b)
        }))
    }

    #[astrid::tool(name = "always-fails")]
    fn fails(&self, _args: serde_json::Value) -> Result<(), String> {
        Err("nope".to_string())
    }

    #[astrid::handler]
    fn echo(&self, event: &Event) -> Result<Option<Vec<u8>>, CapsuleError> {
        Ok(Some(event.payload.clone()))
    }

    #[astrid::handler]
    fn silent(&self, _event: &Event) -> Result<(), CapsuleError> {
        Ok(())
    }

    #[astrid::handler]
    fn parse(&self, event: &Event) -> Result<String, CapsuleError> {
        let v: Vec<u32> = event.json()?;
        Ok(v.iter().sum::<u32>().to_string())
    }

    #[astrid::handler]
    fn installs(&self) -> Result<String, CapsuleError> {
        Ok(self.installs.get().to_string())
    }

    /// Named like the trait method on purpose: the inherent method must win in dispatch.
    #[astrid::install]
    fn install(&self) -> Result<(), CapsuleError> {
        self.installs.set(self.installs.get() + 1);
        Ok(())
    }

    #[astrid::upgrade]
    fn upgrade(&self, previous: &str) -> Result<(), CapsuleError> {
        if previous == "0.0.0" {
            return Err(CapsuleError::invalid("too old"));
        }
        *self.upgraded_from.borrow_mut() = Some(previous.to_owned());
        Ok(())
    }

    /// Not marked: an ordinary method stays callable and is not a handler.
    fn helper(&self) -> u32 {
        7
    }
}

fn event(payload: &[u8]) -> Event {
    Event {
        topic: "t".into(),
        payload: payload.to_vec(),
        source: "client:test".into(),
        principal: "me".into(),
    }
}

fn call(c: &Probe, handler: &str, payload: &[u8]) -> Result<Option<Vec<u8>>, CapsuleError> {
    Capsule::handle(c, handler, &event(payload))
}

#[test]
fn tool_accepts_call_envelope_and_bare_args() {
    let c = Probe::default();
    let envelope = call(&c, "add", br#"{"call_id":"c1","args":{"a":2,"b":40}}"#).unwrap();
    assert_eq!(envelope.unwrap(), br#"{"sum":42}"#);
    let bare = call(&c, "add", br#"{"a":-1,"b":1}"#).unwrap();
    assert_eq!(bare.unwrap(), br#"{"sum":0}"#);
}

#[test]
fn bad_tool_input_is_invalid_argument_not_a_panic() {
    let c = Probe::default();
    for payload in [
        &b"{not json"[..],
        br#"{"a":"x","b":1}"#,
        br#"{"args":{"a":1}}"#,
        b"\xff",
    ] {
        match call(&c, "add", payload) {
            Err(CapsuleError::InvalidArgument(_)) => {}
            other => panic!("{payload:?}: expected invalid-argument, got {other:?}"),
        }
    }
}

#[test]
fn tool_errors_and_renamed_tools() {
    let c = Probe::default();
    assert_eq!(
        call(&c, "always-fails", b"{}"),
        Err(CapsuleError::Failed("nope".into()))
    );
    // The method name is not a handler name once renamed.
    assert_eq!(
        call(&c, "fails", b"{}"),
        Err(CapsuleError::UnknownHandler("fails".into()))
    );
}

#[test]
fn handlers_reply_in_their_own_types() {
    let c = Probe::default();
    assert_eq!(
        call(&c, "echo", b"\x00\x01hi").unwrap().unwrap(),
        b"\x00\x01hi"
    );
    assert_eq!(call(&c, "silent", b"x").unwrap(), None);
    assert_eq!(call(&c, "parse", b"[1,2,3]").unwrap().unwrap(), b"6");
    assert!(matches!(
        call(&c, "parse", b"[1,"),
        Err(CapsuleError::InvalidArgument(_))
    ));
}

#[test]
fn unknown_handler_names_itself() {
    let c = Probe::default();
    assert_eq!(
        call(&c, "helper", b""),
        Err(CapsuleError::UnknownHandler("helper".into()))
    );
    assert_eq!(c.helper(), 7);
}

#[test]
fn lifecycle_methods_are_wired_and_missing_ones_default_to_ok() {
    let c = Probe::default();
    Capsule::install(&c).unwrap();
    Capsule::install(&c).unwrap();
    assert_eq!(call(&c, "installs", b"").unwrap().unwrap(), b"2");
    Capsule::upgrade(&c, "0.1.0").unwrap();
    assert_eq!(c.upgraded_from.borrow().as_deref(), Some("0.1.0"));
    assert_eq!(
        Capsule::upgrade(&c, "0.0.0"),
        Err(CapsuleError::InvalidArgument("too old".into()))
    );
    // No #[astrid::run] method: the default applies.
    assert_eq!(Capsule::run(&c), Ok(()));
}

#[test]
fn two_argument_tool_receives_the_context() {
    let c = Probe::default();
    let reply = call(
        &c,
        "whereami",
        br#"{"args":{"a":1,"b":2},"context":{"session":"0123456789abcdef","workspace":"/w"}}"#,
    )
    .unwrap()
    .unwrap();
    assert_eq!(reply, br#"{"output":"0123456789abcdef:/w:3"}"#);
    // No context (or a null one) is the default context, which the tool itself rejects here.
    for payload in [
        &br#"{"args":{"a":1,"b":2}}"#[..],
        br#"{"a":1,"b":2}"#,
        br#"{"args":{"a":1,"b":2},"context":null}"#,
    ] {
        assert_eq!(
            call(&c, "whereami", payload),
            Err(CapsuleError::Failed("no workspace".into())),
            "{payload:?}"
        );
    }
    // A context of the wrong shape is the caller's mistake.
    assert!(matches!(
        call(&c, "whereami", br#"{"args":{"a":1,"b":2},"context":{"workspace":7}}"#),
        Err(CapsuleError::InvalidArgument(m)) if m.contains("context")
    ));
}

#[test]
fn no_manifest_no_describe_handler() {
    // This crate has no Capsule.toml, so nothing answers tool.v1.describe.
    assert_eq!(
        call(&Probe::default(), "astrid.describe-tools", b""),
        Err(CapsuleError::UnknownHandler("astrid.describe-tools".into()))
    );
}
