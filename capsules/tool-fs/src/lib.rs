//! File tools for the agent: read, write, edit, list, search, mkdir, delete, move.
//!
//! Everything goes through `astrid:fs`; the host decides what may be touched (manifest
//! ceiling, the session's capability tokens, human approval). Replies are `{"output": text}`
//! and failures are messages the model reads, naming the path and the host's reason.
#![forbid(unsafe_code)]

mod paths;
mod text;
mod walk;

use astrid_sdk::fs::{self, FileKind};
use astrid_sdk::prelude::*;

/// Entries `fs_list` shows at most.
const LIST_CAP: usize = 1000;
/// Entries a search walks at most, matches it reports at most, and the largest file it reads.
const SEARCH_WALK_CAP: usize = 20_000;
const SEARCH_MATCH_CAP: usize = 200;
const SEARCH_MAX_FILE: u64 = 4 * 1024 * 1024;

#[derive(Default)]
struct ToolFs;

/// Every tool's reply.
#[derive(Serialize)]
struct Reply {
    output: String,
}

fn reply(output: impl Into<String>) -> Result<Reply, CapsuleError> {
    Ok(Reply {
        output: output.into(),
    })
}

/// Resolves a path argument against the session workspace.
fn resolve(path: &str, ctx: &ToolContext) -> Result<String, CapsuleError> {
    paths::resolve(path, ctx.workspace.as_deref()).map_err(CapsuleError::Failed)
}

fn shown(abs: &str, ctx: &ToolContext) -> String {
    paths::display(abs, ctx.workspace.as_deref())
}

/// `cannot <what> <path>: <host error>`; the host's text (a denial's reason) is kept verbatim.
fn failed(what: &str, shown: &str, e: impl std::fmt::Display) -> CapsuleError {
    CapsuleError::Failed(format!("cannot {what} {shown}: {e}"))
}

#[derive(Deserialize)]
struct ReadArgs {
    path: String,
    offset: Option<usize>,
    limit: Option<usize>,
}

#[derive(Deserialize)]
struct WriteArgs {
    path: String,
    content: String,
}

#[derive(Deserialize)]
struct EditArgs {
    path: String,
    old: String,
    new: String,
    #[serde(default)]
    replace_all: bool,
}

#[derive(Deserialize)]
struct ListArgs {
    path: Option<String>,
    #[serde(default)]
    recursive: bool,
}

#[derive(Deserialize)]
struct SearchArgs {
    path: Option<String>,
    pattern: String,
    name: Option<String>,
}

#[derive(Deserialize)]
struct PathArgs {
    path: String,
}

#[derive(Deserialize)]
struct DeleteArgs {
    path: String,
    #[serde(default)]
    recursive: bool,
}

#[derive(Deserialize)]
struct MoveArgs {
    from: String,
    to: String,
}

#[capsule]
impl ToolFs {
    #[astrid::tool]
    fn fs_read(&self, args: ReadArgs, ctx: &ToolContext) -> Result<Reply, CapsuleError> {
        let abs = resolve(&args.path, ctx)?;
        let s = shown(&abs, ctx);
        let meta = fs::metadata(&abs).map_err(|e| failed("read", &s, e))?;
        if meta.is_dir() {
            return Err(CapsuleError::failed(format!(
                "cannot read {s}: it is a directory; use fs_list"
            )));
        }
        if meta.size > text::MAX_FILE {
            return Err(CapsuleError::failed(format!(
                "cannot read {s}: it is {}, more than the {} this tool reads",
                text::size(meta.size),
                text::size(text::MAX_FILE)
            )));
        }
        let bytes = fs::read(&abs).map_err(|e| failed("read", &s, e))?;
        if text::looks_binary(&bytes) {
            return Err(CapsuleError::failed(format!(
                "cannot read {s}: it looks like a binary file ({})",
                text::size(bytes.len() as u64)
            )));
        }
        let content = String::from_utf8_lossy(&bytes);
        let out = text::read_window(&content, args.offset, args.limit)
            .map_err(|e| CapsuleError::failed(format!("cannot read {s}: {e}")))?;
        reply(out)
    }

    #[astrid::tool]
    fn fs_write(&self, args: WriteArgs, ctx: &ToolContext) -> Result<Reply, CapsuleError> {
        let abs = resolve(&args.path, ctx)?;
        let s = shown(&abs, ctx);
        // Try the write first: the parent usually exists, and each extra host call may be
        // one more thing for the human to approve.
        match fs::write(&abs, args.content.as_bytes()) {
            Ok(()) => {}
            Err(FsError::NotFound(_)) if paths::parent(&abs).is_some() => {
                let parent = paths::parent(&abs).unwrap_or("/");
                fs::create_dir_all(parent).map_err(|e| {
                    failed("write", &s, format!("creating its directory failed: {e}"))
                })?;
                fs::write(&abs, args.content.as_bytes()).map_err(|e| failed("write", &s, e))?;
            }
            Err(e) => return Err(failed("write", &s, e)),
        }
        reply(format!(
            "wrote {} ({} lines) to {s}",
            text::size(args.content.len() as u64),
            args.content.lines().count()
        ))
    }

    #[astrid::tool]
    fn fs_edit(&self, args: EditArgs, ctx: &ToolContext) -> Result<Reply, CapsuleError> {
        let abs = resolve(&args.path, ctx)?;
        let s = shown(&abs, ctx);
        let content = fs::read_to_string(&abs).map_err(|e| failed("edit", &s, e))?;
        let (updated, n) = text::apply_edit(&content, &args.old, &args.new, args.replace_all)
            .map_err(|e| CapsuleError::failed(format!("cannot edit {s}: {e}")))?;
        fs::write(&abs, updated.as_bytes()).map_err(|e| failed("edit", &s, e))?;
        let what = if n == 1 {
            "1 occurrence".to_owned()
        } else {
            format!("{n} occurrences")
        };
        reply(format!("replaced {what} in {s}"))
    }

    #[astrid::tool]
    fn fs_list(&self, args: ListArgs, ctx: &ToolContext) -> Result<Reply, CapsuleError> {
        let abs = resolve(args.path.as_deref().unwrap_or("."), ctx)?;
        let s = shown(&abs, ctx);
        let found = walk::walk(&abs, args.recursive, LIST_CAP, fs::read_dir)
            .map_err(|e| failed("list", &s, e))?;
        reply(walk::format_list(&s, &found, LIST_CAP))
    }

    #[astrid::tool]
    fn fs_search(&self, args: SearchArgs, ctx: &ToolContext) -> Result<Reply, CapsuleError> {
        if args.pattern.is_empty() {
            return Err(CapsuleError::failed("cannot search: `pattern` is empty"));
        }
        let abs = resolve(args.path.as_deref().unwrap_or("."), ctx)?;
        let s = shown(&abs, ctx);
        let meta = fs::metadata(&abs).map_err(|e| failed("search", &s, e))?;
        let files: Vec<String> = if meta.is_dir() {
            let found = walk::walk(&abs, true, SEARCH_WALK_CAP, fs::read_dir)
                .map_err(|e| failed("search", &s, e))?;
            found
                .entries
                .into_iter()
                .filter(|e| e.kind == FileKind::File)
                .filter(|e| {
                    let file_name = e.rel.rsplit('/').next().unwrap_or(&e.rel);
                    args.name.as_deref().is_none_or(|n| file_name.contains(n))
                })
                .map(|e| paths::join(&abs, &e.rel))
                .collect()
        } else {
            vec![abs.clone()]
        };

        let mut hits = Vec::new();
        let mut skipped = Vec::new();
        let mut complete = true;
        for file in &files {
            let fs_shown = shown(file, ctx);
            match fs::metadata(file) {
                Ok(m) if m.size > SEARCH_MAX_FILE => {
                    skipped.push(format!(
                        "{fs_shown} (larger than {})",
                        text::size(SEARCH_MAX_FILE)
                    ));
                    continue;
                }
                Ok(_) => {}
                Err(e) => {
                    skipped.push(format!("{fs_shown} ({e})"));
                    continue;
                }
            }
            let bytes = match fs::read(file) {
                Ok(b) => b,
                Err(e) => {
                    skipped.push(format!("{fs_shown} ({e})"));
                    continue;
                }
            };
            if text::looks_binary(&bytes) {
                continue;
            }
            let content = String::from_utf8_lossy(&bytes);
            if !walk::search_text(
                &fs_shown,
                &content,
                &args.pattern,
                &mut hits,
                SEARCH_MATCH_CAP,
            ) {
                complete = false;
                break;
            }
        }

        let mut out = if hits.is_empty() {
            format!(
                "no matches for `{}` in {s} ({} files searched)",
                args.pattern,
                files.len()
            )
        } else {
            hits.join("\n")
        };
        if !complete {
            out.push_str(&format!(
                "\n[stopped at {SEARCH_MATCH_CAP} matches; narrow the path, name or pattern]"
            ));
        }
        if !skipped.is_empty() {
            out.push_str(&format!("\n[not searched: {}]", skipped.join("; ")));
        }
        reply(out)
    }

    #[astrid::tool]
    fn fs_mkdir(&self, args: PathArgs, ctx: &ToolContext) -> Result<Reply, CapsuleError> {
        let abs = resolve(&args.path, ctx)?;
        let s = shown(&abs, ctx);
        fs::create_dir_all(&abs).map_err(|e| failed("create directory", &s, e))?;
        reply(format!("created directory {s}"))
    }

    #[astrid::tool]
    fn fs_delete(&self, args: DeleteArgs, ctx: &ToolContext) -> Result<Reply, CapsuleError> {
        let abs = resolve(&args.path, ctx)?;
        let s = shown(&abs, ctx);
        let meta = fs::metadata(&abs).map_err(|e| failed("delete", &s, e))?;
        if meta.is_dir() {
            if args.recursive {
                fs::remove_dir_all(&abs).map_err(|e| failed("delete", &s, e))?;
                return reply(format!("deleted directory {s} and everything in it"));
            }
            fs::remove_dir(&abs).map_err(|e| {
                failed(
                    "delete",
                    &s,
                    format!("{e} (a directory that is not empty needs recursive = true)"),
                )
            })?;
            return reply(format!("deleted empty directory {s}"));
        }
        fs::remove_file(&abs).map_err(|e| failed("delete", &s, e))?;
        reply(format!("deleted {s}"))
    }

    #[astrid::tool]
    fn fs_move(&self, args: MoveArgs, ctx: &ToolContext) -> Result<Reply, CapsuleError> {
        let from = resolve(&args.from, ctx)?;
        let to = resolve(&args.to, ctx)?;
        let (fs_from, fs_to) = (shown(&from, ctx), shown(&to, ctx));
        fs::rename(&from, &to).map_err(|e| failed("move", &format!("{fs_from} to {fs_to}"), e))?;
        reply(format!("moved {fs_from} to {fs_to}"))
    }
}
