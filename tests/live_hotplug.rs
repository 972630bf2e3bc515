//! Live, as root: a CPU taken offline and brought back while `nswatch record` runs. The
//! kernel removes a CPU's perf events when it goes offline and does not bring them back;
//! nswatch must notice, open a new ring for the CPU when it is online again, and record
//! what then happens on it. Alone in its binary: no other test should run on one CPU.

mod common;

use common::{interrupt, live_ok, require_live, start_recording};
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CPU1: &str = "/sys/devices/system/cpu/cpu1/online";

/// Brings CPU 1 back online when dropped, whatever happened in between.
struct Online;

impl Drop for Online {
    fn drop(&mut self) {
        let _ = std::fs::write(CPU1, "1");
    }
}

fn set_cpu1(online: bool) {
    std::fs::write(CPU1, if online { "1" } else { "0" }).unwrap();
    let want = if online { "1" } else { "0" };
    let t0 = Instant::now();
    while std::fs::read_to_string(CPU1).unwrap().trim() != want {
        assert!(t0.elapsed() < Duration::from_secs(10), "cpu1 online={want}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Why CPU 1 cannot be taken offline here, if it cannot.
fn no_hotplug() -> Option<String> {
    match std::fs::read_to_string(CPU1) {
        Err(e) => Some(format!(
            "{CPU1}: {e} (one CPU, or no CPU hotplug in this kernel)"
        )),
        Ok(v) if v.trim() != "1" => Some("cpu1 is offline already".into()),
        Ok(_) => None,
    }
}

/// Runs `unshare -u true` pinned to `cpu` and returns its pid.
fn unshare_on(cpu: u32) -> u64 {
    let mut c = Command::new("taskset")
        .args(["-c", &cpu.to_string(), "unshare", "-u", "true"])
        .spawn()
        .unwrap();
    let pid = c.id() as u64;
    assert!(c.wait().unwrap().success());
    pid
}

/// The CPU of the NAMESPACES record `pid`'s unshare() made (the last of its pid's, after
/// the one of the new task, written wherever the fork ran), checking that it moved the
/// task to another uts namespace; `None` when the record is missing.
fn unshare_cpu(evs: &[Value], pid: u64) -> Option<u64> {
    let mine: Vec<&Value> = evs
        .iter()
        .filter(|e| e["type"] == "namespaces" && e["pid"] == pid && e["synthesized"] != true)
        .collect();
    let [.., born, changed] = mine[..] else {
        return None;
    };
    assert_ne!(born["ns"]["uts"], changed["ns"]["uts"], "pid {pid}");
    changed["cpu"].as_u64()
}

/// Lets the last records through (reorder window, a wake-up), stops the recording, and
/// checks that it ended well and that its summary says `hotplug` ("N rings stopped …");
/// returns the summary.
fn stop(child: &mut std::process::Child, hotplug: &str) -> String {
    std::thread::sleep(Duration::from_millis(300));
    let (status, err) = interrupt(child);
    assert!(status.success(), "{status:?}: {err}");
    assert!(err.contains(&format!("CPU hotplug: {hotplug}")), "{err}");
    err
}

fn read_events(file: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn a_cpu_taken_offline_and_back_is_recorded_again() {
    if !live_ok("a_cpu_taken_offline_and_back_is_recorded_again") {
        return;
    }
    if let Some(why) = no_hotplug() {
        if require_live() {
            panic!("cannot take a CPU offline ({why}) and NSWATCH_REQUIRE_LIVE=1");
        }
        eprintln!("SKIP a_cpu_taken_offline_and_back_is_recorded_again: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.ndjson");
    let mut child = start_recording(&[], &file, Stdio::piped());
    let _online = Online;
    let before = unshare_on(1);
    set_cpu1(false);
    let offline = unshare_on(0);
    set_cpu1(true);
    // Longer than nswatch's check for stopped rings, with room.
    std::thread::sleep(nswatch::live::CPU_CHECK + Duration::from_millis(700));
    let after: Vec<u64> = (0..3).map(|_| unshare_on(1)).collect();
    let err = stop(
        &mut child,
        "1 rings stopped (CPU offline), 1 opened (CPU online)",
    );
    let evs = read_events(&file);
    let recorded_on = |pid| unshare_cpu(&evs, pid);
    assert_eq!(recorded_on(before), Some(1), "before: {err}");
    assert_eq!(
        recorded_on(offline),
        Some(0),
        "while cpu1 was offline: {err}"
    );
    for pid in after {
        assert_eq!(
            recorded_on(pid),
            Some(1),
            "after cpu1 came back, pid {pid}: {err}"
        );
    }
    // What cpu1 missed is read from /proc again: synthesized events after the start.
    let time_of = |pid: u64| {
        evs.iter()
            .find(|e| e["type"] == "namespaces" && e["pid"] == pid && e["synthesized"] != true)
            .unwrap()["time_ns"]
            .as_u64()
            .unwrap()
    };
    let t = time_of(before);
    assert!(
        evs.iter()
            .any(|e| e["synthesized"] == true && e["time_ns"].as_u64() > Some(t)),
        "a /proc scan after the CPU went offline"
    );

    // A CPU offline when the recording starts gets its ring when it comes online.
    let file = dir.path().join("late.ndjson");
    set_cpu1(false);
    let mut child = start_recording(&[], &file, Stdio::piped());
    set_cpu1(true);
    std::thread::sleep(nswatch::live::CPU_CHECK + Duration::from_millis(700));
    let late = unshare_on(1);
    let err = stop(
        &mut child,
        "0 rings stopped (CPU offline), 1 opened (CPU online)",
    );
    assert_eq!(unshare_cpu(&read_events(&file), late), Some(1), "{err}");
}
