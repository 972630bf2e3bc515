//! The event schema (NDJSON, version 1) shared by `report`, live capture, export and the TUI.
//!
//! Every object has "type", "time_ns", "cpu" (null when unknown), "pid" and "tid"; the rest
//! depends on the type. Later versions add fields and never rename them. The JSON Schema is
//! schema/event-v1.schema.json.

use crate::bpf::event::CauseCache;
use crate::bpf::Cause;
use crate::decoder::{Decoder, Hot};
use crate::error::DecodeError;
use crate::nsset::{link_name, Interner, NsSet};
use crate::record::NS_KINDS;
use crate::record::{Record, RecordView, SampleId};
use compact_str::CompactString;
use hashbrown::HashMap;
use std::borrow::Cow;

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
    /// True for state read from /proc at start (or after lost records) rather than
    /// recorded by the kernel as it happened.
    pub synthesized: bool,
    /// What happened.
    pub body: Body<'a>,
}

/// The type-specific part of an [`Event`].
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

/// True when `b` has a byte a JSON string must escape.
#[inline(always)]
fn needs_escape(b: &[u8]) -> bool {
    b.iter().any(|&c| c < 0x20 || c == b'"' || c == b'\\')
}

/// Appends `s` as a JSON string (quoted, escaped).
pub(crate) fn push_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let b = s.as_bytes();
    if !needs_escape(b) {
        out.extend_from_slice(b);
    } else {
        for ch in s.chars() {
            match ch {
                '"' => out.extend_from_slice(b"\\\""),
                '\\' => out.extend_from_slice(b"\\\\"),
                '\n' => out.extend_from_slice(b"\\n"),
                '\t' => out.extend_from_slice(b"\\t"),
                '\r' => out.extend_from_slice(b"\\r"),
                c if (c as u32) < 0x20 => {
                    out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
                }
                c => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
            }
        }
    }
    out.push(b'"');
}

/// `v` (< 10^8) as exactly 8 ASCII digits in a register, the first digit in the low byte
/// (so `to_le_bytes` is the text). SWAR: every digit found at once with a few
/// multiplications; no table, and no byte stores that a wider load would then have to wait
/// for (a store-forwarding stall on every number).
#[inline(always)]
fn eight(v: u32) -> u64 {
    // Lanes of 32 bits: the high and low four digits.
    let merged = u64::from(v / 10_000) | (u64::from(v % 10_000) << 32);
    // x / 100 for x < 10^4 in each lane (10486 / 2^20 rounds it exactly).
    let hundreds = ((merged * 10_486) >> 20) & 0x0000_007F_0000_007F;
    // Lanes of 16 bits: four two-digit numbers, first first.
    let pairs = hundreds | ((merged - 100 * hundreds) << 16);
    // x / 10 for x < 100 in each lane (103 / 2^10 rounds it exactly).
    let tens = ((pairs * 103) >> 10) & 0x000F_000F_000F_000F;
    let ones = pairs - 10 * tens;
    (tens | (ones << 8)) + 0x3030_3030_3030_3030
}

/// A number's decimal digits, ready to be appended: the first 16 bytes of the text and the
/// rest (numbers of 17 to 20 digits), held in registers and written with two stores of
/// fixed size whatever the length, where a copy of just the digits would be a call to
/// memcpy.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Digits {
    first: u128,
    rest: u32,
    len: u8,
}

impl Digits {
    #[inline]
    pub(crate) fn of(v: u64) -> Digits {
        const E8: u64 = 100_000_000;
        const E16: u64 = E8 * E8;
        if v < E8 {
            // Pids, cpus, the high part of a timestamp: 32-bit arithmetic only. The length is
            // eight less the leading zeros, which are the low bytes of the digits that
            // are '0' (v = 0 keeps one).
            let d = eight(v as u32);
            let zeros = ((d - 0x3030_3030_3030_3030) | 1 << 56).trailing_zeros() / 8;
            return Digits {
                first: u128::from(d >> (8 * zeros)),
                rest: 0,
                len: (8 - zeros) as u8,
            };
        }
        let len = v.checked_ilog10().map_or(1, |l| l + 1);
        // The last 16 digits, zero-padded.
        let x =
            u128::from(eight(((v / E8) % E8) as u32)) | u128::from(eight((v % E8) as u32)) << 64;
        if v < E16 {
            return Digits {
                first: x >> (8 * (16 - len)),
                rest: 0,
                len: len as u8,
            };
        }
        // 17 to 20 digits: k of them above the last 16 (at most 1844).
        let k = len - 16;
        let top = eight((v / E16) as u32) >> (8 * (8 - k));
        Digits {
            first: u128::from(top) | (x << (8 * k)),
            rest: (x >> (8 * (16 - k))) as u32,
            len: len as u8,
        }
    }

    /// How many digits.
    #[inline(always)]
    pub(crate) fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// The digit of `v` < 10.
    #[inline(always)]
    fn one(v: u8) -> Digits {
        Digits {
            first: u128::from(b'0' + v),
            rest: 0,
            len: 1,
        }
    }

    /// The digits of the number one more, unless its last digit is a 9 (a carry) or the
    /// number has more than 16 digits.
    #[inline(always)]
    fn succ(&self) -> Option<Digits> {
        if self.len > 16 {
            return None;
        }
        let shift = 8 * (u32::from(self.len) - 1);
        if (self.first >> shift) as u8 == b'9' {
            return None;
        }
        Some(Digits {
            first: self.first + (1u128 << shift),
            ..*self
        })
    }

    /// Appends the digits to `out`.
    #[inline]
    pub(crate) fn push_to(&self, out: &mut Vec<u8>) {
        out.reserve(20);
        let at = out.len();
        // SAFETY: `reserve` made room for 20 bytes past `at`; all are written, and `len`
        // (at most 20) of them are kept.
        unsafe {
            let p = out.as_mut_ptr().add(at);
            p.cast::<[u8; 16]>()
                .write_unaligned(self.first.to_le_bytes());
            p.add(16)
                .cast::<[u8; 4]>()
                .write_unaligned(self.rest.to_le_bytes());
            out.set_len(at + self.len as usize);
        }
    }
}

/// Appends `v` in decimal.
#[inline]
pub(crate) fn push_u64(out: &mut Vec<u8>, v: u64) {
    Digits::of(v).push_to(out);
}

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
    /// The group fields (`,"container":…`) recently appended after a line, by the group
    /// and runtime id they were made from: consecutive events mostly share a group, or
    /// go back and forth between two (a setns storm).
    pub(crate) group_refs: RecentTexts<(crate::model::GroupId, Option<String>)>,
    /// The high digits of the last timestamp.
    time_hi: TimeHigh,
    /// The last number written in each [`Slot`], and its digits: a task's pid comes back on
    /// its FORK, NAMESPACES and EXIT lines, tid mostly equals pid, and a fork storm has one
    /// parent.
    ids: [(u32, Digits); SLOTS],
    /// The text of what the eBPF causes repeat.
    cause_texts: CauseCache,
}

/// A timestamp's digits above its last eight, and what they were made from: in time order
/// they change once per 0.1 s, so a line's times are mostly eight digits made and a copy.
#[derive(Debug)]
pub(crate) struct TimeHigh {
    hi: u64,
    digits: Digits,
}

impl Default for TimeHigh {
    fn default() -> Self {
        // No timestamp's high part (at most 1.8 * 10^11) is u64::MAX: the first is made.
        TimeHigh {
            hi: u64::MAX,
            digits: Digits::of(0),
        }
    }
}

impl TimeHigh {
    /// The digits of `hi`, made if they are not the last ones.
    #[inline(always)]
    fn digits(&mut self, hi: u64) -> &Digits {
        if self.hi != hi {
            (self.hi, self.digits) = (hi, Digits::of(hi));
        }
        &self.digits
    }

    /// Appends `v` in decimal.
    #[inline(always)]
    pub(crate) fn push(&mut self, out: &mut Vec<u8>, v: u64) {
        let hi = v / 100_000_000;
        if hi == 0 {
            return push_u64(out, v);
        }
        self.digits(hi).push_to(out);
        out.extend_from_slice(&eight((v % 100_000_000) as u32).to_le_bytes());
    }
}

/// Where a 32-bit number goes in a line, for [`JsonWriter`]'s digit cache.
#[derive(Clone, Copy)]
enum Slot {
    Cpu = 0,
    Pid = 1,
    Ppid = 2,
}
const SLOTS: usize = 3;

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

/// The text of a few values written recently, by what it was made from, replaced in turn
/// once full: what a stream writes again and again (a storm's calls and sets of links, the
/// groups of its lines) is copied, not made.
#[derive(Debug)]
pub(crate) struct RecentTexts<K> {
    entries: Vec<(K, Vec<u8>)>,
    /// The entry replaced next, once full.
    next: usize,
    /// The entry last used: the next line mostly uses it again.
    last: usize,
}

impl<K> Default for RecentTexts<K> {
    fn default() -> Self {
        RecentTexts {
            entries: Vec::new(),
            next: 0,
            last: 0,
        }
    }
}

/// Entries a [`RecentTexts`] keeps: a storm between two namespaces uses two; a few more
/// cover several threads or tools at once.
const RECENT_TEXTS: usize = 8;

impl<K> RecentTexts<K> {
    /// The text of the entry whose key `is`, made by `make` (which appends the text and
    /// gives its key) when there is none.
    #[inline]
    pub(crate) fn text(
        &mut self,
        is: impl Fn(&K) -> bool,
        make: impl FnOnce(&mut Vec<u8>) -> K,
    ) -> &[u8] {
        let i = match self.entries.get(self.last) {
            Some((k, _)) if is(k) => self.last,
            _ => match self.entries.iter().position(|(k, _)| is(k)) {
                Some(i) => i,
                None => self.insert(make),
            },
        };
        self.last = i;
        &self.entries[i].1
    }

    #[cold]
    fn insert(&mut self, make: impl FnOnce(&mut Vec<u8>) -> K) -> usize {
        let mut text = Vec::new();
        let key = make(&mut text);
        if self.entries.len() < RECENT_TEXTS {
            self.entries.push((key, text));
            return self.entries.len() - 1;
        }
        let i = self.next;
        self.next = (i + 1) % RECENT_TEXTS;
        self.entries[i] = (key, text);
        i
    }
}

/// Distinct sets whose text is kept; past that the cache starts over.
const NS_TEXT_CACHE: usize = 4096;

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
            group_refs: RecentTexts::default(),
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
        if !self.write_hot(ev, &[], out) {
            ev.write_json_with(out, self);
        }
    }

    /// What `model::json::write_labeled` appends, when `ev` is a line of the kinds a file
    /// is full of (true); else nothing (false). Its fast path.
    #[inline(always)]
    pub fn write_labeled_cached(
        &mut self,
        ev: &Event<'_>,
        group: Option<&crate::model::Group>,
        out: &mut Vec<u8>,
    ) -> bool {
        let Some(g) = group else {
            return self.write_hot(ev, &[], out);
        };
        // Moved out and back: the line's writer borrows the rest of `self`.
        let mut refs = std::mem::take(&mut self.group_refs);
        let done = self.write_hot(ev, crate::model::json::group_ref(&mut refs, g), out);
        self.group_refs = refs;
        done
    }

    /// FORK, EXIT and NAMESPACES lines, with `suffix` before their end,
    /// written with one reservation each: the same bytes as `write_json_with` (then the
    /// suffix), without a capacity check per piece. False (nothing written) for other
    /// events.
    #[inline(always)]
    fn write_hot(&mut self, ev: &Event<'_>, suffix: &[u8], out: &mut Vec<u8>) -> bool {
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
                self.write_namespaces(ev, ns, comm.as_deref(), *cause, suffix, out)
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
        self.id_at(c, Slot::Pid, ev.tid);
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
        self.id_at(&mut c, Slot::Ppid, Some(ptid));
        c.put_short(suffix);
        c.put(b"}\n");
        c.done(out);
    }

    /// A NAMESPACES line (its head, set and command name in one reservation).
    #[inline(always)]
    fn write_namespaces(
        &mut self,
        ev: &Event<'_>,
        ns: &NsSet,
        comm: Option<&str>,
        cause: Option<&Cause>,
        suffix: &[u8],
        out: &mut Vec<u8>,
    ) {
        let i = self.ns_index(ns);
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

/// Copies `n` bytes (K ≤ n ≤ 2K) from `src` to `dst` as two K-byte copies, the first
/// and the last K bytes, which overlap unless n = 2K.
///
/// # Safety
/// `src` must be readable and `dst` writable for `n` bytes.
#[inline(always)]
unsafe fn copy_two<const K: usize>(src: *const u8, dst: *mut u8, n: usize) {
    // SAFETY: both copies stay within the first `n` bytes of each side (the caller's).
    unsafe {
        dst.cast::<[u8; K]>()
            .write_unaligned(src.cast::<[u8; K]>().read_unaligned());
        dst.add(n - K)
            .cast::<[u8; K]>()
            .write_unaligned(src.add(n - K).cast::<[u8; K]>().read_unaligned());
    }
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
            let (src, dst) = (s.as_ptr(), self.p);
            if (16..=32).contains(&n) {
                copy_two::<16>(src, dst, n);
            } else if (8..16).contains(&n) {
                copy_two::<8>(src, dst, n);
            } else if (4..8).contains(&n) {
                copy_two::<4>(src, dst, n);
            } else {
                std::ptr::copy_nonoverlapping(src, dst, n);
            }
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
        id(out, Slot::Pid, self.tid);
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
                texts.id(out, Slot::Ppid, *ptid);
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

/// Reads events back from NDJSON lines (what `nswatch record` and `report --format ndjson`
/// write), so that exporters take either input through one [`Event`] shape. Lines of
/// types this schema version does not define (the model's "container_start" and friends,
/// which a reader recomputes, or a later version's) give `None`; extra fields are ignored,
/// as later versions only add fields.
#[derive(Debug, Default)]
pub struct JsonReader {
    /// The set of the last "namespaces" line, which its event borrows.
    ns: NsSet,
    /// The cause of the last line that had one, which its event borrows.
    cause: Option<crate::bpf::Cause>,
}

/// Why a line could not be read as an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonLineError(pub String);

impl std::fmt::Display for JsonLineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for JsonLineError {}

impl JsonReader {
    /// A reader with no state.
    pub fn new() -> Self {
        Self::default()
    }

    /// True for a line given without its newline that could not be read: the end of an
    /// input whose writer was killed mid-line (a recording SIGKILLed mid-write), which
    /// readers take as the input's end, everything before it whole, rather than as damage.
    pub fn is_cut_off(line: &str) -> bool {
        !line.ends_with('\n')
    }

    /// The event of one NDJSON line, `None` for a type outside the schema.
    pub fn read<'b>(&'b mut self, line: &str) -> Result<Option<Event<'b>>, JsonLineError> {
        use serde_json::Value;
        let bad = |what: String| JsonLineError(what);
        let v: Value = serde_json::from_str(line).map_err(|e| bad(format!("bad JSON: {e}")))?;
        let ty = v
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("no \"type\"".into()))?;
        let opt_u64 = |k: &str| -> Result<Option<u64>, JsonLineError> {
            match v.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(x) => x
                    .as_u64()
                    .map(Some)
                    .ok_or_else(|| bad(format!("{ty}: \"{k}\" is not an unsigned integer"))),
            }
        };
        let opt_u32 = |k: &str| -> Result<Option<u32>, JsonLineError> {
            opt_u64(k)?
                .map(|n| {
                    u32::try_from(n)
                        .map_err(|_| bad(format!("{ty}: \"{k}\" = {n} is out of range")))
                })
                .transpose()
        };
        let need = |k: &str| -> Result<u64, JsonLineError> {
            opt_u64(k)?.ok_or_else(|| bad(format!("{ty}: \"{k}\" missing")))
        };
        let need_u32 = |k: &str| -> Result<u32, JsonLineError> {
            opt_u32(k)?.ok_or_else(|| bad(format!("{ty}: \"{k}\" missing")))
        };
        let string = |k: &str| -> Option<Cow<'static, str>> {
            v.get(k)
                .and_then(Value::as_str)
                .map(|s| Cow::Owned(s.to_string()))
        };
        let body = match ty {
            "namespaces" => {
                let ns = v
                    .get("ns")
                    .and_then(Value::as_object)
                    .ok_or_else(|| bad("namespaces: \"ns\" missing".into()))?;
                let mut links = Vec::with_capacity(NS_KINDS.len());
                for i in 0..crate::nsset::MAX_LINKS {
                    let Some(l) = ns.get(link_name(i)) else {
                        break;
                    };
                    let field = |f: &str| {
                        l.get(f).and_then(Value::as_u64).ok_or_else(|| {
                            bad(format!("namespaces: ns.{}.{f} missing", link_name(i)))
                        })
                    };
                    links.push(crate::record::NsLink {
                        dev: field("dev")?,
                        ino: field("ino")?,
                    });
                }
                self.ns = NsSet::from_links(links);
                self.cause = match v.get("cause") {
                    Some(c) => Some(read_cause(c, &v).map_err(bad)?),
                    None => None,
                };
                Body::Namespaces {
                    ns: &self.ns,
                    comm: string("comm"),
                    cause: self.cause.as_ref(),
                }
            }
            "ns_syscall" => {
                // The call's fields are the event's own.
                self.cause = Some(read_cause(&v, &v).map_err(bad)?);
                Body::NsSyscall {
                    call: self.cause.as_ref().expect("just set"),
                }
            }
            "ns_syscall_lost" => Body::NsSyscallLost {
                lost: need("lost")?,
            },
            "fork" | "exit" => {
                let (ppid, ptid) = (need_u32("ppid")?, need_u32("ptid")?);
                if ty == "fork" {
                    Body::Fork { ppid, ptid }
                } else {
                    Body::Exit { ppid, ptid }
                }
            }
            "comm" => Body::Comm {
                comm: string("comm").ok_or_else(|| bad("comm: \"comm\" missing".into()))?,
                exec: v.get("exec").and_then(Value::as_bool).unwrap_or(false),
            },
            "cgroup" => Body::Cgroup {
                id: need("id")?,
                path: string("path").unwrap_or_default(),
            },
            "lost" => Body::Lost {
                lost: need("lost")?,
            },
            "lost_samples" => Body::LostSamples {
                lost: need("lost")?,
            },
            "sample" => Body::Sample {
                ip: opt_u64("ip")?,
                period: opt_u64("period")?,
                callchain: v
                    .get("callchain")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_u64).collect()),
            },
            _ => return Ok(None),
        };
        Ok(Some(Event {
            time_ns: opt_u64("time_ns")?,
            cpu: opt_u32("cpu")?,
            pid: opt_u32("pid")?,
            tid: opt_u32("tid")?,
            synthesized: v
                .get("synthesized")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            body,
        }))
    }
}

/// A cause object `c` of the event line `ev` (pid, tid, cpu and comm are the event's).
fn read_cause(c: &serde_json::Value, ev: &serde_json::Value) -> Result<crate::bpf::Cause, String> {
    let n = |k: &str| ev.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0) as u32;
    let comm = ev
        .get("comm")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("");
    crate::bpf::Cause::from_json(c, n("pid"), n("tid"), n("cpu"), comm)
}

/// The common fields, gathered before the body is built.
#[derive(Debug, Clone, Copy)]
struct EventHead {
    time_ns: Option<u64>,
    cpu: Option<u32>,
    pid: Option<u32>,
    tid: Option<u32>,
}

impl EventHead {
    #[inline(always)]
    fn with(self, body: Body<'_>) -> Event<'_> {
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
enum Part<'a> {
    Body(Body<'a>),
    Namespaces(NsSet),
}

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

/// Command names by tid on the sending side, as [`Comms`] keeps them, held as slots that
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
    /// The links of the last NAMESPACES record, as they lie in the record (at most
    /// [`MAX_LINKS`] of them), and its set's index: a fork storm repeats one set, and
    /// comparing its bytes is cheaper than reading and interning it again.
    last_links: Vec<u8>,
    last_set: u32,
    comms: CommSlots,
}

impl Default for EventSender {
    fn default() -> Self {
        EventSender {
            builder: EventBuilder::without_comms(),
            sets: Interner::default(),
            sent: 0,
            last_links: Vec::new(),
            last_set: u32::MAX,
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
                let set = if self.last_set != u32::MAX && h.links == &self.last_links[..] {
                    self.last_set
                } else {
                    let ns = NsSet::from_record(&h.view());
                    let set = self.sets.intern(&ns).0;
                    if set == self.sent {
                        out.push(SentEvent::NewSet(Box::new(ns)));
                        self.sent += 1;
                    }
                    self.last_links.clear();
                    self.last_links.extend_from_slice(h.links);
                    self.last_set = set;
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
                return Some(f(&h.with(Body::Namespaces {
                    ns,
                    comm,
                    cause: None,
                })));
            }
            SentEvent::Fork { head, ppid, ptid } => head.head().with(Body::Fork {
                ppid: *ppid,
                ptid: *ptid,
            }),
            SentEvent::Exit { head, ppid, ptid } => head.head().with(Body::Exit {
                ppid: *ppid,
                ptid: *ptid,
            }),
            SentEvent::Other(ev) => return Some(f(ev)),
        };
        Some(f(&ev))
    }
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
    /// [`EventReceiver`] adds them, on the other thread).
    fn without_comms() -> Self {
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
    fn parts<'a>(&mut self, rec: &Record<'a>, id: &SampleId) -> Option<(EventHead, Part<'a>)> {
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

#[cfg(test)]
mod tests {

    #[test]
    fn digits_are_written_like_display() {
        let mut vals = vec![
            0,
            1,
            9,
            10,
            11,
            99,
            100,
            101,
            999,
            1000,
            u64::MAX,
            u64::MAX - 1,
        ];
        vals.extend((0..64).map(|b| 1u64 << b));
        vals.extend((1..20).map(|e| 10u64.pow(e) - 1));
        vals.extend((1..20).flat_map(|e| [10u64.pow(e), 10u64.pow(e) + 1]));
        vals.extend(0..20_000);
        // Every length, digits all over: a 64-bit LCG, cut to 1..=64 bits.
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for i in 0..200_000u64 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            vals.push(x >> (i % 64));
        }
        for v in vals {
            let mut out = b"x".to_vec();
            push_u64(&mut out, v);
            assert_eq!(&out[1..], v.to_string().as_bytes(), "{v}");
        }
    }

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

    #[test]
    fn digits_plus_one_and_single_digits_are_written_like_display() {
        let text = |d: &Digits| {
            let mut out = Vec::new();
            d.push_to(&mut out);
            String::from_utf8(out).unwrap()
        };
        for v in 0..10u8 {
            assert_eq!(text(&Digits::one(v)), v.to_string());
        }
        let starts = (0..30_000u64).chain([u32::MAX as u64 - 20, 10u64.pow(15) - 3]);
        for v in starts {
            if let Some(d) = Digits::of(v).succ() {
                assert_eq!(text(&d), (v + 1).to_string(), "{v} + 1");
            } else {
                assert_eq!(v % 10, 9, "{v}: only a carry refuses");
            }
        }
    }

    use super::*;
    use crate::record::NsLink;

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

    #[test]
    fn sets_written_past_the_cache_are_still_their_own_text() {
        // More distinct sets than the writer keeps, each followed by the one before it (a
        // thread going back and forth): the cache starts over on the way.
        let mut w = JsonWriter::new();
        let set = |i: u64| {
            NsSet::from_links((1..=7).map(|k| NsLink {
                dev: 4,
                ino: k * 10_000 + i,
            }))
        };
        for i in 1..(NS_TEXT_CACHE as u64 + 50) {
            for ns in [set(i), set(i - 1)] {
                let ev = Event {
                    time_ns: Some(i),
                    cpu: Some(0),
                    pid: Some(9),
                    tid: Some(9),
                    synthesized: false,
                    body: Body::Namespaces {
                        ns: &ns,
                        comm: None,
                        cause: None,
                    },
                };
                let (mut a, mut b) = (Vec::new(), Vec::new());
                w.write(&ev, &mut a);
                ev.write_json(&mut b);
                assert_eq!(a, b, "set {i}");
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
