//! PERF_RECORD_NAMESPACES: a task's namespace links, in kernel index order.

use crate::bytes::Bytes;

/// One namespace link: the (st_dev, st_ino) of the namespace's nsfs inode. Both are needed
/// to identify a namespace; the inode alone is not unique in principle.
///
/// ```
/// use nswatch::record::NsLink;
///
/// // /proc/PID/ns/pid -> pid:[4026531836], on the nsfs device 4.
/// let pid_ns = NsLink { dev: 4, ino: 4026531836 };
/// assert_ne!(pid_ns, NsLink { dev: 4, ino: 4026532177 });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct NsLink {
    /// st_dev of the nsfs inode, as the kernel encodes it (new_encode_dev).
    pub dev: u64,
    /// st_ino of the nsfs inode.
    pub ino: u64,
}

/// Namespace kinds in the kernel's index order for NAMESPACES records
/// (NET_NS_INDEX = 0 … CGROUP_NS_INDEX = 6). The time namespace is not among them.
///
/// ```
/// use nswatch::record::NsKind;
///
/// assert_eq!(NsKind::from_index(3), Some(NsKind::Pid)); // the kernel's order
/// assert_eq!(NsKind::Pid.name(), "pid");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NsKind {
    /// Network.
    Net,
    /// UTS (hostname).
    Uts,
    /// System V IPC.
    Ipc,
    /// Process ids.
    Pid,
    /// User and group ids.
    User,
    /// Mounts.
    Mnt,
    /// Cgroup root.
    Cgroup,
}

/// All kinds, indexed as in the record.
pub const NS_KINDS: [NsKind; 7] = [
    NsKind::Net,
    NsKind::Uts,
    NsKind::Ipc,
    NsKind::Pid,
    NsKind::User,
    NsKind::Mnt,
    NsKind::Cgroup,
];

impl NsKind {
    /// The kind at kernel index `i`, if the kernel has one there.
    pub fn from_index(i: usize) -> Option<NsKind> {
        NS_KINDS.get(i).copied()
    }

    /// Its name, as in /proc/PID/ns/ and perf script.
    pub fn name(self) -> &'static str {
        match self {
            NsKind::Net => "net",
            NsKind::Uts => "uts",
            NsKind::Ipc => "ipc",
            NsKind::Pid => "pid",
            NsKind::User => "user",
            NsKind::Mnt => "mnt",
            NsKind::Cgroup => "cgroup",
        }
    }
}

/// A NAMESPACES record body, read in place.
///
/// ```
/// use nswatch::perf_data::{Order, PerfData};
/// use nswatch::record::NsKind;
/// use nswatch::{DecodeError, Record};
///
/// let mut data = PerfData::open(std::path::Path::new("fixtures/samples.data"))?;
/// let mut uts = std::collections::BTreeSet::new();
/// data.for_each(Order::File, |dec, view| -> Result<(), DecodeError> {
///     if let (Record::Namespaces(ns), _) = dec.decode(view)? {
///         for (kind, link) in ns.iter() {
///             if kind == Some(NsKind::Uts) {
///                 uts.insert(link.ino);
///             }
///         }
///     }
///     Ok(())
/// })?;
/// assert!(uts.contains(&4026532177)); // the one `unshare -u` made
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Namespaces<'a> {
    /// Process id.
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    links: Bytes<'a>,
}

impl<'a> Namespaces<'a> {
    /// `body` starts after the record header and ends before the trailer. `None` when it is
    /// too short for its nr_namespaces links.
    #[inline]
    pub(crate) fn parse(body: Bytes<'a>) -> Option<Self> {
        let nr = body.u64(8)?;
        let len = usize::try_from(nr).ok()?.checked_mul(16)?;
        Some(Namespaces {
            pid: body.u32(0)?,
            tid: body.u32(4)?,
            links: body.range(16, 16usize.checked_add(len)?)?,
        })
    }

    /// A view of `links` (16 bytes each) already found in a record (by
    /// [`crate::Decoder::hot`]).
    #[inline(always)]
    pub(crate) fn from_parts(pid: u32, tid: u32, links: Bytes<'a>) -> Self {
        Namespaces { pid, tid, links }
    }

    /// nr_namespaces: how many links the record holds (7 on current kernels; older or newer
    /// kernels may write fewer or more, which is why this is not assumed).
    #[inline]
    pub fn len(&self) -> usize {
        self.links.len() / 16
    }

    /// True when the record holds no link.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Fills `out` with the first links (as many as both hold) and returns how many.
    #[inline]
    pub fn read_links(&self, out: &mut [NsLink]) -> usize {
        let n = self.len().min(out.len());
        let (first, second) = self.links.pieces();
        if second.is_empty() {
            // The usual case (a file, a record not cut by the ring end): fixed-size reads
            // from one slice, without the split check of each field.
            let e = self.links.endian();
            for (l, b) in out[..n].iter_mut().zip(first.chunks_exact(16)) {
                let (dev, ino) = b.split_at(8);
                *l = NsLink {
                    dev: e.u64_of(dev.try_into().expect("8 bytes")),
                    ino: e.u64_of(ino.try_into().expect("8 bytes")),
                };
            }
        } else {
            for (i, l) in out[..n].iter_mut().enumerate() {
                *l = self.link(i).expect("in range");
            }
        }
        n
    }

    /// The link at kernel index `i`.
    #[inline]
    pub fn link(&self, i: usize) -> Option<NsLink> {
        Some(NsLink {
            dev: self.links.u64(i.checked_mul(16)?)?,
            ino: self.links.u64(i * 16 + 8)?,
        })
    }

    /// The links with their kind; links past the kinds this build knows have kind `None`.
    pub fn iter(&self) -> impl Iterator<Item = (Option<NsKind>, NsLink)> + '_ {
        (0..self.len()).map(move |i| (NsKind::from_index(i), self.link(i).expect("in range")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bytes::Endian;

    #[test]
    fn links_read_alike_whole_or_cut_anywhere() {
        let mut body = vec![0u8; 16];
        body[..4].copy_from_slice(&7u32.to_le_bytes());
        body[8..16].copy_from_slice(&7u64.to_le_bytes());
        for i in 0..7u64 {
            body.extend_from_slice(&(4 + i).to_le_bytes());
            body.extend_from_slice(&(4_026_531_832 + i).to_le_bytes());
        }
        let whole = Namespaces::parse(Bytes::new(&body, Endian::Little)).unwrap();
        let want: Vec<NsLink> = (0..7).map(|i| whole.link(i).unwrap()).collect();
        for cut in 0..=body.len() {
            let (a, b) = body.split_at(cut);
            let ns = Namespaces::parse(Bytes::split(a, b, Endian::Little)).unwrap();
            let mut got = [NsLink::default(); 8];
            assert_eq!(ns.read_links(&mut got), 7);
            assert_eq!(&got[..7], &want[..], "cut at {cut}");
            let mut few = [NsLink::default(); 3];
            assert_eq!(ns.read_links(&mut few), 3);
            assert_eq!(&few[..], &want[..3]);
        }
    }
}
