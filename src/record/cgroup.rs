//! PERF_RECORD_CGROUP: a cgroup id and its path, written when a cgroup is created (and
//! synthesized by perf for the existing ones).

use crate::bytes::Bytes;
use std::borrow::Cow;

/// A CGROUP record body.
///
/// ```
/// use nswatch::perf_data::{Order, PerfData};
/// use nswatch::{DecodeError, Record};
///
/// let mut data = PerfData::open(std::path::Path::new("fixtures/cgroup-container.data"))?;
/// let mut cgroups = 0;
/// data.for_each(Order::File, |dec, view| -> Result<(), DecodeError> {
///     if let (Record::Cgroup(c), _) = dec.decode(view)? {
///         assert!(c.path.starts_with('/'));
///         cgroups += 1;
///     }
///     Ok(())
/// })?;
/// assert!(cgroups > 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
