//! `astrid-netfwd`: the first process of a sandbox that was granted hosts (see
//! `astrid_process::SandboxNet`). It listens on the loopback addresses it is given inside
//! the sandbox's private network namespace, starts the real program, and carries each
//! connection to a Unix socket whose other end (outside, the process that started the
//! sandbox) connects onward through the airlock. It decides nothing: which hosts exist here
//! and where they lead is fixed by its arguments, and the outside checks every connection
//! again. It exits with the program's status.
//!
//! A binary of `astrid-mcp` because MCP servers are the sandboxes granted hosts today;
//! `astrid_process` finds it beside the running executable.
//!
//! Usage: `astrid-netfwd [--route ADDR:PORT=SOCKET]... -- PROGRAM [ARGS]...`, or
//! `astrid-netfwd --version` (what `astrid update` runs to check a staged release).
#![forbid(unsafe_code)]
#![allow(
    clippy::disallowed_methods,
    reason = "this is the sandbox's own first process: it starts the sandboxed program"
)]

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Command, ExitCode, ExitStatus};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

/// Connections carried at once; more are closed at once (each holds two threads, and the
/// sandbox's process limit counts threads).
const MAX_OPEN: usize = 32;
/// The exit status for "the forwarder could not start", as the cgroup trampoline uses.
const SETUP_FAILED: u8 = 125;
/// The version this binary reports, as the other release binaries do: `ASTRID_RELEASE_VERSION`
/// at build time, else the crate's.
const VERSION: &str = match option_env!("ASTRID_RELEASE_VERSION") {
    Some(v) => v,
    None => env!("CARGO_PKG_VERSION"),
};

struct Route {
    listen: SocketAddr,
    socket: PathBuf,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Only alone: a program's own `--version` comes after `--` and is never taken here.
    if args == ["--version"] {
        return match writeln!(io::stdout(), "astrid-netfwd {VERSION}") {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::from(SETUP_FAILED),
        };
    }
    let (routes, command) = match parse(&args) {
        Ok(parsed) => parsed,
        Err(why) => {
            eprintln!("astrid-netfwd: {why}");
            return ExitCode::from(SETUP_FAILED);
        }
    };
    // Every listener is up before the program starts, so its first connect finds one.
    let mut listeners = Vec::with_capacity(routes.len());
    for r in routes {
        match TcpListener::bind(r.listen) {
            Ok(l) => listeners.push((l, r.socket)),
            Err(e) => {
                eprintln!("astrid-netfwd: cannot listen on {}: {e}", r.listen);
                return ExitCode::from(SETUP_FAILED);
            }
        }
    }
    // Bound: nothing here or in the program needs a capability again (see drop_capabilities).
    if let Err(why) = drop_capabilities() {
        eprintln!("astrid-netfwd: {why}");
        return ExitCode::from(SETUP_FAILED);
    }
    let (program, rest) = command.split_first().expect("parse requires a program");
    let mut child = match Command::new(program).args(rest).spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("astrid-netfwd: cannot start {program}: {e}");
            let code = if e.kind() == io::ErrorKind::NotFound {
                127
            } else {
                126
            };
            return ExitCode::from(code);
        }
    };
    let open = Arc::new(AtomicUsize::new(0));
    for (listener, socket) in listeners {
        let open = open.clone();
        let started = thread::Builder::new()
            .name("accept".into())
            .spawn(move || accept(listener, socket, open));
        if let Err(e) = started {
            eprintln!("astrid-netfwd: cannot start a listener thread: {e}");
        }
    }
    match child.wait() {
        Ok(status) => ExitCode::from(exit_code(status)),
        Err(e) => {
            eprintln!("astrid-netfwd: waiting for {program}: {e}");
            ExitCode::from(SETUP_FAILED)
        }
    }
}

fn parse(args: &[String]) -> Result<(Vec<Route>, Vec<String>), String> {
    let mut routes = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--route" => {
                let spec = it.next().ok_or("--route needs ADDR:PORT=SOCKET")?;
                let (listen, socket) = spec
                    .split_once('=')
                    .ok_or_else(|| format!("--route {spec}: expected ADDR:PORT=SOCKET"))?;
                let listen: SocketAddr =
                    listen.parse().map_err(|e| format!("--route {spec}: {e}"))?;
                if !listen.ip().is_loopback() {
                    return Err(format!(
                        "--route {spec}: only loopback addresses exist here"
                    ));
                }
                routes.push(Route {
                    listen,
                    socket: PathBuf::from(socket),
                });
            }
            "--" => {
                let command: Vec<String> = it.cloned().collect();
                if command.is_empty() {
                    return Err("no program after --".into());
                }
                return Ok((routes, command));
            }
            other => return Err(format!("unexpected argument {other}")),
        }
    }
    Err("usage: astrid-netfwd [--route ADDR:PORT=SOCKET]... -- PROGRAM [ARGS]...".into())
}

/// The sandbox starts this process with one capability, `CAP_NET_BIND_SERVICE` in the
/// sandbox's own user namespace (a granted `https` host listens on port 443 inside, and a
/// port below 1024 needs it even in an empty namespace). It is given up in every set before
/// the program starts, so the program runs with none, as every other sandboxed program
/// does; a failure here stops everything rather than start the program with it.
fn drop_capabilities() -> Result<(), String> {
    use caps::CapSet;
    for set in [
        CapSet::Ambient,
        CapSet::Inheritable,
        CapSet::Effective,
        CapSet::Permitted,
    ] {
        caps::clear(None, set).map_err(|e| format!("dropping the {set:?} capabilities: {e}"))?;
    }
    Ok(())
}

/// As a shell reports it: the exit code, or 128 + the signal that killed the program.
fn exit_code(status: ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(c), _) => u8::try_from(c).unwrap_or(1),
        (None, Some(sig)) => u8::try_from(128 + sig).unwrap_or(255),
        (None, None) => 1,
    }
}

fn accept(listener: TcpListener, socket: PathBuf, open: Arc<AtomicUsize>) {
    for conn in listener.incoming() {
        let Ok(tcp) = conn else {
            // Out of descriptors, say: wait rather than spin.
            thread::sleep(std::time::Duration::from_millis(100));
            continue;
        };
        if open.fetch_add(1, Ordering::SeqCst) >= MAX_OPEN {
            open.fetch_sub(1, Ordering::SeqCst);
            drop(tcp);
            continue;
        }
        let socket = socket.clone();
        let done = open.clone();
        let spawned = thread::Builder::new().name("carry".into()).spawn(move || {
            carry(tcp, &socket);
            done.fetch_sub(1, Ordering::SeqCst);
        });
        if spawned.is_err() {
            open.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Carries one connection both ways until both sides have finished; a half-close is passed
/// on as one. A socket that will not answer closes the program's connection.
fn carry(tcp: TcpStream, socket: &std::path::Path) {
    let Ok(unix) = UnixStream::connect(socket) else {
        return;
    };
    let (Ok(tcp_out), Ok(unix_in)) = (tcp.try_clone(), unix.try_clone()) else {
        return;
    };
    let up = thread::Builder::new()
        .name("carry-up".into())
        .spawn(move || pump(tcp, unix, |u| u.shutdown(Shutdown::Write)));
    pump(unix_in, tcp_out, |t| t.shutdown(Shutdown::Write));
    if let Ok(up) = up {
        let _ = up.join();
    }
}

fn pump<R: Read, W: Write>(mut from: R, mut to: W, close: impl FnOnce(&W) -> io::Result<()>) {
    let _ = io::copy(&mut from, &mut to);
    let _ = close(&to);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn routes_and_the_program_are_parsed_and_anything_else_refused() {
        let (routes, command) = parse(&strings(&[
            "--route",
            "127.0.100.1:443=/tmp/.astrid/net/0.sock",
            "--route",
            "[::1]:80=/tmp/.astrid/net/1.sock",
            "--",
            "node",
            "--route",
            "x",
        ]))
        .unwrap();
        assert_eq!(routes.len(), 2);
        assert_eq!(routes[0].listen, "127.0.100.1:443".parse().unwrap());
        assert_eq!(routes[1].socket, PathBuf::from("/tmp/.astrid/net/1.sock"));
        // After `--` everything is the program's, even what looks like an option.
        assert_eq!(command, strings(&["node", "--route", "x"]));

        for (bad, why) in [
            (&["--route", "10.0.0.1:443=/s", "--", "p"][..], "loopback"),
            (
                &["--route", "127.0.0.1:443", "--", "p"][..],
                "ADDR:PORT=SOCKET",
            ),
            (&["--route"][..], "ADDR:PORT=SOCKET"),
            (&["--"][..], "no program"),
            (&["node"][..], "unexpected argument"),
            (&[][..], "usage"),
        ] {
            let err = parse(&strings(bad)).err().unwrap();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
    }

    #[test]
    fn the_exit_status_is_reported_as_a_shell_would() {
        assert_eq!(exit_code(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(exit_code(ExitStatus::from_raw(9)), 137);
    }
}
