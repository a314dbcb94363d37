use super::*;

const OPENAI_401: &str = r#"{
    "error": {
        "message": "Incorrect API key provided: sk-abc***xyz. You can find your API key at https://platform.openai.com/account/api-keys.",
        "type": "invalid_request_error",
        "param": null,
        "code": "invalid_api_key"
    }
}"#;
const OPENAI_404: &str = r#"{"error":{"message":"The model `gpt-9` does not exist or you do not have access to it.","type":"invalid_request_error","param":null,"code":"model_not_found"}}"#;
const ANTHROPIC_429: &str = r#"{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}}"#;
const ANTHROPIC_529: &str =
    r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;

#[test]
fn openai_error_body() {
    let b = ErrorBody::parse(OPENAI_401.as_bytes());
    assert_eq!(b.kind.as_deref(), Some("invalid_request_error"));
    assert!(b.message.starts_with("Incorrect API key provided"));
}

#[test]
fn anthropic_error_body() {
    let b = ErrorBody::parse(ANTHROPIC_529.as_bytes());
    assert_eq!(
        b,
        ErrorBody {
            kind: Some("overloaded_error".into()),
            message: "Overloaded".into()
        }
    );
}

#[test]
fn other_compatible_server_bodies() {
    assert_eq!(
        ErrorBody::parse(br#"{"error":"model 'x' not found"}"#).message,
        "model 'x' not found"
    );
    let vllm = br#"{"object":"error","message":"The model `x` does not exist.","type":"NotFoundError","param":null,"code":404}"#;
    assert_eq!(
        ErrorBody::parse(vllm).message,
        "The model `x` does not exist."
    );
    assert_eq!(
        ErrorBody::parse(br#"{"detail":"Not Found"}"#).message,
        "Not Found"
    );
    let ollama = br#"{"error":{"message":"model \"llama9\" not found, try pulling it first","type":"api_error","param":null,"code":null}}"#;
    assert_eq!(
        ErrorBody::parse(ollama).message,
        "model \"llama9\" not found, try pulling it first"
    );
    let code_only = br#"{"error":{"code":502,"message":"upstream failed"}}"#;
    assert_eq!(ErrorBody::parse(code_only).kind.as_deref(), Some("502"));
}

#[test]
fn html_and_text_bodies() {
    let html = b"<html><head><TITLE>502 Bad Gateway</TITLE></head><body>...</body></html>";
    assert_eq!(ErrorBody::parse(html).message, "502 Bad Gateway");
    assert_eq!(
        ErrorBody::parse(b"  upstream connect error \n").message,
        "upstream connect error"
    );
    assert_eq!(ErrorBody::parse(b"").message, "");
    let long = "x".repeat(1000);
    let quoted = ErrorBody::parse(long.as_bytes()).message;
    assert_eq!(quoted.chars().count(), QUOTE_LIMIT + 1);
    assert!(quoted.ends_with('…'));
}

#[test]
fn unauthorised_mentions_the_key_and_astrid_init() {
    let e = LlmError::from_status(401, OPENAI_401.as_bytes(), None, Some("gpt-4o-mini"));
    let text = e.to_string();
    assert!(
        text.starts_with("the provider rejected the API key (401): Incorrect API key provided"),
        "{text}"
    );
    assert!(text.contains("`astrid init`"), "{text}");
    let e = LlmError::from_status(
        403,
        br#"{"type":"error","error":{"type":"permission_error","message":"no access"}}"#,
        None,
        None,
    );
    assert_eq!(
        e.to_string(),
        "the provider rejected the API key (403): no access; check what the key may access, or store another with `astrid init`"
    );
}

#[test]
fn model_not_found_lists_what_is_available() {
    let mut e = LlmError::from_status(404, OPENAI_404.as_bytes(), None, Some("gpt-9"));
    assert_eq!(
        e.to_string(),
        "model `gpt-9` not found (404): The model `gpt-9` does not exist or you do not have access to it."
    );
    if let LlmError::ModelNotFound { available, .. } = &mut e {
        *available = Some(Ok(vec!["gpt-4o".into(), "gpt-4o-mini".into()]));
    }
    assert_eq!(
        e.to_string(),
        "model `gpt-9` not found (404); available: gpt-4o, gpt-4o-mini"
    );
    if let LlmError::ModelNotFound { available, .. } = &mut e {
        *available = Some(Err("provider error 500: boom".into()));
    }
    assert!(e
        .to_string()
        .ends_with("listing the available models failed too: provider error 500: boom"));
    if let LlmError::ModelNotFound { available, .. } = &mut e {
        *available = Some(Ok((0..50).map(|i| format!("m{i}")).collect()));
    }
    assert!(e.to_string().ends_with("m39 and 10 more"), "{e}");
    if let LlmError::ModelNotFound { available, .. } = &mut e {
        *available = Some(Ok(vec!["gpt-9".into()]));
    }
    assert!(e.to_string().contains("check base_url"), "{e}");
}

#[test]
fn not_found_outside_a_completion_is_a_plain_provider_error() {
    let e = LlmError::from_status(404, br#"{"detail":"Not Found"}"#, None, None);
    assert_eq!(e.to_string(), "provider error 404: Not Found");
}

#[test]
fn rate_limits_carry_the_retry_delay() {
    let e = LlmError::from_status(
        429,
        ANTHROPIC_429.as_bytes(),
        retry_after(Some("20"), None),
        None,
    );
    assert_eq!(
        e.to_string(),
        "rate limited (429); retry after 20 s: Number of request tokens has exceeded your per-minute rate limit"
    );
    let e = LlmError::from_status(429, b"", retry_after(None, Some("1500")), None);
    assert_eq!(e.to_string(), "rate limited (429); retry after 2 s");
    let e = LlmError::from_status(429, b"slow down", None, None);
    assert_eq!(e.to_string(), "rate limited (429): slow down");
}

#[test]
fn retry_after_forms() {
    assert_eq!(retry_after(Some("7"), Some("100")).as_deref(), Some("7 s"));
    assert_eq!(retry_after(Some("0.2"), None).as_deref(), Some("1 s"));
    assert_eq!(
        retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT"), None).as_deref(),
        Some("Wed, 21 Oct 2015 07:28:00 GMT")
    );
    assert_eq!(retry_after(Some(" "), None), None);
    assert_eq!(retry_after(None, Some("nope")), None);
    assert_eq!(retry_after(None, None), None);
}

#[test]
fn server_errors_show_status_and_message() {
    let e = LlmError::from_status(529, ANTHROPIC_529.as_bytes(), None, Some("m"));
    assert_eq!(e.to_string(), "provider error 529: Overloaded");
    let e = LlmError::from_status(503, b"", None, None);
    assert_eq!(e.to_string(), "provider error 503: (no details)");
}

#[test]
fn errors_reported_in_a_stream_are_classified_by_type() {
    let overloaded = ErrorBody {
        kind: Some("overloaded_error".into()),
        message: "Overloaded".into(),
    };
    assert_eq!(
        LlmError::from_reported(&overloaded, Some("m")).to_string(),
        "provider error 529: Overloaded"
    );
    let limited = ErrorBody {
        kind: Some("rate_limit_error".into()),
        message: "slow".into(),
    };
    assert_eq!(
        LlmError::from_reported(&limited, None).to_string(),
        "rate limited (429): slow"
    );
    let odd = ErrorBody {
        kind: Some("server_is_sad".into()),
        message: "hm".into(),
    };
    assert_eq!(
        LlmError::from_reported(&odd, None).to_string(),
        "the provider reported an error: hm"
    );
}

#[test]
fn transport_failures_name_the_url() {
    let e = LlmError::Timeout {
        url: "http://127.0.0.1:8080/v1/chat/completions".into(),
        seconds: 120,
    };
    assert_eq!(
        e.to_string(),
        "no answer from http://127.0.0.1:8080/v1/chat/completions within 120 s"
    );
    let e = LlmError::Denied {
        url: "https://api.openai.com/v1/models".into(),
        reason: "airlock: 10.0.0.1 is a private address".into(),
    };
    assert_eq!(
        e.to_string(),
        "the request to https://api.openai.com/v1/models was refused: airlock: 10.0.0.1 is a private address"
    );
}
