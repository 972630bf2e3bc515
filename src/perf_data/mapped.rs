//! The walk of an input addressable whole (a file map, or bytes in memory): each record
//! read in place, in file order or in time order, the pages behind the walk dropped.

use super::*;

/// What [`Mapped::walk`] hands each record to.
pub(super) trait Visit<'m, E> {
    /// Takes one record, in the order asked for.
    fn record(&mut self, decoder: &Decoder, view: &RecordView<'m>) -> Result<(), E>;

    /// The lowest file offset another reader still needs mapped (`usize::MAX`: none).
    fn in_use(&mut self) -> usize {
        usize::MAX
    }

    /// Pages below `limit` may be dropped, from `low` on even where they were dropped
    /// before (records handed on late in time order brought them back). Returns false when
    /// the walk should drop them itself; true when another thread does.
    fn pages(&mut self, _low: usize, _limit: usize) -> bool {
        false
    }
}

/// A plain callback: nothing else reads the map.
pub(super) struct Plain<F>(pub(super) F);

impl<E, F: FnMut(&Decoder, &RecordView<'_>) -> Result<(), E>> Visit<'_, E> for Plain<F> {
    #[inline]
    fn record(&mut self, decoder: &Decoder, view: &RecordView<'_>) -> Result<(), E> {
        (self.0)(decoder, view)
    }
}

/// The records of an input that is addressable whole (a file map, or bytes in memory).
#[derive(Clone, Copy)]
pub(super) struct Mapped<'m> {
    pub(super) data: &'m Backing,
    /// The map's fault note, read after each record.
    pub(super) fault: &'m AtomicUsize,
    /// The input up to the end of the data section.
    pub(super) all: Bytes<'m>,
    pub(super) raw: &'m [u8],
    pub(super) endian: Endian,
    pub(super) start: usize,
    pub(super) end: usize,
}

impl<'m> Mapped<'m> {
    pub(super) fn new(data: &'m Backing, start: usize, end: usize, endian: Endian) -> Self {
        Mapped {
            data,
            fault: data.fault(),
            all: Bytes::new(&data.bytes()[..end], endian),
            raw: &data.bytes()[..end],
            endian,
            start,
            end,
        }
    }

    /// The file map, when the input is one.
    pub(super) fn mmap(&self) -> Option<&'m memmap2::Mmap> {
        match self.data {
            Backing::Map(g) => Some(&g.map),
            Backing::Owned(_) => None,
        }
    }

    /// Fails once the file shrank under the map: what was read since is zeros.
    #[inline(always)]
    pub(super) fn check(&self) -> Result<(), DecodeError> {
        if self.fault.load(Ordering::Relaxed) == usize::MAX {
            return Ok(());
        }
        Err(self.truncated())
    }

    #[cold]
    pub(super) fn truncated(&self) -> DecodeError {
        self.data.truncation().unwrap_or_else(|| {
            DecodeError::at(0, ErrorKind::TruncatedWhileReading { size_now: None })
        })
    }

    /// Reads `view`'s last byte, then [`Mapped::check`]s: the file shrinks from its end, so
    /// a record whose last byte is still the file's is whole, and one cut is refused
    /// before anything is made of it.
    #[inline(always)]
    pub(super) fn whole(&self, view: &RecordView<'m>) -> Result<(), DecodeError> {
        let last = view.offset as usize + view.size() - 1;
        if let Some(b) = self.raw.get(last) {
            // SAFETY: a reference to a byte of the map; the read is what matters.
            unsafe { std::ptr::read_volatile(b) };
        }
        self.check()
    }

    /// Type, misc and size of the record header at the start of `raw`, in the file's byte
    /// order.
    #[inline(always)]
    pub(super) fn header(&self, raw: &[u8]) -> Option<(u32, u16, u16)> {
        match self.endian {
            Endian::Little => header::<true>(raw),
            Endian::Big => header::<false>(raw),
        }
    }

    /// The record at file offset `off`.
    #[inline(always)]
    pub(super) fn at(&self, off: usize) -> Result<RecordView<'m>, DecodeError> {
        // The usual record, read from the one slice the map is (what `RecordView::parse`
        // accepts): through the two-part `Bytes` of a ring, every record's header cost
        // the walk ~60 instructions more.
        let raw = self.raw.get(off..).unwrap_or_default();
        if let Some((ty, misc, size)) = self.header(raw) {
            let size = size as usize;
            if size_fits(ty, size) {
                if let Some(bytes) = raw.get(..size) {
                    return Ok(RecordView {
                        offset: off as u64,
                        ty,
                        misc,
                        bytes: Bytes::new(bytes, self.endian),
                    });
                }
            }
        }
        // Only an error, so that the record made above never shares a stack slot with
        // one made here: the walk reloaded such a slot a word at a time, each load
        // waiting for the narrow stores of the record's small fields to retire.
        Err(self.bad_record(off))
    }

    /// Why [`Mapped::at`] refused the record at `off`: [`RecordView::parse`]'s error (it
    /// refuses whatever `at` does: a header past the end, a size under a header's or
    /// misaligned, a record past the end).
    #[cold]
    #[inline(never)]
    pub(super) fn bad_record(&self, off: usize) -> DecodeError {
        let rest = self.all.range(off, self.end).ok_or_else(|| {
            truncated(
                off as u64,
                HEADER_LEN as u64,
                self.end.saturating_sub(off) as u64,
            )
        });
        match rest.and_then(|rest| RecordView::parse(rest, off as u64)) {
            Err(e) => e,
            // `at` reads past `end` (the map goes on), `parse` up to it: a record it
            // refused is refused here too.
            Ok(v) => truncated(
                off as u64,
                v.size() as u64,
                self.end.saturating_sub(off) as u64,
            ),
        }
    }

    /// Hands on the records `reorder` released, oldest first, as the walk stands at `off`.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub(super) fn hand_released<E: From<DecodeError>>(
        &self,
        reorder: &mut ReorderBuffer<usize>,
        off: usize,
        low: &mut usize,
        dropped: &mut usize,
        stats: &mut ReadStats,
        decoder: &mut Decoder,
        v: &mut impl Visit<'m, E>,
    ) -> Result<(), E> {
        let mut handed = 0;
        while let Some((size, o)) = reorder.pop_sized() {
            // Its page may have been dropped already, and comes back.
            *low = (*low).min(o);
            let r = self.at_sized(o, size as usize)?;
            stats.count(r.ty, r.size());
            if let Err(e) = v.record(decoder, &r) {
                self.check()?;
                return Err(e);
            }
            handed += r.size();
            if handed >= DROP_EVERY {
                handed = 0;
                self.drop_behind(off, low, dropped, v);
            }
        }
        Ok(())
    }

    /// The record at `off`, whole, that the walk read before as `size` bytes: its header
    /// is not checked again, only that it still says `size`.
    #[inline(always)]
    pub(super) fn at_sized(&self, off: usize, size: usize) -> Result<RecordView<'m>, DecodeError> {
        let raw = self.raw.get(off..off + size);
        if let Some((raw, (ty, misc, n))) = raw.and_then(|raw| Some((raw, self.header(raw)?))) {
            if n as usize == size {
                let r = RecordView {
                    offset: off as u64,
                    ty,
                    misc,
                    bytes: Bytes::new(raw, self.endian),
                };
                self.whole(&r)?;
                return Ok(r);
            }
        }
        // Only an error (see `at`): the file changed under the map since the walk read it.
        Err(self.check().err().unwrap_or_else(|| self.bad_record(off)))
    }

    /// While records are handed on late (a release by force, the end): drops the pages from
    /// `low` (the lowest handed on since) up to [`PIN_WAITING`] behind `off`, where no
    /// record but those still waiting lies, which come back from the page cache.
    pub(super) fn drop_behind<E>(
        &self,
        off: usize,
        low: &mut usize,
        dropped: &mut usize,
        v: &mut impl Visit<'m, E>,
    ) {
        if let Backing::Map(m) = self.data {
            let limit = off.saturating_sub(PIN_WAITING).min(v.in_use());
            if !v.pages(*low, limit) {
                *dropped = (*dropped).min(*low);
                drop_pages(&m.map, dropped, limit);
            }
            *low = usize::MAX;
        }
    }

    /// The record at `off`, whole, with what perf's own records tell the reader taken in,
    /// and the offset of the record after it (past a payload that follows some of perf's
    /// records).
    #[inline(always)]
    pub(super) fn next_record(
        &self,
        off: usize,
        decoder: &mut Decoder,
        info: &mut FileInfo,
    ) -> Result<(RecordView<'m>, usize), DecodeError> {
        let view = match self.at(off) {
            Ok(v) => {
                self.whole(&v)?;
                v
            }
            Err(e) => {
                self.check()?;
                return Err(e);
            }
        };
        let next = off + view.size();
        // The kernel's records (nearly all of them) tell the reader nothing.
        let skip = if view.is_kernel() {
            0
        } else {
            take_user_record(&view, decoder, info)?
        };
        let end = self.end;
        let next = next
            .checked_add(skip as usize)
            .filter(|&n| n <= end)
            .ok_or_else(|| {
                let needed = (view.size() as u64).saturating_add(skip);
                truncated(off as u64, needed, (end - off) as u64)
            })?;
        Ok((view, next))
    }

    /// Walks the records from `start` to `end`, in `order`, handing each to `v`. Pages
    /// already read are dropped as the walk goes, except those of records still waiting to
    /// be ordered and those `v` says another reader still needs.
    pub(super) fn walk<E: From<DecodeError>>(
        &self,
        order: Order,
        decoder: &mut Decoder,
        info: &mut FileInfo,
        stats: &mut ReadStats,
        v: &mut impl Visit<'m, E>,
    ) -> Result<(), E> {
        let (start, end) = (self.start, self.end);
        let mut reorder = ReorderBuffer::<usize>::new(FILE_REORDER_RECORDS, usize::MAX);
        let mut dropped = start;
        // Checked every DROP_EVERY bytes read, not DROP_EVERY past what was dropped: while
        // old records wait, the latter would look for the oldest one at every record.
        let mut next_drop = start + DROP_EVERY;
        // The lowest offset of a record handed on since the last drop.
        let mut low = usize::MAX;
        let mut off = start;
        while off < end {
            let (view, next) = self.next_record(off, decoder, info)?;
            match order {
                Order::File => {
                    stats.count(view.ty, view.size());
                    if let Err(e) = v.record(decoder, &view) {
                        self.check()?;
                        return Err(e);
                    }
                }
                Order::Time => {
                    let full = reorder.push(decoder.time_of(&view), view.size(), off);
                    // Only a round's end or a full buffer releases anything (the
                    // latter brings back the pages of half the window).
                    let released = if view.ty == kind::FINISHED_ROUND {
                        reorder.finish_round();
                        true
                    } else if full {
                        reorder.release_overflow();
                        true
                    } else {
                        false
                    };
                    if released {
                        self.hand_released(
                            &mut reorder,
                            off,
                            &mut low,
                            &mut dropped,
                            stats,
                            decoder,
                            v,
                        )?;
                    }
                }
            }
            off = next;
            if off >= next_drop {
                next_drop = off + DROP_EVERY;
                if let Backing::Map(m) = self.data {
                    // In time order, records still waiting stay mapped while they are
                    // within PIN_WAITING of the reading point; those another reader has
                    // not read yet always do.
                    let waiting = reorder.items().copied().min().unwrap_or(off);
                    let limit = waiting.max(off.saturating_sub(PIN_WAITING)).min(v.in_use());
                    if !v.pages(low, limit) {
                        dropped = dropped.min(low);
                        drop_pages(&m.map, &mut dropped, limit);
                    }
                    low = usize::MAX;
                }
            }
        }
        reorder.flush();
        stats.late = reorder.late();
        self.hand_released(&mut reorder, end, &mut low, &mut dropped, stats, decoder, v)?;
        // A fault of another reader of the map (split.rs) counts as well.
        self.check()?;
        Ok(())
    }
}

/// A record header's type, misc and size, read in the byte order `LE` says.
#[inline(always)]
fn header<const LE: bool>(raw: &[u8]) -> Option<(u32, u16, u16)> {
    Some((
        Fixed::<LE>::u32(raw, 0)?,
        Fixed::<LE>::u16(raw, 4)?,
        Fixed::<LE>::u16(raw, 6)?,
    ))
}

/// Drops the already-read pages of a file map from memory (they are clean file pages and
/// come back from the page cache if touched again).
pub(crate) fn drop_pages(map: &memmap2::Mmap, dropped: &mut usize, upto: usize) {
    let page = 4096;
    let end = upto / page * page;
    if end > *dropped {
        let start = *dropped / page * page;
        // SAFETY: a private read-only file map: DONTNEED only lets the kernel reload the
        // same file contents on the next access; no reference into the range outlives the
        // records already handed out (on either thread of a split read: see split.rs).
        unsafe {
            let _ =
                map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start, end - start);
        }
        *dropped = end;
    }
}
