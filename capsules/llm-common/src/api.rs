//! The two wire APIs behind one switch, so the capsule driver is written once.

use serde_json::Value;

use crate::error::LlmError;
use crate::sse::SseEvent;
use crate::types::{CompleteReply, CompleteRequest, ModelInfo};
use crate::{anthropic, openai};

/// Which wire API a provider capsule speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// OpenAI chat completions, and the many servers compatible with it.
    OpenAi,
    /// Anthropic Messages.
    Anthropic,
}

/// The per-call choices a request body depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params<'a> {
    /// The model to ask.
    pub model: &'a str,
    /// Output limit.
    pub max_tokens: u32,
    /// Ask for a server-sent event stream.
    pub stream: bool,
    /// OpenAI only: send the limit as `max_completion_tokens`, which newer OpenAI models
    /// demand while older compatible servers know only `max_tokens`.
    pub max_completion_tokens: bool,
}

impl Api {
    /// The provider name in topics and replies.
    pub fn name(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::Anthropic => "anthropic",
        }
    }

    /// Used when `base_url` is not set.
    pub fn default_base_url(self) -> &'static str {
        match self {
            Self::OpenAi => "https://api.openai.com",
            Self::Anthropic => "https://api.anthropic.com",
        }
    }

    /// Used when `model` is not set.
    pub fn default_model(self) -> &'static str {
        match self {
            Self::OpenAi => "gpt-4o-mini",
            Self::Anthropic => "claude-3-5-haiku-latest",
        }
    }

    /// The completion endpoint under `/v1/`.
    pub fn complete_path(self) -> &'static str {
        match self {
            Self::OpenAi => "chat/completions",
            Self::Anthropic => "messages",
        }
    }

    /// The model list endpoint under `/v1/`; Anthropic pages at 20 unless asked for more.
    pub fn models_path(self) -> &'static str {
        match self {
            Self::OpenAi => "models",
            Self::Anthropic => "models?limit=1000",
        }
    }

    /// Headers every request carries besides the body's content type. The key is not among
    /// them: the host adds it from the manifest's `[[secret]]`.
    pub fn headers(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Self::OpenAi => &[],
            Self::Anthropic => &[("anthropic-version", "2023-06-01")],
        }
    }

    /// The completion request body.
    pub fn build_request(self, req: &CompleteRequest, params: &Params<'_>) -> Value {
        match self {
            Self::OpenAi => openai::build_request(req, params),
            Self::Anthropic => anthropic::build_request(req, params),
        }
    }

    /// Reads a whole (non-streamed) completion; `model` is reported when the body names none.
    pub fn parse_response(self, body: &[u8], model: &str) -> Result<CompleteReply, LlmError> {
        match self {
            Self::OpenAi => openai::parse_response(body, model),
            Self::Anthropic => anthropic::parse_response(body, model),
        }
    }

    /// A decoder for one streamed completion.
    pub fn decoder(self, model: &str) -> Decoder {
        match self {
            Self::OpenAi => Decoder::OpenAi(openai::StreamDecoder::new(model)),
            Self::Anthropic => Decoder::Anthropic(anthropic::StreamDecoder::new(model)),
        }
    }
}

/// Reassembles one streamed completion from its server-sent events.
#[derive(Debug)]
pub enum Decoder {
    /// For [`Api::OpenAi`].
    OpenAi(openai::StreamDecoder),
    /// For [`Api::Anthropic`].
    Anthropic(anthropic::StreamDecoder),
}

impl Decoder {
    /// Takes one event; returns the text deltas it carried, to publish in order.
    pub fn on_event(&mut self, event: &SseEvent) -> Result<Vec<String>, LlmError> {
        match self {
            Self::OpenAi(d) => d.on_event(event),
            Self::Anthropic(d) => d.on_event(event),
        }
    }

    /// The provider signalled the end (`[DONE]`, `message_stop`); stop reading.
    pub fn is_done(&self) -> bool {
        match self {
            Self::OpenAi(d) => d.is_done(),
            Self::Anthropic(d) => d.is_done(),
        }
    }

    /// The assembled reply. With `cancelled` it is what arrived so far, without tool calls;
    /// otherwise a stream that ended before the provider's end marker is an error.
    pub fn finish(self, cancelled: bool) -> Result<CompleteReply, LlmError> {
        match self {
            Self::OpenAi(d) => d.finish(cancelled),
            Self::Anthropic(d) => d.finish(cancelled),
        }
    }
}

/// Reads `GET /v1/models` (`{"data": [{"id": …}, …]}` for both APIs and the compatible
/// servers).
pub fn parse_models(body: &[u8]) -> Result<Vec<ModelInfo>, LlmError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| LlmError::Malformed(format!("the model list is not JSON ({e})")))?;
    let data = v
        .get("data")
        .or_else(|| v.get("models"))
        .and_then(Value::as_array)
        .ok_or_else(|| LlmError::Malformed("the model list has no `data` array".into()))?;
    data.iter()
        .map(|m| {
            m.get("id")
                .or_else(|| m.get("name"))
                .and_then(Value::as_str)
                .map(|id| ModelInfo { id: id.to_owned() })
                .ok_or_else(|| LlmError::Malformed(format!("a model list entry has no `id`: {m}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_lists_of_both_apis() {
        let openai = br#"{"object":"list","data":[{"id":"gpt-4o-mini","object":"model","created":1721172741,"owned_by":"system"},{"id":"gpt-4o","object":"model","created":1715367049,"owned_by":"system"}]}"#;
        let ids: Vec<String> = parse_models(openai)
            .unwrap()
            .into_iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(ids, ["gpt-4o-mini", "gpt-4o"]);
        let anthropic = br#"{"data":[{"type":"model","id":"claude-3-5-haiku-20241022","display_name":"Claude Haiku 3.5","created_at":"2024-10-22T00:00:00Z"}],"has_more":false,"first_id":"claude-3-5-haiku-20241022","last_id":"claude-3-5-haiku-20241022"}"#;
        assert_eq!(
            parse_models(anthropic).unwrap()[0].id,
            "claude-3-5-haiku-20241022"
        );
    }

    #[test]
    fn malformed_model_lists_say_what_is_wrong() {
        assert_eq!(
            parse_models(b"<html>")
                .unwrap_err()
                .to_string()
                .split(" (")
                .next()
                .unwrap(),
            "malformed response from the provider: the model list is not JSON"
        );
        assert_eq!(
            parse_models(br#"{"object":"list"}"#)
                .unwrap_err()
                .to_string(),
            "malformed response from the provider: the model list has no `data` array"
        );
        assert!(parse_models(br#"{"data":[{"object":"model"}]}"#)
            .unwrap_err()
            .to_string()
            .contains("has no `id`"));
    }
}
