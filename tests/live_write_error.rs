//! A recording whose output cannot be written, beside a fork loop, alone in its test
//! binary: the loop keeps both CPUs busy and would make the recorders of other live tests
//! lose records. Needs root and perf_event_open: skips with the reason otherwise, fails
//! under NSWATCH_REQUIRE_LIVE=1.

mod common;
use common::live_ok;
use std::process::{Command, Stdio};
use std::time::Duration;

/// An output that cannot be written (/dev/full: every write fails with ENOSPC) stops the
/// recording, with the error and where, and a non-zero exit, instead of tracing on with
/// the lines thrown away. Under a fork loop the first failing writes are those of full
/// buffers, made while events are handed on, and they come too often for the write
/// after a poll to be due (--latency 5s): the run must stop on them.
#[test]
fn a_write_error_stops_the_recording_and_says_where() {
    if !live_ok("a_write_error_stops_the_recording_and_says_where") {
        return;
    }
    let stress = common::build_c("benches/stress.c");
    let mut load = common::Recorder(
        Command::new(&stress)
            .args(["fork", "1000000"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut child = common::Recorder(
        Command::new(env!("CARGO_BIN_EXE_nswatch"))
            .args(["record", "--latency", "5s", "-o", "/dev/full"])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let t0 = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "still recording 20 s after its writes began to fail"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!status.success(), "{err}");
    assert!(err.contains("writing /dev/full"), "{err}");
    assert!(err.contains("No space left on device"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let _ = load.kill();
}
