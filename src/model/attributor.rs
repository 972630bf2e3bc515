//! The [`Attributor`]: fed events, it keeps every task's namespace history and the groups they
//! form, and answers "which group was task T in at time t".

use crate::event::cause::Syscall;
use crate::event::Cause;
use crate::event::{Body, Event};
use crate::model::group::{
    classify, differs_from_host, is_kernel_thread, Group, GroupId, Kind, Naming,
};
use crate::model::task::{Interval, Origin, Task};
use crate::nsset::{GiveBackSlack, Interner, NsSet, SetId};
use crate::record::{NsKind, NsLink};
use hashbrown::HashMap;
use std::collections::VecDeque;

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

    /// Moves the model's clock to `time_ns` (event time) if that is later, forgetting the
    /// ended tasks whose grace period is over: what [`Attributor::observe`] does first,
    /// for a caller that only asks ([`Attributor::task_at`]) about a time.
    #[inline]
    pub fn advance(&mut self, time_ns: u64) {
        if time_ns <= self.now_ns {
            return;
        }
        self.now_ns = time_ns;
        // Inline, only whether anything is due: every event of a storm moves the clock,
        // and a call to do nothing cost it ~40 instructions.
        if self.dead_due(time_ns) || self.exit_due(time_ns) || self.history_ns.is_some() {
            self.catch_up(time_ns);
        }
    }

    /// True when the oldest ended task's grace period is over at `now`.
    #[inline(always)]
    fn dead_due(&self, now: u64) -> bool {
        self.dead
            .front()
            .is_some_and(|t| t.ended_ns.saturating_add(self.grace_ns) < now)
    }

    /// True when the oldest group left without a task has lingered its
    /// [`EXIT_LINGER_NS`] at `now`.
    #[inline(always)]
    fn exit_due(&self, now: u64) -> bool {
        self.exiting
            .front()
            .is_some_and(|&(_, t)| t.saturating_add(EXIT_LINGER_NS) <= now)
    }

    /// What [`Attributor::advance`] found due at `now`.
    #[inline(never)]
    fn catch_up(&mut self, now: u64) {
        self.prune();
        self.declare_ended(now);
        if let Some(h) = self.history_ns {
            self.forget_groups(h);
        }
    }

    /// The input ended: declares the end of every group left without a task, whatever
    /// time it has been so (at the latest event time, or when the linger would have ended
    /// if that is earlier). Call it before taking the last changes.
    pub fn finish(&mut self) {
        while let Some((g, t)) = self.exiting.pop_front() {
            self.changes.push(Change {
                time_ns: t.saturating_add(EXIT_LINGER_NS).min(self.now_ns.max(t)),
                kind: ChangeKind::Exit,
                group: g,
            });
            self.declared(g, t);
        }
    }

    /// Declares ended the groups that have been without a task for [`EXIT_LINGER_NS`] at
    /// `now`, stamped with the time that became so.
    fn declare_ended(&mut self, now: u64) {
        while self.exit_due(now) {
            let Some((g, t)) = self.exiting.pop_front() else {
                break;
            };
            let at = t.saturating_add(EXIT_LINGER_NS);
            self.changes.push(Change {
                time_ns: at,
                kind: ChangeKind::Exit,
                group: g,
            });
            self.declared(g, t);
        }
    }

    /// Notes that the end of `g`, whose last task left at `left`, was declared: with a
    /// history window, it is given back once that is older than the window.
    fn declared(&mut self, g: GroupId, left: u64) {
        if self.history_ns.is_some() {
            self.ended_groups.push_back((g, left));
        }
    }

    /// Takes the ended groups whose last task left more than `history` ago, and gives
    /// them back once enough wait (a [`COMPACT_EVERY`]-th of the table, at least
    /// [`COMPACT_MIN`]): giving back moves the table, so a group's share of it stays
    /// constant however fast the churn. Fewer are given back once they have waited a
    /// window: at most once a window, whatever the number of tasks walked.
    fn forget_groups(&mut self, history: u64) {
        let now = self.now_ns;
        while let Some(&(g, left)) = self.ended_groups.front() {
            let Some(group) = self.find_group(g) else {
                self.ended_groups.pop_front();
                continue;
            };
            if group.ended_ns != Some(left) {
                // Started again since (and, if it ended again, queued again).
                self.ended_groups.pop_front();
                continue;
            }
            if left.saturating_add(history) >= now {
                break;
            }
            self.ended_groups.pop_front();
            if self.doomed.is_empty() {
                self.doomed_since = now;
            }
            self.doomed.push(g);
        }
        if !self.doomed.is_empty()
            && (self.doomed.len() >= COMPACT_MIN.max(self.groups.len() / COMPACT_EVERY)
                || now.saturating_sub(self.doomed_since) > history)
        {
            self.compact(history);
        }
    }

    /// Gives back the doomed groups still ended before the window (one entered again since
    /// lives on; one whose end is among the changes not taken yet waits for the next
    /// time), and what only they held: their entries in the key, label, generation,
    /// set and pid-parent tables, the task intervals older than the window, the sets no
    /// one holds. O(groups + tasks + sets), once per many groups given back.
    fn compact(&mut self, history: u64) {
        let now = self.now_ns;
        let changed: hashbrown::HashSet<GroupId> = self.changes.iter().map(|c| c.group).collect();
        let mut gone: hashbrown::HashSet<GroupId> = hashbrown::HashSet::new();
        let mut wait = Vec::new();
        for g in std::mem::take(&mut self.doomed) {
            let Some(group) = self.find_group(g) else {
                continue;
            };
            match group.ended_ns {
                Some(e) if e.saturating_add(history) < now => {}
                // Entered again: if it ends again, it is queued again.
                _ => continue,
            }
            if changed.contains(&g) {
                wait.push(g);
            } else {
                gone.insert(g);
            }
        }
        self.doomed = wait;
        self.doomed_since = now;
        if gone.is_empty() {
            return;
        }
        // No interval older than the window is kept (the grace period is within it), so
        // no task answers with a group given back; a group a task still holds (counts gone
        // wrong) is kept rather than left dangling.
        let horizon = now.saturating_sub(self.grace_ns);
        for t in self.live.values_mut().chain(self.dead.iter_mut()) {
            t.forget_before(horizon, true);
            for iv in t.intervals() {
                gone.remove(&iv.group);
            }
        }
        self.forgotten += gone.len() as u64;
        self.groups.retain(|g| !gone.contains(&g.id));
        self.slots.clear();
        for (i, g) in self.groups.iter().enumerate() {
            if g.id.0 as usize != i {
                self.slots.insert(g.id, i as u32);
            }
        }
        self.by_key.retain(|_, g| !gone.contains(g));
        self.labels.retain(|_, g| !gone.contains(g));
        for slot in self.set_group.iter_mut() {
            if slot.is_some_and(|g| gone.contains(&g)) {
                *slot = None;
            }
        }
        // A later group with a forgotten one's label counts its generation from 0.
        let bases: hashbrown::HashSet<String> = self
            .groups
            .iter()
            .map(|g| Group::label_for(g.kind, &g.key, 0))
            .collect();
        self.generations.retain(|base, _| bases.contains(base));
        let pids: hashbrown::HashSet<NsLink> = self
            .groups
            .iter()
            .filter_map(|g| g.key.get(NsKind::Pid).filter(|l| l.ino != 0))
            .collect();
        self.pid_parents.retain(|child, _| pids.contains(child));
        // The sets still held: the groups' first ones, the tasks' intervals, the host's.
        let host = self.sets.intern(&self.host);
        let mut held = vec![false; self.sets.id_bound()];
        held[host.0 as usize] = true;
        for s in self.groups.iter().map(|g| g.first_set).chain(
            self.live
                .values()
                .chain(self.dead.iter())
                .flat_map(Task::sets),
        ) {
            held[s.0 as usize] = true;
        }
        self.sets.retain(|id| held[id.0 as usize]);
        for (i, slot) in self.set_group.iter_mut().enumerate() {
            if !held.get(i).copied().unwrap_or(false) {
                *slot = None;
            }
        }
        self.set_group.truncate(self.sets.id_bound());
        self.shrink();
    }

    /// Gives back the slack of the tables a burst of groups grew ([`GiveBackSlack`]).
    fn shrink(&mut self) {
        self.groups.give_back_slack();
        self.slots.give_back_slack();
        self.by_key.give_back_slack();
        self.labels.give_back_slack();
        self.generations.give_back_slack();
        self.pid_parents.give_back_slack();
        self.live_by_pid.give_back_slack();
        self.exiting.give_back_slack();
        self.ended_groups.give_back_slack();
        self.doomed.give_back_slack();
        self.set_group.give_back_slack();
        self.sets.shrink();
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
        let i = id.0 as usize;
        if self.groups.get(i).is_some_and(|g| g.id == id) {
            return Some(i);
        }
        self.slots.get(&id).map(|&s| s as usize)
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

    /// Moves `tid` to the set `ns` (its id and its links; adding the task when new) and
    /// takes its command name when known.
    /// `created` has the bits of the namespaces its cause created (see [`created_by`]);
    /// `ppid`, the parent of a task read from /proc (an event's task has it from its FORK).
    #[allow(clippy::too_many_arguments)]
    fn set_namespaces(
        &mut self,
        pid: u32,
        tid: u32,
        time: u64,
        born: u64,
        (set, ns): (SetId, &NsSet),
        comm: Option<&str>,
        mut created: u32,
        ppid: Option<u32>,
    ) -> GroupId {
        let (old, start, first_own, kernel) = match self.live.get_mut(&tid) {
            Some(t) => {
                if let Some(c) = comm {
                    t.set_comm(c);
                }
                let first_own = std::mem::take(&mut t.awaits_own_ns);
                if t.current.set == set {
                    return t.current.group;
                }
                (
                    Some((t.current.group, t.current.set)),
                    t.current.start_ns,
                    first_own,
                    is_kernel_thread(pid, ppid.unwrap_or(t.ppid)),
                )
            }
            None => (None, 0, false, is_kernel_thread(pid, ppid.unwrap_or(0))),
        };
        // The set it comes from, read only where needed: a thread of a setns storm moves
        // between known groups on every record.
        let from = |m: &Self| old.map(|(_, s)| *m.sets.get(s));
        if first_own && born != 0 {
            if let Some(from) = from(self).filter(|f| !unreadable(f)) {
                // A new task's own record, right after its FORK (which gave it its
                // parent's set): what differs from the parent's set is new, made by clone's
                // flags or by the parent's unshare(CLONE_NEWPID) before. (A pid namespace
                // joined through pid_for_children is a live container's, whose group is
                // live.)
                created |= differs_from_host(ns, &from);
            }
        }
        let (g, new) = self.group_for(set, time, tid, created);
        if new {
            self.note_pid_parent(g, from(self).as_ref());
        }
        if !kernel {
            self.group_mut(g).kernel_threads = false;
        }
        let old = old.map(|(g, _)| g);
        let created = new;
        let forget_before = self.now_ns.saturating_sub(self.grace_ns);
        match old {
            Some(old) => {
                let t = self.live.get_mut(&tid).expect("looked up above");
                if time > start {
                    t.origin = if created {
                        Origin::Created
                    } else {
                        Origin::Joined
                    };
                }
                t.change(time, set, g, forget_before);
                if old != g {
                    self.enter(g);
                    self.leave(old, time);
                }
            }
            None => {
                let mut t = Task::new(pid, tid, born, set, g);
                if let Some(c) = comm {
                    t.set_comm(c);
                }
                if born == 0 {
                    t.current.start_ns = 0;
                }
                self.live.insert(tid, t);
                self.enter(g);
            }
        }
        g
    }

    fn fork(&mut self, pid: u32, tid: u32, ppid: u32, ptid: u32, time: u64) -> GroupId {
        let mut t = match self.live.get(&ptid) {
            Some(p) => {
                let mut t = Task::new(pid, tid, time, p.current.set, p.current.group);
                t.copy_comm(p);
                t.awaits_own_ns = true;
                t
            }
            // Unknown parent: the child's own NAMESPACES record (same timestamp) says.
            None => Task::new(
                pid,
                tid,
                time,
                self.sets.intern(&NsSet::default()),
                GroupId::HOST,
            ),
        };
        let g = t.current.group;
        t.ppid = ppid;
        if !is_kernel_thread(pid, ppid) {
            self.group_mut(g).kernel_threads = false;
        }
        if let Some(old) = self.live.insert(tid, t) {
            // The EXIT of the tid's previous owner was lost: never merge the two tasks.
            self.retire(old, time);
        }
        self.enter(g);
        g
    }

    fn exit(&mut self, tid: u32, time: u64) -> Option<GroupId> {
        match self.live.remove(&tid) {
            Some(t) => Some(self.retire(t, time)),
            None => self.ended_unseen(tid),
        }
    }

    /// The group of `tid` that ended without its EXIT: a rescan of /proc after lost
    /// records ([`Attributor::end_missing`]) ends the tasks it finds gone, and the EXIT
    /// of one that exited just before the rescan may still be in a ring, read after. That
    /// EXIT still belongs to the task's group.
    fn ended_unseen(&self, tid: u32) -> Option<GroupId> {
        if self.ended_slots[ended_slot(tid)] == 0 {
            return None;
        }
        self.dead
            .iter()
            .rev()
            .find(|t| t.tid == tid && t.ended_unseen)
            .map(|t| t.current.group)
    }

    /// Ends a task taken out of the live table; it stays findable for the grace period.
    fn retire(&mut self, mut t: Task, time: u64) -> GroupId {
        t.ended_ns = time.max(t.current.start_ns);
        let (g, tid) = (t.current.group, t.tid);
        self.leave(g, time);
        // Ends come in time order but for a record later than the reorder window (or a
        // task born after its reused tid's lost EXIT): those few are put in their place.
        // One that ended before thousands of others (input whose times go back, such as a
        // capture repeated) is not kept: a place deep in the list costs a shift of what
        // follows, and a stream of them would cost quadratic time.
        match self.dead.back() {
            Some(last) if last.ended_ns > t.ended_ns => {
                let at = self.dead.partition_point(|d| d.ended_ns <= t.ended_ns);
                if self.dead.len() - at > LATE_END_PLACES {
                    return g;
                }
                self.dead.insert(at, t);
            }
            _ => self.dead.push_back(t),
        }
        self.ended_slots[ended_slot(tid)] += 1;
        g
    }

    fn prune(&mut self) {
        while self.dead_due(self.now_ns) {
            let Some(t) = self.dead.pop_front() else {
                break;
            };
            self.ended_slots[ended_slot(t.tid)] -= 1;
        }
    }

    #[inline]
    fn enter(&mut self, g: GroupId) {
        self.group_mut(g).live_tasks += 1;
    }

    #[inline]
    fn leave(&mut self, g: GroupId, time: u64) {
        let group = self.group_mut(g);
        group.live_tasks = group.live_tasks.saturating_sub(1);
        if group.live_tasks == 0 && g != GroupId::HOST {
            group.ended_ns = Some(time);
            self.exiting.push_back((g, time));
            self.note_live(g, false);
        }
    }

    /// Keeps [`Attributor::live_by_pid`] for a container that started or ended.
    fn note_live(&mut self, g: GroupId, live: bool) {
        let group = &self.groups[self.slot(g).expect("a group the model has")];
        let Some(pid) = group
            .key
            .get(NsKind::Pid)
            .filter(|_| group.kind == Kind::Container)
        else {
            return;
        };
        let list = self.live_by_pid.entry(pid).or_default();
        if live {
            list.push(g);
        } else {
            list.retain(|&x| x != g);
            if list.is_empty() {
                self.live_by_pid.remove(&pid);
            }
        }
    }

    /// The group of `set`, started now if there is none, or if the namespaces that make
    /// its key were just created (`created`, a link mask): a key's numbers seen again are
    /// the same namespaces unless a creation says they were reused. An ended group entered
    /// again starts again. Returns whether the group is new.
    fn group_for(&mut self, set: SetId, time: u64, tid: u32, created: u32) -> (GroupId, bool) {
        if let Some(&Some(g)) = self.set_group.get(set.0 as usize) {
            if self.group(g).ended_ns.is_none() {
                return (g, false);
            }
            if created & key_mask(&self.group(g).key) == 0 {
                self.restart(g, time);
                return (g, false);
            }
        }
        let s = *self.sets.get(set);
        if unreadable(&s) || !self.host_known {
            return (GroupId::HOST, false);
        }
        let (kind, key) = classify(&s, &self.host);
        let found = if kind == Kind::Host {
            Some(GroupId::HOST)
        } else {
            self.by_key.get(&key).copied()
        };
        if let Some(g) = found {
            let ended = self.group(g).ended_ns.is_some();
            if !ended || created & key_mask(&key) == 0 {
                if ended {
                    self.restart(g, time);
                }
                self.remember(set, g);
                return (g, false);
            }
            // Its namespaces are gone and new ones carry their numbers.
            self.supersede(g, time);
        }
        // The group whose label names a namespace just created with its number is dead
        // too: every kind of namespace takes its number from one allocator, so while one
        // lives no other has it (a dead mnt namespace's number may come back as a net
        // namespace's).
        let base = Group::label_for(kind, &key, 0);
        if let (Some(&h), Some((i, _))) = (self.labels.get(&base), Group::primary(kind, &key)) {
            if created & (1 << i) != 0 && self.group(h).ended_ns.is_some() {
                self.supersede(h, time);
            }
        }
        // Groups that share their first one's namespace at once are named after it.
        let mut label = base.clone();
        let mut n = 0;
        while self.labels.contains_key(&label) {
            n += 1;
            label = Group::label_for(kind, &key, n);
        }
        let gen = self.generations.entry(base).or_insert(0);
        let generation = *gen;
        *gen += 1;
        let id = GroupId(self.next_group);
        self.next_group += 1;
        if id.0 as usize != self.groups.len() {
            self.slots.insert(id, self.groups.len() as u32);
        }
        self.labels.insert(label.clone(), id);
        self.groups.push(Group {
            id,
            kind,
            key,
            generation,
            first_set: set,
            differs: differs_from_host(&s, &self.host),
            label,
            started_ns: time,
            ended_ns: None,
            live_tasks: 0,
            leader: tid,
            // The task itself when it unshared; its parent's name when it was just forked
            // (a child carries its parent's comm until it execs).
            creator: self.live.get(&tid).map(|t| t.comm().to_string()),
            naming: Naming::default(),
            // Until a task that is no kernel thread enters it.
            kernel_threads: true,
        });
        self.by_key.insert(key, id);
        self.note_live(id, true);
        self.remember(set, id);
        self.changes.push(Change {
            time_ns: time,
            kind: ChangeKind::Start,
            group: id,
        });
        (id, true)
    }

    /// Forgets ended group `g` as a place to go: its namespaces are gone (new ones carry
    /// their numbers), so its key, label and sets lead elsewhere from now on. An end not
    /// declared yet is declared now, before the start of the group that replaces it.
    fn supersede(&mut self, g: GroupId, time: u64) {
        let group = &self.groups[self.slot(g).expect("a group the model has")];
        if self.labels.get(&group.label) == Some(&g) {
            self.labels.remove(&group.label);
        }
        if self.by_key.get(&group.key) == Some(&g) {
            self.by_key.remove(&group.key);
        }
        for slot in self.set_group.iter_mut().filter(|s| **s == Some(g)) {
            *slot = None;
        }
        if let Some(i) = self.exiting.iter().position(|(x, _)| *x == g) {
            let (_, left) = self.exiting.remove(i).expect("found above");
            self.changes.push(Change {
                time_ns: time.saturating_sub(1).max(left),
                kind: ChangeKind::Exit,
                group: g,
            });
            self.declared(g, left);
        }
    }

    /// An ended group that a task entered again (its namespaces lived on, held by a file
    /// or a mount): the same group, live again. Within [`EXIT_LINGER_NS`] of its last
    /// task's leaving its end was never declared, and nothing is; after, it starts again.
    fn restart(&mut self, g: GroupId, time: u64) {
        self.group_mut(g).ended_ns = None;
        self.note_live(g, true);
        if let Some(i) = self.exiting.iter().rposition(|(x, _)| *x == g) {
            self.exiting.remove(i);
            return;
        }
        self.changes.push(Change {
            time_ns: time,
            kind: ChangeKind::Start,
            group: g,
        });
    }

    /// For a group just started with a pid namespace never seen before, the pid namespace
    /// it was created in: that of the task it came from (`from`, the parent's set for a
    /// new task). Unshare and setns of the pid namespace move only children, so a new pid
    /// link always comes with a new task. What NS_GET_PARENT said at start is kept.
    fn note_pid_parent(&mut self, g: GroupId, from: Option<&NsSet>) {
        let Some(parent) = from.and_then(|f| f.get(NsKind::Pid)).filter(|l| l.ino != 0) else {
            return;
        };
        let group = &self.groups[self.slot(g).expect("a group the model has")];
        if let Some(pid) = group.key.get(NsKind::Pid).filter(|l| l.ino != 0) {
            if pid != parent {
                self.pid_parents.entry(pid).or_insert(parent);
            }
        }
    }

    fn remember(&mut self, set: SetId, g: GroupId) {
        let i = set.0 as usize;
        if self.set_group.len() <= i {
            self.set_group.resize(i + 1, None);
        }
        self.set_group[i] = Some(g);
    }

    /// Ends, at `time_ns`, every live task for which `present` is false: after a /proc
    /// rescan (lost records), the tasks that exited unseen.
    pub fn end_missing(&mut self, time_ns: u64, present: impl Fn(u32) -> bool) {
        let gone: Vec<u32> = self.live.keys().copied().filter(|&t| !present(t)).collect();
        for tid in gone {
            if let Some(mut t) = self.live.remove(&tid) {
                t.ended_unseen = true;
                self.retire(t, time_ns);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::group::bit;
    use std::borrow::Cow;

    fn link(ino: u64) -> NsLink {
        NsLink { dev: 4, ino }
    }
    fn set(inos: [u64; 7]) -> NsSet {
        NsSet::from_links(inos.map(link))
    }
    const HOST: [u64; 7] = [1, 2, 3, 4, 5, 6, 7];
    const CT: [u64; 7] = [10, 11, 12, 14, 5, 16, 7];
    const CT2: [u64; 7] = [10, 21, 22, 24, 5, 26, 7];
    const NETNS: [u64; 7] = [30, 2, 3, 4, 5, 6, 7];

    fn ev(time: u64, pid: u32, tid: u32, body: Body<'_>) -> Event<'_> {
        Event {
            time_ns: Some(time),
            cpu: Some(0),
            pid: Some(pid),
            tid: Some(tid),
            synthesized: false,
            body,
        }
    }
    fn ns(model: &mut Attributor, time: u64, pid: u32, tid: u32, s: &NsSet) -> GroupId {
        model
            .observe(&ev(
                time,
                pid,
                tid,
                Body::Namespaces {
                    ns: s,
                    comm: None,
                    cause: None,
                },
            ))
            .unwrap()
    }
    fn cause(syscall: Syscall, flags: u64) -> Cause {
        Cause {
            syscall,
            flags,
            target: None,
            ret: 0,
            enter_ns: 0,
            exit_ns: 0,
            pid: 1,
            tid: 1,
            cpu: 0,
            comm: String::new(),
            before: [0; 10],
            after: [0; 10],
            child_tid: None,
            dev: 4,
            flags_unread: false,
            cgroup: 0,
        }
    }
    fn fork(model: &mut Attributor, time: u64, pid: u32, tid: u32, ppid: u32) -> GroupId {
        let body = Body::Fork { ppid, ptid: ppid };
        model.observe(&ev(time, pid, tid, body)).unwrap()
    }
    fn exit(model: &mut Attributor, time: u64, tid: u32) -> Option<GroupId> {
        let body = Body::Exit { ppid: 1, ptid: 1 };
        model.observe(&ev(time, tid, tid, body))
    }
    fn changes(model: &mut Attributor) -> Vec<(ChangeKind, GroupId)> {
        model.take_changes().map(|c| (c.kind, c.group)).collect()
    }

    #[test]
    fn sets_observed_by_a_streams_index_make_the_same_groups_across_compactions() {
        // Containers that come and go (each its own set, index i for set i), a task in each
        // flipping back to the host's set and in again; with a history window, ended
        // groups are given back and their sets' ids reused.
        let (mut a, mut b) = (Attributor::new(set(HOST)), Attributor::new(set(HOST)));
        for m in [&mut a, &mut b] {
            m.set_history_ns(Some(MIN_HISTORY_NS));
        }
        let sets: Vec<NsSet> = (0..400u64)
            .map(|i| set([100 + i, 11, 12, 14, 5, 1000 + i, 7]))
            .collect();
        let host = set(HOST);
        let mut time = 1;
        let mut freed = false;
        for (i, s) in sets.iter().enumerate() {
            let tid = 1000 + i as u32;
            for m in [&mut a, &mut b] {
                fork(m, time, tid, tid, 1);
            }
            for (k, (s, index)) in [(s, i as u32 + 1), (&host, 0), (s, i as u32 + 1)]
                .into_iter()
                .enumerate()
            {
                let t = time + k as u64;
                let body = || Body::Namespaces {
                    ns: s,
                    comm: Some(Cow::Borrowed("c")),
                    cause: None,
                };
                let ga = a.observe(&ev(t, tid, tid, body()));
                let gb = b.observe_at(&ev(t, tid, tid, body()), Some(index));
                assert_eq!(ga, gb, "set {i}, step {k}");
                let g = ga.unwrap();
                assert_eq!(a.group(g).label, b.group(g).label);
                assert_eq!(a.attribute(tid, tid, t), b.attribute(tid, tid, t));
            }
            for m in [&mut a, &mut b] {
                exit(m, time + 5, tid);
            }
            // Groups with changes not taken yet are not given back.
            assert_eq!(changes(&mut a), changes(&mut b));
            time += 50_000_000;
            freed |= b.sets().id_bound() < i + 2;
        }
        assert!(freed, "no set was given back: the test misses the retain");
        // The first containers' sets again, by their indexes, whose ids went to others.
        for (i, s) in sets.iter().enumerate().take(20) {
            let tid = 5000 + i as u32;
            let body = || Body::Namespaces {
                ns: s,
                comm: None,
                cause: None,
            };
            let ga = a.observe(&ev(time, tid, tid, body()));
            let gb = b.observe_at(&ev(time, tid, tid, body()), Some(i as u32 + 1));
            assert_eq!(ga, gb, "set {i} again");
            assert_eq!(a.attribute(tid, tid, time), b.attribute(tid, tid, time));
            let set = b.attribute(tid, tid, time).unwrap().set;
            assert_eq!(b.sets().get(set), s);
        }
    }

    #[test]
    fn a_group_of_kernel_threads_alone_is_marked_until_a_user_task_enters() {
        let mut m = Attributor::new(set(HOST));
        let own_mnt = set([1, 2, 3, 4, 5, 60, 7]);
        // kdevtmpfs: forked by kthreadd, its own mount namespace.
        fork(&mut m, 0, 27, 27, 2);
        let g = ns(&mut m, 0, 27, 27, &own_mnt);
        assert_ne!(g, GroupId::HOST);
        assert!(m.group(g).kernel_threads);
        // A user task's sandbox is not.
        fork(&mut m, 5, 300, 300, 1);
        let sb = ns(&mut m, 6, 300, 300, &set([10, 2, 3, 4, 5, 6, 7]));
        assert!(!m.group(sb).kernel_threads);
        assert!(!m.group(GroupId::HOST).kernel_threads);
        // A user task that joins the kernel thread's namespace makes it an ordinary group.
        ns(&mut m, 10, 300, 300, &own_mnt);
        assert!(!m.group(g).kernel_threads);
        // From /proc: the parent comes with the snapshot.
        let mut m = Attributor::new(set(HOST));
        let snap = TaskSnapshot {
            pid: 27,
            tid: 27,
            ppid: 2,
            nspid: 27,
            start_time: 1,
            comm: "kdevtmpfs",
            ns: own_mnt,
        };
        let g = m.add_snapshot(0, &snap);
        assert!(m.group(g).kernel_threads);
    }

    #[test]
    fn an_exit_read_after_a_rescan_ended_its_task_keeps_its_group() {
        let mut m = Attributor::new(set(HOST));
        ns(&mut m, 1, 500, 500, &set(CT));
        let ct = fork(&mut m, 2, 501, 501, 500);
        assert_ne!(ct, GroupId::HOST);
        // Records were lost; /proc no longer has 501, whose EXIT is still in a ring.
        m.end_missing(3, |tid| tid == 500);
        assert!(m.task(501).is_none());
        assert_eq!(exit(&mut m, 4, 501), Some(ct));
        // An EXIT of a tid the model never had is still no one's.
        assert_eq!(exit(&mut m, 5, 777), None);
    }

    #[test]
    fn an_end_far_behind_the_others_is_not_kept() {
        let mut m = Attributor::new(set(HOST));
        m.set_grace_ns(u64::MAX / 4);
        // Two tasks born early whose ends come late, past thousands of others' ends.
        fork(&mut m, 5, 90_001, 90_001, 1);
        fork(&mut m, 5, 90_002, 90_002, 1);
        let n = LATE_END_PLACES as u64 + 10;
        for i in 0..n {
            let tid = 1000 + i as u32;
            fork(&mut m, 100 + 2 * i, tid, tid, 1);
            exit(&mut m, 101 + 2 * i, tid);
        }
        // Just before the last few ends: put in its place, and found.
        exit(&mut m, 101 + 2 * (n - 5), 90_001);
        assert!(m.attribute(90_001, 90_001, 50).is_some());
        // Before all of them: not kept (a shift of thousands per such end otherwise).
        exit(&mut m, 50, 90_002);
        assert!(m.attribute(90_002, 90_002, 20).is_none());
        assert!(m.attribute(1000, 1000, 100).is_some(), "the others stay");
    }

    #[test]
    fn a_group_entered_again_is_the_same_group_started_again() {
        let mut m = Attributor::new(set(HOST));
        let (h, ct) = (set(HOST), set(CT));
        // One thread bouncing host -> container -> host -> container (setns back and forth):
        // the container's namespaces live on (a file holds them), so it is one group.
        let a = ns(&mut m, 10, 100, 100, &ct);
        assert_eq!(ns(&mut m, 20, 100, 100, &h), GroupId::HOST);
        assert_eq!(m.group(a).ended_ns, Some(20));
        let b = ns(&mut m, 30, 100, 100, &ct);
        assert_eq!(a, b, "the ended group is entered again");
        assert!(m.group(a).is_live());
        assert_eq!(m.group(a).label, "ct-14");
        // Back within the linger: its end was never declared.
        assert_eq!(changes(&mut m), vec![(ChangeKind::Start, a)]);
        // Left for longer: its end is declared when the clock passes the linger, stamped
        // then; entered again after that, it starts again.
        ns(&mut m, 40, 100, 100, &h);
        ns(&mut m, 40 + EXIT_LINGER_NS - 1, 1, 1, &h);
        assert_eq!(changes(&mut m), vec![]);
        ns(&mut m, 50 + EXIT_LINGER_NS, 1, 1, &h);
        let ended: Vec<Change> = m.take_changes().collect();
        assert_eq!(
            ended,
            vec![Change {
                time_ns: 40 + EXIT_LINGER_NS,
                kind: ChangeKind::Exit,
                group: a
            }]
        );
        assert_eq!(ns(&mut m, 60 + EXIT_LINGER_NS, 100, 100, &ct), a);
        assert_eq!(changes(&mut m), vec![(ChangeKind::Start, a)]);
        // While it lives, another task in the same set joins it.
        assert_eq!(ns(&mut m, 40, 200, 200, &ct), a);
        assert_eq!(m.attribute(100, 100, 15).unwrap().group, a);
        assert_eq!(m.attribute(100, 100, 25).unwrap().group, GroupId::HOST);
        // A thousand more round trips make no new group.
        for i in 0..1000 {
            ns(&mut m, 100 + 2 * i, 300, 300, &h);
            ns(&mut m, 101 + 2 * i, 300, 300, &ct);
        }
        assert_eq!(m.groups().len(), 2);
    }

    #[test]
    fn setns_names_no_creation_but_unshare_and_clone_do() {
        let mut c = cause(Syscall::Setns, libc::CLONE_NEWNET as u64);
        assert_eq!(created_by(&c), 0);
        c = cause(
            Syscall::Unshare,
            (libc::CLONE_NEWNS | libc::CLONE_NEWUTS) as u64,
        );
        assert_eq!(created_by(&c), bit(NsKind::Mnt) | bit(NsKind::Uts));
        c = cause(
            Syscall::Clone,
            (libc::CLONE_NEWPID | libc::CLONE_NEWNET) as u64,
        );
        assert_eq!(created_by(&c), bit(NsKind::Pid) | bit(NsKind::Net));
        c.ret = -1;
        assert_eq!(created_by(&c), 0, "a failed call creates nothing");
    }

    #[test]
    fn fork_inherits_and_the_childs_record_at_the_same_time_wins() {
        let mut m = Attributor::new(set(HOST));
        let h = set(HOST);
        assert_eq!(ns(&mut m, 0, 100, 100, &h), GroupId::HOST);
        // runc's child: FORK (inherits host) then NAMESPACES with new pid+mnt, one timestamp.
        assert_eq!(fork(&mut m, 50, 101, 101, 100), GroupId::HOST);
        let ct = ns(&mut m, 50, 101, 101, &set(CT));
        assert_ne!(ct, GroupId::HOST);
        assert_eq!(changes(&mut m), vec![(ChangeKind::Start, ct)]);
        let t = m.task(101).unwrap();
        assert_eq!(t.origin, Origin::Born);
        assert_eq!(
            t.intervals().count(),
            1,
            "the provisional host interval was replaced"
        );
        assert_eq!(m.group(ct).kind, Kind::Container);
        assert_eq!(m.group(ct).live_tasks, 1);
        assert_eq!(m.group(GroupId::HOST).live_tasks, 1);
        // Its children and threads are in it without records of their own changing it.
        assert_eq!(fork(&mut m, 60, 102, 102, 101), ct);
        assert_eq!(m.attribute(102, 102, 61).unwrap().group, ct);
    }

    #[test]
    fn setns_into_a_live_group_joins_and_unshare_creates() {
        let mut m = Attributor::new(set(HOST));
        ns(&mut m, 10, 200, 200, &set(CT));
        ns(&mut m, 0, 300, 300, &set(HOST));
        let ct = m.attribute(200, 200, 10).unwrap().group;
        // nsenter -t 200 -a: the host task moves in.
        assert_eq!(ns(&mut m, 100, 300, 300, &set(CT)), ct);
        assert_eq!(m.task(300).unwrap().origin, Origin::Joined);
        assert_eq!(m.group(ct).live_tasks, 2);
        // Before the move it was on the host: history answers for the past.
        assert_eq!(m.attribute(300, 300, 99).unwrap().group, GroupId::HOST);
        assert_eq!(m.attribute(300, 300, 100).unwrap().group, ct);
        // unshare -n from the host: a new sandbox it created.
        ns(&mut m, 0, 400, 400, &set(HOST));
        let sb = ns(&mut m, 150, 400, 400, &set(NETNS));
        assert_eq!(m.group(sb).kind, Kind::Sandbox);
        assert_eq!(m.task(400).unwrap().origin, Origin::Created);
    }

    #[test]
    fn exit_ends_the_group_and_late_samples_still_find_it() {
        let mut m = Attributor::new(set(HOST));
        let ct = ns(&mut m, 10, 200, 200, &set(CT));
        changes(&mut m);
        assert_eq!(exit(&mut m, 1_000, 200), Some(ct));
        assert_eq!(changes(&mut m), vec![], "declared after the linger");
        m.finish();
        assert_eq!(changes(&mut m), vec![(ChangeKind::Exit, ct)]);
        assert!(!m.group(ct).is_live());
        assert_eq!(m.group(ct).ended_ns, Some(1_000));
        // A sample taken before the exit, delivered after it.
        let sample = Body::Sample {
            ip: Some(1),
            period: None,
            callchain: None,
        };
        assert_eq!(m.observe(&ev(900, 200, 200, sample.clone())), Some(ct));
        // One taken in its exit tail, after its EXIT record.
        assert_eq!(m.observe(&ev(1_001, 200, 200, sample.clone())), Some(ct));
        assert_eq!(m.attribute(201, 200, 1_001), None, "another process");
        assert_eq!(m.attribute(200, 200, 1_000 + EXIT_TAIL_NS + 1), None);
        // After the grace period it is forgotten.
        m.set_grace_ns(100);
        ns(&mut m, 5_000, 1, 1, &set(HOST));
        assert_eq!(m.attribute(200, 200, 900), None);
        assert_eq!(m.ended_tasks(), 0);
    }

    #[test]
    fn ended_tasks_stay_bounded_after_a_burst() {
        // A burst of 50,000 short tasks, then a trickle: the burst is pruned and the
        // trickle needs no more room than the burst had.
        let mut m = Attributor::new(set(HOST));
        m.set_grace_ns(100);
        ns(&mut m, 1, 1, 1, &set(HOST));
        let mut t = 10;
        for i in 0..50_000u32 {
            let tid = 1_000 + i;
            fork(&mut m, t, tid, tid, 1);
            exit(&mut m, t + 1, tid);
            t += 2;
        }
        let after_burst = m.task_bytes();
        for i in 0..50_000u32 {
            let tid = 100_000 + i % 7;
            fork(&mut m, t, tid, tid, 1);
            exit(&mut m, t + 1, tid);
            t += 1_000;
        }
        assert!(m.ended_tasks() <= 1, "{}", m.ended_tasks());
        assert!(
            m.task_bytes() <= after_burst,
            "{} > {after_burst}",
            m.task_bytes()
        );
    }

    #[test]
    fn without_grace_ended_tasks_answer_until_time_moves_on() {
        // As `report` reads a file: in time order, a record of an ended task can only
        // share its EXIT's timestamp.
        let mut m = Attributor::new(set(HOST));
        m.set_grace_ns(0);
        let ct = ns(&mut m, 10, 200, 200, &set(CT));
        ns(&mut m, 10, 201, 201, &set(HOST));
        assert_eq!(exit(&mut m, 1_000, 200), Some(ct));
        // Its tid reused at the same instant, by a host task.
        ns(&mut m, 1_000, 200, 200, &set(HOST));
        assert_eq!(exit(&mut m, 1_000, 201), Some(GroupId::HOST));
        assert_eq!(m.attribute(200, 200, 1_000).unwrap().group, GroupId::HOST);
        assert_eq!(m.attribute(200, 200, 999).unwrap().group, ct);
        assert_eq!(m.attribute(201, 201, 1_000).unwrap().group, GroupId::HOST);
        assert_eq!(m.ended_tasks(), 2);
        ns(&mut m, 1_001, 1, 1, &set(HOST));
        assert_eq!(m.ended_tasks(), 0);
        assert_eq!(m.attribute(201, 201, 1_000), None);
        // A grace period again: ended tasks are kept for it.
        m.set_grace_ns(100);
        assert_eq!(exit(&mut m, 1_002, 200), Some(GroupId::HOST));
        ns(&mut m, 1_050, 1, 1, &set(HOST));
        assert_eq!(m.attribute(200, 200, 1_002).unwrap().group, GroupId::HOST);
    }

    #[test]
    fn a_key_created_again_after_its_group_ended_is_a_new_group_under_the_same_label() {
        let mut m = Attributor::new(set(HOST));
        ns(&mut m, 0, 1, 1, &set(HOST));
        let a = ns(&mut m, 10, 200, 200, &set(CT));
        exit(&mut m, 20, 200);
        // The kernel reused the inode numbers for a new container: a child born in
        // namespaces its parent is not in (clone's flags made them). Its own record comes
        // µs after its FORK.
        fork(&mut m, 30, 201, 201, 1);
        let b = ns(&mut m, 31, 201, 201, &set(CT));
        assert_ne!(a, b);
        // The label names the namespace, as lsns does: `ps` now says ct-14 too.
        assert_eq!(m.group(a).label, "ct-14");
        assert_eq!(m.group(b).label, "ct-14");
        assert_eq!((m.group(a).generation, m.group(b).generation), (0, 1));
        // The dead one's end comes before the new one's start.
        let seen: Vec<Change> = m.take_changes().collect();
        let kinds: Vec<(ChangeKind, GroupId)> = seen.iter().map(|c| (c.kind, c.group)).collect();
        assert_eq!(
            kinds,
            vec![
                (ChangeKind::Start, a),
                (ChangeKind::Exit, a),
                (ChangeKind::Start, b)
            ]
        );
        assert!(seen[1].time_ns < seen[2].time_ns);
        assert_eq!(m.attribute(200, 200, 15).unwrap().group, a);
        assert_eq!(m.attribute(201, 201, 35).unwrap().group, b);
        // The sets that led to the old group lead to the new one.
        assert_eq!(ns(&mut m, 40, 300, 300, &set(CT)), b);

        // A host task's unshare(CLONE_NEWNET), seen by the probe, twice, the second net
        // namespace with the first one's number: two groups. Without the probe (a perf.data
        // file) the second is taken for a return into the first.
        let net = set(NETNS);
        let unshare = cause(Syscall::Unshare, libc::CLONE_NEWNET as u64);
        let made = |m: &mut Attributor, t: u64| {
            let body = Body::Namespaces {
                ns: &net,
                comm: None,
                cause: Some(&unshare),
            };
            m.observe(&ev(t, 2, 2, body)).unwrap()
        };
        ns(&mut m, 50, 2, 2, &set(HOST));
        let first = made(&mut m, 60);
        ns(&mut m, 70, 2, 2, &set(HOST));
        let second = made(&mut m, 80);
        assert_ne!(first, second);
        assert_eq!(m.group(second).label, "sb-30");
        ns(&mut m, 90, 2, 2, &set(HOST));
        assert_eq!(ns(&mut m, 100, 2, 2, &net), second, "setns back: the same");
    }

    #[test]
    fn a_container_sharing_anothers_pid_namespace_is_named_by_both() {
        let mut m = Attributor::new(set(HOST));
        // Two containers in one pid namespace with their own mount namespaces (a process
        // that unshared its mount namespace inside a container).
        let a = ns(&mut m, 10, 200, 200, &set(CT));
        let b = ns(&mut m, 20, 201, 201, &set([10, 11, 12, 14, 5, 40, 7]));
        assert_eq!(m.group(a).label, "ct-14");
        assert_eq!(m.group(b).label, "ct-14-40");
    }

    #[test]
    fn a_process_that_unshares_inside_a_container_is_nested_in_it_not_a_pod() {
        let mut m = Attributor::new(set(HOST));
        ns(&mut m, 0, 1, 1, &set(HOST));
        // A container (its init 100), then `unshare -m -p -f` inside it: the unshare
        // process (101) gets a new mount namespace in the container's pid namespace, its
        // child (102) a new pid namespace too. Both share the container's network.
        fork(&mut m, 5, 100, 100, 1);
        let ct = ns(&mut m, 5, 100, 100, &set(CT));
        m.set_nspid(100, 1);
        fork(&mut m, 10, 101, 101, 100);
        let inner_mnt = [10, 11, 12, 14, 5, 40, 7];
        let u = ns(&mut m, 11, 101, 101, &set(inner_mnt));
        fork(&mut m, 12, 102, 102, 101);
        let inner = ns(&mut m, 12, 102, 102, &set([10, 11, 12, 41, 5, 40, 7]));
        assert!(ct != u && u != inner && ct != inner);
        assert_eq!(m.group(u).kind, Kind::Container);
        // Not a later generation of ct: the pid namespace lives on in ct.
        assert_eq!(m.group(ct).label, "ct-14");
        assert_eq!(m.group(u).label, "ct-14-40");
        assert_eq!(m.group(inner).label, "ct-41");
        assert_eq!(
            m.parent_of(u),
            Some(ct),
            "same pid namespace: in the container"
        );
        assert_eq!(
            m.parent_of(inner),
            Some(ct),
            "its pid namespace was made in ct's"
        );
        assert_eq!(m.parent_of(ct), None);
        assert_eq!(m.pods(), vec![], "nested containers make no pod");
        // A second container that joins ct's network is a pod with it.
        fork(&mut m, 20, 200, 200, 1);
        let side = ns(&mut m, 20, 200, 200, &set([10, 21, 22, 24, 5, 26, 7]));
        assert_eq!(m.parent_of(side), None);
        assert_eq!(
            m.pods(),
            vec![Pod {
                net: link(10),
                containers: vec![ct, side]
            }]
        );
    }

    #[test]
    fn ended_tasks_are_found_by_time_whatever_order_they_ended_in() {
        let mut m = Attributor::new(set(HOST));
        m.set_grace_ns(1_000_000);
        ns(&mut m, 1, 1, 1, &set(HOST));
        let ct = ns(&mut m, 10, 300, 300, &set(CT));
        for tid in 400..500 {
            fork(&mut m, 20, tid, tid, 1);
        }
        for tid in 400..450 {
            exit(&mut m, 100 + u64::from(tid), tid);
        }
        // An EXIT later than the reorder window: older than the ends before it.
        exit(&mut m, 200, 300);
        for tid in 450..500 {
            exit(&mut m, 100 + u64::from(tid), tid);
        }
        assert_eq!(m.attribute(300, 300, 150).unwrap().group, ct);
        assert_eq!(m.attribute(300, 300, 200).unwrap().group, ct);
        assert_eq!(m.attribute(300, 300, 201).unwrap().group, ct, "exit tail");
        assert_eq!(m.attribute(420, 420, 520).unwrap().group, GroupId::HOST);
        assert_eq!(m.attribute(420, 420, 521).unwrap().group, GroupId::HOST);
        assert_eq!(m.attribute(499, 499, 30).unwrap().group, GroupId::HOST);
        assert_eq!(m.attribute(77, 77, 30), None, "never seen");
        // Kept in order of their ends, so pruning drops exactly the expired ones.
        m.set_grace_ns(100);
        ns(&mut m, 640, 1, 1, &set(HOST));
        assert_eq!(m.ended_tasks(), 60, "ends from 540 on");
        assert_eq!(m.attribute(300, 300, 150), None, "pruned");
        assert_eq!(m.attribute(440, 440, 540).unwrap().group, GroupId::HOST);
    }

    #[test]
    fn an_ended_tid_answers_in_its_exit_tail_until_it_is_reused() {
        let mut m = Attributor::new(set(HOST));
        ns(&mut m, 1, 1, 1, &set(HOST));
        let ct = ns(&mut m, 10, 300, 300, &set(CT));
        fork(&mut m, 20, 420, 420, 300);
        assert_eq!(exit(&mut m, 100, 420), Some(ct));
        // Many tasks end after it, as in a fork storm: the tail is still found.
        for tid in 1_000..1_200 {
            fork(&mut m, 200, tid, tid, 1);
            exit(&mut m, 300, tid);
        }
        assert_eq!(m.attribute(420, 420, 400).unwrap().group, ct);
        assert_eq!(
            m.attribute(420, 420, 100 + EXIT_TAIL_NS + 1),
            None,
            "past its tail"
        );
        let (t, _) = m.task_at(0, 420, 400).unwrap();
        assert_eq!((t.pid, t.ended_ns), (420, 100), "the ended life itself");
        // Its tid reused by a host task: the new life answers from its birth.
        fork(&mut m, 500, 420, 420, 1);
        assert_eq!(m.attribute(420, 420, 450).unwrap().group, ct);
        assert_eq!(m.attribute(420, 420, 500).unwrap().group, GroupId::HOST);
        assert_eq!(
            m.attribute(0, 0, 500),
            None,
            "the idle task is no ended task"
        );
    }

    #[test]
    fn a_setns_storm_keeps_only_the_grace_periods_history() {
        let mut m = Attributor::new(set(HOST));
        m.set_grace_ns(1_000);
        let sets = [set(HOST), set(NETNS)];
        for i in 0..100_000u64 {
            ns(&mut m, 10 + i * 10, 300, 300, &sets[(i % 2) as usize]);
        }
        let now = 10 + 99_999 * 10;
        let t = m.task(300).unwrap();
        assert!(t.intervals().count() <= 102, "{}", t.intervals().count());
        assert!(t.heap_bytes() < 16 << 10, "{} bytes", t.heap_bytes());
        // Within the grace period the history answers; before it, it is forgotten.
        assert_eq!(m.attribute(300, 300, now - 5).unwrap().group, GroupId::HOST);
        assert_ne!(
            m.attribute(300, 300, now - 15).unwrap().group,
            GroupId::HOST
        );
        assert_eq!(
            m.attribute(300, 300, now - 985).unwrap().group,
            GroupId::HOST
        );
        assert_eq!(m.attribute(300, 300, now - 5_000), None);
    }

    #[test]
    fn pid_reuse_never_merges_two_tasks() {
        let mut m = Attributor::new(set(HOST));
        let a = ns(&mut m, 10, 200, 200, &set(CT));
        exit(&mut m, 20, 200);
        let b = ns(&mut m, 30, 200, 200, &set(CT2));
        assert_ne!(a, b);
        assert_eq!(m.attribute(200, 200, 15).unwrap().group, a);
        // Between the two lives: the first one's exit tail.
        assert_eq!(m.attribute(200, 200, 25).unwrap().group, a);
        assert_eq!(m.attribute(200, 200, 30).unwrap().group, b);
        // A FORK reusing a tid whose EXIT was lost ends the old task first.
        ns(&mut m, 0, 1, 1, &set(HOST));
        fork(&mut m, 40, 200, 200, 1);
        assert_eq!(m.attribute(200, 200, 35).unwrap().group, b);
        assert_eq!(m.attribute(200, 200, 41).unwrap().group, GroupId::HOST);
        assert!(!m.group(b).is_live());
    }

    #[test]
    fn containers_sharing_a_net_namespace_are_a_pod() {
        let mut m = Attributor::new(set(HOST));
        let a = ns(&mut m, 10, 200, 200, &set(CT));
        let b = ns(&mut m, 20, 300, 300, &set(CT2));
        let c = ns(&mut m, 30, 400, 400, &set([40, 41, 42, 44, 5, 46, 7]));
        assert_eq!(
            m.pods(),
            vec![Pod {
                net: link(10),
                containers: vec![a, b]
            }]
        );
        assert!(m.pods().iter().all(|p| !p.containers.contains(&c)));
    }

    #[test]
    fn nested_containers_know_their_parent() {
        let mut m = Attributor::new(set(HOST));
        let outer = ns(&mut m, 10, 200, 200, &set(CT));
        let inner = ns(&mut m, 20, 300, 300, &set([10, 11, 12, 54, 5, 56, 7]));
        m.set_pid_ns_parent(link(54), link(14));
        m.set_pid_ns_parent(link(14), link(4));
        assert_eq!(m.parent_of(inner), Some(outer));
        assert_eq!(m.parent_of(outer), None);
    }

    #[test]
    fn snapshots_tell_born_from_joined() {
        let mut m = Attributor::new(set(HOST));
        let snap = |pid, ppid, start_time, comm, s: [u64; 7]| TaskSnapshot {
            pid,
            tid: pid,
            ppid,
            nspid: 0,
            start_time,
            comm,
            ns: set(s),
        };
        m.add_snapshot(0, &snap(1, 0, 1, "init", HOST));
        m.add_snapshot(0, &snap(50, 1, 5, "runc", HOST));
        let ct = m.add_snapshot(0, &snap(60, 50, 10, "sleep", CT));
        m.add_snapshot(0, &snap(61, 60, 11, "sh", CT));
        m.add_snapshot(0, &snap(70, 1, 20, "sh", CT)); // runc exec
        m.add_snapshot(0, &snap(71, 70, 21, "top", CT));
        m.settle_origins();
        let origin = |tid| m.task(tid).unwrap().origin;
        assert_eq!(origin(60), Origin::Born);
        assert_eq!(origin(61), Origin::Born);
        assert_eq!(origin(70), Origin::Joined);
        assert_eq!(origin(71), Origin::Joined);
        assert_eq!(m.group(ct).creator.as_deref(), Some("runc"));
        assert_eq!(m.group(ct).leader, 60);
        assert_eq!(m.task(61).unwrap().comm(), "sh");
    }

    #[test]
    fn renames_are_changes_and_first_names_are_not() {
        let mut m = Attributor::new(set(HOST));
        let ct = ns(&mut m, 10, 200, 200, &set(CT));
        changes(&mut m);
        let named = |n: &str| Naming {
            name: Some(n.to_string()),
            ..Naming::default()
        };
        m.set_naming(ct, named("a"));
        assert_eq!(changes(&mut m), vec![]);
        m.set_naming(ct, named("a"));
        m.set_naming(ct, named("b"));
        assert_eq!(changes(&mut m), vec![(ChangeKind::Rename, ct)]);
        assert_eq!(m.group(ct).name(), "b");
        // A group named first from its cgroup alone, whose runtime's name comes later.
        let sb = ns(&mut m, 20, 300, 300, &set(NETNS));
        changes(&mut m);
        let path = Naming {
            cgroup: Some("/".to_string()),
            ..Naming::default()
        };
        m.set_naming(sb, path.clone());
        assert_eq!(changes(&mut m), vec![]);
        m.set_naming(
            sb,
            Naming {
                runtime: Some("ip-netns".to_string()),
                name: Some("blue".to_string()),
                ..path
            },
        );
        assert_eq!(changes(&mut m), vec![(ChangeKind::Rename, sb)]);
    }

    #[test]
    fn comm_and_unknown_parents() {
        let mut m = Attributor::new(set(HOST));
        // FORK of a child whose parent we never saw: its own record places it.
        fork(&mut m, 10, 500, 500, 499);
        let ct = ns(&mut m, 10, 500, 500, &set(CT));
        let body = Body::Comm {
            comm: Cow::Borrowed("nginx"),
            exec: true,
        };
        assert_eq!(m.observe(&ev(11, 500, 500, body)), Some(ct));
        assert_eq!(m.task(500).unwrap().comm(), "nginx");
        assert_eq!(m.group(GroupId::HOST).live_tasks, 0);
    }

    #[test]
    fn a_learning_model_takes_the_host_from_pid_1_or_2() {
        let mut m = Attributor::learning();
        // PID 1 unreadable (perf writes zeros), a container task, then kthreadd.
        ns(&mut m, 0, 1, 1, &set([0; 7]));
        ns(&mut m, 0, 60, 60, &set(CT));
        assert_eq!(
            m.attribute(60, 60, 0).unwrap().group,
            GroupId::HOST,
            "not known yet"
        );
        ns(&mut m, 0, 2, 2, &set(HOST));
        assert!(m.host_known());
        let g = m.attribute(60, 60, 0).unwrap().group;
        assert_eq!(m.group(g).kind, Kind::Container);
        assert_eq!(m.group(GroupId::HOST).live_tasks, 2);
        assert_eq!(changes(&mut m), vec![(ChangeKind::Start, g)]);
    }

    #[test]
    fn a_learning_model_without_pid_1_or_2_guesses_the_common_set() {
        let mut m = Attributor::learning();
        ns(&mut m, 0, 60, 60, &set(CT));
        for tid in 100..100 + HOST_GUESS_AFTER {
            ns(&mut m, 0, tid, tid, &set(HOST));
        }
        assert!(m.host_known());
        assert_eq!(m.host(), &set(HOST));
        let g = m.attribute(60, 60, 0).unwrap().group;
        assert_eq!(m.group(g).kind, Kind::Container);
    }

    #[test]
    fn per_task_memory_is_small() {
        let mut m = Attributor::new(set(HOST));
        for tid in 1..=10_000 {
            ns(&mut m, tid as u64, tid, tid, &set(CT));
        }
        let per_task = m.task_bytes() / m.live_tasks();
        assert!(per_task < 200, "{per_task} bytes per task");
    }

    const SEC: u64 = 1_000_000_000;

    /// `n` short-lived sandboxes, one a millisecond of event time from `t0`, driven as a
    /// live session drives the model: a child of task 1 forks, gets its own network and
    /// uts namespaces (numbers never seen before), forks a child of its own, both exit;
    /// the changes are taken after each. Returns the time after the last.
    fn churn(m: &mut Attributor, t0: u64, first: u64, n: u64) -> u64 {
        let mut t = t0;
        for i in first..first + n {
            let (child, grandchild) = (10_000 + (i % 30_000) as u32, 50_000 + (i % 30_000) as u32);
            let sb = set([1_000_000 + i, 2_000_000 + i, 3, 4, 5, 6, 7]);
            fork(m, t, child, child, 1);
            ns(m, t, child, child, &sb);
            fork(m, t + 10, grandchild, grandchild, child);
            ns(m, t + 10, grandchild, grandchild, &sb);
            exit(m, t + 20, grandchild);
            exit(m, t + 30, child);
            m.take_changes().for_each(drop);
            t += 1_000_000;
        }
        t
    }

    #[test]
    fn groups_that_ended_before_the_history_window_give_their_memory_back() {
        const N: u64 = 20_000;
        let run = |history: Option<u64>| {
            let mut m = Attributor::new(set(HOST));
            m.set_history_ns(history);
            ns(&mut m, 0, 1, 1, &set(HOST));
            let t = churn(&mut m, SEC, 0, N / 2);
            let mid = (m.heap_bytes(), m.groups().len(), m.sets().len());
            let t = churn(&mut m, t, N / 2, N / 2);
            m.advance(t);
            (m, mid)
        };
        // Everything kept (a file's report): a group's worth of memory per group.
        let (all, (all_mid, ..)) = run(None);
        assert_eq!(all.groups().len() as u64, N + 1);
        assert!(
            all.heap_bytes() > all_mid * 3 / 2,
            "{} then {}",
            all_mid,
            all.heap_bytes()
        );
        // A 1 s window, 1,000 groups' churn: the model stays the size of a window (and the
        // slack of groups waiting to be given back together).
        let (m, (mid, mid_groups, mid_sets)) = run(Some(SEC));
        let bound = 1 + 1_100 + COMPACT_MIN.max(1_200 / COMPACT_EVERY) + 1;
        for (what, n) in [
            ("groups at half", mid_groups),
            ("groups", m.groups().len()),
            ("sets at half", mid_sets),
            ("sets", m.sets().len()),
        ] {
            assert!(n <= bound, "{what}: {n} > {bound}");
        }
        assert!(
            m.heap_bytes() <= mid + mid / 10,
            "{mid} then {}",
            m.heap_bytes()
        );
        assert!(m.heap_bytes() * 5 < all.heap_bytes());
        assert!(m.groups_forgotten() + m.groups().len() as u64 == N + 1);
        // Ids are never reused: the last group is the N-th, the first ones are gone.
        assert_eq!(m.groups_seen() as u64, N + 1);
        assert_eq!(m.groups().last().unwrap().id, GroupId(N as u32));
        assert!(m.groups().windows(2).all(|w| w[0].id < w[1].id));
        assert!(m.find_group(GroupId(1)).is_none());
        for g in m.groups() {
            assert_eq!(m.group(g.id).id, g.id);
            assert_eq!(m.find_group(g.id).unwrap().label, g.label);
        }
    }

    #[test]
    fn a_burst_of_groups_gives_its_tables_back_once_it_passed_the_window() {
        let mut m = Attributor::new(set(HOST));
        m.set_history_ns(Some(10 * SEC));
        ns(&mut m, 0, 1, 1, &set(HOST));
        let before = m.heap_bytes() - m.task_bytes();
        // 5,000 sandboxes within the window: all of them held at once.
        let t = churn(&mut m, SEC, 0, 5_000);
        let peak = m.heap_bytes() - m.task_bytes();
        assert!(m.groups().len() > 5_000);
        // Quiet for longer than the window: the burst is given back, and with it the
        // tables' room for it.
        // (Ends declared by the first step are given back once taken, as a session does.)
        m.advance(t + 12 * SEC);
        m.take_changes().for_each(drop);
        m.advance(t + 13 * SEC);
        let after = m.heap_bytes() - m.task_bytes();
        assert!(m.groups().len() < 10, "{} groups kept", m.groups().len());
        assert!(
            after < before + 16 * 1024,
            "{before} bytes, {peak} at the peak, {after} after"
        );
        assert!(after * 4 < peak, "{peak} at the peak, {after} after");
        // And it serves the next burst as before.
        churn(&mut m, t + 13 * SEC, 5_000, 100);
        assert!(m.groups().len() > 100);
    }

    #[test]
    fn a_time_within_the_history_window_answers_and_one_before_it_is_unknown() {
        let mut m = Attributor::new(set(HOST));
        m.set_history_ns(Some(2 * SEC));
        ns(&mut m, 0, 1, 1, &set(HOST));
        ns(&mut m, 0, 50, 50, &set(HOST));
        // Task 100 makes a sandbox at 1 s and leaves it for the host's at 1.5 s.
        fork(&mut m, SEC, 100, 100, 50);
        let a = ns(&mut m, SEC, 100, 100, &set(NETNS));
        assert_ne!(a, GroupId::HOST);
        ns(&mut m, SEC + SEC / 2, 100, 100, &set(HOST));
        m.advance(3 * SEC);
        // Within the window: the sandbox, by its names.
        assert_eq!(m.attribute(100, 100, SEC + SEC / 4).unwrap().group, a);
        assert_eq!(m.attribute(100, 100, 2 * SEC).unwrap().group, GroupId::HOST);
        assert_eq!(m.find_group(a).unwrap().label, "sb-30");
        // Once 1.25 s is before the window, it is unknown; so is the time before a task
        // found at start was seen.
        m.advance(4 * SEC);
        assert_eq!(m.attribute(100, 100, SEC + SEC / 4), None);
        assert_eq!(m.attribute(50, 50, SEC), None);
        assert_eq!(m.attribute(50, 50, 3 * SEC).unwrap().group, GroupId::HOST);
        // Other sandboxes come and go: the ended one is given back with them.
        let t = churn(&mut m, 4 * SEC, 0, 200);
        // Their ends declared and taken, as a session takes them at every poll: a group
        // whose end is among the changes not taken is not given back yet.
        m.advance(t + SEC);
        m.take_changes().for_each(drop);
        m.advance(t + 3 * SEC);
        assert!(m.find_group(a).is_none(), "given back");
        assert!(m.groups_forgotten() >= 201);
        // A namespace made with the sandbox's numbers (the kernel reuses them): a new group
        // with a new id and the same label; the old time is still unknown, not it.
        let now = t + 3 * SEC + 1;
        fork(&mut m, now, 200, 200, 50);
        let b = ns(&mut m, now, 200, 200, &set(NETNS));
        assert!(b > a);
        assert_eq!(m.group(b).label, "sb-30");
        assert_eq!(m.group(b).generation, 0);
        assert_eq!(m.attribute(100, 100, SEC + SEC / 4), None);
        assert_eq!(m.attribute(200, 200, now).unwrap().group, b);
        assert_eq!(m.attribute(100, 100, now).unwrap().group, GroupId::HOST);
    }

    #[test]
    fn a_group_entered_again_after_the_window_is_not_given_back() {
        let mut m = Attributor::new(set(HOST));
        m.set_history_ns(Some(SEC));
        ns(&mut m, 0, 1, 1, &set(HOST));
        // An `ip netns` namespace: entered, left, then entered again much later, while
        // others churn around it.
        let a = ns(&mut m, SEC, 100, 100, &set(NETNS));
        ns(&mut m, SEC + 10, 100, 100, &set(HOST));
        let t = churn(&mut m, 2 * SEC, 0, 100);
        m.advance(t);
        assert_eq!(
            ns(&mut m, t + 1, 100, 100, &set(NETNS)),
            a,
            "not given back yet"
        );
        let t = churn(&mut m, t + 10, 100, 2_000);
        m.advance(t + 2 * SEC);
        assert!(m.find_group(a).is_some_and(|g| g.is_live()));
        assert_eq!(m.attribute(100, 100, t + 2 * SEC).unwrap().group, a);
    }
}
