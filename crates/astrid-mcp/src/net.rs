//! The outside half of a server's network grant (`--allow-net`, `--allow-local-net`): for
//! each granted `host:port`, a loopback address inside the sandbox (named in its
//! `/etc/hosts`), a Unix socket the in-sandbox forwarder carries that address's
//! connections to, and here, for each connection on the socket, one connect through the
//! airlock: the name resolved, loopback, private and link-local answers refused unless the
//! grant is local, the socket pinned to an address that passed. The bytes are carried
//! unread, so TLS stays between the server and the host it named.
//!
//! Nothing else is reachable: the sandbox's namespace has only `lo`, a name not granted has
//! no entry in its hosts file and no DNS server to ask, and an address not granted has no
//! route.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use astrid_egress::{Airlock, AirlockConfig, Consent, LocalTarget, Url};
use astrid_process::{NetRoute, SandboxNet};
use astrid_types::mcp::{NetGrant, MAX_NET_GRANTS};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};

use crate::McpError;

/// Connections one grant carries at once (the forwarder inside caps them too).
const MAX_OPEN: usize = 32;
/// The lookup and connect of one connection together.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// The first alias address: granted names are `127.0.100.1`, `127.0.100.2`, … inside.
const FIRST_ALIAS: Ipv4Addr = Ipv4Addr::new(127, 0, 100, 1);

/// A server's network while it runs. Dropping it stops carrying (every connection in
/// flight too) and removes the sockets.
pub(crate) struct ServerNet {
    tasks: Vec<JoinHandle<()>>,
    // Last: the sockets go after nothing serves them.
    _dir: tempfile::TempDir,
}

impl Drop for ServerNet {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Where each grant listens inside the sandbox, and the hosts file naming them. A loopback
/// literal listens on itself; `localhost` on 127.0.0.1; every other name on an alias of its
/// own (one per name, whatever its ports), never one a literal grant uses.
pub(crate) fn plan(grants: &[NetGrant]) -> (Vec<SocketAddr>, String) {
    let literal: Vec<IpAddr> = grants.iter().filter_map(NetGrant::ip).collect();
    let mut aliases: BTreeMap<&str, IpAddr> = BTreeMap::new();
    let mut next = u32::from(FIRST_ALIAS);
    let mut listen = Vec::with_capacity(grants.len());
    for g in grants {
        let ip = match g.ip() {
            Some(ip) => ip,
            None if g.host == "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
            None => *aliases.entry(g.host.as_str()).or_insert_with(|| loop {
                let candidate = IpAddr::V4(Ipv4Addr::from(next));
                next += 1;
                if !literal.contains(&candidate) {
                    break candidate;
                }
            }),
        };
        listen.push(SocketAddr::new(ip, g.port));
    }
    let mut hosts = String::from("127.0.0.1 localhost\n");
    for (name, ip) in &aliases {
        hosts.push_str(&format!("{ip} {name}\n"));
    }
    (listen, hosts)
}

/// Where the socket directories live, under the Astrid home's `run/` (masked in every
/// sandbox): `mcp-net/<pid>-<random>/`, private to the operator.
const SOCKETS_DIR: &str = "mcp-net";

/// A private directory for one server's sockets. A process killed before it could remove
/// its own (a bridge stopped by SIGKILL) leaves one behind: the next one made here removes
/// those whose process is gone.
fn socket_dir(runtime: &Path) -> std::io::Result<tempfile::TempDir> {
    let base = runtime.join(SOCKETS_DIR);
    std::fs::create_dir_all(&base)?;
    std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o700))?;
    for entry in std::fs::read_dir(&base)?.flatten() {
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
        .tempdir_in(&base)
}

/// Opens the sockets for `grants` and starts carrying their connections; the returned
/// [`SandboxNet`] is what the sandbox is started with. The sockets live under `runtime`
/// (the Astrid home's `run/`).
pub(crate) fn open(
    runtime: &Path,
    server: &str,
    grants: &[NetGrant],
) -> Result<(ServerNet, SandboxNet), McpError> {
    if grants.len() > MAX_NET_GRANTS {
        return Err(McpError::Server(format!(
            "`{server}` has {} network grants; at most {MAX_NET_GRANTS}",
            grants.len()
        )));
    }
    for g in grants {
        g.check().map_err(McpError::Server)?;
    }
    let io = |what: &str, e: std::io::Error| McpError::Server(format!("{what}: {e}"));
    // Private (0700), outside anything the sandbox sees but the one bind of it.
    let dir = socket_dir(runtime).map_err(|e| {
        io(
            &format!("the server's socket directory in {}", runtime.display()),
            e,
        )
    })?;
    let airlock = Arc::new(
        Airlock::new(AirlockConfig::default())
            .map_err(|e| McpError::Server(format!("the airlock: {e}")))?,
    );
    let (listen, hosts) = plan(grants);
    let hosts_file = dir.path().join("hosts");
    std::fs::write(&hosts_file, hosts).map_err(|e| io("the sandbox's hosts file", e))?;
    let mut routes = Vec::with_capacity(grants.len());
    let mut tasks = Vec::with_capacity(grants.len());
    for (i, (grant, listen)) in grants.iter().zip(listen).enumerate() {
        let socket = format!("{i}.sock");
        let path = dir.path().join(&socket);
        let listener = UnixListener::bind(&path)
            .map_err(|e| io(&format!("the network socket {}", path.display()), e))?;
        tasks.push(tokio::spawn(serve(
            listener,
            server.to_string(),
            grant.clone(),
            airlock.clone(),
        )));
        routes.push(NetRoute { listen, socket });
    }
    let net = SandboxNet {
        socket_dir: dir.path().to_path_buf(),
        hosts_file,
        routes,
    };
    Ok((ServerNet { tasks, _dir: dir }, net))
}

/// Accepts the forwarder's connections for one grant; the connections in flight end with
/// this future (they live in its set).
async fn serve(listener: UnixListener, server: String, grant: NetGrant, airlock: Arc<Airlock>) {
    let limit = Arc::new(Semaphore::new(MAX_OPEN));
    let mut open = JoinSet::new();
    loop {
        while open.try_join_next().is_some() {}
        let conn = match listener.accept().await {
            Ok((conn, _)) => conn,
            Err(e) => {
                // Out of descriptors, say: wait rather than spin.
                tracing::warn!(server, target = %grant, "accepting: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            tracing::warn!(server, target = %grant, "{MAX_OPEN} connections open; one closed");
            continue;
        };
        let (server, grant, airlock) = (server.clone(), grant.clone(), airlock.clone());
        open.spawn(async move {
            carry(conn, &server, &grant, &airlock).await;
            drop(permit);
        });
    }
}

async fn carry(mut conn: UnixStream, server: &str, grant: &NetGrant, airlock: &Airlock) {
    let consent = Consent {
        local: if grant.local {
            vec![LocalTarget {
                host: grant.host.clone(),
                port: grant.port,
            }]
        } else {
            Vec::new()
        },
    };
    // The route is the grant: nothing else can arrive on this socket.
    let exact = |_: &Url| Ok(());
    let connected = airlock
        .connect(
            &grant.host,
            grant.port,
            false,
            &consent,
            &exact,
            Some(CONNECT_TIMEOUT),
        )
        .await;
    match connected {
        Ok(mut remote) => {
            tracing::debug!(server, target = %grant, peer = %remote.peer(), "carrying");
            let _ = tokio::io::copy_bidirectional(&mut conn, &mut remote).await;
        }
        // The forwarder closes the server's connection; the reason is the operator's to see.
        Err(e) => tracing::warn!(server, target = %grant, "connection refused: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_dirs_are_private_and_a_dead_processs_are_swept() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().join(SOCKETS_DIR);
        // A dead process's (no pid is this large) and an unrelated name.
        std::fs::create_dir_all(base.join("4294967295-abc")).unwrap();
        std::fs::create_dir_all(base.join("kept")).unwrap();
        let mine = socket_dir(tmp.path()).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(mine.path()), 0o700);
        assert_eq!(mode(&base), 0o700);
        assert!(!base.join("4294967295-abc").exists());
        assert!(base.join("kept").exists());
        // A live process's stays (this one's, from another server).
        let other = socket_dir(tmp.path()).unwrap();
        assert!(mine.path().exists() && other.path().exists());
    }

    #[test]
    fn names_get_aliases_of_their_own_and_literals_listen_on_themselves() {
        let g = |s: &str, local| NetGrant::parse(s, local).unwrap();
        let grants = [
            g("api.example.com:443", false),
            g("127.0.100.1:8080", true),
            g("api.example.com:80", false),
            g("db.example.net:5432", true),
            g("localhost:9000", true),
        ];
        let (listen, hosts) = plan(&grants);
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
}
