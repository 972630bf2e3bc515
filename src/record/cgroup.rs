//! PERF_RECORD_CGROUP: a cgroup id and its path, written when a cgroup is created (and
//! synthesized by perf for the existing ones).

use crate::bytes::Bytes;
use std::borrow::Cow;

/// A CGROUP record body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cgroup<'a> {
    /// The cgroup id (the kernfs node id, as in PERF_SAMPLE_CGROUP).
    pub id: u64,
    /// Its path from the cgroup root.
    pub path: Cow<'a, str>,
}

impl<'a> Cgroup<'a> {
    #[inline]
    pub(crate) fn parse(body: Bytes<'a>) -> Self {
        Cgroup {
            id: body.u64(0).unwrap_or(0),
            path: body.c_str(8, body.len()).unwrap_or_default(),
        }
    }
}
