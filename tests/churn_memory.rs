//! A live session under container churn, as a node agent runs for weeks: thousands of
//! short-lived sandboxes (`unshare -n -u true`, each a new network and uts namespace) start
//! and end while the session runs with a short history window. Once the window has passed,
//! what ended is given back: the model's own count of its memory and the process's RSS stay
//! flat however many more come and go, a late question within the window is answered and
//! one before it is unknown. Alone in its binary, so that the RSS is the session's.
//!
//! Needs root: skips with the reason otherwise, fails under NSWATCH_REQUIRE_LIVE=1.
//! `NSWATCH_CHURN=N` sets how many sandboxes (default 3,000); the figures are printed.

mod common;
use nswatch::model::{ChangeKind, GroupId, Kind};
use nswatch::session::{Session, SessionOptions, Update};
use nswatch::Body;
use std::process::Command;
use std::time::{Duration, Instant};

/// The window: short, so that thousands of groups pass through it within the test.
const HISTORY: Duration = Duration::from_secs(2);

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

/// What the session holds at one moment.
#[derive(Debug, Clone, Copy)]
struct Sample {
    seen: u32,
    kept: usize,
    forgotten: u64,
    /// The model's heap but its task tables (those follow the whole machine's tasks, which
    /// other work on it makes come and go): the groups, their sets and indexes.
    heap: usize,
    tasks: usize,
    rss_kib: u64,
}

fn sample(s: &Session) -> Sample {
    let m = s.model();
    Sample {
        seen: m.groups_seen(),
        kept: m.groups().len(),
        forgotten: m.groups_forgotten(),
        heap: m.heap_bytes() - m.task_bytes(),
        tasks: m.task_bytes(),
        rss_kib: rss_kib(),
    }
}

#[test]
fn memory_stays_flat_under_churn_once_the_history_window_passed() {
    if !common::live_ok("memory_stays_flat_under_churn_once_the_history_window_passed") {
        return;
    }
    let n: u32 = std::env::var("NSWATCH_CHURN")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3_000);
    let mut s = Session::start(SessionOptions {
        history: Some(HISTORY),
        ..SessionOptions::default()
    })
    .unwrap();
    s.bootstrap(|_, _| {}).unwrap();
    let start = sample(&s);
    let mut churn = Command::new("sh")
        .args([
            "-c",
            &format!(
                "i=0; while [ $i -lt {n} ]; do unshare -n -u true || exit 1; i=$((i+1)); done"
            ),
        ])
        .spawn()
        .unwrap();
    let churn_pid = churn.id();
    let t0 = Instant::now();
    let mut sandboxes = 0u32;
    // The first sandbox's first task, when it was seen there, and the sandbox.
    let mut first: Option<(u32, u64, GroupId)> = None;
    let mut answered_within = None;
    let mut samples = Vec::new();
    let mut last_sample = Instant::now();
    let mut ended_at = None;
    loop {
        s.poll(Duration::from_millis(50), |model, u| match u {
            Update::Group(c) if c.kind == ChangeKind::Start => {
                sandboxes += u32::from(model.group(c.group).kind == Kind::Sandbox);
            }
            Update::Event {
                event,
                group: Some(g),
            } if first.is_none()
                && matches!(event.body, Body::Namespaces { .. })
                && model.group(g).kind == Kind::Sandbox
                && event
                    .tid
                    .and_then(|tid| model.task(tid))
                    .is_some_and(|t| t.ppid == churn_pid) =>
            {
                first = Some((event.tid.unwrap(), event.time_ns.unwrap(), g));
            }
            _ => {}
        })
        .unwrap();
        // Asked again at the next poll, within the window: the sandbox.
        if let (None, Some((tid, at, _))) = (answered_within, first) {
            answered_within = Some(s.model().attribute(0, tid, at).map(|a| a.group));
        }
        if last_sample.elapsed() >= Duration::from_millis(500) {
            last_sample = Instant::now();
            samples.push(sample(&s));
        }
        if ended_at.is_none() && churn.try_wait().unwrap().is_some() {
            ended_at = Some(Instant::now());
            samples.push(sample(&s));
        }
        // After the churn, two windows and a second more: every sandbox is before the
        // window, and the last few, waiting to be given back together, have waited one.
        if ended_at.is_some_and(|e| e.elapsed() > 2 * HISTORY + Duration::from_secs(1)) {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(400),
            "the churn of {n} sandboxes took longer than 400 s"
        );
    }
    assert!(churn.wait().unwrap().success(), "unshare -n -u true failed");
    let end = sample(&s);
    let churned = t0.elapsed();
    println!("{n} sandboxes in {churned:.1?}; at start {start:?}; at the end {end:?}");
    for x in &samples {
        println!("  {x:?}");
    }
    assert!(sandboxes >= n, "{sandboxes} sandbox starts seen of {n}");
    // Within the window the first sandbox's task was answered by it; now, before the
    // window, it is unknown, and the sandbox itself is given back (its id answers none).
    let (tid, at, g) = first.expect("a namespaces event of a sandbox's task");
    assert_eq!(answered_within, Some(Some(g)), "asked within the window");
    assert_eq!(
        s.model().attribute(0, tid, at),
        None,
        "asked before the window"
    );
    assert!(s.model().find_group(g).is_none(), "{g:?} given back");
    // What is kept is the live groups and at most a batch waiting to be given back, not
    // the thousands seen.
    assert!(end.seen >= start.seen + n);
    assert!(
        end.kept <= start.kept + 200,
        "{} groups kept of {} seen",
        end.kept,
        end.seen
    );
    assert!(end.forgotten >= u64::from(n) - 200);
    // Flat once the window has passed: from the first sample with groups given back to the
    // end of the churn, the RSS grows by a small part of a group's worth per group
    // (everything kept, `history: None`: ~800 bytes of the model's groups and 744 of RSS
    // per group; with the window 85 to 320, the tables growing to the window's peak; the
    // task tables, which follow the load other work puts on the machine, are left out).
    let base = samples
        .iter()
        .position(|x| x.forgotten > 0)
        .expect("groups given back while the churn ran");
    let (b, e) = (samples[base], *samples.last().unwrap());
    let more = e.seen - b.seen;
    assert!(
        more >= n / 3,
        "only {more} groups churned after the window passed"
    );
    // The RSS less what the task tables grew by: those follow the machine's tasks.
    let rss = (e.rss_kib * 1024).saturating_sub(b.rss_kib * 1024);
    let rss_per_group =
        rss.saturating_sub(e.tasks.saturating_sub(b.tasks) as u64) as f64 / f64::from(more);
    let peak = samples.iter().map(|x| x.heap).max().unwrap();
    println!(
        "after the window passed: {more} groups more, the model's groups {} -> {} bytes \
         (peak {peak}), RSS {} -> {} KiB ({rss_per_group:.1} bytes per group besides the task \
         tables' {} -> {} bytes)",
        b.heap, e.heap, b.rss_kib, e.rss_kib, b.tasks, e.tasks
    );
    // Once the churn has stopped and passed the window, the model's groups, sets and
    // indexes are back to what the groups still kept need: nothing is held per group seen
    // (3,000 groups would show 20 bytes each), and the tables sized to the churn's peak
    // are given back.
    assert!(
        e.heap <= start.heap + 64 * 1024 + e.kept * 1024,
        "the model's groups hold {} bytes for {} groups kept ({} at start, {peak} at the peak)",
        e.heap,
        e.kept,
        start.heap
    );
    assert!(
        rss_per_group < 400.0,
        "{rss_per_group:.1} bytes of RSS per group"
    );
}
