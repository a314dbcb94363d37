//! An added MCP server's tools in a full agent turn: the npm filesystem server added with
//! `astrid mcp add`, served by the bridge the daemon starts for the principal by itself,
//! called by the agent (scripted model on
//! `astrid-llm-fixture`) as `files__read_text_file`. The daemon's gate decides each call: no
//! token and nobody to approve is a refusal that never reaches the server; a
//! `tool:files.read_text_file` token lets it through; the sandbox (not the server) keeps a
//! file outside the granted directory out of reach. Each call is in the audit chain with a
//! digest of its arguments, and its outcome. The everything server, added with a secret and
//! `--allow-local-net`, gets the secret from the daemon at each start and fetches from the
//! one granted host through the forwarder and the airlock.
#![allow(
    clippy::disallowed_methods,
    reason = "tests drive real processes and sockets"
)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use astrid_llm_fixture::{Fixture, FixtureConfig, Recorded, Step};
use common::{astrid, build_distro, mcp_servers as servers, ok, StopDaemon};
use serde_json::{json, Value};

const NOTE: &str = "The harbour opens at dawn.";
const SECRET: &str = "never-for-the-model-4471";
/// The MCP secret the everything server gets as `API_KEY`.
const API_KEY: &str = "ek-5526-for-the-server";
/// Hang guard for the bridge to come up; nothing depends on how fast it does.
const BRIDGE_TIMEOUT: Duration = Duration::from_secs(120);

fn audit(home: &Path) -> Vec<Value> {
    ok(astrid(home, &["audit", "show", "--json"]), "audit show")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn completions(fixture: &Fixture) -> Vec<Recorded> {
    fixture
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/chat/completions"))
        .collect()
}

/// The tool message the model got back for its call, from the request after the call.
fn tool_result(req: &Recorded) -> String {
    req.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|m| m["role"] == "tool")
        .map(|m| m["content"].as_str().unwrap_or_default().to_string())
        .unwrap_or_else(|| panic!("no tool message in {}", req.body))
}

#[test]
fn the_agent_calls_an_added_mcp_server_through_the_daemons_gate() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let home = root.join("home");
    let notes = root.join("notes");
    let private = root.join("private");
    std::fs::create_dir_all(&notes).unwrap();
    std::fs::create_dir_all(&private).unwrap();
    let note = notes.join("harbour.txt");
    std::fs::write(&note, NOTE).unwrap();
    let secret = private.join("key.txt");
    std::fs::write(&secret, SECRET).unwrap();

    // The one host the everything server is granted (`--allow-local-net`): a listener
    // here, answering once.
    let page = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let page_port = page.local_addr().unwrap().port();
    let page_url = format!("http://localhost:{page_port}/page");

    let rt = tokio::runtime::Runtime::new().unwrap();
    let fixture = rt.block_on(async {
        Fixture::start(
            FixtureConfig {
                api_key: Some("sk-mcp-agent".into()),
                ..FixtureConfig::default()
            },
            vec![
                // Turn 1: no token, nobody approves.
                Step::tool_call("files__read_text_file", json!({"path": note})),
                Step::text("I could not read it."),
                // Turn 2: with a token.
                Step::tool_call("files__read_text_file", json!({"path": note})),
                Step::text("The note is about the harbour."),
                // Turn 3: the token covers the tool, the sandbox does not cover the file.
                Step::tool_call("files__read_text_file", json!({"path": secret})),
                Step::text("That file is out of reach."),
                // Turn 4: the everything server, given a secret, reports its environment.
                Step::tool_call("every__get-env", json!({})),
                Step::text("It has its key."),
                // Turn 5: it fetches from the one host it was granted.
                Step::tool_call(
                    "every__gzip-file-as-resource",
                    json!({"name": "page.gz", "data": page_url, "outputType": "resource"}),
                ),
                Step::text("Fetched and compressed."),
            ],
        )
        .await
        .unwrap()
    });

    let distro = build_distro(&root);
    let _stop = StopDaemon(home.clone());
    common::init_with_model(&home, &fixture.base_url(), "sk-mcp-agent", &distro, &[]);

    // The server is told `/` is its root; the sandbox shows it only `notes`.
    let fs_server = servers().join(".bin/mcp-server-filesystem");
    let added = ok(
        astrid(
            &home,
            &[
                "mcp",
                "add",
                "files",
                "--allow-read",
                notes.to_str().unwrap(),
                "--",
                fs_server.to_str().unwrap(),
                "/",
            ],
        ),
        "mcp add",
    );
    assert!(added.contains("files.read_text_file"), "{added}");

    // Nobody runs `astrid mcp bridge`: the daemon notices the principal's first server and
    // starts its bridge (and would restart it), which serves the server's tools.
    let deadline = Instant::now() + BRIDGE_TIMEOUT;
    while !audit(&home).iter().any(|e| {
        e["action"] == "tool.serve"
            && e["outcome"]
                .as_str()
                .is_some_and(|o| o.contains("read_text_file"))
    }) {
        assert!(
            Instant::now() < deadline,
            "the bridge never served its tools"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let prompt = |text: &str| astrid(&home, &["-p", text, "--workspace", root.to_str().unwrap()]);

    // Turn 1: the model sees the tool; no token covers it and `-p` without --yes approves
    // nothing, so the call never reaches the server.
    ok(prompt("What does the harbour note say?"), "turn 1");
    let reqs = completions(&fixture);
    let tools: Vec<&str> = reqs[0].body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["function"]["name"].as_str())
        .collect();
    assert!(tools.contains(&"files__read_text_file"), "{tools:?}");
    let refused = tool_result(&reqs[1]);
    assert!(refused.contains("denied"), "{refused}");
    assert!(!refused.contains(NOTE), "{refused}");
    let entries = audit(&home);
    let asked: Vec<&Value> = entries
        .iter()
        .filter(|e| e["resource"] == "tool:files.read_text_file")
        .collect();
    assert!(
        asked.iter().any(|e| e["decision"] == "rejected"),
        "the refusal is on the record: {asked:#?}"
    );
    assert!(
        asked.iter().any(|e| e["outcome"]
            .as_str()
            .is_some_and(|o| o.contains("arguments blake3:"))),
        "with a digest of the arguments: {asked:#?}"
    );
    assert!(
        !asked.iter().any(|e| e["action"] == "tool.result"),
        "nothing ran: {asked:#?}"
    );

    // Turn 2: a token for exactly this tool.
    ok(
        astrid(
            &home,
            &["caps", "grant", "default", "tool:files.read_text_file"],
        ),
        "caps grant",
    );
    ok(prompt("And now?"), "turn 2");
    let reqs = completions(&fixture);
    let read = tool_result(&reqs[3]);
    assert!(read.contains(NOTE), "{read}");
    let entries = audit(&home);
    let call = entries
        .iter()
        .rfind(|e| e["action"] == "tool.call" && e["decision"] == "allowed")
        .unwrap_or_else(|| panic!("no allowed call: {entries:#?}"));
    assert_eq!(call["resource"], "tool:files.read_text_file");
    let outcome = call["outcome"].as_str().unwrap();
    assert!(outcome.contains("capability token"), "{outcome}");
    assert!(outcome.contains("agent"), "names who asked: {outcome}");
    let result = entries
        .iter()
        .rfind(|e| e["action"] == "tool.result")
        .unwrap();
    assert!(
        result["outcome"].as_str().unwrap().starts_with("ok"),
        "{result}"
    );

    // Turn 3: the token opens the tool, not the machine: the file outside the grant does
    // not exist inside the server's sandbox.
    ok(prompt("Read the key file."), "turn 3");
    let reqs = completions(&fixture);
    let out_of_reach = tool_result(&reqs[5]);
    assert!(!out_of_reach.contains(SECRET), "{out_of_reach}");
    assert!(
        fixture
            .requests()
            .iter()
            .all(|r| !r.body.to_string().contains(SECRET)),
        "the secret never reached the model"
    );
    let entries = audit(&home);
    let last = entries
        .iter()
        .rfind(|e| e["action"] == "tool.result")
        .unwrap();
    assert!(
        last["outcome"].as_str().unwrap().starts_with("failed"),
        "the server's own error is the outcome: {last}"
    );

    // Turn 4: a server added with `--secret` gets the value in its environment at each
    // start, from the daemon; the record holds only the names.
    let mut set = std::process::Command::new(env!("CARGO_BIN_EXE_astrid"))
        .arg("--home")
        .arg(&home)
        .args(["mcp", "secret", "set", "every-key"])
        .env("ASTRID_DAEMON", common::daemon_exe())
        .env_remove("ASTRID_PRINCIPAL")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    set.stdin
        .take()
        .unwrap()
        .write_all(format!("{API_KEY}\n").as_bytes())
        .unwrap();
    ok(set.wait_with_output().unwrap(), "mcp secret set");
    let every = servers().join(".bin/mcp-server-everything");
    ok(
        astrid(
            &home,
            &[
                "mcp",
                "add",
                "every",
                "--secret",
                "API_KEY=every-key",
                "--allow-local-net",
                &format!("localhost:{page_port}"),
                "--",
                every.to_str().unwrap(),
            ],
        ),
        "mcp add every",
    );
    let record = std::fs::read_to_string(home.join("mcp/default/every.json")).unwrap();
    assert!(
        record.contains("every-key") && !record.contains(API_KEY),
        "{record}"
    );
    let listed = ok(astrid(&home, &["mcp", "secret", "list"]), "mcp secret list");
    assert_eq!(listed.trim(), "every-key");
    ok(
        astrid(&home, &["caps", "grant", "default", "tool:every.get-env"]),
        "caps grant",
    );
    ok(prompt("What is in its environment?"), "turn 4");
    let reqs = completions(&fixture);
    let env = tool_result(&reqs[7]);
    assert!(env.contains(API_KEY), "{env}");
    let entries = audit(&home);
    assert!(
        entries.iter().any(|e| e["action"] == "control.mcp-launch"
            && e["resource"]
                == format!(
                    "mcp:every secrets:[API_KEY=every-key] net:[local:localhost:{page_port}]"
                )
            && e["decision"] == "allowed"),
        "each start's grant is on the record"
    );
    assert!(
        entries.iter().all(|e| !e.to_string().contains(API_KEY)),
        "the value is not"
    );

    // Turn 5: the server's own fetch leaves its sandbox only through the forwarder and the
    // airlock, to the granted host and port.
    let answered = std::thread::spawn(move || {
        use std::io::{BufRead as _, BufReader};
        let (mut conn, _) = page.accept().unwrap();
        let mut head = String::new();
        let mut reader = BufReader::new(conn.try_clone().unwrap());
        while reader.read_line(&mut head).unwrap() > 0 && !head.ends_with("\r\n\r\n") {}
        conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\nconnection: close\r\n\r\npage")
            .unwrap();
        head
    });
    ok(
        astrid(
            &home,
            &[
                "caps",
                "grant",
                "default",
                "tool:every.gzip-file-as-resource",
            ],
        ),
        "caps grant",
    );
    ok(prompt("Fetch the page."), "turn 5");
    let head = answered.join().unwrap();
    assert!(head.starts_with("GET /page HTTP/1.1\r\n"), "{head}");
    let reqs = completions(&fixture);
    let fetched = tool_result(&reqs[9]);
    // The compressed page comes back as an embedded resource (named, not inlined, for the
    // model); a failed fetch would be the server's error text.
    assert_eq!(fetched, "[resource]");
    // The bridge reported the connection; the daemon put it in the principal's chain.
    let target = format!("net:connect:localhost:{page_port}");
    let reported = |entries: &[Value]| {
        entries.iter().any(|e| {
            e["action"] == "mcp.connect"
                && e["capsule"] == "mcp:every"
                && e["resource"] == target.as_str()
                && e["decision"] == "allowed"
        })
    };
    // Sent by the bridge as the connection is carried, so it may trail the turn's answer.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !reported(&audit(&home)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(reported(&audit(&home)), "{:#?}", audit(&home));
    ok(astrid(&home, &["audit", "verify"]), "audit verify");
}
