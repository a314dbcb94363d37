//! Native subprocesses, always inside the host's OS sandbox: read-only root, the working
//! directory as the only writable place, no network, a time limit and output caps.
//!
//! The program must be listed in the manifest's `[capabilities] process`; the host also asks
//! for a `process:exec:<program>` token or a human approval, and `fs:write` on the working
//! directory.
//!
//! ```no_run
//! # fn f() -> Result<(), astrid_sdk::ProcessError> {
//! use astrid_sdk::process::Command;
//! let out = Command::new("sh").arg("-c").arg("ls").cwd("/work").run()?;
//! let listing = String::from_utf8_lossy(&out.stdout);
//! # let _ = listing; Ok(()) }
//! ```

use crate::bindings::astrid::process::process;
use crate::error::ProcessError;

/// A program to run, built up and then [`run`](Command::run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    program: String,
    args: Vec<String>,
    cwd: String,
    env: Vec<(String, String)>,
    stdin: Vec<u8>,
    timeout_ms: u32,
    max_output: u32,
}

impl Command {
    /// `program` is looked up on PATH inside the sandbox, or is an absolute path.
    pub fn new(program: impl Into<String>) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
            cwd: String::new(),
            env: Vec::new(),
            stdin: Vec::new(),
            timeout_ms: 0,
            max_output: 0,
        }
    }

    /// Appends one argument.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Appends several arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// The working directory: an absolute host path, and the sandbox's only writable mount.
    /// The host decides what an unset (empty) one means.
    pub fn cwd(mut self, path: impl Into<String>) -> Self {
        self.cwd = path.into();
        self
    }

    /// Adds an environment variable; the sandbox starts from a minimal environment.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Bytes fed to the program's standard input.
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = bytes.into();
        self
    }

    /// Time limit; 0 (the default) means the host's. Capped by the host maximum and the
    /// invocation's deadline.
    pub fn timeout_ms(mut self, ms: u32) -> Self {
        self.timeout_ms = ms;
        self
    }

    /// Cap per output stream in bytes; 0 (the default) means the host's.
    pub fn max_output(mut self, bytes: u32) -> Self {
        self.max_output = bytes;
        self
    }

    /// Runs the program to completion (or until its time limit).
    pub fn run(self) -> Result<Output, ProcessError> {
        let cmd = process::Command {
            program: self.program,
            args: self.args,
            cwd: self.cwd,
            env: self.env,
            stdin: self.stdin,
            timeout_ms: self.timeout_ms,
            max_output_bytes: self.max_output,
        };
        let out = process::run(&cmd)?;
        Ok(Output {
            exit_code: out.exit_code,
            stdout: out.stdout,
            stderr: out.stderr,
            truncated: out.truncated,
            timed_out: out.timed_out,
        })
    }
}

/// What a finished program left behind.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Output {
    /// `None` when a signal killed it (including the time limit).
    pub exit_code: Option<i32>,
    /// Standard output, up to the cap.
    pub stdout: Vec<u8>,
    /// Standard error, up to the cap.
    pub stderr: Vec<u8>,
    /// Output past the cap was dropped.
    pub truncated: bool,
    /// The time limit killed it.
    pub timed_out: bool,
}

/// How the host starts the stderr line that names a resource limit (see `astrid:process`).
const LIMIT_NOTE: &str = "astrid: limit exceeded: ";

impl Output {
    /// True when it exited with status 0.
    pub fn success(&self) -> bool {
        self.exit_code == Some(0)
    }

    /// When a resource limit of the host's sandbox (processes, memory, CPU time, open files,
    /// file size, `/tmp` space) stopped the program: the host's `<limit>: <description>`,
    /// taken from the last line of stderr, where the host puts it.
    pub fn limit_exceeded(&self) -> Option<String> {
        let text = String::from_utf8_lossy(&self.stderr);
        let last = text.trim_end_matches('\n').rsplit('\n').next()?;
        last.strip_prefix(LIMIT_NOTE).map(str::to_owned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hosts_limit_line_is_read_from_the_end_of_stderr() {
        let mut out = Output {
            stderr: b"sh: fork failed\nastrid: limit exceeded: processes: process limit reached\n"
                .to_vec(),
            ..Output::default()
        };
        assert_eq!(
            out.limit_exceeded().as_deref(),
            Some("processes: process limit reached")
        );
        out.stderr = b"astrid: limit exceeded: x\nmore output after it\n".to_vec();
        assert_eq!(out.limit_exceeded(), None, "only the last line counts");
        out.stderr.clear();
        assert_eq!(out.limit_exceeded(), None);
    }
}
