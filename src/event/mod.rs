//! The event schema (NDJSON, version 1) shared by `report`, live capture, export and the TUI.
//!
//! Every object has "type", "time_ns", "cpu" (null when unknown), "pid" and "tid"; the rest
//! depends on the type. Later versions add fields and never rename them. The JSON Schema is
//! schema/event-v1.schema.json.
//!
//! This file holds the schema's types; the rest of the folder works with them: [`cause`]
//! (the eBPF probe's namespace syscalls, which events carry as their "cause"), `json_write`
//! ([`JsonWriter`], the NDJSON lines), `json_read` ([`JsonReader`], the lines read back),
//! `builder` ([`EventBuilder`]: decoded records to events) and `sender` ([`EventSender`] and
//! [`EventReceiver`]: events across two threads, small).

mod builder;
pub mod cause;
mod json_read;
mod json_write;
mod owned;
mod sender;

#[doc(hidden)]
pub use builder::Comms;
pub use builder::EventBuilder;
pub use cause::Cause;
pub use json_read::{JsonLineError, JsonReader};
#[doc(hidden)]
pub use json_write::{JsonWriter, LineLabel};
pub use owned::{OwnedBody, OwnedEvent};
#[doc(hidden)]
pub use sender::{EventReceiver, EventSender, SentEvent, SentHead, NO_COMM};

use crate::nsset::NsSet;
use std::borrow::Cow;

/// Version of the schema written by this build.
pub const SCHEMA_VERSION: u32 = 1;

/// One event of the stream.
///
/// ```
/// use nswatch::perf_data::{Order, PerfData};
/// use nswatch::{Body, DecodeError, EventBuilder};
///
/// let mut data = PerfData::open(std::path::Path::new("fixtures/samples.data"))?;
/// let mut builder = EventBuilder::new();
/// let mut forks = 0;
/// data.for_each(Order::Time, |dec, view| -> Result<(), DecodeError> {
///     if let Some(ev) = builder.decode(dec, view)? {
///         if let Body::Fork { .. } = ev.body {
///             assert!(ev.pid.is_some() && ev.time_ns.is_some());
///             forks += 1;
///         }
///     }
///     Ok(())
/// })?;
/// assert!(forks > 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Event<'a> {
    /// Timestamp in the recording's clock, ns; `None` when the record has none.
    pub time_ns: Option<u64>,
    /// CPU that wrote the record.
    pub cpu: Option<u32>,
    /// Process id.
    pub pid: Option<u32>,
    /// Thread id.
    pub tid: Option<u32>,
    /// True for state read from /proc at start (or after lost records) rather than
    /// recorded by the kernel as it happened.
    pub synthesized: bool,
    /// What happened.
    pub body: Body<'a>,
}

/// The type-specific part of an [`Event`].
///
/// ```
/// use nswatch::event::EVENT_TYPES;
/// use nswatch::Body;
///
/// let body = Body::Lost { lost: 3 };
/// assert_eq!(body.type_name(), "lost");
/// assert_eq!(EVENT_TYPES[body.type_index()], "lost");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Body<'a> {
    /// The task's namespace links (a new task, or after setns/unshare).
    Namespaces {
        /// The links, in kernel index order (borrowed: the event stays small to move).
        ns: &'a NsSet,
        /// The task's command name, when known.
        comm: Option<Cow<'a, str>>,
        /// The syscall that made this change, when the eBPF probe saw it ("cause").
        cause: Option<&'a Cause>,
    },
    /// A new task.
    Fork {
        /// Parent process id.
        ppid: u32,
        /// Parent thread id.
        ptid: u32,
    },
    /// A task ended.
    Exit {
        /// Parent process id.
        ppid: u32,
        /// Parent thread id.
        ptid: u32,
    },
    /// A task's command name changed.
    Comm {
        /// The new name.
        comm: Cow<'a, str>,
        /// Set by exec().
        exec: bool,
    },
    /// A cgroup was created (or existed at start).
    Cgroup {
        /// Cgroup id.
        id: u64,
        /// Path from the cgroup root.
        path: Cow<'a, str>,
    },
    /// Records lost because a ring was full.
    Lost {
        /// How many.
        lost: u64,
    },
    /// Samples lost.
    LostSamples {
        /// How many.
        lost: u64,
    },
    /// A sample (profilers label these by container).
    Sample {
        /// Instruction pointer.
        ip: Option<u64>,
        /// Sample period.
        period: Option<u64>,
        /// Callchain, when recorded with -g.
        callchain: Option<Vec<u64>>,
    },
    /// A namespace syscall that made no NAMESPACES record: it failed (and changed
    /// nothing), or its record was not seen.
    NsSyscall {
        /// The call.
        call: &'a Cause,
    },
    /// eBPF records of namespace syscalls lost (ring buffer or in-flight table full).
    NsSyscallLost {
        /// How many.
        lost: u64,
    },
}

/// Every "type" string, in the order of [`Body::type_index`].
pub const EVENT_TYPES: [&str; 10] = [
    "namespaces",
    "fork",
    "exit",
    "comm",
    "cgroup",
    "lost",
    "lost_samples",
    "sample",
    "ns_syscall",
    "ns_syscall_lost",
];

impl Body<'_> {
    /// The position of this type in [`EVENT_TYPES`] (for counting without a map).
    pub fn type_index(&self) -> usize {
        match self {
            Body::Namespaces { .. } => 0,
            Body::Fork { .. } => 1,
            Body::Exit { .. } => 2,
            Body::Comm { .. } => 3,
            Body::Cgroup { .. } => 4,
            Body::Lost { .. } => 5,
            Body::LostSamples { .. } => 6,
            Body::Sample { .. } => 7,
            Body::NsSyscall { .. } => 8,
            Body::NsSyscallLost { .. } => 9,
        }
    }

    /// The "type" string.
    pub fn type_name(&self) -> &'static str {
        EVENT_TYPES[self.type_index()]
    }
}
