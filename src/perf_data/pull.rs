//! [`Events`]: a perf.data input's events, owned, pulled one at a time.
//!
//! The same steps as [`PerfData::for_each`] (records located and checked whole, perf's own
//! records taken in, time order by the same [`ReorderBuffer`], a file map's pages dropped
//! behind the read), kept in a struct between calls instead of on a loop's stack; each
//! event is copied out ([`OwnedEvent`]) before the next call, so nothing handed out
//! borrows the input.

use super::{
    drop_pages, read_stream_record, Mapped, Order, PerfData, Source, DROP_EVERY,
    FILE_REORDER_RECORDS, PIN_WAITING, STREAM_REORDER_BYTES, STREAM_REORDER_RECORDS,
};
use crate::bytes::{Bytes, Endian};
use crate::decoder::Decoder;
use crate::error::DecodeError;
use crate::event::{EventBuilder, OwnedEvent};
use crate::order::ReorderBuffer;
use crate::record::{kind, RecordView};
use std::io::Read;

use super::FileInfo;

/// The events of a [`PerfData`] input, owned, in the order asked for: what
/// [`PerfData::events`] returns. It stops after the first error, which it yields.
///
/// ```
/// use nswatch::perf_data::{Order, PerfData};
///
/// let mut data = PerfData::open(std::path::Path::new("fixtures/samples.data"))?;
/// let mut events = data.events(Order::File);
/// let first = events.next().expect("an event")?;
/// assert_eq!(first.body.type_name(), "fork"); // perf's first record of a task
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Events<'p> {
    decoder: &'p mut Decoder,
    info: &'p mut FileInfo,
    late: &'p mut u64,
    builder: EventBuilder,
    order: Order,
    endian: Endian,
    src: Pull<'p>,
    /// The input is read to its end and what waited to be ordered was released.
    flushed: bool,
    done: bool,
}

/// Where the read is, by kind of input.
enum Pull<'p> {
    Whole {
        map: Mapped<'p>,
        /// The next record to read.
        off: usize,
        /// Records waiting to be ordered, and those released and not handed on yet.
        reorder: ReorderBuffer<usize>,
        /// Pages below this are dropped.
        dropped: usize,
        next_drop: usize,
        /// The lowest offset handed on since pages were last dropped.
        low: usize,
        /// Bytes handed on since pages were last dropped.
        handed: usize,
    },
    Stream {
        reader: &'p mut Box<dyn Read>,
        pos: &'p mut u64,
        buf: Vec<u8>,
        /// Records waiting to be ordered, copied, with their offsets.
        reorder: ReorderBuffer<(Box<[u8]>, u64)>,
        eof: bool,
    },
}

impl PerfData {
    /// The input's events, owned, in `order`: an iterator that reads a record each time
    /// it is asked for an event (no thread, no copy of the input), for callers that keep,
    /// collect or send events. [`PerfData::for_each`] with [`EventBuilder::decode`] makes
    /// the same events borrowed, without the copies.
    ///
    /// ```
    /// use nswatch::model::Attributor;
    /// use nswatch::perf_data::{Order, PerfData};
    /// use nswatch::OwnedBody;
    ///
    /// let mut data = PerfData::open(std::path::Path::new("fixtures/samples.data"))?;
    /// let mut model = Attributor::learning();
    /// let mut kept = Vec::new();
    /// for ev in data.events(Order::Time) {
    ///     let ev = ev?;
    ///     if let Some(g) = model.observe(&ev.as_event()) {
    ///         if matches!(ev.body, OwnedBody::Sample { .. }) {
    ///             kept.push((model.group(g).label().to_string(), ev));
    ///         }
    ///     }
    /// }
    /// assert_eq!(kept.iter().filter(|(g, _)| g == "sb-4026532177").count(), 33);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn events(&mut self, order: Order) -> Events<'_> {
        let endian = self.info.endian.unwrap_or(Endian::NATIVE);
        let src = match &mut self.source {
            Source::Whole { data, start, end } => Pull::Whole {
                map: Mapped::new(data, *start, *end, endian),
                off: *start,
                reorder: ReorderBuffer::new(
                    if order == Order::Time {
                        FILE_REORDER_RECORDS
                    } else {
                        0
                    },
                    usize::MAX,
                ),
                dropped: *start,
                next_drop: *start + DROP_EVERY,
                low: usize::MAX,
                handed: 0,
            },
            Source::Stream { reader, pos } => Pull::Stream {
                reader,
                pos,
                buf: Vec::with_capacity(64 << 10),
                reorder: ReorderBuffer::new(
                    if order == Order::Time {
                        STREAM_REORDER_RECORDS
                    } else {
                        0
                    },
                    STREAM_REORDER_BYTES,
                ),
                eof: false,
            },
        };
        Events {
            decoder: &mut self.decoder,
            info: &mut self.info,
            late: &mut self.late,
            builder: EventBuilder::new(),
            order,
            endian,
            src,
            flushed: false,
            done: false,
        }
    }
}

impl Events<'_> {
    /// The builder that keeps the tasks' command names (to set those learned elsewhere).
    ///
    /// ```
    /// use nswatch::perf_data::{Order, PerfData};
    ///
    /// let mut data = PerfData::open(std::path::Path::new("fixtures/samples.data"))?;
    /// let mut events = data.events(Order::Time);
    /// events.builder_mut().set_comm(1, "init");
    /// assert_eq!(events.builder_mut().comm(1), Some("init"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder_mut(&mut self) -> &mut EventBuilder {
        &mut self.builder
    }

    /// The next event, `None` at the end of the input.
    fn step(&mut self) -> Result<Option<OwnedEvent>, DecodeError> {
        let (builder, decoder) = (&mut self.builder, &mut *self.decoder);
        loop {
            match &mut self.src {
                Pull::Whole {
                    map,
                    off,
                    reorder,
                    dropped,
                    next_drop,
                    low,
                    handed,
                } => {
                    if let Some(o) = reorder.pop() {
                        // Its page may have been dropped already, and comes back.
                        *low = (*low).min(o);
                        let r = map.at(o)?;
                        map.whole(&r)?;
                        *handed += r.size();
                        if *handed >= DROP_EVERY {
                            // A release by force brings back the pages of half the window.
                            *handed = 0;
                            if let Some(m) = map.mmap() {
                                *dropped = (*dropped).min(*low);
                                drop_pages(m, dropped, off.saturating_sub(PIN_WAITING));
                                *low = usize::MAX;
                            }
                        }
                        let ev = builder
                            .decode(decoder, &r)
                            .map_err(|e| map.check().err().unwrap_or(e))?;
                        if let Some(ev) = ev {
                            return Ok(Some(ev.to_owned_event()));
                        }
                        continue;
                    }
                    if *off >= map.end {
                        if self.flushed {
                            *self.late = reorder.late();
                            map.check()?;
                            return Ok(None);
                        }
                        reorder.flush();
                        self.flushed = true;
                        continue;
                    }
                    let (view, after) = map.next_record(*off, decoder, self.info)?;
                    *off = after;
                    let mut event = None;
                    match self.order {
                        Order::File => {
                            event = builder
                                .decode(decoder, &view)
                                .map_err(|e| map.check().err().unwrap_or(e))?
                                .map(|ev| ev.to_owned_event());
                        }
                        Order::Time => {
                            let at = view.offset as usize;
                            let full = reorder.push(decoder.time_of(&view), view.size(), at);
                            if view.ty == kind::FINISHED_ROUND {
                                reorder.finish_round();
                            } else if full {
                                reorder.release_overflow();
                            }
                        }
                    }
                    if *off >= *next_drop {
                        *next_drop = *off + DROP_EVERY;
                        if let Some(m) = map.mmap() {
                            // Records waiting to be ordered stay mapped while they are
                            // within PIN_WAITING of the reading point.
                            let waiting = reorder.items().copied().min().unwrap_or(*off);
                            let limit = waiting.max(off.saturating_sub(PIN_WAITING));
                            *dropped = (*dropped).min(*low);
                            drop_pages(m, dropped, limit);
                            *low = usize::MAX;
                        }
                    }
                    if event.is_some() {
                        return Ok(event);
                    }
                }
                Pull::Stream {
                    reader,
                    pos,
                    buf,
                    reorder,
                    eof,
                } => {
                    if let Some((bytes, o)) = reorder.pop() {
                        let view = RecordView::parse(Bytes::new(&bytes, self.endian), o)?;
                        if let Some(ev) = builder.decode(decoder, &view)? {
                            return Ok(Some(ev.to_owned_event()));
                        }
                        continue;
                    }
                    if *eof {
                        if self.flushed {
                            *self.late = reorder.late();
                            return Ok(None);
                        }
                        reorder.flush();
                        self.flushed = true;
                        continue;
                    }
                    let Some(view) = read_stream_record(
                        &mut **reader,
                        pos,
                        buf,
                        self.endian,
                        decoder,
                        self.info,
                    )?
                    else {
                        *eof = true;
                        continue;
                    };
                    match self.order {
                        Order::File => {
                            if let Some(ev) = builder.decode(decoder, &view)? {
                                return Ok(Some(ev.to_owned_event()));
                            }
                        }
                        Order::Time => {
                            let time = decoder.time_of(&view);
                            let (round, off) = (view.ty == kind::FINISHED_ROUND, view.offset);
                            let copy: Box<[u8]> = buf.as_slice().into();
                            let full = reorder.push(time, copy.len(), (copy, off));
                            if round {
                                reorder.finish_round();
                            } else if full {
                                reorder.release_overflow();
                            }
                        }
                    }
                }
            }
        }
    }
}

impl Iterator for Events<'_> {
    type Item = Result<OwnedEvent, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let r = self.step();
        self.done = !matches!(r, Ok(Some(_)));
        r.transpose()
    }
}

impl std::iter::FusedIterator for Events<'_> {}
