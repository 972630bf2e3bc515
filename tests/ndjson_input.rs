//! Hostile NDJSON for `export` and `report`: an endless line, invalid UTF-8 in the middle
//! of a file, a line of nested brackets, and the inputs of tests/ndjson_regressions/ (what
//! the `ndjson` fuzz target found, and extremes: a last line cut inside a character, the
//! largest times and pids, a rename before its start). Each run ends in a non-zero exit and a message naming the file, the line and
//! its offset, within a time and memory bound checked here (wait4's rusage of the child).

mod common;

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How a run of nswatch ended.
struct Run {
    status: ExitStatus,
    stderr: String,
    took: Duration,
    /// Peak resident memory, in bytes.
    max_rss: u64,
}

/// Runs nswatch with `args`, `feed` writing its standard input (closed when it returns),
/// and reaps it with wait4 for its peak memory. A run over 30 s is killed (and fails the
/// bound below).
fn run(args: &[&str], feed: impl FnOnce(&mut dyn Write) + Send) -> Run {
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_nswatch"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let pid = child.id() as libc::pid_t;
    let (status, ru, err) = std::thread::scope(|s| {
        // A writer refused mid-way (EPIPE) is what an early end looks like: ignored.
        s.spawn(move || feed(&mut stdin));
        let err = s.spawn(move || {
            let mut e = String::new();
            std::io::Read::read_to_string(&mut stderr, &mut e).unwrap();
            e
        });
        let mut status = 0;
        // SAFETY: wait4 fills the status and the rusage of our own child, which is only
        // signalled while not reaped.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        loop {
            let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut ru) };
            if r == pid {
                break;
            }
            assert_eq!(r, 0, "wait4");
            if start.elapsed() > Duration::from_secs(30) {
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        (status, ru, err.join().unwrap())
    });
    // Reaped above: the Child must not wait again.
    std::mem::forget(child);
    Run {
        status: ExitStatus::from_raw(status),
        stderr: err,
        took: start.elapsed(),
        max_rss: ru.ru_maxrss as u64 * 1024,
    }
}

/// The run failed cleanly (exit 1, no signal, no panic) within 10 s and 64 MB.
fn assert_refused(r: &Run, what: &str) {
    assert_eq!(
        r.status.code(),
        Some(1),
        "{what}: {:?}, stderr: {}",
        r.status,
        r.stderr
    );
    assert!(!r.stderr.contains("panicked"), "{what}: {}", r.stderr);
    assert!(
        r.took < Duration::from_secs(10),
        "{what}: took {:?}",
        r.took
    );
    assert!(
        r.max_rss < 64 << 20,
        "{what}: {} MB resident",
        r.max_rss >> 20
    );
}

/// The fixture's event stream, as `report --format ndjson` writes it.
fn fixture_ndjson() -> String {
    let fixture = common::fixture("unshare-mnt-pid.data");
    common::nswatch(&["report", "--format", "ndjson", fixture.to_str().unwrap()])
}

/// Writes `prefix`, then `[` until the reader hangs up (or 4 GiB).
fn endless(prefix: &[u8]) -> impl FnOnce(&mut dyn Write) + Send + '_ {
    move |w: &mut dyn Write| {
        if w.write_all(prefix).is_err() {
            return;
        }
        let chunk = vec![b'['; 1 << 16];
        for _ in 0..(1u64 << 16) {
            if w.write_all(&chunk).is_err() {
                return;
            }
        }
    }
}

#[test]
fn an_endless_line_is_refused_with_its_place_in_bounded_memory() {
    let good = fixture_ndjson();
    let lines = good.lines().count();
    let mut prefix = good.clone().into_bytes();
    prefix.extend_from_slice(b"{\"type\":\"fork\",\"a\":");
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("t.json");
    for args in [
        vec!["export", "-", "-o", trace.to_str().unwrap()],
        vec!["report", "-"],
    ] {
        let r = run(&args, endless(&prefix));
        assert_refused(&r, &args.join(" "));
        let want = format!(
            "nswatch: -: line {} (offset {:#x}) is longer than 1048576 bytes",
            lines + 1,
            good.len()
        );
        assert!(r.stderr.contains(&want), "{args:?}: {}", r.stderr);
    }
    // What came before the line is in the trace, closed: a JSON document.
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&trace).unwrap()).expect("the trace is JSON");
    assert!(v["traceEvents"].as_array().unwrap().len() > 10, "{v}");
    // A file holding such a line is refused the same way.
    let file = dir.path().join("endless.ndjson");
    let mut text = b"{\"type\":".to_vec();
    text.resize(8 << 20, b'[');
    std::fs::write(&file, text).unwrap();
    let r = run(
        &[
            "export",
            file.to_str().unwrap(),
            "-o",
            trace.to_str().unwrap(),
        ],
        |_| {},
    );
    assert_refused(&r, "export of a file");
    assert!(
        r.stderr
            .contains("endless.ndjson: line 1 (offset 0x0) is longer than"),
        "{}",
        r.stderr
    );
}

#[test]
fn invalid_utf8_in_the_middle_names_the_file_line_and_offset() {
    let good = fixture_ndjson();
    // A byte that is no UTF-8 in the middle of line 101's text.
    let mut bytes = Vec::new();
    let mut want = String::new();
    for (i, line) in good.split_inclusive('\n').enumerate() {
        if i == 100 {
            let cut = line.len() / 2;
            want = format!(
                "line 101 (offset {:#x}): invalid UTF-8 at offset {:#x}",
                bytes.len(),
                bytes.len() + cut
            );
            bytes.extend_from_slice(&line.as_bytes()[..cut]);
            bytes.push(0xff);
            bytes.extend_from_slice(&line.as_bytes()[cut..]);
        } else {
            bytes.extend_from_slice(line.as_bytes());
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad-utf8.ndjson");
    std::fs::write(&file, &bytes).unwrap();
    let trace = dir.path().join("t.json");
    let f = file.to_str().unwrap();
    for args in [
        vec!["export", f, "-o", trace.to_str().unwrap()],
        vec!["report", f],
        vec!["report", "--format", "ndjson", f],
    ] {
        let r = run(&args, |_| {});
        assert_refused(&r, &args.join(" "));
        assert!(
            r.stderr.contains(&format!("bad-utf8.ndjson: {want}")),
            "{args:?}: want {want:?} in {}",
            r.stderr
        );
    }
    // Through standard input as well.
    let r = run(&["report", "-"], |w| {
        let _ = w.write_all(&bytes);
    });
    assert_refused(&r, "report -");
    assert!(r.stderr.contains(&format!("-: {want}")), "{}", r.stderr);
    // The 100 lines before it are in the trace.
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&trace).unwrap()).expect("the trace is JSON");
    assert!(v["traceEvents"].as_array().unwrap().len() > 10, "{v}");
}

#[test]
fn a_line_of_nested_brackets_is_bad_json_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nested.ndjson");
    // A first line of a type a later schema may add: read, and passed over.
    let first = "{\"type\":\"later\",\"time_ns\":1}\n";
    let mut text = format!("{first}{{\"type\":\"fork\",\"a\":");
    text.push_str(&"[".repeat(400_000));
    text.push_str(&"]".repeat(400_000));
    text.push_str("}\n");
    std::fs::write(&file, &text).unwrap();
    let trace = dir.path().join("t.json");
    for args in [
        vec![
            "export",
            file.to_str().unwrap(),
            "-o",
            trace.to_str().unwrap(),
        ],
        vec!["report", file.to_str().unwrap()],
    ] {
        let r = run(&args, |_| {});
        assert_refused(&r, &args.join(" "));
        let want = format!(
            "nested.ndjson: at line 2 (offset {:#x}): bad JSON: recursion limit",
            first.len()
        );
        assert!(r.stderr.contains(&want), "{args:?}: {}", r.stderr);
    }
}

#[test]
fn ndjson_regressions_do_not_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ndjson_regressions");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let r = run(&["export", path.to_str().unwrap()], |_| {});
        assert!(!r.stderr.contains("panicked"), "{path:?}: {}", r.stderr);
        n += 1;
    }
    assert!(n >= 1, "the regression inputs are there");
}
