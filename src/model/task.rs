//! Tasks and the history of their namespace sets, kept small: most tasks never change set, so
//! the current interval is inline and only earlier ones go to the heap.

use crate::model::group::GroupId;
use crate::nsset::SetId;
use std::collections::VecDeque;

/// A span of time during which a task had one namespace set (and so one group).
///
/// ```
/// use nswatch::model::Attributor;
/// use nswatch::nsset::NsSet;
/// use nswatch::record::NsLink;
/// use nswatch::{Body, Event};
///
/// let link = |ino| NsLink { dev: 4, ino };
/// let mut model = Attributor::new(NsSet::from_links((1..=7).map(link)));
/// // A container's first task: its own net, pid and mnt namespaces.
/// let ct = NsSet::from_links([10, 2, 3, 14, 5, 16, 7].map(link));
/// let ev = Event {
///     time_ns: Some(1_000),
///     cpu: Some(0),
///     pid: Some(42),
///     tid: Some(42),
///     synthesized: false,
///     body: Body::Namespaces { ns: &ct, comm: Some("sleep".into()), cause: None },
/// };
/// let group = model.observe(&ev).unwrap();
/// let (task, interval) = model.task_at(42, 42, 1_500).unwrap();
/// assert_eq!((task.tid, interval.group), (42, group));
/// assert!(interval.start_ns <= 1_500);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    /// Start, event time in ns.
    pub start_ns: u64,
    /// The set.
    pub set: SetId,
    /// The group the set belonged to then.
    pub group: GroupId,
}

/// How a task came to be in its current group.
///
/// ```
/// use nswatch::model::Origin;
///
/// assert_eq!(Origin::Joined.name(), "joined"); // a task that setns'd into a group
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Created in it (fork, clone with new namespaces), or found there at start as its
    /// first task or a descendant of one.
    Born,
    /// Moved into a group that already had tasks (setns: `docker exec`, `nsenter`…).
    Joined,
    /// Moved into namespaces nobody else had (unshare), so it started the group.
    Created,
}

impl Origin {
    /// The name used in JSON and text.
    pub fn name(self) -> &'static str {
        match self {
            Origin::Born => "born",
            Origin::Joined => "joined",
            Origin::Created => "created",
        }
    }
}

/// Longest command name the kernel keeps (TASK_COMM_LEN - 1).
pub const COMM_LEN: usize = 15;

/// The `forget_before` of [`Task::change`] that keeps no interval but the current one: the
/// change then pushes nothing to a history.
pub const FORGET_ALL: u64 = u64::MAX;

/// One task (thread), alive or ended.
///
/// ```
/// use nswatch::model::Attributor;
/// use nswatch::nsset::NsSet;
/// use nswatch::record::NsLink;
/// use nswatch::{Body, Event};
///
/// let link = |ino| NsLink { dev: 4, ino };
/// let mut model = Attributor::new(NsSet::from_links((1..=7).map(link)));
/// // A container's first task: its own net, pid and mnt namespaces.
/// let ct = NsSet::from_links([10, 2, 3, 14, 5, 16, 7].map(link));
/// let ev = Event {
///     time_ns: Some(1_000),
///     cpu: Some(0),
///     pid: Some(42),
///     tid: Some(42),
///     synthesized: false,
///     body: Body::Namespaces { ns: &ct, comm: Some("sleep".into()), cause: None },
/// };
/// let group = model.observe(&ev).unwrap();
/// let task = model.task(42).unwrap();
/// assert_eq!((task.pid, task.tid), (42, 42));
/// assert_eq!(model.live_tasks(), 1);
/// ```
#[derive(Debug, Clone)]
pub struct Task {
    /// Thread group id as the host sees it.
    pub pid: u32,
    /// Thread id as the host sees it.
    pub tid: u32,
    /// Parent process id (0 when not known).
    pub ppid: u32,
    /// Pid in the task's own pid namespace (NSpid's last field); 0 when not known. A live
    /// session reads it for a group's first task at once and for the others once they
    /// have lived 250 ms (a fork storm in a container reads no status file per fork).
    pub nspid: u32,
    /// End, event time in ns; `u64::MAX` while alive.
    pub ended_ns: u64,
    /// Process start time from /proc (clock ticks since boot; 0 when not known), to order
    /// processes found at start.
    pub start_time: u64,
    /// How it entered its current group.
    pub origin: Origin,
    /// Born by a FORK whose own NAMESPACES record (written µs later, and not always with
    /// the FORK's time) has not come yet: its set is its parent's until then.
    pub(crate) awaits_own_ns: bool,
    comm_len: u8,
    comm: [u8; COMM_LEN],
    /// The current interval.
    pub current: Interval,
    /// Earlier intervals, oldest first, those that ended within the grace period (see
    /// [`Task::change`]); `None` for most tasks (boxed so that a task that never changed
    /// pays 8 bytes for its history, not a deque's 32).
    #[allow(clippy::box_collection)]
    past: Option<Box<VecDeque<Interval>>>,
}

impl Task {
    /// A task that has `set` (in `group`) from `start_ns`.
    pub fn new(pid: u32, tid: u32, start_ns: u64, set: SetId, group: GroupId) -> Task {
        Task {
            pid,
            tid,
            ppid: 0,
            nspid: 0,
            start_time: 0,
            ended_ns: u64::MAX,
            origin: Origin::Born,
            awaits_own_ns: false,
            comm_len: 0,
            comm: [0; COMM_LEN],
            current: Interval {
                start_ns,
                set,
                group,
            },
            past: None,
        }
    }

    /// Its command name (truncated as the kernel truncates it).
    pub fn comm(&self) -> &str {
        // Only ever filled from a &str cut on a char boundary.
        std::str::from_utf8(&self.comm[..self.comm_len as usize]).unwrap_or("")
    }

    /// Sets the command name, cut to [`COMM_LEN`] bytes on a char boundary.
    #[inline]
    pub fn set_comm(&mut self, comm: &str) {
        let b = comm.as_bytes();
        if b.len() <= COMM_LEN {
            // Every name the kernel gives fits: copied whole, inline (a copy of a length
            // known only at run time is a call to memcpy, once per NAMESPACES event).
            // SAFETY: `b` has its `b.len()` bytes, and `self.comm` room for COMM_LEN ≥ them.
            unsafe { crate::bytes::copy_short(b.as_ptr(), self.comm.as_mut_ptr(), b.len()) };
            self.comm_len = b.len() as u8;
            return;
        }
        let mut n = COMM_LEN;
        while !comm.is_char_boundary(n) {
            n -= 1;
        }
        self.comm[..n].copy_from_slice(&b[..n]);
        self.comm_len = n as u8;
    }

    /// Takes `other`'s command name (a forked child has its parent's until it execs).
    pub fn copy_comm(&mut self, other: &Task) {
        self.comm = other.comm;
        self.comm_len = other.comm_len;
    }

    /// True while the task runs.
    pub fn is_alive(&self) -> bool {
        self.ended_ns == u64::MAX
    }

    /// [`Task::change`], and how it came into `group` when it changed after its first
    /// interval began: it made the group (`created`) or joined it.
    #[inline(always)]
    pub fn move_to(
        &mut self,
        time_ns: u64,
        set: SetId,
        group: GroupId,
        created: bool,
        forget_before: u64,
    ) {
        if time_ns > self.current.start_ns {
            self.origin = if created {
                Origin::Created
            } else {
                Origin::Joined
            };
        }
        self.change(time_ns, set, group, forget_before);
    }

    /// Moves the task to `set` at `time_ns`. A change at the very time the current interval
    /// began replaces it: perf writes FORK and then the child's NAMESPACES at one timestamp,
    /// and the second is the truth (pid_for_children, time_for_children).
    ///
    /// Intervals that ended before `forget_before` are forgotten (the model passes the
    /// start of its grace period): a thread that calls setns 50,000 times a second would
    /// otherwise grow its history by 800 KB a second for as long as it lives. Each
    /// interval is dropped once, from the front, so this stays O(1) amortized. At
    /// [`FORGET_ALL`] the ended interval is not kept at all.
    #[inline(always)]
    pub fn change(&mut self, time_ns: u64, set: SetId, group: GroupId, forget_before: u64) {
        if time_ns <= self.current.start_ns {
            self.current.set = set;
            self.current.group = group;
            return;
        }
        let ended = std::mem::replace(
            &mut self.current,
            Interval {
                start_ns: time_ns,
                set,
                group,
            },
        );
        if forget_before == FORGET_ALL {
            return;
        }
        self.past
            .get_or_insert_with(Default::default)
            .push_back(ended);
        self.forget_before(forget_before, false);
    }

    /// Forgets the intervals that ended before `horizon`: what [`Task::change`] does at
    /// each change, and what the model does to every task when it gives back the groups
    /// that ended before its history window (a task that changed once, long ago, keeps no
    /// interval of a group the model no longer has). With `release`, a history left empty
    /// gives back its deque too; [`Task::change`] keeps it for the next change (a setns
    /// storm's thread would allocate one per change otherwise).
    pub fn forget_before(&mut self, horizon: u64, release: bool) {
        let Some(past) = self.past.as_deref_mut() else {
            return;
        };
        while !past.is_empty() {
            // An interval ends where the next one starts.
            let end = past
                .get(1)
                .map_or(self.current.start_ns, |next| next.start_ns);
            if end >= horizon {
                break;
            }
            past.pop_front();
        }
        if release && past.is_empty() {
            self.past = None;
        }
    }

    /// The sets its remembered intervals hold, for the model's count of sets in use.
    pub(crate) fn sets(&self) -> impl Iterator<Item = SetId> + '_ {
        self.intervals().map(|iv| iv.set)
    }

    /// The interval in force at `time_ns`, if the task existed then (and that interval
    /// is not forgotten). Times before the first interval of a task found at start fall in
    /// that interval: it existed before we looked.
    pub fn at(&self, time_ns: u64) -> Option<&Interval> {
        if time_ns > self.ended_ns {
            return None;
        }
        if time_ns >= self.current.start_ns {
            return Some(&self.current);
        }
        let Some(past) = self.past.as_deref() else {
            return (self.current.start_ns == 0).then_some(&self.current);
        };
        // The newest interval that started by `time_ns`: in the deque's second slice (the
        // newer one), else in its first.
        let (older, newer) = past.as_slices();
        if let Some(iv) = latest_by(newer, time_ns).or_else(|| latest_by(older, time_ns)) {
            return Some(iv);
        }
        // Forgotten intervals start after 0, so this is a task found at start whose
        // history is whole.
        (self.born_ns() == 0).then(|| past.front().unwrap_or(&self.current))
    }

    /// Birth, event time in ns (0 when it existed at start): the start of its first
    /// interval — of the oldest one kept, once older ones are forgotten.
    pub fn born_ns(&self) -> u64 {
        self.past
            .as_deref()
            .and_then(VecDeque::front)
            .unwrap_or(&self.current)
            .start_ns
    }

    /// The interval before the current one, if it is remembered.
    pub fn previous(&self) -> Option<&Interval> {
        self.past.as_deref().and_then(VecDeque::back)
    }

    /// Every interval remembered, oldest first.
    pub fn intervals(&self) -> impl Iterator<Item = &Interval> {
        self.past
            .as_deref()
            .into_iter()
            .flatten()
            .chain(std::iter::once(&self.current))
    }

    /// Heap bytes the task owns beyond its inline size.
    pub fn heap_bytes(&self) -> usize {
        self.past.as_ref().map_or(0, |p| {
            std::mem::size_of::<VecDeque<Interval>>()
                + p.capacity() * std::mem::size_of::<Interval>()
        })
    }
}

/// The last of `ivs` (in start order) that started by `time_ns`. Most histories are a few
/// intervals, scanned back; a setns storm's thread keeps tens of thousands, searched.
#[inline]
fn latest_by(ivs: &[Interval], time_ns: u64) -> Option<&Interval> {
    if ivs.len() <= 16 {
        ivs.iter().rev().find(|iv| iv.start_ns <= time_ns)
    } else {
        let after = ivs.partition_point(|iv| iv.start_ns <= time_ns);
        after.checked_sub(1).map(|i| &ivs[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(n: u32) -> GroupId {
        GroupId(n)
    }

    #[test]
    fn history_answers_for_the_past() {
        let mut t = Task::new(10, 10, 100, SetId(0), g(0));
        t.change(200, SetId(1), g(1), 0);
        t.change(300, SetId(2), g(2), 0);
        assert_eq!(t.at(50), None, "not born yet");
        assert_eq!(t.at(100).unwrap().group, g(0));
        assert_eq!(t.at(199).unwrap().group, g(0));
        assert_eq!(t.at(200).unwrap().group, g(1));
        assert_eq!(t.at(10_000).unwrap().group, g(2));
        t.ended_ns = 400;
        assert_eq!(t.at(400).unwrap().group, g(2));
        assert_eq!(t.at(401), None);
        assert_eq!(t.intervals().count(), 3);
    }

    #[test]
    fn same_time_change_replaces() {
        let mut t = Task::new(10, 11, 100, SetId(0), g(0));
        t.change(100, SetId(3), g(3), 0);
        assert_eq!(t.intervals().count(), 1);
        assert_eq!(t.at(100).unwrap().set, SetId(3));
    }

    #[test]
    fn tasks_found_at_start_cover_earlier_times() {
        let t = Task::new(10, 10, 0, SetId(0), g(0));
        assert_eq!(t.at(0).unwrap().group, g(0));
        let mut t = Task::new(10, 10, 0, SetId(0), g(0));
        t.change(500, SetId(1), g(1), 0);
        assert_eq!(t.at(1).unwrap().group, g(0));
    }

    #[test]
    fn history_older_than_the_horizon_is_forgotten() {
        // Found at start, then a setns every 10 ns; the horizon trails by 100 ns.
        let mut t = Task::new(10, 10, 0, SetId(0), g(0));
        for i in 1..=1_000u32 {
            let time = u64::from(i) * 10;
            t.change(time, SetId(i % 2), g(i % 2), time.saturating_sub(100));
            let kept: Vec<_> = t.intervals().collect();
            // Every interval that ended at or after the horizon, and no other.
            assert!(kept.len() <= 12, "{}", kept.len());
            assert!(kept.windows(2).all(|w| w[0].start_ns < w[1].start_ns));
        }
        assert_eq!(t.at(10_000).unwrap().set, SetId(0));
        assert_eq!(t.at(9_995).unwrap().set, SetId(1));
        assert_eq!(t.at(9_900).unwrap().set, SetId(0));
        assert_eq!(t.previous().unwrap().set, SetId(1));
        // Forgotten: neither the old intervals nor the time before the task was seen.
        assert_eq!(t.at(5_000), None);
        assert_eq!(t.at(0), None);
        assert!(t.born_ns() > 0);
        // A longer horizon: ~100 intervals kept, the deque wrapped, searched.
        let mut t = Task::new(10, 10, 0, SetId(0), g(0));
        for i in 1..=5_000u32 {
            let time = u64::from(i) * 10;
            t.change(time, SetId(i % 3), g(i % 3), time.saturating_sub(1_000));
        }
        for back in [5u64, 15, 25, 505, 995] {
            let at = 50_000 - back;
            let want = SetId(((at / 10) % 3) as u32);
            assert_eq!(t.at(at).unwrap().set, want, "at {at}");
        }
        assert_eq!(t.at(48_000), None);
        // Without a horizon nothing is forgotten.
        let mut t = Task::new(10, 10, 0, SetId(0), g(0));
        for i in 1..=100u32 {
            t.change(u64::from(i) * 10, SetId(i % 2), g(i % 2), 0);
        }
        assert_eq!(t.intervals().count(), 101);
        assert_eq!(t.at(0).unwrap().set, SetId(0));
        assert_eq!(t.at(505).unwrap().set, SetId(0));
        assert_eq!(t.at(515).unwrap().set, SetId(1));
    }

    #[test]
    fn comm_is_cut_like_the_kernel_cuts_it() {
        let mut t = Task::new(1, 1, 0, SetId(0), g(0));
        t.set_comm("a-very-long-command-name");
        assert_eq!(t.comm(), "a-very-long-com");
        t.set_comm("ééééééééé");
        assert_eq!(t.comm(), "ééééééé");
        t.set_comm("sh");
        assert_eq!(t.comm(), "sh");
        // Every length that fits, each copied in its pieces over a longer name before it.
        let name = "abcdefghijklmno";
        for n in (0..=COMM_LEN).rev() {
            t.set_comm(&name[..n]);
            assert_eq!(t.comm(), &name[..n]);
        }
    }
}
