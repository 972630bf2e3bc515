//! Groups: the host, containers and sandboxes that tasks form by namespace identity.
//!
//! Which namespaces differ from the host's says what a group is (docs/DESIGN.md, "What a
//! container is"); the cgroup path only names it. Pods are containers that share a network
//! namespace and are derived on demand ([`crate::model::Attributor::pods`]).

use crate::nsset::{NsSet, SetId};
use crate::record::{NsKind, NsLink};

/// Small id of a group, given in order of the groups' starts. Never reused within one
/// model: a namespace created with an ended group's numbers gets a new id, and so does a
/// namespace seen again after its group was given back (ended before the model's history
/// window, [`crate::model::Attributor::set_history_ns`]).
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
/// use nswatch::model::GroupId;
/// assert_ne!(group, GroupId::HOST);
/// assert_eq!(model.group(GroupId::HOST).label(), "host");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupId(pub u32);

impl GroupId {
    /// The host group always has id 0.
    pub const HOST: GroupId = GroupId(0);
}

/// What kind of isolation a group has.
///
/// ```
/// use nswatch::model::Kind;
///
/// assert_eq!(Kind::Container.name(), "container");
/// assert_eq!(Kind::Host.name(), "host");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// The initial namespaces.
    Host,
    /// Own mount and pid namespaces (runc, crun, podman, systemd-nspawn, LXC…).
    Container,
    /// Any other partial isolation (`ip netns exec`, `unshare -n`, browser sandboxes…).
    Sandbox,
}

impl Kind {
    /// The name used in JSON and text.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Host => "host",
            Kind::Container => "container",
            Kind::Sandbox => "sandbox",
        }
    }
}

/// Bit of `kind` in a link mask (bit i = kernel index i).
pub const fn bit(kind: NsKind) -> u32 {
    1 << kind as u32
}

/// Links of `set` that differ from `host`'s, as a mask. A (0, 0) link (perf could not read
/// it) is taken as the host's: unknown is not evidence of isolation.
pub fn differs_from_host(set: &NsSet, host: &NsSet) -> u32 {
    let mut mask = 0;
    for (i, l) in set.links().iter().enumerate() {
        if l.ino == 0 {
            continue;
        }
        if host.links().get(i) != Some(l) {
            mask |= 1 << i;
        }
    }
    mask
}

/// The identity that tasks of one group share, and the kind it implies.
///
/// A container is keyed by its (pid, mnt) pair so that `runc exec` or `nsenter` into it joins
/// it whatever else it unshared; a sandbox with its own network namespace by that namespace
/// alone, because `ip netns exec` gives each command a fresh mount namespace yet they share
/// the network; any other sandbox by all the links that differ.
pub fn classify(set: &NsSet, host: &NsSet) -> (Kind, NsSet) {
    let mask = differs_from_host(set, host);
    if mask == 0 {
        return (Kind::Host, NsSet::default());
    }
    let keep = |m: u32| {
        NsSet::from_links(set.links().iter().enumerate().map(|(i, l)| {
            if m & (1 << i) != 0 {
                *l
            } else {
                NsLink::default()
            }
        }))
    };
    let container = bit(NsKind::Pid) | bit(NsKind::Mnt);
    if mask & container == container {
        (Kind::Container, keep(container))
    } else if mask & bit(NsKind::Net) != 0 {
        (Kind::Sandbox, keep(bit(NsKind::Net)))
    } else {
        (Kind::Sandbox, keep(mask))
    }
}

/// What the outside world calls a group: read from its cgroup path, the runtime's state or
/// the tool that made it. The model stores it; it does not find it (no I/O here).
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
/// use nswatch::model::Naming;
/// let naming = Naming { runtime: Some("docker".into()), name: Some("web".into()), ..Naming::default() };
/// model.set_naming(group, naming);
/// assert_eq!(model.group(group).name(), "web");
/// assert_eq!(model.group(group).naming().runtime.as_deref(), Some("docker"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Naming {
    /// The runtime ("runc", "docker", "lxc", "systemd-nspawn", "bwrap", "ip-netns"…).
    pub runtime: Option<String>,
    /// The runtime's own id for it (container id, machine name, lxc name, netns name).
    pub runtime_id: Option<String>,
    /// A name for people: the runtime id shortened, or the cgroup path.
    pub name: Option<String>,
    /// The image it runs, where the runtime keeps it (docker, podman).
    pub image: Option<String>,
    /// The runtime's namespace for it: containerd's (`default`, `k8s.io`) or the Kubernetes
    /// pod's namespace.
    pub namespace: Option<String>,
    /// The pod it belongs to: a Kubernetes pod's or a podman pod's name.
    pub pod_name: Option<String>,
    /// A podman pod's id.
    pub pod_id: Option<String>,
    /// Kubernetes pod UID, when the cgroup path or the bundle has one.
    pub pod_uid: Option<String>,
    /// The cgroup path it was named from.
    pub cgroup: Option<String>,
}

impl Naming {
    /// True when `other` would show the group otherwise: another name, runtime, id, image
    /// or pod (the cgroup path alone is no new name).
    pub fn shown_differs(&self, other: &Naming) -> bool {
        fn shown(n: &Naming) -> [Option<&str>; 8] {
            [
                &n.name,
                &n.runtime,
                &n.runtime_id,
                &n.image,
                &n.namespace,
                &n.pod_name,
                &n.pod_id,
                &n.pod_uid,
            ]
            .map(Option::as_deref)
        }
        shown(self) != shown(other)
    }

    /// Takes from `other` what this naming lacks.
    pub fn fill_from(&mut self, other: &Naming) {
        let take = |mine: &mut Option<String>, theirs: &Option<String>| {
            if mine.is_none() {
                mine.clone_from(theirs);
            }
        };
        take(&mut self.runtime, &other.runtime);
        take(&mut self.runtime_id, &other.runtime_id);
        take(&mut self.name, &other.name);
        take(&mut self.image, &other.image);
        take(&mut self.namespace, &other.namespace);
        take(&mut self.pod_name, &other.pod_name);
        take(&mut self.pod_id, &other.pod_id);
        take(&mut self.pod_uid, &other.pod_uid);
        take(&mut self.cgroup, &other.cgroup);
    }
}

/// One group: its identity, its life, and what it is called.
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
/// let g = model.group(group);
/// assert_eq!(g.kind.name(), "container");
/// assert_eq!(g.label(), "ct-14"); // its pid namespace's inode
/// assert_eq!(g.name(), "ct-14"); // no runtime named it
/// assert!(g.is_live());
/// ```
#[derive(Debug, Clone)]
pub struct Group {
    /// Its id in the model.
    pub id: GroupId,
    /// Host, container or sandbox.
    pub kind: Kind,
    /// The links that define it (others are (0, 0)).
    pub key: NsSet,
    /// How many groups had this key before (the kernel reuses namespace inode numbers once a
    /// namespace dies, so the same key later is a different group).
    pub generation: u32,
    /// The full set of the task that started it.
    pub first_set: SetId,
    /// Kinds that differ from the host, as a link mask.
    pub differs: u32,
    /// Stable text id, as written in events: [`Group::label`].
    pub(crate) label: String,
    /// When its first task entered it (event time, ns; 0 when it existed at start).
    pub started_ns: u64,
    /// When its last task left it.
    pub ended_ns: Option<u64>,
    /// Tasks in it now.
    pub live_tasks: u32,
    /// Tid of the first task seen in it.
    pub leader: u32,
    /// Command name of the task that created it (the parent of its first task, or the task
    /// itself when it unshared), e.g. "bwrap", "firejail", "runc:\[1:CHILD\]".
    pub creator: Option<String>,
    /// Name and runtime, once known: [`Group::naming`].
    pub(crate) naming: Naming,
    /// Every task that entered it was a kernel thread ([`is_kernel_thread`]): kdevtmpfs's
    /// own mount namespace, on every machine. Such a group is part of the machine, not
    /// something a user started: `ps`, `report` and `top` count it with the host and list
    /// it only when asked for the host's tasks (`--all`). It is still a group of its own
    /// (its label, its events), so that what the namespaces say stays exact.
    pub kernel_threads: bool,
}

/// A kernel thread: kthreadd (PID 2) or a thread it started (PPID 2), the only way the
/// kernel makes threads. A user task's parent is never kthreadd, except a usermode
/// helper's (modprobe, a core dump handler) until it execs, which the kernel starts that way.
pub fn is_kernel_thread(pid: u32, ppid: u32) -> bool {
    pid == 2 || ppid == 2
}

impl Group {
    /// The label of a group of `kind` keyed by `key`, with `n` > 0 for the n-th other
    /// group that shares its first one's namespace (see [`Group::primary`]) at once: a
    /// container in the pid namespace of another (a process that unshared its mount
    /// namespace inside) is `ct-<pid>-<mnt>`, its mount namespace's number following.
    pub(crate) fn label_for(kind: Kind, key: &NsSet, n: u32) -> String {
        let prefix = match kind {
            Kind::Host => return "host".to_string(),
            Kind::Container if n > 0 => {
                let ino = |k| key.get(k).map_or(0, |l| l.ino);
                let base = format!("ct-{}-{}", ino(NsKind::Pid), ino(NsKind::Mnt));
                return match n {
                    1 => base,
                    n => format!("{base}.{}", n - 1),
                };
            }
            Kind::Container => "ct",
            Kind::Sandbox => "sb",
        };
        let ino = Group::primary(kind, key).map_or(0, |(_, l)| l.ino);
        if n == 0 {
            format!("{prefix}-{ino}")
        } else {
            format!("{prefix}-{ino}.{n}")
        }
    }

    /// The namespace a group's label names, with its link index: a container's pid
    /// namespace, a sandbox's network namespace, else the first that differs.
    pub(crate) fn primary(kind: Kind, key: &NsSet) -> Option<(usize, NsLink)> {
        let links = key.links();
        let at =
            |k: NsKind| Some((k as usize, *links.get(k as usize)?)).filter(|(_, l)| l.ino != 0);
        match kind {
            Kind::Host => None,
            Kind::Container => at(NsKind::Pid),
            Kind::Sandbox => at(NsKind::Net)
                .or_else(|| links.iter().copied().enumerate().find(|(_, l)| l.ino != 0)),
        }
    }

    /// Heap bytes its strings hold (label, creator, names).
    pub fn heap_bytes(&self) -> usize {
        let n = &self.naming;
        let opt = |s: &Option<String>| s.as_ref().map_or(0, String::capacity);
        self.label.capacity()
            + opt(&self.creator)
            + [
                &n.runtime,
                &n.runtime_id,
                &n.name,
                &n.image,
                &n.namespace,
                &n.pod_name,
                &n.pod_id,
                &n.pod_uid,
                &n.cgroup,
            ]
            .into_iter()
            .map(opt)
            .sum::<usize>()
    }

    /// True while it has tasks.
    pub fn is_live(&self) -> bool {
        self.ended_ns.is_none()
    }

    /// The group's name, the one way to name it to a person: the runtime's name for it
    /// (a container's name, a pod's `POD` sandbox) once [naming](Group::naming) found it,
    /// else the runtime's id, else its [label](Group::label).
    ///
    /// ```
    /// use nswatch::model::{Attributor, GroupId};
    /// use nswatch::perf_data::{Order, PerfData};
    ///
    /// let mut data = PerfData::open(std::path::Path::new("fixtures/samples.data"))?;
    /// let mut model = Attributor::learning();
    /// for ev in data.events(Order::Time) {
    ///     model.observe(&ev?.as_event());
    /// }
    /// // A perf.data file names no runtime: the name is the label.
    /// assert_eq!(model.group(GroupId::HOST).name(), "host");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn name(&self) -> &str {
        self.naming
            .name
            .as_deref()
            .or(self.naming.runtime_id.as_deref())
            .unwrap_or(&self.label)
    }

    /// The group's stable id, as events and the JSON stream carry it: `host`,
    /// `ct-4026532301` (a container, by its pid namespace's inode), `sb-4026532290.1` (a
    /// sandbox, by its network namespace's; `.1` for the second group of that key). Unique
    /// in one model; not a name to show (see [`Group::name`]).
    ///
    /// ```
    /// use nswatch::model::{Attributor, GroupId};
    ///
    /// let model = Attributor::learning();
    /// assert_eq!(model.group(GroupId::HOST).label(), "host");
    /// ```
    pub fn label(&self) -> &str {
        &self.label
    }

    /// What the runtime says about the group (runtime, ids, image, pod), as far as known;
    /// [`Group::name`] is the name to show.
    ///
    /// ```
    /// use nswatch::model::{Attributor, GroupId};
    ///
    /// let model = Attributor::learning();
    /// assert_eq!(model.group(GroupId::HOST).naming().runtime, None);
    /// ```
    pub fn naming(&self) -> &Naming {
        &self.naming
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(inos: [u64; 7]) -> NsSet {
        NsSet::from_links(inos.map(|ino| NsLink { dev: 4, ino }))
    }

    const HOST: [u64; 7] = [1, 2, 3, 4, 5, 6, 7];

    #[test]
    fn host_is_host() {
        let h = set(HOST);
        assert_eq!(classify(&h, &h), (Kind::Host, NsSet::default()));
    }

    #[test]
    fn own_pid_and_mnt_is_a_container_keyed_by_them() {
        let h = set(HOST);
        let (k, key) = classify(&set([10, 11, 12, 14, 5, 16, 7]), &h);
        assert_eq!(k, Kind::Container);
        assert_eq!(key.get(NsKind::Pid).unwrap().ino, 14);
        assert_eq!(key.get(NsKind::Mnt).unwrap().ino, 16);
        assert_eq!(key.get(NsKind::Net).unwrap().ino, 0);
        // An exec'd process that did not join the uts namespace is still in it.
        let (_, key2) = classify(&set([10, 2, 12, 14, 5, 16, 7]), &h);
        assert_eq!(key, key2);
    }

    #[test]
    fn net_only_or_net_and_mnt_is_a_sandbox_keyed_by_net() {
        let h = set(HOST);
        let (k, key) = classify(&set([10, 2, 3, 4, 5, 6, 7]), &h);
        assert_eq!(k, Kind::Sandbox);
        let (k2, key2) = classify(&set([10, 2, 3, 4, 5, 20, 7]), &h);
        assert_eq!((k2, key2), (k, key));
    }

    #[test]
    fn other_partial_isolation_is_keyed_by_every_differing_link() {
        let h = set(HOST);
        let (k, key) = classify(&set([1, 22, 3, 4, 25, 6, 7]), &h);
        assert_eq!(k, Kind::Sandbox);
        assert_eq!(key.get(NsKind::Uts).unwrap().ino, 22);
        assert_eq!(key.get(NsKind::User).unwrap().ino, 25);
    }

    #[test]
    fn unreadable_links_are_not_isolation() {
        let h = set(HOST);
        assert_eq!(classify(&set([0; 7]), &h).0, Kind::Host);
        assert_eq!(classify(&set([1, 2, 3, 0, 5, 0, 7]), &h).0, Kind::Host);
    }

    #[test]
    fn labels_name_the_first_namespace_then_the_next() {
        let key = set([0, 0, 0, 14, 0, 16, 0]);
        assert_eq!(Group::label_for(Kind::Container, &key, 0), "ct-14");
        assert_eq!(Group::label_for(Kind::Container, &key, 1), "ct-14-16");
        assert_eq!(Group::label_for(Kind::Container, &key, 2), "ct-14-16.1");
        let sb = set([10, 0, 0, 0, 0, 0, 0]);
        assert_eq!(Group::label_for(Kind::Sandbox, &sb, 0), "sb-10");
        assert_eq!(Group::label_for(Kind::Sandbox, &sb, 1), "sb-10.1");
        assert_eq!(Group::label_for(Kind::Host, &sb, 0), "host");
    }
}
