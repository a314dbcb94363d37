//! Pure text work behind `fs_read` and `fs_edit`.

/// The most `fs_read` returns; a model cannot use more, and it would crowd out the context.
pub const MAX_OUTPUT: usize = 1024 * 1024;

/// Files larger than this are not read at all, even for a window of lines.
pub const MAX_FILE: u64 = 64 * 1024 * 1024;

/// A NUL byte near the start is the usual sign of a binary file.
pub fn looks_binary(bytes: &[u8]) -> bool {
    bytes.iter().take(8192).any(|&b| b == 0)
}

/// Human form of a byte count.
pub fn size(bytes: u64) -> String {
    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * KIB;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= MIB {
        format!("{:.1} MiB", bytes as f64 / MIB as f64)
    } else if bytes >= KIB {
        format!("{:.1} KiB", bytes as f64 / KIB as f64)
    } else {
        format!("{bytes} bytes")
    }
}

/// The text `fs_read` replies with: the whole file, or lines `offset..offset+limit`
/// (1-based) followed by a note saying which lines those were.
pub fn read_window(
    content: &str,
    offset: Option<usize>,
    limit: Option<usize>,
) -> Result<String, String> {
    let lines: Vec<&str> = content.split_inclusive('\n').collect();
    let total = lines.len();
    if total == 0 {
        return Ok("[empty file]".to_owned());
    }
    let first = offset.unwrap_or(1).max(1);
    if first > total {
        return Err(format!(
            "offset {first} is past the end of the file, which has {total} lines"
        ));
    }
    if limit == Some(0) {
        return Err("limit must be at least 1".to_owned());
    }
    let last = limit.map_or(total, |l| (first - 1).saturating_add(l).min(total));
    let body: String = lines[first - 1..last].concat();
    if body.len() > MAX_OUTPUT {
        return Err(format!(
            "lines {first}-{last} are {}, over the {} limit for one read; \
             read fewer lines with offset/limit (the file has {total} lines)",
            size(body.len() as u64),
            size(MAX_OUTPUT as u64)
        ));
    }
    if first == 1 && last == total {
        return Ok(body);
    }
    let sep = if body.ends_with('\n') { "" } else { "\n" };
    Ok(format!("{body}{sep}[lines {first}-{last} of {total}]"))
}

/// Replaces `old` with `new` in `content`: exactly one occurrence, or all of them with
/// `replace_all`. Returns the new text and how many were replaced.
pub fn apply_edit(
    content: &str,
    old: &str,
    new: &str,
    replace_all: bool,
) -> Result<(String, usize), String> {
    if old.is_empty() {
        return Err(
            "`old` is empty; give the exact text to replace (use fs_write to create or \
                    overwrite a whole file)"
                .to_owned(),
        );
    }
    if old == new {
        return Err("`old` and `new` are the same, so there is nothing to change".to_owned());
    }
    let count = content.matches(old).count();
    match count {
        0 => {
            let trimmed = old.trim();
            let hint = if !trimmed.is_empty() && trimmed != old && content.contains(trimmed) {
                "; the text occurs with different surrounding whitespace, so check indentation \
                 and line breaks"
            } else {
                "; read the file again and copy the text exactly"
            };
            Err(format!("`old` was not found{hint}"))
        }
        1 => Ok((content.replacen(old, new, 1), 1)),
        n if replace_all => Ok((content.replace(old, new), n)),
        n => Err(format!(
            "`old` occurs {n} times; include more surrounding text so it is unique, or set \
             replace_all to change every occurrence"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_file_is_returned_verbatim() {
        assert_eq!(read_window("a\nb\n", None, None).unwrap(), "a\nb\n");
        assert_eq!(read_window("a\r\nb", Some(1), Some(5)).unwrap(), "a\r\nb");
        assert_eq!(read_window("", None, None).unwrap(), "[empty file]");
    }

    #[test]
    fn windows_are_one_based_and_labelled() {
        let text = "1\n2\n3\n4\n5\n";
        assert_eq!(
            read_window(text, Some(2), Some(2)).unwrap(),
            "2\n3\n[lines 2-3 of 5]"
        );
        assert_eq!(
            read_window(text, Some(4), None).unwrap(),
            "4\n5\n[lines 4-5 of 5]"
        );
        assert_eq!(
            read_window("1\n2\n3", Some(3), Some(9)).unwrap(),
            "3\n[lines 3-3 of 3]"
        );
        assert_eq!(
            read_window(text, Some(0), Some(1)).unwrap(),
            "1\n[lines 1-1 of 5]"
        );
        let e = read_window(text, Some(6), None).unwrap_err();
        assert!(e.contains("past the end") && e.contains("5 lines"), "{e}");
        assert!(read_window(text, None, Some(0)).is_err());
        assert!(read_window(text, Some(usize::MAX), Some(usize::MAX)).is_err());
        assert!(read_window(text, Some(2), Some(usize::MAX)).is_ok());
    }

    #[test]
    fn oversized_output_is_refused_with_advice() {
        let line = "x".repeat(1023) + "\n";
        let text = line.repeat(1100);
        let e = read_window(&text, None, None).unwrap_err();
        assert!(
            e.contains("1 MiB limit") && e.contains("offset/limit"),
            "{e}"
        );
        assert!(e.contains("1100 lines"), "{e}");
        let part = read_window(&text, Some(1), Some(1000)).unwrap();
        assert!(part.ends_with("[lines 1-1000 of 1100]"));
    }

    #[test]
    fn edit_replaces_exactly_one() {
        let (out, n) = apply_edit("fn a() {}\nfn b() {}\n", "fn b", "fn c", false).unwrap();
        assert_eq!((out.as_str(), n), ("fn a() {}\nfn c() {}\n", 1));
    }

    #[test]
    fn edit_ambiguity_and_replace_all() {
        let e = apply_edit("x x x", "x", "y", false).unwrap_err();
        assert!(
            e.contains("occurs 3 times") && e.contains("replace_all"),
            "{e}"
        );
        assert_eq!(
            apply_edit("x x x", "x", "y", true).unwrap(),
            ("y y y".into(), 3)
        );
    }

    #[test]
    fn edit_failures_explain_themselves() {
        let e = apply_edit("abc", "zzz", "y", false).unwrap_err();
        assert!(
            e.contains("not found") && e.contains("copy the text exactly"),
            "{e}"
        );
        let e = apply_edit("    let x = 1;\n", "let x = 1;  ", "y", false).unwrap_err();
        assert!(e.contains("whitespace"), "{e}");
        assert!(apply_edit("abc", "", "y", false)
            .unwrap_err()
            .contains("empty"));
        assert!(apply_edit("abc", "b", "b", false)
            .unwrap_err()
            .contains("same"));
    }

    #[test]
    fn binary_detection_and_sizes() {
        assert!(looks_binary(b"\x7fELF\x00\x01"));
        assert!(!looks_binary("héllo\n".as_bytes()));
        assert_eq!(size(512), "512 bytes");
        assert_eq!(size(2048), "2.0 KiB");
        assert_eq!(size(3 * 1024 * 1024), "3 MiB");
        assert_eq!(size(3 * 1024 * 1024 + 200_000), "3.2 MiB");
    }
}
