//! Exporters: the event stream, with the model's groups, written in other tools' formats.

pub mod chrome;
pub mod trace_writer;
