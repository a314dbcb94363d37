//! Subcommand implementations. Each returns the process exit code or an error for `main`
//! to print.

mod audit;
mod caps;
mod capsule;
mod daemon;

use std::process::ExitCode;

use anyhow::{anyhow, Context as _};
use astrid_client::Client;
use astrid_types::home::AstridHome;
use astrid_types::wire::ControlResponse;

use crate::args::{Cli, Command};

/// What every subcommand needs: where the daemon lives and who we act as.
pub struct Ctx {
    pub home: AstridHome,
    pub principal: String,
}

impl Ctx {
    /// Connects, starting the daemon first when `autostart` is set.
    pub async fn connect(&self, autostart: bool) -> anyhow::Result<Client> {
        if autostart {
            astrid_client::ensure_daemon(&self.home, None).await?;
        }
        Ok(Client::connect(&self.home, &self.principal, "astrid").await?)
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let home = match cli.home {
        Some(dir) => AstridHome::new(dir),
        None => AstridHome::from_env()
            .context("cannot locate the astrid home: set ASTRID_HOME or HOME, or pass --home")?,
    };
    let ctx = Ctx {
        home,
        principal: cli.principal,
    };
    match cli.command {
        Command::Start => daemon::start(&ctx).await,
        Command::Stop => daemon::stop(&ctx).await,
        Command::Status => daemon::status(&ctx).await,
        Command::Ps => daemon::ps(&ctx).await,
        Command::Capsule(cmd) => capsule::run(&ctx, cmd).await,
        Command::Audit(cmd) => audit::run(&ctx, cmd),
        Command::Caps(cmd) => caps::run(&ctx, cmd).await,
    }
}

/// For a response of the wrong kind: the daemon and this CLI disagree about the protocol.
pub fn unexpected(resp: ControlResponse) -> anyhow::Error {
    anyhow!("daemon answered with an unexpected response: {resp:?}")
}
