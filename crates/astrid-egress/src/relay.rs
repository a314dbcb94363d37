//! The outside half of a sandbox's granted hosts (`astrid_process::SandboxNet`): for each
//! `host:port` a loopback address inside the sandbox (named in its `/etc/hosts`), a Unix
//! socket the in-sandbox forwarder carries that address's connections to, and here, for each
//! connection on the socket, one [`Airlock::connect`]: the caller's [`Authorize`] (a fixed
//! grant, or a capsule's gate with its token or a person), the name resolved, loopback,
//! private and link-local answers refused unless consented, the socket pinned to an address
//! that passed. The bytes are carried unread, so TLS stays between the program and the host
//! it named.
//!
//! Nothing else is reachable from the sandbox: its namespace has only `lo`, a name not routed
//! has no entry in its hosts file and no DNS server to ask, and an address not routed has no
//! route. Used for added MCP servers and for capsules' subprocesses.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{UnixListener, UnixStream};
use tokio::runtime::Handle;
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};

use crate::{Airlock, Authorize, Consent, EgressError};

/// Who decides each connection of a relay, and hears about the ones the airlock stopped.
pub trait Gate: Send + Sync + 'static {
    /// Decides one connection to `url` (`https://host:port/`, the route's target); it may
    /// wait for a person. An `Err` is a refusal the gate has recorded itself.
    fn authorize(&self, url: &url::Url) -> Result<(), String>;
    /// The airlock refused (or could not make) a connection the gate allowed: a name that
    /// resolved to a non-public address, a lookup or connect that failed.
    fn failed(&self, _target: &RelayTarget, _error: &EgressError) {}
    /// The connection was made, to `peer` (an address the airlock's rules let through), and
    /// is being carried.
    fn connected(&self, _target: &RelayTarget, _peer: std::net::SocketAddr) {}
    /// As [`Authorize::consent_local`]: may this local target, not consented, be reached?
    /// Default: no.
    fn consent_local(&self, _url: &url::Url, _why: &str) -> bool {
        false
    }
}

/// The gate's verdict, remembered so a refusal is not reported twice.
struct Verdict<'a> {
    gate: &'a dyn Gate,
    refused: std::sync::atomic::AtomicBool,
}

impl Authorize for Verdict<'_> {
    fn authorize(&self, url: &url::Url) -> Result<(), String> {
        let v = self.gate.authorize(url);
        if v.is_err() {
            self.refused
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        v
    }

    fn consent_local(&self, url: &url::Url, why: &str) -> bool {
        self.gate.consent_local(url, why)
    }
}

/// Connections one route carries at once (the forwarder inside caps them too).
pub const MAX_OPEN: usize = 32;
/// Most routes one relay serves.
pub const MAX_ROUTES: usize = 32;
/// The first alias address: routed names are `127.0.100.1`, `127.0.100.2`, … inside.
const FIRST_ALIAS: Ipv4Addr = Ipv4Addr::new(127, 0, 100, 1);

/// One `host:port` a sandbox may reach: a DNS name (lower case) or a loopback literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayTarget {
    pub host: String,
    pub port: u16,
    /// The non-public targets this route may reach (an exact `host:port` consent, or none).
    pub consent: Consent,
}

impl RelayTarget {
    fn ip(&self) -> Option<IpAddr> {
        let bare = self
            .host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(&self.host);
        bare.parse().ok()
    }
}

/// What the sandbox is started with: the socket directory to bind, its hosts file, and
/// where each route listens inside with the socket file it leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayPlan {
    pub socket_dir: PathBuf,
    pub hosts_file: PathBuf,
    pub routes: Vec<(SocketAddr, String)>,
}

/// A sandbox's routes while it runs. Dropping it stops carrying (every connection in flight
/// too) and removes the sockets.
pub struct Relay {
    tasks: Vec<JoinHandle<()>>,
    // Last: the sockets go after nothing serves them.
    _dir: tempfile::TempDir,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("dir", &self._dir.path())
            .finish()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Where each target listens inside the sandbox, and the hosts file naming them. A loopback
/// literal listens on itself; `localhost` on 127.0.0.1; every other name on an alias of its
/// own (one per name, whatever its ports), never one a literal uses.
pub fn plan(targets: &[RelayTarget]) -> (Vec<SocketAddr>, String) {
    let literal: Vec<IpAddr> = targets.iter().filter_map(RelayTarget::ip).collect();
    let mut aliases: BTreeMap<&str, IpAddr> = BTreeMap::new();
    let mut next = u32::from(FIRST_ALIAS);
    let mut listen = Vec::with_capacity(targets.len());
    for t in targets {
        let ip = match t.ip() {
            Some(ip) => ip,
            None if t.host == "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
            None => *aliases.entry(t.host.as_str()).or_insert_with(|| loop {
                let candidate = IpAddr::V4(Ipv4Addr::from(next));
                next += 1;
                if !literal.contains(&candidate) {
                    break candidate;
                }
            }),
        };
        listen.push(SocketAddr::new(ip, t.port));
    }
    let mut hosts = String::from("127.0.0.1 localhost\n");
    for (name, ip) in &aliases {
        hosts.push_str(&format!("{ip} {name}\n"));
    }
    (listen, hosts)
}

/// A private directory for one sandbox's sockets under `base` (created 0700): named
/// `<pid>-<random>`, so one a process killed before it could remove its own (a bridge
/// stopped by SIGKILL) left behind is removed by the next one made there.
fn socket_dir(base: &Path) -> std::io::Result<tempfile::TempDir> {
    std::fs::create_dir_all(base)?;
    std::fs::set_permissions(base, std::fs::Permissions::from_mode(0o700))?;
    for entry in std::fs::read_dir(base)?.flatten() {
        let name = entry.file_name();
        let pid = name
            .to_str()
            .and_then(|n| n.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok());
        if let Some(pid) = pid {
            if pid != std::process::id() && !Path::new("/proc").join(pid.to_string()).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    tempfile::Builder::new()
        .prefix(&format!("{}-", std::process::id()))
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir_in(base)
}

/// Opens a socket per target under `base` (a directory no sandbox sees) and starts carrying
/// their connections on `rt`; each connection is decided by `gate` (on a blocking thread:
/// it may wait for a person) and connected through `airlock`. `name` says whose routes
/// these are, in logs.
pub fn open(
    rt: &Handle,
    airlock: Arc<Airlock>,
    gate: Arc<dyn Gate>,
    base: &Path,
    name: &str,
    targets: &[RelayTarget],
) -> Result<(Relay, RelayPlan), EgressError> {
    if targets.is_empty() || targets.len() > MAX_ROUTES {
        return Err(EgressError::InvalidArgument(format!(
            "{name}: 1 to {MAX_ROUTES} routed targets, not {}",
            targets.len()
        )));
    }
    let io = |what: String, e: std::io::Error| EgressError::Connection(format!("{what}: {e}"));
    let dir =
        socket_dir(base).map_err(|e| io(format!("socket directory in {}", base.display()), e))?;
    let (listen, hosts) = plan(targets);
    let hosts_file = dir.path().join("hosts");
    std::fs::write(&hosts_file, hosts).map_err(|e| io("the sandbox's hosts file".into(), e))?;
    let mut routes = Vec::with_capacity(targets.len());
    let socket_dir = dir.path().to_path_buf();
    // Built first, so a failure part-way stops the routes already serving (its drop).
    let mut relay = Relay {
        tasks: Vec::with_capacity(targets.len()),
        _dir: dir,
    };
    let _entered = rt.enter();
    for (i, (target, listen)) in targets.iter().zip(listen).enumerate() {
        let socket = format!("{i}.sock");
        let path = socket_dir.join(&socket);
        let listener = UnixListener::bind(&path)
            .map_err(|e| io(format!("the network socket {}", path.display()), e))?;
        let route = Route {
            name: name.to_string(),
            target: target.clone(),
            airlock: airlock.clone(),
            gate: gate.clone(),
            rt: rt.clone(),
        };
        relay.tasks.push(rt.spawn(serve(listener, Arc::new(route))));
        routes.push((listen, socket));
    }
    let plan = RelayPlan {
        socket_dir,
        hosts_file,
        routes,
    };
    Ok((relay, plan))
}

struct Route {
    name: String,
    target: RelayTarget,
    airlock: Arc<Airlock>,
    gate: Arc<dyn Gate>,
    rt: Handle,
}

/// Accepts the forwarder's connections for one route; the connections in flight end with
/// this future (they live in its set).
async fn serve(listener: UnixListener, route: Arc<Route>) {
    let limit = Arc::new(Semaphore::new(MAX_OPEN));
    let mut open = JoinSet::new();
    loop {
        while open.try_join_next().is_some() {}
        let conn = match listener.accept().await {
            Ok((conn, _)) => conn,
            Err(e) => {
                // Out of descriptors, say: wait rather than spin.
                tracing::warn!(who = route.name, "accepting: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            tracing::warn!(who = route.name, "{MAX_OPEN} connections open; one closed");
            continue;
        };
        let route = route.clone();
        open.spawn(async move {
            carry(conn, &route).await;
            drop(permit);
        });
    }
}

async fn carry(mut conn: UnixStream, route: &Arc<Route>) {
    let t = &route.target;
    // The check may wait for a person: on a blocking thread, not a runtime worker.
    let connecting = {
        let route = route.clone();
        tokio::task::spawn_blocking(move || {
            let t = &route.target;
            let verdict = Verdict {
                gate: route.gate.as_ref(),
                refused: std::sync::atomic::AtomicBool::new(false),
            };
            let connected = route.rt.block_on(
                route
                    .airlock
                    .connect(&t.host, t.port, false, &t.consent, &verdict, None),
            );
            if let Err(e) = &connected {
                if !verdict.refused.load(std::sync::atomic::Ordering::Relaxed) {
                    route.gate.failed(t, e);
                }
            }
            connected
        })
    };
    match connecting.await {
        Ok(Ok(mut remote)) => {
            route.gate.connected(t, remote.peer());
            tracing::debug!(who = route.name, host = t.host, port = t.port, peer = %remote.peer(), "carrying");
            let _ = tokio::io::copy_bidirectional(&mut conn, &mut remote).await;
        }
        // The forwarder closes the program's connection; the reason is the operator's to see
        // (and, for a capsule, in the audit chain).
        Ok(Err(e)) => {
            tracing::warn!(
                who = route.name,
                host = t.host,
                port = t.port,
                "connection refused: {e}"
            )
        }
        Err(e) => tracing::warn!(who = route.name, "connecting: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(host: &str, port: u16) -> RelayTarget {
        RelayTarget {
            host: host.into(),
            port,
            consent: Consent::default(),
        }
    }

    #[test]
    fn names_get_aliases_of_their_own_and_literals_listen_on_themselves() {
        let targets = [
            target("api.example.com", 443),
            target("127.0.100.1", 8080),
            target("api.example.com", 80),
            target("db.example.net", 5432),
            target("localhost", 9000),
        ];
        let (listen, hosts) = plan(&targets);
        let addrs: Vec<String> = listen.iter().map(ToString::to_string).collect();
        assert_eq!(
            addrs,
            [
                "127.0.100.2:443",
                "127.0.100.1:8080",
                "127.0.100.2:80",
                "127.0.100.3:5432",
                "127.0.0.1:9000"
            ]
        );
        assert_eq!(
            hosts,
            "127.0.0.1 localhost\n127.0.100.2 api.example.com\n127.0.100.3 db.example.net\n"
        );
    }

    #[test]
    fn socket_dirs_are_private_and_a_dead_processs_are_swept() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().join("net");
        // A dead process's (no pid is this large) and an unrelated name.
        std::fs::create_dir_all(base.join("4294967295-abc")).unwrap();
        std::fs::create_dir_all(base.join("kept")).unwrap();
        let mine = socket_dir(&base).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(mine.path()), 0o700);
        assert_eq!(mode(&base), 0o700);
        assert!(!base.join("4294967295-abc").exists());
        assert!(base.join("kept").exists());
        // A live process's stays (this one's, from another sandbox).
        let other = socket_dir(&base).unwrap();
        assert!(mine.path().exists() && other.path().exists());
    }
}
