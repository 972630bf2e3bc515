//! Damaged input: every case ends with a message that names the offset and what was wrong,
//! exit status 1, no panic, and what was already written stays well-formed.

mod common;

use common::bounded::{self, assert_refused};
use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// Time and memory any refusal of a small file stays within (a debug build included).
const LIMIT: Duration = Duration::from_secs(20);
const RSS_MB: u64 = 64;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(common::fixture(name)).unwrap()
}

fn run(bytes: &[u8], format: &str) -> bounded::Outcome {
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("bad.data");
    std::fs::write(&path, bytes).unwrap();
    let args: [&OsStr; 4] = [
        "report".as_ref(),
        "--format".as_ref(),
        format.as_ref(),
        path.as_os_str(),
    ];
    bounded::run(&args, LIMIT)
}

/// Runs both formats and checks the common promises (common::bounded::assert_refused);
/// returns stderr of the ndjson run.
fn fails(bytes: &[u8], expect: &[&str]) -> String {
    let mut err = String::new();
    for format in ["text", "ndjson"] {
        let out = run(bytes, format);
        assert_refused(&out, LIMIT, RSS_MB, format == "ndjson", expect);
        err = out.stderr;
    }
    err
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// The data section of a file-mode fixture, and the offset of its first record.
fn data_start(b: &[u8]) -> usize {
    le64(b, 40) as usize
}

/// Offset of the record that follows the first `n` records of the data section.
fn nth_record(b: &[u8], n: usize) -> usize {
    let mut off = data_start(b);
    for _ in 0..n {
        off += u16::from_le_bytes([b[off + 6], b[off + 7]]) as usize;
    }
    off
}

#[test]
fn bad_magic() {
    let mut b = fixture("forkexec.data");
    b[0..8].copy_from_slice(b"NOTPERF!");
    fails(&b, &["bad magic", "at offset 0x0"]);
}

#[test]
fn empty_and_tiny_files() {
    fails(b"", &["truncated"]);
    fails(b"PERFILE2", &["truncated"]);
}

#[test]
fn truncated_file() {
    let b = fixture("forkexec.data");
    let cut = data_start(&b) + 1000;
    fails(&b[..cut], &["outside the file"]);
}

#[test]
fn truncated_pipe_stream() {
    let b = fixture("pipe.data");
    let err = fails(&b[..b.len() / 2], &["truncated"]);
    assert!(
        err.contains("record type") || err.contains("bytes needed"),
        "{err}"
    );
}

#[test]
fn record_of_size_zero() {
    let mut b = fixture("forkexec.data");
    let at = nth_record(&b, 10);
    b[at + 6..at + 8].copy_from_slice(&0u16.to_le_bytes());
    let err = fails(&b, &["smaller than the 8-byte record header"]);
    assert!(err.contains(&format!("at offset {at:#x}")), "{err}");
}

#[test]
fn record_smaller_than_its_header() {
    let mut b = fixture("forkexec.data");
    let at = nth_record(&b, 3);
    b[at + 6..at + 8].copy_from_slice(&4u16.to_le_bytes());
    fails(&b, &["record size 4", &format!("at offset {at:#x}")]);
}

#[test]
fn record_past_the_end() {
    let mut b = fixture("forkexec.data");
    // Shrink the data section so that its last record sticks out of it (and drop the
    // features, whose index follows the data section and would be misplaced).
    let size = le64(&b, 48) - 4;
    b[48..56].copy_from_slice(&size.to_le_bytes());
    b[72..104].fill(0);
    fails(&b, &["truncated input"]);
}

#[test]
fn record_too_short_for_its_fields() {
    let mut b = fixture("forkexec.data");
    // Find a NAMESPACES record and claim 2^40 links.
    let mut at = data_start(&b);
    while u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) != 16 {
        at += u16::from_le_bytes([b[at + 6], b[at + 7]]) as usize;
    }
    b[at + 16..at + 24].copy_from_slice(&(1u64 << 40).to_le_bytes());
    fails(
        &b,
        &[
            "NAMESPACES",
            "too short for its fields",
            &format!("{at:#x}"),
        ],
    );
}

#[test]
fn unknown_record_type() {
    let mut b = fixture("forkexec.data");
    let at = nth_record(&b, 5);
    b[at..at + 4].copy_from_slice(&200u32.to_le_bytes());
    fails(&b, &["unknown record type", "record type 200"]);
    // …which --skip-unknown steps over.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("u.data");
    std::fs::write(&path, &b).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_nswatch"))
        .args(["report", "--skip-unknown"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn attr_size_out_of_range() {
    let mut b = fixture("forkexec.data");
    b[16..24].copy_from_slice(&8u64.to_le_bytes());
    fails(
        &b,
        &["header.attr_size = 8 is out of range", "at offset 0x10"],
    );
    b[16..24].copy_from_slice(&(1u64 << 40).to_le_bytes());
    fails(&b, &["out of range"]);
}

#[test]
fn section_out_of_bounds() {
    let mut b = fixture("forkexec.data");
    b[24..32].copy_from_slice(&u64::MAX.to_le_bytes());
    fails(&b, &["attrs section", "outside the file"]);
}

#[test]
fn missing_file() {
    let out = Command::new(env!("CARGO_BIN_EXE_nswatch"))
        .args(["report", "/nonexistent/perf.data"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/nonexistent/perf.data") && err.contains("No such file"),
        "{err}"
    );
}
