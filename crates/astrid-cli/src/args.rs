//! The command-line grammar.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The version this binary reports: `ASTRID_RELEASE_VERSION` at build time (how a release,
/// or the test of `astrid update`, builds a second version from the same sources), else the
/// crate's.
pub const VERSION: &str = match option_env!("ASTRID_RELEASE_VERSION") {
    Some(v) => v,
    None => env!("CARGO_PKG_VERSION"),
};

#[derive(Debug, Parser)]
#[command(
    name = "astrid",
    version = VERSION,
    about = "A secure operating system for AI agents: talk to the agent, set it up, run the \
             daemon and manage its capsules",
    subcommand_required = false,
    arg_required_else_help = true,
    after_help = after_help()
)]
pub struct Cli {
    /// Astrid home directory (default: $ASTRID_HOME, else ~/.astrid).
    #[arg(long, global = true, value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// Principal acting: the connection acts for it (as the operator, unless a device token
    /// is given); commands that take a principal argument act on that one instead.
    #[arg(
        long,
        global = true,
        env = "ASTRID_PRINCIPAL",
        default_value = "default",
        value_name = "P"
    )]
    pub principal: String,
    /// Connect with this device token (from `astrid pair-device issue`) instead of as the
    /// operator; the connection then acts for the device's principal only.
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        env = "ASTRID_DEVICE_TOKEN_FILE"
    )]
    pub device_token_file: Option<PathBuf>,
    /// List and show commands print JSON instead of text (field names in docs/CLI.md).
    #[arg(long, global = true)]
    pub json: bool,
    /// Run one prompt headless, print the answer and exit (stdin, when piped, is appended).
    #[arg(short = 'p', long = "prompt", value_name = "PROMPT")]
    pub prompt: Option<String>,
    #[command(flatten)]
    pub turn: PromptArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

fn after_help() -> String {
    format!(
        "Capsules add commands of their own (e.g. `astrid models`); run one to see them.\n\n{}",
        crate::exit::HELP
    )
}

/// Options of `astrid -p`; meaningless without it.
#[derive(Debug, Default, Args)]
pub struct PromptArgs {
    /// Approve every approval request once (default: deny them, since nobody can be asked).
    #[arg(long, requires = "prompt")]
    pub yes: bool,
    /// Continue a session, by id or name (a new name creates it).
    #[arg(long, value_name = "ID|NAME", requires = "prompt")]
    pub session: Option<String>,
    /// The directory the agent works in (default: the current directory).
    #[arg(long, value_name = "DIR", requires = "prompt")]
    pub workspace: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Talk to the agent in an interactive session.
    Chat(ChatArgs),
    /// Set up: start the daemon, install the distro, choose a provider and model.
    Init(InitArgs),
    /// Check that the daemon, the capsules and a model are ready (never starts the daemon).
    Doctor,
    /// Start the daemon in the background if it is not running.
    Start,
    /// Ask the daemon to shut down and wait until it has.
    Stop,
    /// Show whether the daemon runs, and what it runs.
    Status,
    /// List loaded capsules (starts the daemon if needed).
    Ps,
    /// Build, install and inspect capsules.
    #[command(subcommand)]
    Capsule(CapsuleCommand),
    /// Show, verify and export a principal's signed audit chain (use --principal).
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Show, grant and revoke capability tokens.
    #[command(subcommand)]
    Caps(CapsCommand),
    /// Show and change a capsule's settings for the principal.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Store, list and remove the principal's credentials (values never leave the daemon).
    #[command(subcommand)]
    Secret(SecretCommand),
    /// Local-network egress consent: which capsule may reach which loopback/LAN `host:port`.
    #[command(subcommand)]
    Egress(EgressCommand),
    /// Create, clone, list, show, modify and delete principals (agents), each with its own
    /// capsules, store, home, tokens, quota and audit chain.
    #[command(subcommand)]
    Agent(AgentCommand),
    /// Show and set a principal's resource quota (memory, time, storage, processes,
    /// concurrency).
    #[command(subcommand)]
    Quota(QuotaCommand),
    /// A principal's profile: facts about it (`display_name`, `timezone`, …) that a capsule
    /// reads through `astrid:identity` only when its manifest names the fact and the
    /// principal allows it (`astrid caps grant NAME identity:FACT`, or an approval).
    #[command(subcommand)]
    Profile(ProfileCommand),
    /// Pair devices: credentials that act for one principal only (shown once, revocable).
    #[command(subcommand)]
    PairDevice(PairDeviceCommand),
    /// Model Context Protocol: serve the principal's capsule tools to MCP hosts.
    #[command(subcommand)]
    Mcp(McpCommand),
    /// Distros: install one and pin its lock, write a lock, show the lock in force; sign and
    /// verify .shuttle bundles.
    #[command(subcommand)]
    Distro(DistroCommand),
    /// The publishers whose signed distros (.shuttle), registry indexes and releases this
    /// Astrid installs.
    #[command(subcommand)]
    Trust(TrustCommand),
    /// Registries: publish capsules and distros into one, search one.
    #[command(subcommand)]
    Registry(RegistryCommand),
    /// Update Astrid itself from a signed release channel: verify, stage, swap the five
    /// binaries at once, restart the daemon, roll back if the new one does not come up.
    Update(UpdateArgs),
    /// Publish Astrid's own binaries into a release channel (for `astrid update`).
    #[command(subcommand)]
    Release(ReleaseCommand),
    /// Print a completion script for a shell, e.g. `astrid completions bash >
    /// ~/.local/share/bash-completion/completions/astrid`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// A command added by an installed capsule (e.g. `models`).
    #[command(external_subcommand)]
    External(Vec<String>),
}

#[derive(Debug, Default, Args)]
pub struct ChatArgs {
    /// Resume a session by id or name (a new name creates it).
    #[arg(long, value_name = "ID|NAME")]
    pub session: Option<String>,
    /// Answer every approval request with "once" without asking.
    #[arg(long)]
    pub yes: bool,
    /// The directory the agent works in (default: the current directory).
    #[arg(long, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
    /// Line mode instead of the full-screen interface (also when stdin or stdout is not a
    /// terminal).
    #[arg(long)]
    pub plain: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CapsuleTemplate {
    /// A capsule with one tool the agent can call.
    Tool,
    /// A capsule that answers requests on a topic.
    Handler,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProviderKind {
    /// Any OpenAI-compatible server (OpenAI, llama.cpp, vLLM, Ollama, …).
    Openai,
    Anthropic,
}

#[derive(Debug, Default, Args)]
pub struct InitArgs {
    /// Accept defaults without asking; API keys come from OPENAI_API_KEY / ANTHROPIC_API_KEY.
    #[arg(long)]
    pub yes: bool,
    /// Configure this provider (skips the provider choice).
    #[arg(long, value_enum)]
    pub provider: Option<ProviderKind>,
    /// The provider's base URL, e.g. http://127.0.0.1:8091 for a local llama.cpp server.
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// The model to use (default with --yes: the first one the provider lists).
    #[arg(long, value_name = "M")]
    pub model: Option<String>,
    /// The distro directory: Distro.toml, its `*.capsule` packages, its Distro.lock
    /// (default: $ASTRID_DISTRO, else `<exe dir>/../share/astrid/distro`, else
    /// `./dist/distro`); or a signed distro from the registry, `@org/name[@REQ]`.
    #[arg(long, value_name = "DIR|@ORG/NAME")]
    pub distro: Option<PathBuf>,
    #[command(flatten)]
    pub registry: RegistryArg,
    /// Install from a signed .shuttle bundle instead (no network needed); its publisher must
    /// be trusted (`astrid trust add`).
    #[arg(long, value_name = "BUNDLE", conflicts_with = "distro")]
    pub offline: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// A capsule's effective settings (defaults merged with the principal's changes); with
    /// no CAPSULE, the operator's config.toml settings the daemon runs with (its quota,
    /// http and process sections, defaults included).
    Show { capsule: Option<String> },
    /// Set a setting; without VALUE, clear it back to the default.
    Set {
        capsule: String,
        key: String,
        value: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Store a credential the capsule declares; the value is read without echo (or from
    /// stdin when it is not a terminal), never from the command line.
    Set {
        capsule: String,
        name: String,
        /// The only origin the credential is sent to, e.g. `https://api.openai.com`.
        #[arg(long, value_name = "URL")]
        origin: String,
    },
    /// Names and origins of the stored credentials.
    List,
    /// Delete a credential.
    Remove { capsule: String, name: String },
}

#[derive(Debug, Subcommand)]
pub enum EgressCommand {
    /// Let a capsule reach one loopback/LAN `host:port` (recorded in the audit chain).
    Allow { capsule: String, target: String },
    /// Withdraw a consent.
    Revoke { capsule: String, target: String },
    /// Every consent of the principal.
    Show,
}

#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Create a principal with a clean slate: no capsules, no grants beyond its own home,
    /// empty KV, secrets and home. With `--clone SRC`: a replica of SRC (capsules, quota,
    /// settings, KV, home, secrets re-sealed, tokens minted anew for it).
    Create {
        name: String,
        /// The principal to replicate.
        #[arg(long = "clone", value_name = "SRC")]
        clone: Option<String>,
    },
    /// Every principal.
    List,
    /// A principal's capsules, tokens, devices and quota.
    Show { name: String },
    /// Grant installed capsules to a principal, or take them away.
    Modify {
        name: String,
        #[arg(long = "add-capsule", value_name = "CAPSULE")]
        add: Vec<String>,
        #[arg(long = "remove-capsule", value_name = "CAPSULE")]
        remove: Vec<String>,
    },
    /// Delete a principal: its data goes, its audit chain is archived, never destroyed.
    Delete { name: String },
}

#[derive(Debug, Subcommand)]
pub enum ProfileCommand {
    /// Set a fact (1-64 characters of a-z, 0-9 and `_`; a value of at most 1 KiB).
    Set {
        #[arg(short = 'a', long = "agent", value_name = "NAME")]
        agent: Option<String>,
        fact: String,
        value: String,
    },
    /// Remove a fact.
    Unset {
        #[arg(short = 'a', long = "agent", value_name = "NAME")]
        agent: Option<String>,
        fact: String,
    },
    /// The principal's facts.
    Show {
        #[arg(short = 'a', long = "agent", value_name = "NAME")]
        agent: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum QuotaCommand {
    /// Set limits (sizes like 128MB, 1GB; times like 500ms, 5s, 2m); unset ones keep the
    /// daemon's defaults. Replaces the principal's whole quota.
    Set {
        /// The principal (default: --principal).
        #[arg(short = 'a', long = "agent", value_name = "NAME")]
        agent: Option<String>,
        /// Linear memory of one capsule invocation (also caps a subprocess sandbox).
        #[arg(long, value_name = "SIZE")]
        memory: Option<String>,
        /// Wall time of one capsule invocation (also caps a subprocess's CPU time).
        #[arg(long, value_name = "DURATION")]
        time: Option<String>,
        /// KV bytes plus home bytes.
        #[arg(long, value_name = "SIZE")]
        storage: Option<String>,
        /// Processes (and threads) of one subprocess sandbox.
        #[arg(long, value_name = "N")]
        processes: Option<u32>,
        /// Capsule invocations running at once.
        #[arg(long, value_name = "N")]
        concurrency: Option<u32>,
    },
    /// The quota in effect and what the principal uses now.
    Show {
        #[arg(short = 'a', long = "agent", value_name = "NAME")]
        agent: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum PairDeviceCommand {
    /// Pair a device and print its token once.
    Issue {
        /// The principal the device acts for (default: --principal).
        #[arg(short = 'a', long = "agent", value_name = "NAME")]
        agent: Option<String>,
        /// `use-only`, or resource patterns each covered by a token the principal holds.
        #[arg(long, required = true, num_args = 1.., value_name = "use-only|PATTERN")]
        scope: Vec<String>,
        /// Validity, e.g. 30m, 12h, 7d (default: until revoked).
        #[arg(long, value_name = "DURATION")]
        expires: Option<String>,
        /// A name to recognise the device by in `pair-device list`.
        #[arg(long, default_value = "")]
        label: String,
    },
    /// The principal's devices (never their secrets).
    List {
        #[arg(short = 'a', long = "agent", value_name = "NAME")]
        agent: Option<String>,
    },
    /// Revoke a device; its open connections close at once.
    Revoke {
        id: String,
        #[arg(short = 'a', long = "agent", value_name = "NAME")]
        agent: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum DistroCommand {
    /// Check a distro (Distro.toml, its packages, its Distro.lock), pin its lock in the
    /// daemon and install its capsules; `astrid init` does this before setting up providers.
    Install {
        /// The distro directory, a signed .shuttle bundle from a trusted publisher, or a
        /// signed distro from the registry, `@org/name[@REQ]` (default: as for `astrid init`).
        #[arg(value_name = "DIR|BUNDLE|@ORG/NAME")]
        dir: Option<PathBuf>,
        #[command(flatten)]
        registry: RegistryArg,
    },
    /// Write DIR/Distro.lock: every capsule of DIR/Distro.toml pinned by the BLAKE3 hash of
    /// the package found in DIR.
    Lock { dir: PathBuf },
    /// The lock the daemon enforces, and whether each pinned capsule is installed as pinned.
    Show,
    /// Create a publisher signing key (ed25519, mode 0600) and print its public key.
    Keygen { key: PathBuf },
    /// Pack DIR (Distro.toml, Distro.lock, packages; checked first) into a signed .shuttle.
    Pack {
        dir: PathBuf,
        /// The publisher's key file (`astrid distro keygen`).
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// Where to write the bundle (default: DIR/../NAME-VERSION.shuttle).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Check a .shuttle: its shape, the signature over its lock, that the signer is trusted
    /// (`astrid trust`), and every package against the lock. Installs nothing.
    Verify { bundle: PathBuf },
}

/// Where packages named `@org/name` come from.
#[derive(Debug, Default, Clone, Args)]
pub struct RegistryArg {
    /// The registry: a directory or an https:// URL holding a signed index.toml
    /// (plain http:// only to the host and port named here).
    #[arg(long = "registry", value_name = "DIR|URL", env = "ASTRID_REGISTRY")]
    pub location: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    /// Publish a .capsule package or a signed .shuttle distro into a registry directory
    /// (any static file server can then host it): copied under its name and version, added
    /// to index.toml, which is re-signed with KEY. A published version never changes.
    Publish {
        /// The registry directory (created if missing).
        dir: PathBuf,
        /// The .capsule package or .shuttle bundle.
        artifact: PathBuf,
        /// Its registry name, `@org/name`.
        #[arg(long, value_name = "@ORG/NAME")]
        name: String,
        /// The publisher's key file (`astrid distro keygen`); the key that signed the index
        /// before.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// Clients refuse the index this long after signing unless it is re-published
        /// (e.g. 30d; default: it never expires).
        #[arg(long, value_name = "DURATION")]
        valid_for: Option<String>,
    },
    /// What the registry offers (after checking its signature, signer and freshness).
    Search {
        /// Only names containing this.
        query: Option<String>,
        #[command(flatten)]
        registry: RegistryArg,
    },
}

#[derive(Debug, Default, Args)]
pub struct UpdateArgs {
    /// The release channel: a directory or an https:// URL holding a signed channel.toml
    /// (plain http:// only to the host and port named here).
    #[arg(long = "channel", value_name = "DIR|URL", env = "ASTRID_CHANNEL")]
    pub channel: Option<String>,
    /// Only report what is installed and what the channel offers; change nothing.
    #[arg(long)]
    pub check: bool,
    /// This version instead of the newest (an older one needs --force).
    #[arg(long, value_name = "VERSION")]
    pub to: Option<semver::Version>,
    /// Allow a downgrade.
    #[arg(long)]
    pub force: bool,
    /// The install to update: ROOT/versions/VERSION/ holds each release, ROOT/current the one
    /// in use, ROOT/bin the links to put on PATH (default: the install this astrid runs
    /// from). An empty or missing ROOT gets the release installed.
    #[arg(long, value_name = "ROOT")]
    pub root: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ReleaseCommand {
    /// Pack this platform's five binaries into a channel directory (any static file server
    /// can then host it) and re-sign channel.toml with KEY. A published release never
    /// changes.
    Publish {
        /// The channel directory (created if missing).
        dir: PathBuf,
        /// The publisher's key file (`astrid distro keygen`); the key that signed the channel
        /// before. Clients must trust it with `astrid trust add NAME KEY --releases`.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// The version to publish them as (default: this astrid's version).
        #[arg(long, value_name = "VERSION")]
        version: Option<semver::Version>,
        /// The directory holding astrid, astrid-daemon, astrid-gateway, astrid-emit and
        /// astrid-netfwd (default: the one this astrid runs from).
        #[arg(long, value_name = "DIR")]
        from: Option<PathBuf>,
        /// The platform they are for (default: this one, e.g. x86_64-linux).
        #[arg(long, value_name = "PLATFORM")]
        platform: Option<String>,
        /// Clients refuse the channel this long after signing unless it is re-published
        /// (e.g. 30d; default: it never expires).
        #[arg(long, value_name = "DURATION")]
        valid_for: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum TrustCommand {
    /// Trust a publisher's key (64 hex characters, from `astrid distro keygen`) to sign
    /// distros this Astrid installs.
    Add {
        name: String,
        key: String,
        /// Also trust it to sign Astrid's own releases (`astrid update` replaces the binaries
        /// with what it signs).
        #[arg(long)]
        releases: bool,
    },
    /// The trusted publishers.
    List,
    /// Stop trusting a publisher.
    Remove { name: String },
}

#[derive(Debug, Subcommand)]
pub enum McpCommand {
    /// Speak MCP on stdin/stdout: the tools of the principal's capsules, each call checked
    /// and audited by the daemon (for Claude Code, Codex, Cursor, … as a stdio server).
    Serve {
        /// Relative paths in tool arguments resolve against DIR. It grants nothing: what a
        /// call may touch is the principal's capability tokens.
        #[arg(long, value_name = "DIR")]
        workspace: Option<PathBuf>,
        /// Approve every approval request once (default: nobody is asked here, so an effect
        /// no token covers is denied unless another approver of the principal allows it).
        #[arg(long)]
        yes: bool,
    },
    /// Add an MCP server as sandboxed tools: it runs under the OS sandbox with only the
    /// granted directories and hosts, and its tool definitions are pinned now (a later
    /// change disables the tool until `astrid mcp approve`). Example: `astrid mcp add files
    /// --allow-read ~/notes -- /path/to/mcp-server-filesystem ~/notes`.
    #[command(verbatim_doc_comment)]
    Add {
        /// 1-32 of a-z 0-9 - starting with a letter; its tools become NAME.TOOL.
        name: String,
        /// A directory the server may read (repeatable). Nothing else of the operator's
        /// files is visible to it, whatever its own arguments say.
        #[arg(long = "allow-read", value_name = "DIR")]
        allow_read: Vec<PathBuf>,
        /// A directory the server may write (repeatable); the first is its working directory.
        #[arg(long = "allow-write", value_name = "DIR")]
        allow_write: Vec<PathBuf>,
        /// Set the server's environment variable ENV to the principal's MCP secret NAME
        /// (repeatable; store it first with `astrid mcp secret set NAME`). The value stays
        /// in the daemon's encrypted store and is handed over only at each start.
        #[arg(long = "secret", value_name = "ENV=NAME", value_parser = parse_secret_ref)]
        secrets: Vec<astrid_types::mcp::McpSecretRef>,
        /// A host the server may connect to (repeatable), by name: inside the sandbox the
        /// name leads to a forwarder, and every connection goes through the airlock, which
        /// refuses an answer on this machine or the local network. Nothing else is reachable.
        #[arg(long = "allow-net", value_name = "HOST:PORT", value_parser = parse_public_net)]
        allow_net: Vec<astrid_types::mcp::NetGrant>,
        /// As --allow-net, for a target on this machine or the local network (`localhost`,
        /// `127.0.0.1`, a LAN name): your consent that this one may be local.
        #[arg(long = "allow-local-net", value_name = "HOST:PORT", value_parser = parse_local_net)]
        allow_local_net: Vec<astrid_types::mcp::NetGrant>,
        /// The server's program (a path) and its arguments, after `--`.
        #[arg(last = true, required = true, value_name = "COMMAND")]
        command: Vec<String>,
    },
    /// Serve the added MCP servers' approved tools to this principal's agent as
    /// `SERVER__TOOL`, until the daemon stops. Each call is checked by the daemon first (a
    /// `tool:SERVER.TOOL` token, else an approval) and recorded with a digest of its
    /// arguments. Needs the operator's credential.
    Bridge,
    /// List the added MCP servers.
    List,
    /// Show an MCP server: its grants, and its tools checked against the pinned definitions
    /// (starts the server to ask it; names each tool whose definition changed).
    Show { name: String },
    /// Approve the tool definitions an MCP server offers now (after `show` named a change).
    Approve { name: String },
    /// Remove an MCP server.
    Remove { name: String },
    /// The principal's MCP secrets: values the added servers get as environment variables.
    #[command(subcommand)]
    Secret(McpSecretCommand),
}

fn parse_secret_ref(s: &str) -> Result<astrid_types::mcp::McpSecretRef, String> {
    astrid_types::mcp::McpSecretRef::parse(s)
}

fn parse_public_net(s: &str) -> Result<astrid_types::mcp::NetGrant, String> {
    astrid_types::mcp::NetGrant::parse(s, false)
}

fn parse_local_net(s: &str) -> Result<astrid_types::mcp::NetGrant, String> {
    astrid_types::mcp::NetGrant::parse(s, true)
}

#[derive(Debug, Subcommand)]
pub enum McpSecretCommand {
    /// Store a secret; the value is read without echo (or from stdin when it is not a
    /// terminal), never from the command line.
    Set { name: String },
    /// Names of the stored MCP secrets (never their values).
    List,
    /// Delete a secret; servers that name it no longer start.
    Remove { name: String },
}

#[derive(Debug, Subcommand)]
pub enum CapsCommand {
    /// List a principal's tokens (revoked ones marked); default: the acting principal.
    Show { principal: Option<String> },
    /// Mint a token for a resource pattern, e.g. `fs:read:/srv/data/**`.
    Grant {
        principal: String,
        pattern: String,
        /// Validity, e.g. 30m, 12h, 7d (default: until revoked).
        #[arg(long, value_name = "DURATION")]
        expires: Option<String>,
    },
    /// Revoke a token (32 hex characters); takes effect at once.
    Revoke { token_id: String },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Print the entries, oldest first (with --json: one JSON object per line, with hashes,
    /// signature and signed bytes).
    Show {
        /// Only entries from this time on: epoch milliseconds or an age (90s, 15m, 2h, 7d).
        #[arg(long, value_name = "T")]
        since: Option<String>,
    },
    /// Check every entry, link and signature, that the chain is this principal's, and the
    /// signed head; exit non-zero naming the first bad entry. Prints a witness (SEQ:HASH)
    /// to keep elsewhere and pass back later with --witness.
    Verify {
        /// A witness printed by an earlier verify: the chain must still contain that entry
        /// (catches a rollback or replacement of both files, which nothing local can).
        #[arg(long, value_name = "SEQ:HASH")]
        witness: Option<String>,
    },
    /// JSON lines for verifiers without our code (see docs/AUDIT-FORMAT.md).
    Export,
}

#[derive(Debug, Subcommand)]
pub enum CapsuleCommand {
    /// Start a new capsule: Capsule.toml, Cargo.toml, src/lib.rs, .cargo/config.toml and
    /// AUTHORING.md, ready for `astrid capsule build` and `astrid capsule install .`.
    New {
        name: String,
        /// `tool` (one tool the agent can call) or `handler` (answers requests on a topic).
        #[arg(long, value_enum, default_value = "tool")]
        template: CapsuleTemplate,
        /// Where to create it (default: ./NAME); must not exist or be empty.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// The astrid-sdk crate to depend on (default: $ASTRID_SDK, beside the executable,
        /// or the checkout astrid was built from).
        #[arg(long, value_name = "DIR")]
        sdk: Option<PathBuf>,
    },
    /// Build a capsule source tree into a package.
    Build {
        /// The capsule crate (Cargo.toml + Capsule.toml).
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Where to write the package (default: DIR/dist).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Show cargo's output while building.
        #[arg(long, short)]
        verbose: bool,
    },
    /// Install a capsule from a .capsule file, a package directory, a source tree, or a
    /// registry by name: `@org/name` or `@org/name@REQ` (e.g. `@acme/weather@^1.2`).
    Install {
        #[arg(value_name = "PATH|@ORG/NAME")]
        path: PathBuf,
        #[command(flatten)]
        registry: RegistryArg,
    },
    /// Replace an installed capsule: with a package (a path), or with the newest version in
    /// the registry (an installed capsule's name, or `@org/name[@REQ]`).
    Update {
        #[arg(value_name = "PATH|NAME|@ORG/NAME")]
        path: PathBuf,
        #[command(flatten)]
        registry: RegistryArg,
    },
    /// Uninstall a capsule.
    Remove { name: String },
    /// List installed capsules.
    List {
        /// Show description, tools, topics, capabilities and interfaces.
        #[arg(long, short)]
        verbose: bool,
    },
    /// Show each capsule's imports (with their providers) and exports.
    Tree,
}

#[cfg(test)]
#[path = "args_tests.rs"]
mod tests;
