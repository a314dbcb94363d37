//! The command-line grammar.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "astrid",
    version,
    about = "Run and manage the Astrid daemon and its capsules"
)]
pub struct Cli {
    /// Astrid home directory (default: $ASTRID_HOME, else ~/.astrid).
    #[arg(long, global = true, value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// Principal to act as.
    #[arg(long, global = true, default_value = "default", value_name = "P")]
    pub principal: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
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
}

#[derive(Debug, Subcommand)]
pub enum CapsCommand {
    /// List a principal's tokens (revoked ones marked).
    Show { principal: String },
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
    /// Print the entries, oldest first.
    Show {
        /// Only entries from this time on: epoch milliseconds or an age (90s, 15m, 2h, 7d).
        #[arg(long, value_name = "T")]
        since: Option<String>,
        /// One JSON object per line, with hashes, signature and signed bytes.
        #[arg(long)]
        json: bool,
    },
    /// Check every entry, link and signature; exit non-zero naming the first bad entry.
    Verify,
    /// JSON lines for verifiers without our code (see docs/AUDIT-FORMAT.md).
    Export,
}

#[derive(Debug, Subcommand)]
pub enum CapsuleCommand {
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
    /// Install a capsule from a .capsule file, a package directory or a source tree.
    Install { path: PathBuf },
    /// Replace an installed capsule with a new package of the same name.
    Update { path: PathBuf },
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
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("astrid").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn grammar_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn globals_default_and_may_follow_the_subcommand() {
        let cli = parse(&["status"]);
        assert_eq!((cli.home, cli.principal.as_str()), (None, "default"));
        assert!(matches!(cli.command, Command::Status));
        let cli = parse(&["ps", "--home", "/tmp/h", "--principal", "alice"]);
        assert_eq!(cli.home, Some(PathBuf::from("/tmp/h")));
        assert_eq!(cli.principal, "alice");
    }

    #[test]
    fn capsule_build_defaults_to_the_current_dir() {
        let cli = parse(&["capsule", "build"]);
        match cli.command {
            Command::Capsule(CapsuleCommand::Build { dir, out, verbose }) => {
                assert_eq!(dir, PathBuf::from("."));
                assert_eq!(out, None);
                assert!(!verbose);
            }
            other => panic!("{other:?}"),
        }
        let cli = parse(&[
            "--home",
            "/h",
            "capsule",
            "build",
            "caps/echo",
            "--out",
            "/o",
        ]);
        match cli.command {
            Command::Capsule(CapsuleCommand::Build { dir, out, .. }) => {
                assert_eq!(dir, PathBuf::from("caps/echo"));
                assert_eq!(out, Some(PathBuf::from("/o")));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn capsule_subcommands_take_their_operands() {
        assert!(matches!(
            parse(&["capsule", "install", "echo.capsule"]).command,
            Command::Capsule(CapsuleCommand::Install { path }) if path == std::path::Path::new("echo.capsule")
        ));
        assert!(matches!(
            parse(&["capsule", "update", "dist/echo-0.2.0"]).command,
            Command::Capsule(CapsuleCommand::Update { .. })
        ));
        assert!(matches!(
            parse(&["capsule", "remove", "echo"]).command,
            Command::Capsule(CapsuleCommand::Remove { name }) if name == "echo"
        ));
        assert!(matches!(
            parse(&["capsule", "list", "--verbose"]).command,
            Command::Capsule(CapsuleCommand::List { verbose: true })
        ));
        assert!(matches!(
            parse(&["capsule", "tree"]).command,
            Command::Capsule(CapsuleCommand::Tree)
        ));
    }

    #[test]
    fn audit_subcommands_parse() {
        let cli = parse(&[
            "audit",
            "show",
            "--since",
            "2h",
            "--json",
            "--principal",
            "bob",
        ]);
        assert_eq!(cli.principal, "bob");
        assert!(matches!(
            cli.command,
            Command::Audit(AuditCommand::Show { since: Some(s), json: true }) if s == "2h"
        ));
        assert!(matches!(
            parse(&["audit", "verify"]).command,
            Command::Audit(AuditCommand::Verify)
        ));
        assert!(matches!(
            parse(&["audit", "export"]).command,
            Command::Audit(AuditCommand::Export)
        ));
    }

    #[test]
    fn caps_subcommands_parse() {
        assert!(matches!(
            parse(&["caps", "show", "alice"]).command,
            Command::Caps(CapsCommand::Show { principal }) if principal == "alice"
        ));
        assert!(matches!(
            parse(&["caps", "grant", "alice", "fs:read:/srv/**", "--expires", "2h"]).command,
            Command::Caps(CapsCommand::Grant { principal, pattern, expires: Some(e) })
                if principal == "alice" && pattern == "fs:read:/srv/**" && e == "2h"
        ));
        assert!(matches!(
            parse(&["caps", "revoke", "00ff"]).command,
            Command::Caps(CapsCommand::Revoke { token_id }) if token_id == "00ff"
        ));
    }

    #[test]
    fn missing_operands_and_emit_are_rejected() {
        let bad = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("astrid").chain(args.iter().copied())).is_err()
        };
        assert!(bad(&["capsule", "install"]));
        assert!(bad(&["capsule", "remove"]));
        assert!(bad(&["emit"]), "emit is a separate binary");
        assert!(bad(&[]));
    }
}
