//! The describe handler `#[capsule]` generates from a manifest's `[[tool]]`s.

use astrid_sdk::prelude::*;
use astrid_sdk::tool::ToolDescription;

#[derive(Default)]
struct Described;

#[derive(Deserialize)]
struct GreetArgs {
    name: String,
}

#[capsule(manifest = "tests/fixtures/Capsule.toml")]
impl Described {
    #[astrid::tool]
    fn greet(&self, args: GreetArgs, ctx: &ToolContext) -> Result<serde_json::Value, CapsuleError> {
        Ok(serde_json::json!({ "output": format!("hello {} in {}", args.name, ctx.session) }))
    }
}

fn call(handler: &str, payload: &[u8]) -> Result<Option<Vec<u8>>, CapsuleError> {
    let event = Event {
        topic: "tool.v1.describe".into(),
        payload: payload.to_vec(),
        source: "capsule:agent".into(),
        principal: "me".into(),
    };
    Capsule::handle(&Described, handler, &event)
}

#[test]
fn describe_replies_with_the_manifest_tools_as_json() {
    let reply = call("astrid.describe-tools", b"{}").unwrap().unwrap();
    let tools: Vec<ToolDescription> = serde_json::from_slice(&reply).unwrap();
    assert_eq!(tools.len(), 2);
    assert_eq!(tools[0].name, "greet");
    assert_eq!(tools[0].description, "Greets someone by name.");
    assert_eq!(
        tools[0].input_schema,
        serde_json::json!({
            "type": "object",
            "properties": { "name": { "type": "string", "description": "Who" } },
            "required": ["name"]
        })
    );
    // A tool declared in the manifest is described even before it has a method.
    assert_eq!(tools[1].name, "count");
    assert_eq!(tools[1].input_schema["properties"]["n"]["minimum"], 0);
    // The payload is irrelevant; an empty one works too.
    assert_eq!(call("astrid.describe-tools", b"").unwrap().unwrap(), reply);
}

#[test]
fn tools_still_dispatch_next_to_the_describe_handler() {
    let reply = call(
        "greet",
        br#"{"args":{"name":"ada"},"context":{"session":"s1","workspace":null}}"#,
    )
    .unwrap()
    .unwrap();
    assert_eq!(reply, br#"{"output":"hello ada in s1"}"#);
}
