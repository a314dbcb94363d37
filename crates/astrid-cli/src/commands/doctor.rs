//! `astrid doctor`: is the agent loop ready? Each check prints ✓ or ✗ with a one-line fix.
//!
//! Doctor never starts the daemon: on a fresh machine it reports the daemon as not running
//! (fix: `astrid start`) rather than changing the state it is asked to diagnose. Checks that
//! need the daemon are then skipped; the sandbox check still runs.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use astrid_client::{is_daemon_running, Client, ClientError};
use astrid_types::wire::{
    CapsuleInfo, ControlCommand, ControlResponse, LifecycleState, RequestError,
};
use serde::Deserialize;

use super::init::list_models;
use super::init_plan::{ALL, LOCAL_MODEL_FIX};
use super::turn::{parse_reply, request_error};
use super::{unexpected, Ctx};

/// The distro capsules the agent loop needs besides a provider.
pub const REQUIRED: [&str; 6] = [
    "agent",
    "session",
    "registry",
    "tool-fs",
    "tool-shell",
    "tool-http",
];

const REGISTRY_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub ok: bool,
    pub what: String,
    /// On failure: how to fix it.
    pub hint: String,
}

impl Check {
    fn pass(what: impl Into<String>) -> Check {
        Check {
            ok: true,
            what: what.into(),
            hint: String::new(),
        }
    }

    fn fail(what: impl Into<String>, hint: impl Into<String>) -> Check {
        Check {
            ok: false,
            what: what.into(),
            hint: hint.into(),
        }
    }
}

pub fn render(checks: &[Check]) -> String {
    let mut out = String::new();
    for c in checks {
        if c.ok {
            let _ = writeln!(out, "✓ {}", c.what);
        } else {
            let _ = writeln!(out, "✗ {}", c.what);
            if !c.hint.is_empty() {
                let _ = writeln!(out, "    fix: {}", c.hint);
            }
        }
    }
    out
}

/// A distro capsule: installed and loaded.
pub fn capsule_check(name: &str, installed: &[CapsuleInfo]) -> Check {
    match installed.iter().find(|c| c.name == name) {
        None => Check::fail(
            format!("capsule {name} is not installed"),
            "astrid init (installs the distro)",
        ),
        Some(c) if matches!(c.state, LifecycleState::Ready | LifecycleState::Running) => {
            Check::pass(format!("capsule {name} {} ({})", c.version, c.state))
        }
        Some(c) => Check::fail(
            format!(
                "capsule {name} {} is {}{}",
                c.version,
                c.state,
                c.error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            ),
            "astrid init reinstalls it; the daemon log says more",
        ),
    }
}

/// No provider in the registry: an API key and `astrid init`, or the local model.
pub fn no_provider_check() -> Check {
    Check::fail(
        "registry: no provider configured",
        format!(
            "astrid init (with OPENAI_API_KEY or ANTHROPIC_API_KEY set); with no API key, run \
             {LOCAL_MODEL_FIX}, then astrid init --yes"
        ),
    )
}

/// The provider's model list could not be fetched: its URL, its key, or the local server down.
pub fn unreachable_provider_check(provider: &str, error: &str) -> Check {
    Check::fail(
        format!("provider {provider}: {error}"),
        format!(
            "check the base URL (astrid config show provider-{provider}) and the API key \
             (astrid secret list); for the local model run {LOCAL_MODEL_FIX}"
        ),
    )
}

/// The configured model against the provider's list.
pub fn model_check(provider: &str, model: Option<&str>, models: &[String]) -> Check {
    match model.filter(|m| !m.is_empty()) {
        None => Check::fail(
            format!("no model configured for {provider}"),
            "astrid models, then astrid init --model <name>",
        ),
        Some(m) if models.iter().any(|x| x == m) => Check::pass(format!("model {m} is available")),
        Some(m) => Check::fail(
            format!(
                "model {m} is not among the {} models {provider} lists",
                models.len()
            ),
            "astrid models, then astrid init --model <name>",
        ),
    }
}

/// `bwrap` on `PATH`: subprocesses (the shell tool) run inside it.
pub fn sandbox_check(path: Option<&std::ffi::OsStr>) -> Check {
    let found = path.and_then(|p| {
        std::env::split_paths(p)
            .map(|d| d.join("bwrap"))
            .find(|f| is_executable(f))
    });
    match found {
        Some(f) => Check::pass(format!("subprocess sandbox: {}", f.display())),
        None => Check::fail(
            "subprocess sandbox: bwrap is not on PATH",
            "apt-get install bubblewrap",
        ),
    }
}

/// What subprocess limits can rest on here. As root without a writable cgroup nothing bounds
/// the process count (RLIMIT_NPROC does not bind root), and that is said, not hidden.
pub fn limits_check(e: &astrid_process::Enforcement) -> Check {
    if e.complete() {
        Check::pass(format!("subprocess limits: {e}"))
    } else {
        Check::fail(
            format!("subprocess limits: {e}"),
            "run the daemon as a normal user, or where it can create a cgroup (cgroup v2 with \
             pids and memory delegated, or writable v1 pids and memory hierarchies)",
        )
    }
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[derive(Debug, Deserialize)]
struct Current {
    #[serde(default)]
    provider: Option<String>,
    #[serde(default)]
    model: Option<String>,
}

pub async fn run(ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let mut checks = Vec::new();
    let client = if is_daemon_running(&ctx.home) {
        match ctx.connect(false).await {
            Ok(c) => Some(c),
            Err(e) => {
                checks.push(Check::fail(
                    format!("daemon unreachable: {}", crate::error_text(&e)),
                    "astrid stop && astrid start",
                ));
                None
            }
        }
    } else {
        checks.push(Check::fail(
            format!("daemon not running ({})", ctx.home.root().display()),
            "astrid start",
        ));
        None
    };
    if let Some(client) = client {
        checks.extend(daemon_checks(&client).await?);
    }
    checks.push(sandbox_check(std::env::var_os("PATH").as_deref()));
    checks.push(limits_check(&astrid_process::limit_enforcement()));
    out!("{}", render(&checks));
    Ok(if checks.iter().all(|c| c.ok) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn daemon_checks(client: &Client) -> anyhow::Result<Vec<Check>> {
    let status = match client.control(ControlCommand::Status).await? {
        ControlResponse::Status(s) => s,
        other => return Err(unexpected(other)),
    };
    let mut checks = vec![Check::pass(format!(
        "daemon running (pid {}, version {})",
        status.pid, status.version
    ))];
    let installed = match client.control(ControlCommand::List).await? {
        ControlResponse::Capsules(c) => c,
        other => return Err(unexpected(other)),
    };
    let current = client
        .request("registry.v1.current", "{}", REGISTRY_TIMEOUT)
        .await
        .map_err(|e| match e {
            ClientError::Request(RequestError::NoSubscriber(_)) => {
                anyhow::anyhow!("nothing answers (the registry capsule is not running)")
            }
            other => request_error("registry.v1.current", other),
        })
        .and_then(|r| parse_reply::<Current>(&r, "registry"));
    let provider = current
        .as_ref()
        .ok()
        .and_then(|c| c.provider.clone())
        .filter(|p| !p.is_empty());

    for name in REQUIRED {
        checks.push(capsule_check(name, &installed));
    }
    // Without a configured provider, any installed provider capsule will do for this check.
    let provider_capsules: Vec<String> = match &provider {
        Some(p) => vec![format!("provider-{p}")],
        None => ALL.iter().map(|k| k.capsule().to_string()).collect(),
    };
    let present: Vec<Check> = provider_capsules
        .iter()
        .map(|n| capsule_check(n, &installed))
        .collect();
    match present.iter().find(|c| c.ok) {
        Some(ok) => checks.push(ok.clone()),
        None => checks.push(present[0].clone()),
    }

    let (provider, model) = match current {
        Ok(Current {
            provider: Some(p),
            model,
        }) if !p.is_empty() => {
            checks.push(Check::pass(format!(
                "registry: provider {p}, model {}",
                model.as_deref().unwrap_or("(none)")
            )));
            (p, model)
        }
        Ok(_) => {
            checks.push(no_provider_check());
            return Ok(checks);
        }
        Err(e) => {
            checks.push(Check::fail(
                format!("registry.v1.current: {}", crate::error_text(&e)),
                "astrid init",
            ));
            return Ok(checks);
        }
    };
    match list_models(client, &provider).await {
        Ok(list) => {
            let ids = list.ids();
            checks.push(Check::pass(format!(
                "provider {provider} at {} lists {} models",
                list.base_url,
                ids.len()
            )));
            let model = model.or(list.current.clone());
            checks.push(model_check(&provider, model.as_deref(), &ids));
        }
        Err(e) => checks.push(unreachable_provider_check(
            &provider,
            &crate::error_text(&e),
        )),
    }
    Ok(checks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str, state: LifecycleState, error: Option<&str>) -> CapsuleInfo {
        CapsuleInfo {
            error: error.map(str::to_string),
            ..crate::test_support::capsule(name, state)
        }
    }

    #[test]
    fn capsules_must_be_installed_and_loaded() {
        let list = [
            info("agent", LifecycleState::Running, None),
            info("session", LifecycleState::Ready, None),
            info(
                "tool-shell",
                LifecycleState::Failed,
                Some("trap: unreachable"),
            ),
        ];
        assert!(capsule_check("agent", &list).ok);
        assert_eq!(
            capsule_check("session", &list).what,
            "capsule session 0.1.0 (ready)"
        );
        let c = capsule_check("tool-shell", &list);
        assert!(
            !c.ok && c.what.contains("failed: trap: unreachable"),
            "{c:?}"
        );
        let c = capsule_check("tool-fs", &list);
        assert!(!c.ok && c.hint.starts_with("astrid init"), "{c:?}");
    }

    #[test]
    fn the_model_must_be_listed() {
        let ids = vec!["qwen".to_string()];
        assert!(model_check("openai", Some("qwen"), &ids).ok);
        let c = model_check("openai", Some("gpt-9"), &ids);
        assert!(!c.ok && c.hint.contains("astrid models"), "{c:?}");
        assert!(!model_check("openai", None, &ids).ok);
    }

    #[test]
    fn an_unenforced_process_limit_fails_the_check() {
        use astrid_process::{Enforcement, Mechanism};
        let open = Enforcement {
            processes: Mechanism::NotEnforced,
            memory: Mechanism::Rlimit,
        };
        let c = limits_check(&open);
        assert!(!c.ok && c.what.contains("NOT ENFORCED"), "{c:?}");
        let whole = Enforcement {
            processes: Mechanism::Cgroup,
            memory: Mechanism::Cgroup,
        };
        assert!(limits_check(&whole).ok);
    }

    #[test]
    fn a_missing_or_unreachable_provider_names_the_local_model_script() {
        let c = no_provider_check();
        assert!(!c.ok);
        assert!(c.hint.starts_with("astrid init"), "{c:?}");
        assert!(c.hint.contains("./scripts/local-model.sh start"), "{c:?}");
        assert!(c.hint.contains("20 minutes"), "{c:?}");
        let c = unreachable_provider_check("openai", "connection refused");
        assert_eq!(c.what, "provider openai: connection refused");
        assert!(c.hint.contains("provider-openai"), "{c:?}");
        assert!(c.hint.contains("./scripts/local-model.sh start"), "{c:?}");
    }

    #[test]
    fn sandbox_check_looks_on_path() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!sandbox_check(Some(dir.path().as_os_str())).ok);
        assert!(!sandbox_check(None).ok);
        let bwrap = dir.path().join("bwrap");
        std::fs::write(&bwrap, "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&bwrap, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = std::env::join_paths([Path::new("/nonexistent"), dir.path()]).unwrap();
        let c = sandbox_check(Some(&path));
        assert!(c.ok, "{c:?}");
        assert!(c.what.ends_with("/bwrap"));
    }

    #[test]
    fn rendering_shows_fixes_only_for_failures() {
        let text = render(&[
            Check::pass("daemon running (pid 1, version 0.1.0)"),
            Check::fail("capsule agent is not installed", "astrid init"),
        ]);
        assert_eq!(
            text,
            "✓ daemon running (pid 1, version 0.1.0)\n✗ capsule agent is not installed\n    fix: astrid init\n"
        );
    }
}
