//! A live Session that cannot start says why in a type a profiler can match: the missing
//! capability, the limit to raise. Each case runs this test binary again, deprived (an
//! unprivileged uid, a tiny open-files limit), with an environment variable that makes the
//! inner run try the session and print what it got. Needs root to deprive; skips with the
//! reason otherwise, fails under NSWATCH_REQUIRE_LIVE=1.

mod common;
use nswatch::live::open::OpenError;
use nswatch::session::{Session, SessionError, SessionOptions};
use std::process::Command;

const INNER: &str = "NSWATCH_SESSION_ERROR_INNER";

/// The inner run: what Session::start gave, as one line the outer test reads.
fn inner(case: &str) {
    let e = match Session::start(SessionOptions::default()) {
        Ok(_) => {
            println!("RESULT started");
            return;
        }
        Err(e) => e,
    };
    let variant = match &e {
        SessionError::Open(OpenError::NotPermitted { .. }) => "not-permitted",
        SessionError::Open(OpenError::TooManyFiles(_)) => "too-many-files",
        SessionError::Open(_) => "open",
        _ => "other",
    };
    println!(
        "RESULT {case} {variant} {:?} {:?} | {e}",
        e.missing_capability(),
        e.limit()
    );
}

/// Runs this test (`name`) again under `wrapper`, its inner part, and returns its RESULT line.
fn deprived(name: &str, wrapper: &[&str]) -> String {
    // A copy anyone can execute: the test binary's directory may not be reachable by uid
    // 65534.
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("session_errors");
    common::copy_exe(&std::env::current_exe().unwrap(), &exe, &["--list"]);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new(wrapper[0])
        .args(&wrapper[1..])
        .arg(&exe)
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(INNER, name)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .find_map(|l| l.find("RESULT ").map(|i| &l[i..]))
        .unwrap_or_else(|| {
            panic!(
                "no result from the inner run: {}\n{stdout}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
        })
        .to_string()
}

#[test]
fn without_cap_perfmon_the_error_names_it() {
    let name = "without_cap_perfmon_the_error_names_it";
    if std::env::var(INNER).as_deref() == Ok(name) {
        return inner("uid");
    }
    if !common::live_ok(name) {
        return;
    }
    let got = deprived(
        name,
        &[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
        ],
    );
    assert!(
        got.starts_with("RESULT uid not-permitted Some(\"CAP_PERFMON\") None |"),
        "{got}"
    );
    assert!(got.contains("setcap"), "the message says what to do: {got}");
}

#[test]
fn out_of_descriptors_the_error_names_the_limit() {
    let name = "out_of_descriptors_the_error_names_the_limit";
    if std::env::var(INNER).as_deref() == Ok(name) {
        return inner("nofile");
    }
    if !common::live_ok(name) {
        return;
    }
    // Standard input, output and error, and what the test harness holds: no room for the
    // rings.
    let got = deprived(name, &["prlimit", "--nofile=5:5"]);
    assert!(
        got.starts_with("RESULT nofile too-many-files None Some(OpenFiles) |"),
        "{got}"
    );
}
