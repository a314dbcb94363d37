//! The HTTP routes, one file per area.

pub mod audit;
pub mod console;
pub mod feed;
pub mod grants;
pub mod health;
pub mod mcp;
pub mod openai;
pub mod threads;
pub mod turns;
