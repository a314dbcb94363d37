//! Filesystem confinement for capsules: the gate every `astrid:fs` host function calls.
//!
//! A capsule's manifest grants read and write roots. [`FsRoots`] resolves them once per
//! principal; each operation checks the guest path lexically, picks the longest granted root,
//! and then works only through that root's `cap_std::fs::Dir`, which refuses symlinks that
//! lead out of the root. Hard-linked files and the host's `/proc`, `/sys` and `/dev` are
//! refused on top of that.
//!
//! Before any of that, [`FsRoots::check`] resolves where the path really leads and refuses
//! Astrid's own state by any route (see `astrid-protected`); the host runs the same check
//! before it looks at tokens or asks anyone, and names the resolved path in its question.

mod checked;
mod error;
mod ops;
mod roots;

pub use astrid_protected::{ProtectedSet, Protection};
pub use checked::{Checked, Reach};
pub use error::FsGateError;
pub use ops::{DirEntryInfo, FileKind, Metadata};
pub use roots::{Access, FsRoots, Resolved, GRANTED, USER_HOME};
