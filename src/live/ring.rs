//! One perf mmap ring buffer: records are borrowed straight out of the mapping.
//!
//! The kernel writes records at `data_head` and never overwrites bytes before `data_tail`
//! (the ring is mapped writable, so it is not in overwrite mode). nswatch reads `data_head`
//! with acquire ordering, walks the records in `[tail, head)` as borrowed views, and stores
//! the new tail with release ordering once they are consumed: one store per drain.

use crate::bytes::{Bytes, Endian};
use crate::error::{DecodeError, ErrorKind};
use crate::record::{RecordView, HEADER_LEN};
use perf_event_open_sys::bindings::perf_event_mmap_page;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};

/// A mapped ring of one perf event fd.
pub struct Ring {
    fd: OwnedFd,
    cpu: u32,
    base: *mut u8,
    map_len: usize,
    data: *const u8,
    size: u64,
    tail: u64,
}

// SAFETY: the mapping is owned by this value and only read through it (plus the atomic
// tail store); moving it to another thread moves that ownership.
unsafe impl Send for Ring {}

impl Ring {
    /// Maps `1 + data_pages` pages of `fd`; `data_pages` must be a power of two.
    pub fn map(fd: OwnedFd, cpu: u32, data_pages: usize) -> io::Result<Ring> {
        assert!(
            data_pages.is_power_of_two(),
            "ring pages must be a power of two"
        );
        let page = page_size();
        let map_len = (1 + data_pages) * page;
        // SAFETY: a fresh shared mapping of a perf fd; PROT_WRITE is needed so that the
        // kernel honours data_tail (a read-only ring runs in overwrite mode).
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = base as *mut u8;
        let meta = base as *const perf_event_mmap_page;
        // SAFETY: the first page is the control page; data_offset/data_size are set by the
        // kernel (4.1+) before mmap returns; zero means the classic layout (data at one page).
        let (off, size) = unsafe { ((*meta).data_offset, (*meta).data_size) };
        let (off, size) = if size == 0 {
            (page as u64, (data_pages * page) as u64)
        } else {
            (off, size)
        };
        Ok(Ring {
            fd,
            cpu,
            base,
            map_len,
            // SAFETY: data_offset lies within the mapping.
            data: unsafe { base.add(off as usize) },
            size,
            tail: 0,
        })
    }

    /// The CPU this ring records.
    pub fn cpu(&self) -> u32 {
        self.cpu
    }

    /// The event's fd (for epoll and ioctls).
    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// Size of the data area in bytes.
    pub fn data_size(&self) -> u64 {
        self.size
    }

    fn head_atomic(&self) -> &AtomicU64 {
        let meta = self.base as *mut perf_event_mmap_page;
        // SAFETY: data_head is an aligned u64 in the control page, which lives as long as
        // self; the kernel updates it concurrently, hence the atomic view.
        unsafe { AtomicU64::from_ptr(std::ptr::addr_of_mut!((*meta).data_head)) }
    }

    fn tail_atomic(&self) -> &AtomicU64 {
        let meta = self.base as *mut perf_event_mmap_page;
        // SAFETY: as for data_head; the kernel reads data_tail concurrently.
        unsafe { AtomicU64::from_ptr(std::ptr::addr_of_mut!((*meta).data_tail)) }
    }

    /// Where the kernel has written up to. Acquire: the record bytes before it are visible.
    #[inline]
    pub fn head(&self) -> u64 {
        self.head_atomic().load(Ordering::Acquire)
    }

    /// The first byte not yet consumed.
    #[inline]
    pub fn tail(&self) -> u64 {
        self.tail
    }

    /// Hands `[tail, pos)` back to the kernel. Release: our reads of those bytes happen
    /// before the kernel may overwrite them.
    #[inline]
    pub fn release(&mut self, pos: u64) {
        debug_assert!(pos >= self.tail);
        self.tail = pos;
        self.tail_atomic().store(pos, Ordering::Release);
    }

    /// The record at ring position `pos` (with `tail <= pos < head`), borrowed in place; a
    /// record that wraps the data area's end is a two-piece view. Errors name the ring
    /// position of a record whose header is impossible (a corrupt ring).
    #[inline]
    pub fn record_at(&self, pos: u64, head: u64) -> Result<RecordView<'_>, DecodeError> {
        let off = (pos & (self.size - 1)) as usize;
        let avail = head - pos;
        // SAFETY: records start 8-aligned and the data area is whole pages, so the 8-byte
        // header never wraps; the bytes before `head` were published by the kernel
        // (acquire load of data_head) and are not rewritten before we release them.
        let header = unsafe { std::slice::from_raw_parts(self.data.add(off), HEADER_LEN) };
        let size = u16::from_ne_bytes([header[6], header[7]]) as u64;
        if size < HEADER_LEN as u64 || size > avail {
            let ty = u32::from_ne_bytes(header[0..4].try_into().expect("4 bytes"));
            let kind = if size < HEADER_LEN as u64 {
                ErrorKind::RecordTooSmall(size as u16)
            } else {
                ErrorKind::Truncated {
                    needed: size,
                    available: avail,
                }
            };
            return Err(DecodeError::in_record(pos, ty, kind));
        }
        let size = size as usize;
        let first = size.min(self.size as usize - off);
        // SAFETY: [off, off + first) and [0, size - first) are inside the data area and
        // inside [tail, head): published and not yet released.
        let bytes = unsafe {
            let a = std::slice::from_raw_parts(self.data.add(off), first);
            if first == size {
                Bytes::new(a, Endian::NATIVE)
            } else {
                let b = std::slice::from_raw_parts(self.data, size - first);
                Bytes::split(a, b, Endian::NATIVE)
            }
        };
        RecordView::parse(bytes, pos)
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: unmapping what `map` mapped; no view outlives &self.
        unsafe {
            libc::munmap(self.base as *mut libc::c_void, self.map_len);
        }
    }
}

/// The system page size.
pub fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as usize
    } else {
        4096
    }
}
