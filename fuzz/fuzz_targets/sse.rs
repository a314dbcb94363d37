//! The event-stream parser the provider capsules run on what an LLM server sends
//! (`llm_common::sse::SseParser`). The input is cut points, then the stream. Holds: no panic;
//! the events do not depend on how the stream was cut into chunks; no event name or data
//! holds a line break the stream used as one (CR), and names hold no LF either.
#![no_main]

use astrid_fuzz::split2;
use libfuzzer_sys::fuzz_target;
use llm_common::sse::{SseError, SseEvent, SseParser};

fn parse(chunks: &[&[u8]]) -> Result<Vec<SseEvent>, SseError> {
    let mut parser = SseParser::new();
    let mut out = Vec::new();
    for chunk in chunks {
        out.extend(parser.feed(chunk)?);
    }
    out.extend(parser.finish()?);
    Ok(out)
}

fuzz_target!(|data: &[u8]| {
    let (cuts, stream) = split2(data);
    let whole = parse(&[stream]);
    let mut chunks = Vec::new();
    let mut at = 0;
    for &cut in cuts {
        let n = usize::from(cut) % (stream.len() - at + 1);
        chunks.push(&stream[at..at + n]);
        at += n;
    }
    chunks.push(&stream[at..]);
    assert_eq!(parse(&chunks), whole, "the events depend on the chunking");
    for event in whole.iter().flatten() {
        assert!(!event.data.contains('\r'), "{event:?}");
        assert!(!event.event.contains(['\r', '\n']), "{event:?}");
    }
});
