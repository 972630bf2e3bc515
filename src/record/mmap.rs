//! PERF_RECORD_MMAP and MMAP2: executable mappings (kept for profilers; nswatch only skips
//! them correctly).

use crate::bytes::Bytes;
use std::borrow::Cow;

/// A GNU build-id (the `.note.gnu.build-id` of an ELF file): up to 20 bytes, as perf keeps
/// them. It names a file's contents, whatever its path.
///
/// ```
/// use nswatch::record::BuildId;
///
/// let id = BuildId::new(&[0xab; 20]).unwrap();
/// assert_eq!(id.as_bytes().len(), 20);
/// assert!(id.to_string().starts_with("abab"));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BuildId {
    len: u8,
    bytes: [u8; 20],
}

impl BuildId {
    /// The build-id of these bytes; `None` when empty or longer than 20 bytes.
    pub fn new(bytes: &[u8]) -> Option<BuildId> {
        if bytes.is_empty() || bytes.len() > 20 {
            return None;
        }
        let mut b = [0; 20];
        b[..bytes.len()].copy_from_slice(bytes);
        Some(BuildId {
            len: bytes.len() as u8,
            bytes: b,
        })
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

/// Lower-case hex, as perf and `file(1)` print build-ids.
impl std::fmt::Display for BuildId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_bytes()
            .iter()
            .try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl std::fmt::Debug for BuildId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BuildId({self})")
    }
}

/// `misc` bit of an MMAP2 record whose union holds a build-id instead of device and inode
/// (`perf record --buildid-mmap`).
pub const MISC_MMAP_BUILD_ID: u16 = 1 << 14;

/// An MMAP or MMAP2 record body (of MMAP2's device/inode/build-id union, only the build-id).
///
/// ```
/// use nswatch::perf_data::{Order, PerfData};
/// use nswatch::{DecodeError, Record};
///
/// let mut data = PerfData::open(std::path::Path::new("fixtures/samples.data"))?;
/// let mut files = 0;
/// data.for_each(Order::File, |dec, view| -> Result<(), DecodeError> {
///     if let (Record::Mmap(m), _) = dec.decode(view)? {
///         assert!(m.len > 0 && !m.filename.is_empty());
///         files += 1;
///     }
///     Ok(())
/// })?;
/// assert!(files > 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
    /// The mapped file's build-id, when the MMAP2 record carries it.
    pub build_id: Option<BuildId>,
}

impl<'a> Mmap<'a> {
    #[inline]
    pub(crate) fn parse(body: Bytes<'a>, v2: bool, misc: u16) -> Self {
        // MMAP2 adds a 24-byte maj/min/ino/generation (or build id) union, then prot, flags.
        let name_at = if v2 { 64 } else { 32 };
        // The build-id form of the union: u8 size, 3 reserved bytes, 20 bytes of id.
        let build_id = (v2 && misc & MISC_MMAP_BUILD_ID != 0)
            .then(|| {
                let n = body.range(32, 33)?.to_contiguous()[0] as usize;
                BuildId::new(&body.range(36, 36 + n.min(20))?.to_contiguous())
            })
            .flatten();
        Mmap {
            pid: body.u32(0).unwrap_or(0),
            tid: body.u32(4).unwrap_or(0),
            addr: body.u64(8).unwrap_or(0),
            len: body.u64(16).unwrap_or(0),
            pgoff: body.u64(24).unwrap_or(0),
            prot: if v2 { body.u32(56).unwrap_or(0) } else { 0 },
            flags: if v2 { body.u32(60).unwrap_or(0) } else { 0 },
            filename: body.c_str(name_at, body.len()).unwrap_or_default(),
            build_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bytes::Endian;

    /// An MMAP2 body: pid, tid, addr, len, pgoff, the 24-byte union, prot, flags, name.
    fn mmap2(union: [u8; 24]) -> Vec<u8> {
        let mut b = Vec::new();
        for v in [7u32, 7] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        for v in [0x1000u64, 0x2000, 0] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(&union);
        b.extend_from_slice(&5u32.to_le_bytes());
        b.extend_from_slice(&2u32.to_le_bytes());
        b.extend_from_slice(b"/bin/x\0\0");
        b
    }

    #[test]
    fn an_mmap2_build_id_is_read_only_when_misc_says_so() {
        let mut u = [0u8; 24];
        u[0] = 20;
        u[4..24].copy_from_slice(&[0xcd; 20]);
        let body = mmap2(u);
        let m = Mmap::parse(Bytes::new(&body, Endian::Little), true, MISC_MMAP_BUILD_ID);
        assert_eq!(m.build_id.unwrap().as_bytes(), [0xcd; 20]);
        assert_eq!(m.filename, "/bin/x");
        // The same union read as maj/min/ino: no build-id.
        let m = Mmap::parse(Bytes::new(&body, Endian::Little), true, 0);
        assert_eq!(m.build_id, None);
        assert_eq!(BuildId::new(&[]), None);
        assert_eq!(BuildId::new(&[0; 21]), None);
        assert_eq!(BuildId::new(&[0xab, 0x01]).unwrap().to_string(), "ab01");
    }
}
