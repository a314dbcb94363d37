//! `astrid mcp bridge`: the added MCP servers of one principal as tools of its agent.
//!
//! The bridge is a client of the daemon's socket (the operator acting for one principal) that
//! serves `<server>__<tool>` for each usable tool of each added server
//! (`ClientMessage::ServeTools`). It holds no authority: the daemon checks every call (the
//! requester chain, a `tool:<server>.<tool>` token or a person's approval) and records it
//! before the call reaches the bridge. What the bridge owns is the servers: each runs under
//! the OS sandbox as [`Supervised`], started on first use and restarted with backoff, and
//! only tools whose definition still hashes as pinned are offered or called.
//!
//! The records are read again at every `tool.v1.describe` (once per agent turn), so `astrid
//! mcp add`, `approve` and `remove` take effect at the next turn without a restart.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use astrid_client::{Client, Invocation};
use astrid_process::SandboxPolicy;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use tokio::sync::Mutex;

use crate::launch::Launcher;
use crate::pin::{compare, ToolDefinition};
use crate::{McpError, ServerConfig, Store, Supervised};

const EXECUTE: &str = "tool.v1.execute.";
const DESCRIBE: &str = "tool.v1.describe";
const SEPARATOR: &str = "__";

/// One added server as the bridge runs it.
struct Running {
    supervised: Arc<Supervised>,
    /// The tools offered now: listed by the server with exactly their pinned definition.
    usable: Vec<ToolDefinition>,
}

/// The principal's servers and what the daemon was told they serve.
pub struct Bridge {
    client: Client,
    launcher: Launcher,
    store: Store,
    policy: SandboxPolicy,
    servers: Mutex<BTreeMap<String, Running>>,
}

#[derive(Deserialize)]
struct Execute {
    #[serde(default)]
    args: Value,
}

impl Bridge {
    /// `principal` is the one `client` acts for: each server start is granted for it.
    pub fn new(client: Client, principal: String, store: Store, policy: SandboxPolicy) -> Bridge {
        Bridge {
            launcher: Launcher::Daemon {
                client: client.clone(),
                principal,
            },
            client,
            store,
            policy,
            servers: Mutex::new(BTreeMap::new()),
        }
    }

    /// Serves until the daemon closes the connection.
    pub async fn run(self) -> Result<(), McpError> {
        let bridge = Arc::new(self);
        let mut calls = bridge.client.invocations()?;
        bridge.refresh().await?;
        while let Some(call) = calls.recv().await {
            let b = bridge.clone();
            tokio::spawn(async move {
                let id = call.id;
                let result = b.answer(call).await;
                if let Err(e) = b.client.respond(id, result).await {
                    tracing::warn!("answering tool call {id}: {e}");
                }
            });
        }
        Ok(())
    }

    /// Reads the records, starts what is new, asks each server for its tools, and tells the
    /// daemon what is usable now. A server that cannot start serves nothing until it can.
    async fn refresh(&self) -> Result<(), McpError> {
        let configs: HashMap<String, ServerConfig> = self
            .store
            .list()?
            .into_iter()
            .map(|c| (c.name.clone(), c))
            .collect();
        let mut servers = self.servers.lock().await;
        let gone: Vec<String> = servers
            .keys()
            .filter(|n| !configs.contains_key(*n))
            .cloned()
            .collect();
        for name in gone {
            servers.remove(&name);
            self.client.serve_tools(&name, Vec::new()).await?;
        }
        for (name, config) in configs {
            // A record that changed (re-approved, other grants) gets a fresh server.
            let fresh = servers
                .get(&name)
                .is_none_or(|r| r.supervised.config() != &config);
            if fresh {
                servers.insert(
                    name.clone(),
                    Running {
                        supervised: Arc::new(Supervised::new(
                            self.policy.clone(),
                            self.launcher.clone(),
                            config,
                        )),
                        usable: Vec::new(),
                    },
                );
            }
            let running = servers.get_mut(&name).expect("inserted above");
            let usable = match running.supervised.tools().await {
                Ok(now) => compare(&running.supervised.config().pinned, &now).0,
                Err(e) => {
                    tracing::warn!(server = %name, "listing tools: {e}");
                    Vec::new()
                }
            };
            if fresh || usable != running.usable {
                let names = usable.iter().map(|t| t.name.clone()).collect();
                self.client.serve_tools(&name, names).await?;
                running.usable = usable;
            }
        }
        Ok(())
    }

    async fn answer(&self, call: Invocation) -> Result<Vec<u8>, String> {
        if call.topic == DESCRIBE {
            if let Err(e) = self.refresh().await {
                tracing::warn!("refreshing the MCP servers: {e}");
            }
            return Ok(self.describe().await);
        }
        let name = call
            .topic
            .strip_prefix(EXECUTE)
            .ok_or_else(|| format!("not a tool call: {}", call.topic))?;
        let (server, tool) = name
            .split_once(SEPARATOR)
            .ok_or_else(|| format!("`{name}` names no MCP server"))?;
        let args = match serde_json::from_slice::<Execute>(&call.payload)
            .map_err(|e| format!("tool call body: {e}"))?
            .args
        {
            Value::Object(m) => m,
            Value::Null => Map::new(),
            other => return Err(format!("tool arguments must be an object, got {other}")),
        };
        let supervised = {
            let servers = self.servers.lock().await;
            let running = servers
                .get(server)
                .ok_or_else(|| format!("MCP server `{server}` is not added"))?;
            // Offered at the last describe, and still as pinned then.
            if !running.usable.iter().any(|t| t.name == tool) {
                return Err(format!(
                    "`{server}.{tool}` is not usable: its definition changed or it was never \
                     approved (see `astrid mcp show {server}`)"
                ));
            }
            running.supervised.clone()
        };
        let outcome = supervised
            .call(tool, args)
            .await
            .map_err(|e| e.to_string())?;
        if outcome.is_error {
            return Err(outcome.text);
        }
        Ok(json!({ "output": outcome.text }).to_string().into_bytes())
    }

    /// Every usable tool, as the agent lists them: `<server>__<tool>`, the server's own
    /// (bounded, pinned) description marked as coming from it.
    async fn describe(&self) -> Vec<u8> {
        let servers = self.servers.lock().await;
        let specs: Vec<Value> = servers
            .iter()
            .flat_map(|(server, r)| {
                r.usable.iter().map(move |t| {
                    json!({
                        "name": format!("{server}{SEPARATOR}{}", t.name),
                        "description": format!("[MCP server `{server}`] {}", t.description),
                        "input_schema": t.input_schema,
                    })
                })
            })
            .collect();
        Value::Array(specs).to_string().into_bytes()
    }
}
