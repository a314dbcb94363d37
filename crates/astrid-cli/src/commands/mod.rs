//! Subcommand implementations. Each returns the process exit code or an error for `main`
//! to print.

pub(crate) mod agent;
mod audit;
mod caps;
mod capsule;
mod chat;
pub(crate) mod chat_state;
mod daemon;
mod distro;
mod distro_cmd;
mod distro_resolve;
mod doctor;
mod forge;
mod init;
mod init_plan;
mod mcp;
mod mcp_servers;
mod profile;
mod quota;
mod registry;
mod settings;
mod tenants;
pub(crate) mod turn;
mod update;
mod update_layout;
mod verbs;

use std::process::ExitCode;

use anyhow::{anyhow, bail, Context as _};
use astrid_client::Client;
use astrid_types::home::AstridHome;
use astrid_types::wire::ControlResponse;

use crate::args::{Cli, Command};

/// What every subcommand needs: where the daemon lives and who we act as.
pub struct Ctx {
    pub home: AstridHome,
    pub principal: String,
    /// A device token to connect with instead of the operator's token file.
    pub device_token: Option<String>,
    /// `--json`: list and show commands print JSON.
    pub json: bool,
}

impl Ctx {
    /// Connects, starting the daemon first when `autostart` is set.
    pub async fn connect(&self, autostart: bool) -> anyhow::Result<Client> {
        if autostart {
            // Booting compiles (or loads from cache) every capsule: seconds, not milliseconds.
            let spinner = (!astrid_client::is_daemon_running(&self.home))
                .then(|| crate::progress::spinner("starting the astrid daemon"));
            let started = astrid_client::ensure_daemon(&self.home, None).await;
            if let Some(s) = spinner {
                s.finish_and_clear();
            }
            started?;
        }
        Ok(match &self.device_token {
            None => Client::connect(&self.home, &self.principal, "astrid").await?,
            Some(token) => {
                let credential = astrid_types::wire::Credential::Device(token.clone());
                Client::connect_with(&self.home, credential, &self.principal, "astrid").await?
            }
        })
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Some(Command::Completions { shell }) = &cli.command {
        // Needs no home and no daemon: it runs in shell start-up files.
        return print_completions(*shell);
    }
    if cli.json && !json_supported(cli.command.as_ref()) {
        bail!(
            "--json is for list and show commands (see `astrid --help`); this one has no JSON \
             form"
        );
    }
    let home = match cli.home {
        Some(dir) => AstridHome::new(dir),
        None => AstridHome::from_env()
            .context("cannot locate the astrid home: set ASTRID_HOME or HOME, or pass --home")?,
    };
    let device_token = match &cli.device_token_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading the device token {}", path.display()))?
                .trim()
                .to_string(),
        ),
        // Tests and uplinks may pass the token itself.
        None => std::env::var("ASTRID_DEVICE_TOKEN")
            .ok()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty()),
    };
    // A device acts for its own principal: `--principal` need not repeat it.
    let principal = match device_token.as_deref().and_then(tenants::token_principal) {
        Some(own) if cli.principal == "default" => own,
        _ => cli.principal,
    };
    let ctx = Ctx {
        home,
        principal,
        device_token,
        json: cli.json,
    };
    let command = match (cli.prompt, cli.command) {
        (Some(prompt), None) => return agent::run(&ctx, prompt, cli.turn).await,
        (Some(_), Some(_)) => {
            bail!("-p runs one prompt on its own; it cannot be combined with a command")
        }
        (None, None) => bail!("no command given; see `astrid --help`"),
        (None, Some(command)) => command,
    };
    match command {
        Command::Chat(args) => chat::run(&ctx, args).await,
        Command::Init(args) => init::run(&ctx, args).await,
        Command::Doctor => doctor::run(&ctx).await,
        Command::Config(cmd) => settings::config(&ctx, cmd).await,
        Command::Secret(cmd) => settings::secret(&ctx, cmd).await,
        Command::Egress(cmd) => settings::egress(&ctx, cmd).await,
        Command::External(args) => verbs::run(&ctx, args).await,
        Command::Mcp(cmd) => mcp::run(&ctx, cmd).await,
        Command::Distro(cmd) => distro_cmd::run(&ctx, cmd).await,
        Command::Trust(cmd) => distro_cmd::trust(&ctx, cmd),
        Command::Registry(cmd) => registry::run(&ctx, cmd).await,
        Command::Update(args) => update::run(&ctx, args).await,
        Command::Release(cmd) => update::release(&ctx, cmd).await,
        Command::Start => daemon::start(&ctx).await,
        Command::Stop => daemon::stop(&ctx).await,
        Command::Status => daemon::status(&ctx).await,
        Command::Ps => daemon::ps(&ctx).await,
        Command::Capsule(cmd) => capsule::run(&ctx, cmd).await,
        Command::Audit(cmd) => audit::run(&ctx, cmd),
        Command::Caps(cmd) => caps::run(&ctx, cmd).await,
        Command::Agent(cmd) => tenants::agent(&ctx, cmd).await,
        Command::Quota(cmd) => quota::run(&ctx, cmd).await,
        Command::Profile(cmd) => profile::run(&ctx, cmd).await,
        Command::PairDevice(cmd) => tenants::pair_device(&ctx, cmd).await,
        Command::Completions { shell } => print_completions(shell),
    }
}

fn print_completions(shell: clap_complete::Shell) -> anyhow::Result<ExitCode> {
    let script = completion_script(shell);
    crate::out::write(format_args!("{}", String::from_utf8_lossy(&script)))?;
    Ok(ExitCode::SUCCESS)
}

/// The completion script for `shell`, generated from the command-line grammar.
pub fn completion_script(shell: clap_complete::Shell) -> Vec<u8> {
    use clap::CommandFactory as _;
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "astrid", &mut buf);
    buf
}

/// Whether a command has a `--json` form: the list and show commands.
fn json_supported(command: Option<&Command>) -> bool {
    use crate::args::{
        AgentCommand as A, AuditCommand as Au, CapsCommand as C, CapsuleCommand as Cp,
        ConfigCommand as Cf, DistroCommand as Di, EgressCommand as E, McpCommand as M,
        PairDeviceCommand as D, ProfileCommand as P, QuotaCommand as Q, RegistryCommand as R,
        SecretCommand as S, TrustCommand as T,
    };
    matches!(
        command,
        Some(
            Command::Status
                | Command::Ps
                | Command::Capsule(Cp::List { .. } | Cp::Tree)
                | Command::Audit(Au::Show { .. })
                | Command::Caps(C::Show { .. })
                | Command::Config(Cf::Show { .. })
                | Command::Secret(S::List)
                | Command::Egress(E::Show)
                | Command::Agent(A::List | A::Show { .. })
                | Command::Quota(Q::Show { .. })
                | Command::Profile(P::Show { .. })
                | Command::PairDevice(D::List { .. })
                | Command::Mcp(M::List | M::Show { .. })
                | Command::Distro(Di::Show)
                | Command::Trust(T::List)
                | Command::Registry(R::Search { .. })
        )
    )
}

/// For a response of the wrong kind: the daemon and this CLI disagree about the protocol.
pub fn unexpected(resp: ControlResponse) -> anyhow::Error {
    anyhow!("daemon answered with an unexpected response: {resp:?}")
}
