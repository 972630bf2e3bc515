//! The namespace files `record` holds for live groups (src/live/pins.rs): held while the
//! group lives, closed once its end is declared, and never more than the open-files limit
//! allows. Needs root and perf: skips with the reason otherwise, fails under
//! NSWATCH_REQUIRE_LIVE=1.

mod common;
use common::{interrupt, live_ok, start_recording};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Whether some file descriptor of process `pid` (any process: 0) is open on `link`
/// (e.g. "net:[4026532300]").
fn fd_open_on(pid: u32, link: &str) -> bool {
    let dirs: Vec<std::path::PathBuf> = if pid == 0 {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .map(|e| e.path().join("fd"))
            .collect()
    } else {
        vec![format!("/proc/{pid}/fd").into()]
    };
    dirs.iter().any(|d| {
        std::fs::read_dir(d).is_ok_and(|fds| {
            fds.flatten()
                .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l.to_str() == Some(link)))
        })
    })
}

/// Whether some task's `kind` namespace is `link`.
fn task_in(kind: &str, link: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        std::fs::read_link(e.path().join("ns").join(kind)).is_ok_and(|l| l.to_str() == Some(link))
    })
}

/// Children killed when the test ends, however it ends.
struct Sleepers(Vec<Child>);

impl Drop for Sleepers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn a_held_namespace_goes_with_its_last_task() {
    if !live_ok("a_held_namespace_goes_with_its_last_task") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.ndjson");
    let mut rec = start_recording(&[], &file, Stdio::piped());
    let me = rec.id();
    // A network namespace whose last task lives a second, with one end of a veth pair;
    // the other end, on the host, goes when the namespace does.
    let mut sb = Sleepers(vec![Command::new("unshare")
        .args(["-n", "-u", "sh", "-c"])
        .arg("readlink /proc/self/ns/net && exec sleep 1")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()]);
    let mut line = String::new();
    BufReader::new(sb.0[0].stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let net = line.trim().to_string();
    assert!(net.starts_with("net:["), "{line:?}");
    let host_end = "nswpin0";
    let veth = |args: &[&str]| Command::new("ip").args(args).output().unwrap();
    veth(&["link", "del", host_end]);
    let add = veth(&[
        "link",
        "add",
        host_end,
        "type",
        "veth",
        "peer",
        "name",
        "nswpin1",
        "netns",
        &sb.0[0].id().to_string(),
    ]);
    assert!(add.status.success(), "{add:?}");
    // Held while it lives: the group's start is handed on within the reorder window.
    let t0 = Instant::now();
    while !fd_open_on(me, &net) {
        assert!(
            t0.elapsed() < Duration::from_secs(2),
            "record never held {net} while its task lived"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    sb.0[0].wait().unwrap();
    let gone = Instant::now();
    // Closed once the end is declared: the exit linger (100 ms) and the reader's
    // latency (250 ms) after the last task left.
    while fd_open_on(me, &net) {
        assert!(
            gone.elapsed() < Duration::from_millis(1500),
            "{net} still held {:?} after its last task exited",
            gone.elapsed()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let released = gone.elapsed();
    assert!(!task_in("net", &net), "no task is in it any more");
    assert!(!fd_open_on(0, &net), "no file anywhere keeps {net} alive");
    // The kernel dismantles a dead network namespace from a work queue.
    while veth(&["link", "show", host_end]).status.success() {
        assert!(
            gone.elapsed() < Duration::from_secs(3),
            "the namespace's veth pair outlived it"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let (status, err) = interrupt(&mut rec);
    assert!(status.success(), "{err}");
    eprintln!("{net} released {released:?} after its last task exited");
}

#[test]
fn more_groups_than_the_open_files_limit_allows() {
    if !live_ok("more_groups_than_the_open_files_limit_allows") {
        return;
    }
    // 150 groups of 2 own namespaces each before record starts, 30 more while it runs:
    // 360 files, and record may open at most 200 files of any kind.
    let spawn = |n: usize| -> Vec<Child> {
        (0..n)
            .map(|_| {
                Command::new("unshare")
                    .args(["-u", "-i", "sleep", "60"])
                    .spawn()
                    .unwrap()
            })
            .collect()
    };
    let mut sleepers = Sleepers(spawn(150));
    std::thread::sleep(Duration::from_millis(300));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.ndjson");
    let mut rec = common::Recorder(
        Command::new("prlimit")
            .args(["--nofile=200:200", "--"])
            .arg(env!("CARGO_BIN_EXE_nswatch"))
            .arg("record")
            .arg("-o")
            .arg(&file)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let t0 = Instant::now();
    while std::fs::metadata(&file).map_or(0, |m| m.len()) == 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "record did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let later = spawn(30);
    let later_pids: Vec<u32> = later.iter().map(Child::id).collect();
    sleepers.0.extend(later);
    std::thread::sleep(Duration::from_millis(800));
    let fds = std::fs::read_dir(format!("/proc/{}/fd", rec.id()))
        .unwrap()
        .count();
    let (status, err) = interrupt(&mut rec);
    assert!(status.success(), "{err}");
    assert!(fds <= 200, "{fds} files open");
    let held = err
        .lines()
        .find(|l| l.contains("namespace files held for live groups"))
        .unwrap_or_else(|| panic!("no held-files line in: {err}"));
    let nums: Vec<u64> = held
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    let (peak, room) = (nums[1], nums[2]);
    assert!(peak <= room && room < 100, "{held}");
    assert!(peak > 0, "{held}");
    assert!(held.contains("groups not held (open-files limit"), "{held}");
    // Every group is still seen: the 30 started during the capture each have their start.
    let text = std::fs::read_to_string(&file).unwrap();
    let starts: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["type"] == "container_start")
        .collect();
    for pid in later_pids {
        assert!(
            starts.iter().any(|e| e["pid"] == pid),
            "no container_start for {pid}"
        );
    }
}
