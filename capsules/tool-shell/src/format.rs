//! How a finished command is written up for the model.

use astrid_sdk::process::Output;

/// The default and largest time limit the tool asks the host for.
pub const DEFAULT_TIMEOUT_MS: u32 = 120_000;
pub const MAX_TIMEOUT_MS: u32 = 600_000;

/// Per-stream output cap asked of the host; more would only crowd the model's context.
pub const MAX_OUTPUT_BYTES: u32 = 64 * 1024;

/// The time limit to use: the model's request clamped to 1 ms..=[`MAX_TIMEOUT_MS`].
pub fn timeout(requested: Option<u64>) -> u32 {
    match requested {
        None => DEFAULT_TIMEOUT_MS,
        Some(ms) => u32::try_from(ms)
            .unwrap_or(MAX_TIMEOUT_MS)
            .clamp(1, MAX_TIMEOUT_MS),
    }
}

/// `exit code: N` (or how it ended), then both streams, labelled, then any notes.
pub fn describe(out: &Output, timeout_ms: u32) -> String {
    let status = match (out.limit_exceeded(), out.exit_code, out.timed_out) {
        (Some(limit), _, _) => format!("stopped by a sandbox limit: {limit}"),
        (None, _, true) => format!("timed out after {timeout_ms} ms and was killed"),
        (None, Some(code), false) => format!("exit code: {code}"),
        (None, None, false) => "killed by a signal (no exit code)".to_owned(),
    };
    let mut text = status;
    for (label, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        text.push_str(&format!("\n--- {label} ---\n"));
        if bytes.is_empty() {
            text.push_str("(empty)");
        } else {
            let s = String::from_utf8_lossy(bytes);
            text.push_str(s.trim_end_matches('\n'));
        }
    }
    if out.truncated {
        text.push_str(&format!(
            "\n[output truncated: each stream is cut off after {} KiB]",
            MAX_OUTPUT_BYTES / 1024
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(code: Option<i32>, stdout: &str, stderr: &str) -> Output {
        Output {
            exit_code: code,
            stdout: stdout.as_bytes().to_vec(),
            stderr: stderr.as_bytes().to_vec(),
            truncated: false,
            timed_out: false,
        }
    }

    #[test]
    fn both_streams_are_labelled() {
        assert_eq!(
            describe(&out(Some(0), "a\nb\n", ""), 1000),
            "exit code: 0\n--- stdout ---\na\nb\n--- stderr ---\n(empty)"
        );
        assert_eq!(
            describe(&out(Some(2), "", "ls: x: No such file\n"), 1000),
            "exit code: 2\n--- stdout ---\n(empty)\n--- stderr ---\nls: x: No such file"
        );
    }

    #[test]
    fn timeouts_signals_and_truncation_are_noted() {
        let mut o = out(None, "partial", "");
        o.timed_out = true;
        o.truncated = true;
        let text = describe(&o, 5000);
        assert!(
            text.starts_with("timed out after 5000 ms and was killed\n"),
            "{text}"
        );
        assert!(text.contains("--- stdout ---\npartial"), "{text}");
        assert!(text.ends_with("[output truncated: each stream is cut off after 64 KiB]"));
        assert!(describe(&out(None, "", ""), 1).starts_with("killed by a signal"));
    }

    #[test]
    fn a_limit_named_by_the_host_leads_the_description() {
        let o = out(
            None,
            "",
            "sh: 1: Cannot fork\nastrid: limit exceeded: processes: process limit reached (256 processes): the sandbox was stopped\n",
        );
        let text = describe(&o, 1000);
        assert!(
            text.starts_with(
                "stopped by a sandbox limit: processes: process limit reached (256 processes)"
            ),
            "{text}"
        );
        assert!(
            text.contains("--- stderr ---\nsh: 1: Cannot fork"),
            "{text}"
        );
    }

    #[test]
    fn invalid_utf8_is_replaced_not_fatal() {
        let mut o = out(Some(0), "", "");
        o.stdout = b"ok \xff\xfe".to_vec();
        assert!(describe(&o, 1).contains("ok \u{fffd}\u{fffd}"));
    }

    #[test]
    fn timeout_is_clamped() {
        assert_eq!(timeout(None), DEFAULT_TIMEOUT_MS);
        assert_eq!(timeout(Some(0)), 1);
        assert_eq!(timeout(Some(5_000)), 5_000);
        assert_eq!(timeout(Some(u64::MAX)), MAX_TIMEOUT_MS);
        assert_eq!(timeout(Some(700_000)), MAX_TIMEOUT_MS);
    }
}
