//! The NDJSON writer: events as lines of the stream, the same bytes from [`Event::write_json`]
//! (plain) and [`JsonWriter`] (with caches, for streams of many events).

use super::cause::CauseCache;
use super::{Body, Cause, Event};
use crate::json::{eight, needs_escape, push_str, push_u64, Digits, RecentTexts, TimeHigh};
use crate::nsset::{link_name, NsSet};
use hashbrown::HashMap;

/// The start of a line of each type, up to the time's value, in the order of
/// [`Body::type_index`]: one copy instead of three.
const LINE_STARTS: [&str; 10] = [
    r#"{"type":"namespaces","time_ns":"#,
    r#"{"type":"fork","time_ns":"#,
    r#"{"type":"exit","time_ns":"#,
    r#"{"type":"comm","time_ns":"#,
    r#"{"type":"cgroup","time_ns":"#,
    r#"{"type":"lost","time_ns":"#,
    r#"{"type":"lost_samples","time_ns":"#,
    r#"{"type":"sample","time_ns":"#,
    r#"{"type":"ns_syscall","time_ns":"#,
    r#"{"type":"ns_syscall_lost","time_ns":"#,
];

/// Writes events as NDJSON lines.
///
/// Written by hand rather than through serde's map serializer: this is the hot path of
/// `report --format ndjson` and `record`; static keys need no escaping, and the "ns" object
/// of a namespace set, the bulk of a line, is formatted once per distinct set (a machine
/// has few sets and a fork storm repeats one).
#[derive(Debug)]
pub struct JsonWriter {
    /// The text of each distinct set written, and where it is in `texts`.
    ns_text: HashMap<NsSet, usize>,
    texts: Vec<Box<[u8]>>,
    /// The last two sets written and their texts' indexes (`last_new` is the newer): a
    /// fork storm repeats one set and a setns storm alternates two, and comparing is
    /// cheaper than hashing. They stay where they are when found (moving a 136-byte set
    /// per line cost 3% of a storm's CPU).
    last: [Option<(NsSet, usize)>; 2],
    last_new: usize,
    /// The index in `texts` of the set a stream names by its index
    /// ([`JsonWriter::write_labeled_at`]), [`NO_TEXT`] for none yet: no compare at all.
    by_index: Vec<u32>,
    /// The label fields (`,"container":…`) recently appended after a line, by the
    /// [`LineLabel::key`] they were made from: consecutive events mostly share a group, or
    /// go back and forth between two (a setns storm).
    labels: RecentTexts<(u64, Option<String>)>,
    /// The high digits of the last timestamp.
    time_hi: TimeHigh,
    /// The last number written in each [`Slot`], and its digits: a task's pid comes back on
    /// its FORK, NAMESPACES and EXIT lines, and a fork storm has one parent. The tid has a
    /// slot of its own: a thread's pid and tid, in one slot, missed on every line.
    ids: [(u32, Digits); SLOTS],
    /// The text of what the eBPF causes repeat.
    cause_texts: CauseCache,
}

/// Where a 32-bit number goes in a line, for [`JsonWriter`]'s digit cache.
#[derive(Clone, Copy)]
enum Slot {
    Cpu = 0,
    Pid = 1,
    Tid = 2,
    Ppid = 3,
    Ptid = 4,
}
const SLOTS: usize = 5;

/// How the variable parts of a line are written: plainly ([`Event::write_json`]) or from a
/// [`JsonWriter`]'s caches. Both write the same bytes.
trait Texts {
    fn time(&mut self, out: &mut Vec<u8>, v: u64);
    fn ns(&mut self, out: &mut Vec<u8>, ns: &NsSet);
    fn id(&mut self, out: &mut Vec<u8>, slot: Slot, v: u32);
    fn cause(&mut self, out: &mut Vec<u8>, c: &Cause);
}

/// [`Texts`] without caches.
struct Plain;

impl Texts for Plain {
    fn time(&mut self, out: &mut Vec<u8>, v: u64) {
        push_u64(out, v)
    }
    fn ns(&mut self, out: &mut Vec<u8>, ns: &NsSet) {
        push_ns(out, ns)
    }
    fn id(&mut self, out: &mut Vec<u8>, _: Slot, v: u32) {
        Digits::of(v.into()).push_to(out)
    }
    fn cause(&mut self, out: &mut Vec<u8>, c: &Cause) {
        c.write_fields(out, None)
    }
}

/// Distinct sets whose text is kept; past that the cache starts over.
const NS_TEXT_CACHE: usize = 4096;
/// No text yet, in [`JsonWriter`]'s `by_index`.
const NO_TEXT: u32 = u32::MAX;

fn push_ns(out: &mut Vec<u8>, ns: &NsSet) {
    out.push(b'{');
    for (i, l) in ns.links().iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'"');
        out.extend_from_slice(link_name(i).as_bytes());
        out.extend_from_slice(b"\":{\"dev\":");
        push_u64(out, l.dev);
        out.extend_from_slice(b",\"ino\":");
        push_u64(out, l.ino);
        out.push(b'}');
    }
    out.push(b'}');
}

impl Default for JsonWriter {
    fn default() -> Self {
        JsonWriter {
            ns_text: HashMap::new(),
            texts: Vec::new(),
            last: [None, None],
            last_new: 0,
            by_index: Vec::new(),
            labels: RecentTexts::default(),
            time_hi: TimeHigh::default(),
            ids: std::array::from_fn(|_| (0, Digits::of(0))),
            cause_texts: CauseCache::default(),
        }
    }
}

impl JsonWriter {
    /// A writer with an empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `ev` as one line of the NDJSON stream (with its newline).
    #[inline]
    pub fn write(&mut self, ev: &Event<'_>, out: &mut Vec<u8>) {
        if !self.write_hot(ev, &[], None, out) {
            ev.write_json_with(out, self);
        }
    }

    /// Appends `ev` as one line with the fields of `label` (the group it belongs to) before
    /// its end: the usual lines (FORK, EXIT, NAMESPACES) in one reservation
    /// ([`JsonWriter::write_labeled_cached`]), the rest after the line is written.
    #[inline(always)]
    pub fn write_labeled<L: LineLabel + ?Sized>(
        &mut self,
        ev: &Event<'_>,
        label: Option<&L>,
        out: &mut Vec<u8>,
    ) {
        self.write_labeled_at(ev, label, None, out)
    }

    /// [`JsonWriter::write_labeled`] for an event of a stream that names each distinct set
    /// by an index (`set_index`, that of a NAMESPACES event's set), the same set under the
    /// same index every time: an [`EventReceiver`](super::EventReceiver)'s. Its text is then
    /// found by the index, without comparing sets. One stream per writer.
    #[inline(always)]
    pub fn write_labeled_at<L: LineLabel + ?Sized>(
        &mut self,
        ev: &Event<'_>,
        label: Option<&L>,
        set_index: Option<u32>,
        out: &mut Vec<u8>,
    ) {
        if !self.write_labeled_cached_at(ev, label, set_index, out) {
            self.write_labeled_generally(ev, label, out);
        }
    }

    fn write_labeled_generally<L: LineLabel + ?Sized>(
        &mut self,
        ev: &Event<'_>,
        label: Option<&L>,
        out: &mut Vec<u8>,
    ) {
        self.write(ev, out);
        if let Some(l) = label {
            // Every line ends with "}\n"; the fields go in before it.
            out.truncate(out.len() - 2);
            out.extend_from_slice(label_text(&mut self.labels, l));
            out.extend_from_slice(b"}\n");
        }
    }

    /// What [`JsonWriter::write_labeled`] appends, when `ev` is a line of the kinds a file
    /// is full of (true); else nothing (false). Its fast path.
    #[inline(always)]
    pub fn write_labeled_cached<L: LineLabel + ?Sized>(
        &mut self,
        ev: &Event<'_>,
        label: Option<&L>,
        out: &mut Vec<u8>,
    ) -> bool {
        self.write_labeled_cached_at(ev, label, None, out)
    }

    #[inline(always)]
    fn write_labeled_cached_at<L: LineLabel + ?Sized>(
        &mut self,
        ev: &Event<'_>,
        label: Option<&L>,
        set_index: Option<u32>,
        out: &mut Vec<u8>,
    ) -> bool {
        let Some(l) = label else {
            return self.write_hot(ev, &[], set_index, out);
        };
        // Moved out and back: the line's writer borrows the rest of `self`.
        let mut labels = std::mem::take(&mut self.labels);
        let done = self.write_hot(ev, label_text(&mut labels, l), set_index, out);
        self.labels = labels;
        done
    }

    /// FORK, EXIT and NAMESPACES lines, with `suffix` before their end,
    /// written with one reservation each: the same bytes as `write_json_with` (then the
    /// suffix), without a capacity check per piece. False (nothing written) for other
    /// events. `set_index`: see [`JsonWriter::write_labeled_at`].
    #[inline(always)]
    fn write_hot(
        &mut self,
        ev: &Event<'_>,
        suffix: &[u8],
        set_index: Option<u32>,
        out: &mut Vec<u8>,
    ) -> bool {
        if ev.synthesized {
            return false;
        }
        match &ev.body {
            Body::Fork { ppid, ptid } => {
                self.write_task(LINE_STARTS[1].as_bytes(), ev, *ppid, *ptid, suffix, out)
            }
            Body::Exit { ppid, ptid } => {
                self.write_task(LINE_STARTS[2].as_bytes(), ev, *ppid, *ptid, suffix, out)
            }
            Body::Namespaces { ns, comm, cause } => {
                let i = match set_index {
                    Some(k) => self.ns_index_at(k, ns),
                    None => self.ns_index(ns),
                };
                self.write_namespaces(ev, i, comm.as_deref(), *cause, suffix, out)
            }
            _ => return false,
        }
        true
    }

    /// The start of a line up to the tid's value, at most [`HEAD_MAX`] bytes written (with
    /// the slack of the digits' fixed-size stores).
    #[inline(always)]
    fn head(&mut self, c: &mut Cursor, start: &[u8], ev: &Event<'_>) {
        c.put(start);
        match ev.time_ns {
            Some(v) => {
                let hi = v / 100_000_000;
                if hi == 0 {
                    c.digits(&Digits::of(v));
                } else {
                    c.digits(self.time_hi.digits(hi));
                    c.put(&eight((v % 100_000_000) as u32).to_le_bytes());
                }
            }
            None => c.put(b"null"),
        }
        c.put(b",\"cpu\":");
        self.id_at(c, Slot::Cpu, ev.cpu);
        c.put(b",\"pid\":");
        self.id_at(c, Slot::Pid, ev.pid);
        c.put(b",\"tid\":");
        self.id_at(c, Slot::Tid, ev.tid);
    }

    #[inline(always)]
    fn id_at(&mut self, c: &mut Cursor, slot: Slot, v: Option<u32>) {
        match v {
            Some(v) => {
                let (last, d) = &mut self.ids[slot as usize];
                if *last != v {
                    // A cpu alternates among a few, a fork storm's pids count up: one
                    // digit, or the last number's digits plus one, need no conversion.
                    let new = if v < 10 {
                        Digits::one(v as u8)
                    } else if v == last.wrapping_add(1) {
                        d.succ().unwrap_or_else(|| Digits::of(v.into()))
                    } else {
                        Digits::of(v.into())
                    };
                    // Written from the new value, not read back from the cache it is
                    // stored in piece by piece (a stalled store-to-load forwarding).
                    c.digits(&new);
                    *d = new;
                    *last = v;
                } else {
                    c.digits(d);
                }
            }
            None => c.put(b"null"),
        }
    }

    /// A FORK or EXIT line.
    #[inline(always)]
    fn write_task(
        &mut self,
        start: &[u8],
        ev: &Event<'_>,
        ppid: u32,
        ptid: u32,
        suffix: &[u8],
        out: &mut Vec<u8>,
    ) {
        let mut c = Cursor::new(out, HEAD_MAX + 64 + suffix.len());
        self.head(&mut c, start, ev);
        c.put(b",\"ppid\":");
        self.id_at(&mut c, Slot::Ppid, Some(ppid));
        c.put(b",\"ptid\":");
        self.id_at(&mut c, Slot::Ptid, Some(ptid));
        c.put_short(suffix);
        c.put(b"}\n");
        c.done(out);
    }

    /// A NAMESPACES line (its head, set (the text at `i` in `texts`) and command name in one
    /// reservation).
    #[inline(always)]
    fn write_namespaces(
        &mut self,
        ev: &Event<'_>,
        i: usize,
        comm: Option<&str>,
        cause: Option<&Cause>,
        suffix: &[u8],
        out: &mut Vec<u8>,
    ) {
        let text = &self.texts[i];
        // A command name that needs no escaping goes in as it is.
        let plain = comm.filter(|c| !needs_escape(c.as_bytes()));
        let more = plain.map_or(0, |c| 10 + c.len()) + suffix.len() + 2;
        let mut c = Cursor::new(out, HEAD_MAX + 8 + text.len() + more);
        self.head(&mut c, LINE_STARTS[0].as_bytes(), ev);
        c.put(b",\"ns\":");
        c.put(&self.texts[i]);
        match (comm, plain) {
            (_, Some(cm)) => {
                c.put(b",\"comm\":\"");
                c.put_short(cm.as_bytes());
                c.put(b"\"");
            }
            (Some(cm), None) => {
                c.done(out);
                out.extend_from_slice(b",\"comm\":");
                push_str(out, cm);
                return self.end_namespaces(cause, suffix, out);
            }
            (None, None) => {}
        }
        if cause.is_some() {
            c.done(out);
            return self.end_namespaces(cause, suffix, out);
        }
        c.put_short(suffix);
        c.put(b"}\n");
        c.done(out);
    }

    /// The end of a NAMESPACES line from its "cause" on (without a room reserved: a cause
    /// has parts of any length).
    fn end_namespaces(&mut self, cause: Option<&Cause>, suffix: &[u8], out: &mut Vec<u8>) {
        if let Some(c) = cause {
            out.extend_from_slice(b",\"cause\":{");
            c.write_fields(out, Some(&mut self.cause_texts));
            out.push(b'}');
        }
        out.extend_from_slice(suffix);
        out.extend_from_slice(b"}\n");
    }

    /// [`JsonWriter::ns_index`] of the set a stream names by `index`.
    #[inline(always)]
    fn ns_index_at(&mut self, index: u32, ns: &NsSet) -> usize {
        let k = index as usize;
        if let Some(&i) = self.by_index.get(k) {
            if i != NO_TEXT {
                return i as usize;
            }
        }
        let i = self.ns_index(ns);
        // The cache may have started over in `ns_index`, emptying the table.
        if self.by_index.len() <= k {
            self.by_index.resize(k + 1, NO_TEXT);
        }
        self.by_index[k] = i as u32;
        i
    }

    /// The index in `texts` of the text of `ns`, made if new.
    #[inline(always)]
    fn ns_index(&mut self, ns: &NsSet) -> usize {
        // By reference: a set is 136 bytes, not worth a copy per line.
        let newer = self.last_new;
        for k in [newer, 1 - newer] {
            if let Some((set, i)) = &self.last[k] {
                if set == ns {
                    return *i;
                }
            }
        }
        let i = match self.ns_text.get(ns) {
            Some(&i) => i,
            None => {
                if self.texts.len() >= NS_TEXT_CACHE {
                    self.ns_text.clear();
                    self.texts.clear();
                    self.last = [None, None];
                    self.by_index.clear();
                }
                let mut t = Vec::new();
                push_ns(&mut t, ns);
                self.texts.push(t.into());
                self.ns_text.insert(*ns, self.texts.len() - 1);
                self.texts.len() - 1
            }
        };
        // An index, not a copy of the text: sets that alternate (a thread going back and
        // forth with setns) cost no allocation per line.
        // The older of the two makes room.
        self.last_new = 1 - newer;
        self.last[self.last_new] = Some((*ns, i));
        i
    }
}

/// Bytes a line's head takes at most, with the slack of the last fixed-size store: the
/// longest start (31), a time (20), the three ids with their keys (3 × 27) and 20 spare.
const HEAD_MAX: usize = 31 + 20 + 3 * 27 + 20;

/// Appends to a Vec's spare room, reserved once for a line (see [`Cursor::new`]): the
/// pieces of a line without a capacity check each.
struct Cursor {
    p: *mut u8,
    end: *mut u8,
}

impl Cursor {
    /// Reserves `room` bytes past `out`'s end; the writes through the cursor must stay
    /// within them, counting the 20 bytes every [`Cursor::digits`] stores.
    #[inline(always)]
    fn new(out: &mut Vec<u8>, room: usize) -> Cursor {
        out.reserve(room);
        // SAFETY: within the allocation (reserved above).
        let p = unsafe { out.as_mut_ptr().add(out.len()) };
        Cursor {
            p,
            // SAFETY: as above.
            end: unsafe { p.add(room) },
        }
    }

    #[inline(always)]
    fn put(&mut self, s: &[u8]) {
        debug_assert!(self.p as usize + s.len() <= self.end as usize);
        // SAFETY: the caller reserved room for every piece (`Cursor::new`).
        unsafe {
            std::ptr::copy_nonoverlapping(s.as_ptr(), self.p, s.len());
            self.p = self.p.add(s.len());
        }
    }

    /// Like [`Cursor::put`] for a piece of any length, without a call to memcpy for
    /// those up to 32 bytes (two overlapping copies of a fixed size).
    #[inline(always)]
    fn put_short(&mut self, s: &[u8]) {
        let n = s.len();
        debug_assert!(self.p as usize + n <= self.end as usize);
        // SAFETY: the caller reserved room for every piece; each copy reads and writes
        // within the first `n` bytes of `s` and of the room.
        unsafe {
            crate::bytes::copy_short(s.as_ptr(), self.p, n);
            self.p = self.p.add(n);
        }
    }

    #[inline(always)]
    fn digits(&mut self, d: &Digits) {
        debug_assert!(self.p as usize + 20 <= self.end as usize);
        // SAFETY: as in `put`; 20 bytes are stored and `len` of them kept.
        unsafe {
            self.p
                .cast::<[u8; 16]>()
                .write_unaligned(d.first.to_le_bytes());
            self.p
                .add(16)
                .cast::<[u8; 4]>()
                .write_unaligned(d.rest.to_le_bytes());
            self.p = self.p.add(d.len as usize);
        }
    }

    /// Makes what was written part of `out`.
    #[inline(always)]
    fn done(self, out: &mut Vec<u8>) {
        // SAFETY: every byte up to `p` was written, within the reserved room.
        unsafe {
            let len = self.p.offset_from(out.as_ptr()) as usize;
            out.set_len(len);
        }
    }
}

impl Texts for JsonWriter {
    #[inline(always)]
    fn time(&mut self, out: &mut Vec<u8>, v: u64) {
        self.time_hi.push(out, v)
    }

    #[inline(always)]
    fn id(&mut self, out: &mut Vec<u8>, slot: Slot, v: u32) {
        let (last, d) = &mut self.ids[slot as usize];
        if *last != v {
            (*last, *d) = (v, Digits::of(v.into()));
        }
        d.push_to(out);
    }

    fn cause(&mut self, out: &mut Vec<u8>, c: &Cause) {
        c.write_fields(out, Some(&mut self.cause_texts))
    }

    #[inline(always)]
    fn ns(&mut self, out: &mut Vec<u8>, ns: &NsSet) {
        let i = self.ns_index(ns);
        out.extend_from_slice(&self.texts[i]);
    }
}

impl Event<'_> {
    /// Appends the event as one line of the NDJSON stream (with its newline). A
    /// [`JsonWriter`] writes the same bytes faster when there are many events.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        self.write_json_with(out, &mut Plain);
    }

    #[inline(always)]
    fn write_json_with(&self, out: &mut Vec<u8>, texts: &mut impl Texts) {
        out.extend_from_slice(LINE_STARTS[self.body.type_index()].as_bytes());
        match self.time_ns {
            Some(t) => texts.time(out, t),
            None => out.extend_from_slice(b"null"),
        }
        let mut id = |out: &mut Vec<u8>, slot, v: Option<u32>| match v {
            Some(v) => texts.id(out, slot, v),
            None => out.extend_from_slice(b"null"),
        };
        out.extend_from_slice(b",\"cpu\":");
        id(out, Slot::Cpu, self.cpu);
        out.extend_from_slice(b",\"pid\":");
        id(out, Slot::Pid, self.pid);
        out.extend_from_slice(b",\"tid\":");
        // In the pid's slot: a process's main thread (most events) has the same digits.
        id(out, Slot::Tid, self.tid);
        if self.synthesized {
            out.extend_from_slice(b",\"synthesized\":true");
        }
        match &self.body {
            Body::Namespaces { ns, comm, cause } => {
                out.extend_from_slice(b",\"ns\":");
                texts.ns(out, ns);
                if let Some(c) = comm {
                    out.extend_from_slice(b",\"comm\":");
                    push_str(out, c);
                }
                if let Some(c) = cause {
                    out.extend_from_slice(b",\"cause\":{");
                    texts.cause(out, c);
                    out.push(b'}');
                }
            }
            Body::NsSyscall { call } => {
                out.extend_from_slice(b",\"comm\":");
                push_str(out, &call.comm);
                out.push(b',');
                texts.cause(out, call);
            }
            Body::NsSyscallLost { lost } => {
                out.extend_from_slice(b",\"lost\":");
                push_u64(out, *lost);
            }
            Body::Fork { ppid, ptid } | Body::Exit { ppid, ptid } => {
                out.extend_from_slice(b",\"ppid\":");
                texts.id(out, Slot::Ppid, *ppid);
                out.extend_from_slice(b",\"ptid\":");
                texts.id(out, Slot::Ptid, *ptid);
            }
            Body::Comm { comm, exec } => {
                out.extend_from_slice(b",\"comm\":");
                push_str(out, comm);
                out.extend_from_slice(if *exec {
                    b",\"exec\":true"
                } else {
                    b",\"exec\":false"
                });
            }
            Body::Cgroup { id, path } => {
                out.extend_from_slice(b",\"id\":");
                push_u64(out, *id);
                out.extend_from_slice(b",\"path\":");
                push_str(out, path);
            }
            Body::Lost { lost } | Body::LostSamples { lost } => {
                out.extend_from_slice(b",\"lost\":");
                push_u64(out, *lost);
            }
            Body::Sample {
                ip,
                period,
                callchain,
            } => {
                if let Some(ip) = ip {
                    out.extend_from_slice(b",\"ip\":");
                    push_u64(out, *ip);
                }
                if let Some(p) = period {
                    out.extend_from_slice(b",\"period\":");
                    push_u64(out, *p);
                }
                if let Some(c) = callchain {
                    out.extend_from_slice(b",\"callchain\":[");
                    for (i, ip) in c.iter().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        push_u64(out, *ip);
                    }
                    out.push(b']');
                }
            }
        }
        out.extend_from_slice(b"}\n");
    }

    /// The event as a JSON object (without the newline).
    pub fn to_json(&self) -> String {
        let mut v = Vec::with_capacity(256);
        self.write_json(&mut v);
        v.pop();
        String::from_utf8(v).expect("JSON written from UTF-8 strings")
    }
}

/// The fields a line gets from what it belongs to (`,"container":…`), given by the model
/// (its `Group` is one): writers take labels through this rather than the model's types, so
/// that the schema's writer imports nothing of the model above it.
pub trait LineLabel {
    /// What the fields' text is made from: labels with equal keys write equal fields. A
    /// number that names the label, and a text of it that may change under that number
    /// (a group's runtime id, once named).
    fn key(&self) -> (u64, Option<&str>);
    /// Appends the fields, each with its leading comma.
    fn write_fields(&self, out: &mut Vec<u8>);
}

/// The text of `label`'s fields, from `texts` (made there if new).
#[inline]
fn label_text<'t, L: LineLabel + ?Sized>(
    texts: &'t mut RecentTexts<(u64, Option<String>)>,
    label: &L,
) -> &'t [u8] {
    let (id, variant) = label.key();
    texts.text(
        |(i, v)| *i == id && v.as_deref() == variant,
        |text| {
            label.write_fields(text);
            (id, variant.map(str::to_string))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{JsonReader, EVENT_TYPES};
    use crate::record::NsLink;
    use std::borrow::Cow;

    #[test]
    fn the_writers_caches_change_no_byte() {
        // Times around the cached high digits' boundary, pid == tid and not, ppid == ptid.
        let times = [
            None,
            Some(0),
            Some(99_999_999),
            Some(100_000_000),
            Some(12_467_910_649_062),
            Some(12_467_999_999_999),
            Some(12_468_000_000_000),
            Some(12_468_000_000_001),
            Some(u64::MAX),
        ];
        let mut w = JsonWriter::new();
        for (i, t) in times.into_iter().enumerate() {
            let i = i as u32;
            let ev = Event {
                time_ns: t,
                cpu: Some(i),
                pid: Some(1000 + i),
                tid: Some(1000 + i * (i % 2)),
                synthesized: false,
                body: Body::Fork {
                    ppid: 7,
                    ptid: 7 + i % 2,
                },
            };
            let (mut a, mut b) = (Vec::new(), Vec::new());
            w.write(&ev, &mut a);
            ev.write_json(&mut b);
            assert_eq!(String::from_utf8(a).unwrap(), String::from_utf8(b).unwrap());
            let v: serde_json::Value = serde_json::from_str(&ev.to_json()).unwrap();
            assert_eq!(v["time_ns"].as_u64(), t);
            assert_eq!(v["tid"], 1000 + i * (i % 2));
            assert_eq!(v["ptid"], 7 + i % 2);
        }
        // Causes whose sets of links alternate, as a setns storm's do, and whose calls
        // repeat (their text is cached), times of a storm and of the first seconds after
        // boot, every way a line has a command name.
        let ns = NsSet::from_links((1..=7).map(|ino| NsLink { dev: 4, ino }));
        for i in 0..60u32 {
            let mut c = Cause::blank();
            c.dev = 4 + u64::from(i / 40);
            c.before[0] = 10 + i % 3;
            c.after[0] = 20 + i % 2;
            c.after[9] = i % 11;
            c.ret = -i64::from(i / 7 % 3);
            c.flags = 0x4000_0000 << (i / 5 % 2);
            c.child_tid = (i % 13 == 0).then_some(i);
            c.enter_ns =
                [u64::from(i), 54_083_258_160_300 + u64::from(i) * 3_000_000][i as usize % 2];
            c.exit_ns = c.enter_ns + 99_999_999 * u64::from(i % 4);
            let comm = [
                None,
                Some(Cow::Borrowed("stress")),
                Some(Cow::Borrowed("a\"b")),
            ];
            let ev = Event {
                time_ns: Some(c.exit_ns),
                cpu: Some(0),
                pid: Some(9),
                tid: Some(9),
                synthesized: i % 17 == 0,
                body: Body::Namespaces {
                    ns: &ns,
                    comm: comm[i as usize % 3].clone(),
                    cause: Some(&c),
                },
            };
            let (mut a, mut b) = (Vec::new(), Vec::new());
            w.write(&ev, &mut a);
            ev.write_json(&mut b);
            assert_eq!(String::from_utf8(a).unwrap(), String::from_utf8(b).unwrap());
        }
    }

    /// Set `i` of a stream of many (7 links, each its own inode).
    fn many_set(i: u64) -> NsSet {
        NsSet::from_links((1..=7).map(|k| NsLink {
            dev: 4,
            ino: k * 10_000 + i,
        }))
    }

    /// A NAMESPACES event of task 9 at `time`.
    fn ns_event<'a>(ns: &'a NsSet, time: u64, comm: Option<&'a str>) -> Event<'a> {
        Event {
            time_ns: Some(time),
            cpu: Some(0),
            pid: Some(9),
            tid: Some(9),
            synthesized: false,
            body: Body::Namespaces {
                ns,
                comm: comm.map(Cow::Borrowed),
                cause: None,
            },
        }
    }

    #[test]
    fn sets_written_past_the_cache_are_still_their_own_text() {
        // More distinct sets than the writer keeps, each followed by the one before it (a
        // thread going back and forth): the cache starts over on the way.
        let mut w = JsonWriter::new();
        for i in 1..(NS_TEXT_CACHE as u64 + 50) {
            for ns in [many_set(i), many_set(i - 1)] {
                let ev = ns_event(&ns, i, None);
                let (mut a, mut b) = (Vec::new(), Vec::new());
                w.write(&ev, &mut a);
                ev.write_json(&mut b);
                assert_eq!(a, b, "set {i}");
            }
        }
    }

    /// A group's fields, for the labelled writes.
    struct Label(u64);

    impl LineLabel for Label {
        fn key(&self) -> (u64, Option<&str>) {
            (self.0, None)
        }
        fn write_fields(&self, out: &mut Vec<u8>) {
            out.extend_from_slice(format!(",\"container\":\"g{}\"", self.0).as_bytes());
        }
    }

    #[test]
    fn sets_found_by_their_index_are_their_own_text() {
        // A stream's sets by index (the index of set k is k), past the cache's restart,
        // sets going back and forth, labelled lines and not, against the plain writer.
        let mut w = JsonWriter::new();
        for i in 1..(NS_TEXT_CACHE as u64 + 50) {
            for k in [i, i - 1, i, i - 1] {
                let ns = many_set(k);
                let ev = ns_event(&ns, i, Some("stress"));
                let label = Label(k % 3);
                let (mut a, mut b) = (Vec::new(), Vec::new());
                let labelled = k % 2 == 0;
                w.write_labeled_at(&ev, labelled.then_some(&label), Some(k as u32), &mut a);
                ev.write_json(&mut b);
                if labelled {
                    b.truncate(b.len() - 2);
                    label.write_fields(&mut b);
                    b.extend_from_slice(b"}\n");
                }
                assert_eq!(String::from_utf8(a).unwrap(), String::from_utf8(b).unwrap());
            }
        }
    }

    #[test]
    fn line_starts_name_every_type() {
        for (start, name) in LINE_STARTS.iter().zip(EVENT_TYPES) {
            assert_eq!(*start, format!(r#"{{"type":"{name}","time_ns":"#));
        }
    }

    #[test]
    fn json_is_valid_and_escaped() {
        let ev = Event {
            time_ns: None,
            cpu: Some(3),
            pid: Some(1),
            tid: Some(2),
            synthesized: true,
            body: Body::Namespaces {
                ns: &NsSet::from_links(
                    [NsLink {
                        dev: 4,
                        ino: u64::MAX,
                    }; 2],
                ),
                comm: Some(Cow::Borrowed("a\"b\\c\nd\u{1}é")),
                cause: None,
            },
        };
        let mut cached = Vec::new();
        let mut w = JsonWriter::new();
        w.write(&ev, &mut cached);
        w.write(&ev, &mut cached);
        assert_eq!(cached, [ev.to_json().as_bytes(), b"\n"].concat().repeat(2));
        let v: serde_json::Value = serde_json::from_str(&ev.to_json()).unwrap();
        assert_eq!(v["comm"], "a\"b\\c\nd\u{1}é");
        assert_eq!(v["time_ns"], serde_json::Value::Null);
        assert_eq!(v["ns"]["uts"]["ino"], u64::MAX);
        assert_eq!(v["type"], "namespaces");
        assert_eq!(v["synthesized"], true);
        let sample = Event {
            body: Body::Sample {
                ip: Some(1),
                period: None,
                callchain: Some(vec![5, 6]),
            },
            ..ev
        };
        let v: serde_json::Value = serde_json::from_str(&sample.to_json()).unwrap();
        assert_eq!(v["callchain"], serde_json::json!([5, 6]));
        assert!(v.get("period").is_none());

        // What the writer writes, the reader reads back as the same event.
        let mut r = JsonReader::new();
        for e in [&ev, &sample] {
            assert_eq!(r.read(&e.to_json()).unwrap().as_ref(), Some(e));
        }
        let fork = Event {
            body: Body::Fork { ppid: 1, ptid: 1 },
            synthesized: false,
            ..sample.clone()
        };
        assert_eq!(r.read(&fork.to_json()).unwrap(), Some(fork));
        assert_eq!(
            r.read(r#"{"type":"container_start","time_ns":1}"#).unwrap(),
            None
        );
        let e = r.read(r#"{"type":"fork","pid":1,"tid":1}"#).unwrap_err();
        assert!(e.to_string().contains("ppid"), "{e}");
        assert!(r
            .read("{\"type\":")
            .unwrap_err()
            .to_string()
            .contains("bad JSON"));
        assert!(r
            .read(r#"{"type":"exit","pid":-1,"ppid":0,"ptid":0}"#)
            .is_err());
    }
}
