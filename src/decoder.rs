//! The decoder: which attr a record belongs to, and its decoding with that attr's layout.
//! One instance serves a perf.data file or a set of live rings.

use crate::attr::{Attr, SampleFormat};
use crate::error::{DecodeError, ErrorKind};
use crate::record::{kind_name, Record, RecordView, SampleId};
use hashbrown::HashMap;

/// The attrs of a session and the ids that point to them.
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

/// Where the sample_id trailer's fields lie in a kernel record (other than SAMPLE), counted
/// from the trailer's start, for a layout shared by every attr: the fast paths of the
/// records a file is full of (FORK, EXIT, NAMESPACES) read them without a lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trailer {
    /// Its length (0 without sample_id_all).
    pub len: usize,
    /// The time's offset, when the trailer has one.
    pub time: Option<usize>,
    /// The cpu's offset, when the trailer has one.
    pub cpu: Option<usize>,
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
    pub fn add_attr(&mut self, attr: Attr, ids: impl IntoIterator<Item = u64>) {
        let fmt = attr.format();
        let idx = self.attrs.len();
        if let Some((_, first)) = self.attrs.first() {
            self.uniform &= *first == fmt;
        }
        self.attrs.push((attr, fmt));
        self.hot = self.uniform.then(|| Trailer::of(&self.attrs[0].1));
        for id in ids {
            self.by_id.insert(id, idx);
        }
    }

    /// The attrs, in the order they were added.
    pub fn attrs(&self) -> impl Iterator<Item = &Attr> {
        self.attrs.iter().map(|(a, _)| a)
    }

    /// The trailer's layout when every attr shares one (`None` with several layouts, or
    /// none yet): what the fast paths need.
    #[inline(always)]
    pub fn trailer(&self) -> Option<&Trailer> {
        self.hot.as_ref()
    }

    /// The layout of the attr `view` belongs to. With several layouts, the record's id picks
    /// one; perf requires the id to sit at the same place in all of them, so reading it with
    /// the first layout is sound.
    #[inline]
    pub fn format_of(&self, view: &RecordView<'_>) -> SampleFormat {
        let Some((_, first)) = self.attrs.first() else {
            return SampleFormat::default();
        };
        if self.uniform {
            return *first;
        }
        view.event_id(first)
            .and_then(|id| self.by_id.get(&id))
            .map_or(*first, |&i| self.attrs[i].1)
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
        view.decode(&self.format_of(view))
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
        let fmt = self.format_of(view);
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
