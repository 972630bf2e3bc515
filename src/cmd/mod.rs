//! The subcommands of the CLI, one module each.

pub mod export;
pub mod input;
pub mod ps;
pub mod record;
pub mod report;
#[cfg(feature = "tui")]
pub mod top;
