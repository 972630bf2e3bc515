//! The eBPF causes against the real kernel: tests/progs/ns_calls.c makes each namespace
//! syscall scenario happen under `nswatch record` and prints what it did (tids, results,
//! and /proc/self/task/TID/ns/* read while it lived); each event's fields are checked
//! against that. Needs root, perf_event_open and BPF with kernel BTF: skips with the
//! reason otherwise, fails under NSWATCH_REQUIRE_LIVE=1.
//!
//! Every scenario runs twice, with the probe forced onto each hook kind (NSWATCH_BPF_HOOK):
//! `raw_tp::*` and `fentry::*`. A kernel that refuses fentry programs (no trampolines) skips
//! the `fentry::*` ones with its reason, failing only under NSWATCH_REQUIRE_FENTRY=1: the
//! probe falls back to raw_tp there, which is what the raw_tp runs check.

mod common;
use common::{live_ok, require_live};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

fn bpf_ok(what: &str) -> bool {
    if !live_ok(what) {
        return false;
    }
    if Path::new("/sys/kernel/btf/vmlinux").exists() {
        return true;
    }
    let r = "no kernel BTF at /sys/kernel/btf/vmlinux";
    assert!(
        !require_live(),
        "{what}: cannot run live ({r}) and NSWATCH_REQUIRE_LIVE=1"
    );
    eprintln!("SKIP {what}: {r}");
    false
}

/// Why this kernel does not load the fentry programs, asked once per test binary (None:
/// it does).
fn fentry_refused() -> Option<&'static str> {
    static WHY: OnceLock<Option<String>> = OnceLock::new();
    WHY.get_or_init(|| {
        let out = Command::new(env!("CARGO_BIN_EXE_nswatch"))
            .args(["record", "-o", "/dev/null", "--", "true"])
            .env("NSWATCH_BPF_HOOK", "fentry")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stderr.contains("eBPF: on (fentry)") {
            return None;
        }
        Some(
            stderr
                .lines()
                .find_map(|l| l.strip_prefix("nswatch: eBPF unavailable, "))
                .unwrap_or(&stderr)
                .to_string(),
        )
    })
    .as_deref()
}

/// Whether `what` can run with the probe on `hook`; prints why not.
fn hook_ok(hook: &str, what: &str) -> bool {
    let what = format!("{hook}::{what}");
    if !bpf_ok(&what) {
        return false;
    }
    if hook == "raw_tp" {
        return true;
    }
    match fentry_refused() {
        None => true,
        Some(why) => {
            assert!(
                !std::env::var("NSWATCH_REQUIRE_FENTRY").is_ok_and(|v| v == "1"),
                "{what}: this kernel refuses fentry and NSWATCH_REQUIRE_FENTRY=1: {why}"
            );
            eprintln!("SKIP {what}: this kernel does not load fentry programs ({why})");
            false
        }
    }
}

/// Each scenario as a test under both hook kinds: `raw_tp::NAME` and `fentry::NAME`.
macro_rules! both_hooks {
    ($($name:ident),* $(,)?) => {
        mod raw_tp {
            $(#[test]
            fn $name() {
                if super::hook_ok("raw_tp", stringify!($name)) {
                    super::$name("raw_tp");
                }
            })*
        }
        mod fentry {
            $(#[test]
            fn $name() {
                if super::hook_ok("fentry", stringify!($name)) {
                    super::$name("fentry");
                }
            })*
        }
    };
}

both_hooks!(
    unshare_net_uts,
    unshare_pid_then_fork,
    unshare_time_then_fork,
    a_thread_stays_in_the_old_time_namespace,
    a_vfork_child_enters_the_time_namespace_at_exec,
    unshare_pid_then_vfork,
    unshare_pid_then_fork_syscall,
    setns_with_a_namespace_fd,
    setns_with_a_pidfd_joins_several,
    failed_calls_are_events_and_change_nothing,
    clone3_new_pid_and_mount_namespaces,
    one_thread_calls_setns,
);

/// tests/progs/ns_calls.c, built once per test binary.
fn prog() -> PathBuf {
    common::build_c("tests/progs/ns_calls.c")
}

/// One line the program printed: its tag and key=value fields.
#[derive(Debug, Clone)]
struct Line {
    tag: String,
    f: HashMap<String, String>,
}

impl Line {
    fn num(&self, k: &str) -> u64 {
        self.f[k]
            .parse()
            .unwrap_or_else(|_| panic!("{k} in {self:?}"))
    }
    fn int(&self, k: &str) -> i64 {
        self.f[k].parse().unwrap()
    }
}

struct Run {
    events: Vec<Value>,
    lines: Vec<Line>,
    stderr: String,
}

impl Run {
    fn line(&self, tag: &str, key: &str, val: &str) -> &Line {
        self.lines
            .iter()
            .find(|l| l.tag == tag && l.f.get(key).is_some_and(|v| v == val))
            .unwrap_or_else(|| panic!("no `{tag} {key}={val}` line in {:#?}", self.lines))
    }
    fn call(&self, syscall: &str) -> &Line {
        self.line("call", "syscall", syscall)
    }
    fn ns(&self, who: &str) -> &Line {
        self.line("ns", "who", who)
    }
    /// The namespaces events of `tid` that carry a cause.
    fn caused(&self, tid: u64) -> Vec<&Value> {
        self.events
            .iter()
            .filter(|e| e["type"] == "namespaces" && e["tid"] == tid && e.get("cause").is_some())
            .collect()
    }
    fn syscalls(&self, tid: u64) -> Vec<&Value> {
        self.events
            .iter()
            .filter(|e| e["type"] == "ns_syscall" && e["tid"] == tid)
            .collect()
    }
}

/// `nswatch record` of `scenario`, the probe forced onto `hook` ("raw_tp", "fentry"; ""
/// leaves the choice to nswatch).
fn record(hook: &str, extra: &[&str], scenario: &str) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.ndjson");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nswatch"));
    if !hook.is_empty() {
        cmd.env("NSWATCH_BPF_HOOK", hook);
    }
    let out = cmd
        .arg("record")
        .arg("-o")
        .arg(&file)
        .args(extra)
        .arg("--")
        .arg(prog())
        .arg(scenario)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "nswatch record failed: {stderr}");
    if !hook.is_empty() && hook != "auto" && !extra.contains(&"--no-bpf") {
        assert!(
            stderr.contains(&format!("eBPF: on ({hook})")),
            "the probe is not on {hook}: {stderr}"
        );
    }
    let text = std::fs::read_to_string(&file).unwrap();
    let events = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let lines = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let tag = w.next()?.to_string();
            let f = w
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            Some(Line { tag, f })
        })
        .collect();
    Run {
        events,
        lines,
        stderr,
    }
}

/// Every namespace the program read from /proc for `who` equals the set's link.
fn assert_set(set: &Value, seen: &Line, what: &str) {
    let dev = seen.num("dev");
    let mut n = 0;
    for (k, v) in &seen.f {
        if ["who", "tid", "dev"].contains(&k.as_str()) {
            continue;
        }
        let ino: u64 = v.parse().unwrap();
        assert_eq!(set[k]["ino"], ino, "{what}: {k} ({set})");
        assert_eq!(set[k]["dev"], dev, "{what}: dev of {k}");
        n += 1;
    }
    assert!(n >= 7, "{what}: only {n} links read");
}

/// Every field of the eBPF events (and of their cause) is in schema/event-v1.schema.json,
/// with the required ones present.
fn assert_schema(evs: &[Value]) {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/event-v1.schema.json"),
    )
    .unwrap();
    let schema: Value = serde_json::from_str(&text).unwrap();
    let defs = &schema["$defs"];
    let check = |obj: &Value, def: &Value, what: &str| {
        for req in def["required"].as_array().unwrap() {
            assert!(
                obj.get(req.as_str().unwrap()).is_some(),
                "{what}: {req} missing in {obj}"
            );
        }
        for key in obj.as_object().unwrap().keys() {
            let known = def["properties"].get(key).is_some()
                || defs["common"]["properties"].get(key).is_some();
            assert!(known, "{what}: {key} is not in the schema");
        }
    };
    for e in evs {
        let ty = e["type"].as_str().unwrap();
        let cause = match ty {
            "ns_syscall" => e,
            "namespaces" if e.get("cause").is_some() => &e["cause"],
            _ => continue,
        };
        check(e, &defs[ty], ty);
        if ty == "namespaces" {
            check(cause, &defs["cause"], "cause");
        }
        if let Some(t) = cause.get("target") {
            check(t, &defs["cause"]["properties"]["target"], "target");
        }
        let slots = defs["ns_ids"]["propertyNames"]["enum"].as_array().unwrap();
        for set in ["before", "after"] {
            for k in cause[set].as_object().unwrap().keys() {
                assert!(
                    slots.iter().any(|s| s == k),
                    "{set}.{k} is not in the schema"
                );
            }
        }
    }
}

fn within_call(ev: &Value) {
    let c = &ev["cause"];
    let t = ev["time_ns"].as_u64().unwrap();
    assert!(
        c["enter_ns"].as_u64().unwrap() <= t && t <= c["exit_ns"].as_u64().unwrap(),
        "record time outside the call: {ev}"
    );
}

fn unshare_net_uts(hook: &str) {
    let r = record(hook, &[], "unshare_net_uts");
    let call = r.call("unshare");
    let tid = call.num("tid");
    assert_eq!(call.int("ret"), 0);
    let evs = r.caused(tid);
    assert_eq!(evs.len(), 1, "one change, one event: {evs:#?}");
    let ev = evs[0];
    within_call(ev);
    let c = &ev["cause"];
    assert_eq!(c["syscall"], "unshare");
    assert_eq!(c["flags"], "CLONE_NEWUTS|CLONE_NEWNET");
    assert_eq!(c["ok"], true);
    assert_eq!(c["ret"], 0);
    assert!(c.get("errno").is_none());
    assert_set(&c["before"], r.ns("before"), "before");
    assert_set(&c["after"], r.ns("after"), "after");
    // perf's own links agree with the probe's.
    for k in ["net", "uts", "ipc", "pid", "user", "mnt", "cgroup"] {
        assert_eq!(ev["ns"][k], c["after"][k], "{k}");
    }
    assert!(r.syscalls(tid).is_empty(), "no separate syscall event");
    assert_schema(&r.events);
    assert!(r.stderr.contains("eBPF: on"), "{}", r.stderr);
}

/// unshare(CLONE_NEWPID or CLONE_NEWTIME) then fork: the caller stays, its
/// *_for_children moves, and the child is born in the new namespace.
/// `how`: the syscall that made the child ("clone", "fork", "vfork").
fn unshare_then_fork(hook: &str, scenario: &str, flag: &str, kind: &str, how: &str) {
    let r = record(hook, &[], scenario);
    let call = r.call("unshare");
    let tid = call.num("tid");
    let before = r.ns("before");
    let after = r.ns("after");
    let ev = r.caused(tid);
    assert_eq!(ev.len(), 1, "{ev:#?}");
    let c = &ev[0]["cause"];
    assert_eq!(c["syscall"], "unshare");
    assert_eq!(c["flags"], flag);
    assert_eq!(c["ok"], true);
    assert_set(&c["before"], before, "before");
    let children = format!("{kind}_for_children");
    assert_eq!(
        c["after"][kind], c["before"][kind],
        "the caller stays in its {kind} namespace"
    );
    assert_eq!(c["after"][kind]["ino"], after.num(kind));
    assert_ne!(c["after"][&children], c["before"][&children]);
    // The child: its NAMESPACES record carries the fork that made it.
    let child = r
        .lines
        .iter()
        .find(|l| l.tag == "child")
        .expect("child line");
    let child_tid = child.num("tid");
    let seen = r.ns("child");
    let ev = r.caused(child_tid);
    assert_eq!(ev.len(), 1, "{ev:#?}");
    within_call(ev[0]);
    let fork = &ev[0]["cause"];
    assert_eq!(fork["syscall"], how);
    assert_eq!(fork["tid"], Value::Null, "cause fields only");
    assert_eq!(fork["child_tid"], child_tid);
    assert_eq!(fork["ret"], r.call(how).int("ret"));
    assert_eq!(ev[0]["pid"], child_tid);
    assert_eq!(
        fork["before"][&children]["ino"],
        seen.num(kind),
        "the child is in the caller's {kind}_for_children"
    );
    assert_ne!(seen.num(kind), after.num(kind));
    if kind == "pid" {
        assert_eq!(child.num("vpid"), 1, "pid 1 of the new namespace");
        assert_eq!(ev[0]["ns"]["pid"]["ino"], seen.num("pid"));
    }
}

fn unshare_pid_then_fork(hook: &str) {
    unshare_then_fork(hook, "unshare_pid_fork", "CLONE_NEWPID", "pid", "clone");
}

fn unshare_time_then_fork(hook: &str) {
    unshare_then_fork(hook, "unshare_time_fork", "CLONE_NEWTIME", "time", "clone");
}

/// After unshare(CLONE_NEWTIME) a thread (clone3 with CLONE_VM) shares its creator's
/// namespaces and stays in the old time namespace: its clone is no namespace change.
fn a_thread_stays_in_the_old_time_namespace(hook: &str) {
    let r = record(hook, &[], "unshare_time_thread");
    assert_eq!(r.call("unshare").int("ret"), 0);
    let (before, after, seen) = (r.ns("before"), r.ns("after"), r.ns("child"));
    assert_ne!(after.num("time_for_children"), before.num("time"));
    assert_eq!(
        seen.num("time"),
        before.num("time"),
        "the kernel's own rule"
    );
    let thread = seen.num("tid");
    assert!(r.caused(thread).is_empty(), "{:#?}", r.caused(thread));
    let clones: Vec<&Value> = r
        .events
        .iter()
        .filter(|e| {
            let c = if e["type"] == "ns_syscall" {
                *e
            } else {
                &e["cause"]
            };
            ["clone", "clone3"].contains(&c["syscall"].as_str().unwrap_or(""))
        })
        .collect();
    assert!(clones.is_empty(), "a thread is no change: {clones:#?}");
}

/// After unshare(CLONE_NEWTIME) a vfork child stays in the old time namespace until it
/// execs: the stream says so at the exec, not at the vfork.
fn a_vfork_child_enters_the_time_namespace_at_exec(hook: &str) {
    if !cfg!(target_arch = "x86_64") {
        return;
    }
    let r = record(hook, &[], "unshare_time_vfork_exec");
    let (before, after) = (r.ns("before"), r.ns("after"));
    let child = r.line("child", "vpid", &r.call("vfork").num("ret").to_string());
    let tid = child.num("tid");
    let seen = r.ns("child");
    assert_eq!(
        seen.num("time"),
        after.num("time_for_children"),
        "in at exec"
    );
    assert_ne!(seen.num("time"), before.num("time"));
    assert!(
        r.caused(tid)
            .iter()
            .all(|e| e["cause"]["syscall"] != "vfork"),
        "{:#?}",
        r.caused(tid)
    );
    let execs = r.syscalls(tid);
    assert_eq!(execs.len(), 1, "{:#?}", r.events);
    let e = execs[0];
    assert_eq!(e["syscall"], "execve");
    assert_eq!(e["ok"], true);
    assert_eq!(e["before"]["time"]["ino"], before.num("time"));
    assert_eq!(e["after"]["time"]["ino"], seen.num("time"));
    assert_eq!(e["after"]["time_for_children"]["ino"], seen.num("time"));
    assert_schema(&r.events);
}

/// The C library's vfork() is the vfork syscall on x86_64 (arm64 has none: it is clone).
fn unshare_pid_then_vfork(hook: &str) {
    let how = if cfg!(target_arch = "x86_64") {
        "vfork"
    } else {
        "clone"
    };
    unshare_then_fork(hook, "unshare_pid_vfork", "CLONE_NEWPID", "pid", how);
}

/// The fork syscall itself, which the C library's fork() does not use.
fn unshare_pid_then_fork_syscall(hook: &str) {
    if cfg!(target_arch = "x86_64") {
        unshare_then_fork(hook, "unshare_pid_sysfork", "CLONE_NEWPID", "pid", "fork");
    }
}

fn setns_with_a_namespace_fd(hook: &str) {
    let r = record(hook, &[], "setns_nsfd");
    let tid = r.call("setns").num("tid");
    let target = r.ns("target");
    let ev = r.caused(tid);
    assert_eq!(ev.len(), 1, "{ev:#?}");
    within_call(ev[0]);
    let c = &ev[0]["cause"];
    assert_eq!(c["syscall"], "setns");
    assert_eq!(c["flags"], "CLONE_NEWNET");
    assert_eq!(c["target"]["kind"], "nsfs");
    assert_eq!(c["target"]["type"], "net");
    assert_eq!(c["target"]["ino"], target.num("net"));
    assert_eq!(c["target"]["dev"], target.num("dev"));
    assert!(c["fd"].as_i64().unwrap() >= 0);
    assert_set(&c["before"], r.ns("before"), "before");
    assert_set(&c["after"], r.ns("after"), "after");
    assert_eq!(ev[0]["ns"]["net"]["ino"], target.num("net"));
}

fn setns_with_a_pidfd_joins_several(hook: &str) {
    let r = record(hook, &[], "setns_pidfd");
    let tid = r.call("setns").num("tid");
    let target_pid = r
        .lines
        .iter()
        .find(|l| l.tag == "target")
        .unwrap()
        .num("pid");
    let target = r.ns("target");
    let ev = r.caused(tid);
    assert_eq!(ev.len(), 1, "all at once, one event: {ev:#?}");
    let c = &ev[0]["cause"];
    assert_eq!(c["flags"], "CLONE_NEWUTS|CLONE_NEWIPC|CLONE_NEWNET");
    assert_eq!(c["target"]["kind"], "pidfd");
    assert_eq!(c["target"]["pid"], target_pid);
    assert_set(&c["target"]["ns"], target, "the target's namespaces");
    let after = r.ns("after");
    for k in ["net", "uts", "ipc"] {
        assert_eq!(after.num(k), target.num(k), "joined the target's {k}");
        assert_eq!(c["after"][k]["ino"], target.num(k));
        assert_ne!(c["before"][k], c["after"][k]);
    }
    assert_eq!(c["after"]["mnt"], c["before"]["mnt"], "not asked for");
    assert_schema(&r.events);
}

fn failed_calls_are_events_and_change_nothing(hook: &str) {
    for (scenario, syscall, errno, target) in [
        ("setns_regular", "setns", "EINVAL", Some("other")),
        ("setns_closed", "setns", "EBADF", Some("closed")),
        ("unshare_user_mt", "unshare", "EINVAL", None),
    ] {
        let r = record(hook, &[], scenario);
        let call = r.call(syscall);
        let tid = call.num("tid");
        assert_eq!(call.int("ret"), -1, "{scenario}");
        let evs = r.syscalls(tid);
        assert_eq!(evs.len(), 1, "{scenario}: {evs:#?}");
        let e = evs[0];
        assert_eq!(e["syscall"], syscall, "{scenario}");
        assert_eq!(e["ok"], false, "{scenario}");
        assert_eq!(e["errno"], errno, "{scenario}");
        assert_eq!(e["pid"], call.num("pid"), "{scenario}");
        assert_eq!(e["comm"], "ns_calls");
        assert_eq!(e["before"], e["after"], "{scenario}: nothing changed");
        assert_eq!(e["time_ns"], e["enter_ns"]);
        if let Some(t) = target {
            assert_eq!(e["target"]["kind"], t, "{scenario}");
        }
        if syscall == "unshare" {
            assert_eq!(e["flags"], "CLONE_NEWUSER");
        }
        if let Some(l) = r
            .lines
            .iter()
            .find(|l| l.tag == "ns" && l.f["who"] == "after")
        {
            assert_set(&e["after"], l, scenario);
        }
        assert!(r.caused(tid).is_empty(), "{scenario}: no namespace change");
        assert_schema(&r.events);
    }
}

fn clone3_new_pid_and_mount_namespaces(hook: &str) {
    let r = record(hook, &[], "clone3_pid_mnt");
    let call = r.call("clone3");
    let child = r.lines.iter().find(|l| l.tag == "child").unwrap();
    let child_tid = child.num("tid");
    assert_eq!(call.int("ret") as u64, child_tid);
    assert_eq!(child.num("vpid"), 1);
    let seen = r.ns("child");
    let ev = r.caused(child_tid);
    assert_eq!(ev.len(), 1, "{ev:#?}");
    within_call(ev[0]);
    let c = &ev[0]["cause"];
    assert_eq!(c["syscall"], "clone3");
    assert_eq!(c["flags"], "CLONE_NEWNS|CLONE_NEWPID");
    assert_eq!(c["child_tid"], child_tid);
    assert_eq!(c["ret"], child_tid);
    for k in ["pid", "mnt", "net"] {
        assert_eq!(ev[0]["ns"][k]["ino"], seen.num(k), "{k}");
    }
    assert_ne!(c["before"]["pid"]["ino"], seen.num("pid"));
    assert_ne!(c["before"]["mnt"]["ino"], seen.num("mnt"));
    assert_set(&c["before"], r.ns("before"), "the caller before");
}

fn one_thread_calls_setns(hook: &str) {
    let r = record(hook, &[], "mt_setns");
    let call = r.call("setns");
    let (tid, pid) = (call.num("tid"), call.num("pid"));
    assert_ne!(tid, pid, "a worker thread");
    let ev = r.caused(tid);
    assert_eq!(ev.len(), 1, "{ev:#?}");
    assert_eq!(ev[0]["pid"], pid);
    let c = &ev[0]["cause"];
    assert_eq!(c["target"]["ino"], r.ns("target").num("net"));
    assert_set(&c["after"], r.ns("after"), "the thread after");
    // The main thread did not move.
    assert!(r
        .caused(pid)
        .iter()
        .all(|e| e["cause"]["syscall"] != "setns"));
    assert_eq!(r.ns("main").num("net"), r.ns("before").num("net"));
}

#[test]
fn no_bpf_records_changes_without_causes() {
    if !bpf_ok("no_bpf_records_changes_without_causes") {
        return;
    }
    let r = record("", &["--no-bpf"], "unshare_net_uts");
    let tid = r.call("unshare").num("tid");
    let changes: Vec<&Value> = r
        .events
        .iter()
        .filter(|e| e["type"] == "namespaces" && e["tid"] == tid && e.get("synthesized").is_none())
        .collect();
    assert!(changes.len() >= 2, "birth and the change: {changes:#?}");
    assert!(r.events.iter().all(|e| e.get("cause").is_none()));
    assert!(r.events.iter().all(|e| e["type"] != "ns_syscall"));
    assert!(r.stderr.contains("eBPF: off (--no-bpf)"), "{}", r.stderr);
    assert!(!r.stderr.contains("unavailable"), "{}", r.stderr);
}

#[test]
fn without_cap_bpf_it_says_so_once_and_carries_on() {
    if !bpf_ok("without_cap_bpf_it_says_so_once_and_carries_on") {
        return;
    }
    // Root without CAP_BPF and CAP_SYS_ADMIN keeps CAP_PERFMON: perf works, BPF does not.
    if Command::new("setpriv").arg("--version").output().is_err() {
        assert!(!require_live(), "setpriv (util-linux) is missing");
        eprintln!("SKIP without_cap_bpf: setpriv missing");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.ndjson");
    let out = Command::new("setpriv")
        .args(["--bounding-set", "-bpf,-sys_admin"])
        .arg(env!("CARGO_BIN_EXE_nswatch"))
        .args(["record", "-o"])
        .arg(&file)
        .arg("--")
        .arg(prog())
        .arg("unshare_net_uts")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let said: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("nswatch: eBPF unavailable"))
        .collect();
    assert_eq!(said.len(), 1, "{stderr}");
    assert!(said[0].contains("CAP_BPF"), "{stderr}");
    assert!(stderr.contains("eBPF: unavailable"), "{stderr}");
    let text = std::fs::read_to_string(&file).unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let tid = stdout
        .lines()
        .find_map(|l| l.strip_prefix("call syscall=unshare tid="))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string();
    assert!(
        text.lines().any(|l| l.contains("\"type\":\"namespaces\"")
            && l.contains(&format!("\"tid\":{tid},"))
            && !l.contains("synthesized")),
        "perf records still recorded"
    );
    assert!(!text.contains("\"cause\""));
}

#[test]
fn recorded_causes_read_back_whole() {
    if !bpf_ok("recorded_causes_read_back_whole") {
        return;
    }
    // What replays (`top --replay`, `export`) read must be what was recorded: every line with
    // a cause, read back and written again, is the same JSON (the model's labels aside).
    let mut checked = 0;
    for scenario in ["unshare_net_uts", "setns_closed", "setns_pidfd"] {
        let r = record("", &[], scenario);
        let mut reader = nswatch::event::JsonReader::new();
        let mut writer = nswatch::event::JsonWriter::new();
        for e in r
            .events
            .iter()
            .filter(|e| e.get("cause").is_some() || e["type"] == "ns_syscall")
        {
            let line = serde_json::to_string(e).unwrap();
            let ev = reader.read(&line).unwrap().expect("a schema type");
            let mut out = Vec::new();
            writer.write(&ev, &mut out);
            let mut again: Value = serde_json::from_slice(&out).unwrap();
            let mut want = e.clone();
            for v in [&mut again, &mut want] {
                let o = v.as_object_mut().unwrap();
                o.remove("container");
                o.remove("runtime_id");
            }
            assert_eq!(again, want, "{scenario}");
            checked += 1;
        }
    }
    assert!(checked >= 3, "{checked} lines with causes");
}

#[test]
fn by_default_raw_tp_and_auto_says_which() {
    if !bpf_ok("by_default_raw_tp_and_auto_says_which") {
        return;
    }
    let r = record("", &[], "unshare_net_uts");
    assert!(r.stderr.contains("eBPF: on (raw_tp)"), "{}", r.stderr);
    assert_eq!(r.caused(r.call("unshare").num("tid")).len(), 1);
    let r = record("auto", &[], "unshare_net_uts");
    match fentry_refused() {
        None => assert!(r.stderr.contains("eBPF: on (fentry)"), "{}", r.stderr),
        Some(_) => assert!(
            r.stderr.contains("eBPF: on (raw_tp; fentry refused: "),
            "{}",
            r.stderr
        ),
    }
    assert_eq!(r.caused(r.call("unshare").num("tid")).len(), 1);
}

#[test]
fn an_unknown_hook_kind_is_said() {
    if !bpf_ok("an_unknown_hook_kind_is_said") {
        return;
    }
    let out = Command::new(env!("CARGO_BIN_EXE_nswatch"))
        .args(["record", "-o", "/dev/null", "--", "true"])
        .env("NSWATCH_BPF_HOOK", "kprobe")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("NSWATCH_BPF_HOOK=kprobe: expected fentry, raw_tp or auto"),
        "{stderr}"
    );
}
