//! `astrid:process`: native subprocesses, only ever inside the OS sandbox. The program must
//! be in the manifest; running it needs a `process:exec:<program>` token or a human's yes,
//! and the working directory (the only writable mount) an `fs:write` token or a yes. A
//! capsule that declares `process_net` gets those hosts routed into the sandbox, each
//! connection gated like an `astrid:net` connect (`process_net`).

use std::path::Path;
use std::time::Duration;

use astrid_process::ProcessError;

use astrid_crypto::Resource;

use super::HostState;
use crate::authorize::{Ceiling, Denial, Effect};
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
        let ask = format!(
            "capsule `{}` wants to run `{line}` with write access to `{}`",
            self.actor, cmd.cwd
        );
        let exec = Effect::new(
            OP,
            Resource::ProcessExec(cmd.program.clone()),
            Ceiling::Manifest,
            ask.clone(),
        );
        // The manifest first: a program it does not declare is refused before anything else
        // is looked at (even on a machine with no sandbox).
        if let Err(denial) = self.gatekeeper().within_ceiling(&exec) {
            let reason = denial.to_string();
            self.denied(OP, &exec.resource.to_string(), &reason);
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
        // The working directory is the only writable mount: it takes an `fs:write` token or
        // a yes, as a write there would.
        let write_cwd = Effect::new(
            OP,
            Resource::FsWrite(cwd.to_path_buf()),
            Ceiling::Accepted,
            ask,
        );
        let denied = |d: Denial| ErrorCode::Denied(d.to_string());
        self.authorize(&write_cwd).map_err(denied)?;
        self.authorize(&exec).map_err(denied)?;
        self.gatekeeper()
            .record_allowed(
                OP,
                &exec.resource.to_string(),
                &format!("{line} (in {})", cmd.cwd),
            )
            .map_err(denied)?;

        let asked = (cmd.timeout_ms > 0).then(|| Duration::from_millis(u64::from(cmd.timeout_ms)));
        let timeout = self.budget(asked);
        // Held until the run ends: dropping it stops carrying and removes the sockets.
        let routes = self.process_routes(policy, &line)?;
        let command = astrid_process::Command {
            program: cmd.program,
            args: cmd.args,
            cwd: cwd.to_path_buf(),
            env: cmd.env,
            stdin: cmd.stdin,
            timeout,
            max_output: (cmd.max_output_bytes > 0).then_some(cmd.max_output_bytes as usize),
            net: routes.as_ref().map(|(_, net)| net.clone()),
        };
        let out = astrid_process::run(policy, &command).map_err(map);
        drop(routes);
        let out = out?;
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
