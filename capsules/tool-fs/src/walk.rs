//! Directory walking for `fs_list` and `fs_search`, and how their results are written.
//!
//! The walker takes the directory-listing function as a parameter so the same code runs over
//! the host's `astrid:fs` in the capsule and over `std::fs` in the host-side tests.

use astrid_sdk::fs::{DirEntry, FileKind};

use crate::paths::join;

/// Directories a recursive walk lists but does not descend into: version-control internals
/// are large and never what the model is after.
const NOT_DESCENDED: &[&str] = &[".git"];

/// One entry found by [`walk`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Path relative to the walk's root, `/`-separated.
    pub rel: String,
    pub kind: FileKind,
}

/// What a walk found, plus what it could not look into.
#[derive(Debug, Default)]
pub struct Walk {
    pub entries: Vec<Entry>,
    /// True when the walk stopped at the entry cap.
    pub truncated: bool,
    /// `relative dir: error` for subdirectories that could not be listed.
    pub errors: Vec<String>,
}

/// Lists `root` (and, when `recursive`, everything below it, depth first in name order) up to
/// `cap` entries. An error listing `root` itself is returned; errors below it are collected.
pub fn walk<E: std::fmt::Display>(
    root: &str,
    recursive: bool,
    cap: usize,
    mut list: impl FnMut(&str) -> Result<Vec<DirEntry>, E>,
) -> Result<Walk, E> {
    let mut out = Walk::default();
    // (relative path, listing) pairs still to visit; a stack, so children of the most
    // recently listed directory come first.
    let mut stack: Vec<(String, std::vec::IntoIter<DirEntry>)> =
        vec![(String::new(), sorted(list(root)?).into_iter())];
    while let Some((dir, iter)) = stack.last_mut() {
        let Some(entry) = iter.next() else {
            stack.pop();
            continue;
        };
        if out.entries.len() >= cap {
            out.truncated = true;
            break;
        }
        let rel = if dir.is_empty() {
            entry.name.clone()
        } else {
            format!("{dir}/{}", entry.name)
        };
        out.entries.push(Entry {
            rel: rel.clone(),
            kind: entry.kind,
        });
        if recursive
            && entry.kind == FileKind::Directory
            && !NOT_DESCENDED.contains(&entry.name.as_str())
        {
            match list(&join(root, &rel)) {
                Ok(children) => stack.push((rel, sorted(children).into_iter())),
                Err(e) => out.errors.push(format!("{rel}/: {e}")),
            }
        }
    }
    Ok(out)
}

fn sorted(mut entries: Vec<DirEntry>) -> Vec<DirEntry> {
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    entries
}

/// The `fs_list` reply: one entry per line, directories with a trailing `/`.
pub fn format_list(shown: &str, walk: &Walk, cap: usize) -> String {
    let mut out = String::new();
    for e in &walk.entries {
        out.push_str(&e.rel);
        match e.kind {
            FileKind::Directory => out.push('/'),
            FileKind::Symlink => out.push_str(" (symlink)"),
            FileKind::Other => out.push_str(" (special file)"),
            FileKind::File => {}
        }
        out.push('\n');
    }
    if walk.entries.is_empty() {
        out.push_str(&format!("[{shown} is empty]\n"));
    }
    if walk.truncated {
        out.push_str(&format!(
            "[listing stopped at {cap} entries; list a subdirectory for more]\n"
        ));
    }
    for e in &walk.errors {
        out.push_str(&format!("[could not list {e}]\n"));
    }
    out.truncate(out.trim_end().len());
    out
}

/// The longest line text a search result shows.
const MAX_LINE: usize = 300;

/// Appends `file:line: text` for each line of `text` containing `pattern`, stopping once
/// `out` holds `cap` lines. Returns false when the cap was reached.
pub fn search_text(
    shown: &str,
    text: &str,
    pattern: &str,
    out: &mut Vec<String>,
    cap: usize,
) -> bool {
    for (i, line) in text.lines().enumerate() {
        if !line.contains(pattern) {
            continue;
        }
        if out.len() >= cap {
            return false;
        }
        out.push(format!("{shown}:{}: {}", i + 1, clip(line.trim_end())));
    }
    true
}

fn clip(line: &str) -> String {
    if line.len() <= MAX_LINE {
        return line.to_owned();
    }
    let mut end = MAX_LINE;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &line[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn std_list(path: &str) -> Result<Vec<DirEntry>, String> {
        let rd = std::fs::read_dir(path).map_err(|e| e.to_string())?;
        Ok(rd
            .map(|e| {
                let e = e.unwrap();
                let ft = e.file_type().unwrap();
                let kind = if ft.is_dir() {
                    FileKind::Directory
                } else if ft.is_symlink() {
                    FileKind::Symlink
                } else {
                    FileKind::File
                };
                DirEntry {
                    name: e.file_name().into_string().unwrap(),
                    kind,
                }
            })
            .collect())
    }

    fn tree(name: &str) -> PathBuf {
        let root = std::env::temp_dir().join(format!("tool-fs-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for d in ["b/inner", "a", ".git/objects"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        for f in ["z.txt", "b/inner/deep.txt", "b/c.txt", ".git/HEAD"] {
            std::fs::write(root.join(f), "x").unwrap();
        }
        root
    }

    #[test]
    fn walk_is_depth_first_sorted_and_skips_git_internals() {
        let root = tree("order");
        let w = walk(root.to_str().unwrap(), true, 100, std_list).unwrap();
        let rels: Vec<&str> = w.entries.iter().map(|e| e.rel.as_str()).collect();
        assert_eq!(
            rels,
            [
                ".git",
                "a",
                "b",
                "b/c.txt",
                "b/inner",
                "b/inner/deep.txt",
                "z.txt"
            ]
        );
        assert!(!w.truncated && w.errors.is_empty());
        let flat = walk(root.to_str().unwrap(), false, 100, std_list).unwrap();
        assert_eq!(format_list("x", &flat, 100), ".git/\na/\nb/\nz.txt");
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn walk_stops_at_the_cap_and_says_so() {
        let root = tree("cap");
        let w = walk(root.to_str().unwrap(), true, 3, std_list).unwrap();
        assert_eq!(w.entries.len(), 3);
        assert!(w.truncated);
        let text = format_list("x", &w, 3);
        assert!(text.ends_with("[listing stopped at 3 entries; list a subdirectory for more]"));
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn walk_errors_on_the_root_but_collects_below_it() {
        let e = walk("/nonexistent-tool-fs-test", false, 10, std_list).unwrap_err();
        assert!(!e.is_empty());
        let mut calls = 0;
        let w = walk("/r", true, 10, |p: &str| {
            calls += 1;
            if p == "/r" {
                Ok(vec![DirEntry {
                    name: "locked".into(),
                    kind: FileKind::Directory,
                }])
            } else {
                Err(format!("denied: {p} is outside the workspace"))
            }
        })
        .unwrap();
        assert_eq!(calls, 2);
        assert_eq!(
            format_list("/r", &w, 10),
            "locked/\n[could not list locked/: denied: /r/locked is outside the workspace]"
        );
        let empty = walk("/r", false, 10, |_: &str| Ok::<_, String>(vec![])).unwrap();
        assert_eq!(format_list("src", &empty, 10), "[src is empty]");
    }

    #[test]
    fn search_lines_are_numbered_clipped_and_capped() {
        let mut out = Vec::new();
        let text = "alpha\nbeta needle  \nneedle again\r\n";
        assert!(search_text("src/a.rs", text, "needle", &mut out, 10));
        assert_eq!(out, ["src/a.rs:2: beta needle", "src/a.rs:3: needle again"]);
        let long = format!("{}needle{}", "é".repeat(200), "y".repeat(200));
        let mut out = Vec::new();
        search_text("f", &long, "needle", &mut out, 10);
        assert!(out[0].ends_with('…') && out[0].len() < 320, "{}", out[0]);
        let mut out = vec!["x".to_owned()];
        assert!(!search_text("f", "needle\nneedle", "needle", &mut out, 2));
        assert_eq!(out.len(), 2);
    }
}
