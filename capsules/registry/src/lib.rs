//! `registry`: which provider and model the agent uses (from this capsule's settings, which
//! `astrid init` writes), and the `astrid models` command listing what the provider serves.
//! Contract: `docs/AGENT-PROTOCOL.md`, section `registry.v1.current`.
#![forbid(unsafe_code)]

mod models;

use astrid_sdk::prelude::*;

/// How long `astrid models` waits for the provider to list its models.
const MODELS_TIMEOUT_MS: u32 = 30_000;

#[derive(Default)]
struct Registry;

#[derive(Serialize)]
struct Current {
    provider: String,
    model: Option<String>,
}

/// A setting, with an empty value meaning unset (so an operator can clear a default).
fn setting(key: &str) -> Result<Option<String>, CapsuleError> {
    Ok(env::var_opt(key)?
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty()))
}

fn current() -> Result<Current, CapsuleError> {
    let provider = setting("provider")?.unwrap_or_else(|| models::DEFAULT_PROVIDER.to_owned());
    models::check_provider(&provider).map_err(CapsuleError::failed)?;
    Ok(Current {
        provider,
        model: setting("model")?,
    })
}

#[derive(Deserialize, Default)]
struct CommandArgs {
    #[serde(default)]
    args: Vec<String>,
}

#[derive(Serialize)]
struct CommandReply {
    text: String,
}

#[capsule]
impl Registry {
    /// `{}` → `{"provider", "model"}`.
    #[astrid::handler]
    fn current(&self, _event: &Event) -> Result<Vec<u8>, CapsuleError> {
        Ok(serde_json::to_vec(&current()?)?)
    }

    /// `astrid models [provider]`: the provider's models, one per line, the current one
    /// marked with `*`.
    #[astrid::handler]
    fn models(&self, event: &Event) -> Result<Vec<u8>, CapsuleError> {
        let cmd: CommandArgs = if event.payload.iter().all(u8::is_ascii_whitespace) {
            CommandArgs::default()
        } else {
            event.json()?
        };
        let cur = current()?;
        let provider = match cmd.args.first() {
            Some(p) => {
                models::check_provider(p).map_err(CapsuleError::invalid)?;
                p.clone()
            }
            None => cur.provider.clone(),
        };
        // The registry's model is only "current" for the provider it is configured for.
        let configured = (provider == cur.provider).then_some(cur.model).flatten();
        let topic = format!("llm.v1.models.{provider}");
        let reply = ipc::request(&topic, b"{}", MODELS_TIMEOUT_MS)
            .map_err(|e| models::request_error(&provider, &e, MODELS_TIMEOUT_MS))?;
        let listing: models::Listing = serde_json::from_slice(&reply).map_err(|e| {
            CapsuleError::failed(format!(
                "provider `{provider}` sent a malformed model list: {e}"
            ))
        })?;
        Ok(serde_json::to_vec(&CommandReply {
            text: models::render(&listing, configured.as_deref()),
        })?)
    }
}
