//! The command line as a perf and lsns user types it: `report [-i FILE]` with perf.data as
//! default, `-o FILE` keeping FILE.old, `-p` lists, `--container`, `ps -p/-o/--json`,
//! durations with units, `-q`, wall-clock times, one notation for a namespace.

mod common;
use common::{fixture, live_ok, nswatch};

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

/// Runs nswatch in `dir` with `args`: its whole output, whatever the exit status.
fn run_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nswatch"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The report without its first line (which names the file).
fn body(s: &str) -> &str {
    &s[s.find('\n').unwrap()..]
}

#[test]
fn report_reads_perf_data_by_default_and_ndjson_alike() {
    let dir = tempfile::tempdir().unwrap();
    let none = run_in(dir.path(), &["report"]);
    assert!(!none.status.success());
    assert!(
        text(&none.stderr).contains("perf.data: no such file"),
        "{}",
        text(&none.stderr)
    );
    std::fs::copy(
        fixture("unshare-net-uts.data"),
        dir.path().join("perf.data"),
    )
    .unwrap();
    let by_default = run_in(dir.path(), &["report"]);
    assert!(by_default.status.success(), "{}", text(&by_default.stderr));
    let named = run_in(dir.path(), &["report", "-i", "perf.data"]);
    let positional = run_in(dir.path(), &["report", "perf.data"]);
    assert_eq!(by_default.stdout, named.stdout);
    assert_eq!(by_default.stdout, positional.stdout);
    // The same recording as NDJSON tells the same story.
    let nd = run_in(dir.path(), &["report", "--format", "ndjson"]);
    std::fs::write(dir.path().join("events.ndjson"), &nd.stdout).unwrap();
    let from_nd = run_in(dir.path(), &["report", "-i", "events.ndjson"]);
    assert!(from_nd.status.success(), "{}", text(&from_nd.stderr));
    let (a, b) = (text(&by_default.stdout), text(&from_nd.stdout));
    assert_eq!(body(&a), body(&b));
}

#[test]
fn export_reads_perf_data_by_default_and_takes_i_as_report_does() {
    let dir = tempfile::tempdir().unwrap();
    let none = run_in(dir.path(), &["export"]);
    assert!(!none.status.success());
    assert!(none.stdout.is_empty());
    assert!(
        text(&none.stderr).contains("perf.data: no such file"),
        "{}",
        text(&none.stderr)
    );
    std::fs::copy(
        fixture("unshare-net-uts.data"),
        dir.path().join("perf.data"),
    )
    .unwrap();
    let by_default = run_in(dir.path(), &["export"]);
    assert!(by_default.status.success(), "{}", text(&by_default.stderr));
    let trace: serde_json::Value = serde_json::from_slice(&by_default.stdout).unwrap();
    assert!(!trace["traceEvents"].as_array().unwrap().is_empty());
    let named = run_in(dir.path(), &["export", "-i", "perf.data"]);
    let positional = run_in(dir.path(), &["export", "perf.data"]);
    assert_eq!(by_default.stdout, named.stdout);
    assert_eq!(by_default.stdout, positional.stdout);
    let both = run_in(dir.path(), &["export", "-i", "perf.data", "perf.data"]);
    assert!(!both.status.success());
}

#[test]
fn report_output_file_keeps_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report.txt");
    std::fs::write(&out, "before\n").unwrap();
    let f = fixture("unshare-net-uts.data");
    let r = run_in(
        dir.path(),
        &["report", "-i", f.to_str().unwrap(), "-o", "report.txt"],
    );
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert!(r.stdout.is_empty());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("report.txt.old")).unwrap(),
        "before\n"
    );
    let written = std::fs::read_to_string(&out).unwrap();
    assert_eq!(written, nswatch(&["report", f.to_str().unwrap()]));
    let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn report_writes_namespaces_as_inode_numbers() {
    let out = nswatch(&["report", fixture("unshare-net-uts.data").to_str().unwrap()]);
    let summary = &out[out.find("namespace sets:").unwrap()..];
    // lsns's notation, the NDJSON's `ino`: 4026532178 is the new net namespace.
    assert!(
        summary.contains("net 4026532178  uts 4026532177"),
        "{summary}"
    );
    assert!(!summary.contains("0x"), "{summary}");
}

#[test]
fn a_duration_without_a_known_unit_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let r = run_in(dir.path(), &["record", "--duration", "10parsecs"]);
    assert_eq!(r.status.code(), Some(2));
    let err = text(&r.stderr);
    assert!(
        err.contains("not a duration") && err.contains("1m30s"),
        "{err}"
    );
}

#[test]
fn record_takes_durations_with_units() {
    if !live_ok("record_takes_durations_with_units") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let t0 = std::time::Instant::now();
    let r = run_in(
        dir.path(),
        &[
            "record",
            "--count-only",
            "--no-bpf",
            "--duration",
            "500ms",
            "--latency",
            "500us",
        ],
    );
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert!(t0.elapsed() < std::time::Duration::from_secs(20));
}

#[test]
fn quiet_means_fewer_messages_and_count_only_writes_no_events() {
    if !live_ok("quiet_means_fewer_messages_and_count_only_writes_no_events") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // -q: the events are written, the summary is not.
    let q = run_in(
        dir.path(),
        &["record", "-q", "--no-bpf", "-o", "q.ndjson", "--", "true"],
    );
    assert!(q.status.success(), "{}", text(&q.stderr));
    assert_eq!(text(&q.stderr), "");
    let lines = std::fs::read_to_string(dir.path().join("q.ndjson")).unwrap();
    assert!(lines.lines().count() > 10, "{lines}");
    // --count-only: no events, the summary says so.
    let c = run_in(
        dir.path(),
        &["record", "--count-only", "--no-bpf", "--", "true"],
    );
    assert!(c.status.success(), "{}", text(&c.stderr));
    assert!(c.stdout.is_empty());
    assert!(
        text(&c.stderr).contains("not written: --count-only"),
        "{}",
        text(&c.stderr)
    );
    // And no file to leave empty.
    let f = run_in(
        dir.path(),
        &["record", "--count-only", "-o", "c.ndjson", "--", "true"],
    );
    assert_eq!(f.status.code(), Some(2));
    assert!(!dir.path().join("c.ndjson").exists());
}

#[test]
fn kernel_threads_with_their_own_mount_namespace_count_as_the_host() {
    // kdevtmpfs (pid 25 in the fixture) runs in a mount namespace of its own.
    let f = fixture("unshare-net-uts.data");
    let f = f.to_str().unwrap();
    let plain = nswatch(&["report", f]);
    let groups = &plain[plain.find("\ngroups:").unwrap()..];
    assert!(!groups.contains("sb-4026531860"), "{groups}");
    assert!(groups.contains("1 of kernel threads alone"), "{groups}");
    let all = nswatch(&["report", "--all", f]);
    let groups = &all[all.find("\ngroups:").unwrap()..];
    assert!(
        groups
            .lines()
            .any(|l| l.contains("sb-4026531860") && l.contains("(kernel threads)")),
        "{groups}"
    );
    // The NDJSON says so, and a report of it counts the group the same way.
    let nd = nswatch(&["report", "--format", "ndjson", f]);
    let start: serde_json::Value = nd
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["type"] == "container_start" && v["container"] == "sb-4026531860")
        .unwrap();
    assert_eq!(start["kernel_threads"], true, "{start}");
    assert!(nd
        .lines()
        .filter(|l| l.contains("container_start"))
        .all(|l| l.contains("sb-4026531860") || !l.contains("kernel_threads")));
}

#[test]
fn ps_lists_kernel_threads_groups_only_with_all() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIP ps_lists_kernel_threads_groups_only_with_all: not root");
        return;
    }
    let ps: serde_json::Value = serde_json::from_str(&nswatch(&["ps", "--json"])).unwrap();
    let all: serde_json::Value =
        serde_json::from_str(&nswatch(&["ps", "--json", "--all"])).unwrap();
    let kernel = |v: &serde_json::Value| -> Vec<String> {
        v["groups"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|g| g["kernel_threads"] == true)
            .map(|g| g["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(kernel(&ps).is_empty(), "{ps}");
    // A machine with devtmpfs has kdevtmpfs in a mount namespace of its own.
    let kdevtmpfs = all["groups"].as_array().unwrap().iter().find(|g| {
        g["processes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["comm"] == "kdevtmpfs")
    });
    match kdevtmpfs {
        Some(g) if g["kind"] != "host" => {
            assert_eq!(g["kernel_threads"], true, "{g}");
            assert!(kernel(&all).contains(&g["id"].as_str().unwrap().to_string()));
        }
        _ => eprintln!("no kdevtmpfs in a namespace of its own on this machine"),
    }
    // Counted with the host: the host's count is its own group's and theirs.
    let tasks = |g: &serde_json::Value| g["tasks"].as_u64().unwrap();
    let groups = all["groups"].as_array().unwrap();
    let host = groups.iter().find(|g| g["kind"] == "host").unwrap();
    let theirs: u64 = groups
        .iter()
        .filter(|g| g["kernel_threads"] == true)
        .map(tasks)
        .sum();
    assert_eq!(all["host_tasks"].as_u64().unwrap(), tasks(host) + theirs);
}

#[test]
fn ps_finds_the_group_of_a_pid() {
    let me = std::process::id().to_string();
    let dir = tempfile::tempdir().unwrap();
    let r = run_in(
        dir.path(),
        &[
            "ps",
            "-p",
            &format!("{me},999999"),
            "-o",
            "pid,comm,id,kind",
        ],
    );
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert!(
        text(&r.stderr).contains("pid 999999: no such process"),
        "{}",
        text(&r.stderr)
    );
    let out = text(&r.stdout);
    let mut lines = out.lines();
    let head: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(head, ["PID", "COMM", "ID", "KIND"]);
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(row[0], me, "{out}");
    assert!(lines.next().is_none(), "one process asked, one row: {out}");
    // The same as JSON, keys in lower case; the text tree lists only that process.
    let j = nswatch(&["ps", "-p", &me, "-o", "PID,ID", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&j).unwrap();
    assert_eq!(v[0]["pid"].as_u64().unwrap().to_string(), me);
    assert_eq!(v[0]["id"].as_str().unwrap(), row[2]);
    let tree = nswatch(&["ps", "-p", &me]);
    let listed: Vec<&str> = tree
        .lines()
        .filter(|l| l.starts_with("    ") && !l.trim_start().starts_with("cgroup"))
        .collect();
    assert_eq!(listed.len(), 1, "{tree}");
    assert!(listed[0].trim_start().starts_with(&me), "{tree}");
    // None found: said, and a failure.
    let none = run_in(dir.path(), &["ps", "-p", "999999"]);
    assert_eq!(none.status.code(), Some(1));
    assert!(text(&none.stderr).contains("pid 999999: no such process"));
}

#[test]
fn ps_columns_json_and_output_file() {
    let dir = tempfile::tempdir().unwrap();
    let bad = run_in(dir.path(), &["ps", "-o", "id,bogus"]);
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("unknown column \"bogus\""),
        "{}",
        text(&bad.stderr)
    );
    let help = nswatch(&["ps", "-o", "help"]);
    assert!(help.contains("NS_MNT") && help.contains("COMM"), "{help}");
    let table = nswatch(&["ps", "--all", "-o", "ID,KIND,TASKS,NS_NET"]);
    let host = table.lines().find(|l| l.starts_with("host ")).unwrap();
    let net: u64 = host.split_whitespace().nth(3).unwrap().parse().unwrap();
    // `--json` is `--format json`; namespaces are the NDJSON's {"dev","ino"}.
    let v: serde_json::Value = serde_json::from_str(&nswatch(&["ps", "--json", "--all"])).unwrap();
    let h = v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["kind"] == "host")
        .unwrap();
    assert_eq!(h["namespaces"]["net"]["ino"].as_u64(), Some(net), "{h}");
    assert!(h["namespaces"]["net"]["dev"].is_u64(), "{h}");
    let f: serde_json::Value =
        serde_json::from_str(&nswatch(&["ps", "--format", "json", "--all"])).unwrap();
    assert_eq!(
        f["groups"][0]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        v["groups"][0]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>()
    );
    // --output-file: 0600, the old file kept.
    std::fs::write(dir.path().join("ps.txt"), "old\n").unwrap();
    let r = run_in(dir.path(), &["ps", "--output-file", "ps.txt"]);
    assert!(r.status.success() && r.stdout.is_empty());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("ps.txt.old")).unwrap(),
        "old\n"
    );
    assert!(std::fs::read_to_string(dir.path().join("ps.txt"))
        .unwrap()
        .starts_with("host "));
}

#[test]
fn ps_json_keys_come_in_the_order_of_the_columns() {
    // Asked in an order that is not the alphabet's, group and process columns alike.
    for (cols, keys) in [
        ("TASKS,KIND,ID", &["tasks", "kind", "id"][..]),
        (
            "PID,KIND,COMM,ID,NS_NET",
            &["pid", "kind", "comm", "id", "ns_net"][..],
        ),
    ] {
        let out = nswatch(&["ps", "--all", "-o", cols, "--json"]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let rows = v.as_array().unwrap();
        assert!(!rows.is_empty(), "{out}");
        // Each object's keys as written, in the text.
        let objects: Vec<&str> = out.split('}').filter(|o| o.contains('"')).collect();
        assert_eq!(objects.len(), rows.len(), "{out}");
        for o in objects {
            let at: Vec<usize> = keys
                .iter()
                .map(|k| {
                    o.find(&format!("\"{k}\":"))
                        .unwrap_or_else(|| panic!("{k} in {o}"))
                })
                .collect();
            assert!(at.windows(2).all(|w| w[0] < w[1]), "{cols}: {o}");
        }
    }
    // A column asked twice is one key.
    let out = nswatch(&["ps", "--all", "-o", "ID,KIND,ID", "--json"]);
    let first = &out[..out.find('}').unwrap()];
    assert_eq!(first.matches("\"id\":").count(), 1, "{out}");
}

/// fixtures/unshare-mnt-pid.data as `nswatch record` writes it for a docker container
/// named "web" with id `ID` (its other groups as they are).
const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn docker_recording(dir: &Path) -> std::path::PathBuf {
    let f = fixture("unshare-mnt-pid.data");
    let mut out = String::new();
    for line in nswatch(&["report", "--format", "ndjson", f.to_str().unwrap()]).lines() {
        let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v["type"] == "container_start" && v["kind"] == "container" {
            v["name"] = "web".into();
            v["runtime"] = "docker".into();
            v["runtime_id"] = ID.into();
        }
        out.push_str(&format!("{v}\n"));
    }
    let path = dir.join("web.ndjson");
    std::fs::write(&path, out).unwrap();
    path
}

/// The containers named by the events of an NDJSON text.
fn containers_of(nd: &str) -> std::collections::BTreeSet<String> {
    nd.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter_map(|v| v["container"].as_str().map(String::from))
        .collect()
}

#[test]
fn container_is_named_by_label_name_id_or_id_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let rec = docker_recording(dir.path());
    let rec = rec.to_str().unwrap();
    let all = nswatch(&["report", "--format", "ndjson", rec]);
    let label = all
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["type"] == "container_start" && v["kind"] == "container")
        .unwrap()["container"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(containers_of(&all).len() > 2, "{all}");
    let mut outputs = Vec::new();
    for q in [label.as_str(), "web", ID, &ID[..12]] {
        let nd = nswatch(&["report", "--format", "ndjson", "--container", q, rec]);
        assert_eq!(
            containers_of(&nd),
            [label.clone()].into(),
            "--container {q}: {nd}"
        );
        assert!(nd.lines().count() > 3, "{nd}");
        outputs.push(nd);
    }
    assert!(outputs.windows(2).all(|w| w[0] == w[1]));
    // Fewer than 12 characters of the id is not enough, as for docker.
    let short = run_in(dir.path(), &["report", "--container", &ID[..11], rec]);
    assert_eq!(short.status.code(), Some(1));
    assert!(
        text(&short.stderr).contains("no group named"),
        "{}",
        text(&short.stderr)
    );
    // The text report tells only its tasks' changes and lists only it.
    let t = nswatch(&["report", "--container", "web", rec]);
    let groups = &t[t.find("\ngroups:").unwrap()..];
    assert!(groups.starts_with("\ngroups: 1\n"), "{groups}");
    assert!(groups.contains("web (docker)"), "{groups}");
    // export draws only its track.
    let trace: serde_json::Value =
        serde_json::from_str(&nswatch(&["export", "--container", "web", rec])).unwrap();
    let tracks: std::collections::BTreeSet<u64> = trace["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pid"].as_u64().unwrap())
        .collect();
    assert_eq!(tracks.len(), 1, "{trace}");
}

#[test]
fn pid_lists_and_unknown_pids() {
    let f = fixture("unshare-net-uts.data");
    let f = f.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let nd = |args: &[&str]| -> Output {
        let mut a = vec!["report", "--format", "ndjson", f];
        a.extend_from_slice(args);
        run_in(dir.path(), &a)
    };
    let pids = |o: &Output| -> std::collections::BTreeSet<u64> {
        text(&o.stdout)
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|v| !v["type"].as_str().unwrap().starts_with("container_"))
            .map(|v| v["pid"].as_u64().unwrap())
            .collect()
    };
    // unshare (24109) and its parent shell (24108); -p 1,2 and -p 1 -p 2 alike.
    let both = nd(&["-p", "24108,24109"]);
    assert!(both.status.success(), "{}", text(&both.stderr));
    assert_eq!(pids(&both), [24108, 24109].into());
    assert_eq!(nd(&["-p", "24108", "--pid", "24109"]).stdout, both.stdout);
    // One unknown: said; all unknown: a failure, as perf record -p.
    let some = nd(&["-p", "24109,999999"]);
    assert!(some.status.success());
    assert_eq!(pids(&some), [24109].into());
    assert!(
        text(&some.stderr).contains("no event of pid 999999"),
        "{}",
        text(&some.stderr)
    );
    let none = nd(&["-p", "999999"]);
    assert_eq!(none.status.code(), Some(1));
    assert!(text(&none.stderr).contains("no event of pid 999999"));
    let e = run_in(dir.path(), &["export", "-p", "999999", f]);
    assert_eq!(e.status.code(), Some(1));
    // record: a pid that is not running.
    let r = run_in(dir.path(), &["record", "-p", "999999", "--", "true"]);
    assert_eq!(r.status.code(), Some(1));
    assert!(
        text(&r.stderr).contains("pid 999999: no such process"),
        "{}",
        text(&r.stderr)
    );
}

#[test]
fn record_keeps_the_container_asked_for() {
    if !live_ok("record_keeps_the_container_asked_for") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // A sandbox of its own (net, uts) made while recording, named by its label.
    let first = run_in(
        dir.path(),
        &[
            "record", "-q", "--no-bpf", "--", "unshare", "-n", "-u", "true",
        ],
    );
    assert!(first.status.success(), "{}", text(&first.stderr));
    let out = text(&first.stdout);
    let label = out
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["type"] == "container_start" && v["owns"] == serde_json::json!(["net", "uts"]))
        .map(|v| v["container"].as_str().unwrap().to_string());
    let Some(label) = label else {
        panic!("no sandbox start in {out}");
    };
    // The kdevtmpfs group exists from the start: record --container keeps only it.
    let kernel = out
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["type"] == "container_start" && v["kernel_threads"] == true);
    if let Some(k) = kernel {
        let k = k["container"].as_str().unwrap();
        let r = run_in(
            dir.path(),
            &["record", "-q", "--no-bpf", "--container", k, "--", "true"],
        );
        assert!(r.status.success());
        assert_eq!(containers_of(&text(&r.stdout)), [k.to_string()].into());
    }
    // A label not there: said, and nothing written.
    let r = run_in(
        dir.path(),
        &["record", "--no-bpf", "--container", &label, "--", "true"],
    );
    assert!(r.status.success());
    assert!(
        text(&r.stderr).contains("no group named"),
        "{}",
        text(&r.stderr)
    );
    assert_eq!(text(&r.stdout), "");
}

fn unix_ns(rfc3339: &str) -> u128 {
    humantime::parse_rfc3339(rfc3339)
        .unwrap_or_else(|e| panic!("{rfc3339}: {e}"))
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

#[test]
fn wall_clock_times_on_request() {
    let f = fixture("unshare-net-uts.data");
    let f = f.to_str().unwrap();
    let nd = nswatch(&["report", "--time", "wall", "--format", "ndjson", f]);
    let lines: Vec<serde_json::Value> = nd
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Every line keeps its time_ns and gains wall_time, one offset apart.
    let offsets: std::collections::BTreeSet<i128> = lines
        .iter()
        .map(|v| {
            let wall = unix_ns(v["wall_time"].as_str().unwrap_or_else(|| panic!("{v}")));
            wall as i128 - v["time_ns"].as_u64().unwrap() as i128
        })
        .collect();
    assert_eq!(offsets.len(), 1, "{offsets:?}");
    let mono = nswatch(&["report", "--format", "ndjson", f]);
    assert!(!mono.contains("wall_time"));
    // The text's time column is RFC 3339.
    let text = nswatch(&["report", "--time", "wall", f]);
    let line = text
        .lines()
        .find(|l| l.contains("changed: net,uts"))
        .unwrap();
    let first = line.split_whitespace().next().unwrap();
    let t = lines
        .iter()
        .find(|v| v["type"] == "namespaces" && v["time_ns"] == 750459186518u64)
        .unwrap();
    // Each run reads the clocks' offset anew (this file has no perf clock data): the
    // same to well within a millisecond.
    let (a, b) = (unix_ns(first), unix_ns(t["wall_time"].as_str().unwrap()));
    assert!(a.abs_diff(b) < 1_000_000, "{line} vs {t}");
}

#[test]
fn record_prints_lines_for_people_and_ndjson_for_programs() {
    if !live_ok("record_prints_lines_for_people_and_ndjson_for_programs") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let r = run_in(
        dir.path(),
        &[
            "record", "-q", "--format", "text", "--time", "wall", "--", "unshare", "-n", "-u",
            "true",
        ],
    );
    assert!(r.status.success(), "{}", text(&r.stderr));
    let out = text(&r.stdout);
    assert!(!out.contains('{'), "{out}");
    let start = out
        .lines()
        .find(|l| l.contains("container_start") && l.contains("own: net,uts"))
        .unwrap_or_else(|| panic!("{out}"));
    let change = out
        .lines()
        .find(|l| l.contains(" unshare ") && l.contains("differs from host: net,uts"))
        .unwrap_or_else(|| panic!("{out}"));
    // Time, CPU, pid/tid, command, group: the same group on both lines.
    let label = start.split_whitespace().nth(4).unwrap();
    assert!(label.starts_with("sb-"), "{start}");
    assert_eq!(change.split_whitespace().nth(4), Some(label), "{change}");
    let now = unix_ns(&humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string());
    let then = unix_ns(change.split_whitespace().next().unwrap());
    assert!(now - then < 60_000_000_000, "{change}");
    // To a pipe: NDJSON, with wall_time when asked.
    let nd = run_in(
        dir.path(),
        &["record", "-q", "--no-bpf", "--time", "wall", "--", "true"],
    );
    let first: serde_json::Value =
        serde_json::from_str(text(&nd.stdout).lines().next().unwrap()).unwrap();
    assert!(first["wall_time"].is_string(), "{first}");
    // On a terminal: text (through script(1), which gives the command a terminal).
    let tty = Command::new("script")
        .args(["-qec"])
        .arg(format!(
            "{} record -q --no-bpf -- true",
            env!("CARGO_BIN_EXE_nswatch")
        ))
        .arg("/dev/null")
        .current_dir(dir.path())
        .output();
    match tty {
        Ok(o) if o.status.success() => {
            let t = text(&o.stdout);
            assert!(t.lines().count() > 0 && !t.contains("{\"type\""), "{t}");
        }
        _ => eprintln!("no script(1): the terminal's default not checked"),
    }
}
