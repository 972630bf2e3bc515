//! The machine as a tree: host, pods, containers and sandboxes, each with its processes and
//! their threads, as `nswatch ps` prints it and `nswatch top` shows it live. Built from the
//! model in one pass; serializes to `nswatch ps --format json`'s document.

use crate::model::{Attributor, Group, GroupId, Kind, Task};
use crate::nsset::link_name;
use hashbrown::{HashMap, HashSet};
use serde::Serialize;
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// One process of a group.
#[derive(Serialize, Debug, Clone)]
pub struct ProcessNode {
    /// Process id as the host sees it.
    pub pid: u32,
    /// Pid inside the group's pid namespace (0 when not known).
    pub nspid: u32,
    /// Parent process id.
    pub ppid: u32,
    /// Command name of its main thread.
    pub comm: String,
    /// "born" in the group, "joined" it later (setns) or "created" it (unshare).
    pub origin: &'static str,
    /// Thread ids, ascending (the main thread's included).
    pub threads: Vec<u32>,
}

/// One group (host, container or sandbox).
#[derive(Serialize, Debug, Clone)]
pub struct GroupNode {
    /// The model's id, for looking the group up again (not written: labels are the ids
    /// readers keep).
    #[serde(skip)]
    pub gid: GroupId,
    /// Stable text id ("host", "ct-4026532301").
    pub id: String,
    /// "host", "container" or "sandbox".
    pub kind: &'static str,
    /// Name for people.
    pub name: String,
    /// Runtime that made it, when known.
    pub runtime: Option<String>,
    /// The runtime's id for it.
    pub runtime_id: Option<String>,
    /// The image it runs, as the runtime names it (docker, podman).
    pub image: Option<String>,
    /// The runtime's namespace for it (containerd's `default`, `k8s.io`).
    pub namespace: Option<String>,
    /// The runtime's pod: a podman pod's (or Kubernetes pod's) name.
    pub pod_name: Option<String>,
    /// A podman pod's id.
    pub pod_id: Option<String>,
    /// Kubernetes pod UID.
    pub pod_uid: Option<String>,
    /// The cgroup path it was named from.
    pub cgroup: Option<String>,
    /// Pod id ("pod-`NETINO`") when it shares its network namespace with other containers.
    pub pod: Option<String>,
    /// Id of the container it is nested in.
    pub parent: Option<String>,
    /// Command name of the task that created it.
    pub creator: Option<String>,
    /// Namespaces it does not share with the host.
    pub owns: Vec<&'static str>,
    /// Namespaces it shares with the host.
    pub shares_with_host: Vec<&'static str>,
    /// Namespaces it shares with the other containers of its pod (and not with the host).
    pub shares_with_pod: Vec<&'static str>,
    /// Its leader's namespaces, by name: [dev, ino] (written in JSON as the NDJSON's
    /// `{"dev":D,"ino":I}`).
    #[serde(serialize_with = "links_json")]
    pub namespaces: BTreeMap<&'static str, [u64; 2]>,
    /// Kernel threads alone ([`Group::kernel_threads`]): counted with the host, listed
    /// only with it.
    pub kernel_threads: bool,
    /// Live tasks (threads).
    pub tasks: u32,
    /// Processes, by pid.
    pub processes: Vec<ProcessNode>,
}

/// Containers that share a network namespace.
#[derive(Serialize, Debug, Clone)]
pub struct PodNode {
    /// "pod-`NETINO`".
    pub id: String,
    /// The shared network namespace, [dev, ino] (in JSON `{"dev":D,"ino":I}`).
    #[serde(serialize_with = "link_json")]
    pub net: [u64; 2],
    /// Labels of its containers.
    pub containers: Vec<String>,
}

/// The whole tree.
#[derive(Serialize, Debug, Clone)]
pub struct Tree {
    /// Which pid the host's namespaces were read from.
    pub host_pid: u32,
    /// Live tasks of the host.
    pub host_tasks: u32,
    /// Processes of the host.
    pub host_processes: usize,
    /// Pods.
    pub pods: Vec<PodNode>,
    /// Live groups in model order (the host only when asked for).
    pub groups: Vec<GroupNode>,
}

/// One line of the tree in display order, with its depth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Row {
    /// A pod (index into [`Tree::pods`]).
    Pod(usize),
    /// A group (index into [`Tree::groups`]).
    Group(usize),
}

/// A namespace as the NDJSON events write it.
#[derive(Serialize)]
struct LinkJson {
    dev: u64,
    ino: u64,
}

fn link_json<S: serde::Serializer>(l: &[u64; 2], s: S) -> Result<S::Ok, S::Error> {
    LinkJson {
        dev: l[0],
        ino: l[1],
    }
    .serialize(s)
}

fn links_json<S: serde::Serializer>(
    m: &BTreeMap<&'static str, [u64; 2]>,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_map(m.iter().map(|(k, l)| {
        (
            k,
            LinkJson {
                dev: l[0],
                ino: l[1],
            },
        )
    }))
}

fn mask_list(mask: u32) -> Vec<&'static str> {
    (0..7)
        .filter(|i| mask & (1 << i) != 0)
        .map(link_name)
        .collect()
}

fn processes(tasks: &[&Task]) -> Vec<ProcessNode> {
    let mut by_pid: BTreeMap<u32, ProcessNode> = BTreeMap::new();
    for t in tasks {
        let p = by_pid.entry(t.pid).or_insert_with(|| ProcessNode {
            pid: t.pid,
            nspid: 0,
            ppid: t.ppid,
            comm: String::new(),
            origin: t.origin.name(),
            threads: Vec::new(),
        });
        if t.tid == t.pid {
            p.nspid = t.nspid;
            p.comm = t.comm().to_string();
            p.ppid = t.ppid;
            p.origin = t.origin.name();
        }
        p.threads.push(t.tid);
    }
    by_pid
        .into_values()
        .map(|mut p| {
            p.threads.sort_unstable();
            p
        })
        .collect()
}

/// The tree of `model`'s live groups; the host's group, and the groups of kernel threads
/// alone ([`Group::kernel_threads`], whose tasks [`Tree::host_tasks`] counts), are in
/// [`Tree::groups`] only with `with_host` (its processes are most of the machine).
pub fn build(model: &Attributor, host_pid: u32, with_host: bool) -> Tree {
    let mut tasks_of: HashMap<GroupId, Vec<&Task>> = HashMap::new();
    for t in model.tasks() {
        tasks_of.entry(t.current.group).or_default().push(t);
    }
    let pods = model.pods();
    let pod_label = |net: u64| format!("pod-{net}");
    let pod_of = |id: GroupId| pods.iter().find(|p| p.containers.contains(&id));
    let host = model.host();
    let mut groups = Vec::new();
    for g in model.groups().iter().filter(|g| g.is_live()) {
        if (g.kind == Kind::Host || g.kernel_threads) && !with_host {
            continue;
        }
        let tasks = tasks_of.get(&g.id).map(Vec::as_slice).unwrap_or(&[]);
        let set = model
            .sets()
            .get(model.task(g.leader).map_or(g.first_set, |t| t.current.set));
        let pod = pod_of(g.id);
        let shares_with_pod = pod.map_or(Vec::new(), |p| {
            let others: Vec<&Group> = p
                .containers
                .iter()
                .filter(|&&c| c != g.id)
                .map(|&c| model.group(c))
                .collect();
            (0..set.links().len())
                .filter(|&i| {
                    host.links().get(i) != set.links().get(i)
                        && others.iter().all(|o| {
                            model.sets().get(o.first_set).links().get(i) == set.links().get(i)
                        })
                })
                .map(link_name)
                .collect()
        });
        groups.push(GroupNode {
            gid: g.id,
            id: g.label.clone(),
            kind: g.kind.name(),
            name: g.name().to_string(),
            runtime: g.naming.runtime.clone(),
            runtime_id: g.naming.runtime_id.clone(),
            image: g.naming.image.clone(),
            namespace: g.naming.namespace.clone(),
            pod_name: g.naming.pod_name.clone(),
            pod_id: g.naming.pod_id.clone(),
            pod_uid: g.naming.pod_uid.clone(),
            cgroup: g.naming.cgroup.clone(),
            pod: pod.map(|p| pod_label(p.net.ino)),
            parent: model.parent_of(g.id).map(|p| model.group(p).label.clone()),
            creator: g.creator.clone(),
            owns: mask_list(g.differs),
            shares_with_host: mask_list(!g.differs & ((1 << set.links().len()) - 1)),
            shares_with_pod,
            namespaces: set
                .links()
                .iter()
                .enumerate()
                .map(|(i, l)| (link_name(i), [l.dev, l.ino]))
                .collect(),
            kernel_threads: g.kernel_threads,
            tasks: g.live_tasks,
            processes: processes(tasks),
        });
    }
    // The host's tasks, with the kernel threads that have namespaces of their own.
    let hostlike = |g: &GroupId| *g == GroupId::HOST || model.group(*g).kernel_threads;
    let host_tasks = tasks_of
        .iter()
        .filter(|(g, _)| hostlike(g))
        .flat_map(|(_, t)| t.iter());
    Tree {
        host_pid,
        host_tasks: host_tasks.clone().count() as u32,
        host_processes: host_tasks.filter(|t| t.pid == t.tid).count(),
        pods: pods
            .iter()
            .map(|p| PodNode {
                id: pod_label(p.net.ino),
                net: [p.net.dev, p.net.ino],
                containers: p
                    .containers
                    .iter()
                    .map(|&c| model.group(c).label.clone())
                    .collect(),
            })
            .collect(),
        groups,
    }
}

impl Tree {
    /// Takes the groups of kernel threads alone ([`GroupNode::kernel_threads`]) into the
    /// host's node: their tasks and processes are the host's, as [`Tree::host_tasks`]
    /// counts them (without a host node they are dropped).
    pub fn fold_kernel_threads(&mut self) {
        let (kernel, rest): (Vec<GroupNode>, Vec<GroupNode>) = std::mem::take(&mut self.groups)
            .into_iter()
            .partition(|g| g.kernel_threads);
        self.groups = rest;
        if let Some(host) = self.groups.iter_mut().find(|g| g.kind == Kind::Host.name()) {
            for k in kernel {
                host.tasks += k.tasks;
                host.processes.extend(k.processes);
            }
            host.processes.sort_by_key(|p| p.pid);
        }
    }

    /// The tree in display order, in model order among siblings: each pod with its
    /// containers under it, then the groups in no pod, then the host; a nested container
    /// follows its parent one level deeper.
    pub fn rows(&self) -> Vec<(usize, Row)> {
        self.rows_by(|a, b| (a.kind == "host").cmp(&(b.kind == "host")))
    }

    /// The tree in display order with siblings ordered by `cmp` (stable: equal ones keep
    /// model order). The host is one of the top-level groups, ordered like them.
    ///
    /// A group whose parent or pod is not in the tree (a narrowed tree: `ps -p`, `top
    /// --container`) is listed as a top-level one.
    pub fn rows_by(&self, cmp: impl Fn(&GroupNode, &GroupNode) -> Ordering) -> Vec<(usize, Row)> {
        let ids: HashSet<&str> = self.groups.iter().map(|g| g.id.as_str()).collect();
        let pods: HashSet<&str> = self.pods.iter().map(|p| p.id.as_str()).collect();
        let mut children: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, g) in self.groups.iter().enumerate() {
            if let Some(p) = &g.parent {
                children.entry(p.as_str()).or_default().push(i);
            }
        }
        for v in children.values_mut() {
            v.sort_by(|&a, &b| cmp(&self.groups[a], &self.groups[b]));
        }
        let mut out = Vec::with_capacity(self.groups.len() + self.pods.len());
        fn walk(
            tree: &Tree,
            children: &HashMap<&str, Vec<usize>>,
            i: usize,
            depth: usize,
            out: &mut Vec<(usize, Row)>,
        ) {
            out.push((depth, Row::Group(i)));
            for &c in children
                .get(tree.groups[i].id.as_str())
                .into_iter()
                .flatten()
            {
                walk(tree, children, c, depth + 1, out);
            }
        }
        let top = |g: &GroupNode| g.parent.as_deref().is_none_or(|p| !ids.contains(p));
        let in_pod = |g: &GroupNode| g.pod.as_deref().is_some_and(|p| pods.contains(p));
        for (pi, pod) in self.pods.iter().enumerate() {
            out.push((0, Row::Pod(pi)));
            let mut members: Vec<usize> = (0..self.groups.len())
                .filter(|&i| top(&self.groups[i]) && self.groups[i].pod.as_ref() == Some(&pod.id))
                .collect();
            members.sort_by(|&a, &b| cmp(&self.groups[a], &self.groups[b]));
            for i in members {
                walk(self, &children, i, 1, &mut out);
            }
        }
        let mut rest: Vec<usize> = (0..self.groups.len())
            .filter(|&i| top(&self.groups[i]) && !in_pod(&self.groups[i]))
            .collect();
        rest.sort_by(|&a, &b| cmp(&self.groups[a], &self.groups[b]));
        for i in rest {
            walk(self, &children, i, 0, &mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Body, Event};
    use crate::nsset::NsSet;
    use crate::record::NsLink;

    fn set(inos: [u64; 7]) -> NsSet {
        NsSet::from_links(inos.map(|ino| NsLink { dev: 4, ino }))
    }

    fn enter(m: &mut Attributor, tid: u32, s: &NsSet) -> GroupId {
        let ev = Event {
            time_ns: Some(10),
            cpu: Some(0),
            pid: Some(tid),
            tid: Some(tid),
            synthesized: false,
            body: Body::Namespaces {
                ns: s,
                comm: None,
                cause: None,
            },
        };
        m.observe(&ev).unwrap()
    }

    /// The groups' rows as (depth, label).
    fn rows(t: &Tree) -> Vec<(usize, String)> {
        t.rows()
            .into_iter()
            .filter_map(|(d, r)| match r {
                Row::Group(i) => Some((d, t.groups[i].id.clone())),
                Row::Pod(_) => None,
            })
            .collect()
    }

    #[test]
    fn a_nested_group_whose_parent_is_left_out_is_listed_at_the_top() {
        let mut m = Attributor::new(set([1, 2, 3, 4, 5, 6, 7]));
        let outer = enter(&mut m, 100, &set([1, 2, 3, 14, 5, 16, 7]));
        // Started inside it: its pid namespace's parent is the outer one's.
        m.set_pid_ns_parent(NsLink { dev: 4, ino: 24 }, NsLink { dev: 4, ino: 14 });
        let inner = enter(&mut m, 200, &set([1, 2, 3, 24, 5, 26, 7]));
        let label = |g: GroupId| m.group(g).label.clone();
        let mut t = build(&m, 1, false);
        assert_eq!(rows(&t), [(0, label(outer)), (1, label(inner))]);
        // Narrowed to the inner one (`ps -p`, `top --container`): still listed.
        t.groups.retain(|g| g.gid == inner);
        assert_eq!(rows(&t), [(0, label(inner))]);
    }
}
