//! `astrid mcp add | list | show | approve | remove`: MCP servers run as sandboxed tools
//! (docs/MCP.md, "MCP servers as tools").
//!
//! `add`, `show` and `approve` run the server in the OS sandbox themselves (to read its tool
//! list), under the limits and with the secrets the daemon grants for the principal, as the
//! bridge does; `list` and `remove` need no daemon. The records live under
//! `<astrid home>/mcp/<principal>/`; secret values never do.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context as _};
use astrid_mcp::pin::{compare, pin, Change, ToolDefinition};
use astrid_mcp::{Launcher, ServerConfig, Store};
use astrid_process::{Limits, SandboxPolicy};
use astrid_types::distro::McpServerEntry;
use astrid_types::mcp::{McpSecretRef, NetGrant, SecretText, MAX_NET_GRANTS};
use astrid_types::wire::{ControlCommand, ControlResponse};
use serde::Serialize;

use super::Ctx;
use crate::args::McpSecretCommand;

/// Where a bare program name is looked up: the sandbox's PATH, since only system
/// directories are visible in it.
const SANDBOX_PATH: &[&str] = &["/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"];

fn store(ctx: &Ctx) -> Store {
    Store::new(ctx.home.root(), &ctx.principal)
}

fn policy(ctx: &Ctx) -> anyhow::Result<SandboxPolicy> {
    SandboxPolicy::detect(ctx.home.root(), Limits::default())
        .context("MCP servers run only inside the OS sandbox")
}

/// The program as an absolute path with symlinks resolved.
fn resolve_program(program: &str) -> anyhow::Result<PathBuf> {
    let found = if program.contains('/') {
        PathBuf::from(program)
    } else {
        SANDBOX_PATH
            .iter()
            .map(|d| Path::new(d).join(program))
            .find(|p| p.is_file())
            .ok_or_else(|| {
                anyhow!(
                    "`{program}` is not in {}; give the server's path",
                    SANDBOX_PATH.join(":")
                )
            })?
    };
    std::fs::canonicalize(&found).with_context(|| format!("server program {}", found.display()))
}

fn canonical_dirs(dirs: &[PathBuf], what: &str) -> anyhow::Result<Vec<PathBuf>> {
    dirs.iter()
        .map(|d| {
            let c = std::fs::canonicalize(d).with_context(|| format!("{what} {}", d.display()))?;
            if !c.is_dir() {
                bail!("{what} {} is not a directory", d.display());
            }
            Ok(c)
        })
        .collect()
}

/// Starts the server in its sandbox, as the daemon grants it for the principal, and reads
/// its tools; the session ends on return.
async fn current_tools(
    ctx: &Ctx,
    config: &ServerConfig,
) -> anyhow::Result<(Vec<ToolDefinition>, Vec<String>)> {
    let policy = policy(ctx)?;
    let launcher = Launcher::Daemon {
        client: ctx.connect(true).await?,
        principal: ctx.principal.clone(),
    };
    let server = launcher
        .start(&policy, config)
        .await
        .with_context(|| format!("starting MCP server `{}`", config.name))?;
    Ok(server.tools().await?)
}

/// `astrid mcp bridge`: serves until the daemon closes the connection.
pub async fn bridge(ctx: &Ctx) -> anyhow::Result<ExitCode> {
    if ctx.device_token.is_some() {
        bail!("the bridge serves tools for a principal: it needs the operator's credential");
    }
    let policy = policy(ctx)?;
    astrid_client::ensure_daemon(&ctx.home, None).await?;
    let client =
        astrid_client::Client::connect(&ctx.home, &ctx.principal, "astrid-mcp-bridge").await?;
    astrid_mcp::Bridge::new(client, ctx.principal.clone(), store(ctx), policy)
        .run()
        .await
        .context("serving the MCP servers' tools")?;
    Ok(ExitCode::SUCCESS)
}

/// What `astrid mcp add` grants a server.
pub struct Grants {
    pub allow_read: Vec<PathBuf>,
    pub allow_write: Vec<PathBuf>,
    pub secrets: Vec<McpSecretRef>,
    pub allow_net: Vec<NetGrant>,
}

pub async fn add(
    ctx: &Ctx,
    name: String,
    grants: Grants,
    command: Vec<String>,
) -> anyhow::Result<ExitCode> {
    let (_, tools, left_out) = add_server(ctx, &name, grants, &command).await?;
    outln!(
        "added MCP server `{name}` with {} tool(s), definitions pinned:",
        tools.len()
    );
    for t in &tools {
        outln!("  {name}.{}", t.name);
    }
    for why in &left_out {
        eprintln!("warning: left out {why}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Records the server with its tools pinned as it lists them now; returns the record, the
/// tools and what was left out.
async fn add_server(
    ctx: &Ctx,
    name: &str,
    grants: Grants,
    command: &[String],
) -> anyhow::Result<(ServerConfig, Vec<ToolDefinition>, Vec<String>)> {
    let mut envs: Vec<&str> = grants.secrets.iter().map(|s| s.env.as_str()).collect();
    envs.sort_unstable();
    if let Some(w) = envs.windows(2).find(|w| w[0] == w[1]) {
        bail!("--secret sets `{}` twice", w[0]);
    }
    let mut targets: Vec<(&str, u16)> = grants
        .allow_net
        .iter()
        .map(|g| (g.host.as_str(), g.port))
        .collect();
    targets.sort_unstable();
    if let Some(w) = targets.windows(2).find(|w| w[0] == w[1]) {
        bail!("{}:{} is granted twice", w[0].0, w[0].1);
    }
    if grants.allow_net.len() > MAX_NET_GRANTS {
        bail!("at most {MAX_NET_GRANTS} network grants");
    }
    let store = store(ctx);
    if store.get(name)?.is_some() {
        bail!("an MCP server named `{name}` exists; `astrid mcp remove {name}` first");
    }
    let (program, args) = command
        .split_first()
        .ok_or_else(|| anyhow!("give the server's command after `--`"))?;
    let mut config = ServerConfig {
        name: name.to_string(),
        program: resolve_program(program)?,
        args: args.to_vec(),
        allow_read: canonical_dirs(&grants.allow_read, "--allow-read")?,
        allow_write: canonical_dirs(&grants.allow_write, "--allow-write")?,
        pinned: Vec::new(),
        secrets: grants.secrets,
        allow_net: grants.allow_net,
    };
    let (tools, left_out) = current_tools(ctx, &config).await?;
    config.pinned = pin(&tools);
    store.put(&config)?;
    Ok((config, tools, left_out))
}

/// A distro's `[[mcp]]` entries, added for the installing principal after its capsules.
/// A server already added under that name is kept as it is (its pins are the user's); one
/// that cannot be added (its program is not installed here, a secret is not stored) is
/// reported with the reason and the rest go on: the capsules are installed either way.
/// Returns how many could not be added.
pub async fn add_from_distro(ctx: &Ctx, entries: &[McpServerEntry]) -> usize {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let expand = |s: &str| -> String {
        match (s.strip_prefix("~/").or((s == "~").then_some("")), &home) {
            (Some(rest), Some(h)) => h.join(rest).to_string_lossy().into_owned(),
            _ => s.to_string(),
        }
    };
    let mut failed = 0;
    for e in entries {
        if matches!(store(ctx).get(&e.name), Ok(Some(_))) {
            outln!("  kept      MCP server {} (already added)", e.name);
            continue;
        }
        let grants = Grants {
            allow_read: e.allow_read.iter().map(|d| expand(d).into()).collect(),
            allow_write: e.allow_write.iter().map(|d| expand(d).into()).collect(),
            // Checked when the distro was parsed.
            secrets: e
                .secrets
                .iter()
                .filter_map(|s| McpSecretRef::parse(s).ok())
                .collect(),
            allow_net: e.net_grants().unwrap_or_default(),
        };
        let command: Vec<String> = e.command.iter().map(|c| expand(c)).collect();
        match add_server(ctx, &e.name, grants, &command).await {
            Ok((config, tools, left_out)) => {
                // What the distro granted, said once here: the publisher chose it.
                let grants = format!(
                    "; read: {}; write: {}; secrets: {}; network: {}",
                    dirs_text(&config.allow_read),
                    dirs_text(&config.allow_write),
                    crate::output::list_or_dash(&listed(&config).secrets),
                    crate::output::list_or_dash(&listed(&config).network)
                );
                outln!(
                    "  added     MCP server {} ({} tool(s), definitions pinned{grants})",
                    e.name,
                    tools.len()
                );
                for why in &left_out {
                    eprintln!("warning: MCP server {}: left out {why}", e.name);
                }
            }
            Err(why) => {
                failed += 1;
                eprintln!(
                    "warning: MCP server {} of the distro was not added: {why:#}",
                    e.name
                );
            }
        }
    }
    failed
}

#[derive(Serialize)]
struct Listed<'a> {
    name: &'a str,
    program: &'a Path,
    args: &'a [String],
    allow_read: &'a [PathBuf],
    allow_write: &'a [PathBuf],
    /// `ENV=NAME`: names only, never values.
    secrets: Vec<String>,
    /// `host:port`, `local:host:port` for a target consented to be local.
    network: Vec<String>,
    tools: Vec<String>,
}

fn listed(c: &ServerConfig) -> Listed<'_> {
    Listed {
        name: &c.name,
        program: &c.program,
        args: &c.args,
        allow_read: &c.allow_read,
        allow_write: &c.allow_write,
        secrets: c
            .secrets
            .iter()
            .map(|s| format!("{}={}", s.env, s.name))
            .collect(),
        network: c.allow_net.iter().map(ToString::to_string).collect(),
        tools: c
            .pinned
            .iter()
            .map(|p| format!("{}.{}", c.name, p.definition.name))
            .collect(),
    }
}

fn dirs_text(dirs: &[PathBuf]) -> String {
    if dirs.is_empty() {
        return "-".into();
    }
    dirs.iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn list(ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let all = store(ctx).list()?;
    let rows: Vec<Listed<'_>> = all.iter().map(listed).collect();
    crate::out::show(ctx.json, &rows, |rows| {
        if rows.is_empty() {
            return "no MCP servers added (astrid mcp add NAME -- COMMAND)\n".into();
        }
        let mut s = String::new();
        for r in rows {
            s.push_str(&format!(
                "{}  {} tool(s)  read: {}  write: {}  secrets: {}  network: {}  {}\n",
                r.name,
                r.tools.len(),
                dirs_text(r.allow_read),
                dirs_text(r.allow_write),
                crate::output::list_or_dash(&r.secrets),
                crate::output::list_or_dash(&r.network),
                r.program.display()
            ));
        }
        s
    })?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize)]
struct Shown<'a> {
    #[serde(flatten)]
    server: Listed<'a>,
    /// Tools offered now with exactly their pinned definition.
    usable: Vec<String>,
    /// Differences from the pins; each disables the tool until `astrid mcp approve`.
    changes: Vec<Change>,
    left_out: Vec<String>,
}

fn get(ctx: &Ctx, name: &str) -> anyhow::Result<ServerConfig> {
    store(ctx)
        .get(name)?
        .ok_or_else(|| anyhow!("no MCP server named `{name}` (see `astrid mcp list`)"))
}

pub async fn show(ctx: &Ctx, name: &str) -> anyhow::Result<ExitCode> {
    let config = get(ctx, name)?;
    let (tools, left_out) = current_tools(ctx, &config).await?;
    let (usable, changes) = compare(&config.pinned, &tools);
    let shown = Shown {
        server: listed(&config),
        usable: usable
            .iter()
            .map(|t| format!("{name}.{}", t.name))
            .collect(),
        changes,
        left_out,
    };
    crate::out::show(ctx.json, &shown, |s| {
        let mut t = format!(
            "{}\n  program: {} {}\n  read: {}\n  write: {}\n  secrets: {}\n  network: {}\n  tools:\n",
            s.server.name,
            s.server.program.display(),
            s.server.args.join(" "),
            dirs_text(s.server.allow_read),
            dirs_text(s.server.allow_write),
            crate::output::list_or_dash(&s.server.secrets),
            if s.server.network.is_empty() {
                "none".to_string()
            } else {
                s.server.network.join(", ")
            },
        );
        for u in &s.usable {
            t.push_str(&format!("    {u}\n"));
        }
        for c in &s.changes {
            t.push_str(&format!(
                "    {name}.{c} (disabled until `astrid mcp approve {name}`)\n"
            ));
        }
        for l in &s.left_out {
            t.push_str(&format!("    left out: {l}\n"));
        }
        t
    })?;
    Ok(ExitCode::SUCCESS)
}

pub async fn approve(ctx: &Ctx, name: &str) -> anyhow::Result<ExitCode> {
    let mut config = get(ctx, name)?;
    let (tools, _) = current_tools(ctx, &config).await?;
    let (_, changes) = compare(&config.pinned, &tools);
    if changes.is_empty() {
        outln!("`{name}`: every tool matches its pinned definition; nothing to approve");
        return Ok(ExitCode::SUCCESS);
    }
    config.pinned = pin(&tools);
    store(ctx).put(&config)?;
    for c in &changes {
        outln!("approved {name}.{c}");
    }
    Ok(ExitCode::SUCCESS)
}

pub fn remove(ctx: &Ctx, name: &str) -> anyhow::Result<ExitCode> {
    if !store(ctx).remove(name)? {
        bail!("no MCP server named `{name}` (see `astrid mcp list`)");
    }
    outln!("removed MCP server `{name}`");
    Ok(ExitCode::SUCCESS)
}

/// The store's capsule column for MCP secrets (as the daemon keeps them).
const MCP_SECRETS: &str = "@mcp";

pub async fn secret(ctx: &Ctx, cmd: McpSecretCommand) -> anyhow::Result<ExitCode> {
    let principal = ctx.principal.clone();
    match cmd {
        McpSecretCommand::Set { name } => {
            if !astrid_types::mcp::valid_secret_name(&name) {
                bail!("`{name}`: an MCP secret name is 1-64 of a-z A-Z 0-9 _ - .");
            }
            // Read before connecting: a prompt should not wait on the daemon starting.
            let value =
                super::settings::read_secret(&format!("MCP secret {name} (input hidden): "))?;
            if value.is_empty() {
                bail!("empty value; nothing stored");
            }
            ctx.connect(true)
                .await?
                .control(ControlCommand::McpSecretSet {
                    principal,
                    name: name.clone(),
                    value: SecretText(value),
                })
                .await?;
            outln!("stored MCP secret {name}; servers get it only through --secret ENV={name}");
        }
        McpSecretCommand::List => {
            let reply = ctx
                .connect(true)
                .await?
                .control(ControlCommand::SecretList { principal })
                .await?;
            let ControlResponse::Secrets(all) = reply else {
                bail!("the daemon answered a secret list with {reply:?}");
            };
            let names: Vec<String> = all
                .into_iter()
                .filter(|s| s.capsule == MCP_SECRETS)
                .map(|s| s.name)
                .collect();
            crate::out::show(ctx.json, &names, |names| {
                if names.is_empty() {
                    return "no MCP secrets stored (astrid mcp secret set NAME)\n".into();
                }
                names.iter().map(|n| format!("{n}\n")).collect()
            })?;
        }
        McpSecretCommand::Remove { name } => {
            ctx.connect(true)
                .await?
                .control(ControlCommand::McpSecretRemove {
                    principal,
                    name: name.clone(),
                })
                .await?;
            outln!("removed MCP secret {name}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
