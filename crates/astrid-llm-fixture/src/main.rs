//! `astrid-llm-fixture`: runs the fixture server until Ctrl-C, printing its base URL first
//! so a script can read it from the first line of output.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use astrid_llm_fixture::{load_script, Fixture, FixtureConfig, Playback};
use clap::Parser;

/// A local stand-in for the OpenAI and Anthropic chat APIs.
#[derive(Debug, Parser)]
#[command(name = "astrid-llm-fixture", version)]
struct Args {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// A JSON array of steps, e.g. `[{"reply": {"text": "hi"}}, "stall"]`.
    #[arg(long)]
    script: Option<PathBuf>,
    /// Play the script round and round instead of once.
    #[arg(long = "loop", conflicts_with = "per_turn")]
    looping: bool,
    /// Play the script per conversation: each request gets the step numbered by the tool
    /// rounds since the user's last message (so concurrent clients each start at step 0).
    #[arg(long)]
    per_turn: bool,
    /// Require this API key.
    #[arg(long)]
    api_key: Option<String>,
    /// A model to serve (repeatable); without any, the fixture's default list.
    #[arg(long = "model")]
    models: Vec<String>,
    /// Serve any model name.
    #[arg(long, conflicts_with = "models")]
    any_model: bool,
    /// Pieces streamed text and tool arguments are cut into.
    #[arg(long, default_value_t = 3)]
    pieces: usize,
    /// Milliseconds between streamed pieces.
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let script = match &args.script {
        Some(path) => load_script(path)?,
        None => Vec::new(),
    };
    let mut config = FixtureConfig {
        api_key: args.api_key,
        chunk_pieces: args.pieces,
        piece_delay: Duration::from_millis(args.delay_ms),
        ..FixtureConfig::default()
    };
    if args.any_model {
        config.models.clear();
    } else if !args.models.is_empty() {
        config.models = args.models;
    }
    let playback = if args.per_turn {
        Playback::PerTurn
    } else if args.looping {
        Playback::Loop
    } else {
        Playback::Once
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], args.port));
    let fixture = Fixture::bind(addr, config, script, playback)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let mut out = std::io::stdout();
    writeln!(out, "{}", fixture.base_url())?;
    out.flush()?;
    tokio::signal::ctrl_c()
        .await
        .context("cannot wait for Ctrl-C")?;
    fixture.shutdown().await;
    Ok(())
}
