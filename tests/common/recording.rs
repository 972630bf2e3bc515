//! `nswatch ps --format json` and a live `nswatch record` to a file, as the live container
//! tests read them.

use serde_json::Value;
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `nswatch ps --format json --all`, parsed.
pub fn ps() -> Value {
    serde_json::from_str(&super::nswatch(&["ps", "--format", "json", "--all"])).unwrap()
}

/// The group of `ps` output that has process `pid`.
pub fn group_of(ps: &Value, pid: u32) -> Option<Value> {
    ps["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| {
            g["processes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["pid"] == pid)
        })
        .cloned()
}

/// `nswatch record` in the background, stopped with SIGINT.
pub struct Recording {
    child: Child,
    file: tempfile::NamedTempFile,
}

impl Recording {
    /// Starts it and waits until its start-up scan is in the file.
    pub fn start() -> Recording {
        let file = tempfile::NamedTempFile::new().unwrap();
        // Default settings: a group is named when the call that made it wakes the reader,
        // not when its start is handed on up to --latency (250 ms) later; these
        // containers live for ~150 ms.
        let child = Command::new(super::nswatch_bin())
            .args(["record", "-o"])
            .arg(file.path())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Started once the start-up scan is in the file.
        let t0 = Instant::now();
        while std::fs::metadata(file.path()).map_or(0, |m| m.len()) == 0 {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "record did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Recording { child, file }
    }

    /// Stops it (SIGINT, after the last records' reorder window) and returns its events
    /// and its standard error.
    pub fn stop(mut self) -> (Vec<Value>, String) {
        // The last records wait out the reorder window and a wake-up.
        std::thread::sleep(Duration::from_millis(300));
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let mut err = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        assert!(self.child.wait().unwrap().success(), "{err}");
        let text = std::fs::read_to_string(self.file.path()).unwrap();
        let evs = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (evs, err)
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
