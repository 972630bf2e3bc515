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
