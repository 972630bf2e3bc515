//! `nswatch report` end to end on fixtures: text story, NDJSON schema, standard input.

mod common;
use common::{fixture, nswatch};

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

#[test]
fn text_report_tells_the_unshare() {
    let out = nswatch(&["report", fixture("unshare-net-uts.data").to_str().unwrap()]);
    let line = out
        .lines()
        .find(|l| l.contains(" unshare ") && l.contains("changed: net,uts"))
        .unwrap_or_else(|| panic!("no change line in:\n{out}"));
    assert!(line.contains("differs from host: net,uts"), "{line}");
    assert!(out.contains("namespace sets:"), "{out}");
    let summary = &out[out.find("namespace sets:").unwrap()..];
    assert!(
        summary.contains("host") && summary.contains("unshare"),
        "{summary}"
    );
}

#[test]
fn text_report_tells_a_new_pid_namespace_child() {
    let out = nswatch(&["report", fixture("unshare-mnt-pid.data").to_str().unwrap()]);
    assert!(out.lines().any(|l| l.contains("changed: mnt")), "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains("new task, not in parent's: pid")),
        "{out}"
    );
}

fn schema_required() -> serde_json::Value {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/event-v1.schema.json"),
    )
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn ndjson_follows_the_schema() {
    let schema = schema_required();
    let mut types = std::collections::BTreeSet::new();
    let out: String = ["samples.data", "forkexec.data", "pipe.data"]
        .iter()
        .map(|f| nswatch(&["report", "--format", "ndjson", fixture(f).to_str().unwrap()]))
        .collect();
    for line in out.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let ty = v["type"].as_str().unwrap().to_string();
        for key in ["type", "time_ns", "cpu", "pid", "tid"] {
            assert!(v.get(key).is_some(), "{key} missing in {line}");
        }
        // Each type's required fields, as the schema file lists them.
        let def = &schema["$defs"][&ty];
        assert!(def.is_object(), "type {ty} is not in the schema");
        for req in def["required"].as_array().unwrap() {
            assert!(
                v.get(req.as_str().unwrap()).is_some(),
                "{req} missing in {line}"
            );
        }
        for key in v.as_object().unwrap().keys() {
            let known = def["properties"].get(key).is_some()
                || schema["$defs"]["common"]["properties"].get(key).is_some();
            assert!(known, "{key} of {ty} is not in the schema");
        }
        types.insert(ty);
    }
    for t in ["namespaces", "fork", "exit", "comm", "cgroup", "sample"] {
        assert!(types.contains(t), "no {t} event in {types:?}");
    }
}

#[test]
fn reads_a_pipe_from_standard_input() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_nswatch"))
        .args(["report", "--format", "ndjson", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let data = std::fs::read(fixture("pipe.data")).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success());
    let file = nswatch(&[
        "report",
        "--format",
        "ndjson",
        fixture("pipe.data").to_str().unwrap(),
    ]);
    assert_eq!(String::from_utf8(out.stdout).unwrap(), file);
}

#[test]
fn every_subcommand_has_help() {
    for args in [&["--help"][..], &["report", "--help"]] {
        let out = nswatch(args);
        assert!(out.contains("Usage:"), "{out}");
    }
}

/// `nswatch top` is listed, and without `nswatch-top` beside nswatch or on PATH it fails
/// naming both places and how to build the UI (the handing over itself is tested with the
/// UI's binary in tui/tests/top_tmux.rs).
#[test]
fn top_without_its_binary_says_where_it_looked() {
    let help = nswatch(&["--help"]);
    assert!(
        help.lines().any(|l| l.trim_start().starts_with("top ")),
        "{help}"
    );
    let dir = tempfile::tempdir().unwrap();
    let alone = dir.path().join("nswatch");
    common::copy_exe(
        env!("CARGO_BIN_EXE_nswatch").as_ref(),
        &alone,
        &["--version"],
    );
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = Command::new(&alone)
        .args(["top", "--replay", "perf.data"])
        .env("PATH", &empty)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let beside = dir.path().join("nswatch-top");
    assert!(
        err.contains(&format!(
            "not found, neither at {} nor on PATH",
            beside.display()
        )),
        "{err}"
    );
    assert!(err.contains("cargo build --release --workspace"), "{err}");
}

#[test]
fn text_report_names_start_up_tasks_and_nsenter() {
    let out = nswatch(&["report", fixture("nsenter.data").to_str().unwrap()]);
    // The target was started as `unshare -n -u sleep 5` before perf: named by its later COMM.
    assert!(
        out.lines().any(|l| l.contains(" sleep ")
            && l.contains("at start")
            && l.contains("differs from host: net,uts")),
        "{out}"
    );
    // nsenter joins uts, then net (two setns calls, two records).
    assert!(
        out.lines()
            .any(|l| l.contains(" nsenter ") && l.contains("changed: uts")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.contains(" nsenter ") && l.contains("changed: net")),
        "{out}"
    );
}

#[test]
fn reads_a_file_mode_capture_redirected_to_standard_input() {
    let file = std::fs::File::open(fixture("forkexec.data")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_nswatch"))
        .args(["report", "--format", "ndjson", "-"])
        .stdin(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let direct = nswatch(&[
        "report",
        "--format",
        "ndjson",
        fixture("forkexec.data").to_str().unwrap(),
    ]);
    assert_eq!(String::from_utf8(out.stdout).unwrap(), direct);
}

/// `record --history` shorter than a second (a group's end is declared 100 ms after its
/// last task left, and only then given back) or not a duration is refused before anything
/// starts, saying why.
#[test]
fn record_refuses_a_history_window_it_cannot_keep() {
    for (value, want) in [
        ("500ms", "500ms is shorter than 1s"),
        ("0", "0 is shorter than 1s"),
        ("lots", "invalid value 'lots' for '--history <DURATION>'"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_nswatch"))
            .args(["record", "--count-only", "--history", value])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{value}: {err}");
        assert!(err.contains(want), "{value}: {err}");
        assert!(!err.contains("perf_event_open"), "{value} started: {err}");
    }
}

/// `record` with a rotation it cannot do says what is wrong, and exits non-zero, before it
/// opens anything (no perf event, no file; a FIFO is not even opened, which would wait for
/// a reader): a size of 0 or one that does not parse, `--rotate-keep` alone, rotation
/// without `-o FILE` or to something other than a regular file.
#[test]
fn record_refuses_a_rotation_it_cannot_do_before_starting() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.ndjson");
    let fifo = dir.path().join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let link = dir.path().join("link.ndjson");
    std::os::unix::fs::symlink(dir.path().join("target"), &link).unwrap();
    let f = file.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["-o", f, "--rotate-size", "0"],
            "a rotation size must be more than 0",
        ),
        (
            &["-o", f, "--rotate-size", "0K"],
            "a rotation size must be more than 0",
        ),
        (&["-o", f, "--rotate-size", "10Q"], "not a size: \"10Q\""),
        (&["-o", f, "--rotate-size", "1.5G"], "not a size: \"1.5G\""),
        (&["-o", f, "--rotate-size", "lots"], "not a size: \"lots\""),
        (&["-o", f, "--rotate-keep", "3"], "--rotate-size <SIZE>"),
        (&["--rotate-size", "100M"], "--output <FILE>"),
        (
            &["-o", "/dev/stdout", "--rotate-size", "100M"],
            "/dev/stdout: is a symbolic link; --rotate-size needs a regular file",
        ),
        (
            &["-o", "/dev/null", "--rotate-size", "100M"],
            "/dev/null: is a character device; --rotate-size needs a regular file",
        ),
        (
            &["-o", fifo.to_str().unwrap(), "--rotate-size", "1M"],
            "is a FIFO; --rotate-size needs a regular file",
        ),
        (
            &["-o", link.to_str().unwrap(), "--rotate-size", "1M"],
            "is a symbolic link; --rotate-size needs a regular file",
        ),
        (
            &["-o", dir.path().to_str().unwrap(), "--rotate-size", "1M"],
            "is a directory; --rotate-size needs a regular file",
        ),
    ];
    for (args, want) in cases {
        let mut child = Command::new(env!("CARGO_BIN_EXE_nswatch"))
            .arg("record")
            .args(*args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let t0 = std::time::Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if t0.elapsed() > std::time::Duration::from_secs(20) {
                let _ = child.kill();
                panic!("{args:?}: still running after 20 s");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        assert!(!status.success(), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!err.contains("perf_event_open"), "{args:?} started: {err}");
        assert!(!file.exists(), "{args:?} created the file");
        assert!(!dir.path().join("target").exists(), "{args:?}");
    }
}
