use super::*;
use clap::CommandFactory;

fn parse(args: &[&str]) -> Cli {
    try_parse(args).unwrap()
}

fn try_parse(args: &[&str]) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once("astrid").chain(args.iter().copied()))
}

/// The subcommand of a command line that must have one.
fn cmd(args: &[&str]) -> Command {
    parse(args).command.expect("a subcommand")
}

#[test]
fn grammar_is_consistent() {
    Cli::command().debug_assert();
}

#[test]
fn globals_default_and_may_follow_the_subcommand() {
    let cli = parse(&["status"]);
    assert_eq!((cli.home, cli.principal.as_str()), (None, "default"));
    assert!(matches!(cli.command, Some(Command::Status)));
    let cli = parse(&["ps", "--home", "/tmp/h", "--principal", "alice"]);
    assert_eq!(cli.home, Some(PathBuf::from("/tmp/h")));
    assert_eq!(cli.principal, "alice");
}

#[test]
fn capsule_build_defaults_to_the_current_dir() {
    let cli = parse(&["capsule", "build"]);
    match cli.command.unwrap() {
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
    match cli.command.unwrap() {
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
        cmd(&["capsule", "install", "echo.capsule"]),
        Command::Capsule(CapsuleCommand::Install { path, .. }) if path == std::path::Path::new("echo.capsule")
    ));
    assert!(matches!(
        cmd(&["capsule", "update", "dist/echo-0.2.0"]),
        Command::Capsule(CapsuleCommand::Update { .. })
    ));
    assert!(matches!(
        cmd(&["capsule", "remove", "echo"]),
        Command::Capsule(CapsuleCommand::Remove { name }) if name == "echo"
    ));
    assert!(matches!(
        cmd(&["capsule", "list", "--verbose"]),
        Command::Capsule(CapsuleCommand::List { verbose: true })
    ));
    assert!(matches!(
        cmd(&["capsule", "tree"]),
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
    assert!(cli.json);
    assert!(matches!(
        cli.command.unwrap(),
        Command::Audit(AuditCommand::Show { since: Some(s) }) if s == "2h"
    ));
    assert!(matches!(
        cmd(&["audit", "verify"]),
        Command::Audit(AuditCommand::Verify { witness: None })
    ));
    assert!(matches!(
        cmd(&["audit", "export"]),
        Command::Audit(AuditCommand::Export)
    ));
}

#[test]
fn caps_subcommands_parse() {
    assert!(matches!(
        cmd(&["caps", "show", "alice"]),
        Command::Caps(CapsCommand::Show { principal: Some(p) }) if p == "alice"
    ));
    assert!(matches!(
        cmd(&["caps", "grant", "alice", "fs:read:/srv/**", "--expires", "2h"]),
        Command::Caps(CapsCommand::Grant { principal, pattern, expires: Some(e) })
            if principal == "alice" && pattern == "fs:read:/srv/**" && e == "2h"
    ));
    assert!(matches!(
        cmd(&["caps", "revoke", "00ff"]),
        Command::Caps(CapsCommand::Revoke { token_id }) if token_id == "00ff"
    ));
}

#[test]
fn missing_operands_are_rejected() {
    let bad = |args: &[&str]| try_parse(args).is_err();
    assert!(bad(&["capsule", "install"]));
    assert!(bad(&["capsule", "remove"]));
    assert!(bad(&["config", "set", "registry"]));
    assert!(
        bad(&["secret", "set", "provider-openai", "api_key"]),
        "--origin is required"
    );
    assert!(bad(&["egress", "allow", "provider-openai"]));
    assert!(bad(&["init", "--provider", "mistral"]));
    assert!(bad(&[]));
}

#[test]
fn headless_prompt_is_a_top_level_flag() {
    let cli = parse(&["-p", "x", "--yes", "--session", "s"]);
    assert_eq!(cli.prompt.as_deref(), Some("x"));
    assert!(cli.turn.yes);
    assert_eq!(cli.turn.session.as_deref(), Some("s"));
    assert_eq!(cli.turn.workspace, None);
    assert!(cli.command.is_none());

    let cli = parse(&[
        "--principal",
        "ci",
        "--prompt",
        "fix it",
        "--workspace",
        "/w",
    ]);
    assert_eq!(cli.prompt.as_deref(), Some("fix it"));
    assert!(!cli.turn.yes);
    assert_eq!(cli.turn.workspace, Some(PathBuf::from("/w")));
    assert_eq!(cli.principal, "ci");
}

#[test]
fn prompt_options_need_a_prompt() {
    for args in [
        &["--yes", "status"][..],
        &["--session", "s", "status"],
        &["--workspace", "/w", "status"],
    ] {
        let err = try_parse(args).unwrap_err();
        assert_eq!(
            err.kind(),
            clap::error::ErrorKind::MissingRequiredArgument,
            "{args:?}"
        );
    }
}

#[test]
fn chat_and_init_take_their_own_options() {
    match cmd(&["chat", "--session", "work", "--yes", "--workspace", "/w"]) {
        Command::Chat(a) => {
            assert_eq!(a.session.as_deref(), Some("work"));
            assert!(a.yes);
            assert_eq!(a.workspace, Some(PathBuf::from("/w")));
        }
        other => panic!("{other:?}"),
    }
    match cmd(&[
        "init",
        "--yes",
        "--provider",
        "openai",
        "--base-url",
        "http://127.0.0.1:8091",
        "--model",
        "qwen",
        "--distro",
        "/d",
    ]) {
        Command::Init(a) => {
            assert!(a.yes);
            assert_eq!(a.provider, Some(ProviderKind::Openai));
            assert_eq!(a.base_url.as_deref(), Some("http://127.0.0.1:8091"));
            assert_eq!(a.model.as_deref(), Some("qwen"));
            assert_eq!(a.distro, Some(PathBuf::from("/d")));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        cmd(&["init", "--provider", "anthropic"]),
        Command::Init(InitArgs {
            provider: Some(ProviderKind::Anthropic),
            yes: false,
            ..
        })
    ));
    assert!(matches!(cmd(&["doctor"]), Command::Doctor));
}

#[test]
fn operator_commands_parse() {
    assert!(matches!(
        cmd(&["config", "show", "registry"]),
        Command::Config(ConfigCommand::Show { capsule: Some(c) }) if c == "registry"
    ));
    assert!(matches!(
        cmd(&["config", "show"]),
        Command::Config(ConfigCommand::Show { capsule: None })
    ));
    assert!(matches!(
        cmd(&["config", "set", "registry", "model", "qwen"]),
        Command::Config(ConfigCommand::Set { capsule, key, value: Some(v) })
            if capsule == "registry" && key == "model" && v == "qwen"
    ));
    assert!(matches!(
        cmd(&["config", "set", "registry", "model"]),
        Command::Config(ConfigCommand::Set { value: None, .. })
    ));
    assert!(matches!(
        cmd(&["secret", "set", "provider-openai", "api_key", "--origin", "https://api.openai.com"]),
        Command::Secret(SecretCommand::Set { capsule, name, origin })
            if capsule == "provider-openai" && name == "api_key" && origin == "https://api.openai.com"
    ));
    assert!(matches!(
        cmd(&["secret", "list"]),
        Command::Secret(SecretCommand::List)
    ));
    assert!(matches!(
        cmd(&["secret", "remove", "provider-openai", "api_key"]),
        Command::Secret(SecretCommand::Remove { .. })
    ));
    assert!(matches!(
        cmd(&["egress", "allow", "provider-openai", "127.0.0.1:8091", "--principal", "bob"]),
        Command::Egress(EgressCommand::Allow { capsule, target })
            if capsule == "provider-openai" && target == "127.0.0.1:8091"
    ));
    assert!(matches!(
        cmd(&["egress", "revoke", "provider-openai", "127.0.0.1:8091"]),
        Command::Egress(EgressCommand::Revoke { .. })
    ));
    assert!(matches!(
        cmd(&["egress", "show"]),
        Command::Egress(EgressCommand::Show)
    ));
}

#[test]
fn unknown_subcommands_are_capsule_verbs() {
    match cmd(&["models"]) {
        Command::External(args) => assert_eq!(args, ["models"]),
        other => panic!("{other:?}"),
    }
    match cmd(&["--principal", "bob", "models", "--all", "x"]) {
        Command::External(args) => assert_eq!(args, ["models", "--all", "x"]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn completion_scripts_name_the_subcommands() {
    match cmd(&["completions", "zsh"]) {
        Command::Completions { shell } => assert_eq!(shell, clap_complete::Shell::Zsh),
        other => panic!("{other:?}"),
    }
    for shell in [
        clap_complete::Shell::Bash,
        clap_complete::Shell::Zsh,
        clap_complete::Shell::Fish,
    ] {
        let script = String::from_utf8(crate::commands::completion_script(shell)).unwrap();
        for word in ["chat", "pair-device", "capsule", "completions", "--json"] {
            assert!(script.contains(word), "{shell}: `{word}` missing");
        }
    }
}

#[test]
fn help_documents_the_exit_codes() {
    let help = Cli::command().render_help().to_string();
    assert!(help.contains("Exit codes:"), "{help}");
    assert!(help.contains("141"), "{help}");
}
