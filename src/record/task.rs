//! PERF_RECORD_FORK, PERF_RECORD_EXIT and PERF_RECORD_COMM.

use crate::bytes::Bytes;
use std::borrow::Cow;

/// A FORK or EXIT record body.
///
/// ```
/// use nswatch::perf_data::{Order, PerfData};
/// use nswatch::{DecodeError, Record};
///
/// let mut data = PerfData::open(std::path::Path::new("fixtures/samples.data"))?;
/// let mut forks = 0;
/// data.for_each(Order::File, |dec, view| -> Result<(), DecodeError> {
///     if let (Record::Fork(t), _) = dec.decode(view)? {
///         assert!(t.tid != t.ptid);
///         forks += 1;
///     }
///     Ok(())
/// })?;
/// assert!(forks > 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskEvent {
    /// Process id of the new (or exiting) task.
    pub pid: u32,
    /// Parent process id.
    pub ppid: u32,
    /// Thread id.
    pub tid: u32,
    /// Parent thread id.
    pub ptid: u32,
    /// Time in the attr's clock (the record's own copy, also present without sample_id_all).
    pub time: u64,
}

impl TaskEvent {
    #[inline]
    pub(crate) fn parse(body: &Bytes<'_>) -> Self {
        TaskEvent {
            pid: body.u32(0).unwrap_or(0),
            ppid: body.u32(4).unwrap_or(0),
            tid: body.u32(8).unwrap_or(0),
            ptid: body.u32(12).unwrap_or(0),
            time: body.u64(16).unwrap_or(0),
        }
    }
}

/// A COMM record body.
///
/// ```
/// use nswatch::perf_data::{Order, PerfData};
/// use nswatch::{DecodeError, Record};
///
/// let mut data = PerfData::open(std::path::Path::new("fixtures/samples.data"))?;
/// let mut execs = Vec::new();
/// data.for_each(Order::File, |dec, view| -> Result<(), DecodeError> {
///     if let (Record::Comm(c), _) = dec.decode(view)? {
///         if c.exec {
///             execs.push(c.comm.to_string());
///         }
///     }
///     Ok(())
/// })?;
/// assert!(execs.iter().any(|c| c == "sh")); // `unshare -u sh -c …`
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comm<'a> {
    /// Process id.
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// The new command name (borrowed unless split by the ring end).
    pub comm: Cow<'a, str>,
    /// True when exec() set it (PERF_RECORD_MISC_COMM_EXEC), false for prctl/pthread_setname.
    pub exec: bool,
}

impl<'a> Comm<'a> {
    #[inline]
    pub(crate) fn parse(body: Bytes<'a>, exec: bool) -> Self {
        Comm {
            pid: body.u32(0).unwrap_or(0),
            tid: body.u32(4).unwrap_or(0),
            comm: body.c_str(8, body.len()).unwrap_or_default(),
            exec,
        }
    }
}
