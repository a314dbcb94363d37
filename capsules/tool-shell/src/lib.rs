//! The `shell` tool: runs `sh -c <command>` in the session workspace, inside the host's
//! process sandbox (read-only root, the workspace writable, no network).
#![forbid(unsafe_code)]

mod format;

use astrid_sdk::prelude::*;
use astrid_sdk::process::Command;

#[derive(Default)]
struct ToolShell;

#[derive(Serialize)]
struct Reply {
    output: String,
}

#[derive(Deserialize)]
struct ShellArgs {
    command: String,
    timeout_ms: Option<u64>,
}

#[capsule]
impl ToolShell {
    #[astrid::tool]
    fn shell(&self, args: ShellArgs, ctx: &ToolContext) -> Result<Reply, CapsuleError> {
        if args.command.trim().is_empty() {
            return Err(CapsuleError::failed("cannot run: `command` is empty"));
        }
        let Some(workspace) = ctx.workspace.as_deref().filter(|w| !w.is_empty()) else {
            return Err(CapsuleError::failed(
                "cannot run the command: this session has no workspace to run it in",
            ));
        };
        let timeout_ms = format::timeout(args.timeout_ms);
        let out = Command::new("sh")
            .arg("-c")
            .arg(&args.command)
            .cwd(workspace)
            .timeout_ms(timeout_ms)
            .max_output(format::MAX_OUTPUT_BYTES)
            .run()
            .map_err(|e| CapsuleError::failed(format!("could not run the command: {e}")))?;
        let output = format::describe(&out, timeout_ms);
        // A resource limit is a failure of the call, not an exit status to read past: the
        // model gets an error result that names the limit, with whatever was printed.
        if out.limit_exceeded().is_some() {
            return Err(CapsuleError::failed(output));
        }
        Ok(Reply { output })
    }
}
