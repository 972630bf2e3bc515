//! `nswatch report` on two threads (the default for a file of 1 MiB of records or more where the
//! machine has two CPUs) says exactly what it says on one: same bytes out, same error, same exit
//! status, on every fixture, in both formats and orders, and on damaged files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "data"))
        .collect();
    v.sort();
    assert!(v.len() >= 7, "fixtures missing: {v:?}");
    v
}

fn report(path: &Path, threads: &str, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nswatch"))
        .args(["report", "--threads", threads])
        .args(extra)
        .arg(path)
        .output()
        .unwrap()
}

fn same(path: &Path, extra: &[&str]) {
    let one = report(path, "1", extra);
    let two = report(path, "2", extra);
    let what = format!("{} {extra:?}", path.display());
    assert_eq!(one.status.code(), two.status.code(), "{what}: exit status");
    assert!(
        one.stdout == two.stdout,
        "{what}: output differs\n--- one thread\n{}\n--- two threads\n{}",
        String::from_utf8_lossy(&one.stdout),
        String::from_utf8_lossy(&two.stdout)
    );
    assert_eq!(
        String::from_utf8_lossy(&one.stderr),
        String::from_utf8_lossy(&two.stderr),
        "{what}: errors differ"
    );
    assert!(!String::from_utf8_lossy(&two.stderr).contains("panicked"));
}

const FORMS: [&[&str]; 4] = [
    &["--format", "ndjson"],
    &["--format", "ndjson", "--order", "file"],
    &[],
    &["--order", "file"],
];

#[test]
fn every_fixture_reads_alike_on_one_and_two_threads() {
    for f in fixtures() {
        for extra in FORMS {
            same(&f, extra);
        }
    }
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// Offsets of the records of a file-mode perf.data.
fn records(b: &[u8]) -> Vec<usize> {
    let (start, size) = (le64(b, 40) as usize, le64(b, 48) as usize);
    let mut v = Vec::new();
    let mut off = start;
    while off < start + size {
        v.push(off);
        off += u16::from_le_bytes([b[off + 6], b[off + 7]]) as usize;
    }
    v
}

#[test]
fn damaged_files_fail_alike_on_one_and_two_threads() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/forkexec.data"))
        .unwrap();
    let recs = records(&good);
    let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
    // Cut in the middle of the data, at several places.
    for k in [3, recs.len() / 3, recs.len() / 2, recs.len() - 2] {
        let mut b = good.clone();
        b.truncate(recs[k] + 5);
        cases.push((format!("cut at record {k}"), b));
    }
    // A record of an unknown type, and a NAMESPACES record claiming too many links:
    // errors found when the record is decoded, after the records before it were written.
    for k in [5, recs.len() / 2] {
        let mut b = good.clone();
        b[recs[k]..recs[k] + 4].copy_from_slice(&200u32.to_le_bytes());
        cases.push((format!("unknown type at record {k}"), b));
    }
    let ns: Vec<usize> = recs
        .iter()
        .copied()
        .filter(|&o| u32::from_le_bytes(good[o..o + 4].try_into().unwrap()) == 16)
        .collect();
    for &at in [ns[0], ns[ns.len() / 2], ns[ns.len() - 1]].iter() {
        let mut b = good.clone();
        b[at + 16..at + 24].copy_from_slice(&(1u64 << 40).to_le_bytes());
        cases.push((format!("bad NAMESPACES at {at:#x}"), b));
    }
    // A record of size zero (the walk itself stops there).
    let mut b = good.clone();
    let at = recs[recs.len() / 2];
    b[at + 6..at + 8].copy_from_slice(&0u16.to_le_bytes());
    cases.push(("record of size zero".into(), b));
    for (name, bytes) in cases {
        let path = dir.path().join("bad.data");
        std::fs::write(&path, &bytes).unwrap();
        for extra in FORMS {
            same(&path, extra);
        }
        let out = report(&path, "2", &["--format", "ndjson"]);
        assert_eq!(out.status.code(), Some(1), "{name}");
    }
}
