//! The OpenAI chat-completions dialect: bodies, event streams and errors as the service
//! sends them.

use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::Value;

use crate::ordered::{obj, J};
use crate::server::Dialect;
use crate::wire::{self, Ids, Turn};
use crate::{Api, FixtureConfig};

pub(crate) struct OpenAi;

fn headers(ids: &Ids) -> Vec<(String, String)> {
    vec![
        ("x-request-id".into(), format!("req_{}", ids.token(32))),
        ("openai-version".into(), "2020-10-01".into()),
        ("openai-processing-ms".into(), "1".into()),
    ]
}

fn error_body(message: &str, kind: &str, param: Option<&str>, code: Option<&str>) -> J {
    obj! {"error": obj! {"message": message, "type": kind, "param": param, "code": code}}
}

fn respond_error(
    status: u16,
    body: &impl serde::Serialize,
    extra: &[(String, String)],
    ids: &Ids,
) -> Response {
    wire::json(status, body, &wire::merged(extra, headers(ids)))
}

/// Shows a key the way the service does in its 401 message: the ends only.
fn mask(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 8 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 7))
}

fn default_error(status: u16, model: &str) -> J {
    match status {
        400 => error_body("Invalid request.", "invalid_request_error", None, None),
        401 => error_body(
            "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            None,
            Some("invalid_api_key"),
        ),
        403 => error_body(
            "You are not allowed to sample from this model",
            "invalid_request_error",
            None,
            None,
        ),
        404 => model_not_found(model),
        429 => error_body(
            &format!(
                "Rate limit reached for {model} in organization org-fixture on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s. Visit https://platform.openai.com/account/rate-limits to learn more."
            ),
            "requests",
            Some("requests"),
            Some("rate_limit_exceeded"),
        ),
        503 => error_body(
            "The engine is currently overloaded, please try again later.",
            "server_error",
            None,
            None,
        ),
        _ => error_body(
            "The server had an error while processing your request. Sorry about that!",
            "server_error",
            None,
            None,
        ),
    }
}

fn model_not_found(model: &str) -> J {
    error_body(
        &format!("The model `{model}` does not exist or you do not have access to it."),
        "invalid_request_error",
        None,
        Some("model_not_found"),
    )
}

impl Dialect for OpenAi {
    const API: Api = Api::OpenAi;

    fn check_headers(cfg: &FixtureConfig, headers: &HeaderMap, ids: &Ids) -> Option<Response> {
        check_key(cfg, headers, ids)
    }

    fn check_body(body: Option<&Value>, ids: &Ids) -> Result<String, Box<Response>> {
        let Some(body) = body.filter(|b| b.is_object()) else {
            let msg = "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you have trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)";
            let body = error_body(msg, "invalid_request_error", None, None);
            return Err(Box::new(respond_error(400, &body, &[], ids)));
        };
        let Some(model) = body.get("model").and_then(Value::as_str) else {
            let body = error_body(
                "you must provide a model parameter",
                "invalid_request_error",
                None,
                None,
            );
            return Err(Box::new(respond_error(400, &body, &[], ids)));
        };
        if !body.get("messages").is_some_and(Value::is_array) {
            let body = error_body(
                "Missing required parameter: 'messages'.",
                "invalid_request_error",
                Some("messages"),
                Some("missing_required_parameter"),
            );
            return Err(Box::new(respond_error(400, &body, &[], ids)));
        }
        Ok(model.to_string())
    }

    fn tool_rounds(body: &Value) -> usize {
        crate::server::assistant_turns_since(body, |m| m["role"] == "user")
    }

    fn stream_flags(body: &Value) -> (bool, bool) {
        let stream = body.get("stream").and_then(Value::as_bool) == Some(true);
        let usage = body
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            == Some(true);
        (stream, stream && usage)
    }

    fn unknown_model(model: &str, ids: &Ids) -> Response {
        respond_error(404, &model_not_found(model), &[], ids)
    }

    fn error(
        status: u16,
        body: Value,
        extra: &[(String, String)],
        model: &str,
        ids: &Ids,
    ) -> Response {
        if body.is_null() {
            return respond_error(status, &default_error(status, model), extra, ids);
        }
        respond_error(status, &body, extra, ids)
    }

    fn malformed(raw: String, stream: bool, ids: &Ids) -> Response {
        if stream {
            return wire::event_stream(vec![raw], Default::default(), &headers(ids));
        }
        wire::raw(200, "application/json", raw, &headers(ids))
    }

    fn reply(turn: &Turn, ids: &Ids) -> Response {
        let id = format!("chatcmpl-{}", ids.token(29));
        let calls: Vec<(String, String)> = turn
            .calls
            .iter()
            .map(|c| (format!("call_{}", ids.token(24)), c.arguments.to_string()))
            .collect();
        let fingerprint = format!("fp_{}", ids.token(10).to_lowercase());
        if turn.stream {
            stream(turn, &id, &fingerprint, &calls, ids)
        } else {
            whole(turn, &id, &fingerprint, &calls, ids)
        }
    }
}

/// The key check the service makes: a missing and a wrong key get different messages.
pub(crate) fn check_key(cfg: &FixtureConfig, headers: &HeaderMap, ids: &Ids) -> Option<Response> {
    let want = cfg.api_key.as_deref()?;
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let body = match given {
        Some(k) if k == want => return None,
        None | Some("") => error_body(
            "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're accessing the API from your browser and are prompted for a username and password. You can obtain an API key from https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            None,
            None,
        ),
        Some(k) => error_body(
            &format!(
                "Incorrect API key provided: {}. You can find your API key at https://platform.openai.com/account/api-keys.",
                mask(k)
            ),
            "invalid_request_error",
            None,
            Some("invalid_api_key"),
        ),
    };
    Some(respond_error(401, &body, &[], ids))
}

fn usage(turn: &Turn) -> J {
    let completion = turn.completion_tokens();
    obj! {
        "prompt_tokens": turn.prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": turn.prompt_tokens + completion,
        "prompt_tokens_details": obj! {"cached_tokens": 0u64, "audio_tokens": 0u64},
        "completion_tokens_details": obj! {
            "reasoning_tokens": 0u64, "audio_tokens": 0u64,
            "accepted_prediction_tokens": 0u64, "rejected_prediction_tokens": 0u64,
        },
    }
}

fn finish_reason(turn: &Turn) -> &'static str {
    if turn.calls.is_empty() {
        "stop"
    } else {
        "tool_calls"
    }
}

fn whole(turn: &Turn, id: &str, fp: &str, calls: &[(String, String)], ids: &Ids) -> Response {
    let content = if turn.text.is_empty() && !turn.calls.is_empty() {
        J::null()
    } else {
        J::from(&turn.text)
    };
    let mut message = vec![("role", J::from("assistant")), ("content", content)];
    if !turn.calls.is_empty() {
        let tool_calls: Vec<J> = turn
            .calls
            .iter()
            .zip(calls)
            .map(|(c, (call_id, args))| {
                obj! {"id": call_id, "type": "function",
                "function": obj! {"name": &c.name, "arguments": args}}
            })
            .collect();
        message.push(("tool_calls", J::A(tool_calls)));
    }
    message.push(("refusal", J::null()));
    message.push(("annotations", J::A(Vec::new())));
    let body = obj! {
        "id": id,
        "object": "chat.completion",
        "created": wire::unix_now(),
        "model": &turn.model,
        "choices": vec![obj! {
            "index": 0usize,
            "message": J::O(message),
            "logprobs": J::null(),
            "finish_reason": finish_reason(turn),
        }],
        "usage": usage(turn),
        "service_tier": "default",
        "system_fingerprint": fp,
    };
    wire::json(200, &body, &headers(ids))
}

fn stream(turn: &Turn, id: &str, fp: &str, calls: &[(String, String)], ids: &Ids) -> Response {
    let created = wire::unix_now();
    // Every chunk repeats the completion's identity; only choices and usage vary.
    let chunk = |choices: Vec<J>, usage: Option<J>| -> String {
        let mut fields = vec![
            ("id", J::from(id)),
            ("object", J::from("chat.completion.chunk")),
            ("created", J::from(created)),
            ("model", J::from(&turn.model)),
            ("service_tier", J::from("default")),
            ("system_fingerprint", J::from(fp)),
            ("choices", J::A(choices)),
        ];
        if turn.include_usage {
            fields.push(("usage", usage.unwrap_or_else(J::null)));
        }
        format!("data: {}\n\n", J::O(fields))
    };
    let delta = |delta: J, finish: J| {
        chunk(
            vec![
                obj! {"index": 0usize, "delta": delta, "logprobs": J::null(),
                "finish_reason": finish},
            ],
            None,
        )
    };
    let mut frames = vec![delta(
        obj! {"role": "assistant", "content": "", "refusal": J::null()},
        J::null(),
    )];
    for piece in wire::split_pieces(&turn.text, turn.pieces) {
        frames.push(delta(obj! {"content": piece}, J::null()));
    }
    for (index, (call, (call_id, args))) in turn.calls.iter().zip(calls).enumerate() {
        let open = obj! {"index": index, "id": call_id, "type": "function",
        "function": obj! {"name": &call.name, "arguments": ""}};
        frames.push(delta(obj! {"tool_calls": vec![open]}, J::null()));
        for piece in wire::split_pieces(args, turn.pieces) {
            let more = obj! {"index": index, "function": obj! {"arguments": piece}};
            frames.push(delta(obj! {"tool_calls": vec![more]}, J::null()));
        }
    }
    frames.push(delta(obj! {}, J::from(finish_reason(turn))));
    if turn.include_usage {
        frames.push(chunk(Vec::new(), Some(usage(turn))));
    }
    frames.push("data: [DONE]\n\n".to_string());
    wire::event_stream(frames, turn.delay, &headers(ids))
}

/// `GET /v1/models` in OpenAI's shape.
pub(crate) fn models(models: &[String], ids: &Ids) -> Response {
    let data: Vec<J> = models
        .iter()
        .map(|m| {
            let owner = if m.starts_with("claude") {
                "anthropic"
            } else {
                "openai"
            };
            obj! {"id": m, "object": "model", "created": 1_715_367_049u64, "owned_by": owner}
        })
        .collect();
    wire::json(200, &obj! {"object": "list", "data": data}, &headers(ids))
}

/// What the service answers for a path it does not have.
pub(crate) fn unknown_route(method: &str, path: &str, ids: &Ids) -> Response {
    let body = error_body(
        &format!("Invalid URL ({method} {path})"),
        "invalid_request_error",
        None,
        None,
    );
    respond_error(404, &body, &[], ids)
}

#[cfg(test)]
mod tests {
    use super::mask;

    #[test]
    fn masks_show_only_the_ends() {
        assert_eq!(mask("sk-abcdefghijkl"), "sk-********ijkl");
        assert_eq!(mask("short"), "*****");
    }
}
