//! PERF_RECORD_MMAP and MMAP2: executable mappings (kept for profilers; nswatch only skips
//! them correctly).

use crate::bytes::Bytes;
use std::borrow::Cow;

/// An MMAP or MMAP2 record body (the device/inode/build-id union of MMAP2 is not decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mmap<'a> {
    /// Process id.
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// Start address.
    pub addr: u64,
    /// Length.
    pub len: u64,
    /// File offset.
    pub pgoff: u64,
    /// MMAP2's prot bits (0 for MMAP).
    pub prot: u32,
    /// MMAP2's flags (0 for MMAP).
    pub flags: u32,
    /// Mapped file name.
    pub filename: Cow<'a, str>,
}

impl<'a> Mmap<'a> {
    #[inline]
    pub(crate) fn parse(body: Bytes<'a>, v2: bool) -> Self {
        // MMAP2 adds a 24-byte maj/min/ino/generation (or build id) union, then prot, flags.
        let name_at = if v2 { 64 } else { 32 };
        Mmap {
            pid: body.u32(0).unwrap_or(0),
            tid: body.u32(4).unwrap_or(0),
            addr: body.u64(8).unwrap_or(0),
            len: body.u64(16).unwrap_or(0),
            pgoff: body.u64(24).unwrap_or(0),
            prot: if v2 { body.u32(56).unwrap_or(0) } else { 0 },
            flags: if v2 { body.u32(60).unwrap_or(0) } else { 0 },
            filename: body.c_str(name_at, body.len()).unwrap_or_default(),
        }
    }
}
