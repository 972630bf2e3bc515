//! Decoded records to events: [`EventBuilder`], which keeps what a record alone does not
//! say (a task's command name).

use super::{Body, Event};
use crate::decoder::{Decoder, Hot};
use crate::error::DecodeError;
use crate::nsset::NsSet;
use crate::record::{Record, RecordView, SampleId};
use compact_str::CompactString;
use hashbrown::HashMap;
use std::borrow::Cow;

/// The common fields, gathered before the body is built.
#[derive(Debug, Clone, Copy)]
pub(super) struct EventHead {
    pub(super) time_ns: Option<u64>,
    pub(super) cpu: Option<u32>,
    pub(super) pid: Option<u32>,
    pub(super) tid: Option<u32>,
}

impl EventHead {
    #[inline(always)]
    pub(super) fn with(self, body: Body<'_>) -> Event<'_> {
        Event {
            time_ns: self.time_ns,
            cpu: self.cpu,
            pid: self.pid,
            tid: self.tid,
            synthesized: false,
            body,
        }
    }
}

/// A record's event body, or the set of a NAMESPACES record (whose body borrows it).
pub(super) enum Part<'a> {
    Body(Body<'a>),
    Namespaces(NsSet),
}

/// Command names by tid, as the records tell them: a COMM sets one, a FORK gives the child
/// its parent's, an EXIT drops it (the tid may be reused). Held inline (a comm is at most
/// 15 bytes): copied at a fork, never allocated.
#[derive(Debug, Default)]
pub struct Comms(HashMap<u32, CompactString>);

impl Comms {
    /// The last command name seen for `tid`.
    #[inline]
    pub fn get(&self, tid: u32) -> Option<&str> {
        self.0.get(&tid).map(|c| c.as_str())
    }

    /// Sets the command name of `tid`.
    #[inline]
    pub fn set(&mut self, tid: u32, comm: &str) {
        if self.get(tid) != Some(comm) {
            self.0.insert(tid, comm.into());
        }
    }

    #[inline(always)]
    fn fork(&mut self, ptid: u32, tid: u32) {
        if let Some(c) = self.0.get(&ptid).cloned() {
            self.0.insert(tid, c);
        }
    }

    #[inline(always)]
    fn exit(&mut self, tid: u32) {
        self.0.remove(&tid);
    }
}

/// Turns decoded records into events, keeping what a record alone does not say (the
/// command name of a task for its NAMESPACES events).
///
/// ```
/// use nswatch::perf_data::{Order, PerfData};
/// use nswatch::{Body, DecodeError, EventBuilder};
///
/// let mut data = PerfData::open(std::path::Path::new("fixtures/samples.data"))?;
/// let mut builder = EventBuilder::new();
/// let mut named = 0;
/// data.for_each(Order::Time, |dec, view| -> Result<(), DecodeError> {
///     // A NAMESPACES record has no command name: the builder knows it from COMM and FORK.
///     if let Some(ev) = builder.decode(dec, view)? {
///         if let Body::Namespaces { comm: Some(_), .. } = ev.body {
///             named += 1;
///         }
///     }
///     Ok(())
/// })?;
/// assert!(named > 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Default)]
pub struct EventBuilder {
    comms: Comms,
    /// True for [`EventBuilder::without_comms`].
    no_comms: bool,
    /// The set of the last NAMESPACES record, which its event borrows.
    ns: NsSet,
}

impl EventBuilder {
    /// A builder that knows no task yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder that keeps no command names: its NAMESPACES events have none (an
    /// [`EventReceiver`](super::EventReceiver) adds them, on the other thread).
    pub(super) fn without_comms() -> Self {
        EventBuilder {
            no_comms: true,
            ..Self::default()
        }
    }

    /// Sets the command name of `tid` (learned elsewhere, e.g. from /proc).
    pub fn set_comm(&mut self, tid: u32, comm: &str) {
        self.comms.set(tid, comm);
    }

    /// The last command name seen for `tid`.
    pub fn comm(&self, tid: u32) -> Option<&str> {
        self.comms.get(tid)
    }

    /// The event for a decoded record, or `None` for records outside the schema (MMAP,
    /// THROTTLE, perf's bookkeeping).
    #[inline(always)]
    pub fn event<'a, 'b>(&'b mut self, rec: &Record<'a>, id: &SampleId) -> Option<Event<'b>>
    where
        'a: 'b,
    {
        let (h, part) = self.parts(rec, id)?;
        let body = match part {
            Part::Body(body) => body,
            Part::Namespaces(ns) => {
                self.ns = ns;
                Body::Namespaces {
                    ns: &self.ns,
                    comm: h.tid.and_then(|t| self.comms.get(t)).map(Cow::Borrowed),
                    cause: None,
                }
            }
        };
        Some(h.with(body))
    }

    /// What both kinds of event are made of; the command names learned on the way.
    #[inline(always)]
    pub(super) fn parts<'a>(
        &mut self,
        rec: &Record<'a>,
        id: &SampleId,
    ) -> Option<(EventHead, Part<'a>)> {
        let mut ev = EventHead {
            time_ns: id.time,
            cpu: id.cpu,
            pid: id.pid,
            tid: id.tid,
        };
        let body = match rec {
            Record::Namespaces(ns) => {
                ev.pid = Some(ns.pid);
                ev.tid = Some(ns.tid);
                return Some((ev, Part::Namespaces(NsSet::from_record(ns))));
            }
            Record::Fork(t) => {
                if !self.no_comms {
                    self.comms.fork(t.ptid, t.tid);
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
                if !self.no_comms {
                    self.comms.exit(t.tid);
                }
                (ev.pid, ev.tid) = (Some(t.pid), Some(t.tid));
                ev.time_ns = id.time.or(Some(t.time));
                Body::Exit {
                    ppid: t.ppid,
                    ptid: t.ptid,
                }
            }
            Record::Comm(c) => {
                if !self.no_comms {
                    self.comms.set(c.tid, &c.comm);
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
        Some((ev, Part::Body(body)))
    }

    /// The event of a record read by [`Decoder::hot`]: what [`EventBuilder::event`] makes
    /// of the same record decoded (command names learned alike).
    #[inline(always)]
    pub fn hot_event(&mut self, hot: &Hot<'_>) -> Event<'_> {
        match *hot {
            Hot::Task {
                exit,
                pid,
                ppid,
                tid,
                ptid,
                time,
                cpu,
            } => {
                if !self.no_comms {
                    if exit {
                        self.comms.exit(tid);
                    } else {
                        self.comms.fork(ptid, tid);
                    }
                }
                Event {
                    time_ns: Some(time),
                    cpu,
                    pid: Some(pid),
                    tid: Some(tid),
                    synthesized: false,
                    body: if exit {
                        Body::Exit { ppid, ptid }
                    } else {
                        Body::Fork { ppid, ptid }
                    },
                }
            }
            Hot::Namespaces(h) => {
                self.ns.set_from_record(&h.view());
                Event {
                    time_ns: h.time,
                    cpu: h.cpu,
                    pid: Some(h.pid),
                    tid: Some(h.tid),
                    synthesized: false,
                    body: Body::Namespaces {
                        ns: &self.ns,
                        comm: self.comms.get(h.tid).map(Cow::Borrowed),
                        cause: None,
                    },
                }
            }
        }
    }

    /// Decodes `view` and builds its event in one step.
    #[inline(always)]
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
