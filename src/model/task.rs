//! Tasks and the history of their namespace sets, kept small: most tasks never change set, so
//! the current interval is inline and only earlier ones go to the heap.

use crate::model::group::GroupId;
use crate::nsset::SetId;

/// A span of time during which a task had one namespace set (and so one group).
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

/// One task (thread), alive or ended.
#[derive(Debug, Clone)]
pub struct Task {
    /// Thread group id as the host sees it.
    pub pid: u32,
    /// Thread id as the host sees it.
    pub tid: u32,
    /// Parent process id (0 when not known).
    pub ppid: u32,
    /// Pid in the task's own pid namespace (NSpid's last field); 0 when not known.
    pub nspid: u32,
    /// End, event time in ns; `u64::MAX` while alive.
    pub ended_ns: u64,
    /// Process start time from /proc (clock ticks since boot; 0 when not known), to order
    /// processes found at start.
    pub start_time: u64,
    /// How it entered its current group.
    pub origin: Origin,
    comm_len: u8,
    comm: [u8; COMM_LEN],
    /// The current interval.
    pub current: Interval,
    /// Earlier intervals, oldest first; `None` for most tasks (boxed so that a task that
    /// never changed pays 8 bytes for its history, not a Vec's 24).
    #[allow(clippy::box_collection)]
    past: Option<Box<Vec<Interval>>>,
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
    pub fn set_comm(&mut self, comm: &str) {
        let mut n = comm.len().min(COMM_LEN);
        while !comm.is_char_boundary(n) {
            n -= 1;
        }
        self.comm[..n].copy_from_slice(&comm.as_bytes()[..n]);
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

    /// Moves the task to `set` at `time_ns`. A change at the very time the current interval
    /// began replaces it: perf writes FORK and then the child's NAMESPACES at one timestamp,
    /// and the second is the truth (pid_for_children, time_for_children).
    pub fn change(&mut self, time_ns: u64, set: SetId, group: GroupId) {
        if time_ns <= self.current.start_ns {
            self.current.set = set;
            self.current.group = group;
            return;
        }
        self.past
            .get_or_insert_with(Default::default)
            .push(self.current);
        self.current = Interval {
            start_ns: time_ns,
            set,
            group,
        };
    }

    /// The interval in force at `time_ns`, if the task existed then. Times before the first
    /// interval of a task found at start fall in that interval: it existed before we looked.
    pub fn at(&self, time_ns: u64) -> Option<&Interval> {
        if time_ns > self.ended_ns {
            return None;
        }
        if time_ns >= self.current.start_ns {
            return Some(&self.current);
        }
        let past = self.past();
        if let Some(i) = past.iter().rposition(|iv| iv.start_ns <= time_ns) {
            return Some(&past[i]);
        }
        (self.born_ns() == 0).then_some(past.first().unwrap_or(&self.current))
    }

    /// Birth, event time in ns (0 when it existed at start): the start of its first
    /// interval.
    pub fn born_ns(&self) -> u64 {
        self.past().first().unwrap_or(&self.current).start_ns
    }

    fn past(&self) -> &[Interval] {
        self.past.as_deref().map_or(&[], Vec::as_slice)
    }

    /// Every interval, oldest first.
    pub fn intervals(&self) -> impl Iterator<Item = &Interval> {
        self.past().iter().chain(std::iter::once(&self.current))
    }

    /// Heap bytes the task owns beyond its inline size.
    pub fn heap_bytes(&self) -> usize {
        self.past.as_ref().map_or(0, |p| {
            std::mem::size_of::<Vec<Interval>>() + p.capacity() * std::mem::size_of::<Interval>()
        })
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
        t.change(200, SetId(1), g(1));
        t.change(300, SetId(2), g(2));
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
        t.change(100, SetId(3), g(3));
        assert_eq!(t.intervals().count(), 1);
        assert_eq!(t.at(100).unwrap().set, SetId(3));
    }

    #[test]
    fn tasks_found_at_start_cover_earlier_times() {
        let t = Task::new(10, 10, 0, SetId(0), g(0));
        assert_eq!(t.at(0).unwrap().group, g(0));
        let mut t = Task::new(10, 10, 0, SetId(0), g(0));
        t.change(500, SetId(1), g(1));
        assert_eq!(t.at(1).unwrap().group, g(0));
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
    }
}
