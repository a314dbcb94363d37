//! An incremental `text/event-stream` parser: bytes in as they arrive, whole events out.
//!
//! Follows the WHATWG event-stream rules: lines end in CRLF, LF or a lone CR; a line starting
//! with `:` is a comment; `field: value` drops one space after the colon; `data` lines of one
//! event are joined with `\n`; a blank line dispatches the event (events without data are
//! not dispatched). Chunks may split anywhere, including inside a CRLF pair or a UTF-8
//! sequence, because nothing is decoded until a line is complete.

#[cfg(test)]
mod tests;

/// The longest line (and the largest data of one event) accepted, so a server that never
/// sends a newline cannot grow the capsule's memory without bound.
pub const MAX_LINE: usize = 4 * 1024 * 1024;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` name, `message` when the event had none.
    pub event: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
    /// The last `id:` seen on the stream, if any.
    pub id: Option<String>,
}

/// Why a stream could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    /// A line or an event's data grew past [`MAX_LINE`].
    #[error("an event-stream line or event is longer than {limit} bytes")]
    TooLong {
        /// The limit that was hit.
        limit: usize,
    },
}

/// Parser state carried between chunks.
#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    /// The previous chunk ended in CR, so a LF starting the next one belongs to it.
    after_cr: bool,
    /// No line has been completed yet (a byte-order mark may lead the first one).
    started: bool,
    event: String,
    data: String,
    has_data: bool,
    last_id: Option<String>,
}

impl SseParser {
    /// A parser at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Consumes the next chunk and returns the events it completed, in order.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<SseEvent>, SseError> {
        let mut out = Vec::new();
        let mut rest = chunk;
        if self.after_cr && !rest.is_empty() {
            self.after_cr = false;
            if rest[0] == b'\n' {
                rest = &rest[1..];
            }
        }
        while let Some(pos) = rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            self.push_line_bytes(&rest[..pos])?;
            self.end_line(&mut out)?;
            let terminator = rest[pos];
            rest = &rest[pos + 1..];
            if terminator == b'\r' {
                match rest.first() {
                    Some(b'\n') => rest = &rest[1..],
                    None => self.after_cr = true,
                    Some(_) => {}
                }
            }
        }
        self.push_line_bytes(rest)?;
        Ok(out)
    }

    /// Ends the stream. A last line or event the server did not terminate is still
    /// delivered: servers that close right after their final `data:` line are common enough
    /// that dropping it would lose answers.
    pub fn finish(&mut self) -> Result<Option<SseEvent>, SseError> {
        let mut out = Vec::new();
        if !self.line.is_empty() {
            self.end_line(&mut out)?;
        }
        self.dispatch(&mut out);
        Ok(out.pop())
    }

    fn push_line_bytes(&mut self, bytes: &[u8]) -> Result<(), SseError> {
        if self.line.len() + bytes.len() > MAX_LINE {
            return Err(SseError::TooLong { limit: MAX_LINE });
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    fn end_line(&mut self, out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        let raw = std::mem::take(&mut self.line);
        let mut text = String::from_utf8_lossy(&raw);
        if !self.started {
            self.started = true;
            if let Some(stripped) = text.strip_prefix('\u{feff}') {
                text = stripped.to_owned().into();
            }
        }
        if text.is_empty() {
            self.dispatch(out);
            return Ok(());
        }
        if text.starts_with(':') {
            return Ok(());
        }
        let (field, value) = match text.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (text.as_ref(), ""),
        };
        match field {
            "event" => value.clone_into(&mut self.event),
            "data" => {
                if self.data.len() + value.len() + 1 > MAX_LINE {
                    return Err(SseError::TooLong { limit: MAX_LINE });
                }
                self.data.push_str(value);
                self.data.push('\n');
                self.has_data = true;
            }
            // An id containing NUL is ignored by the standard.
            "id" if !value.contains('\0') => self.last_id = Some(value.to_owned()),
            // `retry` and unknown fields matter only to reconnecting browsers.
            _ => {}
        }
        Ok(())
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        let event = std::mem::take(&mut self.event);
        if !self.has_data {
            return;
        }
        self.has_data = false;
        let mut data = std::mem::take(&mut self.data);
        data.pop();
        out.push(SseEvent {
            event: if event.is_empty() {
                "message".to_owned()
            } else {
                event
            },
            data,
            id: self.last_id.clone(),
        });
    }
}
