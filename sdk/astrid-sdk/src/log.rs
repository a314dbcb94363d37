//! Logging through the kernel (`astrid:sys` `log`); the kernel tags each line with the capsule
//! and principal.
//!
//! The macros take `format!` arguments: `astrid_sdk::info!("saved {n} rows")`.

use crate::bindings::astrid::sys::sys::{self, Level};

/// Logs at trace level.
pub fn trace(message: &str) {
    sys::log(Level::Trace, message);
}

/// Logs at debug level.
pub fn debug(message: &str) {
    sys::log(Level::Debug, message);
}

/// Logs at info level.
pub fn info(message: &str) {
    sys::log(Level::Info, message);
}

/// Logs at warn level.
pub fn warn(message: &str) {
    sys::log(Level::Warn, message);
}

/// Logs at error level.
pub fn error(message: &str) {
    sys::log(Level::Error, message);
}

/// Logs a formatted message at trace level.
#[macro_export]
macro_rules! trace {
    ($($arg:tt)*) => { $crate::log::trace(&::std::format!($($arg)*)) };
}

/// Logs a formatted message at debug level.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => { $crate::log::debug(&::std::format!($($arg)*)) };
}

/// Logs a formatted message at info level.
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::log::info(&::std::format!($($arg)*)) };
}

/// Logs a formatted message at warn level.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::log::warn(&::std::format!($($arg)*)) };
}

/// Logs a formatted message at error level.
#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => { $crate::log::error(&::std::format!($($arg)*)) };
}
