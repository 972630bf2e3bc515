//! Time ordering of records that arrive in per-CPU runs.
//!
//! perf.data files hold the per-CPU buffers one after another, each in time order, separated
//! by FINISHED_ROUND records. perf's rule, followed here: at the end of round N, everything
//! older than the newest timestamp of round N-1 can be released, because no CPU's buffer can
//! still hold something older (each round drains every buffer). The live rings, which can
//! be read in place until released, are merged without this buffer (`live`'s slots).

/// Items waiting to be released in time order; `T` is whatever locates a record (a file
/// offset, an arena offset).
#[derive(Debug)]
pub struct ReorderBuffer<T> {
    /// (time, record size, item), in arrival order behind a sorted prefix; the stable sort
    /// keeps arrival order among equal times.
    pending: Vec<(u64, u32, T)>,
    /// True while `pending` is in time order (nothing pushed older than its predecessor
    /// since the last sort): a round from a single CPU, or rounds already merged, need no
    /// sort.
    sorted: bool,
    last_time: u64,
    round_max: u64,
    prev_round_max: Option<u64>,
    cap: usize,
    cap_bytes: usize,
    /// Record bytes waiting.
    bytes: usize,
    /// Time of the newest item released so far.
    released: Option<u64>,
    /// Items pushed with a time older than one already released.
    late: u64,
}

impl<T> ReorderBuffer<T> {
    /// A buffer that releases its oldest items by force once it holds `cap` items or
    /// `cap_bytes` bytes of records, so that input without rounds still runs in bounded
    /// memory.
    pub fn new(cap: usize, cap_bytes: usize) -> Self {
        ReorderBuffer {
            // Reserved whole (pages are touched only as items come): growing by doubling
            // would hold the old and the new copy at once, half as much again at the peak.
            pending: Vec::with_capacity(cap.max(2)),
            sorted: true,
            last_time: 0,
            round_max: 0,
            prev_round_max: None,
            cap: cap.max(2),
            cap_bytes: cap_bytes.max(2),
            bytes: 0,
            released: None,
            late: 0,
        }
    }

    /// Number of items waiting.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Bytes of the records waiting.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Items that arrived with a time older than an item already released, and so were
    /// handed on out of time order: none while the input's rounds fit in the buffer.
    pub fn late(&self) -> u64 {
        self.late
    }

    /// The items waiting, in no particular order.
    pub fn items(&self) -> impl Iterator<Item = &T> {
        self.pending.iter().map(|(_, _, x)| x)
    }

    /// The items waiting, mutable (to relocate them), in no particular order.
    pub fn items_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.pending.iter_mut().map(|(_, _, x)| x)
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Adds an item for a record of `size` bytes. One without a time sorts with the
    /// previous one, keeping its place. Returns true when the buffer is full and
    /// [`Self::release_overflow`] should be called.
    #[inline]
    pub fn push(&mut self, time: Option<u64>, size: usize, item: T) -> bool {
        if let (Some(t), Some(r)) = (time, self.released) {
            self.late += u64::from(t < r);
        }
        let t = time.unwrap_or(self.last_time);
        // After a release, `last_time` is still the time of the last item waiting (or
        // nothing waits and the flag is only pessimistic).
        self.sorted &= t >= self.last_time;
        self.last_time = t;
        self.round_max = self.round_max.max(t);
        let size = u32::try_from(size).unwrap_or(u32::MAX);
        self.bytes += size as usize;
        self.pending.push((t, size, item));
        self.pending.len() >= self.cap || self.bytes >= self.cap_bytes
    }

    /// Sorts what waits, unless it is in order already.
    fn sort(&mut self) {
        if !self.sorted {
            // Runs per CPU are already sorted: a stable sort over them is a cheap merge.
            self.pending.sort_by_key(|&(t, _, _)| t);
            self.sorted = true;
        }
    }

    /// Moves the `n` oldest items (sorted) to `out`.
    fn release_first(&mut self, n: usize, out: &mut Vec<T>) {
        if n == 0 {
            return;
        }
        self.released = Some(self.pending[n - 1].0.max(self.released.unwrap_or(0)));
        out.extend(self.pending.drain(..n).map(|(_, size, x)| {
            self.bytes -= size as usize;
            x
        }));
    }

    fn release_upto(&mut self, limit: u64, out: &mut Vec<T>) {
        self.sort();
        let n = self.pending.partition_point(|&(t, _, _)| t <= limit);
        self.release_first(n, out);
    }

    /// Ends a round (FINISHED_ROUND): moves what is now safe to `out`, oldest first.
    pub fn finish_round(&mut self, out: &mut Vec<T>) {
        if let Some(limit) = self.prev_round_max {
            self.release_upto(limit, out);
        }
        self.prev_round_max = Some(self.round_max);
    }

    /// Releases the oldest items when the buffer is full, until at most half its items
    /// and half its bytes wait (perf's ordered events flush half of their queue when it
    /// reaches its size limit).
    pub fn release_overflow(&mut self, out: &mut Vec<T>) {
        self.sort();
        let (keep_items, keep_bytes) = (self.cap / 2, self.cap_bytes / 2);
        let mut n = self.pending.len().saturating_sub(keep_items);
        let mut freed: usize = self.pending[..n].iter().map(|p| p.1 as usize).sum();
        while n < self.pending.len() && self.bytes - freed > keep_bytes {
            freed += self.pending[n].1 as usize;
            n += 1;
        }
        self.release_first(n, out);
    }

    /// Releases everything (end of input).
    pub fn flush(&mut self, out: &mut Vec<T>) {
        self.release_upto(u64::MAX, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_in_time_order_per_round() {
        let mut b = ReorderBuffer::new(1000, 1 << 20);
        let mut out = Vec::new();
        // round 1: cpu0 (1, 5), cpu1 (2, 3)
        for t in [1, 5, 2, 3] {
            b.push(Some(t), 8, t);
        }
        b.finish_round(&mut out);
        assert!(out.is_empty(), "nothing is safe after the first round");
        // round 2: cpu0 (6), cpu1 (4, 7)
        for t in [6, 4, 7] {
            b.push(Some(t), 8, t);
        }
        b.finish_round(&mut out);
        assert_eq!(out, vec![1, 2, 3, 4, 5]);
        b.flush(&mut out);
        assert_eq!(out, vec![1, 2, 3, 4, 5, 6, 7]);
    }

    #[test]
    fn equal_times_keep_arrival_order_and_untimed_follow_their_predecessor() {
        let mut b = ReorderBuffer::new(1000, 1 << 20);
        let mut out = Vec::new();
        b.push(Some(5), 8, 'a');
        b.push(None, 8, 'b');
        b.push(Some(5), 8, 'c');
        b.push(Some(1), 8, 'd');
        b.flush(&mut out);
        assert_eq!(out, vec!['d', 'a', 'b', 'c']);
    }

    #[test]
    fn in_order_rounds_skip_the_sort_and_a_late_item_still_sorts() {
        let mut b = ReorderBuffer::new(1000, 1 << 20);
        let mut out = Vec::new();
        for t in [1, 2, 3] {
            b.push(Some(t), 8, t);
        }
        b.finish_round(&mut out);
        for t in [4, 5] {
            b.push(Some(t), 8, t);
        }
        b.finish_round(&mut out);
        assert_eq!(out, vec![1, 2, 3]);
        assert!(b.sorted);
        // Older than what waits (another CPU's run).
        for t in [6, 3, 7] {
            b.push(Some(t), 8, t);
        }
        assert!(!b.sorted);
        b.finish_round(&mut out);
        assert_eq!(out, vec![1, 2, 3, 3, 4, 5]);
        b.push(None, 8, 0);
        b.flush(&mut out);
        assert_eq!(out, vec![1, 2, 3, 3, 4, 5, 6, 7, 0]);
    }

    #[test]
    fn overflow_releases_the_oldest_half() {
        let mut b = ReorderBuffer::new(4, 1 << 20);
        let mut out = Vec::new();
        for t in [4, 3, 2] {
            assert!(!b.push(Some(t), 8, t));
        }
        assert!(b.push(Some(1), 8, 1));
        b.release_overflow(&mut out);
        assert_eq!(out, vec![1, 2]);
        assert_eq!(b.len(), 2);
    }

    #[test]
    fn the_byte_bound_releases_until_half_the_bytes_wait_and_late_items_are_counted() {
        let mut b = ReorderBuffer::new(1000, 100);
        let mut out = Vec::new();
        // Without rounds: 40-byte records, newest first (the worst order).
        assert!(!b.push(Some(10), 40, 10));
        assert!(!b.push(Some(9), 40, 9));
        assert!(b.push(Some(8), 40, 8), "120 bytes wait, over 100");
        b.release_overflow(&mut out);
        assert_eq!(out, vec![8, 9], "down to at most 50 bytes");
        assert_eq!((b.len(), b.bytes()), (1, 40));
        assert_eq!(b.late(), 0);
        // Older than 9, already handed on: late, still handed on.
        b.push(Some(7), 40, 7);
        b.push(None, 40, 70);
        b.push(Some(11), 8, 11);
        assert_eq!(b.late(), 1);
        b.flush(&mut out);
        assert_eq!(out, vec![8, 9, 7, 70, 10, 11]);
        assert_eq!(b.bytes(), 0);
    }
}
