//! `perf_event_attr`: the fields the decoder needs, and the record layout they imply.

use crate::bytes::{Bytes, Endian};

/// `sample_type` bits (include/uapi/linux/perf_event.h).
#[allow(missing_docs)]
pub mod sample {
    pub const IP: u64 = 1 << 0;
    pub const TID: u64 = 1 << 1;
    pub const TIME: u64 = 1 << 2;
    pub const ADDR: u64 = 1 << 3;
    pub const READ: u64 = 1 << 4;
    pub const CALLCHAIN: u64 = 1 << 5;
    pub const ID: u64 = 1 << 6;
    pub const CPU: u64 = 1 << 7;
    pub const PERIOD: u64 = 1 << 8;
    pub const STREAM_ID: u64 = 1 << 9;
    pub const RAW: u64 = 1 << 10;
    pub const IDENTIFIER: u64 = 1 << 16;
    pub const BRANCH_STACK: u64 = 1 << 11;
    pub const REGS_USER: u64 = 1 << 12;
    pub const STACK_USER: u64 = 1 << 13;
    pub const WEIGHT: u64 = 1 << 14;
    pub const DATA_SRC: u64 = 1 << 15;
    pub const TRANSACTION: u64 = 1 << 17;
    pub const REGS_INTR: u64 = 1 << 18;
    pub const PHYS_ADDR: u64 = 1 << 19;
    pub const CGROUP: u64 = 1 << 21;
    pub const WEIGHT_STRUCT: u64 = 1 << 24;
}

/// `read_format` bits.
#[allow(missing_docs)]
pub mod read {
    pub const TOTAL_TIME_ENABLED: u64 = 1 << 0;
    pub const TOTAL_TIME_RUNNING: u64 = 1 << 1;
    pub const ID: u64 = 1 << 2;
    pub const GROUP: u64 = 1 << 3;
    pub const LOST: u64 = 1 << 4;
}

/// Bits of the attr's flag word (the bitfield after `read_format`).
#[allow(missing_docs)]
pub mod flag {
    pub const COMM: u64 = 1 << 9;
    pub const TASK: u64 = 1 << 13;
    pub const SAMPLE_ID_ALL: u64 = 1 << 18;
    pub const MMAP2: u64 = 1 << 23;
    pub const COMM_EXEC: u64 = 1 << 24;
    pub const USE_CLOCKID: u64 = 1 << 25;
    pub const NAMESPACES: u64 = 1 << 28;
    pub const CGROUP: u64 = 1 << 32;
}

/// `type` of a software event (PERF_TYPE_SOFTWARE).
pub const PERF_TYPE_SOFTWARE: u32 = 1;
/// `config` of the software dummy event (PERF_COUNT_SW_DUMMY): it counts nothing and
/// samples nothing; perf and nswatch open it for its side-band records.
pub const PERF_COUNT_SW_DUMMY: u64 = 9;

/// Smallest attr the kernel ever had (PERF_ATTR_SIZE_VER0).
pub const ATTR_SIZE_MIN: usize = 64;
/// Largest attr size we accept; the kernel's is 136 today, a page is a generous bound.
pub const ATTR_SIZE_MAX: usize = 4096;

/// The parts of a `perf_event_attr` that decoding depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Attr {
    /// `type` (PERF_TYPE_*).
    pub kind: u32,
    /// `config`.
    pub config: u64,
    /// `sample_type`.
    pub sample_type: u64,
    /// `read_format`.
    pub read_format: u64,
    /// The flag bitfield word.
    pub flags: u64,
    /// `clockid`, meaningful when [`flag::USE_CLOCKID`] is set.
    pub clockid: i32,
}

impl Attr {
    /// Decodes an attr from `b`, which holds the attr's bytes (at least [`ATTR_SIZE_MIN`]).
    pub fn parse(b: &Bytes<'_>) -> Option<Attr> {
        let size = b.len();
        let mut flags = b.u64(40)?;
        if b.endian() == Endian::Big {
            // The flags are a C bitfield: a big-endian compiler allocates it from the most
            // significant bit, so bit i of the little-endian layout is bit 63 - i here.
            flags = flags.reverse_bits();
        }
        Some(Attr {
            kind: b.u32(0)?,
            config: b.u64(8)?,
            sample_type: b.u64(24)?,
            read_format: b.u64(32)?,
            flags,
            clockid: if size >= 96 { b.u32(92)? as i32 } else { 0 },
        })
    }

    /// True when `flag` (one of [`flag`]) is set.
    pub fn has(&self, flag: u64) -> bool {
        self.flags & flag != 0
    }

    /// False for an event that never writes a sample: the software dummy event, which
    /// carries side-band records alone (`perf record -e dummy`, `nswatch record`).
    pub fn can_sample(&self) -> bool {
        !(self.kind == PERF_TYPE_SOFTWARE && self.config == PERF_COUNT_SW_DUMMY)
    }

    /// The record layout this attr implies.
    pub fn format(&self) -> SampleFormat {
        SampleFormat::new(
            self.sample_type,
            self.read_format,
            self.has(flag::SAMPLE_ID_ALL),
        )
    }
}

/// Where the sample_id fields sit, computed once per attr.
///
/// Non-sample records end with a trailer of the set bits among TID, TIME, ID, STREAM_ID, CPU,
/// IDENTIFIER (8 bytes each) when `sample_id_all` is set; its length is fixed per attr, so it
/// is read back from the record's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SampleFormat {
    /// `sample_type`.
    pub sample_type: u64,
    /// `read_format`.
    pub read_format: u64,
    /// Whether non-sample records carry the trailer.
    pub sample_id_all: bool,
    /// Length of the trailer in bytes (0 when `sample_id_all` is off).
    pub trailer_len: u8,
}

impl SampleFormat {
    /// The layout for these attr fields.
    pub fn new(sample_type: u64, read_format: u64, sample_id_all: bool) -> Self {
        let bits = [
            sample::TID,
            sample::TIME,
            sample::ID,
            sample::STREAM_ID,
            sample::CPU,
            sample::IDENTIFIER,
        ];
        let n = bits.iter().filter(|&&b| sample_type & b != 0).count() as u8;
        SampleFormat {
            sample_type,
            read_format,
            sample_id_all,
            trailer_len: if sample_id_all { n * 8 } else { 0 },
        }
    }

    /// True when `bit` (one of [`sample`]) is in `sample_type`.
    #[inline]
    pub fn has(&self, bit: u64) -> bool {
        self.sample_type & bit != 0
    }

    /// Position of the event id counted in u64s from the start of a SAMPLE body, if any.
    pub fn id_pos_in_sample(&self) -> Option<usize> {
        if self.has(sample::IDENTIFIER) {
            return Some(0);
        }
        if !self.has(sample::ID) {
            return None;
        }
        let before = [sample::IP, sample::TID, sample::TIME, sample::ADDR];
        Some(before.iter().filter(|&&b| self.has(b)).count())
    }

    /// Position of the event id counted in u64s back from the end of a non-sample record
    /// (1 = the last u64), if the trailer has one.
    pub fn id_pos_from_end(&self) -> Option<usize> {
        if !self.sample_id_all {
            return None;
        }
        if self.has(sample::IDENTIFIER) {
            return Some(1);
        }
        if !self.has(sample::ID) {
            return None;
        }
        let after = [sample::STREAM_ID, sample::CPU];
        Some(1 + after.iter().filter(|&&b| self.has(b)).count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailer_length_counts_the_six_sample_id_bits() {
        let st = sample::IP | sample::TID | sample::TIME | sample::CPU | sample::IDENTIFIER;
        assert_eq!(SampleFormat::new(st, 0, true).trailer_len, 32);
        assert_eq!(SampleFormat::new(st, 0, false).trailer_len, 0);
    }

    #[test]
    fn id_positions_follow_perf() {
        let f = SampleFormat::new(sample::IP | sample::TID | sample::ID | sample::CPU, 0, true);
        assert_eq!(f.id_pos_in_sample(), Some(2));
        assert_eq!(f.id_pos_from_end(), Some(2));
        let g = SampleFormat::new(sample::IDENTIFIER | sample::TIME, 0, true);
        assert_eq!(g.id_pos_in_sample(), Some(0));
        assert_eq!(g.id_pos_from_end(), Some(1));
    }
}
