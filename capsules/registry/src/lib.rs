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
    /// Where `model` comes from: `selected` (the principal chose it, `registry.v1.select`),
    /// `config` (the `model` setting `astrid init` writes) or `default` (unset: the
    /// provider's own default).
    source: &'static str,
}

/// KV key of the principal's own choice.
const SELECTED: &str = "selected";

/// A model the principal selected, for the provider it was selected with: switching the
/// provider setting makes an old choice moot rather than wrong.
#[derive(Serialize, Deserialize)]
struct Selected {
    provider: String,
    model: String,
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
    let selected = kv::get_json::<Selected>(SELECTED)?.filter(|s| s.provider == provider);
    let (model, source) = match (selected, setting("model")?) {
        (Some(s), _) => (Some(s.model), "selected"),
        (None, Some(m)) => (Some(m), "config"),
        (None, None) => (None, "default"),
    };
    Ok(Current {
        provider,
        model,
        source,
    })
}

/// The provider's live model list.
fn listing(provider: &str) -> Result<models::Listing, CapsuleError> {
    let topic = format!("llm.v1.models.{provider}");
    let reply = ipc::request(&topic, b"{}", MODELS_TIMEOUT_MS)
        .map_err(|e| models::request_error(provider, &e, MODELS_TIMEOUT_MS))?;
    serde_json::from_slice(&reply).map_err(|e| {
        CapsuleError::failed(format!(
            "provider `{provider}` sent a malformed model list: {e}"
        ))
    })
}

#[derive(Deserialize)]
struct Select {
    /// `None` forgets the choice (back to the configured model).
    model: Option<String>,
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
        let listing = listing(&provider)?;
        Ok(serde_json::to_vec(&CommandReply {
            text: models::render(&listing, configured.as_deref()),
        })?)
    }

    /// `{"model": "id" | null}` → `registry.v1.current`'s reply. The principal's own choice
    /// among the current provider's live models; `null` goes back to the configured one. A
    /// model the provider does not list is refused, naming the ones it does.
    #[astrid::handler]
    fn select(&self, event: &Event) -> Result<Vec<u8>, CapsuleError> {
        let req: Select = event.json()?;
        let cur = current()?;
        match req.model.map(|m| m.trim().to_owned()) {
            None => {
                kv::delete(SELECTED).map_err(SysError::from)?;
            }
            Some(model) => {
                let listing = listing(&cur.provider)?;
                if !listing.models.iter().any(|m| m.id == model) {
                    let mut ids: Vec<&str> = listing.models.iter().map(|m| m.id.as_str()).collect();
                    ids.sort_unstable();
                    return Err(CapsuleError::invalid(format!(
                        "provider `{}` does not offer model `{model}`; it offers: {}",
                        cur.provider,
                        ids.join(", ")
                    )));
                }
                kv::set_json(
                    SELECTED,
                    &Selected {
                        provider: cur.provider,
                        model,
                    },
                )?;
            }
        }
        Ok(serde_json::to_vec(&current()?)?)
    }
}
