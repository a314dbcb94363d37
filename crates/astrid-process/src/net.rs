//! A service's network: only the hosts it was granted, each through a forwarder inside its
//! sandbox.
//!
//! The sandbox keeps its own network namespace with nothing but `lo`, so no address outside
//! is reachable. For each granted host the caller picks a loopback address (named in a
//! generated `/etc/hosts` that replaces the real one inside) and a Unix socket it serves
//! outside. `astrid-netfwd`, bound into the sandbox and run as the service's first
//! process, listens on those addresses and carries each connection to its socket; the
//! caller connects onward through the airlock's address rules. TLS and SNI stay end to
//! end: the program connects to the name it was given and the bytes pass through unread.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::args::os;
use crate::{ProcessError, SandboxPolicy};

/// The forwarder's file name, beside the other binaries of the workspace.
pub const NETFWD: &str = "astrid-netfwd";
/// Where the forwarder appears inside the sandbox: under the sandbox's own `/tmp` (a fresh
/// tmpfs in every sandbox), since a run's root is the host's, read-only, where no mount
/// point can be made. Read-only binds: the program cannot change either.
const NETFWD_INSIDE: &str = "/tmp/.astrid/netfwd";
/// Where the socket directory appears inside the sandbox.
const SOCKETS_INSIDE: &str = "/tmp/.astrid/net";
/// Most routes one sandbox may have.
pub const MAX_ROUTES: usize = 64;

/// The network a service is granted (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxNet {
    /// A private host directory holding one Unix socket per route, served by the caller;
    /// bound read-only into the sandbox (connecting to a socket needs no write access to
    /// its mount).
    pub socket_dir: PathBuf,
    /// The sandbox's `/etc/hosts`: a file the caller wrote naming each granted host.
    pub hosts_file: PathBuf,
    pub routes: Vec<NetRoute>,
}

/// One listening address inside the sandbox and the socket its connections go to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetRoute {
    /// A loopback address and port (the only addresses a fresh namespace has).
    pub listen: SocketAddr,
    /// The socket's file name in [`SandboxNet::socket_dir`].
    pub socket: String,
}

/// Binds the forwarder, the sockets and the hosts file into the sandbox and returns the
/// program and arguments that start the forwarder in front of `program`.
pub(crate) fn wrap(
    argv: &mut Vec<OsString>,
    policy: &SandboxPolicy,
    net: &SandboxNet,
    program: &str,
    args: &[String],
) -> Result<(String, Vec<String>), ProcessError> {
    let fwd = policy.netfwd.as_ref().ok_or_else(|| {
        ProcessError::Unavailable(format!(
            "the server is granted network access, but {NETFWD} (which carries it into the \
             sandbox) is not installed beside this program"
        ))
    })?;
    if net.routes.is_empty() || net.routes.len() > MAX_ROUTES {
        return Err(ProcessError::InvalidArgument(format!(
            "a sandbox's network has 1-{MAX_ROUTES} routes, not {}",
            net.routes.len()
        )));
    }
    for (what, p) in [
        ("socket directory", &net.socket_dir),
        ("hosts file", &net.hosts_file),
    ] {
        if !p.is_absolute() {
            return Err(ProcessError::InvalidArgument(format!(
                "{what} {} must be an absolute path",
                p.display()
            )));
        }
    }
    let mut fwd_args = Vec::with_capacity(net.routes.len() * 2 + 2 + args.len());
    for r in &net.routes {
        let name_ok = !r.socket.is_empty()
            && r.socket.len() <= 64
            && r.socket
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
            && !r.socket.starts_with('.');
        if !r.listen.ip().is_loopback() || r.listen.port() == 0 || !name_ok {
            return Err(ProcessError::InvalidArgument(format!(
                "route {} -> {}: a route listens on a loopback address and port and names a \
                 socket file",
                r.listen,
                r.socket.escape_debug()
            )));
        }
        fwd_args.push("--route".to_string());
        fwd_args.push(format!("{}={SOCKETS_INSIDE}/{}", r.listen, r.socket));
    }
    // The forwarder binds port 443 and the like inside the empty namespace, which needs this
    // one capability there; it drops it (every set) before the program starts.
    argv.extend([os("--cap-add"), os("CAP_NET_BIND_SERVICE")]);
    argv.extend([os("--ro-bind"), fwd.into(), os(NETFWD_INSIDE)]);
    argv.extend([
        os("--ro-bind"),
        net.socket_dir.clone().into(),
        os(SOCKETS_INSIDE),
    ]);
    argv.extend([
        os("--ro-bind"),
        net.hosts_file.clone().into(),
        os("/etc/hosts"),
    ]);
    fwd_args.push("--".into());
    fwd_args.push(program.to_string());
    fwd_args.extend(args.iter().cloned());
    Ok((NETFWD_INSIDE.to_string(), fwd_args))
}
