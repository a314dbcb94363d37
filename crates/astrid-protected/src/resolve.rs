//! Where a path really leads: every symlink followed, including a final one that dangles
//! (creating through it would create its target), and the part that does not exist yet kept
//! as written.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io;
use std::path::{Component, Path, PathBuf};

/// The most symlinks followed on one path, as Linux's own limit; more is a loop.
const MAX_HOPS: usize = 40;

/// `path` (made absolute against the current directory) with every symlink resolved, `.`
/// dropped and `..` applied to what came before it after resolution, as the kernel would.
/// Components that do not exist are appended as written. Unlike `canonicalize`, it works for
/// paths about to be created and follows a dangling final symlink to where it points.
pub fn resolve(path: &Path) -> io::Result<PathBuf> {
    let start = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    };
    let mut todo: VecDeque<OsString> = VecDeque::new();
    push_front(&mut todo, &start);
    let mut out = PathBuf::from("/");
    let mut hops = 0;
    // Once a component is missing, nothing below it exists: no symlink left to follow.
    let mut missing = false;
    while let Some(name) = todo.pop_front() {
        if name == "/" {
            out = PathBuf::from("/");
            continue;
        }
        if name == ".." {
            out.pop();
            continue;
        }
        let candidate = out.join(&name);
        if missing {
            out = candidate;
            continue;
        }
        match std::fs::symlink_metadata(&candidate) {
            Ok(meta) if meta.file_type().is_symlink() => {
                hops += 1;
                if hops > MAX_HOPS {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "too many levels of symbolic links",
                    ));
                }
                let target = std::fs::read_link(&candidate)?;
                push_front(&mut todo, &target);
            }
            Ok(_) => out = candidate,
            Err(_) => {
                missing = true;
                out = candidate;
            }
        }
    }
    Ok(out)
}

/// `path` resolved except for its final component: the directory entry itself, as `stat`
/// without following, `remove` and `rename` see it.
pub fn resolve_entry(path: &Path) -> io::Result<PathBuf> {
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => Ok(resolve(parent)?.join(name)),
        _ => resolve(path),
    }
}

/// Queue `p`'s components ahead of what is left; `/` for an absolute `p` restarts at the root.
fn push_front(todo: &mut VecDeque<OsString>, p: &Path) {
    let parts: Vec<OsString> = p
        .components()
        .filter_map(|c| match c {
            Component::RootDir => Some(OsString::from("/")),
            Component::ParentDir => Some(OsString::from("..")),
            Component::Normal(n) => Some(n.to_os_string()),
            Component::CurDir | Component::Prefix(_) => None,
        })
        .collect();
    for part in parts.into_iter().rev() {
        todo.push_front(part);
    }
}
