//! The subcommands of the CLI, one module each.

pub mod record;
pub mod report;
