//! Turning a [`Command`] into a bubblewrap command line, and reading bwrap's own failures back.
//! Everything here is pure (apart from looking at the host filesystem) so it is unit-tested
//! without running anything.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::{Command, ProcessError, SandboxPolicy};

/// PATH inside the sandbox unless the command overrides it.
pub(crate) const SANDBOX_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Host trees that must never become the writable working directory: binding part of them
/// read-write would hand out the kernel's or the devices' knobs.
const FORBIDDEN_CWD_ROOTS: &[&str] = &["/proc", "/sys", "/dev"];

/// Namespaces and base mounts shared by every run (and the boot probe): fresh namespaces of
/// every kind (so the network has only `lo`), no capabilities, a new session so the program
/// cannot push keystrokes into the operator's terminal, the sandbox dies with its parent, the
/// host root read-only, private /dev, /proc and a private /tmp of bounded size (it is memory,
/// charged to the run's memory cgroup where there is one).
pub(crate) fn base_argv(limits: &crate::Limits) -> Vec<OsString> {
    let mut argv: Vec<OsString> = [
        "--unshare-all",
        "--die-with-parent",
        "--new-session",
        "--cap-drop",
        "ALL",
        "--ro-bind",
        "/",
        "/",
        "--dev",
        "/dev",
        "--proc",
        "/proc",
        "--size",
    ]
    .map(OsString::from)
    .to_vec();
    argv.extend([
        limits.tmp_bytes.to_string().into(),
        os("--tmpfs"),
        os("/tmp"),
    ]);
    argv
}

/// The full bwrap argument list for `cmd` (without the bwrap binary itself), after refusing
/// anything malformed or any working directory that would expose a masked path.
pub(crate) fn bwrap_argv(
    policy: &SandboxPolicy,
    cmd: &Command,
) -> Result<Vec<OsString>, ProcessError> {
    check_strings(cmd)?;
    let cwd = check_cwd(&cmd.cwd)?;
    let masks = existing_masks(&policy.masked);
    check_cwd_against_masks(&cwd, &policy.masked)?;

    let mut argv = base_argv(&policy.limits);
    for (path, is_dir) in &masks {
        if *is_dir {
            argv.extend([os("--tmpfs"), path.into(), os("--remount-ro"), path.into()]);
        } else {
            argv.extend([os("--ro-bind"), os("/dev/null"), path.into()]);
        }
    }
    // After /tmp and the masks, so a workspace under /tmp is mounted on top of the fresh tmpfs.
    argv.extend([os("--bind"), cwd.clone().into(), cwd.clone().into()]);
    argv.extend([os("--chdir"), cwd.into()]);
    match &cmd.net {
        None => push_env_and_program(&mut argv, policy, &cmd.env, &cmd.program, &cmd.args),
        Some(net) => {
            let (program, args) =
                crate::net::wrap(&mut argv, policy, net, &cmd.program, &cmd.args)?;
            push_env_and_program(&mut argv, policy, &cmd.env, &program, &args);
        }
    }
    Ok(argv)
}

/// The tail every sandboxed command line ends with: a cleared environment holding only the
/// base variables and `env`, then `--` and the program with its arguments.
pub(crate) fn push_env_and_program(
    argv: &mut Vec<OsString>,
    policy: &SandboxPolicy,
    env: &[(String, String)],
    program: &str,
    args: &[String],
) {
    argv.push(os("--clearenv"));
    let base = [
        ("PATH", OsString::from(SANDBOX_PATH)),
        ("HOME", policy.home.clone().into()),
        ("LANG", os("C.UTF-8")),
    ];
    for (k, v) in base {
        argv.extend([os("--setenv"), os(k), v]);
    }
    // Later --setenv wins, so the command's own values override the base ones.
    for (k, v) in env {
        argv.extend([os("--setenv"), os(k), os(v)]);
    }
    // `--` so a program named like an option is still run as a program.
    argv.push(os("--"));
    argv.push(os(program));
    argv.extend(args.iter().map(os));
}

/// bwrap reports its own failures as one `bwrap: ...` line on stderr with exit status 1, before
/// anything ran; so do `prlimit` (1, or 126/127 when it cannot exec bwrap) and the cgroup
/// trampoline (125). Recognise them so "no such program" and "no sandbox" are errors, not
/// output.
pub(crate) fn classify_failure(
    program: &str,
    exit_code: Option<i32>,
    stdout: &[u8],
    stderr: &[u8],
) -> Option<ProcessError> {
    if !stdout.is_empty() {
        return None;
    }
    let text = std::str::from_utf8(stderr).ok()?;
    let line = text.strip_suffix('\n').unwrap_or(text);
    if line.contains('\n') {
        return None;
    }
    if matches!(exit_code, Some(1 | 125 | 126 | 127))
        && (line.starts_with("prlimit: ") || line.starts_with("astrid-sandbox: "))
    {
        return Some(ProcessError::Unavailable(line.to_string()));
    }
    // The network forwarder in front of the program (a run granted hosts) says the same in
    // its own words.
    if let Some(reason) = line.strip_prefix(&format!("astrid-netfwd: cannot start {program}: ")) {
        if exit_code == Some(127) {
            return Some(ProcessError::NotFound(format!(
                "{program}: no such program inside the sandbox ({reason})"
            )));
        }
    }
    if exit_code == Some(125) && line.starts_with("astrid-netfwd: ") {
        return Some(ProcessError::Unavailable(line.to_string()));
    }
    if exit_code != Some(1) || !line.starts_with("bwrap: ") {
        return None;
    }
    if let Some(reason) = line.strip_prefix(&format!("bwrap: execvp {program}: ")) {
        return Some(if reason == "No such file or directory" {
            ProcessError::NotFound(format!("{program}: no such program inside the sandbox"))
        } else {
            ProcessError::InvalidArgument(format!("cannot execute {program}: {reason}"))
        });
    }
    Some(ProcessError::Unavailable(line.to_string()))
}

pub(crate) fn os(s: impl AsRef<std::ffi::OsStr>) -> OsString {
    s.as_ref().to_os_string()
}

fn check_strings(cmd: &Command) -> Result<(), ProcessError> {
    if cmd.cwd.as_os_str().as_bytes().contains(&0) {
        return Err(ProcessError::InvalidArgument(
            "cwd contains a NUL byte".into(),
        ));
    }
    check_strings_of(&cmd.program, &cmd.args, &cmd.env)
}

/// Refuses an empty program, NUL bytes, and environment names bwrap cannot set.
pub(crate) fn check_strings_of(
    program: &str,
    args: &[String],
    env: &[(String, String)],
) -> Result<(), ProcessError> {
    let bad = |what: &str| {
        Err(ProcessError::InvalidArgument(format!(
            "{what} contains a NUL byte"
        )))
    };
    if program.is_empty() {
        return Err(ProcessError::InvalidArgument("program is empty".into()));
    }
    if program.contains('\0') {
        return bad("program");
    }
    if args.iter().any(|a| a.contains('\0')) {
        return bad("an argument");
    }
    for (k, v) in env {
        if k.is_empty() || k.contains('=') {
            return Err(ProcessError::InvalidArgument(format!(
                "environment variable name {k:?} is empty or contains '='"
            )));
        }
        if k.contains('\0') || v.contains('\0') {
            return bad("an environment variable");
        }
    }
    Ok(())
}

/// The canonical working directory, or why it cannot be one.
fn check_cwd(cwd: &Path) -> Result<PathBuf, ProcessError> {
    let invalid = |why: &str| {
        Err(ProcessError::InvalidArgument(format!(
            "cwd {}: {why}",
            cwd.display()
        )))
    };
    if !cwd.is_absolute() {
        return invalid("must be an absolute path");
    }
    let Ok(canon) = cwd.canonicalize() else {
        return invalid("does not exist");
    };
    if !canon.is_dir() {
        return invalid("is not a directory");
    }
    if canon == Path::new("/") {
        return invalid("the root cannot be the writable directory");
    }
    if FORBIDDEN_CWD_ROOTS.iter().any(|r| canon.starts_with(r)) {
        return invalid("/proc, /sys and /dev cannot be the writable directory");
    }
    Ok(canon)
}

/// Refuses a cwd inside, equal to or above any masked path, compared both as written and with
/// symlinks resolved. "Above" matters even for a masked path that does not exist yet: a
/// writable parent would let the program plant `~/.aws/credentials` for the operator.
pub(crate) fn check_cwd_against_masks(cwd: &Path, masked: &[PathBuf]) -> Result<(), ProcessError> {
    for m in masked {
        for form in [m.clone(), resolve(m)] {
            if cwd.starts_with(&form) || form.starts_with(cwd) {
                return Err(ProcessError::InvalidArgument(format!(
                    "cwd {} overlaps the masked path {}",
                    cwd.display(),
                    m.display()
                )));
            }
        }
    }
    Ok(())
}

/// The masked paths that exist now, canonical (so a symlinked `~/.ssh` masks its target),
/// deduplicated, without those already hidden under another masked directory (its read-only
/// tmpfs would make the inner mount point impossible to create anyway).
pub(crate) fn existing_masks(masked: &[PathBuf]) -> Vec<(PathBuf, bool)> {
    let mut found: Vec<(PathBuf, bool)> = masked
        .iter()
        .filter_map(|m| {
            let canon = m.canonicalize().ok()?;
            let is_dir = canon.is_dir();
            Some((canon, is_dir))
        })
        .collect();
    found.sort();
    found.dedup();
    let dirs: Vec<PathBuf> = found
        .iter()
        .filter(|(_, d)| *d)
        .map(|(p, _)| p.clone())
        .collect();
    found.retain(|(p, _)| !dirs.iter().any(|d| p != d && p.starts_with(d)));
    found
}

/// `path` with its longest existing prefix canonicalized and the rest appended.
fn resolve(path: &Path) -> PathBuf {
    let mut rest = Vec::new();
    let mut cur = path;
    loop {
        if let Ok(canon) = cur.canonicalize() {
            return rest.iter().rev().fold(canon, |acc, c| acc.join(c));
        }
        match (cur.parent(), cur.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                cur = parent;
            }
            _ => return path.to_path_buf(),
        }
    }
}

#[cfg(test)]
#[path = "args_tests.rs"]
mod tests;
