//! The usual reasons live capture cannot start are told plainly: which privilege, which
//! limit. Needs root (to drop privileges and limits for the child).

mod common;
use std::process::Command;

fn run(prefix: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(prefix[0])
        .args(&prefix[1..])
        .arg(env!("CARGO_BIN_EXE_nswatch"))
        .args(["record", "--duration", "1", "-o", "/dev/null"])
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn unprivileged_user_is_told_about_paranoid_and_capabilities() {
    if !common::live_ok("unprivileged_user_is_told_about_paranoid_and_capabilities") {
        return;
    }
    let paranoid: i32 = std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // Namespace records need CAP_PERFMON whatever perf_event_paranoid is (-1 included).
    let (code, err) = run(&[
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=-all",
    ]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("CAP_PERFMON"), "{err}");
    assert!(
        err.contains(&format!("perf_event_paranoid is {paranoid}")),
        "{err}"
    );
    assert!(!err.contains("panicked"));
}

#[test]
fn out_of_file_descriptors_names_the_limit() {
    if !common::live_ok("out_of_file_descriptors_names_the_limit") {
        return;
    }
    let (code, err) = run(&["prlimit", "--nofile=4:4"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("RLIMIT_NOFILE"), "{err}");
}

#[test]
fn a_ring_too_large_names_the_memory_limit() {
    if !common::live_ok("a_ring_too_large_names_the_memory_limit") {
        return;
    }
    let out = Command::new(env!("CARGO_BIN_EXE_nswatch"))
        .args([
            "record",
            "--duration",
            "1",
            "-o",
            "/dev/null",
            "--ring-pages",
            "1048576",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("locked-memory limit") && err.contains("--ring-pages"),
        "{err}"
    );
}
