use super::*;
use crate::model::group::bit;
use std::borrow::Cow;

fn link(ino: u64) -> NsLink {
    NsLink { dev: 4, ino }
}
fn set(inos: [u64; 7]) -> NsSet {
    NsSet::from_links(inos.map(link))
}
const HOST: [u64; 7] = [1, 2, 3, 4, 5, 6, 7];
const CT: [u64; 7] = [10, 11, 12, 14, 5, 16, 7];
const CT2: [u64; 7] = [10, 21, 22, 24, 5, 26, 7];
const NETNS: [u64; 7] = [30, 2, 3, 4, 5, 6, 7];

fn ev(time: u64, pid: u32, tid: u32, body: Body<'_>) -> Event<'_> {
    Event {
        time_ns: Some(time),
        cpu: Some(0),
        pid: Some(pid),
        tid: Some(tid),
        synthesized: false,
        body,
    }
}
fn ns(model: &mut Attributor, time: u64, pid: u32, tid: u32, s: &NsSet) -> GroupId {
    model
        .observe(&ev(
            time,
            pid,
            tid,
            Body::Namespaces {
                ns: s,
                comm: None,
                cause: None,
            },
        ))
        .unwrap()
}
fn cause(syscall: Syscall, flags: u64) -> Cause {
    Cause {
        syscall,
        flags,
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
fn fork(model: &mut Attributor, time: u64, pid: u32, tid: u32, ppid: u32) -> GroupId {
    let body = Body::Fork { ppid, ptid: ppid };
    model.observe(&ev(time, pid, tid, body)).unwrap()
}
fn exit(model: &mut Attributor, time: u64, tid: u32) -> Option<GroupId> {
    let body = Body::Exit { ppid: 1, ptid: 1 };
    model.observe(&ev(time, tid, tid, body))
}
fn changes(model: &mut Attributor) -> Vec<(ChangeKind, GroupId)> {
    model.take_changes().map(|c| (c.kind, c.group)).collect()
}

#[test]
fn sets_observed_by_a_streams_index_make_the_same_groups_across_compactions() {
    // Containers that come and go (each its own set, index i for set i), a task in each
    // flipping back to the host's set and in again; with a history window, ended
    // groups are given back and their sets' ids reused.
    let (mut a, mut b) = (Attributor::new(set(HOST)), Attributor::new(set(HOST)));
    for m in [&mut a, &mut b] {
        m.set_history_ns(Some(MIN_HISTORY_NS));
    }
    let sets: Vec<NsSet> = (0..400u64)
        .map(|i| set([100 + i, 11, 12, 14, 5, 1000 + i, 7]))
        .collect();
    let host = set(HOST);
    let mut time = 1;
    let mut freed = false;
    for (i, s) in sets.iter().enumerate() {
        let tid = 1000 + i as u32;
        for m in [&mut a, &mut b] {
            fork(m, time, tid, tid, 1);
        }
        for (k, (s, index)) in [(s, i as u32 + 1), (&host, 0), (s, i as u32 + 1)]
            .into_iter()
            .enumerate()
        {
            let t = time + k as u64;
            let body = || Body::Namespaces {
                ns: s,
                comm: Some(Cow::Borrowed("c")),
                cause: None,
            };
            let ga = a.observe(&ev(t, tid, tid, body()));
            let gb = b.observe_at(&ev(t, tid, tid, body()), Some(index));
            assert_eq!(ga, gb, "set {i}, step {k}");
            let g = ga.unwrap();
            assert_eq!(a.group(g).label, b.group(g).label);
            assert_eq!(a.attribute(tid, tid, t), b.attribute(tid, tid, t));
        }
        for m in [&mut a, &mut b] {
            exit(m, time + 5, tid);
        }
        // Groups with changes not taken yet are not given back.
        assert_eq!(changes(&mut a), changes(&mut b));
        time += 50_000_000;
        freed |= b.sets().id_bound() < i + 2;
    }
    assert!(freed, "no set was given back: the test misses the retain");
    // The first containers' sets again, by their indexes, whose ids went to others.
    for (i, s) in sets.iter().enumerate().take(20) {
        let tid = 5000 + i as u32;
        let body = || Body::Namespaces {
            ns: s,
            comm: None,
            cause: None,
        };
        let ga = a.observe(&ev(time, tid, tid, body()));
        let gb = b.observe_at(&ev(time, tid, tid, body()), Some(i as u32 + 1));
        assert_eq!(ga, gb, "set {i} again");
        assert_eq!(a.attribute(tid, tid, time), b.attribute(tid, tid, time));
        let set = b.attribute(tid, tid, time).unwrap().set;
        assert_eq!(b.sets().get(set), s);
    }
}

#[test]
fn a_group_of_kernel_threads_alone_is_marked_until_a_user_task_enters() {
    let mut m = Attributor::new(set(HOST));
    let own_mnt = set([1, 2, 3, 4, 5, 60, 7]);
    // kdevtmpfs: forked by kthreadd, its own mount namespace.
    fork(&mut m, 0, 27, 27, 2);
    let g = ns(&mut m, 0, 27, 27, &own_mnt);
    assert_ne!(g, GroupId::HOST);
    assert!(m.group(g).kernel_threads);
    // A user task's sandbox is not.
    fork(&mut m, 5, 300, 300, 1);
    let sb = ns(&mut m, 6, 300, 300, &set([10, 2, 3, 4, 5, 6, 7]));
    assert!(!m.group(sb).kernel_threads);
    assert!(!m.group(GroupId::HOST).kernel_threads);
    // A user task that joins the kernel thread's namespace makes it an ordinary group.
    ns(&mut m, 10, 300, 300, &own_mnt);
    assert!(!m.group(g).kernel_threads);
    // From /proc: the parent comes with the snapshot.
    let mut m = Attributor::new(set(HOST));
    let snap = TaskSnapshot {
        pid: 27,
        tid: 27,
        ppid: 2,
        nspid: 27,
        start_time: 1,
        comm: "kdevtmpfs",
        ns: own_mnt,
    };
    let g = m.add_snapshot(0, &snap);
    assert!(m.group(g).kernel_threads);
}

#[test]
fn an_exit_read_after_a_rescan_ended_its_task_keeps_its_group() {
    let mut m = Attributor::new(set(HOST));
    ns(&mut m, 1, 500, 500, &set(CT));
    let ct = fork(&mut m, 2, 501, 501, 500);
    assert_ne!(ct, GroupId::HOST);
    // Records were lost; /proc no longer has 501, whose EXIT is still in a ring.
    m.end_missing(3, 3, |tid| tid == 500);
    assert!(m.task(501).is_none());
    assert_eq!(exit(&mut m, 4, 501), Some(ct));
    // An EXIT of a tid the model never had is still no one's.
    assert_eq!(exit(&mut m, 5, 777), None);
}

#[test]
fn an_exit_stamped_during_the_scan_keeps_its_group_without_a_grace_period() {
    // `record` keeps no ended task (grace 0). A container's fork-loop children are known
    // from the records read before the start-up scan; they exit while the scan runs, so
    // the scan leaves them out, and their EXITs, stamped after the scan's start, are read
    // after the scan, when the clock has passed the end the scan gave them.
    let mut m = Attributor::new(set(HOST));
    m.set_grace_ns(0);
    let ct = ns(&mut m, 1_000, 500, 500, &set(CT));
    for tid in 501..=503 {
        fork(&mut m, 1_000 + u64::from(tid), tid, tid, 500);
        ns(&mut m, 1_000 + u64::from(tid), tid, tid, &set(CT));
    }
    // The scan ran from 2,000 to 9,000; 501 to 503 were gone when it looked.
    m.end_missing(2_000, 9_000, |tid| tid == 500);
    m.advance(2_000);
    assert_eq!(exit(&mut m, 2_050, 501), Some(ct));
    // The last time an EXIT the scan missed may be stamped counts from the scan's end;
    // past it, a tid reused by a task whose FORK was lost is not the one the scan missed.
    let last = 9_000 + UNSEEN_EXIT_NS;
    assert_eq!(exit(&mut m, last, 502), Some(ct));
    assert_eq!(exit(&mut m, last + 1, 503), None);
    assert_eq!(exit(&mut m, last + 2, 501), None, "one EXIT per life");
}

#[test]
fn an_end_far_behind_the_others_is_not_kept() {
    let mut m = Attributor::new(set(HOST));
    m.set_grace_ns(u64::MAX / 4);
    // Two tasks born early whose ends come late, past thousands of others' ends.
    fork(&mut m, 5, 90_001, 90_001, 1);
    fork(&mut m, 5, 90_002, 90_002, 1);
    let n = LATE_END_PLACES as u64 + 10;
    for i in 0..n {
        let tid = 1000 + i as u32;
        fork(&mut m, 100 + 2 * i, tid, tid, 1);
        exit(&mut m, 101 + 2 * i, tid);
    }
    // Just before the last few ends: put in its place, and found.
    exit(&mut m, 101 + 2 * (n - 5), 90_001);
    assert!(m.attribute(90_001, 90_001, 50).is_some());
    // Before all of them: not kept (a shift of thousands per such end otherwise).
    exit(&mut m, 50, 90_002);
    assert!(m.attribute(90_002, 90_002, 20).is_none());
    assert!(m.attribute(1000, 1000, 100).is_some(), "the others stay");
}

#[test]
fn a_group_entered_again_is_the_same_group_started_again() {
    let mut m = Attributor::new(set(HOST));
    let (h, ct) = (set(HOST), set(CT));
    // One thread bouncing host -> container -> host -> container (setns back and forth):
    // the container's namespaces live on (a file holds them), so it is one group.
    let a = ns(&mut m, 10, 100, 100, &ct);
    assert_eq!(ns(&mut m, 20, 100, 100, &h), GroupId::HOST);
    assert_eq!(m.group(a).ended_ns, Some(20));
    let b = ns(&mut m, 30, 100, 100, &ct);
    assert_eq!(a, b, "the ended group is entered again");
    assert!(m.group(a).is_live());
    assert_eq!(m.group(a).label, "ct-14");
    // Back within the linger: its end was never declared.
    assert_eq!(changes(&mut m), vec![(ChangeKind::Start, a)]);
    // Left for longer: its end is declared when the clock passes the linger, stamped
    // then; entered again after that, it starts again.
    ns(&mut m, 40, 100, 100, &h);
    ns(&mut m, 40 + EXIT_LINGER_NS - 1, 1, 1, &h);
    assert_eq!(changes(&mut m), vec![]);
    ns(&mut m, 50 + EXIT_LINGER_NS, 1, 1, &h);
    let ended: Vec<Change> = m.take_changes().collect();
    assert_eq!(
        ended,
        vec![Change {
            time_ns: 40 + EXIT_LINGER_NS,
            kind: ChangeKind::Exit,
            group: a
        }]
    );
    assert_eq!(ns(&mut m, 60 + EXIT_LINGER_NS, 100, 100, &ct), a);
    assert_eq!(changes(&mut m), vec![(ChangeKind::Start, a)]);
    // While it lives, another task in the same set joins it.
    assert_eq!(ns(&mut m, 40, 200, 200, &ct), a);
    assert_eq!(m.attribute(100, 100, 15).unwrap().group, a);
    assert_eq!(m.attribute(100, 100, 25).unwrap().group, GroupId::HOST);
    // A thousand more round trips make no new group.
    for i in 0..1000 {
        ns(&mut m, 100 + 2 * i, 300, 300, &h);
        ns(&mut m, 101 + 2 * i, 300, 300, &ct);
    }
    assert_eq!(m.groups().len(), 2);
}

#[test]
fn setns_names_no_creation_but_unshare_and_clone_do() {
    let mut c = cause(Syscall::Setns, libc::CLONE_NEWNET as u64);
    assert_eq!(created_by(&c), 0);
    c = cause(
        Syscall::Unshare,
        (libc::CLONE_NEWNS | libc::CLONE_NEWUTS) as u64,
    );
    assert_eq!(created_by(&c), bit(NsKind::Mnt) | bit(NsKind::Uts));
    c = cause(
        Syscall::Clone,
        (libc::CLONE_NEWPID | libc::CLONE_NEWNET) as u64,
    );
    assert_eq!(created_by(&c), bit(NsKind::Pid) | bit(NsKind::Net));
    c.ret = -1;
    assert_eq!(created_by(&c), 0, "a failed call creates nothing");
}

#[test]
fn fork_inherits_and_the_childs_record_at_the_same_time_wins() {
    let mut m = Attributor::new(set(HOST));
    let h = set(HOST);
    assert_eq!(ns(&mut m, 0, 100, 100, &h), GroupId::HOST);
    // runc's child: FORK (inherits host) then NAMESPACES with new pid+mnt, one timestamp.
    assert_eq!(fork(&mut m, 50, 101, 101, 100), GroupId::HOST);
    let ct = ns(&mut m, 50, 101, 101, &set(CT));
    assert_ne!(ct, GroupId::HOST);
    assert_eq!(changes(&mut m), vec![(ChangeKind::Start, ct)]);
    let t = m.task(101).unwrap();
    assert_eq!(t.origin, Origin::Born);
    assert_eq!(
        t.intervals().count(),
        1,
        "the provisional host interval was replaced"
    );
    assert_eq!(m.group(ct).kind, Kind::Container);
    assert_eq!(m.group(ct).live_tasks, 1);
    assert_eq!(m.group(GroupId::HOST).live_tasks, 1);
    // Its children and threads are in it without records of their own changing it.
    assert_eq!(fork(&mut m, 60, 102, 102, 101), ct);
    assert_eq!(m.attribute(102, 102, 61).unwrap().group, ct);
}

#[test]
fn setns_into_a_live_group_joins_and_unshare_creates() {
    let mut m = Attributor::new(set(HOST));
    ns(&mut m, 10, 200, 200, &set(CT));
    ns(&mut m, 0, 300, 300, &set(HOST));
    let ct = m.attribute(200, 200, 10).unwrap().group;
    // nsenter -t 200 -a: the host task moves in.
    assert_eq!(ns(&mut m, 100, 300, 300, &set(CT)), ct);
    assert_eq!(m.task(300).unwrap().origin, Origin::Joined);
    assert_eq!(m.group(ct).live_tasks, 2);
    // Before the move it was on the host: history answers for the past.
    assert_eq!(m.attribute(300, 300, 99).unwrap().group, GroupId::HOST);
    assert_eq!(m.attribute(300, 300, 100).unwrap().group, ct);
    // unshare -n from the host: a new sandbox it created.
    ns(&mut m, 0, 400, 400, &set(HOST));
    let sb = ns(&mut m, 150, 400, 400, &set(NETNS));
    assert_eq!(m.group(sb).kind, Kind::Sandbox);
    assert_eq!(m.task(400).unwrap().origin, Origin::Created);
}

#[test]
fn exit_ends_the_group_and_late_samples_still_find_it() {
    let mut m = Attributor::new(set(HOST));
    let ct = ns(&mut m, 10, 200, 200, &set(CT));
    changes(&mut m);
    assert_eq!(exit(&mut m, 1_000, 200), Some(ct));
    assert_eq!(changes(&mut m), vec![], "declared after the linger");
    m.finish();
    assert_eq!(changes(&mut m), vec![(ChangeKind::Exit, ct)]);
    assert!(!m.group(ct).is_live());
    assert_eq!(m.group(ct).ended_ns, Some(1_000));
    // A sample taken before the exit, delivered after it.
    let sample = Body::Sample {
        ip: Some(1),
        period: None,
        callchain: None,
    };
    assert_eq!(m.observe(&ev(900, 200, 200, sample.clone())), Some(ct));
    // One taken in its exit tail, after its EXIT record.
    assert_eq!(m.observe(&ev(1_001, 200, 200, sample.clone())), Some(ct));
    assert_eq!(m.attribute(201, 200, 1_001), None, "another process");
    assert_eq!(m.attribute(200, 200, 1_000 + EXIT_TAIL_NS + 1), None);
    // After the grace period it is forgotten.
    m.set_grace_ns(100);
    ns(&mut m, 5_000, 1, 1, &set(HOST));
    assert_eq!(m.attribute(200, 200, 900), None);
    assert_eq!(m.ended_tasks(), 0);
}

#[test]
fn ended_tasks_stay_bounded_after_a_burst() {
    // A burst of 50,000 short tasks, then a trickle: the burst is pruned and the
    // trickle needs no more room than the burst had.
    let mut m = Attributor::new(set(HOST));
    m.set_grace_ns(100);
    ns(&mut m, 1, 1, 1, &set(HOST));
    let mut t = 10;
    for i in 0..50_000u32 {
        let tid = 1_000 + i;
        fork(&mut m, t, tid, tid, 1);
        exit(&mut m, t + 1, tid);
        t += 2;
    }
    let after_burst = m.task_bytes();
    for i in 0..50_000u32 {
        let tid = 100_000 + i % 7;
        fork(&mut m, t, tid, tid, 1);
        exit(&mut m, t + 1, tid);
        t += 1_000;
    }
    assert!(m.ended_tasks() <= 1, "{}", m.ended_tasks());
    assert!(
        m.task_bytes() <= after_burst,
        "{} > {after_burst}",
        m.task_bytes()
    );
}

#[test]
fn without_grace_ended_tasks_answer_until_time_moves_on() {
    // As `report` reads a file: in time order, a record of an ended task can only
    // share its EXIT's timestamp.
    let mut m = Attributor::new(set(HOST));
    m.set_grace_ns(0);
    let ct = ns(&mut m, 10, 200, 200, &set(CT));
    ns(&mut m, 10, 201, 201, &set(HOST));
    assert_eq!(exit(&mut m, 1_000, 200), Some(ct));
    // Its tid reused at the same instant, by a host task.
    ns(&mut m, 1_000, 200, 200, &set(HOST));
    assert_eq!(exit(&mut m, 1_000, 201), Some(GroupId::HOST));
    assert_eq!(m.attribute(200, 200, 1_000).unwrap().group, GroupId::HOST);
    assert_eq!(m.attribute(200, 200, 999).unwrap().group, ct);
    assert_eq!(m.attribute(201, 201, 1_000).unwrap().group, GroupId::HOST);
    assert_eq!(m.ended_tasks(), 2);
    ns(&mut m, 1_001, 1, 1, &set(HOST));
    assert_eq!(m.ended_tasks(), 0);
    assert_eq!(m.attribute(201, 201, 1_000), None);
    // A grace period again: ended tasks are kept for it.
    m.set_grace_ns(100);
    assert_eq!(exit(&mut m, 1_002, 200), Some(GroupId::HOST));
    ns(&mut m, 1_050, 1, 1, &set(HOST));
    assert_eq!(m.attribute(200, 200, 1_002).unwrap().group, GroupId::HOST);
}

#[test]
fn a_key_created_again_after_its_group_ended_is_a_new_group_under_the_same_label() {
    let mut m = Attributor::new(set(HOST));
    ns(&mut m, 0, 1, 1, &set(HOST));
    let a = ns(&mut m, 10, 200, 200, &set(CT));
    exit(&mut m, 20, 200);
    // The kernel reused the inode numbers for a new container: a child born in
    // namespaces its parent is not in (clone's flags made them). Its own record comes
    // µs after its FORK.
    fork(&mut m, 30, 201, 201, 1);
    let b = ns(&mut m, 31, 201, 201, &set(CT));
    assert_ne!(a, b);
    // The label names the namespace, as lsns does: `ps` now says ct-14 too.
    assert_eq!(m.group(a).label, "ct-14");
    assert_eq!(m.group(b).label, "ct-14");
    assert_eq!((m.group(a).generation, m.group(b).generation), (0, 1));
    // The dead one's end comes before the new one's start.
    let seen: Vec<Change> = m.take_changes().collect();
    let kinds: Vec<(ChangeKind, GroupId)> = seen.iter().map(|c| (c.kind, c.group)).collect();
    assert_eq!(
        kinds,
        vec![
            (ChangeKind::Start, a),
            (ChangeKind::Exit, a),
            (ChangeKind::Start, b)
        ]
    );
    assert!(seen[1].time_ns < seen[2].time_ns);
    assert_eq!(m.attribute(200, 200, 15).unwrap().group, a);
    assert_eq!(m.attribute(201, 201, 35).unwrap().group, b);
    // The sets that led to the old group lead to the new one.
    assert_eq!(ns(&mut m, 40, 300, 300, &set(CT)), b);

    // A host task's unshare(CLONE_NEWNET), seen by the probe, twice, the second net
    // namespace with the first one's number: two groups. Without the probe (a perf.data
    // file) the second is taken for a return into the first.
    let net = set(NETNS);
    let unshare = cause(Syscall::Unshare, libc::CLONE_NEWNET as u64);
    let made = |m: &mut Attributor, t: u64| {
        let body = Body::Namespaces {
            ns: &net,
            comm: None,
            cause: Some(&unshare),
        };
        m.observe(&ev(t, 2, 2, body)).unwrap()
    };
    ns(&mut m, 50, 2, 2, &set(HOST));
    let first = made(&mut m, 60);
    ns(&mut m, 70, 2, 2, &set(HOST));
    let second = made(&mut m, 80);
    assert_ne!(first, second);
    assert_eq!(m.group(second).label, "sb-30");
    ns(&mut m, 90, 2, 2, &set(HOST));
    assert_eq!(ns(&mut m, 100, 2, 2, &net), second, "setns back: the same");
}

#[test]
fn a_container_sharing_anothers_pid_namespace_is_named_by_both() {
    let mut m = Attributor::new(set(HOST));
    // Two containers in one pid namespace with their own mount namespaces (a process
    // that unshared its mount namespace inside a container).
    let a = ns(&mut m, 10, 200, 200, &set(CT));
    let b = ns(&mut m, 20, 201, 201, &set([10, 11, 12, 14, 5, 40, 7]));
    assert_eq!(m.group(a).label, "ct-14");
    assert_eq!(m.group(b).label, "ct-14-40");
}

#[test]
fn a_process_that_unshares_inside_a_container_is_nested_in_it_not_a_pod() {
    let mut m = Attributor::new(set(HOST));
    ns(&mut m, 0, 1, 1, &set(HOST));
    // A container (its init 100), then `unshare -m -p -f` inside it: the unshare
    // process (101) gets a new mount namespace in the container's pid namespace, its
    // child (102) a new pid namespace too. Both share the container's network.
    fork(&mut m, 5, 100, 100, 1);
    let ct = ns(&mut m, 5, 100, 100, &set(CT));
    m.set_nspid(100, 1);
    fork(&mut m, 10, 101, 101, 100);
    let inner_mnt = [10, 11, 12, 14, 5, 40, 7];
    let u = ns(&mut m, 11, 101, 101, &set(inner_mnt));
    fork(&mut m, 12, 102, 102, 101);
    let inner = ns(&mut m, 12, 102, 102, &set([10, 11, 12, 41, 5, 40, 7]));
    assert!(ct != u && u != inner && ct != inner);
    assert_eq!(m.group(u).kind, Kind::Container);
    // Not a later generation of ct: the pid namespace lives on in ct.
    assert_eq!(m.group(ct).label, "ct-14");
    assert_eq!(m.group(u).label, "ct-14-40");
    assert_eq!(m.group(inner).label, "ct-41");
    assert_eq!(
        m.parent_of(u),
        Some(ct),
        "same pid namespace: in the container"
    );
    assert_eq!(
        m.parent_of(inner),
        Some(ct),
        "its pid namespace was made in ct's"
    );
    assert_eq!(m.parent_of(ct), None);
    assert_eq!(m.pods(), vec![], "nested containers make no pod");
    // A second container that joins ct's network is a pod with it.
    fork(&mut m, 20, 200, 200, 1);
    let side = ns(&mut m, 20, 200, 200, &set([10, 21, 22, 24, 5, 26, 7]));
    assert_eq!(m.parent_of(side), None);
    assert_eq!(
        m.pods(),
        vec![Pod {
            net: link(10),
            containers: vec![ct, side]
        }]
    );
}

#[test]
fn ended_tasks_are_found_by_time_whatever_order_they_ended_in() {
    let mut m = Attributor::new(set(HOST));
    m.set_grace_ns(1_000_000);
    ns(&mut m, 1, 1, 1, &set(HOST));
    let ct = ns(&mut m, 10, 300, 300, &set(CT));
    for tid in 400..500 {
        fork(&mut m, 20, tid, tid, 1);
    }
    for tid in 400..450 {
        exit(&mut m, 100 + u64::from(tid), tid);
    }
    // An EXIT later than the reorder window: older than the ends before it.
    exit(&mut m, 200, 300);
    for tid in 450..500 {
        exit(&mut m, 100 + u64::from(tid), tid);
    }
    assert_eq!(m.attribute(300, 300, 150).unwrap().group, ct);
    assert_eq!(m.attribute(300, 300, 200).unwrap().group, ct);
    assert_eq!(m.attribute(300, 300, 201).unwrap().group, ct, "exit tail");
    assert_eq!(m.attribute(420, 420, 520).unwrap().group, GroupId::HOST);
    assert_eq!(m.attribute(420, 420, 521).unwrap().group, GroupId::HOST);
    assert_eq!(m.attribute(499, 499, 30).unwrap().group, GroupId::HOST);
    assert_eq!(m.attribute(77, 77, 30), None, "never seen");
    // Kept in order of their ends, so pruning drops exactly the expired ones.
    m.set_grace_ns(100);
    ns(&mut m, 640, 1, 1, &set(HOST));
    assert_eq!(m.ended_tasks(), 60, "ends from 540 on");
    assert_eq!(m.attribute(300, 300, 150), None, "pruned");
    assert_eq!(m.attribute(440, 440, 540).unwrap().group, GroupId::HOST);
}

#[test]
fn an_ended_tid_answers_in_its_exit_tail_until_it_is_reused() {
    let mut m = Attributor::new(set(HOST));
    ns(&mut m, 1, 1, 1, &set(HOST));
    let ct = ns(&mut m, 10, 300, 300, &set(CT));
    fork(&mut m, 20, 420, 420, 300);
    assert_eq!(exit(&mut m, 100, 420), Some(ct));
    // Many tasks end after it, as in a fork storm: the tail is still found.
    for tid in 1_000..1_200 {
        fork(&mut m, 200, tid, tid, 1);
        exit(&mut m, 300, tid);
    }
    assert_eq!(m.attribute(420, 420, 400).unwrap().group, ct);
    assert_eq!(
        m.attribute(420, 420, 100 + EXIT_TAIL_NS + 1),
        None,
        "past its tail"
    );
    let (t, _) = m.task_at(0, 420, 400).unwrap();
    assert_eq!((t.pid, t.ended_ns), (420, 100), "the ended life itself");
    // Its tid reused by a host task: the new life answers from its birth.
    fork(&mut m, 500, 420, 420, 1);
    assert_eq!(m.attribute(420, 420, 450).unwrap().group, ct);
    assert_eq!(m.attribute(420, 420, 500).unwrap().group, GroupId::HOST);
    assert_eq!(
        m.attribute(0, 0, 500),
        None,
        "the idle task is no ended task"
    );
}

#[test]
fn a_setns_storm_keeps_only_the_grace_periods_history() {
    let mut m = Attributor::new(set(HOST));
    m.set_grace_ns(1_000);
    let sets = [set(HOST), set(NETNS)];
    for i in 0..100_000u64 {
        ns(&mut m, 10 + i * 10, 300, 300, &sets[(i % 2) as usize]);
    }
    let now = 10 + 99_999 * 10;
    let t = m.task(300).unwrap();
    assert!(t.intervals().count() <= 102, "{}", t.intervals().count());
    assert!(t.heap_bytes() < 16 << 10, "{} bytes", t.heap_bytes());
    // Within the grace period the history answers; before it, it is forgotten.
    assert_eq!(m.attribute(300, 300, now - 5).unwrap().group, GroupId::HOST);
    assert_ne!(
        m.attribute(300, 300, now - 15).unwrap().group,
        GroupId::HOST
    );
    assert_eq!(
        m.attribute(300, 300, now - 985).unwrap().group,
        GroupId::HOST
    );
    assert_eq!(m.attribute(300, 300, now - 5_000), None);
}

#[test]
fn without_a_past_tasks_change_groups_as_with_one_and_keep_no_history() {
    // The same events (a thread flipping between the host and a sandbox held by a helper,
    // children forked into a container that ends and starts again) through a model that
    // keeps tasks' pasts and one that does not: the same group for every event, the same
    // changes.
    let mut kept = Attributor::new(set(HOST));
    let mut none = Attributor::new(set(HOST));
    let sets = [set(HOST), set(NETNS), set(CT)];
    // What the model says of the events at step `i`.
    let step = |m: &mut Attributor, i: u64, time: u64| {
        let mut said = vec![format!(
            "{:?}",
            ns(m, time, 300, 300, &sets[(i % 2) as usize])
        )];
        // 130 ms apart: the container's group ends (its linger is 100 ms) and starts again.
        if i.is_multiple_of(13) {
            let child = 1_000 + i as u32;
            said.push(format!("{:?}", fork(m, time, child, child, 300)));
            said.push(format!("{:?}", ns(m, time, child, child, &sets[2])));
            said.push(format!("{:?}", exit(m, time + 3, child)));
        }
        m.advance(time + 4);
        said.extend(changes(m).into_iter().map(|c| format!("{c:?}")));
        said
    };
    for m in [&mut kept, &mut none] {
        m.set_grace_ns(EXIT_TAIL_NS);
        ns(m, 4, 400, 400, &sets[1]);
        ns(m, 5, 300, 300, &sets[1]);
        ns(m, 6, 300, 300, &sets[0]);
    }
    // Turned off after a change: the history already kept is forgotten.
    assert_eq!(none.task(300).unwrap().intervals().count(), 2);
    none.set_keep_past(false);
    assert_eq!(none.task(300).unwrap().intervals().count(), 1);
    let mut time = 10;
    let mut told = Vec::new();
    for i in 0..3_000u64 {
        let said = step(&mut kept, i, time);
        assert_eq!(said, step(&mut none, i, time), "step {i}");
        told.extend(said);
        time += 10_000_000;
    }
    // Among what was compared: the sandbox's start, the container's 231 starts and 230
    // ends (the last still lingers).
    let count = |kind: &str| told.iter().filter(|s| s.starts_with(kind)).count();
    assert_eq!(
        (count("(Start"), count("(Exit")),
        (232, 230),
        "{:?}",
        &told[..20]
    );
    // Each change wrote no history: only the current interval, nothing on the heap.
    let t = none.task(300).unwrap();
    assert_eq!(t.intervals().count(), 1);
    assert_eq!(t.heap_bytes(), 0);
    assert!(kept.task(300).unwrap().intervals().count() > 1);
    // It answers from its current interval; a time it has left is not known.
    let now = time - 10_000_000;
    let at = |m: &Attributor, t| m.attribute(300, 300, t).map(|a| a.group);
    assert_eq!(at(&none, now), at(&kept, now));
    assert!(at(&none, now).is_some());
    assert_eq!(at(&none, now - 5), None);
    assert!(at(&kept, now - 5).is_some());
}

#[test]
fn pid_reuse_never_merges_two_tasks() {
    let mut m = Attributor::new(set(HOST));
    let a = ns(&mut m, 10, 200, 200, &set(CT));
    exit(&mut m, 20, 200);
    let b = ns(&mut m, 30, 200, 200, &set(CT2));
    assert_ne!(a, b);
    assert_eq!(m.attribute(200, 200, 15).unwrap().group, a);
    // Between the two lives: the first one's exit tail.
    assert_eq!(m.attribute(200, 200, 25).unwrap().group, a);
    assert_eq!(m.attribute(200, 200, 30).unwrap().group, b);
    // A FORK reusing a tid whose EXIT was lost ends the old task first.
    ns(&mut m, 0, 1, 1, &set(HOST));
    fork(&mut m, 40, 200, 200, 1);
    assert_eq!(m.attribute(200, 200, 35).unwrap().group, b);
    assert_eq!(m.attribute(200, 200, 41).unwrap().group, GroupId::HOST);
    assert!(!m.group(b).is_live());
}

#[test]
fn containers_sharing_a_net_namespace_are_a_pod() {
    let mut m = Attributor::new(set(HOST));
    let a = ns(&mut m, 10, 200, 200, &set(CT));
    let b = ns(&mut m, 20, 300, 300, &set(CT2));
    let c = ns(&mut m, 30, 400, 400, &set([40, 41, 42, 44, 5, 46, 7]));
    assert_eq!(
        m.pods(),
        vec![Pod {
            net: link(10),
            containers: vec![a, b]
        }]
    );
    assert!(m.pods().iter().all(|p| !p.containers.contains(&c)));
}

#[test]
fn nested_containers_know_their_parent() {
    let mut m = Attributor::new(set(HOST));
    let outer = ns(&mut m, 10, 200, 200, &set(CT));
    let inner = ns(&mut m, 20, 300, 300, &set([10, 11, 12, 54, 5, 56, 7]));
    m.set_pid_ns_parent(link(54), link(14));
    m.set_pid_ns_parent(link(14), link(4));
    assert_eq!(m.parent_of(inner), Some(outer));
    assert_eq!(m.parent_of(outer), None);
}

#[test]
fn snapshots_tell_born_from_joined() {
    let mut m = Attributor::new(set(HOST));
    let snap = |pid, ppid, start_time, comm, s: [u64; 7]| TaskSnapshot {
        pid,
        tid: pid,
        ppid,
        nspid: 0,
        start_time,
        comm,
        ns: set(s),
    };
    m.add_snapshot(0, &snap(1, 0, 1, "init", HOST));
    m.add_snapshot(0, &snap(50, 1, 5, "runc", HOST));
    let ct = m.add_snapshot(0, &snap(60, 50, 10, "sleep", CT));
    m.add_snapshot(0, &snap(61, 60, 11, "sh", CT));
    m.add_snapshot(0, &snap(70, 1, 20, "sh", CT)); // runc exec
    m.add_snapshot(0, &snap(71, 70, 21, "top", CT));
    m.settle_origins();
    let origin = |tid| m.task(tid).unwrap().origin;
    assert_eq!(origin(60), Origin::Born);
    assert_eq!(origin(61), Origin::Born);
    assert_eq!(origin(70), Origin::Joined);
    assert_eq!(origin(71), Origin::Joined);
    assert_eq!(m.group(ct).creator.as_deref(), Some("runc"));
    assert_eq!(m.group(ct).leader, 60);
    assert_eq!(m.task(61).unwrap().comm(), "sh");
}

#[test]
fn renames_are_changes_and_first_names_are_not() {
    let mut m = Attributor::new(set(HOST));
    let ct = ns(&mut m, 10, 200, 200, &set(CT));
    changes(&mut m);
    let named = |n: &str| Naming {
        name: Some(n.to_string()),
        ..Naming::default()
    };
    m.set_naming(ct, named("a"));
    assert_eq!(changes(&mut m), vec![]);
    m.set_naming(ct, named("a"));
    m.set_naming(ct, named("b"));
    assert_eq!(changes(&mut m), vec![(ChangeKind::Rename, ct)]);
    assert_eq!(m.group(ct).name(), "b");
    // A group named first from its cgroup alone, whose runtime's name comes later.
    let sb = ns(&mut m, 20, 300, 300, &set(NETNS));
    changes(&mut m);
    let path = Naming {
        cgroup: Some("/".to_string()),
        ..Naming::default()
    };
    m.set_naming(sb, path.clone());
    assert_eq!(changes(&mut m), vec![]);
    m.set_naming(
        sb,
        Naming {
            runtime: Some("ip-netns".to_string()),
            name: Some("blue".to_string()),
            ..path
        },
    );
    assert_eq!(changes(&mut m), vec![(ChangeKind::Rename, sb)]);
}

#[test]
fn comm_and_unknown_parents() {
    let mut m = Attributor::new(set(HOST));
    // FORK of a child whose parent we never saw: its own record places it.
    fork(&mut m, 10, 500, 500, 499);
    let ct = ns(&mut m, 10, 500, 500, &set(CT));
    let body = Body::Comm {
        comm: Cow::Borrowed("nginx"),
        exec: true,
    };
    assert_eq!(m.observe(&ev(11, 500, 500, body)), Some(ct));
    assert_eq!(m.task(500).unwrap().comm(), "nginx");
    assert_eq!(m.group(GroupId::HOST).live_tasks, 0);
}

#[test]
fn a_learning_model_takes_the_host_from_pid_1_or_2() {
    let mut m = Attributor::learning();
    // PID 1 unreadable (perf writes zeros), a container task, then kthreadd.
    ns(&mut m, 0, 1, 1, &set([0; 7]));
    ns(&mut m, 0, 60, 60, &set(CT));
    assert_eq!(
        m.attribute(60, 60, 0).unwrap().group,
        GroupId::HOST,
        "not known yet"
    );
    ns(&mut m, 0, 2, 2, &set(HOST));
    assert!(m.host_known());
    let g = m.attribute(60, 60, 0).unwrap().group;
    assert_eq!(m.group(g).kind, Kind::Container);
    assert_eq!(m.group(GroupId::HOST).live_tasks, 2);
    assert_eq!(changes(&mut m), vec![(ChangeKind::Start, g)]);
}

#[test]
fn a_learning_model_without_pid_1_or_2_guesses_the_common_set() {
    let mut m = Attributor::learning();
    ns(&mut m, 0, 60, 60, &set(CT));
    for tid in 100..100 + HOST_GUESS_AFTER {
        ns(&mut m, 0, tid, tid, &set(HOST));
    }
    assert!(m.host_known());
    assert_eq!(m.host(), &set(HOST));
    let g = m.attribute(60, 60, 0).unwrap().group;
    assert_eq!(m.group(g).kind, Kind::Container);
}

#[test]
fn per_task_memory_is_small() {
    let mut m = Attributor::new(set(HOST));
    for tid in 1..=10_000 {
        ns(&mut m, tid as u64, tid, tid, &set(CT));
    }
    let per_task = m.task_bytes() / m.live_tasks();
    assert!(per_task < 200, "{per_task} bytes per task");
}

const SEC: u64 = 1_000_000_000;

/// `n` short-lived sandboxes, one a millisecond of event time from `t0`, driven as a
/// live session drives the model: a child of task 1 forks, gets its own network and
/// uts namespaces (numbers never seen before), forks a child of its own, both exit;
/// the changes are taken after each. Returns the time after the last.
fn churn(m: &mut Attributor, t0: u64, first: u64, n: u64) -> u64 {
    let mut t = t0;
    for i in first..first + n {
        let (child, grandchild) = (10_000 + (i % 30_000) as u32, 50_000 + (i % 30_000) as u32);
        let sb = set([1_000_000 + i, 2_000_000 + i, 3, 4, 5, 6, 7]);
        fork(m, t, child, child, 1);
        ns(m, t, child, child, &sb);
        fork(m, t + 10, grandchild, grandchild, child);
        ns(m, t + 10, grandchild, grandchild, &sb);
        exit(m, t + 20, grandchild);
        exit(m, t + 30, child);
        m.take_changes().for_each(drop);
        t += 1_000_000;
    }
    t
}

#[test]
fn groups_that_ended_before_the_history_window_give_their_memory_back() {
    const N: u64 = 20_000;
    let run = |history: Option<u64>| {
        let mut m = Attributor::new(set(HOST));
        m.set_history_ns(history);
        ns(&mut m, 0, 1, 1, &set(HOST));
        let t = churn(&mut m, SEC, 0, N / 2);
        let mid = (m.heap_bytes(), m.groups().len(), m.sets().len());
        let t = churn(&mut m, t, N / 2, N / 2);
        m.advance(t);
        (m, mid)
    };
    // Everything kept (a file's report): a group's worth of memory per group.
    let (all, (all_mid, ..)) = run(None);
    assert_eq!(all.groups().len() as u64, N + 1);
    assert!(
        all.heap_bytes() > all_mid * 3 / 2,
        "{} then {}",
        all_mid,
        all.heap_bytes()
    );
    // A 1 s window, 1,000 groups' churn: the model stays the size of a window (and the
    // slack of groups waiting to be given back together).
    let (m, (mid, mid_groups, mid_sets)) = run(Some(SEC));
    let bound = 1 + 1_100 + COMPACT_MIN.max(1_200 / COMPACT_EVERY) + 1;
    for (what, n) in [
        ("groups at half", mid_groups),
        ("groups", m.groups().len()),
        ("sets at half", mid_sets),
        ("sets", m.sets().len()),
    ] {
        assert!(n <= bound, "{what}: {n} > {bound}");
    }
    assert!(
        m.heap_bytes() <= mid + mid / 10,
        "{mid} then {}",
        m.heap_bytes()
    );
    assert!(m.heap_bytes() * 5 < all.heap_bytes());
    assert!(m.groups_forgotten() + m.groups().len() as u64 == N + 1);
    // Ids are never reused: the last group is the N-th, the first ones are gone.
    assert_eq!(m.groups_seen() as u64, N + 1);
    assert_eq!(m.groups().last().unwrap().id, GroupId(N as u32));
    assert!(m.groups().windows(2).all(|w| w[0].id < w[1].id));
    assert!(m.find_group(GroupId(1)).is_none());
    for g in m.groups() {
        assert_eq!(m.group(g.id).id, g.id);
        assert_eq!(m.find_group(g.id).unwrap().label, g.label);
    }
}

#[test]
fn a_burst_of_groups_gives_its_tables_back_once_it_passed_the_window() {
    let mut m = Attributor::new(set(HOST));
    m.set_history_ns(Some(10 * SEC));
    ns(&mut m, 0, 1, 1, &set(HOST));
    let before = m.heap_bytes() - m.task_bytes();
    // 5,000 sandboxes within the window: all of them held at once.
    let t = churn(&mut m, SEC, 0, 5_000);
    let peak = m.heap_bytes() - m.task_bytes();
    assert!(m.groups().len() > 5_000);
    // Quiet for longer than the window: the burst is given back, and with it the
    // tables' room for it.
    // (Ends declared by the first step are given back once taken, as a session does.)
    m.advance(t + 12 * SEC);
    m.take_changes().for_each(drop);
    m.advance(t + 13 * SEC);
    let after = m.heap_bytes() - m.task_bytes();
    assert!(m.groups().len() < 10, "{} groups kept", m.groups().len());
    assert!(
        after < before + 16 * 1024,
        "{before} bytes, {peak} at the peak, {after} after"
    );
    assert!(after * 4 < peak, "{peak} at the peak, {after} after");
    // And it serves the next burst as before.
    churn(&mut m, t + 13 * SEC, 5_000, 100);
    assert!(m.groups().len() > 100);
}

#[test]
fn a_time_within_the_history_window_answers_and_one_before_it_is_unknown() {
    let mut m = Attributor::new(set(HOST));
    m.set_history_ns(Some(2 * SEC));
    ns(&mut m, 0, 1, 1, &set(HOST));
    ns(&mut m, 0, 50, 50, &set(HOST));
    // Task 100 makes a sandbox at 1 s and leaves it for the host's at 1.5 s.
    fork(&mut m, SEC, 100, 100, 50);
    let a = ns(&mut m, SEC, 100, 100, &set(NETNS));
    assert_ne!(a, GroupId::HOST);
    ns(&mut m, SEC + SEC / 2, 100, 100, &set(HOST));
    m.advance(3 * SEC);
    // Within the window: the sandbox, by its names.
    assert_eq!(m.attribute(100, 100, SEC + SEC / 4).unwrap().group, a);
    assert_eq!(m.attribute(100, 100, 2 * SEC).unwrap().group, GroupId::HOST);
    assert_eq!(m.find_group(a).unwrap().label, "sb-30");
    // Once 1.25 s is before the window, it is unknown; so is the time before a task
    // found at start was seen.
    m.advance(4 * SEC);
    assert_eq!(m.attribute(100, 100, SEC + SEC / 4), None);
    assert_eq!(m.attribute(50, 50, SEC), None);
    assert_eq!(m.attribute(50, 50, 3 * SEC).unwrap().group, GroupId::HOST);
    // Other sandboxes come and go: the ended one is given back with them.
    let t = churn(&mut m, 4 * SEC, 0, 200);
    // Their ends declared and taken, as a session takes them at every poll: a group
    // whose end is among the changes not taken is not given back yet.
    m.advance(t + SEC);
    m.take_changes().for_each(drop);
    m.advance(t + 3 * SEC);
    assert!(m.find_group(a).is_none(), "given back");
    assert!(m.groups_forgotten() >= 201);
    // A namespace made with the sandbox's numbers (the kernel reuses them): a new group
    // with a new id and the same label; the old time is still unknown, not it.
    let now = t + 3 * SEC + 1;
    fork(&mut m, now, 200, 200, 50);
    let b = ns(&mut m, now, 200, 200, &set(NETNS));
    assert!(b > a);
    assert_eq!(m.group(b).label, "sb-30");
    assert_eq!(m.group(b).generation, 0);
    assert_eq!(m.attribute(100, 100, SEC + SEC / 4), None);
    assert_eq!(m.attribute(200, 200, now).unwrap().group, b);
    assert_eq!(m.attribute(100, 100, now).unwrap().group, GroupId::HOST);
}

#[test]
fn a_group_entered_again_after_the_window_is_not_given_back() {
    let mut m = Attributor::new(set(HOST));
    m.set_history_ns(Some(SEC));
    ns(&mut m, 0, 1, 1, &set(HOST));
    // An `ip netns` namespace: entered, left, then entered again much later, while
    // others churn around it.
    let a = ns(&mut m, SEC, 100, 100, &set(NETNS));
    ns(&mut m, SEC + 10, 100, 100, &set(HOST));
    let t = churn(&mut m, 2 * SEC, 0, 100);
    m.advance(t);
    assert_eq!(
        ns(&mut m, t + 1, 100, 100, &set(NETNS)),
        a,
        "not given back yet"
    );
    let t = churn(&mut m, t + 10, 100, 2_000);
    m.advance(t + 2 * SEC);
    assert!(m.find_group(a).is_some_and(|g| g.is_live()));
    assert_eq!(m.attribute(100, 100, t + 2 * SEC).unwrap().group, a);
}
