//! `fsprobe`: runs one file operation per event and reports the typed result, so host-side
//! tests can see exactly which `astrid:fs` error came back.
#![forbid(unsafe_code)]

use astrid_sdk::prelude::*;
use serde_json::{json, Value};

#[derive(Default)]
struct FsProbe;

#[derive(Deserialize)]
struct Op {
    op: String,
    path: String,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    data: Option<String>,
    /// For `mkdir` and `remove`.
    #[serde(default)]
    recursive: bool,
}

/// Runs the operation; `Ok(Err(..))` is a file-system error to report, `Err` a bad request.
fn run(op: &Op) -> Result<Result<Value, FsError>, CapsuleError> {
    let path = op.path.as_str();
    let data = op.data.as_deref().unwrap_or("");
    Ok(match op.op.as_str() {
        "read" => fs::read(path).map(|b| Value::String(String::from_utf8_lossy(&b).into_owned())),
        "write" => fs::write(path, data).map(|()| Value::Bool(true)),
        "append" => fs::append(path, data).map(|()| Value::Bool(true)),
        "list" => fs::read_dir(path).map(|mut entries| {
            entries.sort_by(|a, b| a.name.cmp(&b.name));
            json!(entries)
        }),
        "stat" => fs::metadata(path).map(|m| json!(m)),
        "mkdir" if op.recursive => fs::create_dir_all(path).map(|()| Value::Bool(true)),
        "mkdir" => fs::create_dir(path).map(|()| Value::Bool(true)),
        "remove" if op.recursive => fs::remove_dir_all(path).map(|()| Value::Bool(true)),
        "remove" => fs::remove_file(path).map(|()| Value::Bool(true)),
        "rename" => {
            let to = op
                .to
                .as_deref()
                .ok_or_else(|| CapsuleError::invalid("rename needs \"to\""))?;
            fs::rename(path, to).map(|()| Value::Bool(true))
        }
        other => return Err(CapsuleError::invalid(format!("unknown op {other:?}"))),
    })
}

#[capsule]
impl FsProbe {
    /// Replies `{"ok": value}` or `{"err": "<error-code variant>: <message>"}`.
    #[astrid::handler]
    fn op(&self, event: &Event) -> Result<Option<Vec<u8>>, CapsuleError> {
        let op: Op = event.json()?;
        let reply = match run(&op)? {
            Ok(value) => json!({ "ok": value }),
            Err(e) => json!({ "err": e.to_string() }),
        };
        Ok(Some(serde_json::to_vec(&reply)?))
    }
}
