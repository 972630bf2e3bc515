//! Borrowed byte views that may be split in two, and byte-order aware field reads.
//!
//! A record read from a perf mmap ring can wrap around the end of the data area; it is then
//! two slices, the tail end of the ring and its start. Records in a perf.data file are always
//! one slice. [`Bytes`] covers both, so the decoder is written once and never copies.

use std::borrow::Cow;

/// Copies `n` bytes from `src` to `dst` inline, where a copy of a length known only at run
/// time would be a call to memcpy: up to 32 bytes as two fixed-size copies, the first and
/// the last K bytes (overlapping unless n = 2K); longer ones by `copy_nonoverlapping`.
///
/// # Safety
/// `src` must be readable and `dst` writable for `n` bytes, and the two must not overlap.
#[inline(always)]
pub(crate) unsafe fn copy_short(src: *const u8, dst: *mut u8, n: usize) {
    // SAFETY: every copy stays within the first `n` bytes of each side (the caller's).
    unsafe {
        if (16..=32).contains(&n) {
            copy_two::<16>(src, dst, n);
        } else if (8..16).contains(&n) {
            copy_two::<8>(src, dst, n);
        } else if (4..8).contains(&n) {
            copy_two::<4>(src, dst, n);
        } else {
            std::ptr::copy_nonoverlapping(src, dst, n);
        }
    }
}

/// Copies `n` bytes (K ≤ n ≤ 2K) from `src` to `dst` as two K-byte copies, the first
/// and the last K bytes, which overlap unless n = 2K.
///
/// # Safety
/// `src` must be readable and `dst` writable for `n` bytes.
#[inline(always)]
unsafe fn copy_two<const K: usize>(src: *const u8, dst: *mut u8, n: usize) {
    // SAFETY: both copies stay within the first `n` bytes of each side (the caller's).
    unsafe {
        dst.cast::<[u8; K]>()
            .write_unaligned(src.cast::<[u8; K]>().read_unaligned());
        dst.add(n - K)
            .cast::<[u8; K]>()
            .write_unaligned(src.add(n - K).cast::<[u8; K]>().read_unaligned());
    }
}

/// Byte order of the data being decoded, chosen once per source (from the perf.data magic,
/// or native for a live ring).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endian {
    /// Least significant byte first.
    Little,
    /// Most significant byte first.
    Big,
}

impl Endian {
    /// The byte order of the machine running this code.
    pub const NATIVE: Endian = if cfg!(target_endian = "little") {
        Endian::Little
    } else {
        Endian::Big
    };

    #[inline(always)]
    fn u16(self, b: [u8; 2]) -> u16 {
        match self {
            Endian::Little => u16::from_le_bytes(b),
            Endian::Big => u16::from_be_bytes(b),
        }
    }

    #[inline(always)]
    fn u32(self, b: [u8; 4]) -> u32 {
        match self {
            Endian::Little => u32::from_le_bytes(b),
            Endian::Big => u32::from_be_bytes(b),
        }
    }

    /// The value of 8 bytes in this order.
    #[inline(always)]
    pub fn u64_of(self, b: [u8; 8]) -> u64 {
        self.u64(b)
    }

    #[inline(always)]
    fn u64(self, b: [u8; 8]) -> u64 {
        match self {
            Endian::Little => u64::from_le_bytes(b),
            Endian::Big => u64::from_be_bytes(b),
        }
    }
}

/// Field reads from one slice in a byte order fixed at compile time (`LE`: little-endian):
/// for the hot reads of a record, which test the file's order once per record instead of
/// once per field.
pub(crate) struct Fixed<const LE: bool>;

impl<const LE: bool> Fixed<LE> {
    /// The byte order, as a value.
    pub(crate) const ORDER: Endian = if LE { Endian::Little } else { Endian::Big };

    #[inline(always)]
    fn array<const N: usize>(raw: &[u8], off: usize) -> Option<[u8; N]> {
        raw.get(off..off.checked_add(N)?)?.try_into().ok()
    }

    /// The u16 at `off`, if `raw` holds it.
    #[inline(always)]
    pub(crate) fn u16(raw: &[u8], off: usize) -> Option<u16> {
        Self::array(raw, off).map(|b| Self::ORDER.u16(b))
    }

    /// The u32 at `off`, if `raw` holds it.
    #[inline(always)]
    pub(crate) fn u32(raw: &[u8], off: usize) -> Option<u32> {
        Self::array(raw, off).map(|b| Self::ORDER.u32(b))
    }

    /// The u64 at `off`, if `raw` holds it.
    #[inline(always)]
    pub(crate) fn u64(raw: &[u8], off: usize) -> Option<u64> {
        Self::array(raw, off).map(|b| Self::ORDER.u64(b))
    }
}

/// A run of bytes borrowed from a file map or a ring buffer: `first` then `second`.
///
/// `second` is empty unless the run wraps the end of a ring. Reads out of range return
/// `None`; callers turn that into a [`crate::DecodeError`] with the record's offset.
#[derive(Debug, Clone, Copy)]
pub struct Bytes<'a> {
    first: &'a [u8],
    second: &'a [u8],
    endian: Endian,
}

impl<'a> Bytes<'a> {
    /// A contiguous view.
    #[inline]
    pub fn new(data: &'a [u8], endian: Endian) -> Self {
        Bytes {
            first: data,
            second: &[],
            endian,
        }
    }

    /// A view of `first` followed by `second` (a record that wraps the ring end).
    #[inline]
    pub fn split(first: &'a [u8], second: &'a [u8], endian: Endian) -> Self {
        Bytes {
            first,
            second,
            endian,
        }
    }

    /// Byte order used by the field reads.
    #[inline]
    pub fn endian(&self) -> Endian {
        self.endian
    }

    /// Total length in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.first.len() + self.second.len()
    }

    /// True when the view holds no bytes.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The two pieces of the view (the second one is empty unless the view wraps).
    #[inline]
    pub fn pieces(&self) -> (&'a [u8], &'a [u8]) {
        (self.first, self.second)
    }

    #[inline(always)]
    fn array<const N: usize>(&self, off: usize) -> Option<[u8; N]> {
        let end = off.checked_add(N)?;
        if end <= self.first.len() {
            // Fast path: wholly in the first piece (always so for file data).
            return self.first[off..end].try_into().ok();
        }
        if off >= self.first.len() {
            let o = off - self.first.len();
            return self.second.get(o..o + N)?.try_into().ok();
        }
        // Straddles the split: only possible for unaligned reads; copy byte by byte.
        let mut out = [0u8; N];
        for (i, b) in out.iter_mut().enumerate() {
            *b = self.byte(off + i)?;
        }
        Some(out)
    }

    #[inline]
    fn byte(&self, off: usize) -> Option<u8> {
        match self.first.get(off) {
            Some(b) => Some(*b),
            None => self.second.get(off - self.first.len()).copied(),
        }
    }

    /// The `u16` at byte offset `off`.
    #[inline(always)]
    pub fn u16(&self, off: usize) -> Option<u16> {
        self.array(off).map(|b| self.endian.u16(b))
    }

    /// The `u32` at byte offset `off`.
    #[inline(always)]
    pub fn u32(&self, off: usize) -> Option<u32> {
        self.array(off).map(|b| self.endian.u32(b))
    }

    /// The `u64` at byte offset `off`.
    #[inline(always)]
    pub fn u64(&self, off: usize) -> Option<u64> {
        self.array(off).map(|b| self.endian.u64(b))
    }

    /// The sub-view `[start, end)`, still borrowed, possibly still split.
    pub fn range(&self, start: usize, end: usize) -> Option<Bytes<'a>> {
        if start > end || end > self.len() {
            return None;
        }
        let n = self.first.len();
        let (first, second) = if end <= n {
            (&self.first[start..end], &[][..])
        } else if start >= n {
            (&self.second[start - n..end - n], &[][..])
        } else {
            (&self.first[start..], &self.second[..end - n])
        };
        Some(Bytes {
            first,
            second,
            endian: self.endian,
        })
    }

    /// The bytes as one slice: borrowed when contiguous, copied only when split.
    pub fn to_contiguous(&self) -> Cow<'a, [u8]> {
        if self.second.is_empty() {
            Cow::Borrowed(self.first)
        } else if self.first.is_empty() {
            Cow::Borrowed(self.second)
        } else {
            let mut v = Vec::with_capacity(self.len());
            v.extend_from_slice(self.first);
            v.extend_from_slice(self.second);
            Cow::Owned(v)
        }
    }

    /// A NUL-terminated (or NUL-padded) string in `[start, end)`, lossily decoded as UTF-8.
    ///
    /// Borrowed unless the string is split by the ring end or is not valid UTF-8.
    pub fn c_str(&self, start: usize, end: usize) -> Option<Cow<'a, str>> {
        let raw = self.range(start, end)?;
        let bytes = raw.to_contiguous();
        let cut = |b: &[u8]| b.iter().position(|&c| c == 0).unwrap_or(b.len());
        Some(match bytes {
            Cow::Borrowed(b) => String::from_utf8_lossy(&b[..cut(b)]),
            Cow::Owned(mut v) => {
                v.truncate(cut(&v));
                Cow::Owned(String::from_utf8_lossy(&v).into_owned())
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_across_the_split_equal_contiguous_reads() {
        let data: Vec<u8> = (0u8..64).collect();
        let whole = Bytes::new(&data, Endian::Little);
        for cut in 0..=data.len() {
            let (a, b) = data.split_at(cut);
            let split = Bytes::split(a, b, Endian::Little);
            for off in 0..data.len() {
                assert_eq!(split.u64(off), whole.u64(off), "cut {cut} off {off}");
                assert_eq!(split.u32(off), whole.u32(off));
                assert_eq!(split.u16(off), whole.u16(off));
            }
            assert_eq!(
                split.range(3, 40).unwrap().to_contiguous(),
                whole.range(3, 40).unwrap().to_contiguous()
            );
        }
    }

    #[test]
    fn big_endian_reads() {
        let data = [0u8, 0, 0, 0, 0, 0, 1, 2];
        assert_eq!(Bytes::new(&data, Endian::Big).u64(0), Some(0x0102));
        assert_eq!(Bytes::new(&data, Endian::Big).u16(6), Some(0x0102));
    }

    #[test]
    fn c_str_stops_at_nul_and_survives_split() {
        let data = b"abcdef\0\0";
        let s = Bytes::split(&data[..3], &data[3..], Endian::Little);
        assert_eq!(s.c_str(0, 8).unwrap(), "abcdef");
        assert_eq!(s.u64(8), None);
    }
}
