//! `record -o FILE --rotate-size` under a fork loop (benches/stress.c), followed by GNU
//! `tail -F`, alone in its test binary: the loop keeps both CPUs busy and would make the
//! recorders of other live tests lose records. Needs root and perf_event_open: skips with
//! the reason otherwise, fails under NSWATCH_REQUIRE_LIVE=1.

mod common;
use common::{interrupt, live_ok, start_recording, Recorder};

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long each recording runs under the loop.
const RUN: Duration = Duration::from_secs(4);

/// `FILE.n`.
fn rotated(file: &Path, n: u64) -> PathBuf {
    PathBuf::from(format!("{}.{n}", file.display()))
}

/// A number the summary gives after `label`.
fn summary_number(err: &str, label: &str) -> u64 {
    let at = err
        .find(label)
        .unwrap_or_else(|| panic!("no {label:?} in the summary:\n{err}"));
    err[at + label.len()..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("no number after {label:?}:\n{err}"))
}

/// Lines the summary says were written: events, and group events.
fn lines_written(err: &str) -> u64 {
    let events = err
        .lines()
        .find_map(|l| l.trim().strip_prefix("events written: "))
        .unwrap_or_else(|| panic!("no events line:\n{err}"));
    let events = events.split(';').next().unwrap();
    let mut n: u64 = events
        .split(", ")
        .map(|kv| kv.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    for g in ["container_start ", "container_exit ", "container_rename "] {
        n += summary_number(err, g);
    }
    n
}

/// Every line is one JSON value, none blank, and the bytes end with a newline.
fn parse_lines(bytes: &[u8], what: &str) -> Vec<Value> {
    if bytes.is_empty() {
        return Vec::new();
    }
    assert_eq!(bytes.last(), Some(&b'\n'), "{what} ends inside a line");
    bytes[..bytes.len() - 1]
        .split(|&b| b == b'\n')
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_slice(l)
                .unwrap_or_else(|e| panic!("{what}, line {}: {e}: {:?}", i + 1, l))
        })
        .collect()
}

/// The events of the loop's children: (type, tid) in file order. The start-up scan's
/// account of a child it found running (`"synthesized": true`) is no event of the loop:
/// the scan runs while the rings already read, so a child whose FORK came from a ring
/// may be found by the scan too, and described again.
fn children_events(evs: &[Value], stress: u64) -> Vec<(String, u64)> {
    let mut children = BTreeSet::new();
    let mut out = Vec::new();
    for e in evs.iter().filter(|e| e["synthesized"] != true) {
        let ty = e["type"].as_str().unwrap_or("").to_string();
        let tid = e["tid"].as_u64().unwrap_or(0);
        if ty == "fork" && e["ppid"] == stress && tid != stress {
            children.insert(tid);
        }
        // A child's exit, or an event of a child whose fork is in the file.
        let ours = (ty == "exit" && e["ppid"] == stress && tid != stress)
            || (children.contains(&tid) && e["pid"] == tid);
        if ours {
            out.push((ty.clone(), tid));
        }
        if ty == "exit" && ours {
            children.remove(&tid);
        }
    }
    out
}

/// The loop forks, waits for the child, forks again: in time order each child's fork,
/// then its other events, then its exit, one child at a time. A repeated or missing line
/// breaks the pattern. The first child may have been forked before the recording and the
/// last may still be running at its end.
fn assert_one_child_at_a_time(seq: &[(String, u64)], what: &str) -> BTreeMap<String, u64> {
    let start = seq.iter().position(|(t, _)| t == "fork").unwrap();
    let mut types = BTreeMap::new();
    let mut current: Option<u64> = None;
    let mut forks = 0;
    for (i, (ty, tid)) in seq[start..].iter().enumerate() {
        *types.entry(ty.clone()).or_insert(0) += 1;
        match (ty.as_str(), current) {
            ("fork", None) => {
                current = Some(*tid);
                forks += 1;
            }
            ("exit", Some(c)) if c == *tid => current = None,
            (_, Some(c)) if c == *tid && ty != "fork" && ty != "exit" => {}
            _ => panic!(
                "{what}: {ty} of {tid} at the loop's event {} with {current:?} running: {:?}",
                start + i,
                &seq[(start + i).saturating_sub(4)..(start + i + 4).min(seq.len())]
            ),
        }
    }
    assert!(forks > 1000, "{what}: {forks} forks");
    types
}

/// A recording of the fork loop for [`RUN`], with `flags`; when `follow`, `tail -n +1 -F
/// FILE` follows it from when its start-up scan is in. Returns the bytes of the files
/// (oldest first, FILE last), what tail printed, and the summary.
fn record_loop(
    dir: &Path,
    stress: &Path,
    flags: &[&str],
    follow: bool,
) -> (Vec<Vec<u8>>, Option<Vec<u8>>, String, u64) {
    let file = dir.join("out.ndjson");
    let load = Recorder(
        Command::new(stress)
            .args(["fork", "100000000"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = load.id() as u64;
    // Started on an existing FILE (empty: the recorder removes it and makes its own), GNU
    // tail follows it with inotify, not by polling the name (see docs/USAGE.md).
    let tail_out = dir.join("tail.out");
    let tail = follow.then(|| {
        std::fs::write(&file, b"").unwrap();
        Recorder(
            Command::new("tail")
                .args(["-n", "+1", "-F"])
                .arg(&file)
                .stdout(std::fs::File::create(&tail_out).unwrap())
                .stderr(std::fs::File::create(dir.join("tail.err")).unwrap())
                .spawn()
                .unwrap(),
        )
    });
    if follow {
        // tail's inotify watches are set up.
        std::thread::sleep(Duration::from_millis(300));
    }
    let mut rec = start_recording(flags, &file, Stdio::piped());
    std::thread::sleep(RUN);
    let (status, err) = interrupt(&mut rec);
    drop(load);
    assert!(status.success(), "{status:?}: {err}");
    let rotations = if flags.contains(&"--rotate-size") {
        summary_number(&err, "output rotated ")
    } else {
        0
    };
    let mut files: Vec<Vec<u8>> = (1..=rotations)
        .rev()
        .map(|n| std::fs::read(rotated(&file, n)).unwrap())
        .collect();
    files.push(std::fs::read(&file).unwrap());
    assert!(
        !rotated(&file, rotations + 1).exists(),
        "more files than rotations"
    );
    let total: usize = files.iter().map(Vec::len).sum();
    let followed = tail.map(|mut t| {
        // tail catches up with the last rotation and lines, or stops.
        let t0 = Instant::now();
        let mut last = (0, Instant::now());
        loop {
            let now = std::fs::metadata(&tail_out).unwrap().len();
            if now >= total as u64 || t0.elapsed() > Duration::from_secs(20) {
                break;
            }
            if now != last.0 {
                last = (now, Instant::now());
            } else if last.1.elapsed() > Duration::from_secs(2) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Nothing more (repeated lines would come now).
        std::thread::sleep(Duration::from_millis(300));
        let _ = t.kill();
        let _ = t.wait();
        std::fs::read(&tail_out).unwrap()
    });
    (files, followed, err, pid)
}

#[test]
fn rotated_files_hold_every_line_once_and_tail_follows_them() {
    if !live_ok("rotated_files_hold_every_line_once_and_tail_follows_them") {
        return;
    }
    let stress = common::build_c("benches/stress.c");
    // The same load unrotated: which events its children get.
    let plain = tempfile::tempdir().unwrap();
    let (files, _, err, pid) = record_loop(plain.path(), &stress, &[], false);
    let evs = parse_lines(&files[0], "the unrotated file");
    assert_eq!(evs.len() as u64, lines_written(&err), "{err}");
    let plain_types: BTreeSet<String> = children_events(&evs, pid)
        .into_iter()
        .map(|(t, _)| t)
        .collect();

    // 1 MiB: ~5 rotations a second under the loop. `tail -F` follows the name, so a file
    // whose whole life (created, filled, renamed away) passes while tail waits for a CPU
    // is never opened by it: at 256 KiB (18 a second) a tail starved for ~60 ms by the
    // loop on a 2-CPU machine missed one whole file.
    let size: u64 = 1 << 20;
    for how in [&[][..], &["--buffered"][..]] {
        let dir = tempfile::tempdir().unwrap();
        let mut flags = vec!["--rotate-size", "1M", "--rotate-keep", "1000"];
        flags.extend(how);
        let (files, followed, err, pid) = record_loop(dir.path(), &stress, &flags, true);
        let what = format!("rotated {how:?}");
        assert!(files.len() > 3, "{what}: {} files: {err}", files.len());
        let mut evs = Vec::new();
        for (i, f) in files.iter().enumerate() {
            let name = format!("{what}: file {} of {}", i + 1, files.len());
            // Cut after a whole line at the size or past it, by less than a write.
            if i + 1 < files.len() {
                assert!(f.len() as u64 >= size, "{name}: {} bytes", f.len());
                assert!(f.len() < (size + (2 << 20)) as usize, "{name}: {}", f.len());
            }
            evs.extend(parse_lines(f, &name));
        }
        // The summary's own accounting: each line written is in exactly one file.
        assert_eq!(evs.len() as u64, lines_written(&err), "{what}: {err}");
        // Every fork and exit of the loop once, in order, whatever file it is in.
        let seq = children_events(&evs, pid);
        if summary_number(&err, "lost records ") == 0 {
            let types = assert_one_child_at_a_time(&seq, &what);
            let set: BTreeSet<String> = types.keys().cloned().collect();
            assert_eq!(set, plain_types, "{what}: the children's event types");
            let forks = types["fork"];
            for (t, n) in &types {
                assert!(n.abs_diff(forks) <= 1, "{what}: {t} {n}, fork {forks}");
            }
        } else {
            eprintln!("{what}: records were lost, the one-child-at-a-time check is skipped");
        }
        // `tail -F` printed each line once: the files, oldest to newest.
        let followed = followed.unwrap();
        let all = files.concat();
        if followed != all {
            let tail_err = std::fs::read_to_string(dir.path().join("tail.err")).unwrap();
            let diff = all.iter().zip(&followed).position(|(a, b)| a != b);
            panic!(
                "{what}: tail -F printed {} bytes, the files hold {} (sizes {:?}); first \
                 difference at {diff:?}; tail said:\n{tail_err}",
                followed.len(),
                all.len(),
                files.iter().map(Vec::len).collect::<Vec<_>>(),
            );
        }
    }
}
