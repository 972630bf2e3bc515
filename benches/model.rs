//! The container model's costs: `attribute()` lookups, event intake, memory per task.
//!
//!   CARGO_TARGET_DIR=/tmp/bench-target cargo bench --bench model
//!
//! The machine modelled: 50,000 tasks in 1,000 containers (50 each) plus the host, as a
//! busy Kubernetes node would have; a third of the tasks changed namespaces twice (setns),
//! so their history has three intervals.
//!
//! Groups:
//!   attribute/live_now     a sample of a live task at the current time (the common case);
//!   attribute/live_past    a sample timestamped before the task's last two setns;
//!   attribute/ended        a sample of one of the last 16 tasks to exit, taken just before
//!                          its exit (a profiler labelling samples as they come);
//!   attribute/ended_earlier  the same, for any of the last 1,000 to exit: the ended
//!                          tasks have no index by tid, so the lookup scans back over the
//!                          ends after the sample's time (500 on average here);
//!   attribute/miss         a tid the model never saw;
//!   observe/fork_ns_exit   intake of FORK + NAMESPACES + EXIT per child (events/s);
//!   observe/churn_group    intake of one short-lived sandbox's life (two tasks, six
//!                          events), with a history window: what giving back costs a group.
//!
//! Memory: the bench counts heap bytes with its own allocator while building the model and
//! prints bytes per task (tables, history, groups and sets included) before timing. Then
//! churn: 100,000 short-lived sandboxes (100 a second of event time, each a task and its
//! child), fed as a live session feeds them, into a model that keeps everything and one with
//! a 10 s history window; it prints the bytes each retains after they ended, per group, and
//! at checkpoints (the windowed model's stays flat).

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use nswatch::model::Attributor;
use nswatch::nsset::NsSet;
use nswatch::record::NsLink;
use nswatch::{Body, Event};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

struct Counting;
static HEAP: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator and only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        HEAP.fetch_add(l.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        HEAP.fetch_sub(l.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        HEAP.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const TASKS: u32 = 50_000;
const GROUPS: u32 = 1_000;
const FIRST_TID: u32 = 1_000;

fn set(group: u32) -> NsSet {
    let l = |ino| NsLink { dev: 4, ino };
    if group == 0 {
        return NsSet::from_links((1..=7).map(l));
    }
    let b = 10_000 + u64::from(group) * 10;
    NsSet::from_links([l(b), l(b + 1), l(b + 2), l(b + 3), l(5), l(b + 5), l(7)])
}

fn ev(time: u64, tid: u32, body: Body<'_>) -> Event<'_> {
    Event {
        time_ns: Some(time),
        cpu: Some(0),
        pid: Some(tid),
        tid: Some(tid),
        synthesized: false,
        body,
    }
}

/// The model above; returns it with the time of its last event.
fn build() -> (Attributor, u64) {
    let sets: Vec<NsSet> = (0..=GROUPS).map(set).collect();
    let mut m = Attributor::new(sets[0]);
    let mut time = 1_000;
    for i in 0..TASKS {
        let tid = FIRST_TID + i;
        let g = 1 + i % GROUPS;
        let body = Body::Namespaces {
            ns: &sets[g as usize],
            comm: Some("worker".into()),
            cause: None,
        };
        m.observe(&ev(time, tid, body));
        time += 10;
    }
    // A third of the tasks setns twice (out to a neighbour and back).
    for i in (0..TASKS).step_by(3) {
        let tid = FIRST_TID + i;
        let g = 1 + i % GROUPS;
        for target in [1 + (g % GROUPS), g] {
            let body = Body::Namespaces {
                ns: &sets[target as usize],
                comm: None,
                cause: None,
            };
            m.observe(&ev(time, tid, body));
            time += 10;
        }
    }
    m.take_changes().for_each(drop);
    (m, time)
}

fn attribute(c: &mut Criterion) {
    let before = HEAP.load(Ordering::Relaxed);
    let (mut m, now) = build();
    let bytes = HEAP.load(Ordering::Relaxed) - before;
    println!(
        "model memory: {} tasks, {} groups, {} bytes = {:.0} bytes per task \
         (task tables alone: {:.0} bytes per task)",
        m.live_tasks(),
        m.groups().len(),
        bytes,
        bytes as f64 / f64::from(TASKS),
        m.task_bytes() as f64 / f64::from(TASKS)
    );
    // Some tasks end, for the `ended` lookups: ended[i] at now + 10 * i.
    let ended: Vec<u32> = (0..1000).map(|i| FIRST_TID + 1 + i * 3).collect();
    let mut t = now;
    for &tid in &ended {
        m.observe(&ev(t, tid, Body::Exit { ppid: 1, ptid: 1 }));
        t += 10;
    }
    let sampled = |i: usize| (ended[i], now + 10 * i as u64 - 1);
    for i in 0..ended.len() {
        let (tid, at) = sampled(i);
        assert!(
            m.attribute(tid, tid, at).is_some(),
            "ended task {tid} found"
        );
    }
    let tids: Vec<u32> = (0..4096u32)
        .map(|i| FIRST_TID + (i.wrapping_mul(2_654_435_761) % TASKS))
        .filter(|tid| !ended.contains(tid))
        .collect();
    let mut g = c.benchmark_group("attribute");
    g.throughput(Throughput::Elements(1));
    let mut i = 0;
    g.bench_function("live_now", |b| {
        b.iter(|| {
            i = (i + 1) & 2047;
            black_box(m.attribute(tids[i], tids[i], t))
        })
    });
    let setns_tids: Vec<u32> = (0..TASKS)
        .step_by(3)
        .skip(1000)
        .map(|i| FIRST_TID + i)
        .collect();
    g.bench_function("live_past", |b| {
        b.iter(|| {
            i = (i + 1) & 2047;
            let tid = setns_tids[i];
            black_box(m.attribute(tid, tid, 1_000 + u64::from(tid - FIRST_TID) * 10))
        })
    });
    g.bench_function("ended", |b| {
        b.iter(|| {
            i = (i + 1) & 15;
            let (tid, at) = sampled(ended.len() - 1 - i);
            black_box(m.attribute(tid, tid, at))
        })
    });
    g.bench_function("ended_earlier", |b| {
        b.iter(|| {
            i = (i + 1) % ended.len();
            let (tid, at) = sampled(i);
            black_box(m.attribute(tid, tid, at))
        })
    });
    g.bench_function("miss", |b| {
        b.iter(|| {
            i = (i + 1) & 2047;
            black_box(m.attribute(1, 900_000 + i as u32, t))
        })
    });
    g.finish();
}

fn observe(c: &mut Criterion) {
    let (mut m, mut time) = build();
    let sets: Vec<NsSet> = (0..=GROUPS).map(set).collect();
    let mut g = c.benchmark_group("observe");
    g.throughput(Throughput::Elements(3));
    let mut n = 0u32;
    g.bench_function("fork_ns_exit", |b| {
        b.iter(|| {
            n = n.wrapping_add(1);
            let parent = FIRST_TID + (n % TASKS);
            let child = 2_000_000 + (n % 100_000);
            let gi = 1 + (parent - FIRST_TID) % GROUPS;
            let fork = Event {
                pid: Some(child),
                ..ev(
                    time,
                    child,
                    Body::Fork {
                        ppid: parent,
                        ptid: parent,
                    },
                )
            };
            black_box(m.observe(&fork));
            let ns = Body::Namespaces {
                ns: &sets[gi as usize],
                comm: None,
                cause: None,
            };
            black_box(m.observe(&ev(time, child, ns)));
            black_box(m.observe(&ev(
                time + 5,
                child,
                Body::Exit {
                    ppid: parent,
                    ptid: parent,
                },
            )));
            m.take_changes().for_each(drop);
            time += 10;
        })
    });
    // A setns storm as `report` reads it: one thread flipping between the host's set and
    // a sandbox's (held live by a helper task), each set under its stream index; its past
    // kept (a capture that can hold samples) or not (side-band records alone).
    let host = set(0);
    // The host's links with another uts namespace (links in the kernel's order: net, uts…).
    let sandbox = NsSet::from_links([1, 9_999, 3, 4, 5, 6, 7].map(|ino| NsLink { dev: 4, ino }));
    let sets = [&host, &sandbox];
    let ns_event = |time, tid, ns| {
        ev(
            time,
            tid,
            Body::Namespaces {
                ns,
                comm: Some("stress".into()),
                cause: None,
            },
        )
    };
    g.throughput(Throughput::Elements(1));
    for (name, keep) in [("setns_flip", true), ("setns_flip_without_past", false)] {
        let mut flip = Attributor::new(host);
        flip.set_grace_ns(nswatch::model::EXIT_TAIL_NS);
        flip.set_keep_past(keep);
        let (helper, storm) = (7_000_000, 7_000_001);
        flip.observe_at(&ns_event(time, helper, &sandbox), Some(1));
        flip.observe_at(&ns_event(time, storm, &host), Some(0));
        flip.take_changes().for_each(drop);
        let mut k = 0usize;
        g.bench_function(name, |b| {
            b.iter(|| {
                k ^= 1;
                time += 12_000;
                black_box(flip.observe_at(&ns_event(time, storm, sets[k]), Some(k as u32)));
                flip.take_changes().for_each(drop);
            })
        });
    }
    g.finish();
}

/// Short-lived sandbox `i`'s life at `t`, as a live session feeds it: a child of task 1
/// forks, gets network and uts namespaces never seen before, forks a child, both exit.
fn sandbox_life(m: &mut Attributor, t: u64, i: u64) {
    let l = |ino| NsLink { dev: 4, ino };
    let sb = NsSet::from_links([
        l(1_000_000 + i),
        l(2_000_000 + i),
        l(3),
        l(4),
        l(5),
        l(6),
        l(7),
    ]);
    let (child, grandchild) = (10_000 + (i % 30_000) as u32, 50_000 + (i % 30_000) as u32);
    let fork = |parent| Body::Fork {
        ppid: parent,
        ptid: parent,
    };
    let ns = || Body::Namespaces {
        ns: &sb,
        comm: Some("true".into()),
        cause: None,
    };
    let exit = Body::Exit { ppid: 1, ptid: 1 };
    m.observe(&ev(t, child, fork(1)));
    m.observe(&ev(t, child, ns()));
    m.observe(&ev(t + 10, grandchild, fork(child)));
    m.observe(&ev(t + 10, grandchild, ns()));
    m.observe(&ev(t + 20, grandchild, exit.clone()));
    m.observe(&ev(t + 30, child, exit));
    m.take_changes().for_each(drop);
}

/// Sandboxes churned for the memory figures, one every 10 ms of event time.
const CHURN: u64 = 100_000;
const CHURN_STEP: u64 = 10_000_000;
const CHURN_HISTORY: u64 = 10_000_000_000;

fn churn(c: &mut Criterion) {
    for history in [None, Some(CHURN_HISTORY)] {
        let before = HEAP.load(Ordering::Relaxed);
        let mut m = Attributor::new(set(0));
        m.set_history_ns(history);
        m.observe(&ev(
            0,
            1,
            Body::Namespaces {
                ns: &set(0),
                comm: Some("init".into()),
                cause: None,
            },
        ));
        let empty = HEAP.load(Ordering::Relaxed) - before;
        let mut points = Vec::new();
        let took = std::time::Instant::now();
        for i in 0..CHURN {
            sandbox_life(&mut m, 1_000_000_000 + i * CHURN_STEP, i);
            if (i + 1) % (CHURN / 5) == 0 {
                points.push(format!(
                    "{}: {:.2} MB",
                    i + 1,
                    (HEAP.load(Ordering::Relaxed) - before) as f64 / 1e6
                ));
            }
        }
        let per_group = took.elapsed() / CHURN as u32;
        // Past the last end by the grace period and the window: what stays is what was
        // retained of the groups (and tasks) that ended.
        let end = 1_000_000_000 + CHURN * CHURN_STEP;
        let ended = |m: &mut Attributor, t| {
            m.observe(&ev(
                t,
                1,
                Body::Comm {
                    comm: "init".into(),
                    exec: false,
                },
            ));
        };
        ended(&mut m, end + 100_000_000);
        let kept_now = HEAP.load(Ordering::Relaxed) - before - empty;
        let tasks_now = m.ended_tasks();
        // Past the grace period (5 s) and the window: what stays for good.
        ended(&mut m, end + CHURN_HISTORY + 6_000_000_000);
        let kept = HEAP.load(Ordering::Relaxed) - before - empty;
        println!(
            "churn, {}: {CHURN} sandboxes ({} tasks, {per_group:?} a sandbox's life) ended; \
             0.1 s after the last: {:.2} MB \
             ({} ended tasks in the grace period); 16 s after: {:.2} MB = {:.0} bytes per \
             group seen, {} groups and {} ended tasks kept (the model's own count {:.2} MB); \
             heap along the way: {}",
            match history {
                None => "everything kept".to_string(),
                Some(h) => format!("{} s history", h / 1_000_000_000),
            },
            2 * CHURN,
            kept_now as f64 / 1e6,
            tasks_now,
            kept as f64 / 1e6,
            kept as f64 / CHURN as f64,
            m.groups().len(),
            m.ended_tasks(),
            m.heap_bytes() as f64 / 1e6,
            points.join(", ")
        );
    }
    let mut m = Attributor::new(set(0));
    m.set_history_ns(Some(CHURN_HISTORY));
    let mut g = c.benchmark_group("observe");
    g.throughput(Throughput::Elements(1));
    let mut i = 0u64;
    g.bench_function("churn_group", |b| {
        b.iter(|| {
            sandbox_life(&mut m, 1_000_000_000 + i * CHURN_STEP, i);
            i += 1;
        })
    });
    g.finish();
}

criterion_group!(benches, attribute, observe, churn);
criterion_main!(benches);
