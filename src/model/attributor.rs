//! The [`Attributor`]: fed events, it keeps every task's namespace history and the groups they
//! form, and answers "which group was task T in at time t".

use crate::event::cause::Syscall;
use crate::event::Cause;
use crate::event::{Body, Event};
use crate::model::group::{
    classify, differs_from_host, is_kernel_thread, Group, GroupId, Kind, Naming,
};
use crate::model::task::{Interval, Origin, Task};
use crate::nsset::{Interner, NsSet, SetId};
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attribution {
    /// The group.
    pub group: GroupId,
    /// The task's namespace set at that time.
    pub set: SetId,
}

/// One task as /proc shows it, for [`Attributor::add_snapshot`].
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
    /// group table keeps every group ever seen.
    live_by_pid: HashMap<NsLink, Vec<GroupId>>,
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

    /// Sets how long ended tasks still answer [`Attributor::attribute`].
    pub fn set_grace_ns(&mut self, grace_ns: u64) {
        self.grace_ns = grace_ns;
    }

    /// Moves the model's clock to `time_ns` (event time) if that is later, forgetting the
    /// ended tasks whose grace period is over: what [`Attributor::observe`] does first,
    /// for a caller that only asks ([`Attributor::task_at`]) about a time.
    pub fn advance(&mut self, time_ns: u64) {
        if time_ns > self.now_ns {
            self.now_ns = time_ns;
            self.prune();
            self.declare_ended(time_ns);
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
        }
    }

    /// Declares ended the groups that have been without a task for [`EXIT_LINGER_NS`] at
    /// `now`, stamped with the time that became so.
    fn declare_ended(&mut self, now: u64) {
        while let Some(&(g, t)) = self.exiting.front() {
            let at = t.saturating_add(EXIT_LINGER_NS);
            if at > now {
                break;
            }
            self.exiting.pop_front();
            self.changes.push(Change {
                time_ns: at,
                kind: ChangeKind::Exit,
                group: g,
            });
        }
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
                Some(self.set_namespaces(pid, tid, time, born, ns, comm.as_deref(), created, None))
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
        let g = self.set_namespaces(
            snap.pid,
            snap.tid,
            time_ns,
            0,
            &snap.ns,
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
            let group = &mut self.groups[g.0 as usize];
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
    pub fn task_at(&self, pid: u32, tid: u32, time_ns: u64) -> Option<(&Task, &Interval)> {
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

    /// A group by id.
    pub fn group(&self, id: GroupId) -> &Group {
        &self.groups[id.0 as usize]
    }

    /// Every group ever seen, host first, ended ones included.
    pub fn groups(&self) -> &[Group] {
        &self.groups
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
            self.groups[id.0 as usize].kernel_threads = true;
        }
    }

    /// Names group `id`; a change of what is shown is a [`ChangeKind::Rename`].
    pub fn set_naming(&mut self, id: GroupId, naming: Naming) {
        let now = self.now_ns;
        let g = &mut self.groups[id.0 as usize];
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
                let leader = self.groups[c.0 as usize].leader;
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

    /// Moves `tid` to `ns` (adding it when new) and takes its command name when known.
    /// `created` has the bits of the namespaces its cause created (see [`created_by`]);
    /// `ppid`, the parent of a task read from /proc (an event's task has it from its FORK).
    #[allow(clippy::too_many_arguments)]
    fn set_namespaces(
        &mut self,
        pid: u32,
        tid: u32,
        time: u64,
        born: u64,
        ns: &NsSet,
        comm: Option<&str>,
        mut created: u32,
        ppid: Option<u32>,
    ) -> GroupId {
        let set = self.sets.intern(ns);
        let kernel = is_kernel_thread(
            pid,
            ppid.or(self.live.get(&tid).map(|t| t.ppid)).unwrap_or(0),
        );
        let (old, start, first_own) = match self.live.get_mut(&tid) {
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
                )
            }
            None => (None, 0, false),
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
            self.groups[g.0 as usize].kernel_threads = false;
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
            self.groups[g.0 as usize].kernel_threads = false;
        }
        if let Some(old) = self.live.insert(tid, t) {
            // The EXIT of the tid's previous owner was lost: never merge the two tasks.
            self.retire(old, time);
        }
        self.enter(g);
        g
    }

    fn exit(&mut self, tid: u32, time: u64) -> Option<GroupId> {
        let t = self.live.remove(&tid)?;
        Some(self.retire(t, time))
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
        while let Some(t) = self.dead.front() {
            if t.ended_ns.saturating_add(self.grace_ns) >= self.now_ns {
                break;
            }
            self.ended_slots[ended_slot(t.tid)] -= 1;
            self.dead.pop_front();
        }
    }

    fn enter(&mut self, g: GroupId) {
        self.groups[g.0 as usize].live_tasks += 1;
    }

    fn leave(&mut self, g: GroupId, time: u64) {
        let group = &mut self.groups[g.0 as usize];
        group.live_tasks = group.live_tasks.saturating_sub(1);
        if group.live_tasks == 0 && g != GroupId::HOST {
            group.ended_ns = Some(time);
            self.exiting.push_back((g, time));
            self.note_live(g, false);
        }
    }

    /// Keeps [`Attributor::live_by_pid`] for a container that started or ended.
    fn note_live(&mut self, g: GroupId, live: bool) {
        let group = &self.groups[g.0 as usize];
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
            if self.groups[g.0 as usize].ended_ns.is_none() {
                return (g, false);
            }
            if created & key_mask(&self.groups[g.0 as usize].key) == 0 {
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
            let ended = self.groups[g.0 as usize].ended_ns.is_some();
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
            if created & (1 << i) != 0 && self.groups[h.0 as usize].ended_ns.is_some() {
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
        let id = GroupId(self.groups.len() as u32);
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
        let group = &self.groups[g.0 as usize];
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
        }
    }

    /// An ended group that a task entered again (its namespaces lived on, held by a file
    /// or a mount): the same group, live again. Within [`EXIT_LINGER_NS`] of its last
    /// task's leaving its end was never declared, and nothing is; after, it starts again.
    fn restart(&mut self, g: GroupId, time: u64) {
        self.groups[g.0 as usize].ended_ns = None;
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
        let group = &self.groups[g.0 as usize];
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
            self.exit(tid, time_ns);
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
        assert_eq!(m.group(ct).display_name(), "b");
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
}
