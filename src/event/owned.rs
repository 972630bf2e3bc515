//! [`OwnedEvent`]: an [`Event`] that owns what it says, to keep, collect or send.

use super::{Body, Cause, Event};
use crate::nsset::NsSet;
use std::borrow::Cow;

/// An event that borrows nothing: what [`PerfData::events`](crate::perf_data::PerfData::events)
/// yields, and what [`Event::to_owned_event`] makes of a borrowed one. [`OwnedEvent::as_event`]
/// lends it back as an [`Event`], the type the model and the writers take.
///
/// ```
/// use nswatch::perf_data::{Order, PerfData};
/// use nswatch::{OwnedBody, OwnedEvent};
///
/// let mut data = PerfData::open(std::path::Path::new("fixtures/samples.data"))?;
/// let events: Vec<OwnedEvent> = data.events(Order::Time).collect::<Result<_, _>>()?;
/// let samples = events.iter().filter(|e| matches!(e.body, OwnedBody::Sample { .. }));
/// assert!(samples.count() > 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct OwnedEvent {
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
    pub body: OwnedBody,
}

/// The type-specific part of an [`OwnedEvent`]: [`Body`]'s variants, owning their data.
///
/// ```
/// use nswatch::{Body, Event, OwnedBody};
///
/// let ev = Event {
///     time_ns: Some(7),
///     cpu: None,
///     pid: Some(1),
///     tid: Some(1),
///     synthesized: false,
///     body: Body::Comm { comm: "sh".into(), exec: true },
/// };
/// let owned = ev.to_owned_event();
/// assert_eq!(owned.body, OwnedBody::Comm { comm: "sh".to_string(), exec: true });
/// assert_eq!(owned.as_event(), ev);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum OwnedBody {
    /// The task's namespace links (a new task, or after setns/unshare).
    Namespaces {
        /// The links, in kernel index order.
        ns: NsSet,
        /// The task's command name, when known.
        comm: Option<String>,
        /// The syscall that made this change, when the eBPF probe saw it ("cause").
        cause: Option<Box<Cause>>,
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
        comm: String,
        /// Set by exec().
        exec: bool,
    },
    /// A cgroup was created (or existed at start).
    Cgroup {
        /// Cgroup id.
        id: u64,
        /// Path from the cgroup root.
        path: String,
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
    /// A namespace syscall that made no NAMESPACES record.
    NsSyscall {
        /// The call.
        call: Box<Cause>,
    },
    /// eBPF records of namespace syscalls lost.
    NsSyscallLost {
        /// How many.
        lost: u64,
    },
}

impl Event<'_> {
    /// A copy of this event that borrows nothing (see [`OwnedEvent`]).
    pub fn to_owned_event(&self) -> OwnedEvent {
        OwnedEvent {
            time_ns: self.time_ns,
            cpu: self.cpu,
            pid: self.pid,
            tid: self.tid,
            synthesized: self.synthesized,
            body: OwnedBody::from(&self.body),
        }
    }
}

impl From<&Event<'_>> for OwnedEvent {
    fn from(ev: &Event<'_>) -> Self {
        ev.to_owned_event()
    }
}

impl From<&Body<'_>> for OwnedBody {
    fn from(body: &Body<'_>) -> Self {
        match body {
            Body::Namespaces { ns, comm, cause } => OwnedBody::Namespaces {
                ns: **ns,
                comm: comm.as_deref().map(str::to_string),
                cause: cause.map(|c| Box::new(c.clone())),
            },
            &Body::Fork { ppid, ptid } => OwnedBody::Fork { ppid, ptid },
            &Body::Exit { ppid, ptid } => OwnedBody::Exit { ppid, ptid },
            Body::Comm { comm, exec } => OwnedBody::Comm {
                comm: comm.to_string(),
                exec: *exec,
            },
            Body::Cgroup { id, path } => OwnedBody::Cgroup {
                id: *id,
                path: path.to_string(),
            },
            &Body::Lost { lost } => OwnedBody::Lost { lost },
            &Body::LostSamples { lost } => OwnedBody::LostSamples { lost },
            Body::Sample {
                ip,
                period,
                callchain,
            } => OwnedBody::Sample {
                ip: *ip,
                period: *period,
                callchain: callchain.clone(),
            },
            Body::NsSyscall { call } => OwnedBody::NsSyscall {
                call: Box::new((*call).clone()),
            },
            &Body::NsSyscallLost { lost } => OwnedBody::NsSyscallLost { lost },
        }
    }
}

impl OwnedEvent {
    /// This event as an [`Event`] borrowing from it, for the model
    /// ([`Attributor::observe`](crate::model::Attributor::observe)) and the writers. Nothing
    /// is copied but a sample's callchain, which [`Body::Sample`] owns.
    ///
    /// ```
    /// use nswatch::model::Attributor;
    /// use nswatch::perf_data::{Order, PerfData};
    /// use nswatch::OwnedBody;
    ///
    /// let mut data = PerfData::open(std::path::Path::new("fixtures/samples.data"))?;
    /// let mut model = Attributor::learning();
    /// let mut labelled = 0;
    /// for ev in data.events(Order::Time) {
    ///     let ev = ev?;
    ///     let group = model.observe(&ev.as_event());
    ///     if let (OwnedBody::Sample { .. }, Some(_)) = (&ev.body, group) {
    ///         labelled += 1;
    ///     }
    /// }
    /// assert!(labelled > 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn as_event(&self) -> Event<'_> {
        Event {
            time_ns: self.time_ns,
            cpu: self.cpu,
            pid: self.pid,
            tid: self.tid,
            synthesized: self.synthesized,
            body: self.body.as_body(),
        }
    }
}

impl OwnedBody {
    /// This body as a [`Body`] borrowing from it (a sample's callchain is copied).
    pub fn as_body(&self) -> Body<'_> {
        match self {
            OwnedBody::Namespaces { ns, comm, cause } => Body::Namespaces {
                ns,
                comm: comm.as_deref().map(Cow::Borrowed),
                cause: cause.as_deref(),
            },
            &OwnedBody::Fork { ppid, ptid } => Body::Fork { ppid, ptid },
            &OwnedBody::Exit { ppid, ptid } => Body::Exit { ppid, ptid },
            OwnedBody::Comm { comm, exec } => Body::Comm {
                comm: Cow::Borrowed(comm),
                exec: *exec,
            },
            OwnedBody::Cgroup { id, path } => Body::Cgroup {
                id: *id,
                path: Cow::Borrowed(path),
            },
            &OwnedBody::Lost { lost } => Body::Lost { lost },
            &OwnedBody::LostSamples { lost } => Body::LostSamples { lost },
            OwnedBody::Sample {
                ip,
                period,
                callchain,
            } => Body::Sample {
                ip: *ip,
                period: *period,
                callchain: callchain.clone(),
            },
            OwnedBody::NsSyscall { call } => Body::NsSyscall { call },
            &OwnedBody::NsSyscallLost { lost } => Body::NsSyscallLost { lost },
        }
    }

    /// The "type" string (see [`Body::type_name`]).
    pub fn type_name(&self) -> &'static str {
        self.as_body_head().type_name()
    }

    /// A body of the same type with no data to copy, to ask its type.
    fn as_body_head(&self) -> Body<'_> {
        match self {
            OwnedBody::Sample { ip, period, .. } => Body::Sample {
                ip: *ip,
                period: *period,
                callchain: None,
            },
            other => other.as_body(),
        }
    }
}
