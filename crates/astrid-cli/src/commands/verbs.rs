//! Capsule verbs: `astrid <verb> args…` for a verb no built-in command has. The capsule whose
//! manifest declares the `[[command]]` answers `command.v1.<verb>` with `{"text": …}`.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use astrid_types::wire::{CapsuleInfo, ControlCommand, ControlResponse};
use serde_json::{json, Value};

use super::turn::request_error;
use super::{unexpected, Ctx};

/// A command may call out to a provider (e.g. `models` lists them live).
const VERB_TIMEOUT: Duration = Duration::from_secs(180);

pub async fn run(ctx: &Ctx, args: Vec<String>) -> anyhow::Result<ExitCode> {
    let Some((verb, rest)) = args.split_first() else {
        bail!("no command given; see `astrid --help`");
    };
    let client = ctx.connect(true).await?;
    let capsules = match client.control(ControlCommand::List).await? {
        ControlResponse::Capsules(c) => c,
        other => return Err(unexpected(other)),
    };
    if find_owner(&capsules, verb).is_none() {
        bail!("{}", unknown_verb(verb, &capsules));
    }
    let topic = format!("command.v1.{verb}");
    let reply = client
        .request(&topic, json!({ "args": rest }).to_string(), VERB_TIMEOUT)
        .await
        .map_err(|e| request_error(&topic, e))?;
    let text = reply_text(&reply);
    if text.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    out!("{text}");
    if !text.ends_with('\n') {
        outln!();
    }
    Ok(ExitCode::SUCCESS)
}

/// The capsule that declares `verb`.
pub fn find_owner<'a>(capsules: &'a [CapsuleInfo], verb: &str) -> Option<&'a CapsuleInfo> {
    capsules
        .iter()
        .find(|c| c.commands.iter().any(|(name, _)| name == verb))
}

/// The error for a verb nobody declares, listing the ones that exist.
pub fn unknown_verb(verb: &str, capsules: &[CapsuleInfo]) -> String {
    let mut known: Vec<String> = capsules
        .iter()
        .flat_map(|c| {
            c.commands.iter().map(move |(name, desc)| {
                if desc.is_empty() {
                    format!("  {name} ({})", c.name)
                } else {
                    format!("  {name}: {desc} ({})", c.name)
                }
            })
        })
        .collect();
    known.sort();
    if known.is_empty() {
        format!(
            "unknown command `{verb}`: it is not built in (see `astrid --help`) and no installed \
             capsule adds it (none adds any commands; `astrid init` installs the distro)"
        )
    } else {
        format!(
            "unknown command `{verb}`: it is not built in (see `astrid --help`) and no installed \
             capsule adds it; capsule commands:\n{}",
            known.join("\n")
        )
    }
}

/// The reply's `text`; a reply without one is shown as the JSON it is.
pub fn reply_text(reply: &[u8]) -> String {
    match serde_json::from_slice::<Value>(reply) {
        Ok(Value::Object(map)) => match map.get("text") {
            Some(Value::String(s)) => s.clone(),
            _ => Value::Object(map).to_string(),
        },
        Ok(other) => other.to_string(),
        Err(_) => String::from_utf8_lossy(reply).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use astrid_types::wire::LifecycleState;

    fn info(name: &str, commands: &[(&str, &str)]) -> CapsuleInfo {
        CapsuleInfo {
            commands: commands
                .iter()
                .map(|(n, d)| (n.to_string(), d.to_string()))
                .collect(),
            ..crate::test_support::capsule(name, LifecycleState::Ready)
        }
    }

    #[test]
    fn verbs_are_found_by_their_capsule() {
        let list = [
            info("agent", &[]),
            info("registry", &[("models", "list the provider's models")]),
        ];
        assert_eq!(find_owner(&list, "models").unwrap().name, "registry");
        assert!(find_owner(&list, "agent").is_none());
    }

    #[test]
    fn unknown_verbs_list_the_known_ones() {
        let list = [
            info("registry", &[("models", "list the provider's models")]),
            info("x", &[("alpha", "")]),
        ];
        let msg = unknown_verb("modles", &list);
        assert!(msg.starts_with("unknown command `modles`"), "{msg}");
        assert!(
            msg.ends_with("\n  alpha (x)\n  models: list the provider's models (registry)"),
            "{msg}"
        );
        assert!(unknown_verb("x", &[]).contains("astrid init"));
    }

    #[test]
    fn reply_text_is_extracted() {
        assert_eq!(reply_text(br#"{"text":"a\nb"}"#), "a\nb");
        assert_eq!(reply_text(br#"{"models":[]}"#), r#"{"models":[]}"#);
        assert_eq!(reply_text(b"plain"), "plain");
    }
}
