//! The agent's settings (the manifest's `[env]`) and its system prompt.

/// Settings, read once per turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub max_steps: u32,
    pub provider_timeout_ms: u32,
    pub tool_timeout_ms: u32,
    /// How long to wait for tool capsules to describe their tools.
    pub describe_timeout_ms: u32,
    pub max_tokens: u32,
    /// The most bytes of one tool result the model is shown.
    pub tool_output_limit: usize,
    pub system_prompt: Option<String>,
}

/// The most steps a turn may take, whatever the request or settings say.
pub const MAX_STEPS_LIMIT: u32 = 100;

impl Config {
    /// Reads every setting through `lookup` (the host's config call, or a map in tests).
    /// Unset or empty values take the defaults; malformed ones are errors naming the key.
    pub fn load(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, String> {
        let num = |key: &str, default: u64, min: u64, max: u64| -> Result<u64, String> {
            let Some(raw) = lookup(key).filter(|v| !v.trim().is_empty()) else {
                return Ok(default);
            };
            match raw.trim().parse::<u64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(n),
                _ => Err(format!(
                    "agent setting `{key}` is `{raw}`; expected a whole number from {min} to {max}"
                )),
            }
        };
        let ms = |key: &str, default: u64| -> Result<u32, String> {
            // The bus takes u32 milliseconds; one hour is the kernel's ceiling anyway.
            Ok(num(key, default, 1, 3_600_000)? as u32)
        };
        Ok(Config {
            max_steps: num("max_steps", 8, 1, u64::from(MAX_STEPS_LIMIT))? as u32,
            provider_timeout_ms: ms("provider_timeout_ms", 600_000)?,
            tool_timeout_ms: ms("tool_timeout_ms", 600_000)?,
            describe_timeout_ms: ms("describe_timeout_ms", 2_000)?,
            max_tokens: num("max_tokens", 4096, 1, 1_000_000)? as u32,
            tool_output_limit: num("tool_output_limit", 64 * 1024, 256, 1024 * 1024)? as usize,
            system_prompt: lookup("system_prompt").filter(|p| !p.trim().is_empty()),
        })
    }

    /// The step limit for one turn: the request's, else the setting.
    pub fn steps_for(&self, requested: Option<u32>) -> Result<u32, String> {
        match requested {
            None => Ok(self.max_steps),
            Some(n) if (1..=MAX_STEPS_LIMIT).contains(&n) => Ok(n),
            Some(n) => Err(format!(
                "max_steps is {n}; it must be from 1 to {MAX_STEPS_LIMIT}"
            )),
        }
    }
}

/// The system prompt: the configured one (where `{workspace}` stands for the workspace
/// path), else a default that says where the tools act.
pub fn system_prompt(configured: Option<&str>, workspace: Option<&str>) -> String {
    if let Some(p) = configured {
        return p.replace("{workspace}", workspace.unwrap_or("(none)"));
    }
    let place = match workspace {
        Some(w) => format!(
            "The user's workspace is {w}. Your tools act inside it: relative paths are resolved \
             against it and commands run in it. Stay inside it unless the user asks otherwise."
        ),
        None => "No workspace is set for this session, so tools that read or write files or \
                 run commands may refuse."
            .to_owned(),
    };
    format!(
        "You are Astrid, an AI agent running in a sandbox on the user's machine. {place}\n\
         Use the tools to look at and change things instead of guessing. When a tool fails, \
         read its error: it may have been denied by the user or by policy, so do not simply \
         retry the same call. Keep answers short and say what you changed."
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(pairs: &[(&str, &str)]) -> Result<Config, String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::load(|k| m.get(k).cloned())
    }

    #[test]
    fn defaults_apply_when_unset_or_empty() {
        let c = load(&[("max_steps", ""), ("system_prompt", "  ")]).unwrap();
        assert_eq!(c.max_steps, 8);
        assert_eq!(c.provider_timeout_ms, 600_000);
        assert_eq!(c.tool_timeout_ms, 600_000);
        assert_eq!(c.tool_output_limit, 65536);
        assert_eq!(c.system_prompt, None);
    }

    #[test]
    fn settings_are_read_and_checked() {
        let c = load(&[("max_steps", "3"), ("tool_timeout_ms", " 1500 ")]).unwrap();
        assert_eq!((c.max_steps, c.tool_timeout_ms), (3, 1500));
        let e = load(&[("max_steps", "0")]).unwrap_err();
        assert!(
            e.contains("`max_steps`") && e.contains("from 1 to 100"),
            "{e}"
        );
        let e = load(&[("provider_timeout_ms", "soon")]).unwrap_err();
        assert!(e.contains("`provider_timeout_ms` is `soon`"), "{e}");
    }

    #[test]
    fn the_request_step_limit_wins_within_bounds() {
        let c = load(&[("max_steps", "5")]).unwrap();
        assert_eq!(c.steps_for(None), Ok(5));
        assert_eq!(c.steps_for(Some(2)), Ok(2));
        assert!(c.steps_for(Some(0)).is_err());
        assert!(c.steps_for(Some(101)).is_err());
    }

    #[test]
    fn the_system_prompt_names_the_workspace() {
        let p = system_prompt(None, Some("/home/u/proj"));
        assert!(p.contains("/home/u/proj"));
        assert!(p.contains("tools act inside it"));
        assert!(system_prompt(None, None).contains("No workspace"));
        assert_eq!(
            system_prompt(Some("Work in {workspace}."), Some("/w")),
            "Work in /w."
        );
        assert_eq!(
            system_prompt(Some("Work in {workspace}."), None),
            "Work in (none)."
        );
    }
}
