//! Asking the principal's human for input: a line of text, one of a few choices, or a
//! credential that goes straight to the secret store.
//!
//! Needs `[capabilities] elicit = true`. The question goes to the principal's frontends
//! that answer questions (`astrid chat` shows it as your capsule's own words, under its
//! name); the first answer wins. Nobody connected, no answer in time, or a refusal to
//! answer are errors to handle, never an answer. The question is in the principal's audit
//! chain; the answer is not. Prompts are 1 to 1024 bytes; a choice offers 2 to 10 options of
//! at most 80 bytes.
//!
//! ```no_run
//! use std::time::Duration;
//! use astrid_sdk::prelude::*;
//!
//! fn branch() -> Result<String, ElicitError> {
//!     // Capsule.toml: [capabilities] elicit = true
//!     let wait = Some(Duration::from_secs(120));
//!     match elicit::choose("Deploy which branch?", &["main", "release", "other…"], wait)? {
//!         0 => Ok("main".into()),
//!         1 => Ok("release".into()),
//!         _ => elicit::text("Which branch, then?", wait),
//!     }
//! }
//! ```

use std::time::Duration;

use crate::bindings::astrid::elicit::elicit as host;
use crate::error::ElicitError;

fn millis(wait: Option<Duration>) -> u32 {
    wait.map_or(0, |d| {
        u32::try_from(d.as_millis()).unwrap_or(u32::MAX).max(1)
    })
}

/// One line of free text. `wait` `None` waits as long as the host allows (5 minutes).
pub fn text(prompt: &str, wait: Option<Duration>) -> Result<String, ElicitError> {
    host::text(prompt, millis(wait)).map_err(Into::into)
}

/// Asks the person to type the credential the manifest declares as `[[secret]] name` (which
/// must name its `host`). The value goes to the principal's secret store, bound to
/// `https://<host>`, and never to the capsule: from the next invocation on, the host adds it
/// to this capsule's requests to that origin, as it does a secret stored with `astrid
/// secret set`. Asked only of frontends that take secrets (`astrid chat`).
pub fn secret(name: &str, prompt: &str, wait: Option<Duration>) -> Result<(), ElicitError> {
    host::secret(name, prompt, millis(wait)).map_err(Into::into)
}

/// One of `options`: the index of the one chosen.
pub fn choose(
    prompt: &str,
    options: &[&str],
    wait: Option<Duration>,
) -> Result<usize, ElicitError> {
    let options: Vec<String> = options.iter().map(|o| o.to_string()).collect();
    let i = host::choose(prompt, &options, millis(wait))?;
    Ok(i as usize)
}
