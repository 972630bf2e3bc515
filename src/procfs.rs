//! What /proc says about tasks: their namespace links and names, read the way perf
//! synthesizes its start-up records. A task that exits mid-read is not an error: it is left
//! out.

use crate::nsset::NsSet;
use crate::record::{NsLink, NS_KINDS};
use std::ffi::{CStr, CString};
use std::fs;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// One task as /proc shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcTask {
    /// Process id (thread group id).
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// Parent process id.
    pub ppid: u32,
    /// Start time after boot (including suspend), in ns; orders processes. /proc gives it in
    /// clock ticks, converted here, so that both scans agree to within a tick.
    pub start_time: u64,
    /// Command name.
    pub comm: String,
    /// Namespace links in kernel index order; a link /proc would not show is (0, 0).
    pub ns: NsSet,
    /// Pid in the task's own pid namespace (NSpid's last field); 0 when the scan did not
    /// read it (/proc's scan does not: its status file costs one more read per task).
    pub nspid: u32,
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
    let dir = TaskDir::open(dir)?;
    dir.ns()
}

/// An open /proc task directory: every file below is reached relative to it, so the kernel
/// walks /proc/PID/task/TID once per task instead of once per file (the scan is bound by
/// path lookups, and 10,000 tasks must bootstrap in well under 100 ms).
struct TaskDir(OwnedFd);

impl TaskDir {
    fn open(dir: &Path) -> Option<TaskDir> {
        let c = CString::new(dir.as_os_str().as_bytes()).ok()?;
        // SAFETY: c is a valid NUL-terminated path; the fd is owned by the result.
        let fd = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        // SAFETY: fd was just returned by open and is owned by nothing else.
        (fd >= 0).then(|| TaskDir(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    fn link(&self, name: &CStr) -> Option<NsLink> {
        let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
        // SAFETY: the dirfd is open, name is NUL-terminated, st is written on success.
        let r = unsafe { libc::fstatat(self.0.as_raw_fd(), name.as_ptr(), st.as_mut_ptr(), 0) };
        if r != 0 {
            return None;
        }
        // SAFETY: fstatat returned 0, so st is initialised.
        let st = unsafe { st.assume_init() };
        Some(NsLink {
            dev: st.st_dev,
            ino: st.st_ino,
        })
    }

    fn ns(&self) -> Option<NsSet> {
        const NAMES: [&CStr; 7] = [
            c"ns/net",
            c"ns/uts",
            c"ns/ipc",
            c"ns/pid",
            c"ns/user",
            c"ns/mnt",
            c"ns/cgroup",
        ];
        debug_assert!(NAMES
            .iter()
            .zip(NS_KINDS)
            .all(|(n, k)| n.to_bytes().ends_with(k.name().as_bytes())));
        let mut links = [NsLink::default(); 7];
        for (l, name) in links.iter_mut().zip(NAMES) {
            if let Some(x) = self.link(name) {
                *l = x;
            }
        }
        Some(NsSet::from_links(links))
    }

    fn read(&self, name: &CStr, buf: &mut Vec<u8>) -> Option<()> {
        // SAFETY: the dirfd is open, name is NUL-terminated; the new fd is owned below.
        let fd = unsafe {
            libc::openat(
                self.0.as_raw_fd(),
                name.as_ptr(),
                libc::O_RDONLY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return None;
        }
        // SAFETY: fd was just returned by openat.
        let mut f = fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        buf.clear();
        f.read_to_end(buf).ok()?;
        Some(())
    }
}

/// Fields of /proc/…/stat: (comm, ppid, starttime). The comm sits in parentheses and may
/// itself hold ") ", so the rest is parsed from the last ')'.
fn parse_stat(stat: &[u8]) -> Option<(&str, u32, u64)> {
    let open = stat.iter().position(|&b| b == b'(')?;
    let close = stat.iter().rposition(|&b| b == b')')?;
    let comm = std::str::from_utf8(stat.get(open + 1..close)?).ok()?;
    let rest = std::str::from_utf8(stat.get(close + 1..)?).ok()?;
    let mut f = rest.split_ascii_whitespace();
    // rest starts at field 3 (state): ppid is field 4, starttime field 22.
    let ppid = f.nth(1)?.parse().ok()?;
    let start = f.nth(17)?.parse().ok()?;
    Some((comm, ppid, start))
}

/// Nanoseconds per clock tick (USER_HZ), the unit of /proc's start times.
fn ns_per_tick() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    1_000_000_000 / u64::try_from(hz).ok().filter(|&h| h > 0).unwrap_or(100)
}

/// Reads one task of `proc_root` (normally /proc).
pub fn read_task(proc_root: &Path, pid: u32, tid: u32) -> Option<ProcTask> {
    let mut buf = Vec::with_capacity(512);
    read_task_with(proc_root, pid, tid, &mut buf)
}

fn read_task_with(proc_root: &Path, pid: u32, tid: u32, buf: &mut Vec<u8>) -> Option<ProcTask> {
    let dir = TaskDir::open(&proc_root.join(format!("{pid}/task/{tid}")))?;
    let ns = dir.ns()?;
    dir.read(c"stat", buf)?;
    let (comm, ppid, ticks) = parse_stat(buf)?;
    Some(ProcTask {
        pid,
        tid,
        ppid,
        start_time: ticks.saturating_mul(ns_per_tick()),
        comm: comm.to_string(),
        ns,
        nspid: 0,
    })
}

/// The pid of task `tid` in its own pid namespace (the last field of NSpid in
/// /proc/PID/task/TID/status), when the kernel shows it.
pub fn read_nspid(proc_root: &Path, pid: u32, tid: u32) -> Option<u32> {
    let s = fs::read_to_string(proc_root.join(format!("{pid}/task/{tid}/status"))).ok()?;
    let line = s.lines().find_map(|l| l.strip_prefix("NSpid:"))?;
    line.split_ascii_whitespace().last()?.parse().ok()
}

/// The text of /proc/PID/cgroup (one line per hierarchy), or `None` when the task is gone.
pub fn read_cgroup(proc_root: &Path, pid: u32) -> Option<String> {
    fs::read_to_string(proc_root.join(format!("{pid}/cgroup"))).ok()
}

/// Whether process `pid` has exited but is not yet reaped (a zombie): its entry then shows
/// the root cgroups and no command line, nothing of what it was.
pub fn is_zombie(proc_root: &Path, pid: u32) -> bool {
    let Ok(stat) = fs::read_to_string(proc_root.join(format!("{pid}/stat"))) else {
        return false;
    };
    // comm may hold spaces and parentheses: the state follows the last ')'.
    stat.rfind(')')
        .and_then(|i| stat[i + 1..].split_ascii_whitespace().next())
        .is_some_and(|st| st == "Z" || st == "X")
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
    let mut buf = Vec::with_capacity(512);
    for pid in numeric_entries(proc_root) {
        for tid in numeric_entries(&proc_root.join(pid.to_string()).join("task")) {
            if let Some(t) = read_task_with(proc_root, pid, tid, &mut buf) {
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
    fn a_child_that_exited_unreaped_is_a_zombie() {
        let proc_root = Path::new("/proc");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let t0 = std::time::Instant::now();
        while !is_zombie(proc_root, pid) {
            assert!(t0.elapsed().as_secs() < 10, "{pid} never exited");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(!is_zombie(proc_root, std::process::id()));
        child.wait().unwrap();
        assert!(!is_zombie(proc_root, pid), "reaped: gone, not a zombie");
    }

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
    fn stat_fields_survive_odd_names() {
        let line = b"42 (a) b (c)) S 7 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 12345 1 2 3";
        assert_eq!(parse_stat(line), Some(("a) b (c)", 7, 12345)));
        assert_eq!(parse_stat(b"42 (x"), None);
        assert_eq!(parse_stat(b"42 (x) S"), None);
        let me = std::process::id();
        let t = read_task(Path::new("/proc"), me, me).unwrap();
        assert_eq!(t.ppid, std::os::unix::process::parent_id());
        assert!(t.start_time > 0);
        assert_eq!(read_nspid(Path::new("/proc"), me, me), Some(me));
        assert!(read_cgroup(Path::new("/proc"), me).unwrap().contains("::"));
    }

    #[test]
    fn a_missing_task_is_none() {
        assert_eq!(read_task(Path::new("/proc"), u32::MAX, u32::MAX), None);
    }
}
