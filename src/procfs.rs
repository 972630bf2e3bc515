//! What /proc says about tasks: their namespace links and names, read the way perf
//! synthesizes its start-up records. A task that exits mid-read is not an error: it is left
//! out.

use crate::nsset::NsSet;
use crate::record::{NsLink, NS_KINDS};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// One task as /proc shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcTask {
    /// Process id (thread group id).
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// Command name.
    pub comm: String,
    /// Namespace links in kernel index order; a link /proc would not show is (0, 0).
    pub ns: NsSet,
}

/// The (st_dev, st_ino) of a namespace file, following the magic link to the nsfs inode.
pub fn ns_link(path: &Path) -> Option<NsLink> {
    let m = fs::metadata(path).ok()?;
    Some(NsLink {
        dev: m.dev(),
        ino: m.ino(),
    })
}

/// The links of the task whose /proc directory is `dir` (`/proc/PID/task/TID`). `None` when
/// the task is gone; links that cannot be read (permissions) are (0, 0), as perf writes them.
pub fn read_ns(dir: &Path) -> Option<NsSet> {
    let mut links = [NsLink::default(); 7];
    let mut any = false;
    for (i, kind) in NS_KINDS.iter().enumerate() {
        if let Some(l) = ns_link(&dir.join("ns").join(kind.name())) {
            links[i] = l;
            any = true;
        }
    }
    if !any && !dir.exists() {
        return None;
    }
    Some(NsSet::from_links(links))
}

/// Reads one task of `proc_root` (normally /proc).
pub fn read_task(proc_root: &Path, pid: u32, tid: u32) -> Option<ProcTask> {
    let dir = proc_root
        .join(pid.to_string())
        .join("task")
        .join(tid.to_string());
    let ns = read_ns(&dir)?;
    let comm = fs::read_to_string(dir.join("comm")).ok()?;
    Some(ProcTask {
        pid,
        tid,
        comm: comm.trim_end_matches('\n').to_string(),
        ns,
    })
}

fn numeric_entries(dir: &Path) -> Vec<u32> {
    let Ok(rd) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<u32> = rd
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    v.sort_unstable();
    v
}

/// Every thread of every process in `proc_root`, in pid order. Tasks that exit during the
/// scan are left out.
pub fn scan(proc_root: &Path) -> Vec<ProcTask> {
    let mut out = Vec::new();
    for pid in numeric_entries(proc_root) {
        for tid in numeric_entries(&proc_root.join(pid.to_string()).join("task")) {
            if let Some(t) = read_task(proc_root, pid, tid) {
                out.push(t);
            }
        }
    }
    out
}

/// The host's namespace set: PID 1's where /proc/1/ns is readable, else kthreadd's (PID 2),
/// since kernel threads always run in the initial namespaces. Returns the pid used.
pub fn host_set(proc_root: &Path) -> Option<(u32, NsSet)> {
    for pid in [1, 2] {
        if let Some(ns) = read_ns(&proc_root.join(pid.to_string())) {
            if !ns.is_unknown() && ns.links().iter().all(|l| l.ino != 0) {
                return Some((pid, ns));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_task() {
        let me = std::process::id();
        let t = read_task(Path::new("/proc"), me, me).expect("own task");
        assert_eq!(t.pid, me);
        assert!(!t.comm.is_empty());
        let net = ns_link(Path::new("/proc/self/ns/net")).unwrap();
        assert_eq!(t.ns.links()[0], net);
        assert!(scan(Path::new("/proc")).iter().any(|t| t.tid == me));
    }

    #[test]
    fn a_missing_task_is_none() {
        assert_eq!(read_task(Path::new("/proc"), u32::MAX, u32::MAX), None);
    }
}
