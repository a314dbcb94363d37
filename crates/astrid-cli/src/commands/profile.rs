//! `profile set|unset|show`: facts a principal says about itself, kept in its profile by the
//! daemon and read by capsules through `astrid:identity` only when allowed.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::Context as _;
use astrid_types::text::escape_controls;
use astrid_types::wire::{ControlCommand, ControlResponse};
use astrid_types::FactName;

use super::{unexpected, Ctx};
use crate::args::ProfileCommand;

pub async fn run(ctx: &Ctx, cmd: ProfileCommand) -> anyhow::Result<ExitCode> {
    // `Some((fact, value))` changes a fact (a `None` value removes it); `None` shows them.
    let (agent, change) = match cmd {
        ProfileCommand::Set { agent, fact, value } => (agent, Some((fact, Some(value)))),
        ProfileCommand::Unset { agent, fact } => (agent, Some((fact, None))),
        ProfileCommand::Show { agent } => (agent, None),
    };
    let principal = agent.unwrap_or_else(|| ctx.principal.clone());
    let command = match change {
        Some((fact, value)) => ControlCommand::ProfileSet {
            principal: principal.clone(),
            fact: FactName::new(fact).context("profile")?,
            value,
        },
        None => ControlCommand::ProfileShow {
            principal: principal.clone(),
        },
    };
    let client = ctx.connect(true).await?;
    match client.control(command).await? {
        ControlResponse::Facts(facts) => {
            crate::out::show(ctx.json, &facts, |f| show(&principal, f))?
        }
        other => return Err(unexpected(other)),
    }
    Ok(ExitCode::SUCCESS)
}

/// One `name  value` line per fact, values escaped (they are the principal's own text, but
/// a terminal is no place to trust it).
fn show(principal: &str, facts: &BTreeMap<FactName, String>) -> String {
    if facts.is_empty() {
        return format!("profile of `{principal}`: no facts\n");
    }
    let width = facts.keys().map(|k| k.as_str().len()).max().unwrap_or(0);
    let mut out = format!("profile of `{principal}`:\n");
    for (name, value) in facts {
        out.push_str(&format!(
            "  {:width$}  {}\n",
            name.as_str(),
            escape_controls(value)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_are_aligned_and_escaped() {
        let mut facts = BTreeMap::new();
        facts.insert(FactName::new("tz").unwrap(), "Europe/Oslo".to_string());
        facts.insert(
            FactName::new("display_name").unwrap(),
            "Ada\u{202e}x".to_string(),
        );
        assert_eq!(
            show("default", &facts),
            "profile of `default`:\n  display_name  Ada\\u{202e}x\n  tz            Europe/Oslo\n"
        );
        assert_eq!(
            show("bob", &BTreeMap::new()),
            "profile of `bob`: no facts\n"
        );
    }
}
