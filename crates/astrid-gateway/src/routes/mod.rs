//! The HTTP routes, one file per area.

pub mod console;
pub mod feed;
pub mod health;
pub mod openai;
pub mod threads;
pub mod turns;
