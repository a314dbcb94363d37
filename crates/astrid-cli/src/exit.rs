//! The process exit codes, one place for the code and for `--help`.

/// The command did what was asked.
pub const SUCCESS: u8 = 0;
/// An error, printed on stderr as `error: …` (or a check that failed, e.g. `audit verify`,
/// `doctor`).
pub const FAILURE: u8 = 1;
/// The command line itself is wrong (clap's usage errors).
pub const USAGE: u8 = 2;
/// `-p`: the agent wrote a tool call as text instead of an answer.
pub const NO_ANSWER: u8 = 3;
/// `-p`: the turn stopped at the step limit before the agent finished.
pub const MAX_STEPS: u8 = 4;
/// Interrupted by Ctrl-C (the turn was cancelled), as a shell reports SIGINT.
pub const INTERRUPTED: u8 = 130;
/// Standard output was closed early (`astrid audit show | head`), as a shell reports SIGPIPE.
pub const BROKEN_PIPE: u8 = 141;

/// The table printed under `astrid --help`.
pub const HELP: &str = "\
Exit codes:
  0    success
  1    error (the message says what and how to fix it), or a failed check (doctor, audit verify)
  2    usage error on the command line
  3    -p: the agent wrote a tool call as text instead of answering
  4    -p: the turn hit the step limit before the agent finished (continue with --session)
  130  interrupted with Ctrl-C (the turn was cancelled)
  141  standard output closed early (e.g. piped into `head`)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_help_table_lists_every_code() {
        for code in [
            SUCCESS,
            FAILURE,
            USAGE,
            NO_ANSWER,
            MAX_STEPS,
            INTERRUPTED,
            BROKEN_PIPE,
        ] {
            assert!(
                HELP.lines()
                    .any(|l| l.trim_start().starts_with(&format!("{code} "))),
                "exit code {code} is missing from the help table"
            );
        }
    }
}
