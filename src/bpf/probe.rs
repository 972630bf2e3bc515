//! Loading the eBPF program, attaching it, and reading its ring buffer.

use super::event::{BadRecord, Cause};
use crate::live::Side;
use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags, PrintLevel, RingBuffer, RingBufferBuilder};
use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::mem::MaybeUninit;
use std::os::fd::{BorrowedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::rc::Rc;
use std::sync::Mutex;

#[allow(missing_docs, clippy::all, clippy::pedantic)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/nswatch.skel.rs"));
}
use skel::{NswatchSkel, NswatchSkelBuilder};

/// Where the kernel publishes its BTF, which CO-RE relocates the program against.
pub const KERNEL_BTF: &str = "/sys/kernel/btf/vmlinux";

/// Why the probe could not run.
#[derive(Debug, thiserror::Error)]
pub enum Unavailable {
    /// The kernel has no BTF.
    #[error("no kernel BTF at {KERNEL_BTF} (a kernel built without CONFIG_DEBUG_INFO_BTF)")]
    NoBtf,
    /// The kernel refused for lack of privilege.
    #[error(
        "loading a BPF program needs CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN, or root): {0}"
    )]
    NotPermitted(String),
    /// Any other failure while opening, loading or attaching.
    #[error("{0}")]
    Failed(String),
}

/// libbpf's last warnings, kept to say why a load failed instead of printing them all.
static LIBBPF_LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());

pub(super) fn keep_libbpf_log(level: PrintLevel, msg: String) {
    if level != PrintLevel::Debug {
        if let Ok(mut log) = LIBBPF_LOG.lock() {
            if log.len() >= 16 {
                log.remove(0);
            }
            log.push(msg.trim_end().to_string());
        }
    }
}

fn last_libbpf_line() -> String {
    LIBBPF_LOG
        .lock()
        .ok()
        .and_then(|l| l.iter().rev().find(|m| !m.is_empty()).cloned())
        .map(|l| format!(" (libbpf: {})", l.trim_start_matches("libbpf: ")))
        .unwrap_or_default()
}

pub(super) fn failure(what: &str, e: libbpf_rs::Error) -> Unavailable {
    let text = format!("{what}: {e}{}", last_libbpf_line());
    if e.kind() == libbpf_rs::ErrorKind::PermissionDenied {
        Unavailable::NotPermitted(text)
    } else {
        Unavailable::Failed(text)
    }
}

/// One record waiting to be merged, ordered by its entry time.
#[derive(Debug)]
struct Waiting(u64, u64, Cause);

impl PartialEq for Waiting {
    fn eq(&self, o: &Self) -> bool {
        (self.0, self.1) == (o.0, o.1)
    }
}
impl Eq for Waiting {}
impl PartialOrd for Waiting {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Waiting {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.0, self.1).cmp(&(o.0, o.1))
    }
}

/// The loaded and attached program, and what its ring buffer delivered.
pub struct Probe {
    skel: NswatchSkel<'static>,
    ring: RingBuffer<'static>,
    arrived: Rc<RefCell<Vec<Cause>>>,
    bad: Rc<RefCell<u64>>,
    waiting: BinaryHeap<Reverse<Waiting>>,
    seq: u64,
}

/// st_dev of the nsfs: every namespace inode lives on its one superblock, so the device
/// read from one namespace file is that of all (perf's records carry the same number).
pub fn nsfs_dev() -> u64 {
    ["/proc/self/ns/net", "/proc/2/ns/net", "/proc/1/ns/net"]
        .iter()
        .find_map(|p| std::fs::metadata(p).ok())
        .map_or(0, |m| m.dev())
}

impl Probe {
    /// Loads and attaches the program; says why when it cannot.
    pub fn load() -> Result<Probe, Unavailable> {
        if !Path::new(KERNEL_BTF).exists() {
            return Err(Unavailable::NoBtf);
        }
        libbpf_rs::set_print(Some((PrintLevel::Warn, keep_libbpf_log)));
        // The skeleton borrows its object for as long as the program runs: a probe is
        // loaded once per process, so the few bytes of its storage are leaked on purpose.
        let storage: &'static mut MaybeUninit<libbpf_rs::OpenObject> =
            Box::leak(Box::new(MaybeUninit::uninit()));
        let open = NswatchSkelBuilder::default()
            .open(storage)
            .map_err(|e| failure("opening the BPF object", e))?;
        let mut skel = open
            .load()
            .map_err(|e| failure("loading the BPF program", e))?;
        skel.attach()
            .map_err(|e| failure("attaching to raw_tp/sys_enter and sys_exit", e))?;
        let dev = nsfs_dev();
        let arrived = Rc::new(RefCell::new(Vec::new()));
        let bad = Rc::new(RefCell::new(0u64));
        let mut rb = RingBufferBuilder::new();
        let (a, b) = (Rc::clone(&arrived), Rc::clone(&bad));
        rb.add(&skel.maps.events, move |data: &[u8]| {
            match Cause::parse(data, dev) {
                Ok(c) => a.borrow_mut().push(c),
                Err(BadRecord::Short(_) | BadRecord::Syscall(_)) => *b.borrow_mut() += 1,
            }
            0
        })
        .map_err(|e| failure("reading the ring buffer", e))?;
        let ring = rb
            .build()
            .map_err(|e| failure("mapping the ring buffer", e))?;
        Ok(Probe {
            skel,
            ring,
            arrived,
            bad,
            waiting: BinaryHeap::new(),
            seq: 0,
        })
    }

    /// Calls the program could not report: `[ring buffer full, in-flight table full]`,
    /// summed over CPUs.
    pub fn drops(&self) -> [u64; 2] {
        let mut out = [0; 2];
        for (i, slot) in out.iter_mut().enumerate() {
            let key = (i as u32).to_ne_bytes();
            if let Ok(Some(per_cpu)) = self.skel.maps.drops.lookup_percpu(&key, MapFlags::ANY) {
                *slot = per_cpu
                    .iter()
                    .filter_map(|v| v.get(..8))
                    .map(|v| u64::from_ne_bytes(v.try_into().expect("8 bytes")))
                    .sum();
            }
        }
        out
    }

    /// Records of a size or kind this build does not know (a mismatched program).
    pub fn bad_records(&self) -> u64 {
        *self.bad.borrow()
    }
}

impl Side for Probe {
    fn fill(&mut self) {
        // Never blocks: consume() reads what the ring holds and returns.
        let _ = self.ring.consume();
        for c in self.arrived.borrow_mut().drain(..) {
            self.seq += 1;
            self.waiting.push(Reverse(Waiting(c.enter_ns, self.seq, c)));
        }
    }

    fn peek_time(&self) -> Option<u64> {
        self.waiting.peek().map(|w| w.0 .0)
    }

    fn pop(&mut self) -> Option<Cause> {
        self.waiting.pop().map(|w| w.0 .2)
    }

    fn lost(&self) -> u64 {
        self.drops().iter().sum()
    }

    fn fd(&self) -> Option<BorrowedFd<'_>> {
        let fd: RawFd = self.ring.epoll_fd();
        // SAFETY: the ring buffer owns this epoll fd and outlives the borrow.
        (fd >= 0).then(|| unsafe { BorrowedFd::borrow_raw(fd) })
    }
}
