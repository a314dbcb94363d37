//! Astrid's network airlock: the only code in Astrid that opens outbound connections.
//!
//! Every request, and every redirect it follows, passes the same gate before a socket is
//! opened: the scheme rule (`https`, or `http` to a consented local target), the host's
//! [`Authorize`] check, one DNS lookup, and the address policy ([`check_ip`]) unless the
//! operator consented to that exact `host:port` for the capsule ([`Consent`]). The
//! connection then goes to exactly an address that passed, with TLS verified against the
//! URL's host name. Credentials ([`Credential`]) are added only for their bound origin.
//! Size and time caps come from [`AirlockConfig`]; a request may only narrow them
//! ([`Redirects`], a smaller body cap, https only) and may name the body's digest
//! ([`Integrity`]), checked before any of the body is handed on. [`Airlock::connect`] opens
//! a plain or TLS byte stream ([`NetStream`], for `astrid:net`) through the same checks;
//! [`Airlock::start`] a request whose body is written as it goes ([`EgressUpload`]);
//! [`relay`] carries a sandbox's connections to its granted hosts through it.
//! See `docs/EGRESS.md`.

mod airlock;
mod config;
mod connect;
mod error;
mod integrity;
mod ip;
mod policy;
pub mod relay;
mod request;
mod resolve;
mod response;
mod stream;
mod upload;

pub use airlock::Airlock;
pub use config::AirlockConfig;
pub use error::EgressError;
pub use integrity::Integrity;
pub use ip::check_ip;
pub use policy::{askable, preflight, Authorize, Consent, LocalTarget};
pub use request::{Credential, EgressRequest, Redirects};
pub use resolve::{Resolve, ResolveFuture, SystemResolver};
pub use response::EgressResponse;
pub use stream::{stream_target, NetStream};
pub use upload::EgressUpload;
/// Re-exported so callers implement [`Authorize`] against the same `url` version.
pub use url::Url;
