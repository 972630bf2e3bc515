//! `nswatch export --format chrome`: the trace matches the events it was made from, from a
//! perf.data file or NDJSON alike, and stays well-formed JSON when cut short.

mod common;
use common::fixture;

use serde_json::Value;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn run(args: &[&str], stdin: Option<&[u8]>) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_nswatch"))
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        let mut w = child.stdin.take().unwrap();
        let input = input.to_vec();
        std::thread::spawn(move || w.write_all(&input));
    }
    child.wait_with_output().unwrap()
}

fn ok(args: &[&str], stdin: Option<&[u8]>) -> Vec<u8> {
    let out = run(args, stdin);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn trace(file: &str) -> Value {
    serde_json::from_slice(&ok(&["export", fixture(file).to_str().unwrap()], None)).unwrap()
}

fn events(t: &Value) -> &Vec<Value> {
    t["traceEvents"].as_array().unwrap()
}

/// The report's NDJSON of a fixture, parsed.
fn report(file: &str) -> Vec<Value> {
    String::from_utf8(ok(
        &[
            "report",
            "--format",
            "ndjson",
            fixture(file).to_str().unwrap(),
        ],
        None,
    ))
    .unwrap()
    .lines()
    .map(|l| serde_json::from_str(l).unwrap())
    .collect()
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

#[test]
fn tracks_slices_and_instants_match_the_events() {
    for file in [
        "samples.data",
        "unshare-mnt-pid.data",
        "nsenter.data",
        "forkexec.data",
    ] {
        let t = trace(file);
        assert_eq!(t["displayTimeUnit"], "ns");
        let evs = events(&t);
        let rep = report(file);
        // One named track per group the report names, the host's included.
        let mut tracks: HashMap<u64, String> = HashMap::new();
        for e in evs.iter().filter(|e| e["name"] == "process_name") {
            tracks.insert(
                e["pid"].as_u64().unwrap(),
                e["args"]["name"].as_str().unwrap().to_string(),
            );
        }
        let labels: std::collections::BTreeSet<&str> =
            rep.iter().filter_map(|e| e["container"].as_str()).collect();
        for l in &labels {
            assert!(
                tracks.values().any(|n| n.starts_with(&format!("{l} "))),
                "{file}: no track for {l}: {tracks:?}"
            );
        }
        // Every slice is well-formed and on a named track; every thread is named.
        let slices: Vec<&Value> = evs.iter().filter(|e| e["ph"] == "X").collect();
        assert!(!slices.is_empty());
        for s in &slices {
            assert!(s["dur"].as_f64().unwrap() >= 0.0, "{s}");
            assert!(s["ts"].as_f64().unwrap() > 0.0, "{s}");
            assert!(tracks.contains_key(&s["pid"].as_u64().unwrap()), "{s}");
            assert!(evs.iter().any(|m| m["name"] == "thread_name"
                && m["pid"] == s["pid"]
                && m["tid"] == s["tid"]));
        }
        // Every EXIT ends a slice of its task, at its time, on its group's track.
        let mut exits = 0;
        for e in rep.iter().filter(|e| e["type"] == "exit") {
            let tid = &e["tid"];
            let end = us(e["time_ns"].as_u64().unwrap());
            let s = slices
                .iter()
                .find(|s| s["tid"] == *tid && s["args"]["ended"] == "exit")
                .unwrap_or_else(|| panic!("{file}: no slice ends with exit of {e}"));
            let s_end = s["ts"].as_f64().unwrap() + s["dur"].as_f64().unwrap();
            assert!((s_end - end).abs() < 0.002, "{file}: {s} vs {e}");
            let track = &tracks[&s["pid"].as_u64().unwrap()];
            assert!(
                track.starts_with(e["container"].as_str().unwrap()),
                "{track} {e}"
            );
            exits += 1;
        }
        assert!(exits > 0, "{file}");
        // Container starts and exits are instants, as the report's events say.
        for kind in ["container_start", "container_exit"] {
            let ours: Vec<&Value> = evs.iter().filter(|e| e["name"] == kind).collect();
            let theirs: Vec<&Value> = rep
                .iter()
                .filter(|e| e["type"] == kind && e["time_ns"].as_u64() != Some(0))
                .collect();
            assert_eq!(ours.len(), theirs.len(), "{file} {kind}");
            for (a, b) in ours.iter().zip(&theirs) {
                assert_eq!(a["ph"], "i");
                assert_eq!(a["args"]["container"], b["container"]);
                assert!(
                    (a["ts"].as_f64().unwrap() - us(b["time_ns"].as_u64().unwrap())).abs() < 0.002
                );
            }
        }
    }
}

#[test]
fn namespace_changes_are_instants_with_the_links_that_changed() {
    let t = trace("unshare-net-uts.data");
    let changes: Vec<&Value> = events(&t)
        .iter()
        .filter(|e| e["name"] == "namespaces")
        .collect();
    assert_eq!(changes.len(), 1, "{changes:?}");
    let c = changes[0];
    assert_eq!(c["ph"], "i");
    assert_eq!(c["s"], "t");
    assert_eq!(c["args"]["cause"], "setns/unshare");
    assert_eq!(c["args"]["from"], "host");
    let changed = c["args"]["changed"].as_object().unwrap();
    let mut keys: Vec<&str> = changed.keys().map(|k| k.as_str()).collect();
    keys.sort();
    assert_eq!(keys, ["net", "uts"]);
    assert_ne!(changed["net"]["from"], changed["net"]["to"]);
    // The unshare's task moves: its host slice ends where its sandbox slice begins.
    let tid = &c["tid"];
    let slices: Vec<&Value> = events(&t)
        .iter()
        .filter(|e| e["ph"] == "X" && e["tid"] == *tid)
        .collect();
    let before = slices
        .iter()
        .find(|s| s["args"]["ended"] == "setns/unshare")
        .unwrap();
    let after = slices
        .iter()
        .find(|s| s["args"]["began"] == "setns/unshare")
        .unwrap();
    assert_ne!(before["pid"], after["pid"]);
    assert_eq!(after["pid"], c["pid"]);
    let end = before["ts"].as_f64().unwrap() + before["dur"].as_f64().unwrap();
    assert!((end - after["ts"].as_f64().unwrap()).abs() < 0.002);

    // A child born into a new pid namespace is a "clone", not a move.
    let t = trace("unshare-mnt-pid.data");
    let clone = events(&t)
        .iter()
        .find(|e| e["name"] == "namespaces" && e["args"]["cause"] == "clone")
        .expect("a clone instant");
    assert!(clone["args"]["changed"].get("pid").is_some(), "{clone}");
    assert!(clone["args"]["to"].as_str().unwrap().starts_with("ct-"));
}

#[test]
fn ndjson_input_gives_the_same_trace_as_the_perf_data_file() {
    for file in ["nsenter.data", "samples.data"] {
        let path = fixture(file);
        let ndjson = ok(
            &["report", "--format", "ndjson", path.to_str().unwrap()],
            None,
        );
        let from_ndjson: Value =
            serde_json::from_slice(&ok(&["export", "--format", "chrome", "-"], Some(&ndjson)))
                .unwrap();
        let from_perf = trace(file);
        assert_eq!(events(&from_ndjson), events(&from_perf), "{file}");
        // And a perf.data file as standard input (a redirect: mapped like a named file).
        let out = Command::new(env!("CARGO_BIN_EXE_nswatch"))
            .args(["export", "-"])
            .stdin(std::fs::File::open(&path).unwrap())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let from_stdin: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(events(&from_stdin), events(&from_perf), "{file}");
    }
    // A pipe-mode stream through a pipe.
    let bytes = std::fs::read(fixture("pipe.data")).unwrap();
    let from_pipe: Value = serde_json::from_slice(&ok(&["export", "-"], Some(&bytes))).unwrap();
    assert_eq!(events(&from_pipe), events(&trace("pipe.data")));
    assert!(events(&from_pipe)
        .iter()
        .any(|e| e["name"] == "namespaces" && e["ph"] == "i"));
}

#[test]
fn an_input_cut_mid_record_gives_an_error_with_the_offset_and_a_closed_trace() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(fixture("forkexec.data")).unwrap();
    let data_off = u64::from_le_bytes(bytes[40..48].try_into().unwrap()) as usize;
    let data_len = u64::from_le_bytes(bytes[48..56].try_into().unwrap()) as usize;
    let mut cut = bytes.clone();
    // A record of size 0 in the middle of the data section.
    let mut off = data_off;
    while off < data_off + data_len / 2 {
        off += u16::from_le_bytes([cut[off + 6], cut[off + 7]]) as usize;
    }
    cut[off + 6] = 0;
    cut[off + 7] = 0;
    let bad = dir.path().join("bad.data");
    std::fs::write(&bad, &cut).unwrap();
    let out_path = dir.path().join("out.json");
    let out = run(
        &[
            "export",
            bad.to_str().unwrap(),
            "-o",
            out_path.to_str().unwrap(),
        ],
        None,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains(&format!("at offset {off:#x}")), "{err}");
    assert!(err.contains("record type"), "{err}");
    // The records before the damage wait in the reorder buffer for their round's end, so
    // the trace may hold no task; it is still a closed document, and any slice it holds
    // says why it ended.
    let t: Value = serde_json::from_slice(&std::fs::read(&out_path).unwrap()).unwrap();
    assert_eq!(t["otherData"]["source"], bad.to_str().unwrap());
    for e in events(&t).iter().filter(|e| e["ph"] == "X") {
        assert_ne!(e["args"]["ended"], "end of trace", "{e}");
    }

    // NDJSON with a damaged line: its number and offset are named.
    let mut nd = ok(
        &[
            "report",
            "--format",
            "ndjson",
            fixture("forkexec.data").to_str().unwrap(),
        ],
        None,
    );
    let first_line = nd.iter().position(|&b| b == b'\n').unwrap() + 1;
    nd.splice(
        first_line..first_line,
        b"{\"type\":\"fork\",\"pid\":1\n".iter().copied(),
    );
    let out = run(&["export", "-"], Some(&nd));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("at line 2 (offset {first_line:#x})")),
        "{err}"
    );
    serde_json::from_slice::<Value>(&out.stdout).expect("closed trace on stdout");

    // NDJSON whose last line is cut, as a recording killed mid-write leaves it: a warning
    // that names the line, and the trace of every line before it.
    let whole = ok(&["export", "-"], Some(&nd[..first_line]));
    let out = run(&["export", "-"], Some(&nd[..first_line + 10]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains(&format!("line 2 (offset {first_line:#x}) is cut off")),
        "{err}"
    );
    assert_eq!(
        events(&serde_json::from_slice(&out.stdout).unwrap()),
        events(&serde_json::from_slice(&whole).unwrap())
    );

    // Neither perf.data nor NDJSON.
    let junk = dir.path().join("junk");
    std::fs::write(&junk, b"hello world").unwrap();
    let out = run(&["export", junk.to_str().unwrap()], None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains("at offset 0x0") && err.contains("PERFILE2"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

/// Endless NDJSON: PID 1's namespaces, then short-lived tasks, some in a uts sandbox.
fn feed(mut w: impl Write) {
    let ns = |uts: u64| {
        let inos = [
            4026531833u64,
            uts,
            4026531839,
            4026531836,
            4026531837,
            4026531832,
            4026531835,
        ];
        let names = ["net", "uts", "ipc", "pid", "user", "mnt", "cgroup"];
        let links: Vec<String> = names
            .iter()
            .zip(inos)
            .map(|(n, i)| format!("\"{n}\":{{\"dev\":4,\"ino\":{i}}}"))
            .collect();
        format!("{{{}}}", links.join(","))
    };
    let host = ns(4026531838);
    let sandbox = ns(4026532999);
    let mut buf = format!(
        "{{\"type\":\"namespaces\",\"time_ns\":0,\"cpu\":0,\"pid\":1,\"tid\":1,\"ns\":{host},\"comm\":\"init\"}}\n"
    );
    let mut t = 1_000_000u64;
    for i in 0u64.. {
        let pid = 100 + (i % 30000);
        t += 1000;
        buf.push_str(&format!("{{\"type\":\"fork\",\"time_ns\":{t},\"cpu\":0,\"pid\":{pid},\"tid\":{pid},\"ppid\":1,\"ptid\":1}}\n"));
        if i % 2 == 0 {
            buf.push_str(&format!("{{\"type\":\"namespaces\",\"time_ns\":{},\"cpu\":0,\"pid\":{pid},\"tid\":{pid},\"ns\":{sandbox}}}\n", t + 10));
        }
        buf.push_str(&format!("{{\"type\":\"exit\",\"time_ns\":{},\"cpu\":0,\"pid\":{pid},\"tid\":{pid},\"ppid\":1,\"ptid\":1}}\n", t + 500));
        if buf.len() > 1 << 16 {
            if w.write_all(buf.as_bytes()).is_err() {
                return;
            }
            buf.clear();
        }
    }
}

fn spawn_export(out: Option<&Path>) -> std::process::Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nswatch"));
    cmd.args(["export", "-"]);
    if let Some(p) = out {
        cmd.arg("-o").arg(p);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let w = child.stdin.take().unwrap();
    std::thread::spawn(move || feed(w));
    child
}

#[test]
fn a_file_export_killed_mid_way_is_valid_json() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trace.json");
    let mut child = spawn_export(Some(&path));
    let start = Instant::now();
    while std::fs::metadata(&path).map_or(0, |m| m.len()) < 2 << 20 {
        assert!(start.elapsed() < Duration::from_secs(60), "export too slow");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SIGKILL: no handler runs, yet the file on disk is a whole document.
    child.kill().unwrap();
    child.wait().unwrap();
    let t: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let evs = events(&t);
    assert!(evs.len() > 1000, "{}", evs.len());
    assert!(evs.iter().any(|e| e["name"] == "container_start"));
}

#[test]
fn a_streamed_export_interrupted_by_a_signal_closes_its_trace() {
    let mut child = spawn_export(None);
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        stdout.read_to_end(&mut v).unwrap();
        v
    });
    std::thread::sleep(Duration::from_millis(700));
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    let out = reader.join().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    let t: Value = serde_json::from_slice(&out).expect("a closed trace");
    let evs = events(&t);
    assert!(evs
        .iter()
        .any(|e| e["ph"] == "X" && e["args"]["ended"] == "exit"));
}

/// A fixture's event stream as `nswatch record` writes it with names and causes: the
/// container's start names it (what the census reads from /proc and the runtime's state),
/// its clone carries the probe's call, and a failed setns follows.
fn named_recording(file: &str, hex: &str) -> (String, String) {
    let mut label = String::new();
    let mut out = String::new();
    let mut last = None;
    for mut v in report(file) {
        if v["type"] == "container_start" && v["kind"] == "container" {
            label = v["container"].as_str().unwrap().to_string();
            v["name"] = "web".into();
            v["runtime"] = "docker".into();
            v["runtime_id"] = hex.into();
            v["image"] = "busybox:latest".into();
            v["cgroup"] = format!("/docker/{hex}").into();
        }
        if v["type"] == "namespaces" && v["time_ns"].as_u64() > Some(0) && v["container"] == *label
        {
            v["cause"] = serde_json::json!({
                "syscall": "clone", "flags": "SIGCHLD|CLONE_NEWNS|CLONE_NEWPID",
                "ok": true, "ret": v["tid"].clone(),
            });
        }
        last = v["time_ns"].as_u64().or(last);
        out.push_str(&v.to_string());
        out.push('\n');
    }
    let failed = serde_json::json!({
        "type": "ns_syscall", "time_ns": last.unwrap() + 1, "cpu": 0, "pid": 1, "tid": 1,
        "comm": "systemd", "syscall": "setns", "flags": "CLONE_NEWNET", "fd": 7,
        "target": {"kind": "closed"}, "ok": false, "ret": -9, "errno": "EBADF",
    });
    out.push_str(&format!("{failed}\n"));
    (out, label)
}

#[test]
fn a_recordings_names_and_causes_reach_the_trace() {
    let hex = "4c1ae0c1a5e0f8a1b0c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1";
    let (ndjson, label) = named_recording("unshare-mnt-pid.data", hex);
    assert!(label.starts_with("ct-"), "the fixture starts a container");
    let t: Value = serde_json::from_slice(&ok(&["export", "-"], Some(ndjson.as_bytes()))).unwrap();
    let meta = |name: &str| -> Vec<(u64, String)> {
        events(&t)
            .iter()
            .filter(|e| e["name"] == name)
            .map(|e| {
                let a = &e["args"];
                let v = a.get("name").or(a.get("labels")).unwrap();
                (e["pid"].as_u64().unwrap(), v.as_str().unwrap().to_string())
            })
            .collect()
    };
    let names = meta("process_name");
    let labels = meta("process_labels");
    let track = names
        .iter()
        .find(|(_, n)| n == "web (docker)")
        .unwrap_or_else(|| {
            panic!("no track named from the recording: {names:?}");
        });
    assert!(labels.contains(&(track.0, label.clone())), "{labels:?}");
    assert!(names.contains(&(1, "host (host)".to_string())), "{names:?}");
    // The container's start instant carries the naming.
    let start = events(&t)
        .iter()
        .find(|e| e["name"] == "container_start" && e["pid"] == track.0)
        .expect("container_start instant");
    assert_eq!(start["args"]["name"], "web");
    assert_eq!(start["args"]["runtime"], "docker");
    assert_eq!(start["args"]["runtime_id"], hex);
    // The clone's instant keeps the call: syscall, flags and result.
    let clone = events(&t)
        .iter()
        .find(|e| e["name"] == "namespaces" && e["pid"] == track.0)
        .expect("the clone's instant");
    let a = &clone["args"];
    assert_eq!(a["cause"], "clone", "{a}");
    assert_eq!(a["syscall"], "clone");
    assert_eq!(a["flags"], "SIGCHLD|CLONE_NEWNS|CLONE_NEWPID");
    assert_eq!(a["ok"], true);
    assert_eq!(a["ret"], clone["tid"]);
    // The failed call: target and errno.
    let failed = events(&t)
        .iter()
        .find(|e| e["name"] == "setns")
        .expect("the failed setns's instant");
    let a = &failed["args"];
    assert_eq!(
        (a["ok"].clone(), a["errno"].clone()),
        (false.into(), "EBADF".into())
    );
    assert_eq!(a["fd"], 7);
    assert_eq!(a["target"]["kind"], "closed");
    assert_eq!(failed["pid"], 1, "on the host's track");

    // Without names, a group keeps its label and kind.
    let plain = trace("unshare-mnt-pid.data");
    assert!(events(&plain).iter().any(
        |e| e["name"] == "process_name" && e["args"]["name"] == format!("{label} (container)")
    ));
}
