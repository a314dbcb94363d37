//! `elicit-probe`: the payload is `<wait ms> <prompt>` (`text`) or
//! `<wait ms> <prompt>|<option>|<option>…` (`choose`); a wait of 0 is the host's longest.
//! Replies `ok: <answer>` (the text, or the chosen index) or `error: <error-code>: <message>`.
//! The tool `elicit_choose` asks the same through a tool call (for MCP hosts).
#![forbid(unsafe_code)]

use std::time::Duration;

use astrid_sdk::prelude::*;

#[derive(Default)]
struct ElicitProbe;

#[derive(Deserialize)]
struct ChooseArgs {
    prompt: String,
    options: Vec<String>,
}

fn parse(event: &Event) -> (Option<Duration>, String) {
    let payload = String::from_utf8_lossy(&event.payload).into_owned();
    let (ms, rest) = payload.split_once(' ').unwrap_or(("0", &payload));
    let wait = ms
        .parse::<u64>()
        .ok()
        .filter(|&ms| ms > 0)
        .map(Duration::from_millis);
    (wait, rest.to_string())
}

fn reply(answer: Result<String, ElicitError>) -> Result<Option<Vec<u8>>, CapsuleError> {
    let text = match answer {
        Ok(a) => format!("ok: {a}"),
        Err(e) => format!("error: {e}"),
    };
    Ok(Some(text.into_bytes()))
}

#[capsule]
impl ElicitProbe {
    #[astrid::handler]
    fn text(&self, event: &Event) -> Result<Option<Vec<u8>>, CapsuleError> {
        let (wait, prompt) = parse(event);
        reply(elicit::text(&prompt, wait))
    }

    #[astrid::handler]
    fn choose(&self, event: &Event) -> Result<Option<Vec<u8>>, CapsuleError> {
        let (wait, question) = parse(event);
        let mut parts = question.split('|');
        let prompt = parts.next().unwrap_or_default().to_string();
        let options: Vec<&str> = parts.collect();
        reply(elicit::choose(&prompt, &options, wait).map(|i| i.to_string()))
    }

    /// `<wait ms> <secret name> <prompt>`: asks for the secret; `ok: stored` when it is.
    #[astrid::handler]
    fn secret(&self, event: &Event) -> Result<Option<Vec<u8>>, CapsuleError> {
        let (wait, rest) = parse(event);
        let (name, prompt) = rest.split_once(' ').unwrap_or((&rest, ""));
        reply(elicit::secret(name, prompt, wait).map(|()| "stored".to_string()))
    }

    /// The same question as a tool, so an MCP host's user can be the one asked.
    #[astrid::tool]
    fn elicit_choose(&self, args: ChooseArgs) -> Result<String, CapsuleError> {
        let options: Vec<&str> = args.options.iter().map(String::as_str).collect();
        let answer = elicit::choose(&args.prompt, &options, None).map(|i| i.to_string());
        Ok(match answer {
            Ok(i) => format!("ok: {i}"),
            Err(e) => format!("error: {e}"),
        })
    }
}
