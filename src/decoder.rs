//! The decoder: which attr a record belongs to, and its decoding with that attr's layout.
//! One instance serves a perf.data file or a set of live rings.

use crate::attr::{Attr, SampleFormat};
use crate::bytes::{Bytes, Endian, Fixed};
use crate::error::{DecodeError, ErrorKind};
use crate::nsset::MAX_LINKS;
use crate::record::{kind, kind_name, Namespaces, Record, RecordView, SampleId, HEADER_LEN};
use hashbrown::HashMap;

/// The attrs of a session and the ids that point to them.
///
/// ```
/// use nswatch::perf_data::{Order, PerfData};
/// use nswatch::{DecodeError, Record};
///
/// let mut data = PerfData::open(std::path::Path::new("fixtures/samples.data"))?;
/// let mut samples = 0;
/// data.for_each(Order::File, |dec, view| -> Result<(), DecodeError> {
///     // The fields are read in place, from the file's pages: no copy of the record.
///     if let (Record::Sample(s), _) = dec.decode(view)? {
///         assert!(s.ip.is_some());
///         samples += 1;
///     }
///     Ok(())
/// })?;
/// assert!(samples > 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Default, Clone)]
pub struct Decoder {
    attrs: Vec<(Attr, SampleFormat)>,
    by_id: HashMap<u64, usize>,
    /// Set when every attr has the same layout: no id lookup is needed then.
    uniform: bool,
    /// Skip record types this build does not know instead of failing on them.
    skip_unknown: bool,
    /// Where the trailer's fields lie when every attr has one layout (see [`Trailer`]).
    hot: Option<Trailer>,
}

/// An event id that [`Decoder::add_attr_checked`] refused because another attr has it.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedId {
    /// Position of the id in the list given.
    pub at: usize,
    /// The id.
    pub id: u64,
    /// Index of the attr that has it already.
    pub attr: usize,
}

/// Where the sample_id trailer's fields lie in a kernel record (other than SAMPLE), counted
/// from the trailer's start, for a layout shared by every attr: the fast paths of the
/// records a file is full of (FORK, EXIT, NAMESPACES) read them without a lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Trailer {
    /// Its length (0 without sample_id_all).
    len: usize,
    /// The time's offset, when the trailer has one.
    time: Option<usize>,
    /// The cpu's offset, when the trailer has one.
    cpu: Option<usize>,
}

impl Trailer {
    fn of(fmt: &SampleFormat) -> Trailer {
        use crate::attr::sample;
        if !fmt.sample_id_all {
            return Trailer {
                len: 0,
                time: None,
                cpu: None,
            };
        }
        // In SampleId::parse's order: TID, TIME, ID, STREAM_ID, CPU, IDENTIFIER.
        let before = [sample::TID, sample::TIME, sample::ID, sample::STREAM_ID];
        let at = |bit: u64| {
            fmt.has(bit).then(|| {
                let n = before.iter().take_while(|&&b| b != bit);
                8 * n.filter(|&&b| fmt.has(b)).count()
            })
        };
        Trailer {
            len: fmt.trailer_len as usize,
            time: at(sample::TIME),
            cpu: at(sample::CPU),
        }
    }
}

/// A FORK, EXIT or NAMESPACES record read in place by [`Decoder::hot`]: the fields their
/// events need, without the [`Record`] and [`SampleId`] that [`Decoder::decode`] builds.
/// These three types are almost every record of a capture (a fork storm, a setns storm).
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub enum Hot<'a> {
    /// FORK or EXIT: the body's ids; the trailer's time, else the body's (as
    /// [`crate::EventBuilder`] takes it).
    Task {
        /// EXIT rather than FORK.
        exit: bool,
        /// Process id.
        pid: u32,
        /// Parent process id.
        ppid: u32,
        /// Thread id.
        tid: u32,
        /// Parent thread id.
        ptid: u32,
        /// Timestamp.
        time: u64,
        /// The trailer's cpu, when it has one.
        cpu: Option<u32>,
    },
    /// NAMESPACES.
    Namespaces(HotNamespaces<'a>),
}

/// A NAMESPACES record read by [`Decoder::hot`].
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct HotNamespaces<'a> {
    /// Process id.
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// The trailer's time, when it has one.
    pub time: Option<u64>,
    /// The trailer's cpu, when it has one.
    pub cpu: Option<u32>,
    /// The links as they lie in the record (16 bytes each, at most
    /// [`MAX_LINKS`]): a repeated set is recognised by comparing these bytes, before any
    /// link is read.
    pub links: &'a [u8],
    /// The byte order of `links`.
    endian: Endian,
}

impl<'a> HotNamespaces<'a> {
    /// The record's links, to read them (at most [`MAX_LINKS`], as an
    /// [`crate::nsset::NsSet`] holds).
    #[inline(always)]
    pub fn view(&self) -> Namespaces<'a> {
        Namespaces::from_parts(self.pid, self.tid, Bytes::new(self.links, self.endian))
    }
}

impl Decoder {
    /// A decoder with no attr yet.
    pub fn new() -> Self {
        Decoder {
            uniform: true,
            ..Default::default()
        }
    }

    /// Skip record types this build does not know (by their size) instead of returning
    /// [`ErrorKind::UnknownType`], which is the default, as in perf.
    pub fn set_skip_unknown(&mut self, skip: bool) {
        self.skip_unknown = skip;
    }

    /// Adds an attr and the event ids the kernel gave its instances (one per CPU or task).
    /// For ids the kernel gave (live rings): an id already given to another attr moves to
    /// this one. Input read from a file goes through [`Decoder::add_attr_checked`].
    pub fn add_attr(&mut self, attr: Attr, ids: impl IntoIterator<Item = u64>) {
        let idx = self.push_attr(attr);
        for id in ids {
            self.by_id.insert(id, idx);
        }
    }

    /// Adds an attr and its ids, refusing an id that another attr already has: the kernel
    /// gives each event instance its own id, so a shared one names no attr, and accepting
    /// them would let N attrs pointing at one list of M ids cost N × M insertions. On
    /// refusal, returns the position in `ids` of the first shared id, the id, and the index
    /// of the attr that has it; the attr is added without the ids from there on. Id 0 is
    /// left out: perf's own synthesized records carry it and belong to the first attr.
    pub fn add_attr_checked(
        &mut self,
        attr: Attr,
        ids: impl IntoIterator<Item = u64>,
    ) -> Result<(), SharedId> {
        let idx = self.push_attr(attr);
        for (at, id) in ids.into_iter().enumerate() {
            if id == 0 {
                continue;
            }
            match self.by_id.entry(id) {
                hashbrown::hash_map::Entry::Occupied(e) if *e.get() != idx => {
                    return Err(SharedId {
                        at,
                        id,
                        attr: *e.get(),
                    });
                }
                e => {
                    e.insert(idx);
                }
            }
        }
        Ok(())
    }

    fn push_attr(&mut self, attr: Attr) -> usize {
        let fmt = attr.format();
        let idx = self.attrs.len();
        if let Some((_, first)) = self.attrs.first() {
            self.uniform &= *first == fmt;
        }
        self.attrs.push((attr, fmt));
        self.hot = self.uniform.then(|| Trailer::of(&self.attrs[0].1));
        idx
    }

    /// The attrs, in the order they were added.
    pub fn attrs(&self) -> impl Iterator<Item = &Attr> {
        self.attrs.iter().map(|(a, _)| a)
    }

    /// Reads a FORK, EXIT or NAMESPACES record in place, when every attr shares one layout
    /// and the record is in one piece; `None` for any other record and for one these reads
    /// would not accept (too short, say), which [`Decoder::decode`] then decodes, or
    /// names the error of. Tested against `decode` on every fixture (tests/sent_fast.rs).
    #[inline(always)]
    pub fn hot<'a>(&self, view: &RecordView<'a>) -> Option<Hot<'a>> {
        let t = self.hot.as_ref()?;
        let (raw, second) = view.bytes.pieces();
        if !second.is_empty() {
            return None;
        }
        match view.bytes.endian() {
            Endian::Little => Self::hot_in::<true>(t, view, raw),
            Endian::Big => Self::hot_in::<false>(t, view, raw),
        }
    }

    /// [`Decoder::hot`] of a record in one piece, `raw`, in the byte order `LE` says.
    #[inline(always)]
    fn hot_in<'a, const LE: bool>(
        t: &Trailer,
        view: &RecordView<'a>,
        raw: &'a [u8],
    ) -> Option<Hot<'a>> {
        type F<const LE: bool> = Fixed<LE>;
        // The body, between the header and the trailer.
        let body_end = raw.len().checked_sub(t.len)?;
        let time = match t.time {
            Some(o) => Some(F::<LE>::u64(raw, body_end + o)?),
            None => None,
        };
        let cpu = match t.cpu {
            Some(o) => Some(F::<LE>::u32(raw, body_end + o)?),
            None => None,
        };
        match view.ty {
            kind::FORK | kind::EXIT => {
                if body_end < HEADER_LEN + 24 {
                    return None;
                }
                Some(Hot::Task {
                    exit: view.ty == kind::EXIT,
                    pid: F::<LE>::u32(raw, HEADER_LEN)?,
                    ppid: F::<LE>::u32(raw, HEADER_LEN + 4)?,
                    tid: F::<LE>::u32(raw, HEADER_LEN + 8)?,
                    ptid: F::<LE>::u32(raw, HEADER_LEN + 12)?,
                    time: match time {
                        Some(t) => t,
                        None => F::<LE>::u64(raw, HEADER_LEN + 16)?,
                    },
                    cpu,
                })
            }
            kind::NAMESPACES => {
                if body_end < HEADER_LEN + 16 {
                    return None;
                }
                let nr = F::<LE>::u64(raw, HEADER_LEN + 8)?;
                let len = usize::try_from(nr).ok()?.checked_mul(16)?;
                if len > body_end - HEADER_LEN - 16 {
                    return None;
                }
                Some(Hot::Namespaces(HotNamespaces {
                    pid: F::<LE>::u32(raw, HEADER_LEN)?,
                    tid: F::<LE>::u32(raw, HEADER_LEN + 4)?,
                    time,
                    cpu,
                    links: raw.get(HEADER_LEN + 16..HEADER_LEN + 16 + len.min(16 * MAX_LINKS))?,
                    endian: Fixed::<LE>::ORDER,
                }))
            }
            _ => None,
        }
    }

    /// The layout of the attr `view` belongs to. With several layouts, the record's id picks
    /// one; perf requires the id to sit at the same place in all of them, so reading it with
    /// the first layout is sound. As in perf, a record with no id to read (a non-sample
    /// record without `sample_id_all`, perf's own records) or id 0 (perf's synthesized
    /// records) has the first attr's layout, and an id no attr has is an error: read with
    /// a layout picked at random, its fields would be garbage.
    #[inline]
    pub fn format_of(&self, view: &RecordView<'_>) -> Result<SampleFormat, DecodeError> {
        let Some((_, first)) = self.attrs.first() else {
            return Ok(SampleFormat::default());
        };
        if self.uniform {
            return Ok(*first);
        }
        match view.event_id(first) {
            None | Some(0) => Ok(*first),
            Some(id) => match self.by_id.get(&id) {
                Some(&i) => Ok(self.attrs[i].1),
                None => Err(DecodeError::in_record(
                    view.offset,
                    view.ty,
                    ErrorKind::UnknownId(id),
                )),
            },
        }
    }

    /// Decodes `view` with the layout of its attr.
    #[inline(always)]
    pub fn decode<'a>(&self, view: &RecordView<'a>) -> Result<(Record<'a>, SampleId), DecodeError> {
        if !self.skip_unknown && kind_name(view.ty) == "UNKNOWN" {
            return Err(DecodeError::in_record(
                view.offset,
                view.ty,
                ErrorKind::UnknownType,
            ));
        }
        view.decode(&self.format_of(view)?)
    }

    /// The record's timestamp, read from its trailer (or sample body) without decoding the
    /// rest; FORK and EXIT also carry one in their body.
    #[inline(always)]
    pub fn time_of(&self, view: &RecordView<'_>) -> Option<u64> {
        use crate::record::kind;
        // One layout with a time in the trailer (the usual file): a kernel record other
        // than SAMPLE has it at a fixed place from its end.
        if let Some(Trailer {
            len,
            time: Some(at),
            ..
        }) = self.hot
        {
            if view.is_kernel() && view.ty != kind::SAMPLE {
                let start = view.size().checked_sub(len)?;
                return view.bytes.u64(start + at);
            }
        }
        self.time_by_format(view)
    }

    /// [`Decoder::time_of`] by the record's attr's format.
    #[inline(never)]
    fn time_by_format(&self, view: &RecordView<'_>) -> Option<u64> {
        use crate::attr::sample;
        use crate::record::{kind, HEADER_LEN};
        // A record of no known attr has no known time; decoding it says why.
        let fmt = self.format_of(view).ok()?;
        if !fmt.has(sample::TIME) {
            return match view.ty {
                kind::FORK | kind::EXIT => view.bytes.u64(HEADER_LEN + 16),
                _ => None,
            };
        }
        if view.ty == kind::SAMPLE {
            let before = [sample::IDENTIFIER, sample::IP, sample::TID];
            let pos = before.iter().filter(|&&b| fmt.has(b)).count();
            view.bytes.u64(HEADER_LEN + 8 * pos)
        } else if view.is_kernel() && fmt.sample_id_all {
            let start = view.size().checked_sub(fmt.trailer_len as usize)?;
            let pos = usize::from(fmt.has(sample::TID));
            view.bytes.u64(start + 8 * pos)
        } else {
            None
        }
    }
}
