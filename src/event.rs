//! The event schema (NDJSON, version 1) shared by `report`, live capture, export and the TUI.
//!
//! Every object has "type", "time_ns", "cpu" (null when unknown), "pid" and "tid"; the rest
//! depends on the type. Later versions add fields and never rename them. The JSON Schema is
//! schema/event-v1.schema.json.

use crate::decoder::Decoder;
use crate::error::DecodeError;
use crate::nsset::{link_name, NsSet};
use crate::record::{Record, RecordView, SampleId};
use hashbrown::HashMap;
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use std::borrow::Cow;
use std::rc::Rc;

/// Version of the schema written by this build.
pub const SCHEMA_VERSION: u32 = 1;

/// One event of the stream.
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
    /// What happened.
    pub body: Body<'a>,
}

/// The type-specific part of an [`Event`].
#[derive(Debug, Clone, PartialEq)]
pub enum Body<'a> {
    /// The task's namespace links (a new task, or after setns/unshare).
    Namespaces {
        /// The links, in kernel index order.
        ns: NsSet,
        /// The task's command name, when known.
        comm: Option<Cow<'a, str>>,
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
}

impl Body<'_> {
    /// The "type" string.
    pub fn type_name(&self) -> &'static str {
        match self {
            Body::Namespaces { .. } => "namespaces",
            Body::Fork { .. } => "fork",
            Body::Exit { .. } => "exit",
            Body::Comm { .. } => "comm",
            Body::Cgroup { .. } => "cgroup",
            Body::Lost { .. } => "lost",
            Body::LostSamples { .. } => "lost_samples",
            Body::Sample { .. } => "sample",
        }
    }
}

struct Links<'s>(&'s NsSet);

#[derive(Serialize)]
struct Link {
    dev: u64,
    ino: u64,
}

impl Serialize for Links<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let links = self.0.links();
        let mut m = s.serialize_map(Some(links.len()))?;
        for (i, l) in links.iter().enumerate() {
            m.serialize_entry(
                link_name(i),
                &Link {
                    dev: l.dev,
                    ino: l.ino,
                },
            )?;
        }
        m.end()
    }
}

impl Serialize for Event<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("type", self.body.type_name())?;
        m.serialize_entry("time_ns", &self.time_ns)?;
        m.serialize_entry("cpu", &self.cpu)?;
        m.serialize_entry("pid", &self.pid)?;
        m.serialize_entry("tid", &self.tid)?;
        match &self.body {
            Body::Namespaces { ns, comm } => {
                m.serialize_entry("ns", &Links(ns))?;
                if let Some(c) = comm {
                    m.serialize_entry("comm", c)?;
                }
            }
            Body::Fork { ppid, ptid } | Body::Exit { ppid, ptid } => {
                m.serialize_entry("ppid", ppid)?;
                m.serialize_entry("ptid", ptid)?;
            }
            Body::Comm { comm, exec } => {
                m.serialize_entry("comm", comm)?;
                m.serialize_entry("exec", exec)?;
            }
            Body::Cgroup { id, path } => {
                m.serialize_entry("id", id)?;
                m.serialize_entry("path", path)?;
            }
            Body::Lost { lost } | Body::LostSamples { lost } => {
                m.serialize_entry("lost", lost)?;
            }
            Body::Sample {
                ip,
                period,
                callchain,
            } => {
                if let Some(ip) = ip {
                    m.serialize_entry("ip", ip)?;
                }
                if let Some(p) = period {
                    m.serialize_entry("period", p)?;
                }
                if let Some(c) = callchain {
                    m.serialize_entry("callchain", c)?;
                }
            }
        }
        m.end()
    }
}

/// Turns decoded records into events, keeping what a record alone does not say (the
/// command name of a task for its NAMESPACES events).
#[derive(Debug, Default)]
pub struct EventBuilder {
    comms: HashMap<u32, Rc<str>>,
}

impl EventBuilder {
    /// A builder that knows no task yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The last command name seen for `tid`.
    pub fn comm(&self, tid: u32) -> Option<&str> {
        self.comms.get(&tid).map(|c| &**c)
    }

    /// The event for a decoded record, or `None` for records outside the schema (MMAP,
    /// THROTTLE, perf's bookkeeping).
    pub fn event<'a, 'b>(&'b mut self, rec: &Record<'a>, id: &SampleId) -> Option<Event<'b>>
    where
        'a: 'b,
    {
        let mut ev = Event {
            time_ns: id.time,
            cpu: id.cpu,
            pid: id.pid,
            tid: id.tid,
            body: Body::Lost { lost: 0 },
        };
        ev.body = match rec {
            Record::Namespaces(ns) => {
                ev.pid = Some(ns.pid);
                ev.tid = Some(ns.tid);
                Body::Namespaces {
                    ns: NsSet::from_record(ns),
                    comm: self.comms.get(&ns.tid).map(|c| Cow::Borrowed(&**c)),
                }
            }
            Record::Fork(t) => {
                if let Some(c) = self.comms.get(&t.ptid).cloned() {
                    self.comms.insert(t.tid, c);
                }
                (ev.pid, ev.tid) = (Some(t.pid), Some(t.tid));
                // The trailer's time is the one perf orders and prints by; the body's own,
                // taken a moment earlier, stands in when there is no trailer.
                ev.time_ns = id.time.or(Some(t.time));
                Body::Fork {
                    ppid: t.ppid,
                    ptid: t.ptid,
                }
            }
            Record::Exit(t) => {
                // The task is gone; its tid may be reused by an unrelated task.
                self.comms.remove(&t.tid);
                (ev.pid, ev.tid) = (Some(t.pid), Some(t.tid));
                ev.time_ns = id.time.or(Some(t.time));
                Body::Exit {
                    ppid: t.ppid,
                    ptid: t.ptid,
                }
            }
            Record::Comm(c) => {
                if self.comms.get(&c.tid).map(|x| &**x) != Some(&*c.comm) {
                    self.comms.insert(c.tid, c.comm.as_ref().into());
                }
                (ev.pid, ev.tid) = (Some(c.pid), Some(c.tid));
                Body::Comm {
                    comm: c.comm.clone(),
                    exec: c.exec,
                }
            }
            Record::Cgroup(c) => Body::Cgroup {
                id: c.id,
                path: c.path.clone(),
            },
            Record::Lost(l) => Body::Lost { lost: l.lost },
            Record::LostSamples(l) => Body::LostSamples { lost: l.lost },
            Record::Sample(s) => Body::Sample {
                ip: s.ip,
                period: s.period,
                callchain: (s.callchain_len() > 0).then(|| s.callchain().collect()),
            },
            _ => return None,
        };
        Some(ev)
    }

    /// Decodes `view` and builds its event in one step.
    pub fn decode<'a, 'b>(
        &'b mut self,
        decoder: &Decoder,
        view: &RecordView<'a>,
    ) -> Result<Option<Event<'b>>, DecodeError>
    where
        'a: 'b,
    {
        let (rec, id) = decoder.decode(view)?;
        Ok(self.event(&rec, &id))
    }
}
