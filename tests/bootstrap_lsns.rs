//! The /proc bootstrap agrees with util-linux's `lsns --json` on this machine: the same
//! namespaces, each with the same number of processes.

mod common;
use nswatch::procfs;
use nswatch::record::NS_KINDS;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

type Counts = BTreeMap<(String, u64), u64>;

fn lsns() -> (Counts, u32) {
    let out = Command::new("lsns")
        .args(["--json", "--output", "NS,TYPE,NPROCS"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut c = Counts::new();
    for ns in v["namespaces"].as_array().unwrap() {
        let ty = ns["type"].as_str().unwrap().to_string();
        let n = ns["nprocs"].as_u64().unwrap();
        if ty != "time" && n > 0 {
            c.insert((ty, ns["ns"].as_u64().unwrap()), n);
        }
    }
    (c, 0)
}

fn ours() -> Counts {
    let mut c = Counts::new();
    // lsns counts processes: the main thread of each.
    for t in procfs::scan(Path::new("/proc"))
        .iter()
        .filter(|t| t.pid == t.tid)
    {
        for (i, l) in t.ns.links().iter().enumerate() {
            if l.ino != 0 {
                *c.entry((NS_KINDS[i].name().to_string(), l.ino))
                    .or_default() += 1;
            }
        }
    }
    c
}

#[test]
fn bootstrap_agrees_with_lsns() {
    if !common::live_ok("bootstrap_agrees_with_lsns") {
        return;
    }
    // Processes come and go between the two reads; a quiet moment is retried for.
    let mut last = String::new();
    for _ in 0..5 {
        let (theirs, _) = lsns();
        let mine = ours();
        // lsns counted itself, which has exited by the time /proc is scanned: one process
        // more in each host namespace.
        let host = procfs::host_set(Path::new("/proc")).unwrap().1;
        let mut theirs_adj = theirs.clone();
        for (i, l) in host.links().iter().enumerate() {
            if let Some(n) = theirs_adj.get_mut(&(NS_KINDS[i].name().to_string(), l.ino)) {
                *n -= 1;
            }
        }
        theirs_adj.retain(|_, n| *n > 0);
        if theirs_adj == mine {
            assert!(mine.len() >= 7, "at least the host's seven namespaces");
            return;
        }
        last = format!("lsns (less itself): {theirs_adj:?}\nnswatch: {mine:?}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    panic!("no agreement in 5 tries:\n{last}");
}
