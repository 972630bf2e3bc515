//! Zero-copy views of perf records, the one decoder for live rings and perf.data files.
//!
//! A [`RecordView`] borrows a record's bytes where they lie (a file map or a ring, possibly
//! split at the ring end). [`RecordView::decode`] turns it into a [`Record`] whose fields are
//! read in place; only strings that are split by the ring end are ever copied.

mod cgroup;
#[doc(hidden)]
pub mod encode;
mod loss;
mod mmap;
mod namespaces;
mod sample;
mod sample_id;
mod task;

pub use cgroup::Cgroup;
pub use loss::{Lost, LostSamples, Throttle};
pub use mmap::{BuildId, Mmap};
pub use namespaces::{Namespaces, NsKind, NsLink, NS_KINDS};
pub use sample::Sample;
pub use sample_id::SampleId;
pub use task::{Comm, TaskEvent};

use crate::attr::SampleFormat;
use crate::bytes::Bytes;
use crate::error::{DecodeError, ErrorKind};
pub use crate::record_kind::{kind, kind_name};

/// Size of `struct perf_event_header`.
pub const HEADER_LEN: usize = 8;

/// `misc` bit on COMM records written by exec().
pub const MISC_COMM_EXEC: u16 = 1 << 13;

/// One record, borrowed where it lies. `bytes` includes the 8-byte header.
///
/// ```
/// use nswatch::perf_data::{Order, PerfData};
/// use nswatch::DecodeError;
///
/// let mut data = PerfData::open(std::path::Path::new("fixtures/samples.data"))?;
/// let mut kernel = 0;
/// data.for_each(Order::File, |_, view| -> Result<(), DecodeError> {
///     assert!(view.size() >= 8 && view.size() % 8 == 0);
///     kernel += view.is_kernel() as usize;
///     Ok(())
/// })?;
/// assert!(kernel > 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct RecordView<'a> {
    /// Offset of the record in its source (file offset, or ring position), for errors.
    pub offset: u64,
    /// The record type.
    pub ty: u32,
    /// The header's `misc` bits.
    pub misc: u16,
    /// The whole record, header included.
    pub bytes: Bytes<'a>,
}

/// A decoded record: fields read in place from the [`RecordView`].
///
/// ```
/// use nswatch::perf_data::{Order, PerfData};
/// use nswatch::{DecodeError, Record};
///
/// let mut data = PerfData::open(std::path::Path::new("fixtures/samples.data"))?;
/// let (mut namespaces, mut rounds) = (0, 0);
/// data.for_each(Order::File, |dec, view| -> Result<(), DecodeError> {
///     match dec.decode(view)?.0 {
///         Record::Namespaces(_) => namespaces += 1,
///         Record::FinishedRound => rounds += 1,
///         _ => {}
///     }
///     Ok(())
/// })?;
/// assert!(namespaces > 0 && rounds > 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub enum Record<'a> {
    /// PERF_RECORD_NAMESPACES.
    Namespaces(Namespaces<'a>),
    /// PERF_RECORD_COMM.
    Comm(Comm<'a>),
    /// PERF_RECORD_FORK.
    Fork(TaskEvent),
    /// PERF_RECORD_EXIT.
    Exit(TaskEvent),
    /// PERF_RECORD_CGROUP.
    Cgroup(Cgroup<'a>),
    /// PERF_RECORD_LOST.
    Lost(Lost),
    /// PERF_RECORD_LOST_SAMPLES.
    LostSamples(LostSamples),
    /// PERF_RECORD_SAMPLE.
    Sample(Sample<'a>),
    /// PERF_RECORD_MMAP or MMAP2.
    Mmap(Mmap<'a>),
    /// PERF_RECORD_THROTTLE.
    Throttle(Throttle),
    /// PERF_RECORD_UNTHROTTLE.
    Unthrottle(Throttle),
    /// Perf's FINISHED_ROUND: every record before it is older than any after the next one.
    FinishedRound,
    /// Perf's FINISHED_INIT: the synthesized start-up state is complete.
    FinishedInit,
    /// Any other type, skipped by its size.
    Other(u32),
}

/// True when a record of type `ty` may be `size` bytes long: at least its header, and
/// 8-aligned unless perf's own (user) record. What [`RecordView::parse`] accepts.
#[inline(always)]
pub(crate) fn size_fits(ty: u32, size: usize) -> bool {
    size >= HEADER_LEN && (size.is_multiple_of(8) || ty >= kind::USER_START)
}

impl<'a> RecordView<'a> {
    /// Reads the record header at the start of `bytes`; `bytes` must span the whole record.
    ///
    /// Checks that the size is at least a header and 8-aligned, and that `bytes` holds it.
    #[inline(always)]
    pub fn parse(bytes: Bytes<'a>, offset: u64) -> Result<RecordView<'a>, DecodeError> {
        if let (Some(ty), Some(misc), Some(size)) = (bytes.u32(0), bytes.u16(4), bytes.u16(6)) {
            let size = size as usize;
            if size_fits(ty, size) {
                if let Some(bytes) = bytes.range(0, size) {
                    return Ok(RecordView {
                        offset,
                        ty,
                        misc,
                        bytes,
                    });
                }
            }
        }
        Self::parse_checked(bytes, offset)
    }

    /// [`RecordView::parse`] step by step, for the error of a bad header.
    #[cold]
    #[inline(never)]
    fn parse_checked(bytes: Bytes<'a>, offset: u64) -> Result<RecordView<'a>, DecodeError> {
        let avail = bytes.len() as u64;
        let (ty, misc, size) = match (bytes.u32(0), bytes.u16(4), bytes.u16(6)) {
            (Some(t), Some(m), Some(s)) => (t, m, s),
            _ => {
                return Err(DecodeError::at(
                    offset,
                    ErrorKind::Truncated {
                        needed: HEADER_LEN as u64,
                        available: avail,
                    },
                ))
            }
        };
        if (size as usize) < HEADER_LEN {
            return Err(DecodeError::in_record(
                offset,
                ty,
                ErrorKind::RecordTooSmall(size),
            ));
        }
        // The kernel 8-aligns its records; perf's own (pipe-mode HEADER_FEATURE…) need not be.
        if size % 8 != 0 && ty < kind::USER_START {
            return Err(DecodeError::in_record(
                offset,
                ty,
                ErrorKind::RecordMisaligned(size),
            ));
        }
        let bytes = bytes.range(0, size as usize).ok_or_else(|| {
            DecodeError::in_record(
                offset,
                ty,
                ErrorKind::Truncated {
                    needed: size as u64,
                    available: avail,
                },
            )
        })?;
        Ok(RecordView {
            offset,
            ty,
            misc,
            bytes,
        })
    }

    /// Record size in bytes, header included.
    #[inline]
    pub fn size(&self) -> usize {
        self.bytes.len()
    }

    /// True for records the kernel writes (which carry a sample_id trailer when the attr
    /// asks for one); false for perf's own user records.
    #[inline]
    pub fn is_kernel(&self) -> bool {
        self.ty < kind::USER_START
    }

    /// The event id stored in the record, found where `fmt` puts it (used to pick the attr
    /// when a file has several with different layouts).
    pub fn event_id(&self, fmt: &SampleFormat) -> Option<u64> {
        if self.ty == kind::SAMPLE {
            let pos = fmt.id_pos_in_sample()?;
            self.bytes.u64(HEADER_LEN + 8 * pos)
        } else if self.is_kernel() {
            let pos = fmt.id_pos_from_end()?;
            self.bytes.u64(self.size().checked_sub(8 * pos)?)
        } else {
            None
        }
    }

    fn short(&self, needed: usize) -> DecodeError {
        DecodeError::in_record(
            self.offset,
            self.ty,
            ErrorKind::RecordShort {
                needed,
                size: self.size(),
            },
        )
    }

    /// Decodes the record body and, for kernel records other than SAMPLE, its sample_id
    /// trailer, with the layout `fmt` of the attr the record belongs to.
    #[inline(always)]
    pub fn decode(&self, fmt: &SampleFormat) -> Result<(Record<'a>, SampleId), DecodeError> {
        if self.ty == kind::SAMPLE {
            let s = Sample::parse(self, fmt)?;
            let id = s.sample_id();
            return Ok((Record::Sample(s), id));
        }
        let trailer = if self.is_kernel() {
            fmt.trailer_len as usize
        } else {
            0
        };
        let body_end = self
            .size()
            .checked_sub(trailer)
            .filter(|&e| e >= HEADER_LEN)
            .ok_or_else(|| self.short(HEADER_LEN + trailer))?;
        let id = if trailer > 0 {
            SampleId::parse(&self.bytes, body_end, fmt)
        } else {
            SampleId::default()
        };
        let body = self.bytes.range(HEADER_LEN, body_end).expect("checked");
        let need = |n: usize| {
            if body.len() < n {
                Err(self.short(HEADER_LEN + n + trailer))
            } else {
                Ok(())
            }
        };
        let rec = match self.ty {
            kind::NAMESPACES => {
                need(16)?;
                let ns = Namespaces::parse(body).ok_or_else(|| {
                    let nr = body.u64(8).unwrap_or(0) as usize;
                    self.short(
                        nr.saturating_mul(16)
                            .saturating_add(HEADER_LEN + 16 + trailer),
                    )
                })?;
                Record::Namespaces(ns)
            }
            kind::COMM => {
                need(8)?;
                Record::Comm(Comm::parse(body, self.misc & MISC_COMM_EXEC != 0))
            }
            kind::FORK | kind::EXIT => {
                need(24)?;
                let t = TaskEvent::parse(&body);
                if self.ty == kind::FORK {
                    Record::Fork(t)
                } else {
                    Record::Exit(t)
                }
            }
            kind::CGROUP => {
                need(8)?;
                Record::Cgroup(Cgroup::parse(body))
            }
            kind::LOST => {
                need(16)?;
                Record::Lost(Lost::parse(&body))
            }
            kind::LOST_SAMPLES => {
                need(8)?;
                Record::LostSamples(LostSamples::parse(&body))
            }
            kind::THROTTLE | kind::UNTHROTTLE => {
                need(24)?;
                let t = Throttle::parse(&body);
                if self.ty == kind::THROTTLE {
                    Record::Throttle(t)
                } else {
                    Record::Unthrottle(t)
                }
            }
            kind::MMAP => {
                need(32)?;
                Record::Mmap(Mmap::parse(body, false, self.misc))
            }
            kind::MMAP2 => {
                need(64)?;
                Record::Mmap(Mmap::parse(body, true, self.misc))
            }
            kind::FINISHED_ROUND => Record::FinishedRound,
            kind::FINISHED_INIT => Record::FinishedInit,
            other => Record::Other(other),
        };
        Ok((rec, id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bytes::Endian;

    #[test]
    fn header_checks_name_the_offset_and_type() {
        let zero = [16u8, 0, 0, 0, 0, 0, 0, 0];
        let e = RecordView::parse(Bytes::new(&zero, Endian::Little), 0x40).unwrap_err();
        assert_eq!(e.offset, 0x40);
        assert_eq!(e.record_type, Some(kind::NAMESPACES));
        assert_eq!(e.kind, ErrorKind::RecordTooSmall(0));
        assert!(e.to_string().contains("NAMESPACES"), "{e}");

        let past = [16u8, 0, 0, 0, 0, 0, 64, 0];
        let e = RecordView::parse(Bytes::new(&past, Endian::Little), 8).unwrap_err();
        assert!(matches!(e.kind, ErrorKind::Truncated { needed: 64, .. }));
    }
}
