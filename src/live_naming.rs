//! Naming groups live, at the three moments a name can be read: when the probe wakes the
//! session for a call that made namespaces (the new group's first task may live a
//! millisecond), when the group's start is handed on (up to `--latency` later), and a few
//! times after (names that come later). docs/DESIGN.md, "The model", naming.

use crate::census;
use crate::live::{monotonic_ns, Creation};
use crate::model::{Attributor, Change, ChangeKind, GroupId, Naming};
use crate::record::NsLink;
use std::collections::VecDeque;
use std::path::Path;
use std::time::{Duration, Instant};

/// When, after its start, a group is named again for names that come later (a runtime's
/// state written after its container's first process made its namespaces, `ip netns
/// attach`): a few reads of its first task's /proc files, then none.
const NAME_AGAIN: [Duration; 3] = [
    Duration::from_millis(500),
    Duration::from_secs(2),
    Duration::from_secs(10),
];

/// How soon, and how many times, a task read early without its runtime's id is read again:
/// some runtimes (LXC, crun) move the new task into its cgroup just after the call that
/// made its namespaces, which is what woke us.
const READ_AGAIN_EVERY: Duration = Duration::from_millis(5);
const READ_AGAIN_TIMES: u8 = 8;

/// How long after a call that made namespaces the session looks at the probe's ring buffer
/// every [`READ_AGAIN_EVERY`] whatever woke it: containers come in bursts (a runtime's
/// processes, a script's), and on this VM the forced wake-up of the next call now and then
/// came only with the tick, 250 ms later, when a short-lived container was gone.
const BURST: Duration = Duration::from_secs(1);

/// The session's naming state.
#[derive(Debug, Default)]
pub(crate) struct Namer {
    /// Names of network namespaces, as last seen.
    netns: NetnsNames,
    /// Names read from /proc when the probe saw a call make namespaces, by the tid read:
    /// for a group whose first task is gone when its start is handed on.
    early: EarlyNames,
    /// Groups named at their start, to be named again at the times of [`NAME_AGAIN`] after
    /// it, with how many of those have passed; in time order.
    again: VecDeque<(GroupId, Instant, usize)>,
    /// Tasks read early whose runtime's id was not there yet: the task (pid, tid), its
    /// creator's name, when to read it again and how many reads are left.
    weak: Vec<(u32, u32, String, Instant, u8)>,
    /// Until when calls that made namespaces are looked for without a wake-up.
    burst_until: Option<Instant>,
}

impl Namer {
    /// The probe woke the session for these calls: reads the names of the tasks of those
    /// that made namespaces (a clone's child, the group's first task; else the caller:
    /// unshare, or a child numbered in another pid namespace than ours), and /run/netns
    /// for all (a setns into a network namespace may enter one just named).
    pub(crate) fn woken(&mut self, calls: impl Iterator<Item = Creation>, private_cgns: bool) {
        self.netns.look();
        let proc_root = Path::new("/proc");
        for c in calls.filter(|c| c.made) {
            self.burst_until = Some(Instant::now() + BURST);
            let read =
                |pid| census::read_naming(proc_root, pid, Some(&c.comm), None, &[], private_cgns);
            let (pid, tid, naming) = match c.child.map(|child| (child, read(child))) {
                Some((child, naming)) if naming.cgroup.is_some() => (child, child, naming),
                _ => (c.pid, c.tid, read(c.pid)),
            };
            // Its task gone, or not in its runtime's cgroup: the cgroup the probe took as
            // the call returned names it when the task's /proc files cannot.
            let naming = match (naming.runtime_id.is_none() && c.cgroup != 0)
                .then(|| census::naming_of_cgroup(c.cgroup))
                .flatten()
            {
                Some(mut by_id) if by_id.runtime_id.is_some() => {
                    by_id.fill_from(&naming);
                    by_id
                }
                _ => naming,
            };
            if naming.cgroup.is_some() || naming.runtime_id.is_some() {
                if naming.runtime_id.is_none() {
                    let at = Instant::now() + READ_AGAIN_EVERY;
                    self.weak.push((pid, tid, c.comm, at, READ_AGAIN_TIMES));
                }
                self.early.put(tid, naming);
            }
        }
    }

    /// How long until a task read early without its runtime's id is to be read again.
    pub(crate) fn read_again_in(&self) -> Option<Duration> {
        let now = Instant::now();
        let burst = self
            .burst_until
            .filter(|until| *until > now)
            .map(|_| READ_AGAIN_EVERY);
        self.weak
            .iter()
            .map(|w| w.3.saturating_duration_since(now))
            .chain(burst)
            .min()
    }

    /// Reads again the tasks read early without their runtime's id whose time has come;
    /// what names them better replaces what was read.
    pub(crate) fn read_again(&mut self, private_cgns: bool) {
        let now = Instant::now();
        let proc_root = Path::new("/proc");
        let early = &mut self.early;
        self.weak.retain_mut(|(pid, tid, comm, at, left)| {
            if *at > now {
                return true;
            }
            let naming = census::read_naming(proc_root, *pid, Some(comm), None, &[], private_cgns);
            if naming.cgroup.is_none() {
                return false;
            }
            let named = naming.runtime_id.is_some();
            if named {
                early.put(*tid, naming);
            }
            *left -= 1;
            *at = now + READ_AGAIN_EVERY;
            !named && *left > 0
        });
    }

    /// Names the groups among `changes` that started for the first time, from /proc and
    /// /run/netns while their first task lives, else from what was read when the probe woke
    /// the session for the call that made them. A group that starts again keeps its names.
    pub(crate) fn started(&mut self, model: &mut Attributor, changes: &[Change]) {
        let new: Vec<GroupId> = changes
            .iter()
            .filter(|c| {
                c.kind == ChangeKind::Start
                    && model
                        .find_group(c.group)
                        .is_some_and(|g| g.naming == Naming::default())
            })
            .map(|c| c.group)
            .collect();
        if new.is_empty() {
            return;
        }
        self.netns.look();
        for g in new {
            let names = self.netns.for_group(model.group(g).started_ns);
            census::name_group(model, Path::new("/proc"), g, &names);
            self.again.push_back((g, Instant::now() + NAME_AGAIN[0], 0));
            let group = model.group(g);
            if group.naming.cgroup.is_some() {
                continue;
            }
            // Its first task is gone: what was read of it, or of the task that made it.
            let leader = group.leader;
            let parent = model.task(leader).map_or(0, |t| t.ppid);
            if let Some(n) = self.early.get(leader).or_else(|| self.early.get(parent)) {
                let mut naming = n.clone();
                naming.fill_from(&group.naming);
                model.set_naming(g, naming);
            }
        }
    }

    /// Names again the groups whose time has come, from their first task if it lives, else
    /// from what only a name of its network namespace can add; a name that changed is a
    /// rename among the model's changes.
    pub(crate) fn again(&mut self, model: &mut Attributor) {
        let now = Instant::now();
        if self.again.front().is_some_and(|(_, at, _)| *at <= now) {
            self.netns.look();
        }
        while self.again.front().is_some_and(|(_, at, _)| *at <= now) {
            let (g, at, n) = self.again.pop_front().expect("looked at above");
            if let Some(next) = NAME_AGAIN.get(n + 1) {
                let at = at - NAME_AGAIN[n] + *next;
                let i = self.again.partition_point(|(_, t, _)| *t <= at);
                self.again.insert(i, (g, at, n + 1));
            }
            // Given back meanwhile (a history window shorter than the naming's times).
            let Some(group) = model.find_group(g) else {
                continue;
            };
            let leader = group
                .is_live()
                .then(|| model.task(group.leader))
                .flatten()
                .map_or(0, |t| t.pid);
            let mut naming = census::read_naming(
                Path::new("/proc"),
                leader,
                group.creator.as_deref(),
                model.group_net(g),
                &self.netns.for_group(group.started_ns),
                census::in_private_cgroupns(model),
            );
            if naming.cgroup.is_none() && naming.runtime.as_deref() != Some("ip-netns") {
                continue;
            }
            naming.fill_from(&group.naming);
            model.set_naming(g, naming);
        }
    }
}

/// The names of network namespaces (`ip netns`, /run/netns) seen lately, with when each
/// was last seen: `ip netns add` names its namespace after making it and a script may
/// delete it before its group's start is handed on, so a name seen by a wake-up in between
/// (the probe's, for a setns into a network namespace) still names it then.
#[derive(Debug, Default)]
struct NetnsNames {
    seen: VecDeque<(String, NsLink, u64)>,
}

impl NetnsNames {
    /// How many are kept.
    const KEEP: usize = 256;

    /// Reads /run/netns now.
    fn look(&mut self) {
        let now = monotonic_ns();
        for (name, link) in census::named_netns(Path::new("/run/netns")) {
            self.seen.retain(|(n, l, _)| !(*l == link && *n == name));
            if self.seen.len() == Self::KEEP {
                self.seen.pop_front();
            }
            self.seen.push_back((name, link, now));
        }
    }

    /// The names that may name a group started at `started_ns`: those seen since. A name
    /// last seen before the group started may be a dead namespace's whose number the
    /// kernel gave the group's.
    fn for_group(&self, started_ns: u64) -> Vec<(String, NsLink)> {
        self.seen
            .iter()
            .rev()
            .filter(|(_, _, at)| *at >= started_ns)
            .map(|(n, l, _)| (n.clone(), *l))
            .collect()
    }
}

/// Names read early, by tid: the newest few, for the time from a call's wake-up to its
/// group's start being handed on (a reorder window, or a tick when the wake-up came late).
#[derive(Debug, Default)]
struct EarlyNames {
    by_tid: VecDeque<(u32, Naming)>,
}

impl EarlyNames {
    /// How many are kept: more than the calls that make namespaces in a tick.
    const KEEP: usize = 512;

    fn put(&mut self, tid: u32, naming: Naming) {
        if self.by_tid.len() == Self::KEEP {
            self.by_tid.pop_front();
        }
        self.by_tid.push_back((tid, naming));
    }

    fn get(&self, tid: u32) -> Option<&Naming> {
        if tid == 0 {
            return None;
        }
        self.by_tid
            .iter()
            .rev()
            .find(|(t, _)| *t == tid)
            .map(|(_, n)| n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_netns_name_names_only_groups_started_before_it_was_seen() {
        let link = NsLink { dev: 4, ino: 77 };
        let names = NetnsNames {
            seen: VecDeque::from([("blue".to_string(), link, 1_000)]),
        };
        assert_eq!(names.for_group(900), vec![("blue".to_string(), link)]);
        // A group started after the name was last seen: its namespace may be a new one
        // with a dead one's number.
        assert_eq!(names.for_group(1_001), vec![]);
    }

    #[test]
    fn early_names_keep_the_newest_by_tid() {
        let mut early = EarlyNames::default();
        let named = |n: &str| Naming {
            name: Some(n.to_string()),
            ..Naming::default()
        };
        early.put(5, named("old"));
        early.put(5, named("new"));
        assert_eq!(early.get(5).unwrap().name.as_deref(), Some("new"));
        assert!(early.get(0).is_none());
        for tid in 0..EarlyNames::KEEP as u32 {
            early.put(100 + tid, named("x"));
        }
        assert!(early.get(5).is_none(), "the oldest are dropped");
    }
}
