//! Time ordering of records that arrive in per-CPU runs.
//!
//! perf.data files hold the per-CPU buffers one after another, each in time order, separated
//! by FINISHED_ROUND records. perf's rule, followed here: at the end of round N, everything
//! older than the newest timestamp of round N-1 can be released, because no CPU's buffer can
//! still hold something older (each round drains every buffer). The live rings, which can
//! be read in place until released, are merged without this buffer (`live`'s slots).

/// Items waiting to be released in time order; `T` is whatever locates a record (a file
/// offset, an arena offset).
///
/// Records come in runs, each in time order (a CPU's buffer), so the items are kept in two
/// queues rather than sorted whole at each release: `main` takes every item no older than
/// the newest it ever took (the longest run, and everything of a round from one CPU), `side`
/// the others, sorted when a release needs them. A release merges the heads of the two. A
/// setns storm's round is one CPU's run and a few records of the others: only those few are
/// sorted, and nothing is copied but the items handed out. An item taken is moved out of
/// its queue, which holds `T::default()` in its place until the taken part is cut.
#[derive(Debug)]
pub struct ReorderBuffer<T> {
    /// (time, record size, item), each no older than the one before.
    main: Queue<T>,
    /// The same for the items older than `main_last` when they came, in arrival order
    /// behind a sorted prefix.
    side: Queue<T>,
    /// True while `side` is in time order.
    side_sorted: bool,
    /// Time of the newest item `main` ever took: an item that comes later at the same
    /// time belongs after it, so on equal times `main`'s head goes first.
    main_last: u64,
    /// Time of the last item pushed (an untimed item takes it).
    last_time: u64,
    /// Released items not taken yet by [`Self::pop`], at the heads of `main` and `side`.
    ready_main: usize,
    ready_side: usize,
    round_max: u64,
    prev_round_max: Option<u64>,
    cap: usize,
    cap_bytes: usize,
    /// Record bytes waiting (released and not taken included).
    bytes: usize,
    /// Time of the newest item released so far.
    released: Option<u64>,
    /// Items pushed with a time older than one already released.
    late: u64,
}

impl<T: Default> ReorderBuffer<T> {
    /// A buffer that releases its oldest items by force once it holds `cap` items or
    /// `cap_bytes` bytes of records, so that input without rounds still runs in bounded
    /// memory.
    pub fn new(cap: usize, cap_bytes: usize) -> Self {
        ReorderBuffer {
            // Reserved whole (pages are touched only as items come): growing by doubling
            // would hold the old and the new copy at once, half as much again at the peak.
            main: Queue::with_capacity(cap.max(2)),
            side: Queue::with_capacity(0),
            side_sorted: true,
            main_last: 0,
            last_time: 0,
            ready_main: 0,
            ready_side: 0,
            round_max: 0,
            prev_round_max: None,
            cap: cap.max(2),
            cap_bytes: cap_bytes.max(2),
            bytes: 0,
            released: None,
            late: 0,
        }
    }

    /// Number of items waiting (released and not taken included).
    pub fn len(&self) -> usize {
        self.main.len() + self.side.len()
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

    /// The items waiting (released and not taken included), in no particular order.
    pub fn items(&self) -> impl Iterator<Item = &T> {
        self.main
            .live()
            .iter()
            .chain(self.side.live())
            .map(|(_, _, x)| x)
    }

    /// The items waiting, mutable (to relocate them), in no particular order.
    pub fn items_mut(&mut self) -> impl Iterator<Item = &mut T> {
        let (main, side) = (self.main.live_mut(), self.side.live_mut());
        main.iter_mut().chain(side).map(|(_, _, x)| x)
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.main.is_empty() && self.side.is_empty()
    }

    /// Adds an item for a record of `size` bytes. One without a time sorts with the
    /// previous one, keeping its place. Returns true when the buffer is full and
    /// [`Self::release_overflow`] should be called. Released items must all have been
    /// taken ([`Self::pop`]) first.
    #[inline(always)]
    pub fn push(&mut self, time: Option<u64>, size: usize, item: T) -> bool {
        debug_assert_eq!(
            self.ready_main + self.ready_side,
            0,
            "released items not taken"
        );
        if let (Some(t), Some(r)) = (time, self.released) {
            self.late += u64::from(t < r);
        }
        let t = time.unwrap_or(self.last_time);
        self.last_time = t;
        self.round_max = self.round_max.max(t);
        let size = u32::try_from(size).unwrap_or(u32::MAX);
        self.bytes += size as usize;
        if t >= self.main_last {
            self.main_last = t;
            self.main.push_back((t, size, item));
        } else {
            self.side_sorted &= self.side.live().last().is_none_or(|&(b, _, _)| t >= b);
            self.side.push_back((t, size, item));
        }
        self.len() >= self.cap || self.bytes >= self.cap_bytes
    }

    /// Sorts `side`, unless it is in order already.
    fn sort(&mut self) {
        if !self.side_sorted {
            // Its runs (other CPUs') are sorted already: a stable sort over them is a
            // cheap merge, and keeps arrival order among equal times.
            self.side.live_mut().sort_by_key(|&(t, _, _)| t);
            self.side_sorted = true;
        }
    }

    /// Marks the `m` oldest items of `main` and the `s` oldest of `side` released.
    fn release(&mut self, m: usize, s: usize) {
        let newest = [
            m.checked_sub(1).map(|i| self.main.live()[i].0),
            s.checked_sub(1).map(|i| self.side.live()[i].0),
        ];
        if let Some(t) = newest.into_iter().flatten().max() {
            self.released = Some(t.max(self.released.unwrap_or(0)));
        }
        (self.ready_main, self.ready_side) = (m, s);
    }

    fn release_upto(&mut self, limit: u64) {
        self.sort();
        let m = self.main.live().partition_point(|&(t, _, _)| t <= limit);
        let s = self.side.live().partition_point(|&(t, _, _)| t <= limit);
        self.release(m, s);
    }

    /// Ends a round (FINISHED_ROUND): releases what is now safe, to be taken oldest first
    /// by [`Self::pop`].
    pub fn finish_round(&mut self) {
        if let Some(limit) = self.prev_round_max {
            self.release_upto(limit);
        }
        self.prev_round_max = Some(self.round_max);
    }

    /// Releases the oldest items when the buffer is full, until at most half its items
    /// and half its bytes wait (perf's ordered events flush half of their queue when it
    /// reaches its size limit).
    pub fn release_overflow(&mut self) {
        self.sort();
        let (keep_items, keep_bytes) = (self.cap / 2, self.cap_bytes / 2);
        let (mut m, mut s, mut left) = (0, 0, self.bytes);
        // The oldest first, as `pop` will take them.
        while self.len() - (m + s) > keep_items || left > keep_bytes {
            let (main, side) = (self.main.live(), self.side.live());
            let size = match main_first(main.get(m), side.get(s)) {
                Some(true) => {
                    m += 1;
                    main[m - 1].1
                }
                Some(false) => {
                    s += 1;
                    side[s - 1].1
                }
                None => break,
            };
            left -= size as usize;
        }
        self.release(m, s);
    }

    /// Releases everything (end of input).
    pub fn flush(&mut self) {
        self.release_upto(u64::MAX);
    }

    /// The oldest released item not taken yet; `None` once all are.
    #[inline(always)]
    pub fn pop(&mut self) -> Option<T> {
        self.pop_sized().map(|(_, x)| x)
    }

    /// [`Self::pop`] with the record size the item was pushed with.
    #[inline(always)]
    pub fn pop_sized(&mut self) -> Option<(u32, T)> {
        let from_main = if self.ready_side == 0 {
            // The usual case (one CPU's round): no merge.
            if self.ready_main == 0 {
                return None;
            }
            true
        } else {
            let main = (self.ready_main > 0).then(|| self.main.front()).flatten();
            main_first(main, self.side.front())?
        };
        let (_, size, x) = if from_main {
            self.ready_main -= 1;
            self.main.pop_front()
        } else {
            self.ready_side -= 1;
            self.side.pop_front()
        }?;
        self.bytes -= size as usize;
        Some((size, x))
    }
}

/// Whether the older of two heads is `main`'s (`None`: there is neither). On equal times it
/// is: `main`'s came first (see `ReorderBuffer::main_last`).
#[inline(always)]
fn main_first<T>(main: Option<&(u64, u32, T)>, side: Option<&(u64, u32, T)>) -> Option<bool> {
    match (main, side) {
        (Some(a), Some(b)) => Some(a.0 <= b.0),
        (Some(_), None) => Some(true),
        (None, Some(_)) => Some(false),
        (None, None) => None,
    }
}

/// Items in a vector taken from the front: cheaper per item than a ring, and the taken
/// ones are cut off only once they outnumber those left twice over, so each item is
/// moved half a time on average (a ring moves none, but costs more per push and pop).
#[derive(Debug)]
struct Queue<T> {
    items: Vec<(u64, u32, T)>,
    /// Items before it were taken.
    head: usize,
}

/// Taken items cut off at once, at least: a few items taken are not worth a move.
const CUT_AT: usize = 4096;

impl<T: Default> Queue<T> {
    fn with_capacity(n: usize) -> Self {
        Queue {
            items: Vec::with_capacity(n),
            head: 0,
        }
    }

    fn len(&self) -> usize {
        self.items.len() - self.head
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The items not taken, oldest first.
    fn live(&self) -> &[(u64, u32, T)] {
        &self.items[self.head..]
    }

    fn live_mut(&mut self) -> &mut [(u64, u32, T)] {
        &mut self.items[self.head..]
    }

    #[inline(always)]
    fn push_back(&mut self, x: (u64, u32, T)) {
        if self.head >= CUT_AT && self.head >= 2 * self.len() {
            self.cut();
        }
        self.items.push(x);
    }

    #[inline(never)]
    fn cut(&mut self) {
        self.items.drain(..self.head);
        self.head = 0;
    }

    #[inline(always)]
    fn front(&self) -> Option<&(u64, u32, T)> {
        self.items.get(self.head)
    }

    #[inline(always)]
    fn pop_front(&mut self) -> Option<(u64, u32, T)> {
        let (t, size, x) = self.items.get_mut(self.head)?;
        self.head += 1;
        Some((*t, *size, std::mem::take(x)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::Strategy;

    fn take<T: Default>(b: &mut ReorderBuffer<T>, out: &mut Vec<T>) {
        while let Some(x) = b.pop() {
            out.push(x);
        }
    }

    #[test]
    fn releases_in_time_order_per_round() {
        let mut b = ReorderBuffer::new(1000, 1 << 20);
        let mut out = Vec::new();
        // round 1: cpu0 (1, 5), cpu1 (2, 3)
        for t in [1, 5, 2, 3] {
            b.push(Some(t), 8, t);
        }
        b.finish_round();
        take(&mut b, &mut out);
        assert!(out.is_empty(), "nothing is safe after the first round");
        // round 2: cpu0 (6), cpu1 (4, 7)
        for t in [6, 4, 7] {
            b.push(Some(t), 8, t);
        }
        b.finish_round();
        take(&mut b, &mut out);
        assert_eq!(out, vec![1, 2, 3, 4, 5]);
        b.flush();
        take(&mut b, &mut out);
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
        b.flush();
        take(&mut b, &mut out);
        assert_eq!(out, vec!['d', 'a', 'b', 'c']);
    }

    #[test]
    fn in_order_runs_stay_in_main_and_older_runs_are_sorted_and_merged() {
        let mut b = ReorderBuffer::new(1000, 1 << 20);
        let mut out = Vec::new();
        for t in [1, 2, 3] {
            b.push(Some(t), 8, t);
        }
        b.finish_round();
        take(&mut b, &mut out);
        for t in [4, 5] {
            b.push(Some(t), 8, t);
        }
        b.finish_round();
        take(&mut b, &mut out);
        assert_eq!(out, vec![1, 2, 3]);
        assert!(b.side.live().is_empty(), "one CPU's rounds need no sort");
        // Older than what waits (another CPU's records), and not in order among themselves.
        for t in [6, 3, 2, 7] {
            b.push(Some(t), 8, t);
        }
        assert_eq!((b.main.live().len(), b.side.live().len()), (4, 2));
        assert!(!b.side_sorted);
        b.finish_round();
        take(&mut b, &mut out);
        assert_eq!(out, vec![1, 2, 3, 2, 3, 4, 5]);
        b.push(None, 8, 0);
        b.flush();
        take(&mut b, &mut out);
        assert_eq!(out, vec![1, 2, 3, 2, 3, 4, 5, 6, 7, 0]);
        assert_eq!((b.len(), b.bytes()), (0, 0));
    }

    /// One step of an input: a record (its time, or none) or the end of a round.
    #[derive(Debug, Clone)]
    enum Step {
        Record(Option<u8>),
        Round,
    }

    /// What the buffer must hand out: the items released at each round end or overflow
    /// are a stable sort of those waiting, up to the limit (the buffer as one sorted
    /// vector, the plain way).
    fn plain(steps: &[Step], cap: usize, cap_bytes: usize) -> (Vec<usize>, u64) {
        let (mut pending, mut out) = (Vec::<(u64, usize)>::new(), Vec::new());
        let (mut last, mut round_max, mut prev, mut released, mut late) = (0, 0, None, None, 0);
        let release = |pending: &mut Vec<(u64, usize)>,
                       n: usize,
                       out: &mut Vec<usize>,
                       released: &mut Option<u64>| {
            if n > 0 {
                *released = Some(pending[n - 1].0.max(released.unwrap_or(0)));
            }
            out.extend(pending.drain(..n).map(|p| p.1));
        };
        for (i, step) in steps.iter().enumerate() {
            let time = match step {
                Step::Record(t) => t.map(u64::from),
                // The round's own record has no time of its own.
                Step::Round => None,
            };
            if let (Some(t), Some(r)) = (time, released) {
                late += u64::from(t < r);
            }
            let t = time.unwrap_or(last);
            last = t;
            round_max = round_max.max(t);
            pending.push((t, i));
            pending.sort_by_key(|p| p.0);
            if matches!(step, Step::Round) {
                if let Some(limit) = prev {
                    let n = pending.partition_point(|p| p.0 <= limit);
                    release(&mut pending, n, &mut out, &mut released);
                }
                prev = Some(round_max);
            } else if pending.len() >= cap || 8 * pending.len() >= cap_bytes {
                let keep = (cap / 2).min(cap_bytes / 2 / 8);
                let n = pending.len() - keep;
                release(&mut pending, n, &mut out, &mut released);
            }
        }
        let n = pending.len();
        release(&mut pending, n, &mut out, &mut released);
        (out, late)
    }

    proptest::proptest! {
        #[test]
        fn hands_out_what_a_stable_sort_of_the_waiting_items_would(
            steps in proptest::collection::vec(
                proptest::prop_oneof![
                    8 => proptest::option::weighted(0.9, 0u8..40).prop_map(Step::Record),
                    1 => proptest::strategy::Just(Step::Round),
                ],
                0..200,
            ),
            cap in 2usize..64,
            cap_bytes in 16usize..1024,
        ) {
            let mut b = ReorderBuffer::new(cap, cap_bytes);
            let mut out = Vec::new();
            for (i, step) in steps.iter().enumerate() {
                let (time, round) = match step {
                    Step::Record(t) => (t.map(u64::from), false),
                    Step::Round => (None, true),
                };
                let full = b.push(time, 8, i);
                if round {
                    b.finish_round();
                } else if full {
                    b.release_overflow();
                }
                take(&mut b, &mut out);
            }
            b.flush();
            take(&mut b, &mut out);
            proptest::prop_assert_eq!((out, b.late()), plain(&steps, cap, cap_bytes));
            proptest::prop_assert_eq!((b.len(), b.bytes()), (0, 0));
        }
    }

    #[test]
    fn overflow_releases_the_oldest_half() {
        let mut b = ReorderBuffer::new(4, 1 << 20);
        let mut out = Vec::new();
        for t in [4, 3, 2] {
            assert!(!b.push(Some(t), 8, t));
        }
        assert!(b.push(Some(1), 8, 1));
        b.release_overflow();
        take(&mut b, &mut out);
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
        b.release_overflow();
        take(&mut b, &mut out);
        assert_eq!(out, vec![8, 9], "down to at most 50 bytes");
        assert_eq!((b.len(), b.bytes()), (1, 40));
        assert_eq!(b.late(), 0);
        // Older than 9, already handed on: late, still handed on.
        b.push(Some(7), 40, 7);
        b.push(None, 40, 70);
        b.push(Some(11), 8, 11);
        assert_eq!(b.late(), 1);
        b.flush();
        take(&mut b, &mut out);
        assert_eq!(out, vec![8, 9, 7, 70, 10, 11]);
        assert_eq!(b.bytes(), 0);
    }
}
