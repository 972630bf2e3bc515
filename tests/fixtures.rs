//! Every fixture captured by Linux perf decodes exactly as `perf script` printed it.

mod common;
use common::fixture;
use common::{assert_same, decode_file, parse_script, Rec};

fn check(name: &str) -> Vec<Rec> {
    let expected = std::fs::read_to_string(fixture(&format!("{name}.script"))).unwrap();
    let perf = parse_script(&expected);
    let ours = decode_file(&fixture(&format!("{name}.data")));
    assert!(perf.len() > 100, "{name}: the capture is implausibly small");
    assert_same(name, &ours, &perf);
    ours
}

fn namespaces_of<'a>(recs: &'a [Rec], comm_tids: &[u32]) -> Vec<&'a Rec> {
    recs.iter()
        .filter(|r| r.kind == "namespaces" && comm_tids.contains(&r.tid))
        .collect()
}

fn tids_of(recs: &[Rec], comm: &str) -> Vec<u32> {
    let mut t: Vec<u32> = recs
        .iter()
        .filter(|r| r.kind == "comm" && r.detail.starts_with(&format!("comm={comm} ")))
        .map(|r| r.tid)
        .collect();
    t.dedup();
    t
}

fn link<'a>(r: &'a Rec, kind: &str) -> &'a str {
    r.detail
        .split(' ')
        .find_map(|f| f.strip_prefix(&format!("{kind}=")))
        .unwrap()
}

#[test]
fn forkexec_churn() {
    let recs = check("forkexec");
    let execs = recs
        .iter()
        .filter(|r| r.kind == "comm" && r.detail == "comm=true exec=true");
    assert_eq!(execs.count(), 10, "ten execs of /bin/true");
}

#[test]
fn unshare_net_uts() {
    let recs = check("unshare-net-uts");
    let tids = tids_of(&recs, "unshare");
    let ns = namespaces_of(&recs, &tids);
    // perf's start-up records of its workload, then the one written after
    // unshare(CLONE_NEWNET|CLONE_NEWUTS): one change, of net and uts only.
    let (first, last) = (ns[0], ns[ns.len() - 1]);
    assert_eq!(last.time_ns, ns.iter().map(|r| r.time_ns).max().unwrap());
    assert_ne!(link(first, "net"), link(last, "net"));
    assert_ne!(link(first, "uts"), link(last, "uts"));
    for kind in ["ipc", "pid", "user", "mnt", "cgroup"] {
        assert_eq!(link(first, kind), link(last, kind), "{kind}");
    }
}

#[test]
fn unshare_mnt_pid() {
    let recs = check("unshare-mnt-pid");
    let tids = tids_of(&recs, "unshare");
    let ns = namespaces_of(&recs, &tids);
    // unshare(CLONE_NEWPID) does not move the caller: only mnt changes for it.
    let (before, after) = (ns[0], ns[ns.len() - 1]);
    assert_ne!(link(before, "mnt"), link(after, "mnt"));
    assert_eq!(link(before, "pid"), link(after, "pid"));
    // Its child (forked by -f) is in the new pid namespace.
    let child = recs
        .iter()
        .find(|r| r.kind == "fork" && r.detail.ends_with(&format!("ptid={}", tids[0])))
        .expect("the forked child");
    let child_ns = recs
        .iter()
        .find(|r| r.kind == "namespaces" && r.tid == child.tid)
        .unwrap();
    assert_ne!(link(child_ns, "pid"), link(before, "pid"));
}

#[test]
fn ip_netns_exec() {
    let recs = check("ip-netns-exec");
    let tids = tids_of(&recs, "ip");
    let ns = namespaces_of(&recs, &tids);
    let (first, last) = (ns[0], ns[ns.len() - 1]);
    assert_ne!(link(first, "net"), link(last, "net"));
    assert_eq!(link(first, "uts"), link(last, "uts"));
}

#[test]
fn nsenter_into_running_namespaces() {
    let recs = check("nsenter");
    let tids = tids_of(&recs, "nsenter");
    let ns = namespaces_of(&recs, &tids);
    let (first, last) = (ns[0], ns[ns.len() - 1]);
    assert_ne!(link(first, "net"), link(last, "net"));
    assert_ne!(link(first, "uts"), link(last, "uts"));
    assert_eq!(link(first, "mnt"), link(last, "mnt"));
}

#[test]
fn one_thread_of_many_calls_setns() {
    let recs = check("mt-setns");
    let pid = recs
        .iter()
        .find(|r| r.kind == "comm" && r.detail.starts_with("comm=nswatch-mt-setn"))
        .unwrap()
        .pid;
    let ns: Vec<&Rec> = recs
        .iter()
        .filter(|r| r.kind == "namespaces" && r.pid == pid)
        .collect();
    let threads: std::collections::BTreeSet<u32> = ns.iter().map(|r| r.tid).collect();
    assert_eq!(threads.len(), 4, "main thread and three workers");
    // Exactly one thread has been in two net namespaces.
    let changed: Vec<u32> = threads
        .iter()
        .copied()
        .filter(|t| {
            let nets: std::collections::BTreeSet<&str> = ns
                .iter()
                .filter(|r| r.tid == *t)
                .map(|r| link(r, "net"))
                .collect();
            nets.len() == 2
        })
        .collect();
    assert_eq!(changed.len(), 1, "{ns:#?}");
    assert_ne!(changed[0], pid, "a worker thread, not the main one");
}

#[test]
fn samples_with_callchains() {
    let recs = check("samples");
    assert!(recs.iter().filter(|r| r.kind == "sample").count() > 10);
}

#[test]
fn pipe_mode_file() {
    let recs = check("pipe");
    assert!(recs.iter().any(|r| r.kind == "namespaces"));
}

#[test]
fn pipe_mode_stream_equals_mapped() {
    let bytes = std::fs::read(fixture("pipe.data")).unwrap();
    let mut streamed =
        nswatch::PerfData::from_reader(Box::new(std::io::Cursor::new(bytes))).unwrap();
    let ours = common::decode(&mut streamed);
    assert_same(
        "pipe (streamed)",
        &ours,
        &decode_file(&fixture("pipe.data")),
    );
    assert!(
        streamed.info().features.hostname.is_some(),
        "HEADER_FEATURE records read"
    );
}

#[test]
fn features_are_read() {
    let data = nswatch::PerfData::open(&fixture("forkexec.data")).unwrap();
    let f = &data.info().features;
    assert!(f.hostname.is_some() && f.os_release.is_some());
    assert_eq!(f.nr_cpus_online, Some(2));
    let cmd = f.cmdline.as_ref().unwrap().join(" ");
    assert!(cmd.contains("record --namespaces"), "{cmd}");
}

/// Which captures can hold samples, as `perf evlist` names their events: `report` keeps
/// no task's past for the others (only dummy events, side-band records alone), and the
/// SAMPLE records are where the attrs say they can be.
#[test]
fn captures_whose_events_can_sample_are_those_perf_evlist_names_so() {
    use nswatch::{DecodeError, Order, PerfData};
    let mut sampling = Vec::new();
    for f in common::fixture_captures() {
        let mut data = PerfData::open(&f).unwrap();
        let can = data.decoder().attrs().any(|a| a.can_sample());
        let stats = data
            .for_each(Order::File, |_, _| Ok::<(), DecodeError>(()))
            .unwrap();
        let samples = stats.of(nswatch::record::kind::SAMPLE);
        assert!(can || samples == 0, "{}: {samples} samples", f.display());
        if can {
            sampling.push(f.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    sampling.sort();
    // cpu-clock beside the dummy event; every other capture is `-e dummy` (perf record
    // --namespaces -a -e dummy), pipe mode included.
    assert_eq!(sampling, ["cgroup-container.data", "samples.data"]);
}

/// `benches/read_floor.c`, the floor `benches/compare_perf_script.sh` times beside nswatch,
/// walks as many of the kernel's records as nswatch reads in every file-mode capture (a
/// floor that skipped some would flatter itself), and refuses a pipe-mode one by name.
#[test]
fn the_read_floor_walks_every_kernel_record() {
    use nswatch::{DecodeError, Order, PerfData};
    let floor = common::build_c("benches/read_floor.c");
    let mut checked = 0;
    for f in common::fixture_captures() {
        let out = std::process::Command::new(&floor).arg(&f).output().unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        let mut data = PerfData::open(&f).unwrap();
        if data.info().pipe {
            assert_eq!(out.status.code(), Some(1), "{}: {said}", f.display());
            assert!(
                said.contains("at offset 0x8: not a file-mode header"),
                "{said}"
            );
            continue;
        }
        let mut kernel = 0u64;
        data.for_each(Order::Time, |_, v| -> Result<(), DecodeError> {
            kernel += u64::from(v.ty < 64);
            Ok(())
        })
        .unwrap();
        assert!(out.status.success(), "{}: {said}", f.display());
        let walked: u64 = said
            .strip_prefix("read_floor: ")
            .and_then(|s| s.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{}: {said}", f.display()));
        assert_eq!(walked, kernel, "{}", f.display());
        checked += 1;
    }
    assert!(checked >= 7, "{checked} file-mode captures");
}
