//! A file map that outlives the file shrinking under it.
//!
//! Reading a page of a shared file map past the file's end raises SIGBUS, and a file can be
//! truncated by another process at any time (a `perf record` restarted on the same name, a
//! rotation). A SIGBUS handler, installed once, recognises a fault inside one of the maps
//! registered here, maps anonymous zero pages over the rest of that map (MAP_FIXED), notes
//! the offset, and returns: the faulting read then reads zeros. The reader checks the note
//! after each record and stops with an error naming the offset, before handing on a record
//! it read after the fault. A fault anywhere else goes to the handler installed before
//! (Rust's stack-overflow guard, or the default action).
//!
//! Reading with pread instead would copy every record; the map lets the reader borrow
//! records in place and drop the pages it read (see `split`). See docs/DESIGN.md.

use std::fs::File;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// Maps registered at once, at most; a map beyond them is read unguarded.
const SLOTS: usize = 32;
/// No fault seen.
const NONE: usize = usize::MAX;

struct Slot {
    /// Address of the map; 0 when the slot is free.
    start: AtomicUsize,
    len: AtomicUsize,
    /// Offset in the map of the first page found missing, or [`NONE`].
    fault: AtomicUsize,
}

static REGISTRY: [Slot; SLOTS] = [const {
    Slot {
        start: AtomicUsize::new(0),
        len: AtomicUsize::new(0),
        fault: AtomicUsize::new(NONE),
    }
}; SLOTS];

/// Taken to claim or free a slot (never by the handler, which only reads them).
static CLAIM: Mutex<()> = Mutex::new(());

/// The SIGBUS action found when ours was installed, and the page size.
struct Installed {
    previous: libc::sigaction,
    page: usize,
}

// SAFETY: a plain C struct of integers and function addresses, written once before the
// handler can run, read-only after.
unsafe impl Sync for Installed {}
unsafe impl Send for Installed {}

/// Set before the handler is installed, so that it is there whenever the handler runs.
static PREVIOUS: OnceLock<Installed> = OnceLock::new();
/// Whether the handler is installed.
static READY: OnceLock<bool> = OnceLock::new();

/// A fault that is never set (bytes in memory, or a map that found no free slot).
static NEVER: AtomicUsize = AtomicUsize::new(NONE);

/// The fault note of an input that is no map: never set.
pub(crate) fn never() -> &'static AtomicUsize {
    &NEVER
}

/// A read-only file map registered with the SIGBUS handler.
pub(crate) struct GuardedMap {
    /// The map.
    pub(crate) map: memmap2::Mmap,
    /// The file, to tell its size once it shrank.
    file: File,
    slot: Option<usize>,
}

impl GuardedMap {
    /// Maps `file` whole and registers the map.
    pub(crate) fn new(file: File) -> std::io::Result<GuardedMap> {
        // SAFETY: a private read-only map; nswatch never writes the file. Its shrinking under
        // the map is what the registration below handles.
        let map = unsafe { memmap2::Mmap::map(&file)? };
        let slot = if map.is_empty() || !install() {
            None
        } else {
            register(map.as_ptr() as usize, map.len())
        };
        Ok(GuardedMap { map, file, slot })
    }

    /// The fault note of this map: [`usize::MAX`] until a read found a page missing, then
    /// that page's offset.
    pub(crate) fn fault(&self) -> &'static AtomicUsize {
        match self.slot {
            Some(i) => &REGISTRY[i].fault,
            None => &NEVER,
        }
    }

    /// The file's size now.
    pub(crate) fn size_now(&self) -> Option<u64> {
        self.file.metadata().ok().map(|m| m.len())
    }
}

impl Drop for GuardedMap {
    fn drop(&mut self) {
        if let Some(i) = self.slot {
            let _claim = CLAIM.lock().unwrap_or_else(|e| e.into_inner());
            let s = &REGISTRY[i];
            s.start.store(0, Ordering::Release);
            s.len.store(0, Ordering::Release);
            s.fault.store(NONE, Ordering::Release);
        }
        // The map itself (and the zero pages put over its tail) is unmapped by memmap2.
    }
}

/// Installs the handler once; false when it could not be.
fn install() -> bool {
    *READY.get_or_init(|| {
        // SAFETY: sysconf and sigaction with valid arguments; the handler only reads the
        // registry's atomics and calls mmap and the previous handler.
        unsafe {
            let Some(page) = usize::try_from(libc::sysconf(libc::_SC_PAGESIZE))
                .ok()
                .filter(|p| p.is_power_of_two())
            else {
                return false;
            };
            let mut previous: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut previous) != 0 {
                return false;
            }
            let _ = PREVIOUS.set(Installed { previous, page });
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_sigbus as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut()) == 0
        }
    })
}

fn register(start: usize, len: usize) -> Option<usize> {
    let _claim = CLAIM.lock().unwrap_or_else(|e| e.into_inner());
    let i = REGISTRY
        .iter()
        .position(|s| s.start.load(Ordering::Acquire) == 0)?;
    let s = &REGISTRY[i];
    s.fault.store(NONE, Ordering::Release);
    s.len.store(len, Ordering::Release);
    s.start.store(start, Ordering::Release);
    Some(i)
}

extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let Some(inst) = PREVIOUS.get() else {
        return;
    };
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let addr = unsafe { (*info).si_addr() } as usize;
    for s in &REGISTRY {
        let start = s.start.load(Ordering::Acquire);
        let len = s.len.load(Ordering::Acquire);
        if start == 0 || addr < start || addr - start >= len {
            continue;
        }
        let page = addr & !(inst.page - 1);
        let end = (start + len).next_multiple_of(inst.page);
        // SAFETY: [page, end) lies inside a live read-only map of ours (registered until
        // it is unmapped); zero pages replace file pages that no longer exist.
        let r = unsafe {
            libc::mmap(
                page as *mut libc::c_void,
                end - page,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if r != libc::MAP_FAILED {
            s.fault.fetch_min(page - start, Ordering::AcqRel);
            return;
        }
        break;
    }
    // Not a page of ours (or no zero page could be had): what would have happened without
    // this handler.
    let prev = &inst.previous;
    // SAFETY: calling the action that was installed, as the kernel would have; resetting to
    // the default makes the faulting access fault again, and die of it.
    unsafe {
        if prev.sa_sigaction == libc::SIG_DFL || prev.sa_sigaction == libc::SIG_IGN {
            let mut dfl: libc::sigaction = std::mem::zeroed();
            dfl.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(libc::SIGBUS, &dfl, std::ptr::null_mut());
        } else if prev.sa_flags & libc::SA_SIGINFO != 0 {
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                std::mem::transmute(prev.sa_sigaction);
            f(sig, info, ctx);
        } else {
            let f: extern "C" fn(libc::c_int) = std::mem::transmute(prev.sa_sigaction);
            f(sig);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_map_reads_zeros_past_a_truncation_and_notes_where() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&vec![7u8; 64 << 10]).unwrap();
        let g = GuardedMap::new(f.try_clone().unwrap()).unwrap();
        assert_eq!(g.fault().load(Ordering::Relaxed), NONE);
        assert_eq!(g.map[100], 7);
        f.set_len(10_000).unwrap();
        let bytes: &[u8] = &g.map;
        // SAFETY: a read the compiler must not skip.
        let past = unsafe { std::ptr::read_volatile(&bytes[40_000]) };
        assert_eq!(past, 0);
        // The page read, not the first one missing: the reader reads in order.
        assert_eq!(g.fault().load(Ordering::Relaxed), 36_864);
        // SAFETY: as above.
        let _ = unsafe { std::ptr::read_volatile(&bytes[20_000]) };
        assert_eq!(g.fault().load(Ordering::Relaxed), 16_384);
        assert_eq!(bytes[100], 7, "pages before the cut are still the file's");
        assert_eq!(bytes[9_999], 7);
        assert_eq!(bytes[10_000], 0, "the rest of the last page reads zeros");
        assert_eq!(g.size_now(), Some(10_000));
    }
}
