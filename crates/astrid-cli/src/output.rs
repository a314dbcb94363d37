//! Rendering daemon answers for a terminal. Pure functions returning text, so they can be
//! tested without a daemon.

use std::fmt::Write;

use astrid_types::wire::{CapsuleInfo, DaemonStatus, TreeNode};

/// Hex digits of a hash worth showing; enough to tell packages apart at a glance.
const SHORT_HASH_HEX: usize = 12;

/// `blake3:0123456789abcdef…` → `blake3:0123456789ab…`. Anything else is cut the same way.
pub fn short_hash(hash: &str) -> String {
    let (prefix, hex) = match hash.split_once(':') {
        Some((p, h)) => (format!("{p}:"), h),
        None => (String::new(), hash),
    };
    if hex.chars().count() <= SHORT_HASH_HEX {
        return hash.to_string();
    }
    let cut: String = hex.chars().take(SHORT_HASH_HEX).collect();
    format!("{prefix}{cut}…")
}

/// `3723000` ms → `1h 2m 3s`; the largest unit first, zero units in between kept.
pub fn human_duration(ms: u64) -> String {
    let secs = ms / 1000;
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    let parts = [(d, "d"), (h, "h"), (m, "m"), (s, "s")];
    let first = parts.iter().position(|(v, _)| *v > 0).unwrap_or(3);
    parts[first..]
        .iter()
        .map(|(v, u)| format!("{v}{u}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Left-aligned columns separated by two spaces, without trailing blanks.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                let _ = write!(out, "{cell:<w$}  ");
            }
        }
        out.trim_end().to_string() + "\n"
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

pub(crate) fn list_or_dash(items: &[String]) -> String {
    if items.is_empty() {
        "-".into()
    } else {
        items.join(", ")
    }
}

/// Why failed capsules failed, one line each, for under a table.
fn failures(capsules: &[CapsuleInfo]) -> String {
    let mut out = String::new();
    for c in capsules {
        if let Some(err) = &c.error {
            let _ = writeln!(out, "{} {}: {err}", c.name, c.state);
        }
    }
    out
}

pub fn status(s: &DaemonStatus) -> String {
    let mut out = String::from("astrid daemon: running\n");
    let _ = writeln!(out, "  pid:      {}", s.pid);
    let _ = writeln!(out, "  uptime:   {}", human_duration(s.uptime_ms));
    let _ = writeln!(out, "  version:  {}", s.version);
    let _ = writeln!(out, "  clients:  {}", s.connected_clients);
    let _ = writeln!(out, "  capsules: {}", s.capsules.len());
    for c in &s.capsules {
        let _ = writeln!(out, "    {} {} {}", c.name, c.version, c.state);
    }
    out
}

pub fn ps(capsules: &[CapsuleInfo]) -> String {
    if capsules.is_empty() {
        return "no capsules loaded\n".into();
    }
    let rows: Vec<Vec<String>> = capsules
        .iter()
        .map(|c| {
            vec![
                c.name.clone(),
                c.version.clone(),
                c.state.to_string(),
                short_hash(&c.hash),
                list_or_dash(&c.tools),
            ]
        })
        .collect();
    table(&["NAME", "VERSION", "STATE", "HASH", "TOOLS"], &rows) + &failures(capsules)
}

pub fn capsule_list(capsules: &[CapsuleInfo], verbose: bool) -> String {
    if capsules.is_empty() {
        return "no capsules installed\n".into();
    }
    if !verbose {
        let rows: Vec<Vec<String>> = capsules
            .iter()
            .map(|c| {
                vec![
                    c.name.clone(),
                    c.version.clone(),
                    c.state.to_string(),
                    c.description.clone(),
                ]
            })
            .collect();
        return table(&["NAME", "VERSION", "STATE", "DESCRIPTION"], &rows) + &failures(capsules);
    }
    let mut out = String::new();
    for (i, c) in capsules.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let _ = writeln!(out, "{} {} ({})", c.name, c.version, c.state);
        let desc = if c.description.is_empty() {
            "-"
        } else {
            &c.description
        };
        let fields: [(&str, String); 10] = [
            ("hash", c.hash.clone()),
            ("description", desc.to_string()),
            ("tools", list_or_dash(&c.tools)),
            ("publish", list_or_dash(&c.publish)),
            ("subscribe", list_or_dash(&c.subscribe)),
            ("capabilities", list_or_dash(&c.capabilities)),
            ("imports", list_or_dash(&c.imports)),
            ("exports", list_or_dash(&c.exports)),
            ("host abi", list_or_dash(&c.host_abi)),
            ("error", c.error.clone().unwrap_or_default()),
        ];
        for (k, v) in fields {
            if k == "error" && v.is_empty() {
                continue;
            }
            let _ = writeln!(out, "  {:<14}{v}", format!("{k}:"));
        }
    }
    out
}

/// Each capsule with its imports (and who provides them) and exports as branches.
pub fn tree(nodes: &[TreeNode]) -> String {
    if nodes.is_empty() {
        return "no capsules installed\n".into();
    }
    let mut out = String::new();
    for n in nodes {
        let _ = writeln!(out, "{} {}", n.name, n.version);
        let imports: Vec<String> = n
            .imports
            .iter()
            .map(|(iface, req, provider)| format!("{} -> {provider}", with_version(iface, req)))
            .collect();
        let exports: Vec<String> = n
            .exports
            .iter()
            .map(|(iface, v)| with_version(iface, v))
            .collect();
        let groups = [("imports", imports), ("exports", exports)];
        for (gi, (label, items)) in groups.iter().enumerate() {
            let last_group = gi + 1 == groups.len();
            let (branch, indent) = if last_group {
                ("└── ", "    ")
            } else {
                ("├── ", "│   ")
            };
            if items.is_empty() {
                let _ = writeln!(out, "{branch}{label}: none");
                continue;
            }
            let _ = writeln!(out, "{branch}{label}");
            for (i, item) in items.iter().enumerate() {
                let leaf = if i + 1 == items.len() {
                    "└── "
                } else {
                    "├── "
                };
                let _ = writeln!(out, "{indent}{leaf}{item}");
            }
        }
    }
    out
}

fn with_version(iface: &str, version: &str) -> String {
    if version.is_empty() || iface.contains('@') {
        iface.to_string()
    } else {
        format!("{iface}@{version}")
    }
}

#[cfg(test)]
#[path = "output_tests.rs"]
mod tests;
