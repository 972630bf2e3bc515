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
        // SAFETY: just mapped, with the length given.
        Ok(unsafe { Ring::from_mapping(fd, cpu, base as *mut u8, map_len, data_pages) })
    }

    /// Takes over a mapping of `map_len` bytes at `base` laid out as a perf ring.
    ///
    /// # Safety
    /// `base` must be a mapping of `map_len` bytes (control page + data area) that nothing
    /// else unmaps; it is unmapped on drop.
    unsafe fn from_mapping(
        fd: OwnedFd,
        cpu: u32,
        base: *mut u8,
        map_len: usize,
        data_pages: usize,
    ) -> Ring {
        let page = page_size();
        let meta = base as *const perf_event_mmap_page;
        // SAFETY: the first page is the control page; data_offset/data_size are set by the
        // kernel (4.1+) before mmap returns; zero means the classic layout (data at one page).
        let (off, size) = unsafe { ((*meta).data_offset, (*meta).data_size) };
        let (off, size) = if size == 0 {
            (page as u64, (data_pages * page) as u64)
        } else {
            (off, size)
        };
        Ring {
            fd,
            cpu,
            base,
            map_len,
            // SAFETY: data_offset lies within the mapping.
            data: unsafe { base.add(off as usize) },
            size,
            tail: 0,
        }
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
        self.release_early(pos);
        self.tail = pos;
    }

    /// Hands `[tail, pos)` back to the kernel while records past `pos` are still borrowed
    /// (in the middle of a drain), leaving [`Ring::tail`] where it was until
    /// [`Ring::release`]: the kernel may reuse what was consumed while the rest is read.
    /// Release, as there.
    #[inline]
    pub fn release_early(&self, pos: u64) {
        debug_assert!(pos >= self.tail);
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
        let ty = u32::from_ne_bytes(header[0..4].try_into().expect("4 bytes"));
        let misc = u16::from_ne_bytes([header[4], header[5]]);
        let size = u16::from_ne_bytes([header[6], header[7]]) as u64;
        // The kernel 8-aligns its records: a size that is not would put the next header
        // across the wrap, so it is corruption like the others.
        if size < HEADER_LEN as u64 || size > avail || !size.is_multiple_of(8) {
            let kind = if size < HEADER_LEN as u64 {
                ErrorKind::RecordTooSmall(size as u16)
            } else if !size.is_multiple_of(8) {
                ErrorKind::RecordMisaligned(size as u16)
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
        // The header was checked above (what RecordView::parse would check again).
        Ok(RecordView {
            offset: pos,
            ty,
            misc,
            bytes,
        })
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

/// Rings over anonymous memory, for tests of the ring and of the merge.
#[cfg(test)]
pub(crate) mod fake {
    use super::*;

    /// A ring of one data page over anonymous memory, written by the test as the kernel
    /// would.
    pub(crate) fn fake_ring() -> Ring {
        fake_ring_of(1)
    }

    /// As [`fake_ring`], with `pages` data pages (a power of two).
    pub(crate) fn fake_ring_of(pages: usize) -> Ring {
        let page = page_size();
        let len = (1 + pages) * page;
        // SAFETY: anonymous mapping owned by the ring.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(base, libc::MAP_FAILED);
        let meta = base as *mut perf_event_mmap_page;
        // SAFETY: the control page is ours to fill.
        unsafe {
            (*meta).data_offset = page as u64;
            (*meta).data_size = (pages * page) as u64;
        }
        let fd: OwnedFd = std::fs::File::open("/dev/null").unwrap().into();
        // SAFETY: the mapping above, of `len` bytes.
        unsafe { Ring::from_mapping(fd, 0, base as *mut u8, len, 1) }
    }

    /// The tail the kernel sees (the control page's `data_tail`), for a test to read while
    /// the ring is borrowed.
    pub(crate) fn published_tail(r: &Ring) -> *const AtomicU64 {
        r.tail_atomic()
    }

    /// Writes `bytes` at ring position `pos` (wrapping) and publishes the new head.
    pub(crate) fn kernel_write(r: &Ring, pos: u64, bytes: &[u8]) {
        for (i, b) in bytes.iter().enumerate() {
            let off = ((pos + i as u64) & (r.size - 1)) as usize;
            // SAFETY: inside the data area.
            unsafe { *(r.data as *mut u8).add(off) = *b };
        }
        r.head_atomic()
            .store(pos + bytes.len() as u64, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::fake::{fake_ring, kernel_write};
    use super::*;
    use crate::attr::SampleFormat;
    use crate::decoder::Decoder;
    use crate::live::open::{side_band_decoder_attr, SAMPLE_TYPE};
    use crate::record::encode::Encoder;
    use crate::record::{NsLink, Record, SampleId};

    #[test]
    fn records_that_wrap_the_end_are_read_in_two_pieces() {
        let mut r = fake_ring();
        let enc = Encoder::new(Endian::NATIVE, SampleFormat::new(SAMPLE_TYPE, 0, true));
        let links: Vec<NsLink> = (0..7)
            .map(|i| NsLink {
                dev: 4,
                ino: 100 + i,
            })
            .collect();
        let id = SampleId {
            pid: Some(9),
            tid: Some(9),
            time: Some(5),
            cpu: Some(0),
            id: Some(1),
            ..Default::default()
        };
        let mut rec = Vec::new();
        enc.namespaces(&mut rec, 9, 9, &links, &id);
        let mut dec = Decoder::new();
        dec.add_attr(side_band_decoder_attr(), [1]);
        // Start 40 bytes before the end, a few laps in: the record straddles the wrap.
        let start = 3 * r.size + r.size - 40;
        r.release(start);
        for lap in 0..3u64 {
            let pos = start + lap * rec.len() as u64;
            kernel_write(&r, pos, &rec);
            let head = r.head();
            let v = r.record_at(pos, head).unwrap();
            assert_eq!(v.size(), rec.len());
            let (Record::Namespaces(ns), sid) = dec.decode(&v).unwrap() else {
                panic!()
            };
            assert_eq!(ns.iter().map(|(_, l)| l).collect::<Vec<_>>(), links);
            assert_eq!(sid.time, Some(5));
            r.release(head);
        }
        // SAFETY: reading back the control page.
        let tail = unsafe { (*(r.base as *const perf_event_mmap_page)).data_tail };
        assert_eq!(
            tail,
            start + 3 * rec.len() as u64,
            "data_tail tells the kernel"
        );
    }

    #[test]
    fn an_impossible_header_is_an_error_not_a_panic() {
        let r = fake_ring();
        kernel_write(&r, 0, &[16, 0, 0, 0, 0, 0, 0, 0]);
        let e = r.record_at(0, r.head()).unwrap_err();
        assert!(
            e.to_string()
                .contains("smaller than the 8-byte record header"),
            "{e}"
        );
        kernel_write(&r, 0, &[16, 0, 0, 0, 0, 0, 64, 0]);
        assert!(r.record_at(0, 8).is_err());
        // A size that is not a multiple of 8 would put the next header across the wrap.
        kernel_write(
            &r,
            0,
            &[16, 0, 0, 0, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        );
        let e = r.record_at(0, r.head()).unwrap_err();
        assert!(e.to_string().contains("not a multiple of 8"), "{e}");
        kernel_write(&r, 0, &[16, 0, 0, 0, 7, 0, 8, 0]);
        let v = r.record_at(0, r.head()).unwrap();
        assert_eq!((v.ty, v.misc, v.size(), v.offset), (16, 7, 8, 0));
    }
}
