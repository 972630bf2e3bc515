//! `record --metrics`' costs apart from the machine's noise: counting an update on the
//! session's thread, publishing the counts, and encoding a scrape.
//!
//!   CARGO_TARGET_DIR=/tmp/bench-target cargo bench --bench metrics
//!
//! Groups:
//!   put/fork_exit        a FORK and an EXIT of one group (a fork storm's updates), per update;
//!   put/setns_2_groups   NAMESPACES records with their setns cause, two groups in turn (a
//!                        setns storm's), per update;
//!   put/none             the same updates to no counts: what `record` does without --metrics;
//!   publish/1000_groups  a snapshot of 1,000 live groups (every 500 ms);
//!   encode/1000_groups   the text of a scrape of those 1,000 groups (HTTP not included).

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use nswatch::bpf::event::Syscall;
use nswatch::bpf::Cause;
use nswatch::metrics::{encode, Counts};
use nswatch::model::{Attributor, Change, ChangeKind, GroupId};
use nswatch::nsset::NsSet;
use nswatch::record::NsLink;
use nswatch::session::Update;
use nswatch::{Body, Event};
use std::sync::Arc;
use std::time::Duration;

const GROUPS: u32 = 1_000;

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

fn setns() -> Cause {
    Cause {
        syscall: Syscall::Setns,
        flags: 0x4000_0000,
        target: None,
        ret: 0,
        enter_ns: 0,
        exit_ns: 0,
        pid: 1,
        tid: 1,
        cpu: 0,
        comm: String::new(),
        before: [0; 10],
        after: [0; 10],
        child_tid: None,
        dev: 4,
        flags_unread: false,
        cgroup: 0,
    }
}

/// A model with `GROUPS` containers of 5 tasks each, and counts that saw them start.
fn build() -> (Attributor, Counts) {
    let sets: Vec<NsSet> = (0..=GROUPS).map(set).collect();
    let mut m = Attributor::new(sets[0]);
    let mut counts = Counts::new(Arc::default(), Duration::from_secs(300));
    let mut time = 1_000;
    for i in 0..GROUPS * 5 {
        let body = Body::Namespaces {
            ns: &sets[(1 + i % GROUPS) as usize],
            comm: None,
            cause: None,
        };
        let e = ev(time, 1_000 + i, body);
        let group = m.observe(&e);
        let changes: Vec<_> = m.take_changes().collect();
        for c in &changes {
            counts.put(&m, &Update::Group(c));
        }
        counts.put(&m, &Update::Event { event: &e, group });
        time += 10;
    }
    (m, counts)
}

fn put(c: &mut Criterion) {
    let (m, mut counts) = build();
    let mut g = c.benchmark_group("put");
    g.throughput(Throughput::Elements(2));
    let fork = ev(1, 7, Body::Fork { ppid: 1, ptid: 1 });
    let exit = ev(2, 7, Body::Exit { ppid: 1, ptid: 1 });
    let host = Some(GroupId::HOST);
    g.bench_function("fork_exit", |b| {
        b.iter(|| {
            counts.put(
                &m,
                black_box(&Update::Event {
                    event: &fork,
                    group: host,
                }),
            );
            counts.put(
                &m,
                black_box(&Update::Event {
                    event: &exit,
                    group: host,
                }),
            );
        })
    });
    let (host_set, sb) = (set(0), set(1));
    let cause = setns();
    let there = ev(
        3,
        7,
        Body::Namespaces {
            ns: &sb,
            comm: None,
            cause: Some(&cause),
        },
    );
    let back = ev(
        4,
        7,
        Body::Namespaces {
            ns: &host_set,
            comm: None,
            cause: Some(&cause),
        },
    );
    let sb_group = Some(GroupId(1));
    g.bench_function("setns_2_groups", |b| {
        b.iter(|| {
            counts.put(
                &m,
                black_box(&Update::Event {
                    event: &there,
                    group: sb_group,
                }),
            );
            counts.put(
                &m,
                black_box(&Update::Event {
                    event: &back,
                    group: host,
                }),
            );
        })
    });
    let mut none: Option<Counts> = None;
    g.bench_function("none", |b| {
        b.iter(|| {
            for (e, grp) in [(&there, sb_group), (&back, host)] {
                if let Some(c) = black_box(&mut none).as_mut() {
                    c.put(
                        &m,
                        &Update::Event {
                            event: e,
                            group: grp,
                        },
                    );
                }
            }
        })
    });
    g.finish();
}

fn publish_and_encode(c: &mut Criterion) {
    let (m, _) = build();
    let shared = Arc::default();
    let mut counts = Counts::new(Arc::clone(&shared), Duration::from_secs(300));
    for gid in 1..=GROUPS {
        let start = Change {
            time_ns: 1,
            kind: ChangeKind::Start,
            group: GroupId(gid),
        };
        counts.put(&m, &Update::Group(&start));
    }
    counts.publish_model(&m, 10_000_000);
    let text = encode(&shared);
    assert!(
        text.matches("nswatch_group_tasks{").count() >= GROUPS as usize,
        "{text}"
    );
    let mut g = c.benchmark_group("publish");
    g.bench_function("1000_groups", |b| {
        b.iter(|| counts.publish_model(&m, 10_000_000))
    });
    g.finish();
    let mut g = c.benchmark_group("encode");
    g.bench_function("1000_groups", |b| b.iter(|| black_box(encode(&shared))));
    g.finish();
}

criterion_group!(benches, put, publish_and_encode);
criterion_main!(benches);
