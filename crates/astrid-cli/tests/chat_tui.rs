//! The full-screen `astrid chat`, driven the way a person drives it: in a real terminal
//! (tmux), keys typed with `send-keys`, the screen read with `capture-pane`. Behind it a real
//! daemon (started by the CLI), the agent fleet built from this repository and installed by
//! `astrid init`, and the scripted model server (`astrid-llm-fixture`) speaking the OpenAI
//! API on 127.0.0.1.
//!
//! Needs `tmux` (scripts/test.sh installs it) and the `astrid-daemon` binary beside `astrid`
//! (`cargo build --release --workspace --bins`, which scripts/test.sh runs first).
#![allow(
    clippy::disallowed_methods,
    reason = "tests drive real processes and sockets"
)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use astrid_llm_fixture::{Fixture, FixtureConfig, Step};
use common::{astrid, build_distro, build_packages, daemon_exe, ok, StopDaemon};
use serde_json::json;

/// Hang guard for one thing to appear on the screen; nothing depends on how fast it does.
const SCREEN_TIMEOUT: Duration = Duration::from_secs(180);
const SECRET_LINE: &str = "The launch code is AURORA-7.";

struct Tmux {
    session: String,
}

impl Tmux {
    fn start(home: &Path, workspace: &Path, args: &[&str]) -> Tmux {
        let session = format!("astrid-chat-{}", std::process::id());
        let mut cmd = vec![
            env!("CARGO_BIN_EXE_astrid").to_string(),
            "--home".into(),
            home.display().to_string(),
            "chat".into(),
            "--workspace".into(),
            workspace.display().to_string(),
        ];
        cmd.extend(args.iter().map(|a| a.to_string()));
        let status = Command::new("tmux")
            .args(["new-session", "-d", "-s", &session, "-x", "110", "-y", "40"])
            .args(["-e", &format!("ASTRID_DAEMON={}", daemon_exe().display())])
            .args(["-e", "TERM=xterm-256color"])
            .arg(shell_words(&cmd) + "; echo EXITED $?; sleep 600")
            .status()
            .expect("running tmux (scripts/test.sh installs it)");
        assert!(status.success(), "tmux new-session failed");
        Tmux { session }
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.session])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Types literal text.
    fn type_text(&self, text: &str) {
        self.keys(&["-l", text]);
    }

    /// Sends tmux key names (`Enter`, `C-c`, `Down`, …).
    fn keys(&self, keys: &[&str]) {
        let status = Command::new("tmux")
            .args(["send-keys", "-t", &self.session])
            .args(keys)
            .status()
            .expect("tmux send-keys");
        assert!(status.success());
    }

    /// Waits until the screen satisfies `check`; the screen is in the panic message if not.
    fn wait_for(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + SCREEN_TIMEOUT;
        loop {
            let screen = self.screen();
            if check(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_text(&self, text: &str) -> String {
        self.wait_for(text, |s| s.contains(text))
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.session])
            .status();
    }
}

/// `astrid-emit` sending one line to the daemon of `home`, running.
struct Emit(std::process::Child);

impl Emit {
    /// Its output, once it has its reply.
    fn wait(self) -> String {
        ok(self.0.wait_with_output().unwrap(), "astrid-emit")
    }
}

fn emit(home: &Path, line: &str) -> Emit {
    use std::io::Write as _;
    let exe = daemon_exe().with_file_name("astrid-emit");
    let mut child = Command::new(&exe)
        .arg("--home")
        .arg(home)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running {}: {e}", exe.display()));
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{line}").unwrap();
    drop(stdin);
    Emit(child)
}

fn shell_words(words: &[String]) -> String {
    words
        .iter()
        .map(|w| format!("'{}'", w.replace('\'', r"'\''")))
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn chat_approves_a_tool_cancels_a_turn_and_resumes_a_session_in_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let workspace = dir.path().join("project");
    std::fs::create_dir_all(&workspace).unwrap();
    // The note is in the user's files (`$user_home`, the daemon's $HOME), outside the
    // workspace: tool-fs may reach it only with a person's approval. Not under /tmp, where
    // only a token reaches (docs/TOOLS.md).
    let user_home = tempfile::Builder::new()
        .prefix("chat-user-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let outside = user_home.path().join("notes");
    std::fs::create_dir_all(&outside).unwrap();
    let note = outside.join("note.txt");
    std::fs::write(&note, format!("{SECRET_LINE}\nsecond line of the note\n")).unwrap();

    // Every turn: the model reads the note (outside the workspace, so a person must
    // approve), then answers in Markdown.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fixture = rt.block_on(async {
        Fixture::start_per_turn(
            FixtureConfig {
                api_key: Some("sk-chat-test".into()),
                ..FixtureConfig::default()
            },
            vec![
                Step::tool_call("fs_read", json!({"path": note.display().to_string()})),
                Step::text("The note says **AURORA-7**:\n\n- first\n- second"),
            ],
        )
        .await
        .unwrap()
    });

    let distro = build_distro(dir.path());
    // Capsules that send astrid:uplink notices and ask astrid:elicit questions, installed
    // into the running chat later.
    let probes = build_packages(
        &dir.path().join("probe"),
        &["testdata/uplink-probe", "testdata/elicit-probe"],
    );
    let probe = probes.join("uplink-probe-0.1.0.capsule");
    let asker = probes.join("elicit-probe-0.1.0.capsule");
    for p in [&probe, &asker] {
        assert!(p.is_file(), "{} was not built", p.display());
    }
    let _stop = StopDaemon(home.clone());
    common::init_with_model(
        &home,
        &fixture.base_url(),
        "sk-chat-test",
        &distro,
        &[("HOME", user_home.path())],
    );

    let tui = Tmux::start(&home, &workspace, &["--session", "first"]);
    let screen = tui.wait_text("ready");
    assert!(screen.contains("new session first"), "{screen}");
    assert!(
        screen.contains("default · openai · gpt-4o-mini · session first"),
        "the status line names principal, provider, model and session:\n{screen}"
    );

    // A prompt that makes the model call a tool the workspace grant does not cover.
    tui.type_text("What does my note say?");
    tui.keys(&["Enter"]);
    let screen = tui.wait_text("Approval needed");
    assert!(
        screen.contains("approval requested by tool-fs"),
        "the dialog names the capsule:\n{screen}"
    );
    assert!(
        screen.contains(&note.display().to_string()),
        "the dialog names the exact resource:\n{screen}"
    );
    assert!(screen.contains("[d] Deny"), "{screen}");
    // tool-fs looks at the file before reading it: each effect is asked for on its own.
    let mut approved = 0;
    let screen = loop {
        let screen = tui.wait_for("an approval or the answer", |s| {
            s.contains("Approval needed") || s.contains("The note says")
        });
        if !screen.contains("Approval needed") {
            break screen;
        }
        approved += 1;
        assert!(approved <= 3, "asked too often:\n{screen}");
        tui.keys(&["o"]);
        tui.wait_for("the dialog to close", |s| {
            !s.contains("Approval needed") || s.contains("allowed once")
        });
    };
    let screen = if screen.contains("ready") {
        screen
    } else {
        tui.wait_text("ready")
    };
    assert!(screen.contains("allowed once: fs."), "{screen}");
    assert!(
        screen.contains("⚙ fs_read"),
        "the tool call is shown:\n{screen}"
    );
    assert!(
        screen.contains("✓ ok · 2 lines"),
        "with its result:\n{screen}"
    );
    assert!(
        screen.contains("The note says AURORA-7:"),
        "the answer, Markdown rendered:\n{screen}"
    );
    assert!(screen.contains("• first"), "a list item:\n{screen}");
    assert!(
        !screen.contains(SECRET_LINE),
        "a folded tool call hides its output:\n{screen}"
    );
    assert!(
        !screen.contains(" 0 in / 0 out tokens"),
        "tokens are counted:\n{screen}"
    );
    // Unfolded, the output is there.
    tui.keys(&["C-o"]);
    let screen = tui.wait_text(SECRET_LINE);
    assert!(screen.contains("┃ second line of the note"), "{screen}");
    tui.keys(&["C-o"]);

    // A new session; its turn is cancelled at the approval dialog with Ctrl-C.
    tui.type_text("/new second");
    tui.keys(&["Enter"]);
    tui.wait_text("new session second");
    tui.type_text("Read it again");
    tui.keys(&["Enter"]);
    tui.wait_text("Approval needed");
    tui.keys(&["C-c"]);
    let screen = tui.wait_for("the turn to end cancelled", |s| {
        s.contains("ready") && s.lines().any(|l| l.trim() == "cancelled")
    });
    assert!(screen.contains("cancelling the turn"), "{screen}");
    assert!(!screen.contains("Approval needed"), "{screen}");

    // The session picker: back to the first session, whose history comes back.
    tui.keys(&["C-s"]);
    let screen = tui.wait_text("Sessions");
    assert!(
        screen.contains("* second"),
        "the current one is marked:\n{screen}"
    );
    assert!(screen.contains("first"), "{screen}");
    // Newest first: `second` is on top and selected; `first` is below it.
    tui.keys(&["Down", "Enter"]);
    let screen = tui.wait_text("resumed first");
    assert!(
        screen.contains("The note says AURORA-7:"),
        "the resumed session shows its history:\n{screen}"
    );
    assert!(screen.contains("session first"), "{screen}");

    // A capsule's notice (astrid:uplink) appears in the transcript under the capsule's name.
    ok(
        astrid(&home, &["capsule", "install", probe.to_str().unwrap()]),
        "installing uplink-probe",
    );
    ok(
        astrid(&home, &["caps", "grant", "default", "uplink:frontends"]),
        "granting uplink:frontends",
    );
    let sent = emit(
        &home,
        r#"{"topic": "uplink-probe.v1.notify", "payload": "warning the build broke", "request": true}"#,
    )
    .wait();
    assert!(
        sent.contains("ok: 1"),
        "the chat is the one frontend: {sent}"
    );
    let screen = tui.wait_text("◆ uplink-probe · warning");
    assert!(screen.contains("  the build broke"), "{screen}");

    // A capsule's question (astrid:elicit) is asked on the screen and answered with a key.
    ok(
        astrid(&home, &["capsule", "install", asker.to_str().unwrap()]),
        "installing elicit-probe",
    );
    let asking = emit(
        &home,
        r#"{"topic": "elicit-probe.v1.choose", "payload": "0 Deploy which branch?|main|release", "request": true, "timeout_ms": 120000}"#,
    );
    let screen = tui.wait_text("Deploy which branch?");
    assert!(
        screen.contains("elicit-probe asks (its own words, not checked):"),
        "{screen}"
    );
    assert!(screen.contains("2. release"), "{screen}");
    tui.keys(&["2"]);
    tui.wait_text("answered a question from elicit-probe");
    let answered = asking.wait();
    assert!(
        answered.contains("ok: 1"),
        "the capsule got the choice: {answered}"
    );

    // Two Ctrl-C on an empty editor leave; the session is named on the way out.
    tui.keys(&["C-c"]);
    tui.wait_text("Ctrl-C again");
    tui.keys(&["C-c"]);
    let screen = tui.wait_text("EXITED");
    assert!(screen.contains("EXITED 0"), "{screen}");
    assert!(screen.contains("session: first ("), "{screen}");

    // The person's answers are in the signed chain as theirs.
    let audit = ok(astrid(&home, &["audit", "show", "--json"]), "audit show");
    let approvals: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|e: &serde_json::Value| {
            e["resource"]
                .as_str()
                .is_some_and(|r| r.contains(note.to_str().unwrap()))
        })
        .collect();
    assert!(
        approvals.iter().any(|e| e["decision"] == "allowed"),
        "{approvals:#?}"
    );
    assert!(
        approvals.iter().any(|e| e["decision"] == "denied"),
        "the cancelled turn's request was denied: {approvals:#?}"
    );
    ok(astrid(&home, &["audit", "verify"]), "audit verify");
}
