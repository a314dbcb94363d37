//! Colours of the chat screen, and `NO_COLOR` (<https://no-color.org>): with it set, no
//! colour at all, only bold, italic, underline and reverse, which say the same things.

use ratatui::style::{Color, Modifier, Style};

#[derive(Debug, Clone, Copy)]
pub struct Theme {
    color: bool,
}

impl Theme {
    pub fn new(color: bool) -> Self {
        Theme { color }
    }

    /// Colour unless `NO_COLOR` is set to anything but the empty string.
    pub fn from_env() -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Theme::new(!no_color)
    }

    fn fg(&self, c: Color) -> Style {
        if self.color {
            Style::new().fg(c)
        } else {
            Style::new()
        }
    }

    pub fn dim(&self) -> Style {
        Style::new().add_modifier(Modifier::DIM)
    }

    pub fn user(&self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    pub fn heading(&self) -> Style {
        self.fg(Color::Yellow).add_modifier(Modifier::BOLD)
    }

    pub fn link(&self) -> Style {
        self.fg(Color::Blue).add_modifier(Modifier::UNDERLINED)
    }

    pub fn code_block(&self) -> Style {
        self.fg(Color::Green)
    }

    pub fn code_inline(&self) -> Style {
        if self.color {
            Style::new().fg(Color::Green)
        } else {
            Style::new().add_modifier(Modifier::BOLD)
        }
    }

    pub fn tool(&self) -> Style {
        self.fg(Color::Magenta)
    }

    pub fn ok(&self) -> Style {
        self.fg(Color::Green)
    }

    pub fn error(&self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }

    pub fn notice(&self) -> Style {
        self.fg(Color::DarkGray).add_modifier(Modifier::ITALIC)
    }

    pub fn status(&self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED)
    }

    pub fn selected(&self) -> Style {
        if self.color {
            Style::new()
                .fg(Color::Black)
                .bg(Color::Yellow)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD)
        }
    }

    pub fn warning(&self) -> Style {
        self.fg(Color::Yellow).add_modifier(Modifier::BOLD)
    }
}
