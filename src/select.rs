//! What a user asked to see: `-p/--pid`, `--comm` and `--container` of `record`,
//! `report` and `export`, decided on the model's view of each event and group.

use crate::event::{Body, Event};
use crate::model::{Attributor, Group, GroupId};

/// A group named on the command line (`--container NAME|ID`), as `docker` takes one: its
/// label (`ct-4026532300`, `host`), its name (`web`, a pod's `POD`), its runtime's id, or
/// the start of that id when at least 12 characters long (docker's short ids).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerQuery(String);

/// Shortest prefix of a runtime id that names it (docker's short id).
pub const MIN_ID_PREFIX: usize = 12;

impl ContainerQuery {
    /// The query `s`.
    pub fn new(s: &str) -> ContainerQuery {
        ContainerQuery(s.to_string())
    }

    /// What was asked for.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when `g` itself is the group asked for.
    pub fn names(&self, g: &Group) -> bool {
        let q = self.0.as_str();
        let n = &g.naming;
        g.label == q
            || n.name.as_deref() == Some(q)
            || n.runtime_id
                .as_deref()
                .is_some_and(|id| id == q || (q.len() >= MIN_ID_PREFIX && id.starts_with(q)))
    }

    /// True when `g`, or a container it is nested in ([`Attributor::parent_of`]), is the
    /// group asked for: what runs in a container started inside it is part of it.
    pub fn selects(&self, model: &Attributor, g: GroupId) -> bool {
        let mut at = Some(g);
        // Nesting is a few levels deep; the bound keeps a cycle from looping.
        for _ in 0..32 {
            let Some(id) = at else { return false };
            if self.names(model.group(id)) {
                return true;
            }
            at = model.parent_of(id);
        }
        false
    }

    /// The groups of `model` (live or ended) that [`ContainerQuery::names`].
    pub fn matches<'m>(&self, model: &'m Attributor) -> Vec<&'m Group> {
        model.groups().iter().filter(|g| self.names(g)).collect()
    }
}

/// Which events to keep: those of the processes in `pids`, of tasks named one of `comms`,
/// of tasks in the `container` (each, when given). LOST notices always pass.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Process ids (`-p 1,2`); empty: any.
    pub pids: Vec<u32>,
    /// Command names (`--comm`); empty: any.
    pub comms: Vec<String>,
    /// A group and those nested in it (`--container`).
    pub container: Option<ContainerQuery>,
    /// Which of `pids` an event was seen of.
    seen_pids: Vec<bool>,
    /// Whether an event of the container was seen.
    seen_container: bool,
}

impl Selection {
    /// A selection of these.
    pub fn new(pids: Vec<u32>, comms: Vec<String>, container: Option<&str>) -> Selection {
        Selection {
            seen_pids: vec![false; pids.len()],
            pids,
            comms,
            container: container.map(ContainerQuery::new),
            seen_container: false,
        }
    }

    /// True when everything is kept.
    pub fn is_all(&self) -> bool {
        self.pids.is_empty() && self.comms.is_empty() && self.container.is_none()
    }

    /// True when `ev`, which the model put in `group`, is to be kept. Call it after the
    /// model observed the event.
    pub fn keep(&mut self, model: &Attributor, ev: &Event<'_>, group: Option<GroupId>) -> bool {
        if matches!(ev.body, Body::Lost { .. } | Body::NsSyscallLost { .. }) {
            return true;
        }
        if !self.pids.is_empty() {
            let Some(i) = ev.pid.and_then(|p| self.pids.iter().position(|&x| x == p)) else {
                return false;
            };
            self.seen_pids[i] = true;
        }
        if let Some(q) = &self.container {
            if !group.is_some_and(|g| q.selects(model, g)) {
                return false;
            }
            self.seen_container = true;
        }
        if !self.comms.is_empty() {
            let name = match &ev.body {
                Body::Comm { comm, .. } => Some(&**comm),
                Body::NsSyscall { call } => Some(call.comm.as_str()),
                // An EXIT's task has just ended: it is found among the ended ones.
                _ => ev.tid.and_then(|tid| {
                    let time = ev.time_ns.unwrap_or(model.now_ns());
                    model.task_at(0, tid, time).map(|(t, _)| t.comm())
                }),
            };
            return name.is_some_and(|n| self.comms.iter().any(|c| c == n));
        }
        true
    }

    /// True when the start, exit or rename of group `g` is to be kept: the group is the
    /// container asked for (or nested in it), and the task that started it would be kept.
    pub fn keep_group(&self, model: &Attributor, g: GroupId) -> bool {
        if let Some(q) = &self.container {
            if !q.selects(model, g) {
                return false;
            }
        }
        let leader = model.group(g).leader;
        let task = model.task(leader);
        (self.pids.is_empty() || self.pids.contains(&task.map_or(leader, |t| t.pid)))
            && (self.comms.is_empty()
                || task.is_some_and(|t| self.comms.iter().any(|c| c == t.comm())))
    }

    /// True when a task of process `pid` in group `g` is shown: in the container asked
    /// for (or nested in it), one of the pids asked for (command names aside: a track is
    /// a task's stay in a group, whatever it is called).
    pub fn shows(&self, model: &Attributor, g: GroupId, pid: u32) -> bool {
        self.container.as_ref().is_none_or(|q| q.selects(model, g))
            && (self.pids.is_empty() || self.pids.contains(&pid))
    }

    /// The pids asked for that no kept event was of.
    pub fn unseen_pids(&self) -> Vec<u32> {
        self.pids
            .iter()
            .zip(&self.seen_pids)
            .filter(|(_, s)| !**s)
            .map(|(p, _)| *p)
            .collect()
    }

    /// True when a container was asked for and no event of it was kept.
    pub fn container_unseen(&self) -> bool {
        self.container.is_some() && !self.seen_container
    }

    /// What was asked for and found in no event, as a message for standard error
    /// (`None` when all was found), and whether nothing at all was: a run that found none
    /// of what it was asked for is a failure, as `perf record -p` of a pid that is gone.
    pub fn unseen_report(&self) -> Option<(String, bool)> {
        let pids = self.unseen_pids();
        let mut parts = Vec::new();
        if !pids.is_empty() {
            let list: Vec<String> = pids.iter().map(u32::to_string).collect();
            parts.push(format!("no event of pid {}", list.join(",")));
        }
        if let Some(q) = self.container.as_ref().filter(|_| self.container_unseen()) {
            parts.push(format!(
                "no group named {:?} (a label, a name, a runtime id or its first {MIN_ID_PREFIX}+ characters)",
                q.as_str()
            ));
        }
        if parts.is_empty() {
            return None;
        }
        let none =
            (!self.pids.is_empty() && pids.len() == self.pids.len()) || self.container_unseen();
        Some((parts.join("; "), none))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use crate::model::Naming;
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

    const ID: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn a_container_by_label_name_id_or_long_prefix_with_what_is_nested_in_it() {
        let mut m = Attributor::new(set([1, 2, 3, 4, 5, 6, 7]));
        let outer = enter(&mut m, 100, &set([1, 2, 3, 14, 5, 16, 7]));
        m.set_naming(
            outer,
            Naming {
                name: Some("web".into()),
                runtime_id: Some(ID.into()),
                ..Naming::default()
            },
        );
        // A container started inside it: its pid namespace's parent is the outer one's.
        let inner_pid = NsLink { dev: 4, ino: 24 };
        m.set_pid_ns_parent(inner_pid, NsLink { dev: 4, ino: 14 });
        let inner = enter(&mut m, 200, &set([1, 2, 3, 24, 5, 26, 7]));
        let other = enter(&mut m, 300, &set([1, 2, 3, 34, 5, 36, 7]));
        for q in ["ct-14", "web", ID, &ID[..12]] {
            let q = ContainerQuery::new(q);
            assert!(q.selects(&m, outer), "{q:?}");
            assert!(q.selects(&m, inner), "{q:?} nested");
            assert!(!q.selects(&m, other), "{q:?}");
            assert!(!q.selects(&m, GroupId::HOST), "{q:?}");
        }
        assert!(!ContainerQuery::new(&ID[..11]).selects(&m, outer));
        assert!(!ContainerQuery::new("we").selects(&m, outer));
        // The inner one alone by its own label.
        let q = ContainerQuery::new("ct-24");
        assert!(q.selects(&m, inner) && !q.selects(&m, outer));
    }

    #[test]
    fn pids_found_and_not() {
        let mut m = Attributor::new(set([1, 2, 3, 4, 5, 6, 7]));
        let host = set([1, 2, 3, 4, 5, 6, 7]);
        let g = enter(&mut m, 100, &host);
        let mut s = Selection::new(vec![100, 999], Vec::new(), None);
        let ev = Event {
            time_ns: Some(10),
            cpu: Some(0),
            pid: Some(100),
            tid: Some(100),
            synthesized: false,
            body: Body::Exit { ppid: 1, ptid: 1 },
        };
        assert!(s.keep(&m, &ev, Some(g)));
        assert_eq!(s.unseen_pids(), [999]);
        let (what, none) = s.unseen_report().unwrap();
        assert!(what.contains("999") && !none);
        let s = Selection::new(vec![999], Vec::new(), None);
        assert!(s.unseen_report().unwrap().1);
        assert!(Selection::new(vec![], vec![], None)
            .unseen_report()
            .is_none());
    }
}
