//! `astrid-emit`: JSON lines in, one JSON line out per input (plus matching events).

mod lines;
mod pipeline;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use astrid_client::Client;
use astrid_types::home::AstridHome;
use clap::Parser;
use tokio::sync::{mpsc, watch};

/// The version this binary reports: `ASTRID_RELEASE_VERSION` at build time (how a release,
/// or the test of `astrid update`, builds a second version from the same sources), else the
/// crate's.
const VERSION: &str = match option_env!("ASTRID_RELEASE_VERSION") {
    Some(v) => v,
    None => env!("CARGO_PKG_VERSION"),
};

#[derive(Debug, Parser)]
#[command(
    name = "astrid-emit",
    version = VERSION,
    about = "Send requests and events to the Astrid daemon, one JSON object per stdin line",
    long_about = "Each stdin line: {\"topic\": \"...\", \"payload\": <any JSON>, \
                  \"request\": true, \"timeout_ms\": 5000}. A string payload is sent as its \
                  text, anything else as compact JSON. One JSON line is printed per input, \
                  in input order."
)]
struct Args {
    /// Astrid home directory (default: $ASTRID_HOME, else ~/.astrid).
    #[arg(long, value_name = "DIR")]
    home: Option<PathBuf>,
    /// Principal to act as.
    #[arg(long, default_value = "default", value_name = "P")]
    principal: String,
    /// Also print events matching PATTERN while running (repeatable).
    #[arg(long, value_name = "PATTERN")]
    subscribe: Vec<String>,
    /// Fail instead of starting the daemon when it is not running.
    #[arg(long)]
    no_start: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {}", error_text(&e));
            ExitCode::FAILURE
        }
    }
}

/// The context chain on one line, skipping causes an outer message already includes.
fn error_text(e: &anyhow::Error) -> String {
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

/// `Ok(false)` when some input line failed.
async fn run(args: Args) -> anyhow::Result<bool> {
    let home = match args.home {
        Some(dir) => AstridHome::new(dir),
        None => AstridHome::from_env()
            .context("cannot locate the astrid home: set ASTRID_HOME or HOME, or pass --home")?,
    };
    if !args.no_start {
        astrid_client::ensure_daemon(&home, None).await?;
    }
    let client = Client::connect(&home, &args.principal, "astrid-emit").await?;

    let (out, out_rx) = mpsc::unbounded_channel();
    let printer = tokio::spawn(pipeline::print_lines(tokio::io::stdout(), out_rx));
    let (input_done, done_rx) = watch::channel(false);
    let mut watchers = Vec::new();
    for pattern in &args.subscribe {
        let sub = client
            .subscribe(pattern)
            .await
            .with_context(|| format!("subscribing to {pattern}"))?;
        watchers.push(tokio::spawn(pipeline::print_events(
            sub,
            out.clone(),
            done_rx.clone(),
        )));
    }

    let stdin = tokio::io::BufReader::new(tokio::io::stdin());
    let ok = pipeline::process(&client, stdin, out.clone()).await?;
    // Published events are only queued; make sure they reach the daemon before we exit.
    client.flush().await?;

    // Events already received are printed; the watchers then end on their own.
    let _ = input_done.send(true);
    for w in watchers {
        w.await?;
    }
    drop(out);
    printer.await?;
    Ok(ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("astrid-emit").chain(args.iter().copied()))
    }

    #[test]
    fn grammar_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn defaults() {
        let a = parse(&[]).unwrap();
        assert_eq!((a.home, a.principal.as_str()), (None, "default"));
        assert!(a.subscribe.is_empty());
        assert!(!a.no_start);
    }

    #[test]
    fn options_and_repeated_subscriptions() {
        let a = parse(&[
            "--home",
            "/h",
            "--principal",
            "bob",
            "--subscribe",
            "a.*",
            "--subscribe",
            "b.>",
            "--no-start",
        ])
        .unwrap();
        assert_eq!(a.home, Some(PathBuf::from("/h")));
        assert_eq!(a.principal, "bob");
        assert_eq!(a.subscribe, ["a.*", "b.>"]);
        assert!(a.no_start);
        assert!(parse(&["--subscribe"]).is_err(), "a pattern is required");
        assert!(parse(&["extra"]).is_err(), "no positional arguments");
    }
}
