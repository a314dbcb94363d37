//! `astrid:process`: native subprocesses, only ever inside the OS sandbox. The program must
//! be in the manifest; running it needs a `process:exec:<program>` token or a human's yes,
//! and the working directory (the only writable mount) an `fs:write` token or a yes.

use std::path::Path;
use std::time::Duration;

use astrid_process::ProcessError;

use super::gatekeeper::record_allowed;
use super::HostState;
use crate::bindings::astrid::process::process::{Command, ErrorCode, Host, Output};

const OP: &str = "process.run";
/// Starts the line the host appends to stderr when a resource limit stopped the program, so a
/// guest built against `astrid:process@1.0.0` learns which limit without a new field.
const LIMIT_NOTE: &str = "astrid: limit exceeded: ";
/// Longest command line kept in an approval prompt or audit entry.
const MAX_SHOWN: usize = 1024;

fn shown(cmd: &Command) -> String {
    let mut line = cmd.program.clone();
    for a in &cmd.args {
        line.push(' ');
        if a.is_empty() || a.contains(|c: char| c.is_whitespace() || "'\"\\$`".contains(c)) {
            line.push('\'');
            line.push_str(&a.replace('\'', "'\\''"));
            line.push('\'');
        } else {
            line.push_str(a);
        }
    }
    if line.len() > MAX_SHOWN {
        let mut cut = MAX_SHOWN;
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        line.truncate(cut);
        line.push('…');
    }
    line
}

fn map(e: ProcessError) -> ErrorCode {
    match e {
        ProcessError::InvalidArgument(m) => ErrorCode::InvalidArgument(m),
        ProcessError::NotFound(m) => ErrorCode::NotFound(m),
        ProcessError::Unavailable(m) => ErrorCode::Unavailable(m),
        ProcessError::Io(m) => ErrorCode::Unavailable(m),
    }
}

impl Host for HostState {
    fn run(&mut self, cmd: Command) -> Result<Output, ErrorCode> {
        let line = shown(&cmd);
        let declared = &self.ctx.manifest.capabilities.process;
        if !declared.contains(&cmd.program) {
            let reason = format!(
                "capsule `{}` does not declare `{}` in [capabilities] process",
                self.ctx.capsule(),
                cmd.program
            );
            self.denied(OP, &format!("process:exec:{}", cmd.program), &reason);
            return Err(ErrorCode::Denied(reason));
        }
        let sandbox = self.ctx.process.clone();
        let policy = match sandbox.as_ref() {
            Ok(p) => p,
            Err(why) => {
                return Err(ErrorCode::Unavailable(format!(
                    "no OS sandbox for subprocesses on this machine: {why}"
                )))
            }
        };
        let cwd = Path::new(&cmd.cwd);
        if !cwd.is_absolute() || cmd.cwd.split('/').any(|s| s == "..") {
            return Err(ErrorCode::InvalidArgument(format!(
                "working directory `{}` must be an absolute path without `..`",
                cmd.cwd
            )));
        }
        let cwd_resource = format!("fs:write:{}", cmd.cwd);
        let token = self.ctx.tokens.check_fs(true, cwd);
        let ask = format!(
            "capsule `{}` wants to run `{line}` with write access to `{}`",
            self.actor, cmd.cwd
        );
        self.authorize(OP, &cwd_resource, token, &ask)
            .map_err(ErrorCode::Denied)?;
        let exec_resource = format!("process:exec:{}", cmd.program);
        let token = self.ctx.tokens.check_exec(&cmd.program);
        self.authorize(OP, &exec_resource, token, &ask)
            .map_err(ErrorCode::Denied)?;
        record_allowed(
            &self.ctx,
            &self.actor,
            OP,
            &exec_resource,
            &format!("{line} (in {})", cmd.cwd),
        )
        .map_err(ErrorCode::Denied)?;

        let asked = (cmd.timeout_ms > 0).then(|| Duration::from_millis(u64::from(cmd.timeout_ms)));
        let timeout = self.budget(asked);
        let command = astrid_process::Command {
            program: cmd.program,
            args: cmd.args,
            cwd: cwd.to_path_buf(),
            env: cmd.env,
            stdin: cmd.stdin,
            timeout,
            max_output: (cmd.max_output_bytes > 0).then_some(cmd.max_output_bytes as usize),
        };
        let out = astrid_process::run(policy, &command).map_err(map)?;
        let mut stderr = out.stderr;
        if let Some(kind) = out.limit {
            if !stderr.is_empty() && !stderr.ends_with(b"\n") {
                stderr.push(b'\n');
            }
            let note = format!(
                "{LIMIT_NOTE}{kind}: {} (the operator sets it in config.toml [process] {})\n",
                kind.describe(&policy.limits),
                kind.config_key()
            );
            stderr.extend_from_slice(note.as_bytes());
        }
        Ok(Output {
            exit_code: out.exit_code,
            stdout: out.stdout,
            stderr,
            truncated: out.truncated,
            timed_out: out.timed_out,
        })
    }
}
