//! PERF_RECORD_SAMPLE, decoded up to the callchain (the fields a profiler needs to label a
//! sample by container); later fields are left in place.

use super::{RecordView, SampleId, HEADER_LEN};
use crate::attr::{read, sample, SampleFormat};
use crate::bytes::Bytes;
use crate::error::{DecodeError, ErrorKind};

/// A SAMPLE record, read in place. A field is `None` when `sample_type` lacks it.
///
/// ```
/// use nswatch::perf_data::{Order, PerfData};
/// use nswatch::{DecodeError, Record};
///
/// let mut data = PerfData::open(std::path::Path::new("fixtures/samples.data"))?;
/// let mut with_chain = 0;
/// data.for_each(Order::File, |dec, view| -> Result<(), DecodeError> {
///     if let (Record::Sample(s), _) = dec.decode(view)? {
///         if s.callchain_len() > 0 {
///             assert_eq!(s.callchain().count(), s.callchain_len());
///             with_chain += 1;
///         }
///     }
///     Ok(())
/// })?;
/// assert!(with_chain > 0); // recorded with -g
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Sample<'a> {
    /// SAMPLE_IDENTIFIER or SAMPLE_ID.
    pub id: Option<u64>,
    /// SAMPLE_IP.
    pub ip: Option<u64>,
    /// SAMPLE_TID: process id.
    pub pid: Option<u32>,
    /// SAMPLE_TID: thread id.
    pub tid: Option<u32>,
    /// SAMPLE_TIME.
    pub time: Option<u64>,
    /// SAMPLE_ADDR.
    pub addr: Option<u64>,
    /// SAMPLE_STREAM_ID.
    pub stream_id: Option<u64>,
    /// SAMPLE_CPU.
    pub cpu: Option<u32>,
    /// SAMPLE_PERIOD.
    pub period: Option<u64>,
    callchain: Option<Bytes<'a>>,
    /// SAMPLE_CGROUP: the id of the task's cgroup (the perf_event controller's hierarchy,
    /// cgroup v2 where that controller is not mounted on v1), as in CGROUP records. `None`
    /// also where fields before it whose size depends on the attr's register masks (branch
    /// stack, user registers or stack, interrupt registers) hide where it lies.
    pub cgroup: Option<u64>,
}

impl<'a> Sample<'a> {
    pub(crate) fn parse(rec: &RecordView<'a>, fmt: &SampleFormat) -> Result<Self, DecodeError> {
        let b = &rec.bytes;
        let short = |needed: usize| {
            DecodeError::in_record(
                rec.offset,
                rec.ty,
                ErrorKind::RecordShort {
                    needed,
                    size: rec.size(),
                },
            )
        };
        let mut off = HEADER_LEN;
        let next = |off: &mut usize| -> Result<u64, DecodeError> {
            let v = b.u64(*off).ok_or_else(|| short(*off + 8))?;
            *off += 8;
            Ok(v)
        };
        let mut s = Sample {
            id: None,
            ip: None,
            pid: None,
            tid: None,
            time: None,
            addr: None,
            stream_id: None,
            cpu: None,
            period: None,
            callchain: None,
            cgroup: None,
        };
        if fmt.has(sample::IDENTIFIER) {
            s.id = Some(next(&mut off)?);
        }
        if fmt.has(sample::IP) {
            s.ip = Some(next(&mut off)?);
        }
        if fmt.has(sample::TID) {
            let o = off;
            next(&mut off)?;
            s.pid = b.u32(o);
            s.tid = b.u32(o + 4);
        }
        if fmt.has(sample::TIME) {
            s.time = Some(next(&mut off)?);
        }
        if fmt.has(sample::ADDR) {
            s.addr = Some(next(&mut off)?);
        }
        if fmt.has(sample::ID) {
            s.id = Some(next(&mut off)?);
        }
        if fmt.has(sample::STREAM_ID) {
            s.stream_id = Some(next(&mut off)?);
        }
        if fmt.has(sample::CPU) {
            let o = off;
            next(&mut off)?;
            s.cpu = b.u32(o);
        }
        if fmt.has(sample::PERIOD) {
            s.period = Some(next(&mut off)?);
        }
        if fmt.has(sample::READ) {
            let rf = fmt.read_format;
            let extra = [read::TOTAL_TIME_ENABLED, read::TOTAL_TIME_RUNNING]
                .iter()
                .filter(|&&f| rf & f != 0)
                .count() as u64;
            let per_value = 1 + [read::ID, read::LOST]
                .iter()
                .filter(|&&f| rf & f != 0)
                .count() as u64;
            let words = if rf & read::GROUP != 0 {
                let nr = next(&mut off)?;
                nr.checked_mul(per_value)
                    .and_then(|w| w.checked_add(extra))
                    .ok_or_else(|| short(usize::MAX))?
            } else {
                extra + per_value
            };
            let len = usize::try_from(words)
                .ok()
                .and_then(|w| w.checked_mul(8))
                .ok_or_else(|| short(usize::MAX))?;
            off = off.checked_add(len).ok_or_else(|| short(usize::MAX))?;
            if off > b.len() {
                return Err(short(off));
            }
        }
        if fmt.has(sample::CALLCHAIN) {
            let nr = next(&mut off)?;
            let end = usize::try_from(nr)
                .ok()
                .and_then(|n| n.checked_mul(8))
                .and_then(|l| l.checked_add(off))
                .ok_or_else(|| short(usize::MAX))?;
            s.callchain = Some(b.range(off, end).ok_or_else(|| short(end))?);
            off = end;
        }
        if fmt.has(sample::CGROUP) {
            s.cgroup = cgroup_field(b, off, fmt.sample_type);
        }
        Ok(s)
    }

    /// The callchain's instruction pointers (including perf's PERF_CONTEXT_* markers), or an
    /// empty iterator when the sample has none.
    pub fn callchain(&self) -> impl Iterator<Item = u64> + '_ {
        let n = self.callchain.map_or(0, |c| c.len() / 8);
        (0..n).map(move |i| self.callchain.and_then(|c| c.u64(i * 8)).unwrap_or(0))
    }

    /// Number of entries in the callchain.
    pub fn callchain_len(&self) -> usize {
        self.callchain.map_or(0, |c| c.len() / 8)
    }

    /// The sample's identity fields, in the shape of a sample_id trailer.
    pub fn sample_id(&self) -> SampleId {
        SampleId {
            pid: self.pid,
            tid: self.tid,
            time: self.time,
            id: self.id,
            stream_id: self.stream_id,
            cpu: self.cpu,
        }
    }
}

/// The SAMPLE_CGROUP field of a sample whose callchain ends at `off`: past the raw data and
/// the fixed-size fields between them.
fn cgroup_field(b: &Bytes<'_>, mut off: usize, sample_type: u64) -> Option<u64> {
    let has = |bit: u64| sample_type & bit != 0;
    if has(sample::RAW) {
        // A u32 size, then that many bytes: together a multiple of 8.
        let size = b.u32(off)? as usize;
        off = off.checked_add(4 + size)?;
    }
    if [
        sample::BRANCH_STACK,
        sample::REGS_USER,
        sample::STACK_USER,
        sample::REGS_INTR,
    ]
    .iter()
    .any(|&bit| has(bit))
    {
        return None;
    }
    for bit in [
        sample::WEIGHT | sample::WEIGHT_STRUCT,
        sample::DATA_SRC,
        sample::TRANSACTION,
        sample::PHYS_ADDR,
    ] {
        if has(bit) {
            off += 8;
        }
    }
    b.u64(off)
}
