//! `caps show|grant|revoke`: capability tokens, managed through the daemon (it holds the
//! signing key).

use std::process::ExitCode;

use anyhow::{anyhow, bail};
use astrid_types::wire::{ControlCommand, ControlResponse, TokenInfo};

use super::audit::utc;
use super::{unexpected, Ctx};
use crate::args::CapsCommand;

pub async fn run(ctx: &Ctx, cmd: CapsCommand) -> anyhow::Result<ExitCode> {
    let client = ctx.connect(true).await?;
    match cmd {
        CapsCommand::Show { principal } => {
            // Grants, capsules and device tokens together: the principal's whole authority.
            let name = principal.unwrap_or_else(|| ctx.principal.clone());
            match client.control(ControlCommand::AgentShow { name }).await? {
                ControlResponse::Agent(info) => {
                    crate::out::show(ctx.json, &info, super::tenants::agent_text)?
                }
                other => return Err(unexpected(other)),
            }
        }
        CapsCommand::Grant {
            principal,
            pattern,
            expires,
        } => {
            let ttl_ms = expires.as_deref().map(parse_duration_ms).transpose()?;
            let cmd = ControlCommand::CapsGrant {
                principal,
                pattern,
                ttl_ms,
            };
            match client.control(cmd).await? {
                ControlResponse::Granted(t) => outln!("granted {}", line(&t)),
                other => return Err(unexpected(other)),
            }
        }
        CapsCommand::Revoke { token_id } => {
            match client
                .control(ControlCommand::CapsRevoke { token_id })
                .await?
            {
                ControlResponse::RevokedToken { token_id } => outln!("revoked {token_id}"),
                other => return Err(unexpected(other)),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn line(t: &TokenInfo) -> String {
    let expires = t.expires_at_ms.map_or_else(|| "never".to_string(), utc);
    let state = if t.revoked { "  REVOKED" } else { "" };
    let bound = match &t.capsule {
        Some(c) => format!("  capsule {c} only"),
        None => String::new(),
    };
    format!(
        "{}  {}  {}  issued {}  expires {}{bound}{state}",
        t.id,
        t.principal,
        t.pattern,
        utc(t.issued_at_ms),
        expires
    )
}

/// `30s`, `15m`, `2h`, `7d`.
pub fn parse_duration_ms(s: &str) -> anyhow::Result<u64> {
    let (num, unit) = s.split_at(s.len().saturating_sub(1));
    let n: u64 = num
        .parse()
        .map_err(|_| anyhow!("duration `{s}`: expected N followed by s, m, h or d"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => bail!("duration `{s}`: unknown unit `{unit}` (use s, m, h or d)"),
    };
    if secs == 0 {
        bail!("duration `{s}` must be positive");
    }
    Ok(secs * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration_ms("30s").unwrap(), 30_000);
        assert_eq!(parse_duration_ms("2h").unwrap(), 7_200_000);
        assert_eq!(parse_duration_ms("1d").unwrap(), 86_400_000);
        assert!(parse_duration_ms("0m").is_err());
        assert!(parse_duration_ms("5").is_err());
        assert!(parse_duration_ms("h").is_err());
    }
}
