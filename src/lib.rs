//! nswatch: watch Linux namespaces change and tell which container every task belongs to.
//!
//! The data path: perf records (from a perf.data file, [`perf_data::PerfData`], or live
//! rings) are borrowed as [`record::RecordView`]s, decoded in place by the one
//! [`decoder::Decoder`], and turned into schema events ([`event::Event`]) that the report,
//! the exporters and the model consume. See docs/DESIGN.md.
#![warn(missing_docs)]

pub mod attr;
pub mod bpf;
pub mod bytes;
#[cfg(feature = "live")]
pub mod census;
pub mod decoder;
pub mod error;
pub mod event;
pub mod export;
#[cfg(feature = "live")]
pub mod live;
#[cfg(feature = "live")]
mod live_naming;
#[cfg(feature = "metrics")]
pub mod metrics;
pub mod model;
pub mod ndjson;
pub mod nsset;
pub mod order;
pub mod out_file;
pub mod perf_data;
pub mod privilege;
pub mod procfs;
pub mod profile;
pub mod record;
pub mod report;
pub mod rotate;
pub mod runtime_state;
pub mod select;
#[cfg(feature = "live")]
pub mod session;
pub mod symbols;
pub mod text;
pub mod units;

pub use decoder::Decoder;
pub use error::{DecodeError, ErrorKind};
pub use event::{Body, Event, EventBuilder};
pub use perf_data::{Order, PerfData};
pub use record::{Record, RecordView};
