//! Approvals answered by the MCP host's user: when the client of `astrid mcp serve` declared
//! form elicitation, the server registers as an approver of its principal and puts each
//! approval request to that user as an `elicitation/create` form with one choice.
//!
//! What the form offers is narrower than a terminal prompt: allow-once, allow-session or
//! deny. Allow-always would mint a lasting token from a form drawn by a host Astrid does not
//! control, so it is not offered (and the kernel caps an MCP client's answer at
//! allow-session whatever it says). Declining, cancelling, an error or an answer outside the
//! choices is a deny; no answer at all lets the kernel's own wait run out, which is a deny too.
//!
//! Capsules' own questions (`astrid:elicit`) go the same way: the server also registers to
//! answer them, and each becomes a form with one field, a line of text or one of the
//! capsule's options. Anything but an accepted, fitting answer is a refusal to answer.
//!
//! On protocol 2026-07-28 the same forms travel inside the tool call instead (`rounds`).

use std::time::Duration;

use astrid_client::{ApprovalStream, Client, ElicitStream};
use astrid_types::elicit::{ElicitAnswer, ElicitKind, ElicitRequest, MAX_ANSWER_BYTES};
use astrid_types::text::escape_controls;
use astrid_types::wire::{AnsweredBy, ApprovalDecision, ApprovalRequest};
use rmcp::model::{
    ElicitRequestParams, ElicitResult, ElicitationAction, ElicitationSchema, EnumSchema,
    ProtocolVersion,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::Peer;

/// The kernel waits this long for a person (`astrid_sandbox::APPROVAL_WAIT`); a form still
/// open after that would answer a question nobody is waiting on.
pub(crate) const FORM_WAIT: Duration = Duration::from_secs(300);
/// The one field of the form.
const FIELD: &str = "decision";
/// The one field of a capsule's question.
const ANSWER: &str = "answer";
/// What the form offers, with the title each choice is shown as.
const CHOICES: [(ApprovalDecision, &str); 3] = [
    (ApprovalDecision::AllowOnce, "Allow once"),
    (
        ApprovalDecision::AllowSession,
        "Allow until the Astrid daemon stops",
    ),
    (ApprovalDecision::Deny, "Deny"),
];

/// How approvals can be put to the client of this request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Asking {
    /// It did not declare form elicitation: nobody is asked here.
    No,
    /// Server-to-client `elicitation/create` requests (protocols before 2026-07-28).
    Requests,
    /// `InputRequiredResult` rounds within the call (2026-07-28, which has no
    /// server-to-client requests; see `rounds`).
    Rounds,
}

/// How this request's client can be asked: from the request's own metadata on 2026-07-28,
/// from the handshake before it.
pub(crate) fn asking(context: &RequestContext<RoleServer>) -> Asking {
    let form = context
        .client_capabilities()
        .and_then(|c| c.elicitation)
        // A capability naming neither mode means form (the older spelling).
        .is_some_and(|e| e.form.is_some() || e.url.is_none());
    match context.protocol_version() {
        _ if !form => Asking::No,
        Some(v) if v >= ProtocolVersion::V_2026_07_28 => Asking::Rounds,
        Some(_) => Asking::Requests,
        None => Asking::No,
    }
}

/// Registers `client` as an approver and answers each request through `peer`'s user until
/// either side goes away. Returns once the registration is in effect.
pub(crate) async fn start(
    client: Client,
    peer: Peer<RoleServer>,
) -> Result<(), astrid_client::ClientError> {
    let approvals = client.register_approver().await?;
    // Not for secrets: the MCP specification forbids asking for sensitive data in a form,
    // and the host would see the value.
    let questions = client.register_elicitor(false).await?;
    tokio::spawn(answer_all(approvals, client.clone(), peer.clone()));
    tokio::spawn(answer_questions(questions, client, peer));
    Ok(())
}

async fn answer_questions(mut questions: ElicitStream, client: Client, peer: Peer<RoleServer>) {
    while let Some(q) = questions.next().await {
        if matches!(q.kind, ElicitKind::Secret { .. }) {
            // Never sent to a connection that did not register for secrets; refused if it is.
            let _ = client
                .answer_elicitation(q.id, ElicitAnswer::Declined)
                .await;
            continue;
        }
        let (client, peer) = (client.clone(), peer.clone());
        tokio::spawn(async move {
            let params = question_form(&q);
            let wait = Duration::from_millis(u64::from(q.timeout_ms)).min(FORM_WAIT);
            let answer = match peer
                .create_elicitation_with_timeout(params, Some(wait))
                .await
            {
                Ok(result) => answer_of(&q.kind, &result),
                Err(e) => {
                    // No answer: the capsule hears that nobody answered in time.
                    tracing::warn!(id = q.id, "the MCP client did not answer the question: {e}");
                    return;
                }
            };
            let _ = client.answer_elicitation(q.id, answer).await;
        });
    }
}

/// The form a capsule's question is put as.
pub(crate) fn question_form(q: &ElicitRequest) -> ElicitRequestParams {
    ElicitRequestParams::FormElicitationParams {
        meta: None,
        message: question_message(q),
        requested_schema: question_schema(&q.kind),
    }
}

/// A capsule's question, its words marked as its own.
fn question_message(q: &ElicitRequest) -> String {
    let q = q.escaped();
    format!(
        "Astrid: capsule {} asks (its own words, not checked):\n{}",
        q.capsule, q.prompt
    )
}

fn question_schema(kind: &ElicitKind) -> ElicitationSchema {
    let builder = ElicitationSchema::builder();
    let builder = match kind {
        ElicitKind::Text | ElicitKind::Secret { .. } => builder
            .required_string_property(ANSWER, |s| {
                s.title("Answer").max_length(MAX_ANSWER_BYTES as u32)
            }),
        ElicitKind::Choice { options } => {
            let values = (0..options.len()).map(|i| i.to_string()).collect();
            let titles = options.iter().map(|o| escape_controls(o)).collect();
            let choice = EnumSchema::builder(values)
                .title("Answer")
                .enum_titles(titles)
                .expect("one title per option")
                .build();
            builder.required_enum_schema(ANSWER, choice)
        }
    };
    builder.build().expect("a one-field object schema is valid")
}

/// Only an accepted form whose field fits the question answers it; anything else declines.
pub(crate) fn answer_of(kind: &ElicitKind, result: &ElicitResult) -> ElicitAnswer {
    if result.action != ElicitationAction::Accept {
        return ElicitAnswer::Declined;
    }
    let field = result.content.as_ref().and_then(|c| c.get(ANSWER));
    let answer = match (kind, field.and_then(|v| v.as_str())) {
        (ElicitKind::Text, Some(t)) => ElicitAnswer::Text(t.to_string()),
        (ElicitKind::Choice { .. }, Some(i)) => match i.parse() {
            Ok(i) => ElicitAnswer::Choice(i),
            Err(_) => ElicitAnswer::Declined,
        },
        _ => ElicitAnswer::Declined,
    };
    match kind.accepts(&answer) {
        Ok(()) => answer,
        Err(_) => ElicitAnswer::Declined,
    }
}

async fn answer_all(mut approvals: ApprovalStream, client: Client, peer: Peer<RoleServer>) {
    while let Some(req) = approvals.next().await {
        // Each form on its own task: one unanswered form must not hold up the next request.
        let (client, peer) = (client.clone(), peer.clone());
        tokio::spawn(async move {
            let decision = ask(&peer, &req).await;
            tracing::info!(
                id = req.id, capsule = %req.capsule, action = %req.action,
                resource = %req.resource.pattern(), decision = decision.as_str(),
                "approval answered through MCP elicitation"
            );
            let _ = client
                .answer_approval_by(req.id, decision, AnsweredBy::McpClient)
                .await;
        });
    }
}

/// The form an approval request is put as.
pub(crate) fn approval_form(req: &ApprovalRequest) -> ElicitRequestParams {
    ElicitRequestParams::FormElicitationParams {
        meta: None,
        message: message(req),
        requested_schema: schema(),
    }
}

async fn ask(peer: &Peer<RoleServer>, req: &ApprovalRequest) -> ApprovalDecision {
    let params = approval_form(req);
    match peer
        .create_elicitation_with_timeout(params, Some(FORM_WAIT))
        .await
    {
        Ok(result) => decision_of(&result),
        Err(e) => {
            tracing::warn!(id = req.id, "the MCP client did not answer the form: {e}");
            ApprovalDecision::Deny
        }
    }
}

/// The form's text: the kernel's rendering of the request (escaped, the capsule's words
/// marked as its own), then what each answer does.
fn message(req: &ApprovalRequest) -> String {
    format!(
        "Astrid: a capsule needs your approval.\n{}\n\nAllow once, allow until the Astrid \
         daemon stops, or deny. A lasting grant is not offered here: use \
         `astrid caps grant` for that.",
        req.describe()
    )
}

fn schema() -> ElicitationSchema {
    let values = CHOICES
        .iter()
        .map(|(d, _)| d.as_str().to_string())
        .collect();
    let titles = CHOICES.iter().map(|(_, t)| (*t).to_string()).collect();
    let choice = EnumSchema::builder(values)
        .title("Decision")
        .enum_titles(titles)
        .expect("one title per choice")
        .build();
    ElicitationSchema::builder()
        .required_enum_schema(FIELD, choice)
        .build()
        .expect("a one-field object schema is valid")
}

/// Only an accepted form naming one of the offered choices allows anything.
pub(crate) fn decision_of(result: &ElicitResult) -> ApprovalDecision {
    if result.action != ElicitationAction::Accept {
        return ApprovalDecision::Deny;
    }
    let chosen = result
        .content
        .as_ref()
        .and_then(|c| c.get(FIELD))
        .and_then(|v| v.as_str());
    CHOICES
        .iter()
        .map(|(d, _)| *d)
        .find(|d| Some(d.as_str()) == chosen)
        .unwrap_or(ApprovalDecision::Deny)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answered(action: ElicitationAction, content: Option<serde_json::Value>) -> ElicitResult {
        let mut r = ElicitResult::new(action);
        r.content = content;
        r
    }

    #[test]
    fn only_an_accepted_offered_choice_allows() {
        let accept = |v| answered(ElicitationAction::Accept, Some(json!({ FIELD: v })));
        assert_eq!(
            decision_of(&accept("allow-once")),
            ApprovalDecision::AllowOnce
        );
        assert_eq!(
            decision_of(&accept("allow-session")),
            ApprovalDecision::AllowSession
        );
        // Not offered, so not taken: a lasting token never comes from a form.
        assert_eq!(decision_of(&accept("allow-always")), ApprovalDecision::Deny);
        assert_eq!(decision_of(&accept("yes")), ApprovalDecision::Deny);
        assert_eq!(
            decision_of(&answered(ElicitationAction::Accept, None)),
            ApprovalDecision::Deny
        );
        for action in [ElicitationAction::Decline, ElicitationAction::Cancel] {
            let r = answered(action, Some(json!({ FIELD: "allow-once" })));
            assert_eq!(decision_of(&r), ApprovalDecision::Deny);
        }
    }

    #[test]
    fn a_question_takes_only_an_accepted_fitting_answer() {
        let choice = ElicitKind::Choice {
            options: vec!["main".into(), "release".into()],
        };
        let accept = |v| answered(ElicitationAction::Accept, Some(json!({ ANSWER: v })));
        assert_eq!(answer_of(&choice, &accept("1")), ElicitAnswer::Choice(1));
        assert_eq!(answer_of(&choice, &accept("2")), ElicitAnswer::Declined);
        assert_eq!(answer_of(&choice, &accept("main")), ElicitAnswer::Declined);
        assert_eq!(
            answer_of(&ElicitKind::Text, &accept("release-7")),
            ElicitAnswer::Text("release-7".into())
        );
        assert_eq!(
            answer_of(&ElicitKind::Text, &accept("two\nlines")),
            ElicitAnswer::Declined
        );
        let declined = answered(ElicitationAction::Decline, Some(json!({ ANSWER: "1" })));
        assert_eq!(answer_of(&choice, &declined), ElicitAnswer::Declined);
        let schema = serde_json::to_value(question_schema(&choice)).unwrap();
        assert_eq!(schema["required"], json!([ANSWER]), "{schema}");
    }

    #[test]
    fn the_form_offers_exactly_the_three_choices() {
        let schema = serde_json::to_value(schema()).unwrap();
        assert_eq!(schema["required"], json!([FIELD]));
        let field = &schema["properties"][FIELD];
        let values: Vec<&str> = field["oneOf"]
            .as_array()
            .map(|o| o.iter().map(|c| c["const"].as_str().unwrap()).collect())
            .unwrap_or_else(|| {
                field["enum"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap())
                    .collect()
            });
        assert_eq!(values, ["allow-once", "allow-session", "deny"], "{schema}");
    }
}
