//! `config`, `secret` and `egress`: a principal's capsule settings, credentials and
//! local-egress consents, all kept by the daemon.

use std::io::{IsTerminal, Read};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context as _};
use astrid_types::wire::{ControlCommand, ControlResponse, SecretInfo};

use super::audit::utc;
use super::{unexpected, Ctx};
use crate::args::{ConfigCommand, EgressCommand, SecretCommand};
use crate::origin::Origin;
use crate::output::table;

pub async fn config(ctx: &Ctx, cmd: ConfigCommand) -> anyhow::Result<ExitCode> {
    let client = ctx.connect(true).await?;
    let principal = ctx.principal.clone();
    match cmd {
        ConfigCommand::Show { capsule } => {
            let command = match capsule {
                Some(capsule) => ControlCommand::ConfigShow { principal, capsule },
                None => ControlCommand::OperatorSettings,
            };
            match client.control(command).await? {
                ControlResponse::Config(pairs) => {
                    let list: Vec<_> = pairs
                        .iter()
                        .map(|(key, value)| serde_json::json!({ "key": key, "value": value }))
                        .collect();
                    crate::out::show(ctx.json, &list, |_| settings_text(&pairs))?;
                }
                other => return Err(unexpected(other)),
            }
        }
        ConfigCommand::Set {
            capsule,
            key,
            value,
        } => {
            let shown = match &value {
                Some(v) => format!("set {capsule} {key} = {v}"),
                None => format!("cleared {capsule} {key} (back to its default)"),
            };
            client
                .control(ControlCommand::ConfigSet {
                    principal,
                    capsule,
                    key,
                    value,
                })
                .await?;
            outln!("{shown}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn settings_text(pairs: &[(String, String)]) -> String {
    if pairs.is_empty() {
        return "(no settings)\n".into();
    }
    pairs.iter().map(|(k, v)| format!("{k} = {v}\n")).collect()
}

pub async fn secret(ctx: &Ctx, cmd: SecretCommand) -> anyhow::Result<ExitCode> {
    let principal = ctx.principal.clone();
    match cmd {
        SecretCommand::Set {
            capsule,
            name,
            origin,
        } => {
            let origin = Origin::parse(&origin).map_err(|e| anyhow!("--origin {e}"))?;
            // Read before connecting: a prompt should not wait on the daemon starting.
            let value = read_secret(&format!("{capsule} {name} (input hidden): "))?;
            if value.is_empty() {
                bail!("empty value; nothing stored");
            }
            let client = ctx.connect(true).await?;
            client
                .control(ControlCommand::SecretSet {
                    principal,
                    capsule: capsule.clone(),
                    name: name.clone(),
                    value,
                    origin: origin.to_string(),
                })
                .await?;
            outln!("stored {capsule} {name}, sent only to {origin}");
        }
        SecretCommand::List => {
            let client = ctx.connect(true).await?;
            match client
                .control(ControlCommand::SecretList { principal })
                .await?
            {
                ControlResponse::Secrets(list) => {
                    crate::out::show(ctx.json, &list, |l| secrets_table(l))?
                }
                other => return Err(unexpected(other)),
            }
        }
        SecretCommand::Remove { capsule, name } => {
            let client = ctx.connect(true).await?;
            client
                .control(ControlCommand::SecretRemove {
                    principal,
                    capsule: capsule.clone(),
                    name: name.clone(),
                })
                .await?;
            outln!("removed {capsule} {name}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn secrets_table(list: &[SecretInfo]) -> String {
    if list.is_empty() {
        return "no secrets stored\n".into();
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|s| {
            vec![
                s.capsule.clone(),
                s.name.clone(),
                s.origin.clone(),
                utc(s.updated_ms),
            ]
        })
        .collect();
    table(&["CAPSULE", "NAME", "ORIGIN", "UPDATED"], &rows)
}

/// Without echo from a terminal; otherwise all of stdin, less the trailing newline.
pub(crate) fn read_secret(prompt: &str) -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        let v = rpassword::prompt_password(prompt).context("reading the secret")?;
        return Ok(v.trim().to_string());
    }
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("reading the secret from stdin")?;
    Ok(text.trim_end_matches(['\n', '\r']).to_string())
}

pub async fn egress(ctx: &Ctx, cmd: EgressCommand) -> anyhow::Result<ExitCode> {
    let client = ctx.connect(true).await?;
    let principal = ctx.principal.clone();
    match cmd {
        EgressCommand::Allow { capsule, target } => {
            let shown = format!("{capsule} may reach {target}");
            client
                .control(ControlCommand::EgressAllow {
                    principal,
                    capsule,
                    target,
                })
                .await?;
            outln!("{shown}");
        }
        EgressCommand::Revoke { capsule, target } => {
            let shown = format!("{capsule} may no longer reach {target}");
            client
                .control(ControlCommand::EgressRevoke {
                    principal,
                    capsule,
                    target,
                })
                .await?;
            outln!("{shown}");
        }
        EgressCommand::Show => match client
            .control(ControlCommand::EgressShow { principal })
            .await?
        {
            ControlResponse::Egress(list) => {
                let objects: Vec<_> = list
                    .iter()
                    .map(|(capsule, target)| {
                        serde_json::json!({ "capsule": capsule, "target": target })
                    })
                    .collect();
                crate::out::show(ctx.json, &objects, |_| egress_table(&list))?;
            }
            other => return Err(unexpected(other)),
        },
    }
    Ok(ExitCode::SUCCESS)
}

pub fn egress_table(list: &[(String, String)]) -> String {
    if list.is_empty() {
        return "no local-egress consents\n".into();
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|(c, t)| vec![c.clone(), t.clone()])
        .collect();
    table(&["CAPSULE", "TARGET"], &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings_render() {
        assert_eq!(settings_text(&[]), "(no settings)\n");
        assert_eq!(
            settings_text(&[("base_url".into(), "http://127.0.0.1:8091".into())]),
            "base_url = http://127.0.0.1:8091\n"
        );
        let s = SecretInfo {
            capsule: "provider-openai".into(),
            name: "api_key".into(),
            origin: "https://api.openai.com:443".into(),
            updated_ms: 0,
        };
        assert_eq!(
            secrets_table(&[s]),
            "CAPSULE          NAME     ORIGIN                      UPDATED\n\
             provider-openai  api_key  https://api.openai.com:443  1970-01-01T00:00:00.000Z\n"
        );
        assert_eq!(secrets_table(&[]), "no secrets stored\n");
        assert_eq!(
            egress_table(&[("provider-openai".into(), "127.0.0.1:8091".into())]),
            "CAPSULE          TARGET\nprovider-openai  127.0.0.1:8091\n"
        );
    }
}
