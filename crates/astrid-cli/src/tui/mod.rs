//! The full-screen `astrid chat` (ratatui on crossterm): a transcript pane with streamed
//! Markdown and foldable tool calls, a multi-line editor with history, a status line, an
//! approval dialog, a dialog for capsules' questions (`question`) and a session picker. `state` decides, `view` draws, `app` runs the loop;
//! the line mode in `commands::chat` stays for pipes and `--plain`.

mod app;
mod editor;
mod markdown;
mod question;
mod state;
mod theme;
mod transcript;
mod view;

pub use app::run;
