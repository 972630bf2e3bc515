//! What /proc says about groups: builds an [`Attributor`] from a scan of every task, and
//! names the groups it finds (cgroup path, the tool that made them, named network
//! namespaces). The I/O half of the model: `nswatch ps`, the live bootstrap and
//! [`crate::session`] use it; the model itself stays pure.

use crate::model::cgroup;
use crate::model::{Attributor, GroupId, Kind, Naming, TaskSnapshot};
use crate::nsset::NsSet;
use crate::procfs::{self, ProcTask};
use crate::record::{NsKind, NsLink};
use anyhow::{anyhow, Result};
use std::fs;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// `NS_GET_PARENT` from linux/nsfs.h: `_IO(0xb7, 0x2)`.
const NS_GET_PARENT: libc::c_ulong = 0xb702;

/// Where a scan's tasks came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The BPF task iterator ([`crate::bpf::iter`]).
    Iterator,
    /// /proc ([`procfs::scan`]); `why` says why not the iterator, unless it was not asked for.
    Proc {
        /// Why the iterator could not run.
        why: Option<String>,
    },
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Iterator => f.write_str("bpf task iterator"),
            Source::Proc { why: None } => f.write_str("/proc"),
            Source::Proc { why: Some(w) } => write!(f, "/proc (no bpf: {w})"),
        }
    }
}

/// Every task of the machine: through the BPF task iterator when `bpf` is true and it can
/// run (root or CAP_BPF and CAP_PERFMON, kernel BTF, Linux 5.8), else from /proc, quietly;
/// the [`Source`] says which. A `proc_root` other than /proc is always read as such: it is
/// not this kernel's view (tests, chroots).
pub fn scan_tasks(proc_root: &Path, bpf: bool) -> (Vec<ProcTask>, Source) {
    let why = if !bpf {
        None
    } else if proc_root != Path::new("/proc") {
        Some(format!("{} is not /proc", proc_root.display()))
    } else {
        match crate::bpf::iter::scan_tasks() {
            Ok(tasks) => return (tasks, Source::Iterator),
            Err(e) => Some(e.to_string()),
        }
    };
    (procfs::scan(proc_root), Source::Proc { why })
}

/// A model of the machine as it is now.
pub struct Census {
    /// The model, every live task in it whose namespaces could be read.
    pub model: Attributor,
    /// Which pid the host set was read from: 1, or 2 when /proc/1/ns is unreadable, or
    /// nswatch's own when neither is ([`Census::host_is_own`]).
    pub host_pid: u32,
    /// True when the host set is nswatch's own namespaces: neither pid 1's nor pid 2's
    /// could be read (a user without CAP_SYS_PTRACE, and no task iterator).
    pub host_is_own: bool,
    /// Tasks scanned.
    pub tasks: usize,
    /// Tasks scanned whose namespaces could not be read (other users' tasks, for a user
    /// without CAP_SYS_PTRACE when the task iterator cannot run): left out of the model,
    /// for a task whose namespaces are unknown is in no group, the host's least of all.
    pub unreadable: usize,
    /// Where they were read from.
    pub source: Source,
}

/// Scans the machine at event time `time_ns` ([`scan_tasks`], `proc_root` normally /proc)
/// and builds the model.
pub fn take(proc_root: &Path, time_ns: u64) -> Result<Census> {
    take_with(proc_root, time_ns, true)
}

/// [`take`], through the BPF task iterator only if `bpf` is true.
pub fn take_with(proc_root: &Path, time_ns: u64, bpf: bool) -> Result<Census> {
    let (tasks, source) = scan_tasks(proc_root, bpf);
    let (host_pid, host, host_is_own) = host_of(proc_root, &tasks).ok_or_else(|| {
        anyhow!(
            "cannot read the host's namespaces from {0}/1/ns, {0}/2/ns nor {0}/self/ns",
            proc_root.display()
        )
    })?;
    let mut model = Attributor::new(host);
    let unreadable = feed(&mut model, proc_root, time_ns, &tasks);
    Ok(Census {
        model,
        host_pid,
        host_is_own,
        tasks: tasks.len(),
        unreadable,
        source,
    })
}

/// The host's namespace set: pid 1's (or kthreadd's) from /proc ([`procfs::host_set`]),
/// else from the scanned `tasks` (the task iterator reads every task's, /proc only those
/// ptrace rules let it), else nswatch's own, with `true`: what the user can see is then
/// told apart from where nswatch runs, as `lsns` does.
pub fn host_of(proc_root: &Path, tasks: &[ProcTask]) -> Option<(u32, NsSet, bool)> {
    let known = |ns: &NsSet| ns.links().iter().all(|l| l.ino != 0);
    if let Some((pid, ns)) = procfs::host_set(proc_root) {
        return Some((pid, ns, false));
    }
    for pid in [1, 2] {
        if let Some(t) = tasks.iter().find(|t| t.tid == pid && known(&t.ns)) {
            return Some((pid, t.ns, false));
        }
    }
    let own = procfs::read_ns(&proc_root.join("self")).filter(known)?;
    Some((std::process::id(), own, true))
}

/// Adds scanned tasks to `model`, then settles origins and names every group that has none.
/// Tasks whose namespaces could not be read ([`NsSet::is_unknown`]) are left out, as
/// they cannot be placed: returns how many.
pub fn feed(model: &mut Attributor, proc_root: &Path, time_ns: u64, tasks: &[ProcTask]) -> usize {
    let host_pid_ns = model.host().get(NsKind::Pid);
    let mut unreadable = 0;
    for t in tasks {
        if t.ns.is_unknown() {
            unreadable += 1;
            continue;
        }
        // NSpid only differs from the host pid inside another pid namespace; the iterator
        // gives it, /proc only in one more file.
        let nspid = if t.nspid != 0 {
            t.nspid
        } else if t.ns.get(NsKind::Pid) == host_pid_ns {
            t.tid
        } else {
            procfs::read_nspid(proc_root, t.pid, t.tid).unwrap_or(0)
        };
        model.add_snapshot(
            time_ns,
            &TaskSnapshot {
                pid: t.pid,
                tid: t.tid,
                ppid: t.ppid,
                nspid,
                start_time: t.start_time,
                comm: &t.comm,
                ns: t.ns,
            },
        );
    }
    model.settle_origins();
    let unnamed: Vec<GroupId> = model
        .groups()
        .iter()
        .filter(|g| g.is_live() && g.kind != Kind::Host && g.naming == Naming::default())
        .map(|g| g.id)
        .collect();
    let netns = named_netns(Path::new("/run/netns"));
    for g in unnamed {
        name_group(model, proc_root, g, &netns);
    }
    unreadable
}

/// Names group `id` from its leader's cgroup path, the tool that created it, or the named
/// network namespace it uses; records its pid namespace's parent for nesting.
pub fn name_group(
    model: &mut Attributor,
    proc_root: &Path,
    id: GroupId,
    netns: &[(String, NsLink)],
) {
    let g = model.group(id);
    let leader = model.task(g.leader).map_or(g.leader, |t| t.pid);
    let pid_link = g.key.get(NsKind::Pid).filter(|l| l.ino != 0);
    let naming = read_naming(
        proc_root,
        leader,
        g.creator.as_deref(),
        model.group_net(id),
        netns,
        in_private_cgroupns(model),
    );
    model.set_naming(id, naming);
    if let Some(child) = pid_link {
        if let Some(parent) = pid_ns_parent(proc_root, leader) {
            model.set_pid_ns_parent(child, parent);
        }
    }
}

/// What process `pid`, the first of a group, is called: from its cgroup path, else the
/// command that created the group (`creator`), and the named network namespace (`netns`)
/// its network namespace `net` is. Reads /proc while the process lives; `private_cgroupns`
/// says whether nswatch's own cgroup namespace hides the paths (see [`in_private_cgroupns`]).
pub fn read_naming(
    proc_root: &Path,
    pid: u32,
    creator: Option<&str>,
    net: Option<NsLink>,
    netns: &[(String, NsLink)],
    private_cgroupns: bool,
) -> Naming {
    let mut naming = Naming::default();
    let text = procfs::read_cgroup(proc_root, pid)
        // A zombie reads as the root cgroup: it is gone, and what was read of it while it
        // lived (the session's early names) is what it was.
        .filter(|t| !procfs::is_zombie(proc_root, pid) || !all_root(t));
    if let Some(text) = text {
        name_from_cgroup(&mut naming, &text, private_cgroupns);
    }
    // Where the cgroup names no runtime, a named network namespace does (`ip netns`, or
    // one given a name later with `ip netns attach`), else the tool that made the group.
    if naming.runtime.is_none() {
        if let Some((name, _)) = net.and_then(|n| netns.iter().find(|(_, l)| *l == n)) {
            naming.runtime = Some("ip-netns".to_string());
            naming.runtime_id = Some(name.clone());
            naming.name = Some(name.clone());
        } else if let Some(tool) = creator.and_then(tool_runtime) {
            naming.runtime = Some(tool.to_string());
        }
    }
    crate::runtime_state::refine(proc_root, pid, &mut naming);
    naming
}

/// Names from a /proc/PID/cgroup text: the first path that names a runtime, and the path.
fn name_from_cgroup(naming: &mut Naming, text: &str, private_cgroupns: bool) {
    let Some(mut c) = cgroup::parse_proc_cgroup(text) else {
        return;
    };
    // In a private cgroup namespace every path reads "/": that hides the path, it is not
    // the root cgroup.
    if private_cgroupns {
        c = c.in_private_cgroupns();
    }
    naming.cgroup = Some(c.path.clone());
    if c.is_container() {
        naming.runtime = c.runtime.map(|r| r.as_str().to_string());
        naming.runtime_id = c.id.clone();
        naming.name = c.id.clone();
    }
    naming.pod_uid = c.pod_uid.clone();
}

/// True when every line of a /proc/PID/cgroup text is the root cgroup.
fn all_root(text: &str) -> bool {
    text.lines().all(|l| l.rsplit(':').next() == Some("/"))
}

/// What the cgroup (v2) of id `id` names, found by its id alone (see [`cgroup_path`]): for
/// a task gone before its /proc files could be read, whose cgroup the eBPF probe took.
pub fn naming_of_cgroup(id: u64) -> Option<Naming> {
    let path = cgroup_path(id)?;
    let mut naming = Naming::default();
    name_from_cgroup(&mut naming, &format!("0::{path}\n"), false);
    Some(naming)
}

/// The path of cgroup `id` in the cgroup v2 hierarchy, as a `0::` line of /proc/PID/cgroup
/// gives it: the cgroup file system hands out file handles holding the id
/// (`FILEID_KERNFS`), so it is opened by handle and its path read back from /proc/self/fd.
/// Needs CAP_DAC_READ_SEARCH (raised for this open alone when permitted); `None` once the cgroup is removed, or without a v2 mount.
pub fn cgroup_path(id: u64) -> Option<String> {
    /// statfs's f_type of cgroup2.
    const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
    /// The handle type of kernfs (cgroup) file handles.
    const FILEID_KERNFS: i32 = 0xfe;
    #[repr(C)]
    struct KernfsHandle {
        bytes: u32,
        kind: i32,
        id: u64,
    }
    let mount = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
        .into_iter()
        .map(Path::new)
        .find(|p| {
            let Ok(c) = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()) else {
                return false;
            };
            // SAFETY: statfs is plain data; a NUL-terminated path and a buffer of its type.
            let mut st: libc::statfs = unsafe { std::mem::zeroed() };
            let ok = unsafe { libc::statfs(c.as_ptr(), &mut st) } == 0;
            ok && st.f_type as i64 == CGROUP2_SUPER_MAGIC
        })?;
    let dir = fs::File::open(mount).ok()?;
    let mut handle = KernfsHandle {
        bytes: 8,
        kind: FILEID_KERNFS,
        id,
    };
    // A user given CAP_DAC_READ_SEARCH has it only here: the handle is nswatch's, its
    // target a cgroup directory (see crate::privilege).
    let fd = crate::privilege::with_capability(crate::privilege::CAP_DAC_READ_SEARCH, || {
        // SAFETY: `dir` is an open directory on the cgroup2 mount; the handle is a
        // `struct file_handle` header followed by its 8 bytes of id, as the kernel reads it.
        unsafe {
            libc::open_by_handle_at(
                dir.as_raw_fd(),
                (&mut handle as *mut KernfsHandle).cast(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        }
    });
    if fd < 0 {
        return None;
    }
    // SAFETY: fd was just returned by open_by_handle_at and is owned by nothing else.
    let opened = unsafe { OwnedFd::from_raw_fd(fd) };
    let target = fs::read_link(format!("/proc/self/fd/{}", opened.as_raw_fd())).ok()?;
    let rel = target.strip_prefix(mount).ok()?;
    Some(format!("/{}", rel.display()))
}

/// True when nswatch runs in a cgroup namespace other than the host's.
pub fn in_private_cgroupns(model: &Attributor) -> bool {
    let own = procfs::ns_link(Path::new("/proc/self/ns/cgroup"));
    own.is_some() && own != model.host().get(NsKind::Cgroup)
}

/// The runtime a creating command names, for tools that leave no cgroup behind.
fn tool_runtime(comm: &str) -> Option<&'static str> {
    Some(match comm {
        "bwrap" => "bubblewrap",
        "firejail" => "firejail",
        "ip" => "ip-netns",
        "unshare" => "unshare",
        "nsenter" => "nsenter",
        "systemd-nspawn" => "nspawn",
        "lxc-start" => "lxc",
        c if c.starts_with("runc") => "runc",
        c if c.starts_with("crun") => "crun",
        _ => return None,
    })
}

/// Named network namespaces (`ip netns add NAME` bind-mounts them in /run/netns).
pub fn named_netns(dir: &Path) -> Vec<(String, NsLink)> {
    let Ok(rd) = fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.filter_map(|e| {
        let e = e.ok()?;
        let m = fs::metadata(e.path()).ok()?;
        let link = NsLink {
            dev: m.dev(),
            ino: m.ino(),
        };
        Some((e.file_name().to_str()?.to_string(), link))
    })
    .collect()
}

/// The parent of process `pid`'s pid namespace (NS_GET_PARENT), when the kernel lets us see
/// it (EPERM once it is outside our own).
pub fn pid_ns_parent(proc_root: &Path, pid: u32) -> Option<NsLink> {
    let f = fs::File::open(proc_root.join(format!("{pid}/ns/pid"))).ok()?;
    // SAFETY: f is an open nsfs file; NS_GET_PARENT takes no argument and returns a new fd.
    let fd = unsafe { libc::ioctl(f.as_raw_fd(), NS_GET_PARENT) };
    if fd < 0 {
        return None;
    }
    // SAFETY: fd was just returned by the ioctl and is owned by nothing else.
    let parent = fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let m = parent.metadata().ok()?;
    Some(NsLink {
        dev: m.dev(),
        ino: m.ino(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cgroup_is_found_by_its_id() {
        let root = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
            .into_iter()
            .map(Path::new)
            .find(|p| p.join("cgroup.procs").exists());
        let name = format!("nswatch-id-test-{}", std::process::id());
        let Some(dir) = root.map(|r| r.join(&name)) else {
            eprintln!("SKIP a_cgroup_is_found_by_its_id: no cgroup v2 mount");
            return;
        };
        if let Err(e) = fs::create_dir(&dir) {
            eprintln!(
                "SKIP a_cgroup_is_found_by_its_id: mkdir {}: {e}",
                dir.display()
            );
            return;
        }
        // A kernfs node's inode number is its id on 64-bit machines.
        let id = fs::metadata(&dir).unwrap().ino();
        let path = cgroup_path(id);
        fs::remove_dir(&dir).unwrap();
        assert_eq!(path.as_deref(), Some(format!("/{name}").as_str()));
        assert_eq!(cgroup_path(id), None, "removed");
        let docker = "/docker/5eed".to_string();
        let mut naming = Naming::default();
        name_from_cgroup(&mut naming, &format!("0::{docker}\n"), false);
        assert_eq!(naming.cgroup, Some(docker));
    }

    /// A user given CAP_DAC_READ_SEARCH has it permitted, not effective
    /// ([`crate::privilege::drop_file_overrides`]): the lookup by id raises it for itself.
    #[test]
    fn a_cgroup_is_found_with_dac_read_search_permitted_only() {
        use crate::privilege::{Caps, CAP_DAC_READ_SEARCH};
        let before = Caps::current().unwrap();
        let root = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
            .into_iter()
            .map(Path::new)
            .find(|p| p.join("cgroup.procs").exists());
        let Some(dir) = root.map(|r| r.join(format!("nswatch-cap-test-{}", std::process::id())))
        else {
            eprintln!("SKIP a_cgroup_is_found_with_dac_read_search_permitted_only: no cgroup v2");
            return;
        };
        if !before.has(CAP_DAC_READ_SEARCH) || fs::create_dir(&dir).is_err() {
            eprintln!("SKIP a_cgroup_is_found_with_dac_read_search_permitted_only: not root");
            return;
        }
        let id = fs::metadata(&dir).unwrap().ino();
        // This test's thread alone: capabilities are per thread.
        let lowered = Caps {
            effective: before.effective & !(1 << CAP_DAC_READ_SEARCH),
            ..before
        };
        lowered.apply().unwrap();
        let path = cgroup_path(id);
        let after = Caps::current().unwrap();
        before.apply().unwrap();
        fs::remove_dir(&dir).unwrap();
        assert_eq!(after, lowered, "lowered again after the lookup");
        let name = dir.file_name().unwrap().to_str().unwrap();
        assert_eq!(path, Some(format!("/{name}")));
    }

    #[test]
    fn this_machine_has_a_host_with_this_process_in_it() {
        let c = take(Path::new("/proc"), 0).unwrap();
        let me = std::process::id();
        let a = c.model.attribute(me, me, 0).expect("this test's task");
        let host_net = c.model.host().get(NsKind::Net);
        let my_net = procfs::ns_link(Path::new("/proc/self/ns/net"));
        if host_net == my_net {
            assert_eq!(a.group, GroupId::HOST);
        }
        assert!(c.tasks > 1);
        assert_eq!(c.model.live_tasks(), c.tasks - c.unreadable);
    }

    fn task(tid: u32, ino: u64) -> ProcTask {
        ProcTask {
            pid: tid,
            tid,
            ppid: 0,
            start_time: 0,
            comm: "t".into(),
            ns: NsSet::from_links(
                [NsLink {
                    dev: 4 * ino.min(1),
                    ino,
                }; 7],
            ),
            nspid: 0,
        }
    }

    #[test]
    fn tasks_whose_namespaces_are_unknown_are_in_no_group() {
        let mut model = Attributor::new(task(1, 100).ns);
        let tasks = [task(1, 100), task(2, 0), task(3, 200)];
        assert!(tasks[1].ns.is_unknown());
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(feed(&mut model, empty.path(), 0, &tasks), 1);
        assert_eq!(model.live_tasks(), 2);
        assert_eq!(model.current(1).map(|iv| iv.group), Some(GroupId::HOST));
        assert_eq!(model.current(2), None, "unknown is not the host");
        assert_ne!(model.current(3).map(|iv| iv.group), Some(GroupId::HOST));
    }

    #[test]
    fn the_host_comes_from_the_scan_when_proc_hides_it() {
        let empty = tempfile::tempdir().unwrap();
        let scanned = [task(1, 0), task(2, 100), task(7, 200)];
        let (pid, host, own) = host_of(empty.path(), &scanned).unwrap();
        assert_eq!((pid, host, own), (2, task(2, 100).ns, false));
        // Nothing readable, and no self in a directory that is not /proc.
        assert_eq!(host_of(empty.path(), &scanned[..1]), None);
        // /proc's own, when pid 1's and 2's are nowhere.
        let proc_root = Path::new("/proc");
        if procfs::host_set(proc_root).is_none() {
            let (pid, _, own) = host_of(proc_root, &[]).unwrap();
            assert_eq!((pid, own), (std::process::id(), true));
        }
    }

    #[test]
    fn tools_name_their_sandboxes() {
        assert_eq!(tool_runtime("bwrap"), Some("bubblewrap"));
        assert_eq!(tool_runtime("runc:[2:INIT]"), Some("runc"));
        assert_eq!(tool_runtime("bash"), None);
    }
}
