//! The library example for profiler authors (examples/label_samples.rs) labels every sample
//! of a real perf capture, and the busy `sh` that `unshare -u` started is in its sandbox.

mod common;
use std::process::Command;

#[test]
fn the_example_labels_every_sample_with_its_group() {
    // cargo builds examples next to the test binaries' directory: target/<profile>/examples.
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .and_then(|d| d.parent())
        .unwrap()
        .join("examples/label_samples");
    assert!(bin.exists(), "{} not built", bin.display());
    let fixture = common::fixture("samples.data");
    let out = Command::new(&bin).arg(&fixture).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    // As many lines as perf script lists samples.
    let script = Command::new("perf")
        .args(["script", "-F", "pid,tid,time", "-i"])
        .arg(&fixture)
        .output()
        .unwrap();
    let perf_samples = String::from_utf8_lossy(&script.stdout).lines().count();
    assert_eq!(lines.len(), perf_samples, "{text}");
    // The busy process is `unshare -u sh -c loop`: one pid, on the host until its
    // unshare(CLONE_NEWUTS), in its uts sandbox after (exec keeps the pid). Samples are
    // attributed at their time: a host prefix, then only the sandbox, and most of them there.
    let mut by_pid = std::collections::BTreeMap::<&str, usize>::new();
    for l in &lines {
        *by_pid.entry(l[1].split('/').next().unwrap()).or_default() += 1;
    }
    let (busy, _) = by_pid.iter().max_by_key(|(_, n)| **n).unwrap();
    let kinds: Vec<&str> = lines
        .iter()
        .filter(|l| l[1].starts_with(&format!("{busy}/")))
        .map(|l| l[3])
        .collect();
    let first = kinds
        .iter()
        .position(|k| *k == "sandbox")
        .expect("in its sandbox");
    assert!(kinds[..first].iter().all(|k| *k == "host"), "{kinds:?}");
    assert!(kinds[first..].iter().all(|k| *k == "sandbox"), "{kinds:?}");
    assert!(kinds.len() - first > kinds.len() / 2, "{kinds:?}");
    assert!(
        lines.iter().any(|l| l[3] == "host"),
        "idle and perf samples are the host's"
    );
}
