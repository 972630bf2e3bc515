//! Records a fresh capture with this machine's `perf record --namespaces` during the test
//! run and checks nswatch's decoding against `perf script` on it, record for record.
//! Needs root and perf: skips with the reason otherwise, fails under NSWATCH_REQUIRE_LIVE=1.

mod common;
use common::{assert_same, decode_file, live_ok, parse_script, perf, SCRIPT_ARGS};
use std::process::{Command, Stdio};

#[test]
fn fresh_capture_matches_perf_script() {
    if !live_ok("fresh_capture_matches_perf_script") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("live.data");
    let data_s = data.to_str().unwrap();
    perf(&[
        "record", "--namespaces", "--all-cgroups", "-a", "-e", "dummy", "-q", "-o", data_s, "--",
        "sh", "-c", "unshare -n -u true; unshare -m -p -f --mount-proc true; for i in 1 2 3; do /bin/true; done",
    ]);
    let mut args = SCRIPT_ARGS.to_vec();
    args.extend(["-i", data_s]);
    let expected = parse_script(&String::from_utf8(perf(&args)).unwrap());
    let ours = decode_file(&data);
    assert_same("live capture", &ours, &expected);
    let unshares = ours
        .iter()
        .filter(|r| r.kind == "comm" && r.detail == "comm=unshare exec=true")
        .count();
    // -a sees the whole machine, tests running beside this one included.
    assert!(unshares >= 2, "both unshare commands were seen");
}

#[test]
fn pipe_from_perf_record_to_nswatch_report() {
    if !live_ok("pipe_from_perf_record_to_nswatch_report") {
        return;
    }
    let mut rec = Command::new("perf")
        .args([
            "record",
            "--namespaces",
            "-a",
            "-e",
            "dummy",
            // perf blocks on a pipe its reader drains slowly (a loaded machine) while the
            // kernel keeps writing its rings: big rings keep the few records we look for.
            "-m",
            "1024",
            "-q",
            "-o",
            "-",
            "--",
            "unshare",
            "-u",
            "true",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_nswatch"))
        .args(["report", "-"])
        .stdin(rec.stdout.take().unwrap())
        .output()
        .unwrap();
    assert!(rec.wait().unwrap().success());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.lines()
            .any(|l| l.contains(" unshare ") && l.contains("changed: uts")),
        "{text}"
    );
    assert!(text.contains("pipe mode"), "{text}");
}
