//! One mapped perf.data read by two threads: the calling thread walks the records in order
//! (as [`PerfData::for_each`] does) and hands items in batches to a second thread, the
//! consumer.
//!
//! What goes across is the caller's choice (`T`): typically the record's event, which may
//! borrow the map (a command name, a cgroup path). Nothing is copied out of the map.
//!
//! Memory stays flat: pages already read are dropped as in [`PerfData::for_each`], but only
//! below the lowest offset of the batches the consumer has not finished (it hands each
//! finished batch back, to be refilled), and at most [`IN_FLIGHT`] batches wait for it. The
//! dropping is the consumer's, between batches. The reader takes its own page faults: the
//! consumer is the busier thread (it runs the model and writes the lines), and mapping
//! ahead of the reader on it (MADV_POPULATE_READ) made a setns storm's read 12% slower.
//! The channel is std's bounded one: a batch per send, so its cost per item is nil. The
//! consumer keeps off the reader's CPU (`apart.rs`).

use super::apart::{Apart, ReaderCpu};
use super::{drop_pages, Mapped, Order, PerfData, ReadStats, Source, Visit};
use crate::decoder::Decoder;
use crate::error::{DecodeError, ErrorKind};
use crate::record::RecordView;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::sync::Arc;

/// Items per batch, at most: enough that the channel costs nothing per item, few enough that
/// the consumer starts at once and the pages held for it stay few.
pub const BATCH: usize = 8192;
/// Bytes of items per batch, at most (large items, such as decoded records, come in smaller
/// batches: memory stays near the one-thread read's).
pub const BATCH_BYTES: usize = 512 << 10;

/// Items per batch of `T`.
fn batch_len<T>() -> usize {
    (BATCH_BYTES / std::mem::size_of::<T>().max(1)).clamp(64, BATCH)
}
/// Batches sent and not yet taken by the consumer, at most; the reader waits beyond.
pub const IN_FLIGHT: usize = 4;

/// The page work the reading thread leaves to the consumer: below which offset no record
/// is needed any more (neither waiting to be ordered nor in a batch the consumer has not
/// handed back).
struct PageWork {
    /// Lowest offset of a record handed on late since the consumer last dropped pages.
    low: AtomicUsize,
    limit: AtomicUsize,
    /// Where the reading thread runs, for the consumer to keep off it.
    reader_cpu: ReaderCpu,
}

/// The consumer's end: the items, in the order the reading thread made them.
pub struct Consumer<'m, T> {
    rx: Receiver<Vec<T>>,
    back: Sender<Vec<T>>,
    map: Mapped<'m>,
    work: Arc<PageWork>,
    dropped: usize,
}

impl<'m, T> Consumer<'m, T> {
    /// Hands every item to `f`, in order; returns when the reading thread is done (after
    /// an error of its own too) or at `f`'s first error, which stops the reading thread.
    pub fn for_each<E>(mut self, mut f: impl FnMut(&T) -> Result<(), E>) -> Result<(), E> {
        self.pages();
        let apart = Apart::new();
        while let Ok(mut items) = self.rx.recv() {
            if let Some(a) = &apart {
                a.keep_off(&self.work.reader_cpu);
            }
            // By reference: an item (an event) is a few hundred bytes, not worth a move.
            for item in &items {
                f(item)?;
            }
            items.clear();
            // Handing the batch back says its records are read; the reader may be gone
            // already, which is no error.
            let _ = self.back.send(items);
            self.pages();
        }
        Ok(())
    }

    /// Drops the pages the reading thread no longer needs, between two batches.
    fn pages(&mut self) {
        let Some(m) = self.map.mmap() else {
            return;
        };
        // Below the limit, no item sent or to be sent points: the reading thread computed
        // it from its waiting records and the batches not handed back yet.
        let low = self.work.low.swap(usize::MAX, Ordering::AcqRel);
        self.dropped = self.dropped.min(low);
        drop_pages(
            m,
            &mut self.dropped,
            self.work.limit.load(Ordering::Acquire),
        );
    }
}

/// The reading thread's side: fills batches, sends them, keeps the pages they point to.
struct Producer<T, F> {
    produce: F,
    batch: Vec<T>,
    /// Items per batch.
    cap: usize,
    /// Lowest offset of a record handed to `produce` for the current batch.
    batch_min: usize,
    tx: SyncSender<Vec<T>>,
    back: Receiver<Vec<T>>,
    /// Lowest offset of each batch sent and not handed back, oldest first.
    sent: VecDeque<usize>,
    spare: Vec<Vec<T>>,
    /// The consumer hung up (it stopped at an error of its own).
    gone: bool,
    work: Arc<PageWork>,
}

impl<T, F> Producer<T, F> {
    /// Takes back the batches the consumer finished.
    fn reap(&mut self) {
        while let Ok(v) = self.back.try_recv() {
            self.sent.pop_front();
            self.spare.push(v);
        }
    }

    fn send(&mut self, items: Vec<T>) -> Result<(), DecodeError> {
        self.work.reader_cpu.note();
        if self.tx.send(items).is_err() {
            self.gone = true;
            return Err(DecodeError::at(
                0,
                ErrorKind::Io("the consumer of the records stopped".into()),
            ));
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), DecodeError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        self.reap();
        let fresh = self
            .spare
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(self.cap));
        let full = std::mem::replace(&mut self.batch, fresh);
        self.sent.push_back(self.batch_min);
        self.batch_min = usize::MAX;
        self.send(full)
    }
}

impl<'m, T, E, F> Visit<'m, E> for Producer<T, F>
where
    E: From<DecodeError>,
    F: FnMut(&Decoder, &RecordView<'m>, &mut Vec<T>) -> Result<(), E>,
{
    #[inline]
    fn record(&mut self, decoder: &Decoder, view: &RecordView<'m>) -> Result<(), E> {
        (self.produce)(decoder, view, &mut self.batch)?;
        self.batch_min = self.batch_min.min(view.offset as usize);
        if self.batch.len() >= self.cap {
            self.flush()?;
        }
        Ok(())
    }

    fn in_use(&mut self) -> usize {
        self.reap();
        self.sent.iter().copied().fold(self.batch_min, usize::min)
    }

    fn pages(&mut self, low: usize, limit: usize) -> bool {
        self.work.low.fetch_min(low, Ordering::AcqRel);
        self.work.limit.store(limit, Ordering::Release);
        // With no batch in flight the consumer sleeps, and does no page work: while records
        // wait to be ordered (input without rounds), the walk drops the pages itself.
        self.reap();
        !(self.sent.is_empty() && self.batch.is_empty())
    }
}

impl PerfData {
    /// True when the whole input is addressable (a file, or bytes in memory), so that
    /// [`PerfData::for_each_split`] can read it; false for a stream.
    pub fn is_mapped(&self) -> bool {
        matches!(self.source, Source::Whole { .. })
    }

    /// Reads the input on two threads. This thread walks the records in `order` and hands
    /// each to `produce`, which appends what the consumer needs of it (any number of items,
    /// none included; they may borrow the record) to the current batch; `consume` runs on a
    /// second thread, given the items in the order they were made
    /// ([`Consumer::for_each`]).
    ///
    /// Returns the walk's result and the consumer's, or `None` for a stream (not mapped:
    /// use [`PerfData::for_each`]). The items made before an error of the walk or of
    /// `produce` all reach the consumer. When the consumer stops early, the walk stops with
    /// an I/O error that only says so: the consumer's own result tells why.
    pub fn for_each_split<'s, T, E, R>(
        &'s mut self,
        order: Order,
        produce: impl FnMut(&Decoder, &RecordView<'s>, &mut Vec<T>) -> Result<(), E>,
        consume: impl FnOnce(Consumer<'s, T>) -> R + Send,
    ) -> Option<(Result<ReadStats, E>, R)>
    where
        T: Send,
        R: Send,
        E: From<DecodeError>,
    {
        let endian = self.info.endian.unwrap_or(crate::bytes::Endian::NATIVE);
        let Source::Whole { data, start, end } = &self.source else {
            return None;
        };
        let map = Mapped::new(data, *start, *end, endian);
        let (decoder, info) = (&mut self.decoder, &mut self.info);
        let (tx, rx) = sync_channel(IN_FLIGHT);
        let (back_tx, back_rx) = channel();
        let work = Arc::new(PageWork {
            low: AtomicUsize::new(usize::MAX),
            limit: AtomicUsize::new(map.start),
            reader_cpu: ReaderCpu::new(),
        });
        let consumer = Consumer {
            rx,
            back: back_tx,
            map,
            work: work.clone(),
            dropped: map.start,
        };
        let mut producer = Producer {
            produce,
            batch: Vec::with_capacity(batch_len::<T>()),
            cap: batch_len::<T>(),
            batch_min: usize::MAX,
            tx,
            back: back_rx,
            sent: VecDeque::new(),
            spare: Vec::new(),
            gone: false,
            work,
        };
        let out = std::thread::scope(|s| {
            let handle = s.spawn(move || consume(consumer));
            let mut stats = ReadStats::default();
            let r = map.walk(order, decoder, info, &mut stats, &mut producer);
            // What was made before an error is still the consumer's.
            let last = if producer.gone {
                Ok(())
            } else {
                producer.flush()
            };
            drop(producer);
            let out = match handle.join() {
                Ok(out) => out,
                Err(panic) => std::panic::resume_unwind(panic),
            };
            let r = match (r, last) {
                (Ok(()), Err(e)) => Err(E::from(e)),
                (r, _) => r,
            };
            // The consumer reads the map too, after the walk's last look: a file that
            // shrank meanwhile ends the read with that error all the same.
            let r = match map.data.truncation() {
                Some(e) => Err(E::from(e)),
                None => r,
            };
            (r.map(|()| stats), out)
        });
        if let Ok(stats) = &out.0 {
            self.late = stats.late;
        }
        Some(out)
    }
}
