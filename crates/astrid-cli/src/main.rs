//! `astrid`: the command line for the agent, the Astrid daemon and its capsules.

// First, so that `out!`/`outln!` are in scope in every module below.
#[macro_use]
mod out;
mod advice;
mod approval_view;
mod args;
mod commands;
mod exit;
mod origin;
mod output;
mod progress;
mod render;
#[cfg(test)]
mod test_support;
mod tui;

use std::process::ExitCode;
use std::sync::OnceLock;
use std::time::Instant;

use clap::Parser as _;

use crate::args::Cli;

/// The context chain on one line, skipping causes whose text an outer message already
/// includes (many error types print their source as part of their own message).
pub(crate) fn error_text(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let msg = cause.to_string();
        if text.contains(&msg) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&msg);
    }
    text
}

static STARTED: OnceLock<Instant> = OnceLock::new();

/// When the process started its work, for the chat's first-paint timing.
pub(crate) fn started() -> Instant {
    *STARTED.get_or_init(Instant::now)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    started();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // `--help` and `--version` are "errors" printed on stdout that exit 0.
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::SUCCESS
            };
            // Printing fails only if the terminal went away; nothing is left to tell.
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match commands::run(cli).await {
        Ok(code) => code,
        Err(e) => {
            // Daemon-side messages are never wrapped in context, so they come out verbatim.
            eprintln!("error: {}", error_text(&e));
            ExitCode::from(exit::FAILURE)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_text_joins_context_without_repeating_causes() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        #[derive(Debug)]
        struct Wraps(std::io::Error);
        impl std::fmt::Display for Wraps {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "/x: {}", self.0)
            }
        }
        impl std::error::Error for Wraps {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let e = anyhow::Error::new(Wraps(io)).context("installing");
        assert_eq!(error_text(&e), "installing: /x: no such file");
        let plain = anyhow::anyhow!("capsule `ghost` is not installed");
        assert_eq!(error_text(&plain), "capsule `ghost` is not installed");
    }
}
