//! Loading the eBPF program, attaching it, and reading its ring buffer.
//!
//! The program has two ways into the kernel (see bpf/nswatch.bpf.c): fentry/fexit
//! trampolines on the syscalls' entry functions, which cost other syscalls nothing, and
//! raw_tp/sys_enter+sys_exit, which slow every syscall of the machine a little but need no
//! trampoline. [`Probe::load`] tries the first and falls back to the second; [`HOOK_ENV`]
//! forces either.

use super::event::{Cause, Syscall, RECORD_SIZE};
use crate::live::{Creation, Side};
use libbpf_rs::btf::{types, Btf, ReferencesType};
use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{PrintLevel, RingBuffer, RingBufferBuilder};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::mem::MaybeUninit;
use std::os::fd::{BorrowedFd, FromRawFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

#[allow(missing_docs, clippy::all, clippy::pedantic)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/nswatch.skel.rs"));
}
use skel::{NswatchSkel, NswatchSkelBuilder};

/// Where the kernel publishes its BTF, which CO-RE relocates the program against.
pub const KERNEL_BTF: &str = "/sys/kernel/btf/vmlinux";

/// Environment variable that chooses the hook kind: `raw_tp` (the default), `fentry`, or
/// `auto` (fentry where it attaches, raw_tp otherwise). fentry costs unrelated syscalls
/// nothing, but the development VMs' kernel refuses every trampoline program, so that path
/// has not run anywhere yet: it stays opt-in until it has been tested on such a kernel.
pub const HOOK_ENV: &str = "NSWATCH_BPF_HOOK";

/// How the program is hooked into the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// fentry/fexit trampolines on the syscalls' entry functions.
    Fentry,
    /// raw_tp/sys_enter and raw_tp/sys_exit, filtered by syscall number.
    RawTp,
}

impl Hook {
    /// Its name, as the summary line and [`HOOK_ENV`] spell it.
    pub fn name(self) -> &'static str {
        match self {
            Hook::Fentry => "fentry",
            Hook::RawTp => "raw_tp",
        }
    }

    /// The kinds to try, in order, as [`HOOK_ENV`] asks.
    fn wanted() -> Result<Vec<Hook>, Unavailable> {
        match std::env::var(HOOK_ENV).as_deref() {
            Ok("auto") => Ok(vec![Hook::Fentry, Hook::RawTp]),
            Ok("fentry") => Ok(vec![Hook::Fentry]),
            Err(_) | Ok("" | "raw_tp") => Ok(vec![Hook::RawTp]),
            Ok(other) => Err(Unavailable::Failed(format!(
                "{HOOK_ENV}={other}: expected fentry, raw_tp or auto"
            ))),
        }
    }
}

/// The syscalls' entry functions as the C program names them, per architecture.
#[cfg(target_arch = "x86_64")]
const SYS_PREFIX: &str = "__x64_sys_";
#[cfg(target_arch = "aarch64")]
const SYS_PREFIX: &str = "__arm64_sys_";
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const SYS_PREFIX: &str = "__sys_";

/// Syscalls a kernel may lack (clone3 before 5.3; fork and vfork on arm64): their
/// trampolines are left out there, as the syscall itself is.
const OPTIONAL: [&str; 3] = ["clone3", "fork", "vfork"];

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

/// What the ring buffer delivered, shared with its callback: causes waiting to be merged,
/// in order of entry time (equal times in order of arrival), and emptied causes to parse
/// the next records into.
///
/// Records arrive in the order calls *ended*; calls that overlap end in another order than
/// they began, but only by the few calls in flight at once, so a new cause is inserted by
/// a short scan from the back (usually none: it goes last). The causes are boxed and
/// recycled ([`Side::recycle`]): a storm of setns calls reuses the same few hundred boxes
/// and their command strings instead of allocating and freeing two blocks per call.
#[derive(Debug, Default)]
struct Inbox {
    #[allow(clippy::vec_box)] // boxed once, moved as a pointer (bpf::correlate)
    /// By entry time, kept next to each cause: the merge peeks at the time of the oldest
    /// at every step, and a load from the cause itself (written when the batch was
    /// parsed, long evicted) was a cache miss each time.
    waiting: VecDeque<(u64, Box<Cause>)>,
    #[allow(clippy::vec_box)]
    spare: Vec<Box<Cause>>,
    bad: u64,
    /// Calls that made namespaces since the session last asked ([`Side::creations`]).
    created: Vec<Creation>,
    /// The network namespaces (inodes) the last two setns calls noted in `created` entered.
    joined_nets: [u32; 2],
}

/// unshare's flags that make namespaces (CLONE_NEW*, CLONE_NEWTIME).
const NEW_NAMESPACES: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWCGROUP
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | 0x80) as u64;

/// Emptied causes kept for reuse, at most: enough for a full ring buffer's worth in flight.
const SPARE_MAX: usize = 8192;

impl Inbox {
    /// Parses one ring buffer record into a spare cause and queues it.
    fn take(&mut self, data: &[u8], dev: u64) {
        // The next record (its 8-byte header, then its data) was written by another CPU
        // and is most likely in that CPU's cache: its lines are asked for while this one
        // is parsed, so that their misses overlap this record's work. (Setns storm, NDJSON
        // to /dev/null: less CPU per record read in 16 of 22 interleaved runs, 28 ns on
        // average; three records ahead, no gain.) Past the last record this reads ahead
        // in the ring's mapping, harmlessly.
        prefetch_bytes(data.as_ptr().wrapping_add(data.len()), RECORD_SIZE + 8);
        let mut c = self.spare.pop().unwrap_or_else(|| Box::new(Cause::blank()));
        if c.parse_into(data, dev).is_err() {
            self.bad += 1;
            self.spare.push(c);
            return;
        }
        let setns = matches!(c.syscall, Syscall::Setns);
        // The program records clones only when the child lands in other namespaces; an
        // exec enters a time namespace made earlier.
        let made = match c.syscall {
            Syscall::Setns | Syscall::Execve | Syscall::Execveat => false,
            Syscall::Unshare => c.flags & NEW_NAMESPACES != 0,
            Syscall::Clone | Syscall::Clone3 | Syscall::Fork | Syscall::Vfork => true,
        };
        // A setns into a network namespace only when neither of the last two such calls
        // noted entered it: a storm between two namespaces notes two.
        let net = c.after[0];
        let joined_net =
            setns && c.flags & libc::CLONE_NEWNET as u64 != 0 && !self.joined_nets.contains(&net);
        if joined_net && c.ret >= 0 {
            self.joined_nets = [net, self.joined_nets[0]];
        }
        if c.ret >= 0 && (made || joined_net) {
            let clone = c.syscall.creates_task();
            self.created.push(Creation {
                pid: c.pid,
                tid: c.tid,
                child: (clone && c.ret > 0).then_some(c.ret as u32),
                comm: if made { c.comm.clone() } else { String::new() },
                made,
                cgroup: c.cgroup,
            });
        }
        let t = c.enter_ns;
        let mut at = self.waiting.len();
        while at > 0 && self.waiting[at - 1].0 > t {
            at -= 1;
        }
        self.waiting.insert(at, (t, c));
    }

    fn recycle(&mut self, c: Box<Cause>) {
        if self.spare.len() < SPARE_MAX {
            self.spare.push(c);
        }
    }
}

/// The loaded and attached program, and what its ring buffer delivered.
pub struct Probe {
    skel: NswatchSkel<'static>,
    hook: Hook,
    passed_over: Option<String>,
    ring: RingBuffer<'static>,
    inbox: Rc<RefCell<Inbox>>,
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
    /// Loads and attaches the program, hooked as [`HOOK_ENV`] asks (by default fentry,
    /// else raw_tp); says why when it cannot.
    pub fn load() -> Result<Probe, Unavailable> {
        if !Path::new(KERNEL_BTF).exists() {
            return Err(Unavailable::NoBtf);
        }
        libbpf_rs::set_print(Some((PrintLevel::Warn, keep_libbpf_log)));
        let mut passed_over: Option<String> = None;
        let mut last = None;
        for hook in Hook::wanted()? {
            match Self::load_as(hook) {
                Ok(mut p) => {
                    p.passed_over = passed_over;
                    return Ok(p);
                }
                Err(e) => {
                    // Without the CAP_BPF preamble: when raw_tp loads next, privilege was not
                    // the reason (some kernels refuse trampolines with EPERM even to root).
                    let why = match &e {
                        Unavailable::NotPermitted(t) | Unavailable::Failed(t) => t.clone(),
                        Unavailable::NoBtf => e.to_string(),
                    };
                    passed_over = Some(format!("{} refused: {why}", hook.name()));
                    last = Some(e);
                }
            }
        }
        Err(last.expect("at least one hook kind is tried"))
    }

    fn load_as(hook: Hook) -> Result<Probe, Unavailable> {
        // The skeleton borrows its object for as long as the program runs: a probe is
        // loaded once per process (twice when fentry fails), so the few bytes of its storage
        // are leaked on purpose.
        let storage: &'static mut MaybeUninit<libbpf_rs::OpenObject> =
            Box::leak(Box::new(MaybeUninit::uninit()));
        let mut open = NswatchSkelBuilder::default()
            .open(storage)
            .map_err(|e| failure("opening the BPF object", e))?;
        let btf = match hook {
            Hook::Fentry => {
                Some(Btf::from_vmlinux().map_err(|e| failure("reading the kernel's BTF", e))?)
            }
            Hook::RawTp => None,
        };
        if let Some(btf) = &btf {
            // Before the object's whole load (libbpf parses the kernel's BTF again for it,
            // a few hundred ms in a debug build), one empty fentry program tells whether
            // this kernel takes trampoline programs at all.
            let setns = format!("{SYS_PREFIX}setns");
            let id = btf
                .type_by_name::<types::Func<'_>>(&setns)
                .map(|f| u32::from(f.type_id()))
                .ok_or_else(|| {
                    Unavailable::Failed(format!("no function {setns} in the kernel's BTF"))
                })?;
            empty_fentry_loads(id)?;
        }
        for mut prog in open.open_object_mut().progs_mut() {
            let section = prog.section().to_string_lossy().into_owned();
            let trampoline = section.starts_with("fentry/") || section.starts_with("fexit/");
            match &btf {
                None => prog.set_autoload(!trampoline),
                Some(_) if !trampoline => prog.set_autoload(false),
                Some(btf) => {
                    let func = section.split_once('/').map_or("", |(_, f)| f);
                    match trampoline_target(btf, func)? {
                        Some(f) if f == func => {}
                        Some(f) => prog
                            .set_attach_target(0, Some(f))
                            .map_err(|e| failure("retargeting a trampoline", e))?,
                        None => prog.set_autoload(false),
                    }
                }
            }
        }
        let mut skel = open
            .load()
            .map_err(|e| failure("loading the BPF program", e))?;
        skel.attach().map_err(|e| {
            let what = match hook {
                Hook::Fentry => "attaching fentry/fexit to the syscall functions",
                Hook::RawTp => "attaching to raw_tp/sys_enter and sys_exit",
            };
            failure(what, e)
        })?;
        let dev = nsfs_dev();
        let inbox = Rc::new(RefCell::new(Inbox::default()));
        let mut rb = RingBufferBuilder::new();
        let shared = Rc::clone(&inbox);
        rb.add(&skel.maps.events, move |data: &[u8]| {
            shared.borrow_mut().take(data, dev);
            0
        })
        .map_err(|e| failure("reading the ring buffer", e))?;
        let ring = rb
            .build()
            .map_err(|e| failure("mapping the ring buffer", e))?;
        Ok(Probe {
            skel,
            hook,
            passed_over: None,
            ring,
            inbox,
        })
    }

    /// How the program is hooked.
    pub fn hook(&self) -> Hook {
        self.hook
    }

    /// Why a preferred hook kind was not used (fentry, when this probe fell back to raw_tp).
    pub fn passed_over(&self) -> Option<&str> {
        self.passed_over.as_deref()
    }

    /// Calls the program could not report: `[ring buffer full, in-flight table full]`.
    /// Two loads from the program's mapped globals: no syscall.
    pub fn drops(&self) -> [u64; 2] {
        let Some(bss) = self.skel.maps.bss_data.as_deref() else {
            return [0; 2];
        };
        let read = |field: *const u64| {
            // SAFETY: an aligned u64 of the program's .bss, mapped shared for as long as
            // the skeleton lives; the program adds to it concurrently, hence the atomic.
            unsafe { AtomicU64::from_ptr(field.cast_mut()) }.load(Ordering::Relaxed)
        };
        [
            read(std::ptr::addr_of!(bss.drops_ringbuf)),
            read(std::ptr::addr_of!(bss.drops_inflight)),
        ]
    }

    /// Records of a size or kind this build does not know (a mismatched program).
    pub fn bad_records(&self) -> u64 {
        self.inbox.borrow().bad
    }
}

/// The kernel function a trampoline named for `func` attaches to: `func` itself when the
/// kernel's BTF has it, else the `__do_sys_` alias that SYSCALL_DEFINE0 syscalls (fork,
/// vfork) are described by; `None` for a syscall this kernel may lack, an error for one
/// every kernel has (fentry cannot serve, raw_tp must).
fn trampoline_target(btf: &Btf<'_>, func: &str) -> Result<Option<String>, Unavailable> {
    // The programs read the user's registers as the one argument and fexit's return value
    // right after it: a function of another shape would be read wrongly.
    let has = |name: &str| {
        btf.type_by_name::<types::Func<'_>>(name)
            .and_then(|f| types::FuncProto::try_from(f.referenced_type()).ok())
            .is_some_and(|p| p.len() == 1)
    };
    if has(func) {
        return Ok(Some(func.to_string()));
    }
    let syscall = func.strip_prefix(SYS_PREFIX).unwrap_or(func);
    let alias = format!("__do_sys_{syscall}");
    if has(&alias) {
        Ok(Some(alias))
    } else if OPTIONAL.contains(&syscall) {
        Ok(None)
    } else {
        Err(Unavailable::Failed(format!(
            "no function {func} in the kernel's BTF"
        )))
    }
}

/// Loads (and at once closes) an empty fentry program on the kernel function of BTF id
/// `func`: Ok when the kernel takes trampoline programs. Some kernels refuse every one of
/// them (fentry, fexit, lsm) with EPERM even to root, while raw tracepoints load.
fn empty_fentry_loads(func: u32) -> Result<(), Unavailable> {
    use libbpf_rs::libbpf_sys as sys;
    // r0 = 0; exit
    let mut insns: [sys::bpf_insn; 2] = Default::default();
    insns[0].code = 0xb7;
    insns[1].code = 0x95;
    let mut opts = sys::bpf_prog_load_opts {
        sz: std::mem::size_of::<sys::bpf_prog_load_opts>() as _,
        expected_attach_type: sys::BPF_TRACE_FENTRY,
        attach_btf_id: func,
        ..Default::default()
    };
    // SAFETY: the name and license are NUL-terminated, `insns` holds the 2 instructions
    // passed, and `opts` is a bpf_prog_load_opts whose size is set; the returned fd is ours.
    let fd = unsafe {
        sys::bpf_prog_load(
            sys::BPF_PROG_TYPE_TRACING,
            c"nsw_can_fentry".as_ptr(),
            c"GPL".as_ptr(),
            insns.as_ptr(),
            insns.len() as _,
            &mut opts,
        )
    };
    if fd >= 0 {
        // SAFETY: a fresh fd that nothing else owns.
        drop(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) });
        return Ok(());
    }
    let err = std::io::Error::from_raw_os_error(-fd);
    let text =
        format!("the kernel refuses fentry programs: an empty one on {SYS_PREFIX}setns gets {err}");
    Err(if -fd == libc::EPERM {
        Unavailable::NotPermitted(format!(
            "{text} (without CAP_BPF, or where the kernel allows no BPF trampolines)"
        ))
    } else {
        Unavailable::Failed(text)
    })
}

/// Asks the CPU to load the cache lines of `c` (those the correlator and the event read
/// first) ahead of their use.
#[inline]
fn prefetch(c: &Cause) {
    prefetch_bytes((c as *const Cause).cast(), std::mem::size_of::<Cause>());
}

/// Asks the CPU to load the cache lines of `len` bytes from `p` ahead of their use. Any
/// address will do: prefetching is a hint that reads nothing the program sees and never
/// faults.
#[inline]
fn prefetch_bytes(p: *const u8, len: usize) {
    #[cfg(target_arch = "x86_64")]
    for line in (0..len).step_by(64) {
        // SAFETY: a hint only (above); the address is computed, never dereferenced.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                p.wrapping_add(line).cast(),
            )
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (p, len);
}

impl Side for Probe {
    fn fill(&mut self) {
        // Never blocks: consume() reads what the ring holds and returns; the callback
        // queues each record in the inbox.
        let _ = self.ring.consume();
    }

    fn peek_time(&self) -> Option<u64> {
        self.inbox.borrow().waiting.front().map(|(t, _)| *t)
    }

    fn pop(&mut self) -> Option<Box<Cause>> {
        let mut inbox = self.inbox.borrow_mut();
        let (_, c) = inbox.waiting.pop_front()?;
        // The next cause is used after this one's record: start loading it now.
        if let Some((_, next)) = inbox.waiting.front() {
            prefetch(next);
        }
        Some(c)
    }

    fn recycle(&mut self, c: Box<Cause>) {
        self.inbox.borrow_mut().recycle(c);
    }

    fn lost(&self) -> u64 {
        self.drops().iter().sum()
    }

    fn creations(&mut self, out: &mut Vec<Creation>) {
        out.append(&mut self.inbox.borrow_mut().created);
    }

    fn fd(&self) -> Option<BorrowedFd<'_>> {
        let fd: RawFd = self.ring.epoll_fd();
        // SAFETY: the ring buffer owns this epoll fd and outlives the borrow.
        (fd >= 0).then(|| unsafe { BorrowedFd::borrow_raw(fd) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bpf::event::RECORD_SIZE;

    fn record(enter: u64, tid: u32) -> Vec<u8> {
        let mut b = vec![0u8; RECORD_SIZE];
        b[0..8].copy_from_slice(&enter.to_ne_bytes());
        b[8..16].copy_from_slice(&(enter + 5).to_ne_bytes());
        b[36..40].copy_from_slice(&tid.to_ne_bytes());
        b[40..44].copy_from_slice(&1u32.to_ne_bytes());
        b[192..194].copy_from_slice(b"ab");
        b
    }

    #[test]
    fn the_inbox_orders_by_entry_time_and_reuses_causes() {
        let mut inbox = Inbox::default();
        // Arrival (exit) order differs from entry order for calls that overlapped; equal
        // entry times keep their arrival order.
        for (enter, tid) in [(10, 1), (30, 2), (20, 3), (30, 4), (5, 5), (40, 6)] {
            inbox.take(&record(enter, tid), 4);
        }
        let mut bad = record(50, 7);
        bad[40..44].copy_from_slice(&99u32.to_ne_bytes());
        inbox.take(&bad, 4);
        assert_eq!(inbox.bad, 1);
        let order: Vec<(u64, u32)> = inbox
            .waiting
            .iter()
            .map(|(t, c)| {
                assert_eq!(*t, c.enter_ns);
                (c.enter_ns, c.tid)
            })
            .collect();
        assert_eq!(order, [(5, 5), (10, 1), (20, 3), (30, 2), (30, 4), (40, 6)]);
        // A recycled box is parsed into again, not allocated anew.
        let (_, c) = inbox.waiting.pop_front().unwrap();
        let at: *const Cause = &*c;
        inbox.spare.clear();
        inbox.recycle(c);
        inbox.take(&record(45, 8), 4);
        let (_, last) = inbox.waiting.back().unwrap();
        assert_eq!((last.enter_ns, last.tid, last.comm.as_str()), (45, 8, "ab"));
        assert!(std::ptr::eq(at, &**last));
    }
}
