//! The [`Attributor`]: fed events, it keeps every task's namespace history and the groups they
//! form, and answers "which group was task T in at time t".
//!
//! Here: its state, what it is fed and what it answers. Its steps: `tasks` (a task's set
//! changed, a fork, an exit), `identity` (which group a set belongs to), `window` (the
//! clock: grace periods, ends declared, the history window).

use crate::event::cause::Syscall;
use crate::event::Cause;
use crate::event::{Body, Event};
use crate::model::group::{
    classify, differs_from_host, is_kernel_thread, Group, GroupId, Kind, Naming,
};
use crate::model::task::{Interval, Origin, Task, FORGET_ALL};
use crate::nsset::{GiveBackSlack, Interner, NsSet, SetId};
use crate::record::{NsKind, NsLink};
use hashbrown::HashMap;
use std::collections::VecDeque;

mod identity;
mod tasks;
mod window;

/// How long an ended task still answers [`Attributor::attribute`], in event time: samples
/// of a task reach a profiler after its EXIT record, by up to a ring drain and a reorder
/// window (tens of ms); 5 s leaves room for slow consumers.
pub const DEFAULT_GRACE_NS: u64 = 5_000_000_000;

/// How long a group stays without a task before its end is declared ("container_exit"),
/// in event time. A task that leaves a group's namespaces and enters them again (`ip
/// netns exec` after `ip netns add`, a thread going back and forth by setns) finds them
/// alive: the same group, which never ended for the stream. 100 ms covers a script's
/// commands and a setns storm; a container that stopped is declared ended that much later.
pub const EXIT_LINGER_NS: u64 = 100_000_000;

/// How far back among the ended tasks a late end is still put in its place (see
/// `Attributor::retire`).
const LATE_END_PLACES: usize = 4096;

/// How long a live session keeps what ended by default (`record --history`): a group
/// that ended within it keeps its id, names and label (entered again, a namespace kept
/// by a file or a mount is the same group; a profiler labelling samples that come late
/// finds it), and memory stays bounded by what starts and ends in 10 minutes.
pub const DEFAULT_HISTORY_NS: u64 = 600_000_000_000;

/// The shortest history window: longer than [`EXIT_LINGER_NS`], so that a group is given
/// back only after its end was declared and handed on.
pub const MIN_HISTORY_NS: u64 = 1_000_000_000;

/// Groups past the window are given back together once they are this many, at least...
const COMPACT_MIN: usize = 64;
/// ...or this fraction of the table (1/8): each give-back moves the table once.
const COMPACT_EVERY: usize = 8;

/// NAMESPACES events after which a [`Attributor::learning`] model without a PID 1 or 2
/// record takes the most common set as the host's.
pub const HOST_GUESS_AFTER: u32 = 1000;

/// How long after its EXIT record a task may still be sampled and be answered for: the rest
/// of `do_exit`, which unmaps the address space after the record is written (tens of µs
/// for a shell, milliseconds for a large process). perf answers until the tid is reused;
/// a bound keeps the ended tasks a file's model holds to those of the last 100 ms.
pub const EXIT_TAIL_NS: u64 = 100_000_000;

/// How many of the tasks that ended last a lookup in the exit tail looks through: a tid
/// never seen costs this many comparisons (~0.4 ns each), and a tail sample finds its task
/// among the first few (256 covers 50 ms of a 5,000 forks/s loop).
const EXIT_TAIL_SCAN: usize = 256;

/// Slots of [`Attributor`]'s count of ended tasks by tid.
const ENDED_SLOTS: usize = 4096;

fn ended_slot(tid: u32) -> usize {
    tid as usize % ENDED_SLOTS
}

/// How long after a scan of the machine finished the EXIT of a task it found gone may
/// still be stamped. Where the kernel writes EXIT early in `do_exit`, it is stamped before
/// the task leaves the scan's view; where it writes it after `exit_task_namespaces` (older
/// kernels), the task iterator passes over a task (no nsproxy) whose EXIT is still to
/// come, after the task work that runs in between.
pub const UNSEEN_EXIT_NS: u64 = 100_000_000;

/// A task a scan found gone before its EXIT was read ([`Attributor::end_missing`]): the
/// EXIT still belongs to its group, up to `until_ns`.
#[derive(Debug, Clone, Copy)]
struct Unseen {
    tid: u32,
    group: GroupId,
    until_ns: u64,
}

/// A change in the set of groups, for "container_start", "container_exit" and renames.
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
/// use nswatch::model::ChangeKind;
/// let changes: Vec<_> = model.take_changes().collect();
/// assert!(changes.iter().any(|c| c.group == group && c.kind == ChangeKind::Start));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    /// Event time, ns.
    pub time_ns: u64,
    /// What happened.
    pub kind: ChangeKind,
    /// To which group.
    pub group: GroupId,
}

/// What a [`Change`] is.
///
/// ```
/// use nswatch::model::{Change, ChangeKind, GroupId};
///
/// let c = Change { time_ns: 5, kind: ChangeKind::Exit, group: GroupId(3) };
/// assert_ne!(c.kind, ChangeKind::Start);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// Its first task entered it.
    Start,
    /// Its last task left it.
    Exit,
    /// Its name changed (it had one before).
    Rename,
}

/// The answer to [`Attributor::attribute`].
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
/// // Where was thread 42 at 1.5 µs?
/// let a = model.attribute(42, 42, 1_500).unwrap();
/// assert_eq!(a.group, group);
/// assert_eq!(model.sets().get(a.set), &ct);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attribution {
    /// The group.
    pub group: GroupId,
    /// The task's namespace set at that time.
    pub set: SetId,
}

/// One task as /proc shows it, for [`Attributor::add_snapshot`].
///
/// ```
/// use nswatch::model::{Attributor, TaskSnapshot};
/// use nswatch::nsset::NsSet;
/// use nswatch::record::NsLink;
///
/// let link = |ino| NsLink { dev: 4, ino };
/// let mut model = Attributor::new(NsSet::from_links((1..=7).map(link)));
/// let task = TaskSnapshot {
///     pid: 42,
///     tid: 42,
///     ppid: 1,
///     nspid: 1,
///     start_time: 0,
///     comm: "sleep",
///     ns: NsSet::from_links([10, 2, 3, 14, 5, 16, 7].map(link)),
/// };
/// let group = model.add_snapshot(0, &task);
/// assert_eq!(model.group(group).kind.name(), "container");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct TaskSnapshot<'a> {
    /// Thread group id.
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// Parent process id.
    pub ppid: u32,
    /// Pid in its own pid namespace (0 when not known).
    pub nspid: u32,
    /// Start time of the process, any clock that orders processes (/proc's starttime).
    pub start_time: u64,
    /// Command name.
    pub comm: &'a str,
    /// Namespace links.
    pub ns: NsSet,
}

/// Containers that share one network namespace.
///
/// ```
/// use nswatch::model::{Attributor, TaskSnapshot};
/// use nswatch::nsset::NsSet;
/// use nswatch::record::NsLink;
///
/// let link = |ino| NsLink { dev: 4, ino };
/// let mut model = Attributor::new(NsSet::from_links((1..=7).map(link)));
/// // Two containers (own pid and mnt namespaces) in one network namespace, 10.
/// for (pid, pidns, mnt) in [(42, 14, 16), (43, 24, 26)] {
///     let ns = NsSet::from_links([10, 2, 3, pidns, 5, mnt, 7].map(link));
///     let comm = "sleep";
///     model.add_snapshot(0, &TaskSnapshot { pid, tid: pid, ppid: 1, nspid: 1, start_time: 0, comm, ns });
/// }
/// let pods = model.pods();
/// assert_eq!(pods.len(), 1);
/// assert_eq!((pods[0].net, pods[0].containers.len()), (link(10), 2));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pod {
    /// The shared network namespace.
    pub net: NsLink,
    /// Its containers, in id order.
    pub containers: Vec<GroupId>,
}

/// The container model. Pure: no I/O, fed events (or /proc snapshots) in time order.
///
/// ```
/// use nswatch::model::Attributor;
/// use nswatch::nsset::NsSet;
/// use nswatch::record::NsLink;
/// use nswatch::{Body, Event};
///
/// let link = |ino| NsLink { dev: 4, ino };
/// let host = NsSet::from_links((1..=7).map(link));
/// let mut model = Attributor::new(host);
/// // A container's init: own pid (4) and mnt (5) namespaces.
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
/// assert_eq!(model.group(group).kind.name(), "container");
/// // A sample that arrives late still finds it.
/// assert_eq!(model.attribute(42, 42, 1_500).unwrap().group, group);
/// assert_eq!(model.attribute(42, 42, 999), None);
/// ```
#[derive(Debug)]
pub struct Attributor {
    host: NsSet,
    /// False until the host's set is known (see [`Attributor::learning`]).
    host_known: bool,
    /// NAMESPACES events seen while the host is not known.
    unsure_events: u32,
    sets: Interner,
    groups: Vec<Group>,
    /// The newest group of each key, live or ended. An ended group comes back to life when
    /// a task enters its namespaces again (setns: they still exist); only a namespace
    /// *created* with a key's numbers (inode reuse) starts a new generation.
    by_key: HashMap<NsSet, GroupId>,
    /// The group last found for each set (by [`SetId`]), valid until a new generation of
    /// that group's key replaces it: a thread that goes back and forth between known sets
    /// (setns) is placed without classifying its set again.
    set_group: Vec<Option<GroupId>>,
    /// Groups by the label they hold: live ones and ended ones whose namespaces may still
    /// be entered. A label names a namespace as `lsns` does, by its inode number, so that
    /// whoever looks at the same namespaces (ps, record, top) calls them alike; a group
    /// whose namespace is known dead (its number came back for a new one) gives it up.
    labels: HashMap<String, GroupId>,
    /// How many groups held each label before, for [`Group::generation`].
    generations: HashMap<String, u32>,
    live: HashMap<u32, Task>,
    /// Ended tasks sorted by end time, kept for [`Attributor::grace_ns`]. No index by tid:
    /// a task can only answer for times up to its end, so a lookup scans back from the
    /// newest end and stops at the first that ended before the time asked for — the tasks
    /// that ended since then, a few for a profiler labelling recent samples. An index
    /// cost a hash insert into a table of every task of the grace period at each EXIT,
    /// a cache miss each (a sixth of `record`'s CPU under a fork loop), for lookups that
    /// `record` and `top` never make.
    dead: VecDeque<Task>,
    /// How many of the ended tasks have a tid in each slot (tid mod [`ENDED_SLOTS`]): a tid
    /// whose slot is empty has no ended life, so a tid never seen is answered without the
    /// exit tail's scan (an increment in a 16 KB array per EXIT, not a hash insert).
    ended_slots: Box<[u32]>,
    grace_ns: u64,
    /// Whether a live task's ended intervals are kept ([`Attributor::set_keep_past`]).
    keep_past: bool,
    now_ns: u64,
    changes: Vec<Change>,
    pid_parents: HashMap<NsLink, NsLink>,
    /// Groups left without a task, with the time the last one left, oldest first: their
    /// end is declared once they stayed so for [`EXIT_LINGER_NS`].
    exiting: VecDeque<(GroupId, u64)>,
    /// Live containers by pid namespace, oldest first, for [`Attributor::parent_of`]: the
    /// group table keeps every group ever seen (or within the history window).
    live_by_pid: HashMap<NsLink, Vec<GroupId>>,
    /// The slot of each group not at its own index in `groups`: groups before it were
    /// given back. Empty until the first are.
    slots: HashMap<GroupId, u32>,
    /// The next group's id: ids are never reused, even when groups are given back.
    next_group: u32,
    /// How long an ended group is kept; `None` keeps every group (a file's report).
    history_ns: Option<u64>,
    /// Groups whose end was declared, with the time their last task left, in the order
    /// declared: given back once that is older than the history window. An entry whose
    /// group started again since is passed over.
    ended_groups: VecDeque<(GroupId, u64)>,
    /// Groups past the window, waiting to be given back together (see
    /// [`Attributor::forget_groups`]).
    doomed: Vec<GroupId>,
    /// When the oldest of `doomed` was queued: after a window they are given back however
    /// few, so that a churn that stopped leaves nothing behind.
    doomed_since: u64,
    /// Groups given back so far.
    forgotten: u64,
    /// Tasks the last scan found gone whose EXIT may still come. Kept apart from `dead`,
    /// whose grace period serves samples and may be none (`record`): such an EXIT, stamped
    /// after the scan's start, is read once the clock has passed the end the scan gave
    /// the task, when `dead` no longer has it.
    unseen: Vec<Unseen>,
}

impl Attributor {
    /// A model whose host is `host` (see [`crate::procfs::host_set`]).
    pub fn new(host: NsSet) -> Attributor {
        let mut sets = Interner::default();
        let host_id = sets.intern(&host);
        let host_group = Group {
            id: GroupId::HOST,
            kind: Kind::Host,
            key: NsSet::default(),
            generation: 0,
            first_set: host_id,
            differs: 0,
            label: "host".to_string(),
            started_ns: 0,
            ended_ns: None,
            live_tasks: 0,
            leader: 0,
            creator: None,
            naming: Naming {
                name: Some("host".to_string()),
                ..Naming::default()
            },
            kernel_threads: false,
        };
        Attributor {
            host,
            host_known: true,
            unsure_events: 0,
            sets,
            groups: vec![host_group],
            by_key: HashMap::new(),
            set_group: Vec::new(),
            labels: HashMap::new(),
            generations: HashMap::new(),
            live: HashMap::new(),
            dead: VecDeque::new(),
            ended_slots: vec![0; ENDED_SLOTS].into_boxed_slice(),
            grace_ns: DEFAULT_GRACE_NS,
            keep_past: true,
            now_ns: 0,
            changes: Vec::new(),
            pid_parents: HashMap::new(),
            exiting: VecDeque::new(),
            live_by_pid: HashMap::new(),
            slots: HashMap::new(),
            next_group: 1,
            history_ns: None,
            ended_groups: VecDeque::new(),
            doomed: Vec::new(),
            doomed_since: 0,
            forgotten: 0,
            unseen: Vec::new(),
        }
    }

    /// A model that learns the host from the stream, for recordings: perf synthesizes the
    /// tasks that exist at start in pid order, so the host is the set of PID 1, or of
    /// kthreadd (PID 2) where PID 1's links were unreadable (all zero). A stream that has
    /// neither takes the most common set after [`HOST_GUESS_AFTER`] NAMESPACES events.
    /// Tasks seen before that are placed again once the host is known.
    pub fn learning() -> Attributor {
        let mut m = Attributor::new(NsSet::default());
        m.host_known = false;
        m
    }

    /// True once the host's set is known.
    pub fn host_known(&self) -> bool {
        self.host_known
    }

    /// Sets the host's set and places every live task again.
    pub fn set_host(&mut self, host: NsSet) {
        self.host = host;
        self.host_known = true;
        // Every set's classification depends on the host's.
        self.set_group.clear();
        let id = self.sets.intern(&host);
        self.groups[0].first_set = id;
        let mut tids: Vec<(u32, u64)> = self
            .live
            .values()
            .map(|t| (t.tid, t.current.start_ns))
            .collect();
        tids.sort_unstable();
        for (tid, start) in tids {
            let t = &self.live[&tid];
            let (set, old) = (t.current.set, t.current.group);
            let (g, _) = self.group_for(set, start, tid, 0);
            if g != old {
                let t = self.live.get_mut(&tid).expect("listed above");
                t.current.group = g;
                self.enter(g);
                self.leave(old, start);
            }
        }
    }

    fn learn_host(&mut self, pid: u32, ns: &NsSet) {
        if unreadable(ns) {
            return;
        }
        if pid == 1 || pid == 2 {
            self.set_host(*ns);
            return;
        }
        self.unsure_events += 1;
        if self.unsure_events >= HOST_GUESS_AFTER {
            let mut count: HashMap<SetId, u32> = HashMap::new();
            for t in self.live.values() {
                *count.entry(t.current.set).or_default() += 1;
            }
            if let Some((&set, _)) = count
                .iter()
                .max_by_key(|(s, n)| (**n, std::cmp::Reverse(**s)))
            {
                let host = *self.sets.get(set);
                self.set_host(host);
            }
        }
    }

    /// Sets how long ended tasks still answer [`Attributor::attribute`] (at most the
    /// history window).
    pub fn set_grace_ns(&mut self, grace_ns: u64) {
        self.grace_ns = grace_ns.min(self.history_ns.unwrap_or(u64::MAX));
    }

    /// Whether a live task keeps the intervals it ended for the grace period (the default)
    /// or only its current one. A reader whose input has nothing to attribute to a past
    /// time (a capture of side-band records alone, which has no samples) turns this off:
    /// each change of a task's namespaces then writes no history. Without its past, a
    /// task answers [`Attributor::attribute`] only from its current interval, and its
    /// [`Task::born_ns`] is that interval's start. Turning it off forgets the past kept.
    pub fn set_keep_past(&mut self, keep: bool) {
        self.keep_past = keep;
        if !keep {
            for t in self.live.values_mut() {
                t.forget_before(FORGET_ALL, true);
            }
        }
    }

    /// Sets how long the model keeps what ended, for a model that runs for weeks (a live
    /// session): a group that ended longer ago than `history_ns` gives back its memory
    /// (its names, label, key, sets) and its id answers no more ([`Attributor::find_group`]
    /// is `None`; ids are never reused), and task histories keep nothing older (the grace
    /// period is cut to the window when longer). Queries about earlier times answer
    /// `None`, never a group that took a forgotten one's place. At least
    /// [`MIN_HISTORY_NS`]; `None`, the default, keeps everything (a recording's report).
    pub fn set_history_ns(&mut self, history_ns: Option<u64>) {
        self.history_ns = history_ns.map(|h| h.max(MIN_HISTORY_NS));
        self.set_grace_ns(self.grace_ns);
    }

    /// How long ended groups are kept, if not for ever.
    pub fn history_ns(&self) -> Option<u64> {
        self.history_ns
    }

    /// The latest event time seen, ns: the time of an event that carries none.
    pub fn now_ns(&self) -> u64 {
        self.now_ns
    }

    /// The grace period for ended tasks, ns.
    pub fn grace_ns(&self) -> u64 {
        self.grace_ns
    }

    /// The host's namespace set.
    pub fn host(&self) -> &NsSet {
        &self.host
    }

    /// Applies one event and returns the group it belongs to: the task's group after a
    /// NAMESPACES or FORK, before an EXIT, at the sample's time for a SAMPLE. Events without
    /// a task (LOST, CGROUP) return `None`.
    pub fn observe(&mut self, ev: &Event<'_>) -> Option<GroupId> {
        self.observe_at(ev, None)
    }

    /// [`Attributor::observe`] for an event of a stream that names each distinct set by an
    /// index (`set_index`, that of a NAMESPACES event's set), the same set under the same
    /// index every time: an [`EventReceiver`](crate::event::EventReceiver)'s. Each index's
    /// set is then interned once instead of at each event. One stream per model.
    #[inline]
    pub fn observe_at(&mut self, ev: &Event<'_>, set_index: Option<u32>) -> Option<GroupId> {
        let time = ev.time_ns.unwrap_or(self.now_ns);
        self.advance(time);
        let tid = ev.tid?;
        let pid = ev.pid.unwrap_or(tid);
        match &ev.body {
            Body::Namespaces { ns, comm, cause } => {
                if !self.host_known {
                    self.learn_host(pid, ns);
                }
                let born = if ev.synthesized { 0 } else { time };
                let created = cause.map_or(0, created_by);
                let set = self.sets.intern_at(set_index, ns);
                Some(self.set_namespaces(
                    pid,
                    tid,
                    time,
                    born,
                    (set, ns),
                    comm.as_deref(),
                    created,
                    None,
                ))
            }
            Body::Fork { ppid, ptid } => Some(self.fork(pid, tid, *ppid, *ptid, time)),
            Body::Exit { .. } => self.exit(tid, time),
            Body::Comm { comm, .. } => {
                let t = self.live.get_mut(&tid)?;
                t.set_comm(comm);
                Some(t.current.group)
            }
            Body::Sample { .. } => self.attribute(pid, tid, time).map(|a| a.group),
            _ => None,
        }
    }

    /// Adds a task read from /proc at `time_ns` (what `nswatch ps` and a live bootstrap know
    /// that events do not: parent, NSpid, start time). Call [`Attributor::settle_origins`]
    /// once every task of the scan is in.
    pub fn add_snapshot(&mut self, time_ns: u64, snap: &TaskSnapshot<'_>) -> GroupId {
        let set = self.sets.intern(&snap.ns);
        let g = self.set_namespaces(
            snap.pid,
            snap.tid,
            time_ns,
            0,
            (set, &snap.ns),
            Some(snap.comm),
            0,
            Some(snap.ppid),
        );
        if let Some(t) = self.live.get_mut(&snap.tid) {
            t.nspid = snap.nspid;
            t.ppid = snap.ppid;
            t.start_time = snap.start_time;
        }
        g
    }

    /// Tells, for tasks found at start, which were born in their group and which joined it
    /// later (`docker exec`, `nsenter`): in each group, the oldest process whose parent is
    /// outside the group started it; other such processes came in from outside, and their
    /// threads and descendants inherit that. Also names each group's creator.
    pub fn settle_origins(&mut self) {
        // Group and start time of every process (its thread group leader).
        let proc_group: HashMap<u32, (GroupId, u64)> = self
            .live
            .values()
            .filter(|t| t.pid == t.tid)
            .map(|t| (t.pid, (t.current.group, t.start_time)))
            .collect();
        let mut first_root: HashMap<GroupId, (u64, u32)> = HashMap::new();
        for t in self
            .live
            .values()
            .filter(|t| t.pid == t.tid && t.born_ns() == 0)
        {
            let g = t.current.group;
            if g == GroupId::HOST || proc_group.get(&t.ppid).map(|p| p.0) == Some(g) {
                continue;
            }
            let e = first_root.entry(g).or_insert((t.start_time, t.pid));
            if (t.start_time, t.pid) < *e {
                *e = (t.start_time, t.pid);
            }
        }
        // A process's origin is that of its nearest ancestor that entered from outside.
        let parent_of: HashMap<u32, u32> = self
            .live
            .values()
            .filter(|t| t.pid == t.tid)
            .map(|t| (t.pid, t.ppid))
            .collect();
        let origin_of = |pid: u32, g: GroupId| -> Origin {
            let mut p = pid;
            for _ in 0..4096 {
                let pp = parent_of.get(&p).copied().unwrap_or(0);
                if proc_group.get(&pp).map(|x| x.0) != Some(g) {
                    return match first_root.get(&g) {
                        Some(&(_, root)) if root != p => Origin::Joined,
                        _ => Origin::Born,
                    };
                }
                p = pp;
            }
            Origin::Born
        };
        let mut creators: Vec<(GroupId, u32)> = Vec::new();
        for t in self.live.values_mut().filter(|t| t.born_ns() == 0) {
            let g = t.current.group;
            if g != GroupId::HOST {
                t.origin = origin_of(t.pid, g);
            }
        }
        for (&g, &(_, root)) in &first_root {
            creators.push((g, parent_of.get(&root).copied().unwrap_or(0)));
        }
        for (g, ppid) in creators {
            let comm = self.live.get(&ppid).map(|t| t.comm().to_string());
            let group = self.group_mut(g);
            if group.creator.is_none() {
                group.creator = comm;
            }
            if let Some(root) = first_root.get(&g) {
                group.leader = root.1;
            }
        }
    }

    /// The group task `tid` (of process `pid`) was in at `time_ns`, alive or ended within the
    /// grace period. `pid` 0 matches any process. See [`Attributor::task_at`].
    pub fn attribute(&self, pid: u32, tid: u32, time_ns: u64) -> Option<Attribution> {
        self.task_at(pid, tid, time_ns).map(|(_, iv)| Attribution {
            group: iv.group,
            set: iv.set,
        })
    }

    /// The life of task `tid` (of process `pid`; 0 matches any) that ran at `time_ns`, and
    /// its interval then: the live task, or one that ended within the grace period.
    ///
    /// A task still runs after its EXIT record: the kernel writes it early in `do_exit`,
    /// before the address space is torn down, and samples land in that tail. A time just
    /// after a task's end ([`EXIT_TAIL_NS`]) is answered by its last interval, as perf gives
    /// such samples to the exited thread, so long as no newer life of the tid had begun.
    ///
    /// With a history window ([`Attributor::set_history_ns`]), a time before it is
    /// unknown (`None`), whatever the task's history still holds.
    pub fn task_at(&self, pid: u32, tid: u32, time_ns: u64) -> Option<(&Task, &Interval)> {
        if self
            .history_ns
            .is_some_and(|h| time_ns < self.now_ns.saturating_sub(h))
        {
            return None;
        }
        let hit = |t: &'_ Task| -> bool { pid == 0 || t.pid == pid };
        let live = self.live.get(&tid);
        if let Some(found) = live
            .filter(|t| hit(t))
            .and_then(|t| Some((t, t.at(time_ns)?)))
        {
            return Some(found);
        }
        // Newest end first (pid reuse: the latest life that covers the time wins), up to
        // the first task that ended before `time_ns`.
        let mut ended = self.dead.iter().rev().peekable();
        while let Some(t) = ended.next_if(|t| t.ended_ns >= time_ns) {
            if t.tid == tid && hit(t) {
                if let Some(iv) = t.at(time_ns) {
                    return Some((t, iv));
                }
            }
        }
        if tid == 0
            || self.ended_slots[ended_slot(tid)] == 0
            || live.is_some_and(|t| t.born_ns() <= time_ns)
        {
            return None;
        }
        // The exit tail: the newest life of the tid that ended before `time_ns`, looked
        // for among the tasks that ended last, within the tail's length.
        let newest = ended
            .take(EXIT_TAIL_SCAN)
            .take_while(|t| time_ns - t.ended_ns <= EXIT_TAIL_NS)
            .find(|t| t.tid == tid)?;
        hit(newest).then_some((newest, &newest.current))
    }

    /// A group by id: any group whose id the model handed out, except, with a history
    /// window ([`Attributor::set_history_ns`]), one that ended longer ago than the window
    /// (an id kept past that is looked up with [`Attributor::find_group`]).
    ///
    /// # Panics
    ///
    /// For a group the model gave back, or an id it never handed out.
    #[inline]
    pub fn group(&self, id: GroupId) -> &Group {
        match self.slot(id) {
            Some(i) => &self.groups[i],
            None => missing_group(id),
        }
    }

    /// A group by id, or `None` when the model no longer has it (it ended longer ago than
    /// the history window) or never had it. Ids are never reused, so an id answers for its
    /// own group or for none.
    #[inline]
    pub fn find_group(&self, id: GroupId) -> Option<&Group> {
        self.slot(id).map(|i| &self.groups[i])
    }

    #[inline]
    fn group_mut(&mut self, id: GroupId) -> &mut Group {
        match self.slot(id) {
            Some(i) => &mut self.groups[i],
            None => missing_group(id),
        }
    }

    /// Where group `id` is in the table: at its own index until groups before it are given
    /// back (the host, id 0, always is), then where [`Attributor::slots`] says.
    #[inline]
    fn slot(&self, id: GroupId) -> Option<usize> {
        slot_of(&self.groups, &self.slots, id)
    }

    /// The groups the model has, in id order, host first: every group seen, or with a
    /// history window the live ones and those that ended within it.
    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// How many groups were ever seen, host included: the next group's id.
    pub fn groups_seen(&self) -> u32 {
        self.next_group
    }

    /// How many ended groups were given back (ended before the history window).
    pub fn groups_forgotten(&self) -> u64 {
        self.forgotten
    }

    /// A live task by tid.
    pub fn task(&self, tid: u32) -> Option<&Task> {
        self.live.get(&tid)
    }

    /// Live tasks, in no order.
    pub fn tasks(&self) -> impl Iterator<Item = &Task> {
        self.live.values()
    }

    /// Number of live tasks.
    pub fn live_tasks(&self) -> usize {
        self.live.len()
    }

    /// Ended tasks still kept for late samples.
    pub fn ended_tasks(&self) -> usize {
        self.dead.len()
    }

    /// The interned sets.
    pub fn sets(&self) -> &Interner {
        &self.sets
    }

    /// Group changes since the last call, in the order they happened.
    pub fn take_changes(&mut self) -> std::vec::Drain<'_, Change> {
        self.changes.drain(..)
    }

    /// Marks group `id` as one of kernel threads alone ([`Group::kernel_threads`]), as a
    /// recording announced it: a replay's tasks have no parents to tell.
    pub fn mark_kernel_threads(&mut self, id: GroupId) {
        if id != GroupId::HOST {
            self.group_mut(id).kernel_threads = true;
        }
    }

    /// Names group `id`; a change of what is shown is a [`ChangeKind::Rename`].
    pub fn set_naming(&mut self, id: GroupId, naming: Naming) {
        let now = self.now_ns;
        let g = self.group_mut(id);
        if g.naming == naming {
            return;
        }
        let renamed = g.naming != Naming::default() && g.naming.shown_differs(&naming);
        g.naming = naming;
        if renamed {
            self.changes.push(Change {
                time_ns: now,
                kind: ChangeKind::Rename,
                group: id,
            });
        }
    }

    /// Records the pid in its own namespace of a live task.
    pub fn set_nspid(&mut self, tid: u32, nspid: u32) {
        if let Some(t) = self.live.get_mut(&tid) {
            t.nspid = nspid;
        }
    }

    /// Records that pid namespace `child` was created inside `parent` (NS_GET_PARENT), so
    /// that containers started inside containers show nested.
    pub fn set_pid_ns_parent(&mut self, child: NsLink, parent: NsLink) {
        self.pid_parents.insert(child, parent);
    }

    /// The live container `id` is nested in: for a container that shares its pid
    /// namespace with another (a process that unshared its mount namespace inside it), that
    /// one; else the container of its pid namespace's parent (NS_GET_PARENT at start, the
    /// creating task's pid namespace for one seen created). Which sees the same namespaces
    /// answers the same, whatever it saw before: `ps` and `record` agree.
    pub fn parent_of(&self, id: GroupId) -> Option<GroupId> {
        let g = self.group(id);
        if g.kind != Kind::Container {
            return None;
        }
        let pid = g.key.get(NsKind::Pid).filter(|l| l.ino != 0)?;
        if let Some(main) = self.main_container(pid) {
            if main != id {
                return Some(main);
            }
        }
        let parent = *self.pid_parents.get(&pid)?;
        if Some(parent) == self.host.get(NsKind::Pid) {
            return None;
        }
        self.main_container(parent)
    }

    /// The live container that stands for pid namespace `pid`: the one its init (pid 1
    /// inside) is in, else the oldest.
    fn main_container(&self, pid: NsLink) -> Option<GroupId> {
        let live = self.live_by_pid.get(&pid)?;
        live.iter()
            .copied()
            .find(|c| {
                let leader = self.group(*c).leader;
                self.live.get(&leader).is_some_and(|t| t.nspid == 1)
            })
            .or(live.first().copied())
    }

    /// Live containers that share a network namespace other than the host's, each on its
    /// own: a container nested in one of the same network (a process that unshared inside
    /// it) belongs to that one, not to a pod beside it.
    pub fn pods(&self) -> Vec<Pod> {
        let host_net = self.host.get(NsKind::Net);
        let mut by_net: HashMap<NsLink, Vec<GroupId>> = HashMap::new();
        for g in self.groups.iter().filter(|g| {
            g.is_live()
                && g.kind == Kind::Container
                && self
                    .parent_of(g.id)
                    .is_none_or(|p| self.group_net(p) != self.group_net(g.id))
        }) {
            if let Some(net) = self.group_net(g.id) {
                if Some(net) != host_net && net.ino != 0 {
                    by_net.entry(net).or_default().push(g.id);
                }
            }
        }
        let mut pods: Vec<Pod> = by_net
            .into_iter()
            .filter(|(_, v)| v.len() > 1)
            .map(|(net, mut containers)| {
                containers.sort();
                Pod { net, containers }
            })
            .collect();
        pods.sort_by_key(|p| p.containers[0]);
        pods
    }

    /// The network namespace of a group's first task.
    pub fn group_net(&self, id: GroupId) -> Option<NsLink> {
        self.sets.get(self.group(id).first_set).get(NsKind::Net)
    }

    /// Heap bytes the model holds, tables' slack included: the task tables
    /// ([`Attributor::task_bytes`]), the groups with their names, the sets, and the
    /// indexes over them. What a model that runs for weeks keeps flat with a history
    /// window ([`Attributor::set_history_ns`]).
    pub fn heap_bytes(&self) -> usize {
        use crate::nsset::map_bytes;
        let groups = self.groups.capacity() * std::mem::size_of::<Group>()
            + self.groups.iter().map(Group::heap_bytes).sum::<usize>();
        fn strings<V>(m: &HashMap<String, V>) -> usize {
            m.keys().map(String::capacity).sum()
        }
        let queues = self.exiting.capacity() * std::mem::size_of::<(GroupId, u64)>()
            + self.ended_groups.capacity() * std::mem::size_of::<(GroupId, u64)>()
            + self.doomed.capacity() * std::mem::size_of::<GroupId>()
            + self.changes.capacity() * std::mem::size_of::<Change>();
        let by_pid = map_bytes(&self.live_by_pid)
            + self
                .live_by_pid
                .values()
                .map(|v| v.capacity() * std::mem::size_of::<GroupId>())
                .sum::<usize>();
        self.task_bytes()
            + groups
            + self.sets.heap_bytes()
            + map_bytes(&self.by_key)
            + map_bytes(&self.labels)
            + strings(&self.labels)
            + map_bytes(&self.generations)
            + strings(&self.generations)
            + self.set_group.capacity() * std::mem::size_of::<Option<GroupId>>()
            + map_bytes(&self.pid_parents)
            + map_bytes(&self.slots)
            + by_pid
            + queues
            + self.unseen.capacity() * std::mem::size_of::<Unseen>()
    }

    /// Bytes held by the task tables (live and ended), counting hash table slack, for the
    /// per-task memory figure.
    pub fn task_bytes(&self) -> usize {
        let entry = std::mem::size_of::<(u32, Task)>() + 1;
        let heap: usize = self
            .live
            .values()
            .chain(self.dead.iter())
            .map(Task::heap_bytes)
            .sum();
        self.live.capacity() * entry
            + self.dead.capacity() * std::mem::size_of::<Task>()
            + std::mem::size_of_val(&*self.ended_slots)
            + heap
    }

    /// Ends, at `time_ns`, every live task for which `present` is false: after a scan of
    /// the machine that started at `time_ns` and finished at `scanned_ns` (at start, or
    /// again after lost records), the tasks that exited unseen. An EXIT of one of them read
    /// later, stamped up to [`UNSEEN_EXIT_NS`] after the scan finished, still belongs to
    /// its group.
    pub fn end_missing(&mut self, time_ns: u64, scanned_ns: u64, present: impl Fn(u32) -> bool) {
        self.unseen.retain(|u| u.until_ns >= time_ns);
        let gone: Vec<u32> = self.live.keys().copied().filter(|&t| !present(t)).collect();
        let until_ns = scanned_ns.max(time_ns).saturating_add(UNSEEN_EXIT_NS);
        for tid in gone {
            if let Some(t) = self.live.remove(&tid) {
                let group = self.retire(t, time_ns);
                self.unseen.push(Unseen {
                    tid,
                    group,
                    until_ns,
                });
            }
        }
    }

    /// The interval task `tid` is in now, if alive.
    pub fn current(&self, tid: u32) -> Option<&Interval> {
        self.live.get(&tid).map(|t| &t.current)
    }
}

/// The links of a group's key, as a mask.
fn key_mask(key: &NsSet) -> u32 {
    key.links()
        .iter()
        .enumerate()
        .filter(|(_, l)| l.ino != 0)
        .fold(0, |m, (i, _)| m | 1 << i)
}

/// The namespaces a successful call created where its caller (unshare) or child (clone)
/// is, as a link mask: CLONE_NEW* flags; setns creates none. unshare's CLONE_NEWPID moves
/// only children, whose own records show the new pid namespace as new.
pub fn created_by(cause: &Cause) -> u32 {
    if matches!(cause.syscall, Syscall::Setns) || cause.ret < 0 {
        return 0;
    }
    let moved = match cause.syscall {
        Syscall::Unshare => !(1 << NsKind::Pid as u32),
        _ => !0,
    };
    const FLAGS: [(u64, NsKind); 7] = [
        (libc::CLONE_NEWNET as u64, NsKind::Net),
        (libc::CLONE_NEWUTS as u64, NsKind::Uts),
        (libc::CLONE_NEWIPC as u64, NsKind::Ipc),
        (libc::CLONE_NEWPID as u64, NsKind::Pid),
        (libc::CLONE_NEWUSER as u64, NsKind::User),
        (libc::CLONE_NEWNS as u64, NsKind::Mnt),
        (libc::CLONE_NEWCGROUP as u64, NsKind::Cgroup),
    ];
    FLAGS
        .iter()
        .filter(|(f, _)| cause.flags & f != 0)
        .fold(0, |m, (_, k)| m | 1 << *k as u32)
        & moved
}

/// The panic of [`Attributor::group`], out of line: the lookup stays small enough to inline.
#[cold]
#[inline(never)]
fn missing_group(id: GroupId) -> ! {
    panic!(
        "group {} is not in the model (ended before its history window)",
        id.0
    )
}

/// True when no link of `ns` could be read (perf writes zeros then; inode 0 is never a
/// namespace).
fn unreadable(ns: &NsSet) -> bool {
    ns.links().iter().all(|l| l.ino == 0)
}

/// [`Attributor::slot`], of the fields apart (for a caller that holds a task borrowed).
#[inline]
fn slot_of(groups: &[Group], slots: &HashMap<GroupId, u32>, id: GroupId) -> Option<usize> {
    let i = id.0 as usize;
    if groups.get(i).is_some_and(|g| g.id == id) {
        return Some(i);
    }
    slots.get(&id).map(|&s| s as usize)
}

/// The group of `set` when it is known and live: a task moving to `set` joins it, whatever
/// it was before ([`Attributor::group_for`]'s first answer). Takes the model's fields
/// apart, to be read while a task is borrowed.
#[inline]
fn live_group_of(
    set_group: &[Option<GroupId>],
    groups: &[Group],
    slots: &HashMap<GroupId, u32>,
    set: SetId,
) -> Option<GroupId> {
    let g = (*set_group.get(set.0 as usize)?)?;
    groups[slot_of(groups, slots, g)?]
        .ended_ns
        .is_none()
        .then_some(g)
}

#[cfg(test)]
mod tests;
