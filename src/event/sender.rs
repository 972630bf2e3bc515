//! Events across two threads, small: `report`'s reading thread decodes records into
//! [`SentEvent`]s ([`EventSender`]), its writing thread makes the events again
//! ([`EventReceiver`]).

use super::builder::{EventHead, Part};
use super::{Body, Event, EventBuilder};
use crate::decoder::{Decoder, Hot};
use crate::error::DecodeError;
use crate::nsset::{Interner, NsSet};
use crate::record::{Record, RecordView, SampleId};
use compact_str::CompactString;
use hashbrown::HashMap;
use std::borrow::Cow;

/// An event on its way to another thread, small: `report`'s two threads pass every event
/// between cores, and there the bytes that cross cost more than making them (an [`Event`]
/// is 104 bytes, a sent one 40). Made by an [`EventSender`], read by an [`EventReceiver`].
#[derive(Debug)]
pub enum SentEvent<'a> {
    /// FORK.
    Fork {
        /// Time, cpu, pid, tid.
        head: SentHead,
        /// Parent process.
        ppid: u32,
        /// Parent thread.
        ptid: u32,
    },
    /// EXIT.
    Exit {
        /// Time, cpu, pid, tid.
        head: SentHead,
        /// Parent process.
        ppid: u32,
        /// Parent thread.
        ptid: u32,
    },
    /// NAMESPACES: its set by its index among the sets sent, its command name by its slot.
    Namespaces {
        /// Time, cpu, pid, tid.
        head: SentHead,
        /// Index of the set.
        set: u32,
        /// Slot of the command name ([`NO_COMM`]: none known).
        comm: u32,
    },
    /// A set not sent before: it takes the next index.
    NewSet(Box<NsSet>),
    /// A command name in a slot (new, or reused once no task had the name before).
    CommSlot(Box<(u32, CompactString)>),
    /// Any other event (rarer, and larger: boxed).
    Other(Box<Event<'a>>),
}

/// The comm slot of a task whose command name is not known.
pub const NO_COMM: u32 = u32::MAX;

/// Command names by tid on the sending side, as [`Comms`](super::Comms) keeps them, held as slots that
/// the receiving side learns from [`SentEvent::CommSlot`] (a fork copies a number, not a
/// name). A slot is counted by the tasks that have its name, and reused once none has it,
/// so memory follows the live tasks, not the names ever seen.
#[derive(Debug, Default)]
struct CommSlots {
    by_tid: TidTable,
    /// Each slot's name and how many tasks have it.
    slots: Vec<(CompactString, u32)>,
    by_name: HashMap<CompactString, u32>,
    free: Vec<u32>,
}

impl CommSlots {
    #[inline(always)]
    fn get(&self, tid: u32) -> u32 {
        self.by_tid.get(tid)
    }

    #[inline(always)]
    fn assign(&mut self, tid: u32, slot: u32) {
        self.slots[slot as usize].1 += 1;
        let old = self.by_tid.replace(tid, slot);
        if old != NO_COMM {
            self.release(old);
        }
    }

    #[inline(always)]
    fn release(&mut self, slot: u32) {
        let s = &mut self.slots[slot as usize];
        s.1 -= 1;
        if s.1 == 0 {
            self.by_name.remove(&s.0);
            self.free.push(slot);
        }
    }

    #[inline(always)]
    fn fork(&mut self, ptid: u32, tid: u32) {
        let s = self.by_tid.get(ptid);
        if s != NO_COMM {
            self.assign(tid, s);
        }
    }

    #[inline(always)]
    fn exit(&mut self, tid: u32) {
        let s = self.by_tid.replace(tid, NO_COMM);
        if s != NO_COMM {
            self.release(s);
        }
    }

    /// Gives `tid` the name `comm`; a name without a slot takes one, sent ahead in `out`.
    fn set<'a>(&mut self, tid: u32, comm: &str, out: &mut Vec<SentEvent<'a>>) {
        let s = self.by_tid.get(tid);
        if s != NO_COMM && self.slots[s as usize].0 == comm {
            return;
        }
        let slot = match self.by_name.get(comm) {
            Some(&s) => s,
            None => {
                let name = CompactString::from(comm);
                let s = match self.free.pop() {
                    Some(s) => {
                        self.slots[s as usize] = (name.clone(), 0);
                        s
                    }
                    None => {
                        self.slots.push((name.clone(), 0));
                        (self.slots.len() - 1) as u32
                    }
                };
                self.by_name.insert(name.clone(), s);
                out.push(SentEvent::CommSlot(Box::new((s, name))));
                s
            }
        };
        self.assign(tid, slot);
    }
}

/// A u32 per tid ([`NO_COMM`] for none): tids below 2^22 (Linux's PID_MAX_LIMIT) in pages
/// of 4,096 made when first written (a fork storm's tids count up through a few of them;
/// a hash per fork, exit and NAMESPACES record had cost the reader 48 M instructions of a
/// 600,000-record capture), others in a map. Memory is bounded by the tids' range (16 MiB
/// at most), not by the records.
#[derive(Debug, Default)]
struct TidTable {
    pages: Vec<Option<Box<[u32; TID_PAGE]>>>,
    others: HashMap<u32, u32>,
    /// Tids with a value.
    len: usize,
}

const TID_PAGE: usize = 4096;
const TID_PAGED: u32 = 1 << 22;

impl TidTable {
    #[inline(always)]
    fn get(&self, tid: u32) -> u32 {
        if tid < TID_PAGED {
            let (p, i) = (tid as usize / TID_PAGE, tid as usize % TID_PAGE);
            match self.pages.get(p) {
                Some(Some(page)) => page[i],
                _ => NO_COMM,
            }
        } else {
            self.others.get(&tid).copied().unwrap_or(NO_COMM)
        }
    }

    /// Sets `tid`'s value ([`NO_COMM`] clears it); returns the former one.
    #[inline(always)]
    fn replace(&mut self, tid: u32, v: u32) -> u32 {
        let old = if tid < TID_PAGED {
            let (p, i) = (tid as usize / TID_PAGE, tid as usize % TID_PAGE);
            if self.pages.len() <= p {
                if v == NO_COMM {
                    return NO_COMM;
                }
                self.pages.resize_with(p + 1, || None);
            }
            let page = match &mut self.pages[p] {
                Some(page) => page,
                None if v == NO_COMM => return NO_COMM,
                page => page.insert(Box::new([NO_COMM; TID_PAGE])),
            };
            std::mem::replace(&mut page[i], v)
        } else if v == NO_COMM {
            self.others.remove(&tid).unwrap_or(NO_COMM)
        } else {
            self.others.insert(tid, v).unwrap_or(NO_COMM)
        };
        self.len = self.len + usize::from(v != NO_COMM) - usize::from(old != NO_COMM);
        old
    }
}

/// Time, cpu, pid and tid of a [`SentEvent`], each present or not.
#[derive(Debug, Clone, Copy)]
pub struct SentHead {
    time: u64,
    cpu: u32,
    pid: u32,
    tid: u32,
    /// Which of them are present (bits: time, cpu, pid, tid).
    present: u8,
}

impl SentHead {
    #[inline(always)]
    fn of(h: &EventHead) -> Self {
        let bit = |present: bool, b: u8| if present { b } else { 0 };
        SentHead {
            time: h.time_ns.unwrap_or(0),
            cpu: h.cpu.unwrap_or(0),
            pid: h.pid.unwrap_or(0),
            tid: h.tid.unwrap_or(0),
            present: bit(h.time_ns.is_some(), 1)
                | bit(h.cpu.is_some(), 2)
                | bit(h.pid.is_some(), 4)
                | bit(h.tid.is_some(), 8),
        }
    }

    #[inline(always)]
    fn head(&self) -> EventHead {
        let has = |b: u8| self.present & b != 0;
        EventHead {
            time_ns: has(1).then_some(self.time),
            cpu: has(2).then_some(self.cpu),
            pid: has(4).then_some(self.pid),
            tid: has(8).then_some(self.tid),
        }
    }
}

/// The reading end of events that cross to another thread: decoded records in,
/// [`SentEvent`]s out. It keeps the command names by slot (`CommSlots`) and sends each
/// distinct set once.
#[derive(Debug)]
pub struct EventSender {
    builder: EventBuilder,
    sets: Interner,
    /// Sets sent so far.
    sent: u32,
    /// The links of the last two distinct NAMESPACES records, as they lie in the record (at
    /// most [`crate::nsset::MAX_LINKS`] of them), with their sets' indexes, the newer
    /// first: a fork storm repeats one set, a thread of a setns storm goes back and forth
    /// between two, and comparing bytes is cheaper than reading and interning a set again.
    last: [(Vec<u8>, u32); 2],
    /// The last record matched the older of the two: records alternate (a setns storm),
    /// and the older is compared first, one compare a record instead of two.
    alternating: bool,
    comms: CommSlots,
}

impl Default for EventSender {
    fn default() -> Self {
        EventSender {
            builder: EventBuilder::without_comms(),
            sets: Interner::default(),
            sent: 0,
            last: [(Vec::new(), u32::MAX), (Vec::new(), u32::MAX)],
            alternating: false,
            comms: CommSlots::default(),
        }
    }
}

impl EventSender {
    /// A sender that has sent nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes `view` and appends to `out` what carries its event, if it makes one: what
    /// [`Decoder::decode`] and [`EventSender::send_into`] do, with the records a file is
    /// full of (FORK, EXIT, NAMESPACES) read straight into their [`SentEvent`] (by
    /// [`Decoder::hot`]: only the fields the event needs). Anything else,
    /// and any record these reads would not accept, takes the general path, errors
    /// included.
    #[inline(always)]
    pub fn send_record<'a>(
        &mut self,
        decoder: &Decoder,
        view: &RecordView<'a>,
        out: &mut Vec<SentEvent<'a>>,
    ) -> Result<(), DecodeError> {
        if self.send_hot(decoder, view, out).is_some() {
            return Ok(());
        }
        let (rec, id) = decoder.decode(view)?;
        self.send_into(&rec, &id, out);
        Ok(())
    }

    /// The fast path of [`EventSender::send_record`]; `None` when it does not apply (and
    /// nothing was appended).
    #[inline(always)]
    fn send_hot<'a>(
        &mut self,
        decoder: &Decoder,
        view: &RecordView<'a>,
        out: &mut Vec<SentEvent<'a>>,
    ) -> Option<()> {
        match decoder.hot(view)? {
            Hot::Task {
                exit,
                pid,
                ppid,
                tid,
                ptid,
                time,
                cpu,
            } => {
                let head = SentHead {
                    time,
                    cpu: cpu.unwrap_or(0),
                    pid,
                    tid,
                    present: 1 | if cpu.is_some() { 2 } else { 0 } | 4 | 8,
                };
                out.push(if exit {
                    self.comms.exit(tid);
                    SentEvent::Exit { head, ppid, ptid }
                } else {
                    self.comms.fork(ptid, tid);
                    SentEvent::Fork { head, ppid, ptid }
                });
                Some(())
            }
            Hot::Namespaces(h) => {
                let hit = {
                    let is =
                        |k: usize| self.last[k].1 != u32::MAX && h.links == &self.last[k].0[..];
                    match self.alternating {
                        true if is(1) => Some(1),
                        _ if is(0) => Some(0),
                        false if is(1) => Some(1),
                        _ => None,
                    }
                };
                self.alternating = hit == Some(1);
                let set = if let Some(k) = hit {
                    if k == 1 {
                        self.last.swap(0, 1);
                    }
                    self.last[0].1
                } else {
                    let ns = NsSet::from_record(&h.view());
                    let set = self.sets.intern(&ns).0;
                    if set == self.sent {
                        out.push(SentEvent::NewSet(Box::new(ns)));
                        self.sent += 1;
                    }
                    // The older entry's buffer takes the new links.
                    self.last.swap(0, 1);
                    let (links, last) = &mut self.last[0];
                    links.clear();
                    links.extend_from_slice(h.links);
                    *last = set;
                    set
                };
                let head = SentHead {
                    time: h.time.unwrap_or(0),
                    cpu: h.cpu.unwrap_or(0),
                    pid: h.pid,
                    tid: h.tid,
                    present: u8::from(h.time.is_some())
                        | if h.cpu.is_some() { 2 } else { 0 }
                        | 4
                        | 8,
                };
                let comm = self.comms.get(h.tid);
                out.push(SentEvent::Namespaces { head, set, comm });
                Some(())
            }
        }
    }

    /// Appends to `out` what carries the event of a decoded record, if it makes one.
    /// (Made in place in the batch.)
    #[inline(always)]
    pub fn send_into<'a>(&mut self, rec: &Record<'a>, id: &SampleId, out: &mut Vec<SentEvent<'a>>) {
        let Some((h, part)) = self.builder.parts(rec, id) else {
            return;
        };
        let head = SentHead::of(&h);
        match part {
            Part::Namespaces(ns) => {
                let set = self.sets.intern(&ns).0;
                if set == self.sent {
                    out.push(SentEvent::NewSet(Box::new(ns)));
                    self.sent += 1;
                }
                let comm = h.tid.map_or(NO_COMM, |t| self.comms.get(t));
                out.push(SentEvent::Namespaces { head, set, comm });
            }
            Part::Body(Body::Fork { ppid, ptid }) => {
                if let Some(tid) = h.tid {
                    self.comms.fork(ptid, tid);
                }
                out.push(SentEvent::Fork { head, ppid, ptid })
            }
            Part::Body(Body::Exit { ppid, ptid }) => {
                if let Some(tid) = h.tid {
                    self.comms.exit(tid);
                }
                out.push(SentEvent::Exit { head, ppid, ptid })
            }
            Part::Body(body) => {
                if let (Body::Comm { comm, .. }, Some(tid)) = (&body, h.tid) {
                    self.comms.set(tid, comm, out);
                }
                out.push(SentEvent::Other(Box::new(h.with(body))))
            }
        }
    }
}

/// The other end of an [`EventSender`]: the events again, with their command names.
#[derive(Debug, Default)]
pub struct EventReceiver {
    /// The command names by slot.
    comms: Vec<CompactString>,
    sets: Vec<NsSet>,
}

impl EventReceiver {
    /// A receiver that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Calls `f` with the event `sent` carries, in the order they were sent; a set sent
    /// ahead of its events, or a command name's slot, is only kept (`None`).
    #[inline(always)]
    pub fn receive<R>(
        &mut self,
        sent: &SentEvent<'_>,
        f: impl FnOnce(&Event<'_>) -> R,
    ) -> Option<R> {
        self.receive_at(sent, |ev, _| f(ev))
    }

    /// [`EventReceiver::receive`], with the index of a NAMESPACES event's set: the same set
    /// has the same index for as long as the receiver lives, so that the model and the
    /// writer can find what they made of it by the index ([`Attributor::observe_at`],
    /// [`JsonWriter::write_labeled_at`]) instead of comparing sets.
    ///
    /// [`Attributor::observe_at`]: crate::model::Attributor::observe_at
    /// [`JsonWriter::write_labeled_at`]: super::JsonWriter::write_labeled_at
    #[inline(always)]
    pub fn receive_at<R>(
        &mut self,
        sent: &SentEvent<'_>,
        f: impl FnOnce(&Event<'_>, Option<u32>) -> R,
    ) -> Option<R> {
        let ev = match sent {
            SentEvent::NewSet(ns) => {
                self.sets.push(**ns);
                return None;
            }
            SentEvent::CommSlot(c) => {
                let (slot, name) = &**c;
                match self.comms.get_mut(*slot as usize) {
                    Some(s) => s.clone_from(name),
                    None => self.comms.push(name.clone()),
                }
                return None;
            }
            SentEvent::Namespaces { head, set, comm } => {
                let h = head.head();
                // A slot the sender gave: its name came first.
                let comm =
                    (*comm != NO_COMM).then(|| Cow::Borrowed(self.comms[*comm as usize].as_str()));
                // An index the sender gave: its set came first.
                let ns = &self.sets[*set as usize];
                let ev = h.with(Body::Namespaces {
                    ns,
                    comm,
                    cause: None,
                });
                return Some(f(&ev, Some(*set)));
            }
            SentEvent::Fork { head, ppid, ptid } => head.head().with(Body::Fork {
                ppid: *ppid,
                ptid: *ptid,
            }),
            SentEvent::Exit { head, ppid, ptid } => head.head().with(Body::Exit {
                ppid: *ppid,
                ptid: *ptid,
            }),
            SentEvent::Other(ev) => return Some(f(ev, None)),
        };
        Some(f(&ev, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comm_slots_are_reused_once_no_task_has_the_name() {
        use crate::record::{Comm, TaskEvent};
        let mut sender = EventSender::new();
        let mut out = Vec::new();
        let task = |tid, ptid| TaskEvent {
            pid: tid,
            ppid: ptid,
            tid,
            ptid,
            time: 0,
        };
        for tid in 2..10_000u32 {
            let comm = Record::Comm(Comm {
                pid: tid,
                tid,
                comm: Cow::Owned(format!("n{tid}")),
                exec: true,
            });
            sender.send_into(&comm, &SampleId::default(), &mut out);
            sender.send_into(
                &Record::Fork(task(tid + 1, tid)),
                &SampleId::default(),
                &mut out,
            );
            // The child has its parent's name, not a slot of its own.
            assert_eq!(sender.comms.get(tid + 1), sender.comms.get(tid));
            sender.send_into(&Record::Exit(task(tid, 1)), &SampleId::default(), &mut out);
            sender.send_into(
                &Record::Exit(task(tid + 1, tid)),
                &SampleId::default(),
                &mut out,
            );
            assert_eq!(sender.comms.get(tid), NO_COMM);
            out.clear();
        }
        assert!(
            sender.comms.slots.len() <= 1,
            "{}",
            sender.comms.slots.len()
        );
        assert!(sender.comms.by_name.len() + sender.comms.by_tid.len == 0);
        // Tids past the pages.
        let t = &mut sender.comms.by_tid;
        for tid in [0, 4095, 4096, TID_PAGED - 1, TID_PAGED, u32::MAX] {
            assert_eq!(t.get(tid), NO_COMM);
            assert_eq!(t.replace(tid, 7), NO_COMM);
            assert_eq!(t.get(tid), 7);
            assert_eq!(t.replace(tid, 8), 7);
        }
        assert_eq!(t.len, 6);
        for tid in [0, 4095, 4096, TID_PAGED - 1, TID_PAGED, u32::MAX] {
            assert_eq!(t.replace(tid, NO_COMM), 8);
            assert_eq!(t.get(tid), NO_COMM);
        }
        assert_eq!(t.len, 0);
        assert_eq!(t.replace(12345, NO_COMM), NO_COMM);
    }
}
