//! `nswatch record` against the real kernel: each namespace change made by a real tool
//! shows up with the right tid and the (dev, ino) links that /proc showed for that task
//! while it lived. Needs root and perf_event_open: skips with the reason otherwise, fails
//! under NSWATCH_REQUIRE_LIVE=1.

mod common;
use common::{interrupt, live_ok, start_recording};
use serde_json::Value;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Runs `nswatch record -o FILE [extra…] -- cmd…`; returns the events and the command's
/// standard output.
fn record(extra: &[&str], cmd: &[&str]) -> (Vec<Value>, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.ndjson");
    let out = Command::new(env!("CARGO_BIN_EXE_nswatch"))
        .arg("record")
        .arg("-o")
        .arg(&file)
        .args(extra)
        .arg("--")
        .args(cmd)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "nswatch record failed: {stderr}");
    assert!(stderr.contains("nswatch record:"), "no summary: {stderr}");
    (read_events(&file), String::from_utf8(out.stdout).unwrap())
}

fn read_events(file: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(file).unwrap();
    assert!(text.is_empty() || text.ends_with('\n'), "a cut line");
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// "KIND DEV INO" lines printed by `stat -L -c '%n %d %i'` on /proc/…/ns/KIND files.
fn stat_lines(out: &str) -> Vec<(String, u64, u64)> {
    out.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let path = f.next()?;
            let kind = path.rsplit('/').next()?.to_string();
            Some((kind, f.next()?.parse().ok()?, f.next()?.parse().ok()?))
        })
        .collect()
}

fn link(ev: &Value, kind: &str) -> (u64, u64) {
    let l = &ev["ns"][kind];
    (l["dev"].as_u64().unwrap(), l["ino"].as_u64().unwrap())
}

fn ns_events(evs: &[Value], tid: u64) -> Vec<&Value> {
    evs.iter()
        .filter(|e| e["type"] == "namespaces" && e["tid"] == tid && e.get("synthesized").is_none())
        .collect()
}

/// The pid printed on a line "pid N".
fn printed_pid(out: &str) -> u64 {
    out.lines()
        .find_map(|l| l.strip_prefix("pid "))
        .unwrap_or_else(|| panic!("no pid line in {out:?}"))
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn unshare_net_uts() {
    if !live_ok("unshare_net_uts") {
        return;
    }
    let (evs, out) = record(
        &[],
        &[
            "unshare",
            "-n",
            "-u",
            "sh",
            "-c",
            "echo pid $$; stat -L -c '%n %d %i' /proc/$$/ns/net /proc/$$/ns/uts /proc/$$/ns/mnt",
        ],
    );
    let tid = printed_pid(&out);
    let seen = stat_lines(&out);
    let ns = ns_events(&evs, tid);
    // Its birth (fork from nswatch), then the change that unshare(CLONE_NEWNET|NEWUTS) made.
    assert!(ns.len() >= 2, "{ns:#?}");
    let last = ns.last().unwrap();
    for (kind, dev, ino) in &seen {
        assert_eq!(link(last, kind), (*dev, *ino), "{kind} of tid {tid}");
    }
    let first = ns[0];
    assert_ne!(link(first, "net"), link(last, "net"));
    assert_ne!(link(first, "uts"), link(last, "uts"));
    assert_eq!(link(first, "mnt"), link(last, "mnt"));
    // Time ordered, CLOCK_MONOTONIC.
    let times: Vec<u64> = evs.iter().filter_map(|e| e["time_ns"].as_u64()).collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "events out of time order"
    );
}

#[test]
fn unshare_mnt_pid_fork() {
    if !live_ok("unshare_mnt_pid_fork") {
        return;
    }
    let (evs, out) = record(
        &[],
        &[
            "unshare",
            "-m",
            "-p",
            "-f",
            "--mount-proc",
            "sh",
            "-c",
            "stat -L -c '%n %d %i' /proc/self/ns/pid /proc/self/ns/mnt",
        ],
    );
    let seen = stat_lines(&out);
    let (pid_dev, pid_ino) = seen
        .iter()
        .find(|s| s.0 == "pid")
        .map(|s| (s.1, s.2))
        .unwrap();
    // The forked child is the first task of the new pid namespace…
    let child: Vec<&Value> = evs
        .iter()
        .filter(|e| e["type"] == "namespaces" && link(e, "pid") == (pid_dev, pid_ino))
        .collect();
    assert!(!child.is_empty(), "no task in the new pid namespace");
    // …while unshare itself only moved into the new mount namespace.
    // (Other tests run unshare at the same time: find ours as the parent of that child.)
    let child_tid = &child[0]["tid"];
    let unshare_tid = evs
        .iter()
        .find(|e| e["type"] == "fork" && &e["tid"] == child_tid)
        .expect("the child's fork")["ptid"]
        .as_u64()
        .unwrap();
    let own = ns_events(&evs, unshare_tid);
    let last = own.last().unwrap();
    assert_ne!(
        link(last, "pid"),
        (pid_dev, pid_ino),
        "the caller stays in its pid namespace"
    );
    assert_ne!(link(own[0], "mnt"), link(last, "mnt"));
}

#[test]
fn ip_netns_exec() {
    if !live_ok("ip_netns_exec") {
        return;
    }
    let name = format!("nswatch-test-{}", std::process::id());
    assert!(Command::new("ip")
        .args(["netns", "add", &name])
        .status()
        .unwrap()
        .success());
    let (evs, out) = record(
        &[],
        &[
            "ip",
            "netns",
            "exec",
            &name,
            "sh",
            "-c",
            "echo pid $$; stat -L -c '%n %d %i' /proc/$$/ns/net",
        ],
    );
    Command::new("ip")
        .args(["netns", "del", &name])
        .status()
        .unwrap();
    let tid = printed_pid(&out);
    let (_, dev, ino) = stat_lines(&out)[0].clone();
    let ns = ns_events(&evs, tid);
    assert!(ns.iter().any(|e| link(e, "net") == (dev, ino)), "{ns:#?}");
}

#[test]
fn nsenter_into_a_running_process() {
    if !live_ok("nsenter_into_a_running_process") {
        return;
    }
    let mut target = Command::new("unshare")
        .args(["-n", "-u", "sleep", "10"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let t = target.id().to_string();
    let (evs, out) = record(
        &[],
        &[
            "nsenter",
            "-t",
            &t,
            "-n",
            "-u",
            "sh",
            "-c",
            "echo pid $$; stat -L -c '%n %d %i' /proc/$$/ns/net /proc/$$/ns/uts",
        ],
    );
    target.kill().unwrap();
    target.wait().unwrap();
    let tid = printed_pid(&out);
    let seen = stat_lines(&out);
    let ns = ns_events(&evs, tid);
    let last = ns.last().expect("namespace events of the nsenter task");
    for (kind, dev, ino) in &seen {
        assert_eq!(link(last, kind), (*dev, *ino), "{kind}");
        assert_eq!(
            (*dev, *ino),
            {
                let m = std::fs::metadata(format!("/proc/{t}/ns/{kind}"));
                m.map(|m| {
                    (
                        std::os::unix::fs::MetadataExt::dev(&m),
                        std::os::unix::fs::MetadataExt::ino(&m),
                    )
                })
                .unwrap_or((*dev, *ino))
            },
            "joined the target's {kind}"
        );
    }
}

#[test]
fn one_thread_of_a_process_calls_setns() {
    if !live_ok("one_thread_of_a_process_calls_setns") {
        return;
    }
    let bin = common::build_c("fixtures/src/mt_setns.c");
    let mut target = Command::new("unshare")
        .args(["-n", "sleep", "10"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let (evs, out) = record(&[], &[bin.to_str().unwrap(), &target.id().to_string()]);
    target.kill().unwrap();
    target.wait().unwrap();
    // "setns tid T net DEV INO"
    let f: Vec<&str> = out
        .lines()
        .find(|l| l.starts_with("setns tid"))
        .unwrap()
        .split_whitespace()
        .collect();
    let (tid, dev, ino): (u64, u64, u64) = (
        f[2].parse().unwrap(),
        f[4].parse().unwrap(),
        f[5].parse().unwrap(),
    );
    let pid = evs.iter().find(|e| e["tid"] == tid).unwrap()["pid"]
        .as_u64()
        .unwrap();
    assert_ne!(pid, tid, "a worker thread");
    let mine = ns_events(&evs, tid);
    assert_eq!(link(mine.last().unwrap(), "net"), (dev, ino));
    // No other thread of the process entered that namespace.
    let others = evs.iter().filter(|e| {
        e["type"] == "namespaces"
            && e["pid"] == pid
            && e["tid"] != tid
            && link(e, "net") == (dev, ino)
    });
    assert_eq!(others.count(), 0);
}

#[test]
fn interrupted_output_is_well_formed_and_summarised() {
    if !live_ok("interrupted_output_is_well_formed_and_summarised") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.ndjson");
    let mut child = start_recording(&[], &file, Stdio::piped());
    for _ in 0..20 {
        Command::new("true").status().unwrap();
    }
    // Mid-run (nswatch::out_file): the file's size is the lines written (so that a
    // follower reads each once); written buffered (where direct writes are not done
    // whole), its blocks are reserved ahead where the file system can.
    let m = std::fs::metadata(&file).unwrap();
    let text = std::fs::read(&file).unwrap();
    assert!(m.len() as usize <= text.len() && text.ends_with(b"\n"));
    for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        serde_json::from_slice::<Value>(line).expect("whole lines mid-run");
    }
    assert!(!text.ends_with(b"\n\n"), "no padding");
    let direct = nswatch::out_file::direct_is_whole(&std::fs::File::open(dir.path()).unwrap());
    let reserves = can_reserve(dir.path()) && !direct;
    if reserves {
        assert!(
            m.blocks() * 512 >= nswatch::out_file::RESERVE,
            "{} blocks for {} bytes",
            m.blocks(),
            m.len()
        );
    }
    let (status, err) = interrupt(&mut child);
    assert!(status.success(), "{status:?}: {err}");
    assert!(err.contains("lost records 0"), "{err}");
    let evs = read_events(&file);
    assert!(
        evs.iter().any(|e| e["synthesized"] == true),
        "start-up state"
    );
    assert!(
        evs.iter().filter(|e| e["type"] == "exit").count() >= 20,
        "the 20 true runs"
    );
    // The reservation past the end is given back at the end.
    let m = std::fs::metadata(&file).unwrap();
    let text = std::fs::read(&file).unwrap();
    assert!(!text.ends_with(b"\n\n"), "blank lines left");
    assert!(
        m.blocks() * 512 < m.len() + (1 << 20),
        "{} blocks left for {} bytes (reserving: {reserves})",
        m.blocks(),
        m.len()
    );
}

#[test]
fn a_recording_killed_mid_way_leaves_whole_lines() {
    if !live_ok("a_recording_killed_mid_way_leaves_whole_lines") {
        return;
    }
    for buffered in [false, true] {
        killed_mid_way(buffered);
    }
}

/// SIGKILLs a recording after 20 unshares and checks the file it left (written directly,
/// the default on ext4, XFS and btrfs, or `--buffered`).
fn killed_mid_way(buffered: bool) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.ndjson");
    let flags: &[&str] = if buffered { &["--buffered"] } else { &[] };
    let mut child = start_recording(flags, &file, Stdio::null());
    for _ in 0..20 {
        Command::new("unshare")
            .args(["-u", "true"])
            .status()
            .unwrap();
    }
    // Past --latency (250 ms), so that the 20 unshares are in the file.
    std::thread::sleep(Duration::from_millis(600));
    // SIGKILL: no handler runs, nothing is cut off or closed.
    child.kill().unwrap();
    child.wait().unwrap();
    let text = std::fs::read(&file).unwrap();
    let mut lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
    // The piece after the last newline: empty, or a line cut by the kill. Buffered, a
    // write can stop at a page boundary (the kernel checks for a fatal signal before each
    // page); written directly, the kill can land between a commit's direct write of whole
    // blocks and its buffered write of the rest. A cut line ends the file there and only
    // there: every byte before it is a whole line, none blank.
    let last = lines.pop().unwrap();
    if !last.is_empty() {
        assert_eq!(
            text.len() % 4096,
            0,
            "a cut line inside a page (buffered: {buffered})"
        );
    }
    let mut unshares = 0;
    for line in lines {
        let e: Value = serde_json::from_slice(line).expect("a whole JSON line, none blank");
        unshares += usize::from(e["type"] == "comm" && e["comm"] == "unshare");
    }
    assert!(unshares >= 20, "{unshares} unshares (buffered: {buffered})");
    // nswatch's own readers take the file as it was left.
    let trace = dir.path().join("trace.json");
    common::nswatch(&[
        "export",
        file.to_str().unwrap(),
        "-o",
        trace.to_str().unwrap(),
    ]);
    let t: Value = serde_json::from_slice(&std::fs::read(&trace).unwrap()).unwrap();
    assert!(t["traceEvents"].as_array().unwrap().len() > 20);
}

/// The file system of `dir` reserves blocks past a file's end (fallocate with KEEP_SIZE).
fn can_reserve(dir: &Path) -> bool {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::create(dir.join("probe")).unwrap();
    // SAFETY: a descriptor we own, plain integers.
    unsafe { libc::fallocate(f.as_raw_fd(), libc::FALLOC_FL_KEEP_SIZE, 0, 4096) == 0 }
}

#[test]
fn filters_and_duration() {
    if !live_ok("filters_and_duration") {
        return;
    }
    let me = std::process::id();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.ndjson");
    let out = Command::new(env!("CARGO_BIN_EXE_nswatch"))
        .args([
            "record",
            "--duration",
            "300ms",
            "--pid",
            &me.to_string(),
            "-o",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success());
    let evs = read_events(&file);
    assert!(!evs.is_empty());
    assert!(
        evs.iter().all(|e| e["pid"] == me || e["type"] == "lost"),
        "only our pid"
    );
    let (evs, _) = record(
        &["--comm", "unshare"],
        // -f: unshare waits for `true` and ends under its own name.
        &["sh", "-c", "unshare -u -f true; true"],
    );
    assert!(!evs.is_empty());
    assert!(evs.iter().all(|e| e["type"] == "lost"
        || e["comm"] == "unshare"
        || e["type"] == "fork"
        || e["type"] == "exit"
        // Groups pass with the task that started them (checked by the model's tests).
        || e["type"].as_str().is_some_and(|t| t.starts_with("container_"))));
    // Its own: the `unshare` that forked (-f), not another test's running meanwhile.
    let unshare = evs
        .iter()
        .find(|e| {
            e["type"] == "namespaces"
                && e["comm"] == "unshare"
                && evs
                    .iter()
                    .any(|f| f["type"] == "fork" && f["ppid"] == e["pid"] && f["pid"] != e["pid"])
        })
        .expect("unshare's namespace change");
    // Its end passes too: the task has ended when its EXIT is filtered.
    assert!(
        evs.iter()
            .any(|e| e["type"] == "exit" && e["pid"] == unshare["pid"]),
        "no exit of {unshare}"
    );
}

#[test]
fn its_own_namespaces_are_held_open_while_recording() {
    if !live_ok("its_own_namespaces_are_held_open_while_recording") {
        return;
    }
    // So that the kernel keeps their nsfs dentries between NAMESPACES records instead of
    // allocating and freeing 7 for each (see live::open::pin_own_namespaces).
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.ndjson");
    let mut child = start_recording(&[], &file, Stdio::null());
    let proc_dir = format!("/proc/{}", child.id());
    let held: Vec<String> = std::fs::read_dir(format!("{proc_dir}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .map(|l| l.to_string_lossy().into_owned())
        .collect();
    for ns in ["net", "uts", "ipc", "pid", "user", "mnt", "cgroup"] {
        let link = std::fs::read_link(format!("{proc_dir}/ns/{ns}")).unwrap();
        let link = link.to_string_lossy();
        assert!(held.iter().any(|h| *h == link), "{link} not held: {held:?}");
    }
    assert!(interrupt(&mut child).0.success());
}

#[test]
fn events_stream_within_the_latency_and_a_command_end_stops_at_once() {
    if !live_ok("events_stream_within_the_latency_and_a_command_end_stops_at_once") {
        return;
    }
    // Streaming: a namespace change is in the file while the recorder still runs, though
    // far fewer records than half a ring come in (only `--latency` wakes it).
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.ndjson");
    let mut child = start_recording(&["--latency", "50ms"], &file, Stdio::null());
    let out = Command::new("unshare")
        .args(["-u", "sh", "-c", "echo $$"])
        .output()
        .unwrap();
    let pid: u64 = String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let t1 = std::time::Instant::now();
    let seen = loop {
        let text = std::fs::read_to_string(&file).unwrap();
        let found = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .any(|e| e["type"] == "namespaces" && e["pid"] == pid);
        if found || t1.elapsed() > Duration::from_secs(10) {
            break found.then(|| t1.elapsed());
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(interrupt(&mut child).0.success());
    let seen = seen.expect("the unshare written while recording");
    println!("unshare's NAMESPACES event written {seen:?} after it ended");

    // A long latency does not delay the end: the command's SIGCHLD wakes the recorder.
    let t2 = std::time::Instant::now();
    record(&["--latency", "30s"], &["sleep", "0.2"]);
    assert!(
        t2.elapsed() < Duration::from_secs(10),
        "record -- sleep 0.2 took {:?}",
        t2.elapsed()
    );
}
