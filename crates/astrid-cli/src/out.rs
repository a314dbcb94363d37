//! Standard output that survives a closed pipe.
//!
//! `println!` panics when stdout is a pipe whose reader has gone (`astrid audit show | head`):
//! Rust ignores SIGPIPE, so the write fails with `BrokenPipe` and the macro turns that into a
//! panic with a backtrace hint. Everything this binary prints to stdout goes through [`write()`]
//! instead (clippy's `disallowed-macros` in this crate's `clippy.toml` keeps it so), which ends
//! the process quietly with [`crate::exit::BROKEN_PIPE`], the status a shell reports for a
//! command killed by SIGPIPE, so `set -o pipefail` scripts see what they would for any tool.

use std::fmt;
use std::io::{self, Write as _};

use serde::Serialize;

/// Writes to stdout; a closed pipe ends the process quietly, any other error is returned.
pub fn write(args: fmt::Arguments<'_>) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    match stdout.write_fmt(args).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
            std::process::exit(i32::from(crate::exit::BROKEN_PIPE))
        }
        other => other,
    }
}

/// Writes to stdout and ignores failures other than a closed pipe (which ends the process):
/// what `print!` does, minus the panic.
pub fn write_lossy(args: fmt::Arguments<'_>) {
    // A full disk or a revoked terminal leaves nothing better to do than carry on: the
    // command's own result (exit code, daemon-side effect) does not depend on its report.
    let _ = write(args);
}

/// One value as pretty JSON on stdout (the `--json` form of list and show commands).
pub fn json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    write(format_args!("{text}\n"))?;
    Ok(())
}

/// `print!` to stdout, quiet on a closed pipe.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::out::write_lossy(format_args!($($arg)*))
    };
}

/// `println!` to stdout, quiet on a closed pipe.
macro_rules! outln {
    () => {
        $crate::out::write_lossy(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::out::write_lossy(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// A list or show command's result: `value` as JSON with `--json`, else its text form.
pub fn show<T: Serialize + ?Sized>(
    json: bool,
    value: &T,
    text: impl FnOnce(&T) -> String,
) -> anyhow::Result<()> {
    if json {
        self::json(value)
    } else {
        write_lossy(format_args!("{}", text(value)));
        Ok(())
    }
}
