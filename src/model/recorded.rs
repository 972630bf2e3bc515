//! Naming from what a perf.data file kept: its CGROUP records (a cgroup id and its path,
//! written when a cgroup is made and synthesized by perf for those that existed) and its
//! samples' cgroup ids (PERF_SAMPLE_CGROUP), as `perf record --all-cgroups` writes them.
//! A sample says which cgroup its task was in; the path, through [`cgroup::name_path`],
//! names the task's group as /proc/PID/cgroup does live (`census::read_naming`).

use crate::model::cgroup;
use crate::model::{Attributor, GroupId, Naming};
use hashbrown::{HashMap, HashSet};

/// The naming of a group whose task is in the cgroup at `path`.
pub fn naming_of_path(path: &str) -> Naming {
    let c = cgroup::name_path(path);
    let mut naming = Naming {
        cgroup: Some(c.path.clone()),
        pod_uid: c.pod_uid.clone(),
        ..Naming::default()
    };
    if c.is_container() {
        naming.runtime = c.runtime.map(|r| r.as_str().to_string());
        naming.runtime_id = c.id.clone();
        naming.name = c.id.clone();
    }
    naming
}

/// Cgroup paths by id, and the groups named from them.
#[derive(Debug, Default)]
pub struct CgroupNames {
    paths: HashMap<u64, String>,
    /// Groups already named (or found to be in a cgroup that names nothing): a group is
    /// named once, from the first sample of it whose cgroup is known.
    done: HashSet<GroupId>,
}

impl CgroupNames {
    /// None known.
    pub fn new() -> Self {
        Self::default()
    }

    /// A CGROUP record: `id` is the cgroup at `path`.
    pub fn cgroup(&mut self, id: u64, path: &str) {
        self.paths.insert(id, path.to_string());
    }

    /// The path of cgroup `id`, once its record was read.
    pub fn path(&self, id: u64) -> Option<&str> {
        self.paths.get(&id).map(String::as_str)
    }

    /// A sample of task `tid` (of process `pid`) at `time_ns` taken in cgroup `id`: names
    /// the task's group from that cgroup's path if it is not named yet. The host is not
    /// named (its tasks sit in every host cgroup). Returns the group named.
    pub fn sample(
        &mut self,
        model: &mut Attributor,
        pid: u32,
        tid: u32,
        time_ns: u64,
        id: u64,
    ) -> Option<GroupId> {
        let g = model.task_at(pid, tid, time_ns)?.1.group;
        if g == GroupId::HOST || self.done.contains(&g) {
            return None;
        }
        let path = self.paths.get(&id)?;
        self.done.insert(g);
        let naming = naming_of_path(path);
        // A group named from a recording's own announcement keeps it.
        if model.group(g).naming.cgroup.is_some() {
            return None;
        }
        model.set_naming(g, naming);
        Some(g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Body, Event};
    use crate::nsset::NsSet;
    use crate::record::NsLink;

    #[test]
    fn a_sample_names_its_tasks_group_from_its_cgroups_path() {
        let link = |ino| NsLink { dev: 4, ino };
        let mut m = Attributor::new(NsSet::from_links((1..=7).map(link)));
        let ct = NsSet::from_links([10, 2, 3, 14, 5, 16, 7].map(link));
        let ev = Event {
            time_ns: Some(5),
            cpu: Some(1),
            pid: Some(42),
            tid: Some(42),
            synthesized: false,
            body: Body::Namespaces {
                ns: &ct,
                comm: None,
                cause: None,
            },
        };
        let g = m.observe(&ev).unwrap();
        let hex = "5eed".repeat(16);
        let mut names = CgroupNames::new();
        names.cgroup(272, &format!("/docker/{hex}"));
        names.cgroup(1, "/");
        // The host's samples name nothing; a sample of an unknown cgroup neither.
        assert_eq!(names.sample(&mut m, 1, 1, 6, 1), None);
        assert_eq!(names.sample(&mut m, 42, 42, 6, 999), None);
        assert_eq!(names.sample(&mut m, 42, 42, 6, 272), Some(g));
        let n = &m.group(g).naming;
        assert_eq!(n.runtime.as_deref(), Some("docker"));
        assert_eq!(n.runtime_id.as_deref(), Some(hex.as_str()));
        assert_eq!(n.cgroup.as_deref(), Some(format!("/docker/{hex}").as_str()));
        // Once.
        assert_eq!(names.sample(&mut m, 42, 42, 7, 272), None);
    }
}
