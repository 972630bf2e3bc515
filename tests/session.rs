//! The library's live Session, as a profiler embeds it: it keeps the model current, knows
//! the pid of a container's tasks inside their pid namespace, and answers for a task after
//! it exited. Needs root: skips with the reason otherwise, fails under NSWATCH_REQUIRE_LIVE=1.

mod common;
use nswatch::live::monotonic_ns;
use nswatch::model::{ChangeKind, Kind};
use nswatch::session::{Session, SessionOptions, Update};
use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn a_session_follows_a_container_from_start_to_exit() {
    if !common::live_ok("a_session_follows_a_container_from_start_to_exit") {
        return;
    }
    let mut s = Session::start(SessionOptions::default()).unwrap();
    let n = s.bootstrap(|_, _| {}).unwrap();
    assert!(n > 1);
    let mut child = Command::new("unshare")
        .args([
            "-m",
            "-p",
            "-f",
            "--mount-proc",
            "sh",
            "-c",
            "sleep 1.5; exit 0",
        ])
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    let mut starts = Vec::new();
    let mut exits = Vec::new();
    let mut seen = None;
    // The sleep (pid 2 inside) is not its group's first task: its pid inside is read once
    // it has lived a while, and while it lives.
    let mut sleep_tid = None;
    let mut sleep_nspid = 0;
    while t0.elapsed() < Duration::from_secs(10) {
        s.poll(Duration::from_millis(50), |model, u| match u {
            Update::Group(c) if c.kind == ChangeKind::Start => starts.push(c.group),
            Update::Group(c) if c.kind == ChangeKind::Exit => exits.push(c.group),
            Update::Event {
                event,
                group: Some(g),
            } => {
                let in_container = model.group(g).kind == Kind::Container;
                if in_container && event.body.type_name() == "comm" {
                    let t = model.task(event.tid.unwrap()).unwrap();
                    if seen.is_none() {
                        seen = Some((t.tid, t.nspid, g, event.time_ns.unwrap()));
                    }
                    if t.comm() == "sleep" {
                        sleep_tid = Some(t.tid);
                    }
                }
            }
            _ => {}
        })
        .unwrap();
        if let Some(t) = sleep_tid.and_then(|t| s.model().task(t)) {
            sleep_nspid = sleep_nspid.max(t.nspid);
        }
        if child.try_wait().unwrap().is_some()
            && seen.is_some_and(|(_, _, g, _)| exits.contains(&g))
        {
            break;
        }
    }
    let _ = child.wait();
    let (tid, nspid, g, at) = seen.expect("a task of the container exec'd");
    assert!(starts.contains(&g), "container_start of {g:?}");
    assert!(exits.contains(&g), "container_exit of {g:?}");
    // `unshare -f` forks the container's init: sh, pid 1 inside; its child sleep is 2.
    assert!(nspid == 1 || nspid == 2, "nspid {nspid} of {tid}");
    assert!(sleep_tid.is_some(), "the sleep's exec");
    assert_eq!(
        sleep_nspid, 2,
        "the sleep's pid inside, read while it lived"
    );
    // After it exited, a late sample of it still lands in the container.
    let a = s
        .model()
        .attribute(0, tid, at)
        .expect("attributed within the grace period");
    assert_eq!(a.group, g);
    assert!(s.model().task(tid).is_none(), "ended");
    assert!(monotonic_ns() > at);
}

/// The probe takes the cgroup of a call that made namespaces, and that id finds the
/// cgroup's path: what names a group whose first task is gone before /proc is read.
#[test]
fn a_call_that_makes_namespaces_carries_its_cgroup() {
    use nswatch::Body;
    use std::os::unix::fs::MetadataExt;
    if !common::live_ok("a_call_that_makes_namespaces_carries_its_cgroup") {
        return;
    }
    let root = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
        .into_iter()
        .map(std::path::Path::new)
        .find(|p| p.join("cgroup.procs").exists())
        .expect("a cgroup v2 mount");
    let name = format!("nswatch-cause-cgroup-{}", std::process::id());
    let dir = root.join(&name);
    std::fs::create_dir(&dir).unwrap();
    let id = std::fs::metadata(&dir).unwrap().ino();
    let mut s = Session::start(SessionOptions::default()).unwrap();
    s.bootstrap(|_, _| {}).unwrap();
    let script = format!(
        "echo $$ > {}/cgroup.procs && exec unshare -u true",
        dir.display()
    );
    let mut child = Command::new("sh").args(["-c", &script]).spawn().unwrap();
    let pid = child.id();
    let t0 = Instant::now();
    let mut seen = None;
    while seen.is_none() && t0.elapsed() < Duration::from_secs(10) {
        s.poll(Duration::from_millis(50), |_, u| {
            if let Update::Event { event, .. } = u {
                if let Body::Namespaces { cause: Some(c), .. } = &event.body {
                    if c.pid == pid && seen.is_none() {
                        seen = Some(c.cgroup);
                    }
                }
            }
        })
        .unwrap();
    }
    let _ = child.wait();
    let found = nswatch::census::cgroup_path(id);
    let _ = std::fs::remove_dir(&dir);
    assert_eq!(
        seen,
        Some(id),
        "the unshare's cause carries its cgroup's id"
    );
    assert_eq!(found.as_deref(), Some(format!("/{name}").as_str()));
}
