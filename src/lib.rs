//! nswatch: watch Linux namespaces change and tell which container every task belongs to.
//!
//! # Quick start: label a perf.data file's samples by container
//!
//! A profiler records with `perf record -a -g --namespaces` (or has its own samples), feeds
//! every event to the model in time order, and asks it where each sample's task was:
//!
//! ```
//! use nswatch::model::Attributor;
//! use nswatch::perf_data::{Order, PerfData};
//! use nswatch::OwnedBody;
//!
//! let mut data = PerfData::open(std::path::Path::new("fixtures/samples.data"))?;
//! let mut model = Attributor::learning(); // the host is learned from perf's first records
//! let mut per_group = std::collections::BTreeMap::new();
//! for ev in data.events(Order::Time) {
//!     let ev = ev?; // an OwnedEvent: kept, collected or sent as the caller likes
//!     let group = model.observe(&ev.as_event());
//!     if let (OwnedBody::Sample { .. }, Some(g)) = (&ev.body, group) {
//!         *per_group.entry(model.group(g).name().to_string()).or_insert(0) += 1;
//!     }
//! }
//! assert_eq!(per_group["sb-4026532177"], 33); // `unshare -u sh` in its own uts namespace
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The same without a copy of any event: [`PerfData::for_each`] lends each record in place
//! and [`EventBuilder::decode`] makes a borrowed [`Event`] of it (the command-line tool's
//! path; examples/label_samples.rs):
//!
//! ```
//! # use nswatch::model::Attributor;
//! # use nswatch::perf_data::{Order, PerfData};
//! use nswatch::{Body, DecodeError, EventBuilder};
//!
//! # let mut data = PerfData::open(std::path::Path::new("fixtures/samples.data"))?;
//! # let mut model = Attributor::learning();
//! let mut builder = EventBuilder::new();
//! let mut samples = 0;
//! data.for_each(Order::Time, |dec, view| -> Result<(), DecodeError> {
//!     if let Some(ev) = builder.decode(dec, view)? {
//!         let group = model.observe(&ev);
//!         samples += matches!((&ev.body, group), (Body::Sample { .. }, Some(_))) as u32;
//!     }
//!     Ok(())
//! })?;
//! assert!(samples >= 33);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A group has one name to show, [`model::Group::name`] (the runtime's name once known,
//! else its label), and one stable id, [`model::Group::label`], as events carry it.
//!
//! Live, [`session::Session`] (feature `live`) runs the same model on the perf rings and
//! the eBPF probe and keeps it current; [`session::SessionError`] says why it cannot start.
//! [`symbols::Symbolizer`] names frames as perf does, through each process's own root;
//! [`profile::ContainerProfile`] counts samples, folded stacks and pprof per container.
//!
//! # The data path
//!
//! Perf records (from a perf.data file, [`perf_data::PerfData`], or live rings) are
//! borrowed as [`record::RecordView`]s, decoded in place by the one [`decoder::Decoder`],
//! and turned into schema events ([`event::Event`], or [`OwnedEvent`] to keep) that the
//! model consumes. See docs/DESIGN.md.
//!
//! # What the documentation shows
//!
//! The modules listed here are the API. The workspace's own crates (the command line, the
//! `nswatch-tui` crate, tests, benches) use further public modules that are hidden from
//! this documentation and not covered by semver.
#![warn(missing_docs)]

pub mod decoder;
pub mod error;
pub mod event;
pub mod model;
pub mod nsset;
pub mod perf_data;
pub mod profile;
pub mod record;
#[cfg(feature = "live")]
pub mod session;
pub mod symbols;

// The workspace's own support modules: the command line (src/cmd), the nswatch-tui crate,
// the tests and the benches use them. They are public only because those are other crates;
// they are hidden from the documentation and not covered by semver (docs/DESIGN.md, "The
// library's API").
#[doc(hidden)]
pub mod attr;
#[doc(hidden)]
pub mod bpf;
#[doc(hidden)]
pub mod bytes;
#[cfg(feature = "live")]
#[doc(hidden)]
pub mod census;
#[doc(hidden)]
pub mod export;
mod json;
#[cfg(feature = "live")]
#[doc(hidden)]
pub mod live;
#[cfg(feature = "live")]
mod live_naming;
#[cfg(feature = "metrics")]
#[doc(hidden)]
pub mod metrics;
#[doc(hidden)]
pub mod ndjson;
#[doc(hidden)]
pub mod order;
#[doc(hidden)]
pub mod out_file;
#[doc(hidden)]
pub mod privilege;
#[doc(hidden)]
pub mod procfs;
mod record_kind;
#[doc(hidden)]
pub mod report;
#[doc(hidden)]
pub mod rotate;
#[doc(hidden)]
pub mod runtime_state;
#[doc(hidden)]
pub mod select;
#[doc(hidden)]
pub mod text;
#[doc(hidden)]
pub mod units;

pub use decoder::Decoder;
pub use error::{DecodeError, ErrorKind};
pub use event::{Body, Event, EventBuilder, OwnedBody, OwnedEvent};
pub use perf_data::{Order, PerfData};
pub use record::{Record, RecordView};
