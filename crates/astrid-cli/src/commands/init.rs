//! `astrid init`: start the daemon, install the distro, then set up one or more providers
//! (base URL, API key in the secret store, network grant, local-egress consent, model) and
//! point the registry at the first.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use astrid_client::Client;
use astrid_types::wire::ControlCommand;
use serde::Deserialize;

use super::distro;
use super::init_plan::{
    self, choose_model, parse_model_answer, parse_selection, KeySource, ModelChoice, Plan,
    ProviderPlan,
};
use super::turn::{parse_reply, request_error};
use super::Ctx;
use crate::args::{InitArgs, ProviderKind};
use crate::origin::Origin;
use astrid_types::distro::LOCK_FILE;

/// A provider's `/v1/models` can be slow on a busy machine or behind a cold local server.
const MODELS_TIMEOUT: Duration = Duration::from_secs(120);

/// `llm.v1.models.<provider>`'s reply.
#[derive(Debug, Deserialize)]
pub struct ModelList {
    #[serde(default)]
    pub base_url: String,
    #[serde(default)]
    pub current: Option<String>,
    #[serde(default)]
    pub models: Vec<ModelId>,
}

#[derive(Debug, Deserialize)]
pub struct ModelId {
    pub id: String,
}

impl ModelList {
    pub fn ids(&self) -> Vec<String> {
        self.models.iter().map(|m| m.id.clone()).collect()
    }
}

/// Asks a provider capsule for its live model list.
pub async fn list_models(client: &Client, provider: &str) -> anyhow::Result<ModelList> {
    let topic = format!("llm.v1.models.{provider}");
    let spinner = crate::progress::spinner(format!("asking provider-{provider} for its models"));
    let reply = client.request(&topic, "{}", MODELS_TIMEOUT).await;
    spinner.finish_and_clear();
    let reply = reply.map_err(|e| request_error(&topic, e))?;
    parse_reply(&reply, &format!("provider-{provider}"))
}

/// What was set up for one provider, for the summary.
struct Done {
    kind: ProviderKind,
    base_url: String,
    local: bool,
    model: Option<String>,
}

pub async fn run(ctx: &Ctx, args: InitArgs) -> anyhow::Result<ExitCode> {
    // Found and opened before the daemon is started, so a missing distro or a bundle that
    // does not verify changes nothing.
    let cwd = std::env::current_dir().context("cannot determine the current directory")?;
    let exe = std::env::current_exe().ok();
    // Kept until the install is done: a downloaded bundle lives in its temporary directory.
    let mut fetched = None;
    let by_name = args.distro.as_deref().and_then(super::registry::wanted);
    let (path, source) = match (&args.offline, by_name) {
        (Some(bundle), _) => (bundle.clone(), distro::Source::Offline),
        (None, Some(wanted)) => {
            let f = super::registry::fetch_distro(ctx, &args.registry, &wanted?).await?;
            let path = f.path.clone();
            fetched = Some(f);
            (path, distro::Source::Registry)
        }
        (None, None) => distro::locate(
            args.distro.as_deref(),
            std::env::var_os("ASTRID_DISTRO"),
            exe.as_deref(),
            &cwd,
        )?,
    };
    // The summary names the directory however the operator spelled it.
    let path = std::fs::canonicalize(&path).unwrap_or(path);
    let (p, home) = (path.clone(), ctx.home.clone());
    let opened = tokio::task::spawn_blocking(move || distro::open(&p, &home)).await??;
    let client = ctx.connect(true).await?;
    outln!("daemon: running ({})", ctx.home.root().display());
    outln!("distro: {} ({})", path.display(), source.describe());
    if let Some(signer) = &opened.signer {
        outln!("  signed by {signer}, a trusted publisher");
    }
    let dir = path;
    let distro = distro::install(&client, opened).await?;
    drop(fetched);
    let mcp_failed = super::mcp_servers::add_from_distro(ctx, &distro.manifest.mcp_servers).await;
    let lock_path = ctx.home.root().join(LOCK_FILE);

    let plan = if args.yes {
        init_plan::yes_plan(&args, &distro.manifest.providers, |v| std::env::var(v).ok())
    } else {
        interactive_plan(&args).await?
    };
    if plan.local_fallback {
        outln!(
            "no provider given (--provider, --base-url, OPENAI_API_KEY or ANTHROPIC_API_KEY): \
             using the local OpenAI-compatible server at {} (what ./scripts/local-model.sh \
             start serves)",
            init_plan::LOCAL_FALLBACK_URL
        );
    }
    let mut done = Vec::new();
    for p in &plan.providers {
        done.push(setup_provider(&client, ctx, p, &args).await?);
    }
    let chosen = done.iter().find(|d| d.model.is_some()).unwrap_or(&done[0]);
    set(&client, ctx, "registry", "provider", Some(chosen.kind.id())).await?;
    set(&client, ctx, "registry", "model", chosen.model.as_deref()).await?;

    outln!("\nsummary:");
    outln!(
        "  distro     {} {}: {} capsules from {} (pinned in {})",
        distro.lock.name,
        distro.lock.version,
        distro.lock.capsules.len(),
        dir.display(),
        lock_path.display()
    );
    for d in &done {
        let marker = if d.kind == chosen.kind { "*" } else { " " };
        let local = if d.local { ", local" } else { "" };
        outln!(
            "  provider {marker} {} at {}{local}, model {}",
            d.kind.id(),
            d.base_url,
            d.model.as_deref().unwrap_or("(none)")
        );
    }
    if chosen.model.is_none() {
        outln!(
            "init is incomplete: no model is configured; fix the provider and run `astrid init` \
             again (or pass --model)"
        );
        return Ok(ExitCode::FAILURE);
    }
    if mcp_failed > 0 {
        outln!(
            "init is incomplete: {mcp_failed} MCP server(s) of the distro were not added (see \
             the warnings); fix the cause and run `astrid init` again, or add them with \
             `astrid mcp add`"
        );
        return Ok(ExitCode::FAILURE);
    }
    outln!("next: astrid doctor");
    Ok(ExitCode::SUCCESS)
}

async fn setup_provider(
    client: &Client,
    ctx: &Ctx,
    p: &ProviderPlan,
    args: &InitArgs,
) -> anyhow::Result<Done> {
    let capsule = p.kind.capsule();
    let origin = Origin::parse(&p.base_url).map_err(|e| anyhow!("{}: {e}", p.kind.id()))?;
    outln!("\n{} at {}", p.kind.label(), p.base_url);

    let key = match &p.key {
        KeySource::Env(var) => {
            outln!("  API key from ${var}");
            std::env::var(var).unwrap_or_default()
        }
        KeySource::Ask => ask_key(p.kind).await?,
        KeySource::None => String::new(),
    };
    if key.trim().is_empty() {
        if !origin.is_local() {
            outln!(
                "  warning: no API key for {}; set {} or run `astrid secret set {capsule} \
                 api_key --origin {origin}`",
                origin.host,
                p.kind.key_env()
            );
        }
    } else {
        let command = ControlCommand::SecretSet {
            principal: ctx.principal.clone(),
            capsule: capsule.to_string(),
            name: "api_key".to_string(),
            value: key.trim().to_string(),
            origin: origin.to_string(),
        };
        client.control(command).await?;
        outln!("  API key stored in the secret store, sent only to {origin}");
    }

    set(client, ctx, capsule, "base_url", Some(&p.base_url)).await?;
    let pattern = format!("net:connect:{}", origin.target());
    client
        .control(ControlCommand::CapsEnsure {
            principal: ctx.principal.clone(),
            pattern: pattern.clone(),
            ttl_ms: None,
        })
        .await?;
    outln!("  granted {pattern}");
    if origin.is_local() {
        client
            .control(ControlCommand::EgressAllow {
                principal: ctx.principal.clone(),
                capsule: capsule.to_string(),
                target: origin.target(),
            })
            .await?;
        outln!(
            "  {} is on this machine or network: choosing it is your local-egress consent for \
             {capsule} to reach {} (and only that; recorded in the audit chain; undo with \
             `astrid egress revoke {capsule} {}`)",
            origin.host,
            origin.target(),
            origin.target()
        );
    }

    let listed = match list_models(client, p.kind.id()).await {
        Ok(list) => {
            let ids = list.ids();
            outln!("  {} models available", ids.len());
            Some((ids, list.current))
        }
        Err(e) => {
            outln!("  cannot list models: {e}");
            if origin.is_local() {
                outln!("  (is the server running? {})", init_plan::LOCAL_MODEL_FIX);
            }
            None
        }
    };
    let (ids, current) = listed.clone().unwrap_or_default();
    let wanted = args.model.as_deref().or(p.model.as_deref());
    let model = match choose_model(&ids, wanted, current.as_deref(), args.yes) {
        ModelChoice::Use(m) => Some(m),
        ModelChoice::Ask(default) => Some(ask_model(&ids, default.as_deref()).await?),
        ModelChoice::Unknown => None,
    };
    if let (Some(m), Some((ids, _))) = (&model, &listed) {
        if !ids.is_empty() && !ids.contains(m) {
            outln!("  warning: the provider does not list `{m}`");
        }
    }
    if let Some(m) = &model {
        set(client, ctx, capsule, "model", Some(m)).await?;
        outln!("  model: {m}");
    }
    Ok(Done {
        kind: p.kind,
        base_url: p.base_url.clone(),
        local: origin.is_local(),
        model,
    })
}

async fn set(
    client: &Client,
    ctx: &Ctx,
    capsule: &str,
    key: &str,
    value: Option<&str>,
) -> anyhow::Result<()> {
    client
        .control(ControlCommand::ConfigSet {
            principal: ctx.principal.clone(),
            capsule: capsule.to_string(),
            key: key.to_string(),
            value: value.map(str::to_string),
        })
        .await
        .with_context(|| format!("setting {key} of {capsule}"))?;
    Ok(())
}

/// The interactive path: the provider multi-select and each provider's base URL; keys are
/// asked for later, without echo.
async fn interactive_plan(args: &InitArgs) -> anyhow::Result<Plan> {
    let kinds = match args.provider {
        Some(k) => vec![k],
        None => {
            outln!("\nwhich providers? (numbers separated by commas; at least one)");
            for (i, k) in init_plan::ALL.iter().enumerate() {
                outln!("  {}) {}", i + 1, k.label());
            }
            loop {
                match parse_selection(&ask_line("providers [1]: ").await?) {
                    Ok(kinds) => break kinds,
                    Err(e) => outln!("{e}"),
                }
            }
        }
    };
    let mut providers = Vec::new();
    for (i, kind) in kinds.into_iter().enumerate() {
        let default = match (&args.base_url, i) {
            (Some(url), 0) => url.clone(),
            _ => kind.default_url().to_string(),
        };
        let base_url = loop {
            let answer = ask_line(&format!("{} base URL [{default}]: ", kind.id())).await?;
            let url = init_plan::normalize_base_url(if answer.trim().is_empty() {
                &default
            } else {
                &answer
            });
            match Origin::parse(&url) {
                Ok(_) => break url,
                Err(e) => outln!("{e}"),
            }
        };
        providers.push(ProviderPlan {
            kind,
            base_url,
            key: KeySource::Ask,
            model: None,
        });
    }
    Ok(Plan {
        providers,
        local_fallback: false,
    })
}

async fn ask_model(models: &[String], default: Option<&str>) -> anyhow::Result<String> {
    for (i, m) in models.iter().enumerate() {
        outln!("  {}) {m}", i + 1);
    }
    let question = match default {
        Some(d) => format!("model [{d}]: "),
        None => "model: ".to_string(),
    };
    loop {
        match parse_model_answer(&ask_line(&question).await?, models, default) {
            Ok(m) => return Ok(m),
            Err(e) => outln!("{e}"),
        }
    }
}

/// The key without echo on a terminal; from a piped stdin, the next line. An empty answer
/// takes the provider's environment variable when it is set.
async fn ask_key(kind: ProviderKind) -> anyhow::Result<String> {
    let var = kind.key_env();
    let env = std::env::var(var).ok().filter(|v| !v.trim().is_empty());
    let hint = if env.is_some() {
        format!("empty uses ${var}")
    } else {
        "empty for none, e.g. a local server".to_string()
    };
    let question = format!("  {} API key (input hidden; {hint}): ", kind.id());
    let key = if std::io::stdin().is_terminal() {
        tokio::task::spawn_blocking(move || rpassword::prompt_password(question))
            .await?
            .context("reading the API key")?
    } else {
        ask_line(&question).await?
    };
    Ok(match (key.trim().is_empty(), env) {
        (true, Some(v)) => v,
        _ => key.trim().to_string(),
    })
}

/// One line from stdin (off the async thread); EOF is an error that suggests `--yes`.
async fn ask_line(question: &str) -> anyhow::Result<String> {
    out!("{question}");
    let _ = std::io::stdout().flush();
    let line = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map(|n| (n, line))
    })
    .await?
    .context("reading stdin")?;
    match line {
        (0, _) => bail!(
            "stdin ended before init was done; use `astrid init --yes` to run without questions"
        ),
        (_, text) => Ok(text.trim_end_matches(['\n', '\r']).to_string()),
    }
}
