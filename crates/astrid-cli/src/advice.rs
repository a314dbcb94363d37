//! What to do about a refusal, in the style of `astrid doctor`: the turn errors and tool
//! failures a user meets in chat (an approval denied, a quota hit, the provider down, a model
//! missing) come from capsules and the kernel, which cannot know the CLI's commands; this
//! names the command that fixes each. Messages that already name one are left alone.

/// The fix for `message`, or `None` when there is nothing to add.
pub fn advise(message: &str, principal: &str) -> Option<String> {
    if message.contains("`astrid ") {
        return None;
    }
    if message.contains("the approval request was denied") {
        let grant = match quoted_after(message, "no capability token covers `") {
            Some(resource) => format!("astrid caps grant {principal} '{resource}'"),
            None => format!("astrid caps grant {principal} PATTERN"),
        };
        return Some(format!(
            "it was denied; to let it happen without being asked, grant it: `{grant}` (or \
             answer Allow always next time; `astrid caps revoke` takes it back)"
        ));
    }
    if let Some(flag) = quota_flag(message) {
        return Some(format!(
            "a quota of `{principal}` stopped it; `astrid quota show -a {principal}` shows the \
             limits and the use, `astrid quota set -a {principal} {flag}` raises it (it \
             replaces the whole quota: repeat the limits to keep)"
        ));
    }
    if message.contains("could not reach ") || message.contains("no answer from ") {
        return Some(
            "the model provider is not answering: `astrid doctor` checks it; a local model \
             starts with `./scripts/local-model.sh start`, another address is set with \
             `astrid init --base-url URL`"
                .to_string(),
        );
    }
    if message.contains("model `") && message.contains("not found") {
        return Some(
            "`astrid models` lists the provider's models; `astrid config set registry model \
             NAME` selects one (or run `astrid init` again)"
                .to_string(),
        );
    }
    if message.contains("was refused:") && message.contains("consent") {
        return Some(
            "`astrid egress show` lists the local addresses capsules may reach; `astrid egress \
             allow CAPSULE HOST:PORT` adds one"
                .to_string(),
        );
    }
    None
}

/// The quota setting that covers a quota refusal, as the `quota set` flag to raise it.
fn quota_flag(message: &str) -> Option<&'static str> {
    if message.contains("storage quota") {
        Some("--storage 1GB")
    } else if message.contains("concurrency quota") {
        Some("--concurrency 16")
    } else if message.contains("exceeded its memory limit") {
        Some("--memory 512MB")
    } else if message.contains("deadline and was stopped") {
        Some("--time 2m")
    } else if message.contains("quota-exceeded") {
        Some("--storage SIZE --concurrency N …")
    } else {
        None
    }
}

/// The text between `prefix` and the next backtick.
fn quoted_after<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    let start = message.find(prefix)? + prefix.len();
    let len = message[start..].find('`')?;
    Some(&message[start..start + len])
}

#[cfg(test)]
mod tests {
    use super::*;

    // The messages are the ones the kernel, the sandbox and the provider capsules write.

    #[test]
    fn a_denied_approval_names_the_grant_for_the_exact_resource() {
        let msg = "no capability token covers `fs:read:/home/ada/notes.txt`, and the approval \
                   request was denied";
        let advice = advise(msg, "ada").unwrap();
        assert!(
            advice.contains("`astrid caps grant ada 'fs:read:/home/ada/notes.txt'`"),
            "{advice}"
        );
    }

    #[test]
    fn each_quota_names_its_own_setting() {
        for (msg, flag) in [
            (
                "quota-exceeded: storage quota of 1024 bytes would be exceeded (1000 bytes \
                 used, this write needs 100 more)",
                "--storage",
            ),
            (
                "quota-exceeded: principal `bob` has 8 invocations running and 32 waiting \
                 (concurrency quota 8)",
                "--concurrency",
            ),
            (
                "capsule `agent` exceeded its memory limit of 1048576 bytes and was stopped",
                "--memory",
            ),
            (
                "capsule `agent` ran past its 5000 ms deadline and was stopped",
                "--time",
            ),
        ] {
            let advice = advise(msg, "bob").unwrap();
            assert!(
                advice.contains(&format!("astrid quota set -a bob {flag}")),
                "{msg}: {advice}"
            );
        }
    }

    #[test]
    fn a_provider_that_is_down_or_a_missing_model_names_the_fix() {
        let down = "could not reach http://127.0.0.1:8091/v1/chat/completions: connection refused";
        assert!(advise(down, "default").unwrap().contains("astrid doctor"));
        let slow = "no answer from http://127.0.0.1:8091/v1/chat/completions within 300 s";
        assert!(advise(slow, "default").unwrap().contains("astrid doctor"));
        let missing = "model `qwen-9b` not found (404); available: qwen2.5-coder-0.5b";
        let advice = advise(missing, "default").unwrap();
        assert!(
            advice.contains("astrid config set registry model NAME"),
            "{advice}"
        );
        let local = "the request to http://127.0.0.1:9/v1/models was refused: plain http to \
                     127.0.0.1:9 is not allowed: https only, unless the operator consented to \
                     this local target";
        let advice = advise(local, "default").unwrap();
        assert!(advice.contains("astrid egress allow"), "{advice}");
    }

    #[test]
    fn messages_that_already_say_what_to_do_are_left_alone() {
        let msg = "the provider rejected the API key (401): bad key; store a valid key with \
                   `astrid init`";
        assert_eq!(advise(msg, "default"), None);
        assert_eq!(
            advise("offset 10 is past the end of the file", "default"),
            None
        );
    }
}
