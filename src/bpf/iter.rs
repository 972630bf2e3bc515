//! The bootstrap through a BPF task iterator (bpf/nswatch_iter.bpf.c): every task of the
//! machine with its namespace links, parent, start time, name and NSpid, in one read of the
//! iterator instead of eight /proc files per thread.

use super::probe::{failure, keep_libbpf_log, nsfs_dev, Unavailable, KERNEL_BTF};
use crate::nsset::NsSet;
use crate::procfs::ProcTask;
use crate::record::NsLink;
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{Iter, PrintLevel};
use std::io::Read;
use std::mem::MaybeUninit;
use std::path::Path;

#[allow(missing_docs, clippy::all, clippy::pedantic)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/nswatch_iter.skel.rs"));
}
use skel::NswatchIterSkelBuilder;

/// Bytes of one record (`struct nsw_task`).
pub const RECORD_SIZE: usize = 80;
const NS_OFF: usize = 24;
const COMM_OFF: usize = 64;

/// CAP_SYS_ADMIN, CAP_PERFMON and CAP_BPF, as bit numbers of the capability sets.
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_ne_bytes(b[off..off + 4].try_into().expect("4 bytes"))
}

/// Decodes one record; `dev` is the nsfs device number. The namespace slots past perf's 7
/// (time, pid_for_children, time_for_children) are left out, as /proc's scan leaves them.
pub fn parse_record(b: &[u8], dev: u64) -> Option<ProcTask> {
    let b = b.get(..RECORD_SIZE)?;
    let links: [NsLink; 7] = std::array::from_fn(|i| match u32_at(b, NS_OFF + 4 * i) {
        0 => NsLink::default(),
        ino => NsLink {
            dev,
            ino: u64::from(ino),
        },
    });
    let comm = &b[COMM_OFF..COMM_OFF + 16];
    let comm = &comm[..comm.iter().position(|&c| c == 0).unwrap_or(comm.len())];
    Some(ProcTask {
        pid: u32_at(b, 8),
        tid: u32_at(b, 12),
        ppid: u32_at(b, 16),
        start_time: u64::from_ne_bytes(b[..8].try_into().expect("8 bytes")),
        comm: String::from_utf8_lossy(comm).into_owned(),
        ns: NsSet::from_links(links),
        nspid: u32_at(b, 20),
    })
}

/// Whether the effective capabilities allow loading and reading a tracing program, read from
/// /proc/self/status so that an unprivileged run stops before libbpf parses the kernel's BTF.
fn permitted() -> Result<(), Unavailable> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| Unavailable::Failed(format!("reading /proc/self/status: {e}")))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
    };
    let caps = field("CapEff:")
        .and_then(|c| u64::from_str_radix(c, 16).ok())
        .unwrap_or(0);
    let has = |c: u32| caps & (1 << c) != 0;
    if !(has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON))) {
        return Err(Unavailable::NotPermitted(format!(
            "effective capabilities {caps:#x}"
        )));
    }
    // The iterator walks the reader's pid namespace but the program reports the kernel's
    // (initial namespace) numbers, which only match /proc there.
    if field("NSpid:").is_some_and(|n| n.split_ascii_whitespace().count() > 1) {
        return Err(Unavailable::Failed(
            "not in the initial pid namespace: the task iterator's pids would not be /proc's"
                .into(),
        ));
    }
    Ok(())
}

/// Every task of the machine, in the iterator's order (by pid, then threads), except those
/// exiting (their namespaces are gone). Says why when the iterator cannot run: no BTF, not
/// permitted, a kernel without task iterators (before 5.8), or not in the initial pid
/// namespace. Loads the program for this one scan: a process that scans again keeps a
/// [`TaskIter`].
pub fn scan_tasks() -> Result<Vec<ProcTask>, Unavailable> {
    let mut storage = MaybeUninit::uninit();
    let (_skel, link) = load(&mut storage)?;
    read_tasks(&link)
}

/// The task iterator, loaded once and read as often as asked: a live session reads the
/// machine again after lost records, and loading the program each time (libbpf parses
/// the kernel's BTF for its relocations) took tens of milliseconds of a setns storm,
/// long enough for the rings to overflow again and call for the next scan.
pub struct TaskIter {
    _skel: skel::NswatchIterSkel<'static>,
    link: libbpf_rs::Link,
}

impl TaskIter {
    /// Loads and attaches the iterator (see [`scan_tasks`] for why it may not).
    pub fn load() -> Result<TaskIter, Unavailable> {
        // The skeleton borrows its object for as long as it lives: one per session, so
        // its few bytes are leaked on purpose (as the probe's).
        let storage: &'static mut MaybeUninit<libbpf_rs::OpenObject> =
            Box::leak(Box::new(MaybeUninit::uninit()));
        let (skel, link) = load(storage)?;
        Ok(TaskIter { _skel: skel, link })
    }

    /// Every task of the machine now, as [`scan_tasks`] gives them.
    pub fn scan(&self) -> Result<Vec<ProcTask>, Unavailable> {
        read_tasks(&self.link)
    }
}

/// Opens, loads and attaches the iterator program.
fn load(
    storage: &mut MaybeUninit<libbpf_rs::OpenObject>,
) -> Result<(skel::NswatchIterSkel<'_>, libbpf_rs::Link), Unavailable> {
    if !Path::new(KERNEL_BTF).exists() {
        return Err(Unavailable::NoBtf);
    }
    permitted()?;
    libbpf_rs::set_print(Some((PrintLevel::Warn, keep_libbpf_log)));
    let open = NswatchIterSkelBuilder::default()
        .open(storage)
        .map_err(|e| failure("opening the BPF iterator object", e))?;
    let skel = open
        .load()
        .map_err(|e| failure("loading the BPF task iterator", e))?;
    let link = skel
        .progs
        .nsw_iter_task
        .attach()
        .map_err(|e| failure("attaching the task iterator", e))?;
    Ok((skel, link))
}

/// One pass of the iterator behind `link`: each read of a new iterator fd walks the tasks
/// of that moment.
fn read_tasks(link: &libbpf_rs::Link) -> Result<Vec<ProcTask>, Unavailable> {
    let mut it = Iter::new(link).map_err(|e| failure("creating the task iterator", e))?;
    // A guess of the machine's size, so that the buffer rarely grows while reading.
    let mut buf = Vec::with_capacity(RECORD_SIZE * 4096);
    it.read_to_end(&mut buf)
        .map_err(|e| Unavailable::Failed(format!("reading the task iterator: {e}")))?;
    let dev = nsfs_dev();
    Ok(buf
        .chunks_exact(RECORD_SIZE)
        .filter_map(|r| parse_record(r, dev))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_decodes_field_by_field() {
        let mut b = vec![0u8; RECORD_SIZE];
        b[..8].copy_from_slice(&123_456_789u64.to_ne_bytes());
        for (i, v) in [10u32, 11, 1, 3].iter().enumerate() {
            b[8 + 4 * i..12 + 4 * i].copy_from_slice(&v.to_ne_bytes());
        }
        for i in 0..10 {
            let ino = if i == 4 { 0 } else { 4_026_531_830 + i as u32 };
            b[NS_OFF + 4 * i..NS_OFF + 4 + 4 * i].copy_from_slice(&ino.to_ne_bytes());
        }
        b[COMM_OFF..COMM_OFF + 5].copy_from_slice(b"sleep");
        let t = parse_record(&b, 4).unwrap();
        assert_eq!((t.pid, t.tid, t.ppid, t.nspid), (10, 11, 1, 3));
        assert_eq!(t.start_time, 123_456_789);
        assert_eq!(t.comm, "sleep");
        assert_eq!(t.ns.links().len(), 7);
        assert_eq!(
            t.ns.links()[0],
            NsLink {
                dev: 4,
                ino: 4_026_531_830
            }
        );
        // An inode the kernel did not give is unknown, as /proc's unreadable links are.
        assert_eq!(t.ns.links()[4], NsLink::default());
        assert_eq!(t.ns.links()[6].ino, 4_026_531_836);
        assert!(parse_record(&b[..RECORD_SIZE - 1], 4).is_none());
        b[COMM_OFF..COMM_OFF + 16].copy_from_slice(b"0123456789abcdef");
        assert_eq!(parse_record(&b, 4).unwrap().comm, "0123456789abcdef");
    }
}
