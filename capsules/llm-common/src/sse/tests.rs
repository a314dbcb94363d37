use super::*;

pub(crate) const OPENAI_TEXT: &str = include_str!("../../fixtures/openai_text.sse");
pub(crate) const OPENAI_TOOLS: &str = include_str!("../../fixtures/openai_tools.sse");
pub(crate) const ANTHROPIC_TOOLS: &str = include_str!("../../fixtures/anthropic_tools.sse");

fn parse_all(chunks: &[&[u8]]) -> Vec<SseEvent> {
    let mut p = SseParser::new();
    let mut out = Vec::new();
    for c in chunks {
        out.extend(p.feed(c).unwrap());
    }
    out.extend(p.finish().unwrap());
    out
}

fn whole(text: &str) -> Vec<SseEvent> {
    parse_all(&[text.as_bytes()])
}

fn ev(event: &str, data: &str) -> SseEvent {
    SseEvent {
        event: event.into(),
        data: data.into(),
        id: None,
    }
}

#[test]
fn fixtures_parse_into_their_events() {
    let openai = whole(OPENAI_TEXT);
    assert_eq!(openai.len(), 8);
    assert!(openai.iter().all(|e| e.event == "message"));
    assert_eq!(openai.last().unwrap().data, "[DONE]");
    assert!(openai[1].data.contains("Grüße"));

    let anthropic = whole(ANTHROPIC_TOOLS);
    let names: Vec<&str> = anthropic.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(anthropic[2].data, r#"{"type": "ping"}"#);
}

/// Every place a network read could split the stream, including inside multi-byte UTF-8
/// characters and between `\r` and `\n`, must give the same events.
fn assert_split_invariant(text: &str) {
    let bytes = text.as_bytes();
    let expected = whole(text);
    for cut in 0..=bytes.len() {
        let got = parse_all(&[&bytes[..cut], &bytes[cut..]]);
        assert_eq!(got, expected, "split at byte {cut}");
    }
    let singles: Vec<&[u8]> = bytes.chunks(1).collect();
    assert_eq!(parse_all(&singles), expected, "one byte at a time");
    let threes: Vec<&[u8]> = bytes.chunks(3).collect();
    assert_eq!(parse_all(&threes), expected, "three bytes at a time");
}

#[test]
fn every_split_point_of_the_openai_streams() {
    assert_split_invariant(OPENAI_TEXT);
    assert_split_invariant(OPENAI_TOOLS);
}

#[test]
fn every_split_point_of_the_anthropic_stream() {
    assert_split_invariant(ANTHROPIC_TOOLS);
}

#[test]
fn crlf_and_lone_cr_line_endings_match_lf() {
    for fixture in [OPENAI_TOOLS, ANTHROPIC_TOOLS] {
        let lf = whole(fixture);
        let crlf = fixture.replace('\n', "\r\n");
        let cr = fixture.replace('\n', "\r");
        assert_eq!(whole(&crlf), lf);
        assert_eq!(whole(&cr), lf);
        assert_split_invariant(&crlf);
    }
}

#[test]
fn a_cr_ending_one_chunk_and_lf_starting_the_next_is_one_line_end() {
    // Were the LF taken as a second (blank) line it would dispatch `a` early and lose `b`'s
    // join.
    let got = parse_all(&[b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"]);
    assert_eq!(got, vec![ev("message", "a\nb")]);
}

#[test]
fn comments_are_skipped() {
    let got = whole(": keep-alive\n\n: OPENROUTER PROCESSING\ndata: x\n:\n\n");
    assert_eq!(got, vec![ev("message", "x")]);
}

#[test]
fn multi_line_data_is_joined_with_newlines() {
    let got = whole("event: note\ndata: one\ndata:two\ndata\ndata:  three\n\n");
    assert_eq!(got, vec![ev("note", "one\ntwo\n\n three")]);
}

#[test]
fn event_name_resets_after_each_dispatch_and_events_without_data_are_dropped() {
    let got = whole("event: first\ndata: 1\n\ndata: 2\n\nevent: lonely\n\ndata: 3\n\n");
    assert_eq!(
        got,
        vec![ev("first", "1"), ev("message", "2"), ev("message", "3")]
    );
}

#[test]
fn empty_data_line_dispatches_an_empty_event() {
    assert_eq!(whole("data:\n\n"), vec![ev("message", "")]);
}

#[test]
fn ids_are_remembered_and_unknown_fields_ignored() {
    let got = whole("id: 7\nretry: 100\nfoo: bar\ndata: a\n\ndata: b\n\n");
    assert_eq!(got[0].id.as_deref(), Some("7"));
    assert_eq!(got[1].id.as_deref(), Some("7"));
    assert_eq!(got[1].data, "b");
}

#[test]
fn a_leading_byte_order_mark_is_dropped_even_when_split() {
    let got = parse_all(&[b"\xEF\xBB", b"\xBFdata: x\n\n"]);
    assert_eq!(got, vec![ev("message", "x")]);
}

#[test]
fn an_unterminated_last_event_is_delivered_at_finish() {
    let mut p = SseParser::new();
    assert!(p.feed(b"data: [DONE]").unwrap().is_empty());
    assert_eq!(p.finish().unwrap(), Some(ev("message", "[DONE]")));

    let mut p = SseParser::new();
    assert!(p.feed(b"data: [DONE]\n").unwrap().is_empty());
    assert_eq!(p.finish().unwrap(), Some(ev("message", "[DONE]")));
}

#[test]
fn invalid_utf8_is_replaced_not_fatal() {
    let got = parse_all(&[b"data: a\xFFb\n\n"]);
    assert_eq!(got, vec![ev("message", "a\u{FFFD}b")]);
}

#[test]
fn an_endless_line_is_refused() {
    let mut p = SseParser::new();
    let block = vec![b'x'; 1024 * 1024];
    let mut result = Ok(Vec::new());
    for _ in 0..5 {
        result = p.feed(&block);
        if result.is_err() {
            break;
        }
    }
    assert_eq!(result, Err(SseError::TooLong { limit: MAX_LINE }));
}
