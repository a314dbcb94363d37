//! `agent create|list|show|modify|delete` and `pair-device issue|list|revoke`: principals
//! and the devices that act for them.

use std::process::ExitCode;

use astrid_types::wire::{AgentInfo, ControlCommand, ControlResponse, DeviceInfo, DeviceScope};

use super::audit::utc;
use super::caps::parse_duration_ms;
use super::{unexpected, Ctx};
use crate::args::{AgentCommand, PairDeviceCommand};
use crate::output::table;

pub async fn agent(ctx: &Ctx, cmd: AgentCommand) -> anyhow::Result<ExitCode> {
    let client = ctx.connect(true).await?;
    match cmd {
        AgentCommand::Create { name, clone: None } => {
            match client
                .control(ControlCommand::AgentCreate { name: name.clone() })
                .await?
            {
                ControlResponse::Done => outln!("created principal `{name}`"),
                other => return Err(unexpected(other)),
            }
        }
        AgentCommand::Create {
            name,
            clone: Some(source),
        } => {
            let cmd = ControlCommand::AgentClone {
                name: name.clone(),
                source: source.clone(),
            };
            match client.control(cmd).await? {
                ControlResponse::Agent(info) => {
                    outln!("created principal `{name}` as a replica of `{source}`");
                    out!("{}", agent_text(&info));
                }
                other => return Err(unexpected(other)),
            }
        }
        AgentCommand::Show { name } => {
            match client.control(ControlCommand::AgentShow { name }).await? {
                ControlResponse::Agent(info) => crate::out::show(ctx.json, &info, agent_text)?,
                other => return Err(unexpected(other)),
            }
        }
        AgentCommand::Modify { name, add, remove } => {
            if add.is_empty() && remove.is_empty() {
                anyhow::bail!("nothing to change: give --add-capsule or --remove-capsule");
            }
            let cmd = ControlCommand::AgentModify {
                name,
                add_capsules: add,
                remove_capsules: remove,
            };
            match client.control(cmd).await? {
                ControlResponse::Agent(info) => out!("{}", agent_text(&info)),
                other => return Err(unexpected(other)),
            }
        }
        AgentCommand::Delete { name } => {
            match client
                .control(ControlCommand::AgentDelete { name: name.clone() })
                .await?
            {
                ControlResponse::Done => {
                    outln!("deleted principal `{name}`; its audit chain is archived")
                }
                other => return Err(unexpected(other)),
            }
        }
        AgentCommand::List => match client.control(ControlCommand::AgentList).await? {
            ControlResponse::Agents(names) => {
                let list: Vec<_> = names
                    .iter()
                    .map(|name| serde_json::json!({ "name": name }))
                    .collect();
                crate::out::show(ctx.json, &list, |_| {
                    names.iter().map(|n| format!("{n}\n")).collect()
                })?;
            }
            other => return Err(unexpected(other)),
        },
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn pair_device(ctx: &Ctx, cmd: PairDeviceCommand) -> anyhow::Result<ExitCode> {
    let client = ctx.connect(true).await?;
    let or_acting = |a: Option<String>| a.unwrap_or_else(|| ctx.principal.clone());
    match cmd {
        PairDeviceCommand::Issue {
            agent,
            scope,
            expires,
            label,
        } => {
            let principal = or_acting(agent);
            let ttl_ms = expires.as_deref().map(parse_duration_ms).transpose()?;
            let cmd = ControlCommand::DeviceIssue {
                principal,
                label,
                scope: parse_scope(scope)?,
                ttl_ms,
            };
            match client.control(cmd).await? {
                ControlResponse::DeviceIssued { device, token } => {
                    eprintln!(
                        "paired device {} for `{}` (scope {}); the token below is shown only \
                         this once:",
                        device.id, device.principal, device.scope
                    );
                    outln!("{token}");
                }
                other => return Err(unexpected(other)),
            }
        }
        PairDeviceCommand::List { agent } => {
            let principal = or_acting(agent);
            match client
                .control(ControlCommand::DeviceList { principal })
                .await?
            {
                ControlResponse::Devices(list) => {
                    crate::out::show(ctx.json, &list, |l| devices_table(l))?
                }
                other => return Err(unexpected(other)),
            }
        }
        PairDeviceCommand::Revoke { id, agent } => {
            let principal = or_acting(agent);
            let cmd = ControlCommand::DeviceRevoke {
                principal,
                device_id: id.clone(),
            };
            match client.control(cmd).await? {
                ControlResponse::Done => outln!("revoked device {id}"),
                other => return Err(unexpected(other)),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What `agent show` and `caps show` print: capsules, tokens, devices and quota.
pub fn agent_text(info: &AgentInfo) -> String {
    let mut out = format!("principal `{}`\n", info.name);
    let capsules = if info.capsules.is_empty() {
        "(none)".to_string()
    } else {
        info.capsules.join(", ")
    };
    out.push_str(&format!("capsules: {capsules}\n"));
    out.push_str("tokens:\n");
    for t in &info.tokens {
        out.push_str(&format!("  {}\n", super::caps::line(t)));
    }
    out.push_str("devices:\n");
    for l in devices_table(&info.devices).lines() {
        out.push_str(&format!("  {l}\n"));
    }
    out.push_str(&super::quota::show(&info.quota));
    out
}

/// `use-only` alone, or one or more resource patterns.
pub fn parse_scope(words: Vec<String>) -> anyhow::Result<DeviceScope> {
    if words.iter().any(|w| w == "use-only") {
        if words.len() > 1 {
            anyhow::bail!("`--scope use-only` cannot be combined with patterns");
        }
        return Ok(DeviceScope::UseOnly);
    }
    Ok(DeviceScope::Patterns(words))
}

/// The principal named in a device token, so `--principal` need not repeat it.
pub fn token_principal(token: &str) -> Option<String> {
    let mut parts = token.split('.');
    (parts.next()? == "astrid-device").then_some(())?;
    parts.next().map(str::to_string)
}

fn devices_table(list: &[DeviceInfo]) -> String {
    if list.is_empty() {
        return "(no devices)\n".into();
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|d| {
            let state = match (d.revoked_ms, d.expires_ms) {
                (Some(t), _) => format!("revoked {}", utc(t)),
                (None, Some(e)) => format!("expires {}", utc(e)),
                (None, None) => "never expires".into(),
            };
            vec![
                d.id.clone(),
                d.label.clone(),
                d.scope.to_string(),
                utc(d.created_ms),
                state,
            ]
        })
        .collect();
    table(&["ID", "LABEL", "SCOPE", "CREATED", "STATE"], &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_words() {
        assert_eq!(
            parse_scope(vec!["use-only".into()]).unwrap(),
            DeviceScope::UseOnly
        );
        assert_eq!(
            parse_scope(vec!["fs:read:/a/**".into()]).unwrap(),
            DeviceScope::Patterns(vec!["fs:read:/a/**".into()])
        );
        assert!(parse_scope(vec!["use-only".into(), "fs:read:/a/**".into()]).is_err());
    }

    #[test]
    fn the_token_names_its_principal() {
        assert_eq!(
            token_principal("astrid-device.alice.00.11").as_deref(),
            Some("alice")
        );
        assert_eq!(token_principal("something-else.alice"), None);
    }
}
