//! The Anthropic Messages dialect: bodies, named-event streams and errors as the service
//! sends them.

use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::Value;

use crate::ordered::{obj, J};
use crate::server::Dialect;
use crate::wire::{self, Ids, Turn};
use crate::{Api, FixtureConfig};

pub(crate) struct Anthropic;

fn headers(request_id: &str) -> Vec<(String, String)> {
    vec![
        ("request-id".into(), request_id.to_string()),
        ("anthropic-organization-id".into(), "fixture-org".into()),
    ]
}

fn request_id(ids: &Ids) -> String {
    format!("req_01{}", ids.token(22))
}

/// An error response; the body carries the same request id as the header, as the service's do.
fn respond_error(
    status: u16,
    kind: &str,
    message: &str,
    extra: &[(String, String)],
    ids: &Ids,
) -> Response {
    let rid = request_id(ids);
    let body = obj! {"type": "error", "error": obj! {"type": kind, "message": message},
    "request_id": &rid};
    wire::json(status, &body, &wire::merged(extra, headers(&rid)))
}

fn default_error(status: u16, model: &str) -> (&'static str, String) {
    match status {
        400 => ("invalid_request_error", "Invalid request.".into()),
        401 => ("authentication_error", "invalid x-api-key".into()),
        403 => (
            "permission_error",
            "Your API key does not have permission to use the specified resource.".into(),
        ),
        404 => ("not_found_error", format!("model: {model}")),
        413 => ("request_too_large", "Request exceeds the maximum allowed number of bytes.".into()),
        429 => (
            "rate_limit_error",
            "This request would exceed the rate limit for your organization of 50 requests per minute. For details, refer to: https://docs.claude.com/en/api/rate-limits.".into(),
        ),
        529 => ("overloaded_error", "Overloaded".into()),
        _ => ("api_error", "Internal server error".into()),
    }
}

impl Dialect for Anthropic {
    const API: Api = Api::Anthropic;

    fn check_headers(cfg: &FixtureConfig, headers: &HeaderMap, ids: &Ids) -> Option<Response> {
        check_key(cfg, headers, ids).or_else(|| {
            (!headers.contains_key("anthropic-version")).then(|| {
                respond_error(
                    400,
                    "invalid_request_error",
                    "anthropic-version: header is required",
                    &[],
                    ids,
                )
            })
        })
    }

    fn check_body(body: Option<&Value>, ids: &Ids) -> Result<String, Box<Response>> {
        let invalid = |message: &str| {
            Err(Box::new(respond_error(
                400,
                "invalid_request_error",
                message,
                &[],
                ids,
            )))
        };
        let Some(body) = body.filter(|b| b.is_object()) else {
            return invalid(
                "There was an error parsing the body of your request: it is not valid JSON.",
            );
        };
        let Some(model) = body.get("model").and_then(Value::as_str) else {
            return invalid("model: Field required");
        };
        if !body.get("max_tokens").is_some_and(Value::is_u64) {
            return invalid("max_tokens: Field required");
        }
        if !body.get("messages").is_some_and(Value::is_array) {
            return invalid("messages: Field required");
        }
        Ok(model.to_string())
    }

    fn tool_rounds(body: &Value) -> usize {
        // Tool results come back in `user` messages of `tool_result` blocks: the person last
        // spoke in the latest `user` message that holds none.
        crate::server::assistant_turns_since(body, |m| {
            m["role"] == "user"
                && !m["content"]
                    .as_array()
                    .is_some_and(|blocks| blocks.iter().any(|b| b["type"] == "tool_result"))
        })
    }

    fn stream_flags(body: &Value) -> (bool, bool) {
        (
            body.get("stream").and_then(Value::as_bool) == Some(true),
            false,
        )
    }

    fn unknown_model(model: &str, ids: &Ids) -> Response {
        respond_error(404, "not_found_error", &format!("model: {model}"), &[], ids)
    }

    fn error(
        status: u16,
        body: Value,
        extra: &[(String, String)],
        model: &str,
        ids: &Ids,
    ) -> Response {
        if body.is_null() {
            let (kind, message) = default_error(status, model);
            return respond_error(status, kind, &message, extra, ids);
        }
        wire::json(
            status,
            &body,
            &wire::merged(extra, headers(&request_id(ids))),
        )
    }

    fn malformed(raw: String, stream: bool, ids: &Ids) -> Response {
        let h = headers(&request_id(ids));
        if stream {
            return wire::event_stream(vec![raw], Default::default(), &h);
        }
        wire::raw(200, "application/json", raw, &h)
    }

    fn reply(turn: &Turn, ids: &Ids) -> Response {
        let id = format!("msg_01{}", ids.token(22));
        let tool_ids: Vec<String> = turn
            .calls
            .iter()
            .map(|_| format!("toolu_01{}", ids.token(22)))
            .collect();
        let h = headers(&request_id(ids));
        if turn.stream {
            wire::event_stream(stream_frames(turn, &id, &tool_ids), turn.delay, &h)
        } else {
            wire::json(200, &whole(turn, &id, &tool_ids), &h)
        }
    }
}

/// The key check the service makes: a missing and a wrong key get different messages.
pub(crate) fn check_key(cfg: &FixtureConfig, headers: &HeaderMap, ids: &Ids) -> Option<Response> {
    let want = cfg.api_key.as_deref()?;
    let message = match headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        Some(k) if k == want => return None,
        None | Some("") => "x-api-key header is required",
        Some(_) => "invalid x-api-key",
    };
    Some(respond_error(
        401,
        "authentication_error",
        message,
        &[],
        ids,
    ))
}

fn stop_reason(turn: &Turn) -> &'static str {
    if turn.calls.is_empty() {
        "end_turn"
    } else {
        "tool_use"
    }
}

/// The service always answers with at least one block: a text block when the model said
/// something or made no call.
fn has_text_block(turn: &Turn) -> bool {
    !turn.text.is_empty() || turn.calls.is_empty()
}

fn usage(turn: &Turn, output_tokens: u64) -> J {
    obj! {
        "input_tokens": turn.prompt_tokens,
        "cache_creation_input_tokens": 0u64,
        "cache_read_input_tokens": 0u64,
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }
}

fn whole(turn: &Turn, id: &str, tool_ids: &[String]) -> J {
    let mut content = Vec::new();
    if has_text_block(turn) {
        content.push(obj! {"type": "text", "text": &turn.text});
    }
    for (call, tool_id) in turn.calls.iter().zip(tool_ids) {
        content.push(obj! {"type": "tool_use", "id": tool_id, "name": &call.name,
        "input": &call.arguments});
    }
    obj! {
        "id": id,
        "type": "message",
        "role": "assistant",
        "model": &turn.model,
        "content": content,
        "stop_reason": stop_reason(turn),
        "stop_sequence": J::null(),
        "usage": usage(turn, turn.completion_tokens()),
    }
}

fn event(name: &str, data: &J) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

fn stream_frames(turn: &Turn, id: &str, tool_ids: &[String]) -> Vec<String> {
    let start = obj! {
        "type": "message_start",
        "message": obj! {
            "id": id, "type": "message", "role": "assistant", "model": &turn.model,
            "content": Vec::new(), "stop_reason": J::null(), "stop_sequence": J::null(),
            "usage": usage(turn, 1),
        },
    };
    let mut frames = vec![event("message_start", &start)];
    let mut index = 0usize;
    // The service sends one ping after the first block opens; clients must skip it.
    let mut ping = Some("event: ping\ndata: {\"type\": \"ping\"}\n\n".to_string());
    let mut open = |frames: &mut Vec<String>, index: usize, block: J| {
        frames.push(event(
            "content_block_start",
            &obj! {"type": "content_block_start", "index": index, "content_block": block},
        ));
        frames.extend(ping.take());
    };
    let delta = |index: usize, delta: J| {
        event(
            "content_block_delta",
            &obj! {"type": "content_block_delta", "index": index, "delta": delta},
        )
    };
    let stop = |index: usize| {
        event(
            "content_block_stop",
            &obj! {"type": "content_block_stop", "index": index},
        )
    };
    if has_text_block(turn) {
        open(&mut frames, index, obj! {"type": "text", "text": ""});
        for piece in wire::split_pieces(&turn.text, turn.pieces) {
            frames.push(delta(index, obj! {"type": "text_delta", "text": piece}));
        }
        frames.push(stop(index));
        index += 1;
    }
    for (call, tool_id) in turn.calls.iter().zip(tool_ids) {
        let block = obj! {"type": "tool_use", "id": tool_id, "name": &call.name,
        "input": obj! {}};
        open(&mut frames, index, block);
        // The service opens every tool input with an empty fragment.
        frames.push(delta(
            index,
            obj! {"type": "input_json_delta", "partial_json": ""},
        ));
        let args = call.arguments.to_string();
        for piece in wire::split_pieces(&args, turn.pieces) {
            frames.push(delta(
                index,
                obj! {"type": "input_json_delta", "partial_json": piece},
            ));
        }
        frames.push(stop(index));
        index += 1;
    }
    frames.push(event(
        "message_delta",
        &obj! {"type": "message_delta",
        "delta": obj! {"stop_reason": stop_reason(turn), "stop_sequence": J::null()},
        "usage": obj! {"output_tokens": turn.completion_tokens()}},
    ));
    frames.push(event("message_stop", &obj! {"type": "message_stop"}));
    frames
}

/// `GET /v1/models` in Anthropic's shape.
pub(crate) fn models(models: &[String], ids: &Ids) -> Response {
    let data: Vec<J> = models
        .iter()
        .map(|m| {
            obj! {"type": "model", "id": m, "display_name": display_name(m),
            "created_at": "2025-02-19T00:00:00Z"}
        })
        .collect();
    let body = obj! {
        "data": data,
        "has_more": false,
        "first_id": models.first().map(String::as_str),
        "last_id": models.last().map(String::as_str),
    };
    wire::json(200, &body, &headers(&request_id(ids)))
}

/// "claude-sonnet-4-5" → "Claude Sonnet 4.5", the way the service names its models.
fn display_name(id: &str) -> String {
    let mut words: Vec<String> = Vec::new();
    for part in id.split('-') {
        let numeric = part.chars().all(|c| c.is_ascii_digit());
        match words.last_mut() {
            Some(prev)
                if numeric
                    && part.len() < 3
                    && prev.chars().all(|c| c.is_ascii_digit() || c == '.') =>
            {
                prev.push('.');
                prev.push_str(part);
            }
            _ if numeric && part.len() >= 8 => {}
            _ => {
                let mut chars = part.chars();
                let word = chars
                    .next()
                    .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                    .unwrap_or_default();
                words.push(word);
            }
        }
    }
    words.join(" ")
}

/// What the service answers for a path it does not have.
pub(crate) fn unknown_route(ids: &Ids) -> Response {
    respond_error(404, "not_found_error", "Not Found", &[], ids)
}

#[cfg(test)]
mod tests {
    use super::display_name;

    #[test]
    fn display_names_read_like_the_services() {
        assert_eq!(display_name("claude-sonnet-4-5"), "Claude Sonnet 4.5");
        assert_eq!(
            display_name("claude-3-5-haiku-20241022"),
            "Claude 3.5 Haiku"
        );
    }
}
