//! Errors that say what was wrong and where.

use crate::record_kind::kind_name;
use std::fmt;

/// What was wrong with the input.
///
/// ```
/// use nswatch::{ErrorKind, PerfData};
///
/// let mut bytes = std::fs::read("fixtures/samples.data")?;
/// bytes.truncate(200); // the header points past the end now
/// let Err(e) = PerfData::from_bytes(bytes) else { panic!("a cut file read") };
/// assert!(
///     matches!(e.kind, ErrorKind::SectionOutOfBounds { .. } | ErrorKind::Truncated { .. }),
///     "{e}"
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// The file does not start with a perf.data magic (`PERFILE2` in either byte order).
    BadMagic(u64),
    /// The input ends before a structure it announced.
    Truncated {
        /// Bytes needed from the offset on.
        needed: u64,
        /// Bytes actually there.
        available: u64,
    },
    /// A record's `size` is smaller than its 8-byte header (0 included).
    RecordTooSmall(u16),
    /// A record's `size` is not a multiple of 8 (the kernel and perf always align).
    RecordMisaligned(u16),
    /// A record's fixed fields need more bytes than its `size` gives.
    RecordShort {
        /// Bytes the fields need.
        needed: usize,
        /// The record's size.
        size: usize,
    },
    /// A header field that is out of range (attr size, section bounds, counts).
    BadField {
        /// Which field.
        field: &'static str,
        /// Its value.
        value: u64,
    },
    /// A section of the file points past its end.
    SectionOutOfBounds {
        /// Which section.
        section: &'static str,
        /// Its offset.
        offset: u64,
        /// Its size.
        size: u64,
    },
    /// A record type this build does not know (perf itself stops on these too).
    UnknownType,
    /// An attr's event id that an earlier attr has already (each event instance has its
    /// own id, so a shared one names no attr).
    SharedId {
        /// The id.
        id: u64,
        /// Index of the attr that has it, counted from 0 in header order.
        attr: usize,
    },
    /// A record's event id belongs to no attr, and the attrs differ in layout: which
    /// layout the record has is unknown (perf refuses these too).
    UnknownId(u64),
    /// The file shrank while it was being read (another process truncated it); the offset
    /// is where the reader found its contents gone.
    TruncatedWhileReading {
        /// The file's size afterwards, when it could be read.
        size_now: Option<u64>,
    },
    /// Reading the input failed.
    Io(String),
}

/// A decoding error: what was wrong, at which file (or ring) offset, in which record type.
///
/// ```
/// use nswatch::{ErrorKind, PerfData};
///
/// let Err(e) = PerfData::from_bytes(b"not a perf.data file".to_vec()) else {
///     panic!("read as perf.data");
/// };
/// assert!(matches!(e.kind, ErrorKind::BadMagic(_)));
/// assert_eq!((e.offset, e.record_type), (0, None));
/// println!("{e}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// Byte offset from the start of the input where the faulty structure starts.
    pub offset: u64,
    /// The record type being decoded, when the error is inside a record.
    pub record_type: Option<u32>,
    /// What was wrong.
    pub kind: ErrorKind,
}

impl DecodeError {
    /// An error at `offset`, outside any record.
    pub fn at(offset: u64, kind: ErrorKind) -> Self {
        DecodeError {
            offset,
            record_type: None,
            kind,
        }
    }

    /// An error in a record of type `ty` that starts at `offset`.
    pub fn in_record(offset: u64, ty: u32, kind: ErrorKind) -> Self {
        DecodeError {
            offset,
            record_type: Some(ty),
            kind,
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at offset {:#x}", self.offset)?;
        if let Some(ty) = self.record_type {
            write!(f, " (record type {} = {})", ty, kind_name(ty))?;
        }
        f.write_str(": ")?;
        match &self.kind {
            ErrorKind::BadMagic(m) => write!(
                f,
                "bad magic {m:#018x}: not a perf.data file (expected \"PERFILE2\")"
            ),
            ErrorKind::Truncated { needed, available } => write!(
                f,
                "truncated input: {needed} bytes needed, {available} available"
            ),
            ErrorKind::RecordTooSmall(s) => {
                write!(f, "record size {s} is smaller than the 8-byte record header")
            }
            ErrorKind::RecordMisaligned(s) => {
                write!(f, "record size {s} is not a multiple of 8")
            }
            ErrorKind::RecordShort { needed, size } => write!(
                f,
                "record of size {size} is too short for its fields ({needed} bytes needed)"
            ),
            ErrorKind::BadField { field, value } => {
                write!(f, "{field} = {value} is out of range")
            }
            ErrorKind::SectionOutOfBounds {
                section,
                offset,
                size,
            } => write!(
                f,
                "{section} section [{offset:#x}, +{size:#x}) lies outside the file"
            ),
            ErrorKind::UnknownType => write!(
                f,
                "unknown record type (a newer perf or kernel, or a damaged file; --skip-unknown skips it)"
            ),
            ErrorKind::SharedId { id, attr } => write!(
                f,
                "event id {id:#x} is given to attr {attr} already (an id names one event)"
            ),
            ErrorKind::UnknownId(id) => write!(
                f,
                "event id {id:#x} belongs to no attr of the header, and the attrs differ in \
                 layout: the record cannot be read"
            ),
            ErrorKind::TruncatedWhileReading { size_now } => {
                f.write_str("truncated while being read (another process shrank the file")?;
                match size_now {
                    Some(n) => write!(f, " to {n} bytes)"),
                    None => f.write_str(")"),
                }
            }
            ErrorKind::Io(e) => write!(f, "read error: {e}"),
        }
    }
}

impl std::error::Error for DecodeError {}
