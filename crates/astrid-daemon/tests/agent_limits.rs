//! Subprocess resource limits in whole agent turns: a fork bomb, a memory bomb and a disk
//! filler run through the `shell` tool are each stopped by their limit, the model is told which
//! one in an error result, and the next command in the same turn runs normally on the same
//! daemon. The limits come from `config.toml` `[process]` (smaller than the defaults, so the
//! memory bomb and the filler stay small on a shared machine).

mod common;

use astrid_llm_fixture::{ScriptedCall, Step};
use astrid_types::wire::ApprovalDecision;
use common::agent::{openai_calls, openai_tool_result, Approver, Provider, Rig};
use serde_json::json;

const CONFIG: &str = "[process]\nmax_processes = 64\nmemory_mb = 256\nfile_size_mb = 16\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bombs_are_stopped_by_their_limits_and_the_model_is_told() {
    let rig = Rig::start_configured(Provider::OpenAi, CONFIG).await;
    let bombs = [
        ("bomb() { bomb | bomb & }; bomb; sleep 600", "processes"),
        ("head -c 4G /dev/zero | tail", "memory"),
        ("yes > filler.txt", "file-size"),
    ];
    rig.fixture.push(Step::Reply {
        text: String::new(),
        tool_calls: bombs
            .iter()
            .map(|(c, _)| ScriptedCall::new("shell", json!({ "command": c })))
            .collect(),
    });
    rig.fixture.push(Step::tool_call(
        "shell",
        json!({"command": "echo still-serving"}),
    ));
    rig.fixture.push(Step::text("Contained."));
    let _approver = Approver::start(&rig.daemon, ApprovalDecision::AllowOnce).await;

    let t = rig.turn(None, "Stress the machine.").await;
    let reply = t.ok();
    assert_eq!(reply["answer"], "Contained.");
    assert_eq!(
        reply["tool_calls"],
        json!([{"name": "shell", "ok": false}, {"name": "shell", "ok": false},
               {"name": "shell", "ok": false}, {"name": "shell", "ok": true}])
    );

    let reqs = rig.model_requests();
    assert_eq!(reqs.len(), 3, "{reqs:?}");
    let calls = openai_calls(&reqs[1]);
    for ((id, _, _), (_, limit)) in calls.iter().zip(bombs) {
        let told = openai_tool_result(&reqs[1], id);
        assert!(told.starts_with("error: "), "not an error result: {told}");
        assert!(
            told.contains(&format!("stopped by a sandbox limit: {limit}: ")),
            "{limit} not named: {told}"
        );
    }
    let filler = std::fs::metadata(rig.workspace.join("filler.txt")).unwrap();
    assert_eq!(filler.len(), 16 << 20, "the file stopped at the limit");

    // The next call, on the same daemon, runs as usual.
    let calls = openai_calls(&reqs[2]);
    let told = openai_tool_result(&reqs[2], &calls.last().unwrap().0);
    assert!(
        told.starts_with("exit code: 0") && told.contains("still-serving"),
        "{told}"
    );
}
