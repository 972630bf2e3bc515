//! `nswatch report --by container [--folded]`: samples counted per container, checked against
//! `perf script` on the same file (the fixture, and a fresh capture when root).

mod common;
use common::{fixture, nswatch};
use common::{live_ok, perf};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Command;

/// (comm, pid, tid, time string) of every sample, as `perf script` prints them.
fn perf_samples(file: &Path) -> Vec<(String, u32, u32)> {
    let text = String::from_utf8(perf(&[
        "script",
        "-i",
        file.to_str().unwrap(),
        "-F",
        "comm,pid,tid,time",
    ]))
    .unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            // "COMM PID/TID TIME:"; COMM may hold spaces, so read from the right.
            let mut f = l.split_whitespace().rev();
            let _time = f.next().unwrap();
            let (pid, tid) = f.next().unwrap().split_once('/').unwrap();
            let comm: Vec<&str> = f.collect();
            let comm = comm.into_iter().rev().collect::<Vec<_>>().join(" ");
            // perf prints a tid it does not know as -1 (the record's u32::MAX).
            let num = |s: &str| s.parse::<i64>().unwrap() as u32;
            (comm, num(pid), num(tid))
        })
        .collect()
}

fn rows(file: &Path) -> Vec<Value> {
    nswatch(&[
        "report",
        "--by",
        "container",
        "--format",
        "ndjson",
        file.to_str().unwrap(),
    ])
    .lines()
    .map(|l| serde_json::from_str(l).unwrap())
    .collect()
}

fn comm_count(row: &Value, comm: &str) -> u64 {
    row["comms"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["comm"] == comm)
        .map(|c| c["samples"].as_u64().unwrap())
        .sum()
}

fn uname(flag: &str) -> String {
    let out = Command::new("uname").arg(flag).output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// True when the fixture's header names this machine and kernel (kernel frames are then
/// symbolized from /proc/kallsyms).
fn recorded_here(file: &Path) -> bool {
    let head = String::from_utf8(perf(&[
        "report",
        "--header-only",
        "-i",
        file.to_str().unwrap(),
    ]))
    .unwrap();
    let field = |name: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix(&format!("# {name} : ")))
            .map(str::trim)
            .map(str::to_string)
    };
    field("hostname") == Some(uname("-n")) && field("os release") == Some(uname("-r"))
}

#[test]
fn samples_per_container_sum_to_perf_scripts_and_the_unshare_child_is_in_its_sandbox() {
    let file = fixture("samples.data");
    let expected = perf_samples(&file);
    assert!(!expected.is_empty());
    let rows = rows(&file);
    let total: u64 = rows.iter().map(|r| r["samples"].as_u64().unwrap()).sum();
    assert_eq!(total as usize, expected.len(), "{rows:#?}");
    // Rows come most samples first.
    let counts: Vec<u64> = rows
        .iter()
        .map(|r| r["samples"].as_u64().unwrap())
        .collect();
    assert!(counts.windows(2).all(|w| w[0] >= w[1]), "{counts:?}");
    // Every command's samples, per perf script, are found across the rows.
    let mut by_comm: HashMap<&str, u64> = HashMap::new();
    for (c, _, _) in &expected {
        *by_comm.entry(c).or_default() += 1;
    }
    for (comm, n) in &by_comm {
        let ours: u64 = rows.iter().map(|r| comm_count(r, comm)).sum();
        assert_eq!(ours, *n, "samples of {comm}");
    }
    // `unshare -u sh -c …`: sh runs after the unshare, so all its samples are the uts
    // sandbox's and none the host's.
    let host = rows.iter().find(|r| r["container"] == "host").unwrap();
    assert_eq!(comm_count(host, "sh"), 0, "{host}");
    let sandbox = rows
        .iter()
        .find(|r| r["kind"] == "sandbox")
        .expect("a sandbox row");
    assert_eq!(comm_count(sandbox, "sh"), by_comm["sh"]);
    assert!(sandbox["container"].as_str().unwrap().starts_with("sb-"));
    assert_eq!(rows[0]["container"], sandbox["container"]);
    let period: u64 = rows.iter().map(|r| r["period"].as_u64().unwrap()).sum();
    assert!(period > 0);

    // The JSON document and the text table say the same.
    let doc: Value = serde_json::from_str(&nswatch(&[
        "report",
        "--by",
        "container",
        "--format",
        "json",
        file.to_str().unwrap(),
    ]))
    .unwrap();
    assert_eq!(doc["samples"].as_u64().unwrap(), total);
    assert_eq!(doc["period"].as_u64().unwrap(), period);
    assert_eq!(doc["complete"], true);
    assert_eq!(doc["containers"].as_array().unwrap().len(), rows.len());
    let text = nswatch(&["report", "--by", "container", file.to_str().unwrap()]);
    let line = text
        .lines()
        .find(|l| l.contains(sandbox["container"].as_str().unwrap()))
        .unwrap_or_else(|| panic!("no sandbox line in\n{text}"));
    assert!(
        line.contains(&format!(" {} ", sandbox["samples"])),
        "{line}"
    );
    assert!(line.contains("sh ("), "{line}");
    assert!(text.contains(&format!("# {total} samples")), "{text}");
}

#[test]
fn folded_stacks_count_every_sample_root_first_and_symbolized() {
    let file = fixture("samples.data");
    let expected = perf_samples(&file);
    let out = nswatch(&[
        "report",
        "--by",
        "container",
        "--folded",
        file.to_str().unwrap(),
    ]);
    let labels: Vec<String> = rows(&file)
        .iter()
        .map(|r| r["container"].as_str().unwrap().to_string())
        .collect();
    let mut total = 0;
    let mut per_comm: HashMap<String, u64> = HashMap::new();
    for line in out.lines() {
        let (stack, n) = line.rsplit_once(' ').unwrap();
        let n: u64 = n.parse().unwrap();
        total += n;
        let frames: Vec<&str> = stack.split(';').collect();
        assert!(labels.iter().any(|l| l == frames[0]), "{line}");
        *per_comm.entry(frames[1].to_string()).or_default() += n;
        // perf's context markers never show as frames.
        assert!(!stack.contains("0xfffffffffffffe00"), "{line}");
        assert!(!stack.contains("0xffffffffffffff80"), "{line}");
    }
    assert_eq!(total as usize, expected.len());
    assert!(per_comm["sh"] > 0);
    assert!(out
        .lines()
        .all(|l| !l.contains(";sh;") || !l.starts_with("host;")));
    if recorded_here(&file) {
        // Kernel frames from kallsyms, root first: the syscall entry comes before the
        // handler it calls.
        let line = out
            .lines()
            .find(|l| l.contains("__x64_sys_execve"))
            .unwrap_or_else(|| panic!("no symbolized execve stack in\n{out}"));
        let entry = line.find("entry_SYSCALL_64_after_hwframe").unwrap();
        assert!(entry < line.find("do_syscall_64").unwrap(), "{line}");
        assert!(entry < line.find("__x64_sys_execve").unwrap(), "{line}");
        // A user frame from libc's .dynsym (the caller of the syscall).
        assert!(
            line.contains(";execve;entry_SYSCALL_64_after_hwframe"),
            "{line}"
        );
        assert!(!out.contains("[k] 0x"), "{out}");
    } else {
        eprintln!("kernel symbols not checked: the fixture was recorded elsewhere");
    }
}

#[test]
fn folded_needs_by_container_and_json_needs_it_too() {
    let file = fixture("samples.data");
    for args in [
        vec!["report", "--folded", file.to_str().unwrap()],
        vec!["report", "--format", "json", file.to_str().unwrap()],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_nswatch"))
            .args(&args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--by"), "{err}");
    }
}

#[test]
fn a_damaged_file_reports_what_it_counted_and_fails() {
    let mut bytes = std::fs::read(fixture("samples.data")).unwrap();
    // Cut the data section in the middle of a record.
    let data_off = u64::from_le_bytes(bytes[40..48].try_into().unwrap()) as usize;
    let data_len = u64::from_le_bytes(bytes[48..56].try_into().unwrap()) as usize;
    let cut = data_off + data_len / 2 + 3;
    bytes[cut..data_off + data_len].fill(0);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.data");
    std::fs::write(&path, &bytes).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_nswatch"))
        .args(["report", "--by", "container", "--format", "json"])
        .arg(&path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains("at offset 0x"), "{err}");
    assert!(err.contains("record type") || err.contains("size"), "{err}");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["complete"], false);
}

#[test]
fn fresh_capture_of_a_pid_and_mount_namespace_busy_loop_lands_in_its_container() {
    if !live_ok("fresh_capture_of_a_pid_and_mount_namespace_busy_loop") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("ct.data");
    let data_s = data.to_str().unwrap();
    // The shell runs under a name of its own: other tests may run an `sh` on the host
    // while the whole machine is recorded.
    let busy = dir.path().join("nswbusy");
    std::os::unix::fs::symlink("/bin/sh", &busy).unwrap();
    perf(&[
        "record",
        "-q",
        "-g",
        "-F",
        "499",
        "--namespaces",
        "-a",
        "-o",
        data_s,
        "--",
        "unshare",
        "-m",
        "-p",
        "-f",
        "--mount-proc",
        busy.to_str().unwrap(),
        "-c",
        // The redirection makes a syscall per turn, so some samples stop in the kernel.
        "i=0; while [ $i -lt 60000 ]; do i=$((i+1)); : > /dev/null; done",
    ]);
    let expected = perf_samples(&data);
    let rows = rows(&data);
    let total: u64 = rows.iter().map(|r| r["samples"].as_u64().unwrap()).sum();
    assert_eq!(total as usize, expected.len());
    // The busy shell is the forked child in the new pid namespace: a container (own pid and
    // mnt namespaces), and its samples are there, not the host's.
    let sh_samples = expected.iter().filter(|s| s.0 == "nswbusy").count() as u64;
    assert!(sh_samples > 10, "{sh_samples} nswbusy samples");
    let ct = rows
        .iter()
        .find(|r| r["kind"] == "container" && comm_count(r, "nswbusy") > 0)
        .unwrap_or_else(|| panic!("no container row with nswbusy: {rows:#?}"));
    assert!(ct["container"].as_str().unwrap().starts_with("ct-"));
    assert_eq!(
        comm_count(ct, "nswbusy"),
        sh_samples,
        "{rows:#?} (capture kept at {})",
        dir.keep().display()
    );
    let host = rows.iter().find(|r| r["container"] == "host");
    assert_eq!(host.map_or(0, |h| comm_count(h, "nswbusy")), 0);
    // Folded: the container's stacks name their container first.
    let folded = nswatch(&["report", "--by", "container", "--folded", data_s]);
    let label = ct["container"].as_str().unwrap();
    let n: u64 = folded
        .lines()
        .filter(|l| l.starts_with(&format!("{label};nswbusy;")))
        .map(|l| l.rsplit_once(' ').unwrap().1.parse::<u64>().unwrap())
        .sum();
    assert_eq!(n, sh_samples);
    // Recorded here and now: kernel frames are names, the same names perf gives them.
    let ours: HashSet<&str> = folded
        .lines()
        .filter_map(|l| l.rsplit_once(' '))
        .flat_map(|(stack, _)| stack.split(';'))
        .collect();
    let theirs = perf_kernel_symbols(&data);
    assert!(
        theirs.contains("entry_SYSCALL_64_after_hwframe"),
        "no syscall entry in perf's kernel frames: {theirs:?}"
    );
    let missing: Vec<&String> = theirs
        .iter()
        .filter(|s| !ours.contains(s.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "kernel frames perf names and we do not: {missing:?} (capture kept at {})",
        dir.keep().display()
    );
}

/// The kernel frame names `perf script` gives the callchains of a capture. A frame at the
/// very start of a symbol is left out: there perf names the symbol the address is in, while
/// we name a return address by the call before it (a call to a function that does not
/// return, such as `start_kernel`, leaves a return address at the next symbol's start).
fn perf_kernel_symbols(file: &Path) -> HashSet<String> {
    let text = String::from_utf8(perf(&[
        "script",
        "-i",
        file.to_str().unwrap(),
        "-F",
        "ip,sym,symoff",
    ]))
    .unwrap();
    text.lines()
        .filter_map(|l| l.trim().split_once(' '))
        .filter(|(ip, _)| ip.starts_with("ffff"))
        .filter_map(|(_, sym)| sym.rsplit_once("+0x"))
        .filter(|(_, off)| *off != "0")
        .map(|(sym, _)| sym.to_string())
        .collect()
}
