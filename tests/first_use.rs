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
