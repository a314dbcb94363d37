//! A provider capsule's `[env]` settings, read through a lookup so the rules are testable.

use crate::api::Api;
use crate::error::LlmError;

/// Output limit when neither the request nor the settings give one.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

/// Per-request HTTP limit when the settings give none.
pub const DEFAULT_TIMEOUT_MS: u32 = 120_000;

/// The settings one completion runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderConfig {
    /// As configured (trimmed, without trailing `/`); reported by `llm.v1.models`.
    pub base_url: String,
    /// The model used when a request names none.
    pub model: String,
    /// The output limit used when a request gives none.
    pub max_tokens: u32,
    /// Limit for one HTTP exchange, body included.
    pub timeout_ms: u32,
    /// `base_url` without a trailing `/v1`; endpoint paths are appended to it.
    root: String,
}

impl ProviderConfig {
    /// Reads `base_url`, `model`, `max_tokens` and `timeout_ms` through `get`; missing or
    /// blank values take the provider's defaults.
    pub fn from_settings(api: Api, get: impl Fn(&str) -> Option<String>) -> Result<Self, LlmError> {
        let setting = |key: &str| {
            get(key)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let base_url = setting("base_url").unwrap_or_else(|| api.default_base_url().to_owned());
        let base_url = base_url.trim_end_matches('/').to_owned();
        let root = api_root(&base_url)?;
        let model = setting("model").unwrap_or_else(|| api.default_model().to_owned());
        let max_tokens = positive("max_tokens", setting("max_tokens"), DEFAULT_MAX_TOKENS)?;
        let timeout_ms = positive("timeout_ms", setting("timeout_ms"), DEFAULT_TIMEOUT_MS)?;
        Ok(Self {
            base_url,
            model,
            max_tokens,
            timeout_ms,
            root,
        })
    }

    /// The URL of an API path such as `chat/completions` (the `/v1/` is added here).
    pub fn url(&self, path: &str) -> String {
        format!("{}/v1/{}", self.root, path.trim_start_matches('/'))
    }

    /// The HTTP limit in whole seconds, rounded up, for messages.
    pub fn timeout_secs(&self) -> u64 {
        u64::from(self.timeout_ms).div_ceil(1000)
    }
}

/// Accepts a base URL with or without a trailing `/v1` (both forms are common in provider
/// documentation) and returns it without.
fn api_root(base_url: &str) -> Result<String, LlmError> {
    let scheme_ok = ["http://", "https://"]
        .iter()
        .any(|s| base_url.len() > s.len() && base_url[..s.len()].eq_ignore_ascii_case(s));
    if !scheme_ok
        || base_url
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(LlmError::Config(format!(
            "`base_url` must be an http:// or https:// URL, got `{base_url}`"
        )));
    }
    let trimmed = base_url.trim_end_matches('/');
    Ok(trimmed
        .strip_suffix("/v1")
        .unwrap_or(trimmed)
        .trim_end_matches('/')
        .to_owned())
}

fn positive(key: &str, value: Option<String>, default: u32) -> Result<u32, LlmError> {
    let Some(text) = value else {
        return Ok(default);
    };
    match text.parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(LlmError::Config(format!(
            "`{key}` must be a whole number from 1 to {}, got `{text}`",
            u32::MAX
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(api: Api, pairs: &[(&str, &str)]) -> Result<ProviderConfig, LlmError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        ProviderConfig::from_settings(api, |k| map.get(k).cloned())
    }

    #[test]
    fn defaults() {
        let c = config(Api::OpenAi, &[]).unwrap();
        assert_eq!(c.base_url, "https://api.openai.com");
        assert_eq!(c.model, "gpt-4o-mini");
        assert_eq!(
            (c.max_tokens, c.timeout_ms, c.timeout_secs()),
            (4096, 120_000, 120)
        );
        assert_eq!(
            c.url("chat/completions"),
            "https://api.openai.com/v1/chat/completions"
        );
        let a = config(Api::Anthropic, &[("base_url", "  "), ("model", "")]).unwrap();
        assert_eq!(a.url("messages"), "https://api.anthropic.com/v1/messages");
        assert_eq!(a.model, "claude-3-5-haiku-latest");
    }

    #[test]
    fn base_url_with_or_without_v1() {
        for base in [
            "http://127.0.0.1:11434",
            "http://127.0.0.1:11434/",
            "http://127.0.0.1:11434/v1",
            "http://127.0.0.1:11434/v1/",
        ] {
            let c = config(Api::OpenAi, &[("base_url", base)]).unwrap();
            assert_eq!(
                c.url("models"),
                "http://127.0.0.1:11434/v1/models",
                "{base}"
            );
        }
        let c = config(Api::OpenAi, &[("base_url", "https://openrouter.ai/api/v1")]).unwrap();
        assert_eq!(
            c.url("/chat/completions"),
            "https://openrouter.ai/api/v1/chat/completions"
        );
        assert_eq!(c.base_url, "https://openrouter.ai/api/v1");
    }

    #[test]
    fn bad_settings_are_named() {
        let e = config(Api::OpenAi, &[("base_url", "api.openai.com")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "provider setting `base_url` must be an http:// or https:// URL, got `api.openai.com`"
        );
        let e = config(Api::OpenAi, &[("max_tokens", "0")]).unwrap_err();
        assert!(e
            .to_string()
            .starts_with("provider setting `max_tokens` must be a whole number"));
        assert!(config(Api::OpenAi, &[("timeout_ms", "soon")]).is_err());
        assert_eq!(
            config(Api::OpenAi, &[("timeout_ms", "1500")])
                .unwrap()
                .timeout_secs(),
            2
        );
    }
}
