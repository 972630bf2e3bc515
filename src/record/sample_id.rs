//! The sample_id_all trailer of non-sample records.

use crate::attr::{sample, SampleFormat};
use crate::bytes::Bytes;

/// Who, when and where a record was written, from its sample_id trailer (or its SAMPLE body).
/// A field is `None` when the attr does not ask for it.
///
/// ```
/// use nswatch::perf_data::{Order, PerfData};
/// use nswatch::{DecodeError, Record};
///
/// let mut data = PerfData::open(std::path::Path::new("fixtures/samples.data"))?;
/// let mut timed = 0;
/// data.for_each(Order::File, |dec, view| -> Result<(), DecodeError> {
///     // perf record sets sample_id_all: a COMM record says its time and CPU too.
///     if let (Record::Comm(_), id) = dec.decode(view)? {
///         timed += id.time.is_some() as usize;
///     }
///     Ok(())
/// })?;
/// assert!(timed > 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SampleId {
    /// Process id (SAMPLE_TID).
    pub pid: Option<u32>,
    /// Thread id (SAMPLE_TID).
    pub tid: Option<u32>,
    /// Timestamp in the attr's clock, nanoseconds (SAMPLE_TIME).
    pub time: Option<u64>,
    /// Event id (SAMPLE_ID or SAMPLE_IDENTIFIER).
    pub id: Option<u64>,
    /// Stream id (SAMPLE_STREAM_ID).
    pub stream_id: Option<u64>,
    /// CPU the record was written on (SAMPLE_CPU).
    pub cpu: Option<u32>,
}

impl SampleId {
    /// Reads the trailer that starts at byte `start` of `rec`, laid out by `fmt`.
    /// Field reads cannot fail: the caller checked that the trailer fits.
    #[inline]
    pub(crate) fn parse(rec: &Bytes<'_>, start: usize, fmt: &SampleFormat) -> SampleId {
        let mut id = SampleId::default();
        let mut off = start;
        if fmt.has(sample::TID) {
            id.pid = rec.u32(off);
            id.tid = rec.u32(off + 4);
            off += 8;
        }
        if fmt.has(sample::TIME) {
            id.time = rec.u64(off);
            off += 8;
        }
        if fmt.has(sample::ID) {
            id.id = rec.u64(off);
            off += 8;
        }
        if fmt.has(sample::STREAM_ID) {
            id.stream_id = rec.u64(off);
            off += 8;
        }
        if fmt.has(sample::CPU) {
            id.cpu = rec.u32(off);
            off += 8;
        }
        if fmt.has(sample::IDENTIFIER) {
            id.id = rec.u64(off);
        }
        id
    }
}
