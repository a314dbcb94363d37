//! The parts of `astrid chat` that decide rather than do: what a typed line means, how an
//! approval request is asked and answered, and what is shown. No I/O here.

use std::collections::VecDeque;

use astrid_types::wire::{AnsweredBy, ApprovalDecision, ApprovalRequest};

use super::turn::SessionInfo;
use crate::approval_view::{approval_line, describe_approval};
use crate::output::table;

pub const HELP: &str = "\
commands:
  /sessions          list sessions, newest first
  /resume <id|name>  continue another session
  /new [name]        start a new session
  /help              this text
  /quit              leave (Ctrl-D too)
Ctrl-C cancels a running turn; anything else you type is sent to the agent.";

pub const APPROVAL_QUESTION: &str = "allow? [o]nce / [s]ession / [a]lways / [d]eny: ";

/// What a line typed at the `you> ` prompt asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatLine {
    Prompt(String),
    Sessions,
    Resume(String),
    New(Option<String>),
    Help,
    Quit,
    Empty,
    /// A slash command used wrongly or unknown; the text says why.
    Invalid(String),
}

pub fn parse_line(line: &str) -> ChatLine {
    let text = line.trim();
    if text.is_empty() {
        return ChatLine::Empty;
    }
    // `//x` sends a prompt that starts with a slash.
    if let Some(rest) = text.strip_prefix("//") {
        return ChatLine::Prompt(format!("/{rest}"));
    }
    let Some(command) = text.strip_prefix('/') else {
        return ChatLine::Prompt(text.to_string());
    };
    let mut words = command.split_whitespace();
    let name = words.next().unwrap_or("");
    let args: Vec<&str> = words.collect();
    match (name, args.as_slice()) {
        ("sessions", []) => ChatLine::Sessions,
        ("resume", [target]) => ChatLine::Resume((*target).to_string()),
        ("resume", _) => ChatLine::Invalid("usage: /resume <id|name>".into()),
        ("new", []) => ChatLine::New(None),
        ("new", [name]) => ChatLine::New(Some((*name).to_string())),
        ("new", _) => ChatLine::Invalid("usage: /new [name]".into()),
        ("help" | "?", _) => ChatLine::Help,
        ("quit" | "exit" | "q", _) => ChatLine::Quit,
        _ => ChatLine::Invalid(format!(
            "unknown command /{name} (/help lists them; start with // to send a slash)"
        )),
    }
}

/// `o`/`once`, `s`/`session`, `a`/`always`, `d`/`deny`/`n`/`no`, any case.
pub fn parse_approval_answer(answer: &str) -> Option<ApprovalDecision> {
    match answer.trim().to_ascii_lowercase().as_str() {
        "o" | "once" | "y" | "yes" => Some(ApprovalDecision::AllowOnce),
        "s" | "session" => Some(ApprovalDecision::AllowSession),
        "a" | "always" => Some(ApprovalDecision::AllowAlways),
        "d" | "deny" | "n" | "no" => Some(ApprovalDecision::Deny),
        _ => None,
    }
}

/// What the UI should do after an approval request or a typed line.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reaction {
    /// Lines to print, each without its newline.
    pub show: Vec<String>,
    /// Print the approval question and wait for a line.
    pub ask: bool,
    /// The answer to send to the daemon.
    pub answer: Option<(u64, ApprovalDecision)>,
    /// The line was no answer (no question was open): it waits for the `you> ` prompt.
    pub queued: bool,
}

/// Approval requests wait here, oldest first, and are asked one at a time. Lines that arrive
/// while no question is open are kept, in order, for the `you> ` prompt; with piped input
/// (`replay`) they also answer the questions that come up, as a script would expect.
#[derive(Debug, Default)]
pub struct Approvals {
    yes: bool,
    replay: bool,
    waiting: VecDeque<ApprovalRequest>,
    typed_ahead: VecDeque<String>,
}

impl Approvals {
    /// With `yes`, every request is answered "once" without asking. With `replay`, a
    /// question is answered by the oldest line read ahead, if there is one.
    pub fn new(yes: bool, replay: bool) -> Self {
        Approvals {
            yes,
            replay,
            ..Approvals::default()
        }
    }

    /// With `--yes` nobody reads the prompts: the daemon records the answers as automatic.
    pub fn answered_by(&self) -> AnsweredBy {
        if self.yes {
            AnsweredBy::AutoYes
        } else {
            AnsweredBy::Person
        }
    }

    pub fn asking(&self) -> bool {
        !self.waiting.is_empty()
    }

    pub fn arrived(&mut self, req: ApprovalRequest) -> Reaction {
        if self.yes {
            return Reaction {
                show: vec![format!("approved once (--yes): {}", approval_line(&req))],
                ask: false,
                answer: Some((req.id, ApprovalDecision::AllowOnce)),
                queued: false,
            };
        }
        self.waiting.push_back(req);
        if self.waiting.len() > 1 {
            return Reaction::default();
        }
        let mut r = self.ask_front();
        while self.replay && r.ask && r.answer.is_none() {
            let Some(line) = self.typed_ahead.pop_front() else {
                break;
            };
            r.show.push(format!("{APPROVAL_QUESTION}{line}"));
            let mut next = self.line(line);
            r.show.append(&mut next.show);
            r.ask = next.ask;
            r.answer = next.answer;
        }
        r
    }

    pub fn line(&mut self, line: String) -> Reaction {
        let Some(front) = self.waiting.front() else {
            self.typed_ahead.push_back(line);
            return Reaction {
                queued: true,
                ..Reaction::default()
            };
        };
        let Some(decision) = parse_approval_answer(&line) else {
            return Reaction {
                show: vec!["please answer o, s, a or d".into()],
                ask: true,
                answer: None,
                queued: false,
            };
        };
        let id = front.id;
        self.waiting.pop_front();
        let mut next = if self.waiting.is_empty() {
            Reaction::default()
        } else {
            self.ask_front()
        };
        next.show.insert(0, format!("→ {}", decision.as_str()));
        next.answer = Some((id, decision));
        next
    }

    /// Forgets unanswered requests: once their turn is over the daemon has stopped waiting
    /// (it denies on timeout), and a later line must not be taken for their answer.
    pub fn expire(&mut self) -> usize {
        let n = self.waiting.len();
        self.waiting.clear();
        n
    }

    /// The oldest line that arrived while the agent worked, to handle as if typed at the prompt.
    pub fn next_typed_ahead(&mut self) -> Option<String> {
        self.typed_ahead.pop_front()
    }

    fn ask_front(&self) -> Reaction {
        let req = self.waiting.front().expect("a waiting request");
        Reaction {
            show: describe_approval(req).lines().map(str::to_string).collect(),
            ask: true,
            answer: None,
            queued: false,
        }
    }
}

/// `/sessions`: newest first, the current one marked.
pub fn sessions_table(list: &[SessionInfo], current_id: &str) -> String {
    if list.is_empty() {
        return "no sessions yet\n".into();
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|s| {
            vec![
                if s.id == current_id { "*" } else { "" }.to_string(),
                s.name.clone(),
                s.id.clone(),
                s.messages.to_string(),
                s.workspace.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    table(&["", "NAME", "ID", "MESSAGES", "WORKSPACE"], &rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use astrid_types::wire::{AlwaysOffer, ApprovalResource, ResourceKind};

    fn req(id: u64, program: &str) -> ApprovalRequest {
        ApprovalRequest {
            id,
            principal: "default".into(),
            capsule: "tool-shell".into(),
            action: "process.spawn".into(),
            resource: ApprovalResource {
                kind: ResourceKind::ProcessExec,
                target: program.into(),
            },
            detail: "run the tests".into(),
            capsule_says: None,
            always: AlwaysOffer::Token {
                pattern: format!("process:exec:{program}"),
                capsule: "tool-shell".into(),
            },
        }
    }

    #[test]
    fn lines_parse_into_commands_and_prompts() {
        assert_eq!(
            parse_line("  hello there \n"),
            ChatLine::Prompt("hello there".into())
        );
        assert_eq!(parse_line(""), ChatLine::Empty);
        assert_eq!(parse_line("/sessions"), ChatLine::Sessions);
        assert_eq!(parse_line("/resume work"), ChatLine::Resume("work".into()));
        assert!(matches!(parse_line("/resume"), ChatLine::Invalid(m) if m.contains("usage")));
        assert_eq!(parse_line("/new"), ChatLine::New(None));
        assert_eq!(parse_line("/new demo"), ChatLine::New(Some("demo".into())));
        assert_eq!(parse_line("/help"), ChatLine::Help);
        assert_eq!(parse_line("/quit"), ChatLine::Quit);
        assert!(
            matches!(parse_line("/frobnicate"), ChatLine::Invalid(m) if m.contains("/frobnicate"))
        );
        assert_eq!(
            parse_line("//etc/hosts?"),
            ChatLine::Prompt("/etc/hosts?".into())
        );
    }

    #[test]
    fn approval_answers_parse() {
        assert_eq!(
            parse_approval_answer("o"),
            Some(ApprovalDecision::AllowOnce)
        );
        assert_eq!(
            parse_approval_answer(" Once\n"),
            Some(ApprovalDecision::AllowOnce)
        );
        assert_eq!(
            parse_approval_answer("s"),
            Some(ApprovalDecision::AllowSession)
        );
        assert_eq!(
            parse_approval_answer("ALWAYS"),
            Some(ApprovalDecision::AllowAlways)
        );
        assert_eq!(parse_approval_answer("d"), Some(ApprovalDecision::Deny));
        assert_eq!(parse_approval_answer("no"), Some(ApprovalDecision::Deny));
        assert_eq!(parse_approval_answer(""), None);
        assert_eq!(parse_approval_answer("maybe"), None);
    }

    #[test]
    fn requests_are_asked_one_at_a_time_in_order() {
        let mut a = Approvals::new(false, false);
        let r = a.arrived(req(1, "ls"));
        assert!(r.ask && r.answer.is_none());
        assert_eq!(
            r.show,
            [
                "approval requested by tool-shell: process.spawn",
                "  resource: run the program ls  (process:exec:ls)",
                "  detail: run the tests",
                "  always: mints process:exec:ls for tool-shell only",
            ]
        );
        // A second request waits silently behind the first.
        assert_eq!(a.arrived(req(2, "rm")), Reaction::default());

        let r = a.line("huh".into());
        assert_eq!((r.ask, r.answer), (true, None));
        let r = a.line("s".into());
        assert_eq!(r.answer, Some((1, ApprovalDecision::AllowSession)));
        assert!(r.ask, "the second request is asked next");
        assert_eq!(r.show[0], "→ allow-session");
        assert!(r.show[2].ends_with("(process:exec:rm)"), "{:?}", r.show);

        let r = a.line("d".into());
        assert_eq!(r.answer, Some((2, ApprovalDecision::Deny)));
        assert!(!r.ask && !a.asking());
    }

    #[test]
    fn yes_answers_once_and_lines_without_a_question_are_kept() {
        let mut a = Approvals::new(true, false);
        let r = a.arrived(req(5, "cargo"));
        assert_eq!(r.answer, Some((5, ApprovalDecision::AllowOnce)));
        assert!(!r.ask && !a.asking());
        let r = a.line("and then?".into());
        assert_eq!((r.answer, r.queued), (None, true));
        assert_eq!(a.next_typed_ahead().as_deref(), Some("and then?"));
        assert_eq!(a.next_typed_ahead(), None);

        // At a terminal a line typed ahead is never taken for an answer.
        let mut a = Approvals::new(false, false);
        a.line("d".into());
        let r = a.arrived(req(6, "rm"));
        assert!(r.ask && r.answer.is_none());
        assert_eq!(a.next_typed_ahead().as_deref(), Some("d"));
    }

    #[test]
    fn piped_lines_answer_questions_in_order() {
        let mut a = Approvals::new(false, true);
        for line in ["bogus", "a", "next prompt"] {
            assert!(a.line(line.into()).queued);
        }
        let r = a.arrived(req(7, "make"));
        assert_eq!(r.answer, Some((7, ApprovalDecision::AllowAlways)));
        assert!(!r.ask && !a.asking());
        assert_eq!(
            r.show[4..],
            [
                format!("{APPROVAL_QUESTION}bogus"),
                "please answer o, s, a or d".to_string(),
                format!("{APPROVAL_QUESTION}a"),
                "→ allow-always".to_string(),
            ]
        );
        assert_eq!(a.next_typed_ahead().as_deref(), Some("next prompt"));
        // With nothing read ahead, the question waits for a line...
        let r = a.arrived(req(8, "make"));
        assert!(r.ask && r.answer.is_none());
        // ...until its turn is over; then the next line is a prompt again.
        assert_eq!(a.expire(), 1);
        assert!(!a.asking());
        assert!(a.line("o".into()).queued);
    }

    #[test]
    fn sessions_table_marks_the_current_one() {
        let s = |id: &str, name: &str| SessionInfo {
            id: id.into(),
            name: name.into(),
            workspace: Some("/w".into()),
            messages: 4,
            updated_ms: 0,
        };
        let text = sessions_table(&[s("aa", "one"), s("bb", "two")], "bb");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "   NAME  ID  MESSAGES  WORKSPACE");
        assert!(lines[1].starts_with("   one"), "{text}");
        assert_eq!(lines[2], "*  two   bb  4         /w");
        assert_eq!(sessions_table(&[], "x"), "no sessions yet\n");
    }
}
