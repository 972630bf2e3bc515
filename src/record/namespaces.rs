//! PERF_RECORD_NAMESPACES: a task's namespace links, in kernel index order.

use crate::bytes::Bytes;

/// One namespace link: the (st_dev, st_ino) of the namespace's nsfs inode. Both are needed
/// to identify a namespace; the inode alone is not unique in principle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct NsLink {
    /// st_dev of the nsfs inode, as the kernel encodes it (new_encode_dev).
    pub dev: u64,
    /// st_ino of the nsfs inode.
    pub ino: u64,
}

/// Namespace kinds in the kernel's index order for NAMESPACES records
/// (NET_NS_INDEX = 0 … CGROUP_NS_INDEX = 6). The time namespace is not among them.
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
