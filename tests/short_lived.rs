//! Short-lived containers are named in their `container_start`, at `nswatch record`'s default
//! settings: for every runtime of tests/common/runtimes.rs, containers whose payload lives 0
//! or 50 ms, run to their end one after another in the foreground (`--rm` where the runtime
//! has it), each have a `container_start` that carries the runtime's own names exactly
//! ([`expected_naming`]). Needs root: skips with the reason otherwise, fails under
//! NSWATCH_REQUIRE_LIVE=1.
//!
//! `naming_rate` (ignored; benches/naming_rate.sh runs it) is the same at a larger scale,
//! payloads of 0, 50, 200 and 1000 ms, and prints the rate per runtime with the misses.

mod common;
use common::runtimes::{expected_naming, runtime_ok, unavailable, Container, Runtime, ALL};
use serde_json::Value;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// One runtime at a time: the claim is naming at default settings on a machine, as the
/// benchmark measures it, not under fourteen recorders and their runtimes starting
/// containers at once on two CPUs (where a first task can end before any reader runs).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// CLOCK_MONOTONIC, the clock of the recording's `time_ns`.
fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The command that lives about `ms` milliseconds (on the busybox rootfs and on the host).
fn payload(ms: u32) -> Vec<String> {
    if ms == 0 {
        vec!["/bin/true".into()]
    } else {
        vec!["/bin/sleep".into(), format!("{}", f64::from(ms) / 1000.0)]
    }
}

/// One container run to its end, and when: from before the runtime was asked to after it
/// returned, on the recording's clock.
struct Run {
    c: Container,
    payload_ms: u32,
    from_ns: u64,
    to_ns: u64,
}

/// Runs `n` containers of `rt` one after another under one `nswatch record` at default
/// settings, their payloads living `payloads_ms` in turn; the runs and the recording's events.
fn record_runs(rt: Runtime, n: usize, payloads_ms: &[u32]) -> (Vec<Run>, Vec<Value>) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rec.ndjson");
    let err_path = dir.path().join("rec.err");
    let err = std::fs::File::create(&err_path).unwrap();
    let mut rec = common::start_recording(&[], &file, err.into());
    let mut runs = Vec::new();
    for i in 0..n {
        let ms = payloads_ms[i % payloads_ms.len()];
        let args = payload(ms);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let from_ns = monotonic_ns();
        let c = Container::run_to_end(rt, "s", &args);
        let to_ns = monotonic_ns();
        runs.push(Run {
            c,
            payload_ms: ms,
            from_ns,
            to_ns,
        });
    }
    // The last records wait out the reorder window and a wake-up.
    std::thread::sleep(Duration::from_millis(300));
    let (status, _) = common::interrupt(&mut rec);
    let err = std::fs::read_to_string(&err_path).unwrap_or_default();
    assert!(status.success(), "record: {status}: {err}");
    let evs = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (runs, evs)
}

/// How many containers were named in a `container_start`, and what the others got.
struct Score {
    started: usize,
    named: usize,
    misses: Vec<String>,
}

/// Scores `runs` against the recording: a container is named at start when a
/// `container_start` made while it ran carries every field of [`expected_naming`] exactly.
fn score(runs: &[Run], evs: &[Value]) -> Score {
    let mut out = Score {
        started: runs.len(),
        named: 0,
        misses: Vec::new(),
    };
    for r in runs {
        let want = expected_naming(&r.c);
        let starts: Vec<&Value> = evs
            .iter()
            .filter(|e| e["type"] == "container_start")
            .filter(|e| {
                e["time_ns"]
                    .as_u64()
                    .is_some_and(|t| (r.from_ns..=r.to_ns).contains(&t))
            })
            .collect();
        if starts
            .iter()
            .any(|e| want.iter().all(|(field, v)| e[*field] == *v))
        {
            out.named += 1;
            continue;
        }
        let mut miss = format!("{} ({} ms):", r.c.id(), r.payload_ms);
        if starts.is_empty() {
            miss.push_str(" no container_start");
        }
        for e in starts {
            let got: Vec<String> = want
                .iter()
                .filter(|(field, v)| e[*field] != *v)
                .map(|(field, _)| format!("{field}={}", e[*field]))
                .collect();
            let _ = write!(miss, " [{} {}]", e["container"], got.join(" "));
        }
        out.misses.push(miss);
    }
    out
}

/// Runs 4 containers of `rt` (payloads 0 and 50 ms) and asserts each is named at start.
fn named_at_start(rt: Runtime) {
    let what = format!("short_lived_{}", rt.label());
    if !runtime_ok(&what, rt) {
        return;
    }
    let (runs, evs) = {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        record_runs(rt, 4, &[0, 50])
    };
    let s = score(&runs, &evs);
    assert_eq!(s.started, 4);
    assert!(
        s.named == s.started,
        "{what}: {}/{} named at start; misses:\n{}",
        s.named,
        s.started,
        s.misses.join("\n")
    );
}

#[test]
fn short_lived_runc() {
    named_at_start(Runtime::Runc);
}

#[test]
fn short_lived_crun() {
    named_at_start(Runtime::Crun);
}

#[test]
fn short_lived_lxc() {
    named_at_start(Runtime::Lxc);
}

#[test]
fn short_lived_nspawn() {
    named_at_start(Runtime::Nspawn);
}

#[test]
fn short_lived_nspawn_without_systemd() {
    named_at_start(Runtime::NspawnBare);
}

#[test]
fn short_lived_bwrap() {
    named_at_start(Runtime::Bwrap);
}

#[test]
fn short_lived_firejail() {
    named_at_start(Runtime::Firejail);
}

#[test]
fn short_lived_firejail_host_net() {
    named_at_start(Runtime::FirejailHostNet);
}

#[test]
fn short_lived_ip_netns() {
    named_at_start(Runtime::Netns);
}

#[test]
fn short_lived_docker() {
    named_at_start(Runtime::Docker);
}

#[test]
fn short_lived_podman() {
    named_at_start(Runtime::Podman);
}

#[test]
fn short_lived_podman_pod() {
    named_at_start(Runtime::PodmanPod);
}

#[test]
fn short_lived_podman_rootless() {
    named_at_start(Runtime::PodmanRootless);
}

#[test]
fn short_lived_ctr() {
    named_at_start(Runtime::Ctr);
}

/// The naming rate, for benches/naming_rate.sh: NSWATCH_RATE_N containers (default 20) of
/// every runtime (or those labelled in NSWATCH_RATE_RUNTIMES, by `Runtime::label`), each
/// under its own recording, payloads of 0, 50, 200 and 1000 ms in turn. Writes the table to
/// NSWATCH_RATE_TABLE (default: standard output).
#[test]
#[ignore = "a benchmark: benches/naming_rate.sh"]
fn naming_rate() {
    let n: usize = std::env::var("NSWATCH_RATE_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let only = std::env::var("NSWATCH_RATE_RUNTIMES").unwrap_or_default();
    let only: Vec<&str> = only.split([' ', ',']).filter(|s| !s.is_empty()).collect();
    let mut table = format!(
        "{:<10} {:>7} {:>6} {:>6}  misses\n",
        "runtime", "started", "named", "rate"
    );
    for &rt in ALL {
        if !only.is_empty() && !only.contains(&rt.label()) {
            continue;
        }
        if let Some(why) = unavailable(rt) {
            let _ = writeln!(table, "{:<10} skipped: {why}", rt.label());
            continue;
        }
        let result = std::panic::catch_unwind(|| {
            let (runs, evs) = record_runs(rt, n, &[0, 50, 200, 1000]);
            score(&runs, &evs)
        });
        match result {
            Ok(s) => {
                let _ = writeln!(
                    table,
                    "{:<10} {:>7} {:>6} {:>5.0}%  {}",
                    rt.label(),
                    s.started,
                    s.named,
                    100.0 * s.named as f64 / s.started.max(1) as f64,
                    s.misses.first().map_or("", String::as_str)
                );
                for m in s.misses.iter().skip(1) {
                    let _ = writeln!(table, "{:<35}{m}", "");
                }
            }
            Err(e) => {
                let why = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                let why = why.lines().next().unwrap_or("").to_string();
                let _ = writeln!(table, "{:<10} failed: {why}", rt.label());
            }
        }
        eprint!(
            "{}",
            table
                .lines()
                .last()
                .map_or(String::new(), |l| l.to_string() + "\n")
        );
    }
    match std::env::var_os("NSWATCH_RATE_TABLE") {
        Some(path) => std::fs::write(path, &table).unwrap(),
        None => print!("{table}"),
    }
}
