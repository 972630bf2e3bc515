//! The BPF task iterator's bootstrap (src/bpf/iter.rs) against /proc on the live machine:
//! every task both scans saw, and that is still alive after, has the same pid, tid, ppid,
//! start time (to the clock tick), comm, namespace links and NSpid; tasks in namespaces of
//! their own (unshare -p, unshare -n -u, a thread that setns'd) appear with their own links.
//! Needs root and kernel BTF: skips with the reason otherwise, fails under
//! NSWATCH_REQUIRE_LIVE=1.

mod common;
use common::require_live;
use nswatch::bpf::iter;
use nswatch::census::{self, Source};
use nswatch::procfs::{self, ProcTask};
use nswatch::record::NsKind;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn root_ok(what: &str) -> bool {
    let reason = if unsafe { libc::geteuid() } != 0 {
        "not root"
    } else if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        "no kernel BTF at /sys/kernel/btf/vmlinux"
    } else {
        return true;
    };
    assert!(
        !require_live(),
        "{what}: cannot run live ({reason}) and NSWATCH_REQUIRE_LIVE=1"
    );
    eprintln!("SKIP {what}: {reason}");
    false
}

/// Kills its child (and, for unshare -f, the forked payload) when dropped.
struct Held(Child);

impl Drop for Held {
    fn drop(&mut self) {
        let pid = self.0.id();
        for c in children(pid) {
            unsafe { libc::kill(c as i32, libc::SIGKILL) };
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_ascii_whitespace()
        .filter_map(|c| c.parse().ok())
        .collect()
}

/// `unshare ARGS sleep 60`, and the pid of the sleep once it runs in its new namespaces
/// (with -f it is unshare's child; without, unshare itself after exec).
fn unshare(args: &[&str]) -> (Held, u32) {
    let child = Command::new("unshare")
        .args(args)
        .args(["sleep", "60"])
        .spawn()
        .expect("run unshare");
    let held = Held(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let pid = held.0.id();
        let cand = children(pid).into_iter().next().unwrap_or(pid);
        let comm = std::fs::read_to_string(format!("/proc/{cand}/comm")).unwrap_or_default();
        // unshare made its namespaces before it forked or execed sleep.
        if comm.trim() == "sleep" {
            return (held, cand);
        }
        assert!(
            Instant::now() < deadline,
            "unshare {args:?} did not start sleep"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn setns_thread(nsfile: &str) -> (Held, u32, u32, u32) {
    let bin = common::build_c("tests/progs/setns_thread.c");
    let mut child = Command::new(&bin)
        .arg(nsfile)
        .stdout(Stdio::piped())
        .spawn()
        .expect("run setns_thread");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let f: HashMap<&str, u32> = line
        .split_ascii_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k, v.parse().unwrap()))
        .collect();
    assert!(line.starts_with("ready"), "setns_thread said {line:?}");
    (Held(child), f["pid"], f["main"], f["moved"])
}

fn ns_per_tick() -> u64 {
    1_000_000_000 / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64
}

fn alive(t: &ProcTask) -> bool {
    Path::new(&format!("/proc/{}/task/{}", t.pid, t.tid)).exists()
}

/// Whether /proc still saw the task's nsproxy: an exiting task keeps its pid and user links
/// (from its struct pid and credentials) but loses the others.
fn has_nsproxy(t: &ProcTask) -> bool {
    t.ns.get(NsKind::Net).is_some_and(|l| l.ino != 0)
}

/// Kernel threads: /proc names workqueue workers with their work ("kworker/0:1-events")
/// and long-named threads in full, where the task's comm is their first 15 bytes.
fn kernel_thread(t: &ProcTask) -> bool {
    t.pid == 2 || t.ppid == 2
}

/// Differences between the two scans, for tasks in both and alive after.
fn compare(bpf: &[ProcTask], proc: &[ProcTask]) -> (Vec<String>, usize) {
    let by_tid: HashMap<u32, &ProcTask> = bpf.iter().map(|t| (t.tid, t)).collect();
    let tick = ns_per_tick();
    let mut diffs = Vec::new();
    let mut compared = 0;
    for p in proc {
        let Some(b) = by_tid.get(&p.tid) else {
            continue;
        };
        // A tid reused between the scans is another task.
        if b.start_time / tick != p.start_time / tick || !alive(p) {
            continue;
        }
        compared += 1;
        let nspid = procfs::read_nspid(Path::new("/proc"), p.pid, p.tid).unwrap_or(0);
        let comm_ok = if kernel_thread(p) {
            p.comm.starts_with(&b.comm)
        } else {
            p.comm == b.comm
        };
        if (b.pid, b.ppid, b.ns, b.nspid) != (p.pid, p.ppid, p.ns, nspid) || !comm_ok {
            diffs.push(format!(
                "tid {}: iterator {b:?}\n         /proc {p:?} nspid {nspid}",
                p.tid
            ));
        }
    }
    (diffs, compared)
}

#[test]
fn iterator_agrees_with_proc() {
    if !root_ok("iterator_agrees_with_proc") {
        return;
    }
    let (pidns, pidns_sleep) = unshare(&["-m", "-p", "-f", "--mount-proc"]);
    let (_netns, netns_sleep) = unshare(&["-n", "-u"]);
    let nsfile = format!("/proc/{netns_sleep}/ns/net");
    let (_threads, tpid, main_tid, moved_tid) = setns_thread(&nsfile);
    let link = |pid: u32, kind: &str| procfs::ns_link(Path::new(&format!("/proc/{pid}/ns/{kind}")));
    let host = procfs::host_set(Path::new("/proc")).unwrap().1;

    // Tasks come and go (other tests run alongside): a round with a change between the
    // two scans is retried.
    let mut last = Vec::new();
    for round in 1..=5 {
        let mut boot = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut boot) };
        let before = boot.tv_sec as u64 * 1_000_000_000 + boot.tv_nsec as u64;
        let bpf = iter::scan_tasks().expect("the task iterator runs as root with BTF");
        let proc = procfs::scan(Path::new("/proc"));
        let find = |tid: u32| {
            bpf.iter()
                .find(|t| t.tid == tid)
                .unwrap_or_else(|| panic!("tid {tid} not in the iterator's scan"))
        };

        // Every task /proc shows that started before the iterator ran and was not exiting
        // yet is in the iterator's scan (a task loses its nsproxy once, at exit: one that had
        // it for /proc had it for the iterator before).
        let tids: std::collections::HashSet<u32> = bpf.iter().map(|t| t.tid).collect();
        let missing: Vec<&ProcTask> = proc
            .iter()
            .filter(|p| p.start_time + ns_per_tick() < before && !tids.contains(&p.tid))
            .filter(|p| has_nsproxy(p) && alive(p))
            .collect();
        assert!(
            missing.is_empty(),
            "not in the iterator's scan: {missing:?}"
        );
        assert!(bpf
            .iter()
            .all(|t| t.nspid != 0 && t.ns.links().iter().all(|l| l.ino != 0)));

        // The new pid namespace: its sleep is pid 1 there, with its own pid and mnt links.
        let s = find(pidns_sleep);
        assert_eq!(s.nspid, 1);
        assert_eq!(s.ns.get(NsKind::Pid), link(pidns_sleep, "pid"));
        assert_eq!(s.ns.get(NsKind::Mnt), link(pidns_sleep, "mnt"));
        assert_ne!(s.ns.get(NsKind::Pid), host.get(NsKind::Pid));
        assert_ne!(s.ns.get(NsKind::Mnt), host.get(NsKind::Mnt));
        assert_eq!(s.comm, "sleep");
        // unshare -p -f: the sleep's parent is unshare, in the host's pid namespace.
        assert_eq!(s.ppid, pidns.0.id());
        // net and uts of its own, the rest the host's.
        let n = find(netns_sleep);
        assert_eq!(n.ns.get(NsKind::Net), link(netns_sleep, "net"));
        assert_eq!(n.ns.get(NsKind::Uts), link(netns_sleep, "uts"));
        assert_ne!(n.ns.get(NsKind::Net), host.get(NsKind::Net));
        assert_ne!(n.ns.get(NsKind::Uts), host.get(NsKind::Uts));
        assert_eq!(n.ns.get(NsKind::Mnt), host.get(NsKind::Mnt));
        assert_eq!(n.nspid, netns_sleep);
        // One process, two threads, two network namespaces.
        let (m, t) = (find(main_tid), find(moved_tid));
        assert_eq!((m.pid, t.pid), (tpid, tpid));
        assert_eq!(m.ns.get(NsKind::Net), link(tpid, "net"));
        assert_eq!(t.ns.get(NsKind::Net), n.ns.get(NsKind::Net));
        assert_ne!(t.ns.get(NsKind::Net), m.ns.get(NsKind::Net));
        assert_eq!(t.ns.get(NsKind::Uts), m.ns.get(NsKind::Uts));

        let (diffs, compared) = compare(&bpf, &proc);
        assert!(compared > 10, "only {compared} tasks in both scans");
        eprintln!(
            "round {round}: {compared} tasks in both scans, {} differ",
            diffs.len()
        );
        if diffs.is_empty() {
            // The census takes the iterator's path as root, and the tasks it found there
            // carry their NSpid.
            let c = census::take(Path::new("/proc"), 0).unwrap();
            assert_eq!(c.source, Source::Iterator);
            let nspid = c.model.task(pidns_sleep).map(|t| t.nspid);
            assert_eq!(nspid, Some(1));
            return;
        }
        last = diffs;
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!(
        "the scans differ in every round; last:\n{}",
        last.join("\n")
    );
}

#[test]
fn the_proc_path_stays_when_asked() {
    let c = census::take_with(Path::new("/proc"), 0, false).unwrap();
    assert_eq!(c.source, Source::Proc { why: None });
    assert!(c.tasks > 1);
    let (tasks, source) = census::scan_tasks(Path::new("/proc/self/.."), true);
    assert!(matches!(source, Source::Proc { why: Some(_) }), "{source}");
    assert!(tasks.iter().any(|t| t.tid == std::process::id()));
}

/// One loaded iterator (what a live session keeps, to read the machine again after lost
/// records) walks the tasks of the moment at every scan: a process started between two
/// scans is in the second only, one ended between them in the first only.
#[test]
fn a_loaded_iterator_scans_the_machine_as_it_is_each_time() {
    if !root_ok("a_loaded_iterator_scans_the_machine_as_it_is_each_time") {
        return;
    }
    let it = iter::TaskIter::load().expect("the task iterator loads as root with BTF");
    let mut early = Command::new("sleep").arg("30").spawn().unwrap();
    let first = it.scan().unwrap();
    early.kill().unwrap();
    early.wait().unwrap();
    let mut late = Command::new("sleep").arg("30").spawn().unwrap();
    let second = it.scan().unwrap();
    late.kill().unwrap();
    late.wait().unwrap();
    let has = |scan: &[ProcTask], pid: u32| scan.iter().any(|t| t.pid == pid);
    let me = std::process::id();
    assert!(
        has(&first, me) && has(&second, me),
        "this test's own process"
    );
    assert!(has(&first, early.id()) && !has(&second, early.id()));
    assert!(!has(&first, late.id()) && has(&second, late.id()));
}
