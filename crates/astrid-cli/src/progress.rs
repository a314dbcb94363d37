//! Progress on work that can take more than a second (building a capsule, installing a
//! distro, starting the daemon, asking a provider for its models).
//!
//! Drawn on stderr, so stdout stays the command's result; indicatif hides a bar whose target
//! is not a terminal, so scripts and pipes see nothing of it.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// How often a spinner moves, and so how soon one appears.
const TICK: Duration = Duration::from_millis(100);
const SPINNER: &str = "{spinner} {msg} ({elapsed})";

/// A spinner with a message and the time spent so far; `finish_and_clear` it when done.
pub fn spinner(message: impl Into<String>) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    // The template is a constant; a typo in it is caught by the unit test below.
    if let Ok(style) = ProgressStyle::with_template(SPINNER) {
        bar.set_style(style);
    }
    bar.set_message(message.into());
    bar.enable_steady_tick(TICK);
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_templates_parse() {
        assert!(ProgressStyle::with_template(SPINNER).is_ok());
    }
}
