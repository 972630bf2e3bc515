//! `nswatch top`: the live terminal UI, built on the nswatch library's public API (the
//! live `Session`, the model and its tree, the event schema) like any other consumer. The
//! `nswatch-top` binary (src/main.rs) is what `nswatch top` runs.
//!
//! The state ([`app::App`]: rates, recent events, a snapshot of the model's tree, what the
//! user chose) is apart from the terminal: [`app::App::update`] takes the session's
//! updates, [`app::App::handle_key`] the keys, and [`ui::draw`] lays it out on any ratatui
//! backend, so every view is tested on a `TestBackend`. [`run`] holds the two terminal
//! loops (live and replay).
#![warn(missing_docs)]

pub mod app;
pub mod input;
pub mod keys;
pub mod rates;
pub mod run;
pub mod ui;
pub mod usage;

pub use app::App;
pub use run::{run_live, run_replay, ReplayOptions, TopOptions};
