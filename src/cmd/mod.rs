//! The subcommands of the CLI, one module each.

use std::sync::atomic::{AtomicBool, Ordering};

/// `-q`: warnings and messages on standard error are left out (errors never are).
static QUIET: AtomicBool = AtomicBool::new(false);

/// Sets `-q` for the run.
pub fn set_quiet(on: bool) {
    QUIET.store(on, Ordering::Relaxed);
}

/// True under `-q`.
pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// A warning or message on standard error, unless `-q`.
macro_rules! note {
    ($($t:tt)*) => {
        if !$crate::cmd::quiet() {
            eprintln!($($t)*)
        }
    };
}
pub(crate) use note;

pub mod export;
pub mod input;
pub mod ps;
pub mod record;
pub mod report;
pub mod top;
