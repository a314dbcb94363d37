//! What a provider capsule does per request: read its settings, talk HTTP through the host,
//! stream deltas onto the bus, watch for cancellation, and turn every failure into the
//! user-facing message. Built only with the `capsule` feature, since it calls the host.

use astrid_sdk::http::{Request, Response};
use astrid_sdk::ipc::SubscriptionId;
use astrid_sdk::{env, ipc, log, CapsuleError, Event, HttpError};
use serde_json::Value;

use crate::{
    openai, parse_models, retry_after, AgentEvent, Api, CompleteReply, CompleteRequest, LlmError,
    ModelInfo, ModelsReply, Params, ProviderConfig, SseParser, StopReason, Usage,
};

/// How much one `read-body` call asks for; events are small, so this only bounds memory.
const READ_CHUNK: u32 = 16 * 1024;

/// How much of an error body is kept; the message is in the first few hundred bytes.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// Handles `llm.v1.complete.<provider>`: the reply is a [`CompleteReply`] as JSON.
pub fn complete(api: Api, event: &Event) -> Result<Vec<u8>, CapsuleError> {
    let req: CompleteRequest = event
        .json()
        .map_err(|e| to_capsule(LlmError::InvalidRequest(e.to_string())))?;
    let cfg = config(api).map_err(to_capsule)?;
    let cancel = CancelWatch::start(req.cancel_topic.as_deref());
    let outcome = run_completion(api, &cfg, &req, &cancel);
    cancel.stop();
    Ok(serde_json::to_vec(&outcome.map_err(to_capsule)?)?)
}

/// Handles `llm.v1.models.<provider>`: the reply is a [`ModelsReply`] as JSON.
pub fn models(api: Api, _event: &Event) -> Result<Vec<u8>, CapsuleError> {
    let cfg = config(api).map_err(to_capsule)?;
    let models = list_models(api, &cfg).map_err(to_capsule)?;
    let reply = ModelsReply {
        provider: api.name().to_owned(),
        base_url: cfg.base_url.clone(),
        current: cfg.model.clone(),
        models,
    };
    Ok(serde_json::to_vec(&reply)?)
}

fn config(api: Api) -> Result<ProviderConfig, LlmError> {
    // An unreadable setting is treated as unset: the defaults are usable on their own.
    ProviderConfig::from_settings(api, |key| env::var_opt(key).ok().flatten())
}

fn to_capsule(e: LlmError) -> CapsuleError {
    match e {
        LlmError::InvalidRequest(_) => CapsuleError::invalid(e.to_string()),
        other => CapsuleError::failed(other.to_string()),
    }
}

fn run_completion(
    api: Api,
    cfg: &ProviderConfig,
    req: &CompleteRequest,
    cancel: &CancelWatch,
) -> Result<CompleteReply, LlmError> {
    let model = req
        .model
        .as_deref()
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .unwrap_or(&cfg.model);
    let stream_topic = req.stream_topic.as_deref().filter(|t| !t.is_empty());
    let mut params = Params {
        model,
        max_tokens: req.max_tokens.filter(|n| *n > 0).unwrap_or(cfg.max_tokens),
        stream: stream_topic.is_some(),
        max_completion_tokens: false,
    };
    if cancel.cancelled() {
        return Ok(cancelled(model));
    }
    let url = cfg.url(api.complete_path());
    let resp = loop {
        let body = api.build_request(req, &params);
        let resp = send(api, cfg, "POST", &url, Some(&body), params.stream)?;
        if resp.is_success() {
            break resp;
        }
        let (status, retry) = (resp.status, retry_header(&resp));
        let body = read_limited(resp, &url, cfg)?;
        if api == Api::OpenAi
            && !params.max_completion_tokens
            && openai::wants_max_completion_tokens(status, &body)
        {
            params.max_completion_tokens = true;
            continue;
        }
        return Err(status_error(api, cfg, status, &body, retry, Some(model)));
    };
    let Some(topic) = stream_topic else {
        let body = read_all(resp, &url, cfg)?;
        return api.parse_response(&body, model);
    };
    let mut deltas = DeltaSink::new(topic);
    let is_json = resp
        .header("content-type")
        .is_some_and(|t| t.trim_start().starts_with("application/json"));
    if is_json {
        // A compatible server that ignores `stream: true` answers in one piece.
        let body = read_all(resp, &url, cfg)?;
        let reply = api.parse_response(&body, model)?;
        deltas.send(&reply.content);
        return Ok(reply);
    }
    read_stream(api, resp, &url, cfg, model, &mut deltas, cancel)
}

fn read_stream(
    api: Api,
    mut resp: Response,
    url: &str,
    cfg: &ProviderConfig,
    model: &str,
    deltas: &mut DeltaSink,
    cancel: &CancelWatch,
) -> Result<CompleteReply, LlmError> {
    let mut parser = SseParser::new();
    let mut decoder = api.decoder(model);
    while !decoder.is_done() {
        if cancel.cancelled() {
            // Dropping the response closes it, which stops the provider generating.
            return decoder.finish(true);
        }
        let Some(chunk) = resp
            .read_chunk(READ_CHUNK)
            .map_err(|e| transport(e, url, cfg))?
        else {
            if let Some(event) = parser.finish()? {
                for text in decoder.on_event(&event)? {
                    deltas.send(&text);
                }
            }
            break;
        };
        for event in parser.feed(&chunk)? {
            for text in decoder.on_event(&event)? {
                deltas.send(&text);
            }
            if decoder.is_done() {
                break;
            }
        }
    }
    decoder.finish(false)
}

fn cancelled(model: &str) -> CompleteReply {
    CompleteReply {
        content: String::new(),
        tool_calls: Vec::new(),
        stop: StopReason::Cancelled,
        usage: Usage::default(),
        model: model.to_owned(),
    }
}

fn list_models(api: Api, cfg: &ProviderConfig) -> Result<Vec<ModelInfo>, LlmError> {
    let url = cfg.url(api.models_path());
    let resp = send(api, cfg, "GET", &url, None, false)?;
    if !resp.is_success() {
        let (status, retry) = (resp.status, retry_header(&resp));
        let body = read_limited(resp, &url, cfg)?;
        return Err(LlmError::from_status(status, &body, retry, None));
    }
    parse_models(&read_all(resp, &url, cfg)?)
}

/// Classifies a failed completion; a missing model is completed with what the provider
/// does serve, so the user can pick one.
fn status_error(
    api: Api,
    cfg: &ProviderConfig,
    status: u16,
    body: &[u8],
    retry: Option<String>,
    model: Option<&str>,
) -> LlmError {
    let mut err = LlmError::from_status(status, body, retry, model);
    if let LlmError::ModelNotFound { available, .. } = &mut err {
        *available = Some(
            list_models(api, cfg)
                .map(|list| list.into_iter().map(|m| m.id).collect())
                .map_err(|e| e.to_string()),
        );
    }
    err
}

fn send(
    api: Api,
    cfg: &ProviderConfig,
    method: &str,
    url: &str,
    body: Option<&Value>,
    streaming: bool,
) -> Result<Response, LlmError> {
    let accept = if streaming {
        "text/event-stream"
    } else {
        "application/json"
    };
    let mut request = Request::new(method, url)
        .timeout_ms(cfg.timeout_ms)
        .header("accept", accept);
    for (name, value) in api.headers() {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request
            .json(body)
            .map_err(|e| LlmError::InvalidRequest(e.to_string()))?;
    }
    request.send().map_err(|e| transport(e, url, cfg))
}

fn retry_header(resp: &Response) -> Option<String> {
    retry_after(resp.header("retry-after"), resp.header("retry-after-ms"))
}

fn read_all(resp: Response, url: &str, cfg: &ProviderConfig) -> Result<Vec<u8>, LlmError> {
    resp.body().map_err(|e| transport(e, url, cfg))
}

fn read_limited(mut resp: Response, url: &str, cfg: &ProviderConfig) -> Result<Vec<u8>, LlmError> {
    let mut out = Vec::new();
    while out.len() < ERROR_BODY_LIMIT {
        match resp
            .read_chunk(READ_CHUNK)
            .map_err(|e| transport(e, url, cfg))?
        {
            Some(chunk) => out.extend_from_slice(&chunk),
            None => break,
        }
    }
    Ok(out)
}

/// Keeps the host's reason: it says which Astrid layer refused (manifest, capability,
/// human, airlock) and is what the user needs to fix it.
fn transport(e: HttpError, url: &str, cfg: &ProviderConfig) -> LlmError {
    let url = url.to_owned();
    match e {
        HttpError::Denied(reason) => LlmError::Denied { url, reason },
        HttpError::InvalidArgument(reason) => LlmError::Denied {
            url,
            reason: format!("the host found the request invalid: {reason}"),
        },
        HttpError::Timeout(_) => LlmError::Timeout {
            url,
            seconds: cfg.timeout_secs(),
        },
        HttpError::TooLarge(reason) => LlmError::TooLarge { url, reason },
        // The driver pins no digest, so this does not arise; it is still a failed exchange.
        HttpError::Connection(reason) | HttpError::IntegrityMismatch(reason) => {
            LlmError::Connection { url, reason }
        }
        HttpError::UnknownHandle => LlmError::Connection {
            url,
            reason: "the host no longer knows the response (it was closed)".into(),
        },
    }
}

/// Publishes text deltas; a refused publish is logged once and then skipped, since the
/// reply carries the whole text anyway.
struct DeltaSink<'a> {
    topic: &'a str,
    broken: bool,
}

impl<'a> DeltaSink<'a> {
    fn new(topic: &'a str) -> Self {
        Self {
            topic,
            broken: false,
        }
    }

    fn send(&mut self, text: &str) {
        if self.broken || text.is_empty() {
            return;
        }
        let event = AgentEvent::Delta {
            text: text.to_owned(),
        };
        if let Err(e) = ipc::publish_json(self.topic, &event) {
            self.broken = true;
            log::warn(&format!("cannot publish deltas on {}: {e}", self.topic));
        }
    }
}

/// The subscription to a request's cancel topic, polled between stream chunks.
struct CancelWatch {
    topic: Option<String>,
    subscription: Option<SubscriptionId>,
    fired: std::cell::Cell<bool>,
}

impl CancelWatch {
    fn start(topic: Option<&str>) -> Self {
        let topic = topic.filter(|t| !t.is_empty()).map(str::to_owned);
        let subscription = topic.as_deref().and_then(|t| match ipc::subscribe(t) {
            Ok(id) => Some(id),
            Err(e) => {
                // The answer is still worth having; it just cannot be interrupted.
                log::warn(&format!("cannot watch {t} for cancellation: {e}"));
                None
            }
        });
        Self {
            topic,
            subscription,
            fired: std::cell::Cell::new(false),
        }
    }

    fn cancelled(&self) -> bool {
        if self.fired.get() {
            return true;
        }
        let (Some(topic), Some(_)) = (&self.topic, self.subscription) else {
            return false;
        };
        while let Ok(Some(message)) = ipc::receive(0) {
            if &message.topic == topic {
                self.fired.set(true);
                return true;
            }
        }
        false
    }

    fn stop(self) {
        if let Some(id) = self.subscription {
            let _ = ipc::unsubscribe(id);
        }
    }
}
