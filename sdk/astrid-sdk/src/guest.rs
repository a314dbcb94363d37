//! The bridge between the WIT `guest` export and a capsule author's type.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::CapsuleError;
use crate::event::Event;

/// What a capsule does when the kernel calls it. `#[capsule]` implements this from the
/// annotated methods; a hand-written implementation is exported with [`crate::export_capsule!`].
///
/// One value of the type lives for as long as the kernel keeps the instance, so fields may
/// cache state between events (interior mutability needed, since calls get `&self`).
pub trait Capsule {
    /// Once, when the capsule is first installed for a principal.
    fn install(&self) -> Result<(), CapsuleError> {
        Ok(())
    }

    /// When a new version replaces `previous_version`.
    fn upgrade(&self, previous_version: &str) -> Result<(), CapsuleError> {
        let _ = previous_version;
        Ok(())
    }

    /// One event for the handler the manifest names; the bytes, if any, are the reply.
    fn handle(&self, handler: &str, event: &Event) -> Result<Option<Vec<u8>>, CapsuleError>;

    /// The background loop, for manifests with `background = true`.
    fn run(&self) -> Result<(), CapsuleError> {
        Ok(())
    }
}

/// The values a `#[astrid::handler]` method may return inside its `Result`.
pub trait IntoReply {
    /// The reply bytes, or `None` for no reply.
    fn into_reply(self) -> Option<Vec<u8>>;
}

impl IntoReply for Option<Vec<u8>> {
    fn into_reply(self) -> Option<Vec<u8>> {
        self
    }
}

impl IntoReply for Vec<u8> {
    fn into_reply(self) -> Option<Vec<u8>> {
        Some(self)
    }
}

impl IntoReply for () {
    fn into_reply(self) -> Option<Vec<u8>> {
        None
    }
}

impl IntoReply for String {
    fn into_reply(self) -> Option<Vec<u8>> {
        Some(self.into_bytes())
    }
}

impl IntoReply for &str {
    fn into_reply(self) -> Option<Vec<u8>> {
        Some(self.as_bytes().to_vec())
    }
}

impl IntoReply for &[u8] {
    fn into_reply(self) -> Option<Vec<u8>> {
        Some(self.to_vec())
    }
}

impl<const N: usize> IntoReply for &[u8; N] {
    fn into_reply(self) -> Option<Vec<u8>> {
        Some(self.to_vec())
    }
}

/// Decodes a tool call's arguments, ignoring its context (see [`crate::tool::parse_call`]).
pub fn tool_args<A: DeserializeOwned>(payload: &[u8]) -> Result<A, CapsuleError> {
    crate::tool::parse_call(payload).map(|(args, _)| args)
}

/// Encodes a tool's result as its JSON reply.
pub fn tool_reply<R: Serialize, E: Into<CapsuleError>>(
    result: Result<R, E>,
) -> Result<Option<Vec<u8>>, CapsuleError> {
    let value = result.map_err(Into::into)?;
    serde_json::to_vec(&value)
        .map(Some)
        .map_err(|e| CapsuleError::Failed(format!("tool result is not serializable: {e}")))
}

/// Normalises a handler's result.
pub fn reply<R: IntoReply, E: Into<CapsuleError>>(
    result: Result<R, E>,
) -> Result<Option<Vec<u8>>, CapsuleError> {
    result.map(IntoReply::into_reply).map_err(Into::into)
}

/// Normalises a lifecycle method's result.
pub fn lifecycle<E: Into<CapsuleError>>(result: Result<(), E>) -> Result<(), CapsuleError> {
    result.map_err(Into::into)
}

/// Glue used by [`crate::export_capsule!`]; not a public API.
#[doc(hidden)]
pub mod export {
    use super::Capsule;
    use crate::bindings::astrid::capsule::types::{ErrorCode, Event as WitEvent};

    pub fn install<C: Capsule>(c: &C) -> Result<(), ErrorCode> {
        c.install().map_err(Into::into)
    }

    pub fn upgrade<C: Capsule>(c: &C, previous_version: &str) -> Result<(), ErrorCode> {
        c.upgrade(previous_version).map_err(Into::into)
    }

    pub fn handle<C: Capsule>(
        c: &C,
        handler: &str,
        event: WitEvent,
    ) -> Result<Option<Vec<u8>>, ErrorCode> {
        c.handle(handler, &event.into()).map_err(Into::into)
    }

    pub fn run<C: Capsule>(c: &C) -> Result<(), ErrorCode> {
        c.run().map_err(Into::into)
    }
}

/// Exports a type implementing [`Capsule`] + `Default` as this component's `guest` interface.
/// `#[capsule]` calls this for you; call it yourself only for a hand-written `Capsule` impl.
/// One per crate.
#[macro_export]
macro_rules! export_capsule {
    ($ty:ty) => {
        const _: () = {
            ::std::thread_local! {
                // The kernel keeps one instance per capsule and principal; the value lives as
                // long as it does, created on the first call.
                static __ASTRID_CAPSULE: $ty = <$ty as ::core::default::Default>::default();
            }

            struct __AstridGuest;

            impl $crate::__private::Guest for __AstridGuest {
                fn install() -> ::core::result::Result<(), $crate::__private::ErrorCode> {
                    __ASTRID_CAPSULE.with(|c| $crate::__private::export::install(c))
                }

                fn upgrade(
                    previous_version: ::std::string::String,
                ) -> ::core::result::Result<(), $crate::__private::ErrorCode> {
                    __ASTRID_CAPSULE
                        .with(|c| $crate::__private::export::upgrade(c, &previous_version))
                }

                fn handle(
                    handler: ::std::string::String,
                    event: $crate::__private::WitEvent,
                ) -> ::core::result::Result<
                    ::core::option::Option<::std::vec::Vec<u8>>,
                    $crate::__private::ErrorCode,
                > {
                    __ASTRID_CAPSULE.with(|c| $crate::__private::export::handle(c, &handler, event))
                }

                fn run() -> ::core::result::Result<(), $crate::__private::ErrorCode> {
                    __ASTRID_CAPSULE.with(|c| $crate::__private::export::run(c))
                }
            }

    $crate::bindings::__export_capsule!(__AstridGuest with_types_in $crate::bindings);
        };
    };
}
