//! perf.data reader: file mode and pipe mode, either byte order, memory-mapped or streamed.
//!
//! File mode (`perf record -o FILE`): a header points to the attrs, the data section and the
//! feature sections. Pipe mode (`perf record -o -`): a 16-byte header, then a stream in which
//! perf's user records (HEADER_ATTR, HEADER_FEATURE, …) announce what file mode keeps in the
//! header. Either way the records go through the one [`Decoder`].

mod apart;
pub mod features;
mod guard;
mod mapped;
mod pull;
#[doc(hidden)]
pub mod split;

pub use pull::Events;

use crate::attr::{Attr, ATTR_SIZE_MAX, ATTR_SIZE_MIN};
use crate::bytes::{Bytes, Endian, Fixed};
use crate::decoder::Decoder;
use crate::error::{DecodeError, ErrorKind};
use crate::order::ReorderBuffer;
use crate::record::{kind, size_fits, RecordView, HEADER_LEN};
use features::{feat, Features};
use guard::GuardedMap;
use mapped::{drop_pages, Mapped, Plain, Visit};
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

/// "PERFILE2" read as a little-endian u64.
const MAGIC: u64 = 0x3245_4c49_4652_4550;
const FILE_HEADER_LEN: usize = 104;
const PIPE_HEADER_LEN: u64 = 16;
/// Most records, and record bytes, a time-ordered read of a stream holds back (copied)
/// before it releases the oldest half anyway, so that a stream without FINISHED_ROUND
/// records runs in bounded memory (docs/DESIGN.md, "Time order").
pub const STREAM_REORDER_RECORDS: usize = 1 << 19;
/// See [`STREAM_REORDER_RECORDS`].
pub const STREAM_REORDER_BYTES: usize = 32 << 20;
/// The bound for a file, whose records wait in its map, not copied: only the 24 bytes that
/// locate each are the reader's own (the map's pages are dropped as the read goes, see
/// [`PIN_WAITING`]), so the window is as wide as a large machine's rounds need.
pub const FILE_REORDER_RECORDS: usize = 1 << 20;
/// How far behind the reading point the pages of records waiting to be ordered stay
/// mapped; older ones are dropped too, and come back from the page cache when the record
/// is handed on, so that a file without rounds keeps its resident memory flat.
pub const PIN_WAITING: usize = 16 << 20;
/// How often a file map drops the pages already read, so resident memory stays flat.
pub(crate) const DROP_EVERY: usize = 2 << 20;
/// Arena size below which a stream's arena is not compacted.
const ARENA_MIN: usize = 4 << 20;

/// In which order records are handed out.
///
/// ```
/// use nswatch::perf_data::{Order, PerfData};
///
/// let mut data = PerfData::open(std::path::Path::new("fixtures/samples.data"))?;
/// // The same events either way; time order releases them round by round.
/// let by_file = data.events(Order::File).count();
/// let by_time = data.events(Order::Time).count();
/// assert_eq!(by_file, by_time);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// As they lie in the input (per-CPU runs, as perf wrote them).
    File,
    /// By timestamp, released round by round as perf's ordered events do.
    Time,
}

/// What the header (or the pipe's user records) says about the recording.
///
/// ```
/// use nswatch::perf_data::PerfData;
///
/// let data = PerfData::open(std::path::Path::new("fixtures/samples.data"))?;
/// let info = data.info();
/// assert!(!info.pipe);
/// assert!(info.data.1 > 0);
/// assert!(info.features.hostname.is_some());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct FileInfo {
    /// Byte order of the file.
    pub endian: Option<Endian>,
    /// True for pipe mode.
    pub pipe: bool,
    /// Feature sections.
    pub features: Features,
    /// Data section (file mode), as `[offset, offset + size)`.
    pub data: (u64, u64),
}

/// Counts from one pass over the records.
///
/// ```
/// use nswatch::perf_data::{Order, PerfData};
/// use nswatch::record::kind;
///
/// let mut data = PerfData::open(std::path::Path::new("fixtures/samples.data"))?;
/// let stats = data.for_each(Order::File, |_, _| Ok::<(), nswatch::DecodeError>(()))?;
/// assert!(stats.of(kind::SAMPLE) > 0 && stats.records > stats.of(kind::SAMPLE));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// Records handed to the callback.
    pub records: u64,
    /// Records per type (index = type, up to 127; others in the last slot).
    pub by_type: Vec<u64>,
    /// Bytes of record data read.
    pub bytes: u64,
    /// Records handed on out of time order ([`Order::Time`]): they came after records
    /// newer than them had been released, which happens only once the reorder window
    /// overflowed (input without FINISHED_ROUND, or rounds larger than the window).
    pub late: u64,
}

impl ReadStats {
    fn count(&mut self, ty: u32, size: usize) {
        if self.by_type.is_empty() {
            self.by_type = vec![0; 129];
        }
        self.records += 1;
        self.bytes += size as u64;
        self.by_type[(ty as usize).min(128)] += 1;
    }

    /// Records of type `ty` seen.
    pub fn of(&self, ty: u32) -> u64 {
        self.by_type
            .get((ty as usize).min(128))
            .copied()
            .unwrap_or(0)
    }
}

enum Backing {
    Map(GuardedMap),
    Owned(Vec<u8>),
}

impl Backing {
    fn bytes(&self) -> &[u8] {
        match self {
            Backing::Map(g) => &g.map,
            Backing::Owned(v) => v,
        }
    }

    /// The map's fault note (see [`guard`]): `usize::MAX` while the file is whole.
    fn fault(&self) -> &'static AtomicUsize {
        match self {
            Backing::Map(g) => g.fault(),
            Backing::Owned(_) => guard::never(),
        }
    }

    /// The error to stop with once the file shrank under the map.
    #[cold]
    fn truncation(&self) -> Option<DecodeError> {
        let Backing::Map(g) = self else {
            return None;
        };
        let at = g.fault().load(Ordering::Acquire);
        (at != usize::MAX).then(|| {
            DecodeError::at(
                at as u64,
                ErrorKind::TruncatedWhileReading {
                    size_now: g.size_now(),
                },
            )
        })
    }
}

enum Source {
    /// The whole input is addressable: records are borrowed from it.
    Whole {
        data: Backing,
        start: usize,
        end: usize,
    },
    /// A stream (a pipe, standard input): one record at a time in a reused buffer.
    Stream { reader: Box<dyn Read>, pos: u64 },
}

/// An open perf.data input.
///
/// ```
/// use nswatch::perf_data::{Order, PerfData};
///
/// let mut data = PerfData::open(std::path::Path::new("fixtures/samples.data"))?;
/// assert!(data.decoder().attrs().count() > 0);
/// let events = data.events(Order::Time).collect::<Result<Vec<_>, _>>()?;
/// assert!(events.len() > 100);
/// assert_eq!(data.late_records(), 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct PerfData {
    source: Source,
    info: FileInfo,
    decoder: Decoder,
    /// [`ReadStats::late`] of the last read.
    late: u64,
}

fn truncated(offset: u64, needed: u64, available: u64) -> DecodeError {
    DecodeError::at(offset, ErrorKind::Truncated { needed, available })
}

/// What [`ErrorKind::BadField`] names for a feature section too short for its contents.
fn feature_field(bit: u32) -> &'static str {
    match bit {
        feat::HOSTNAME => "feature HOSTNAME: a string longer than its section; section size",
        feat::OSRELEASE => "feature OSRELEASE: a string longer than its section; section size",
        feat::VERSION => "feature VERSION: a string longer than its section; section size",
        feat::ARCH => "feature ARCH: a string longer than its section; section size",
        feat::CMDLINE => "feature CMDLINE: more strings than its section holds; section size",
        feat::BUILD_ID => "feature BUILD_ID: an entry longer than its section; section size",
        _ => "feature section too short for its fields; section size",
    }
}

/// The error for an attr id that another attr has, the id lying at `at`.
fn shared_id(e: crate::decoder::SharedId, at: u64, ty: Option<u32>) -> DecodeError {
    DecodeError {
        offset: at,
        record_type: ty,
        kind: ErrorKind::SharedId {
            id: e.id,
            attr: e.attr,
        },
    }
}

fn endian_of(magic: u64) -> Result<Endian, ErrorKind> {
    if magic == MAGIC {
        Ok(Endian::Little)
    } else if magic == MAGIC.swap_bytes() {
        Ok(Endian::Big)
    } else {
        Err(ErrorKind::BadMagic(magic))
    }
}

/// Parses an attr of `size` bytes at `off`; its own size field must agree with the room.
fn parse_attr(b: &Bytes<'_>, off: usize, size: usize, at: u64) -> Result<Attr, DecodeError> {
    let bytes = b
        .range(off, off + size)
        .ok_or_else(|| truncated(at, size as u64, b.len().saturating_sub(off) as u64))?;
    Attr::parse(&bytes).ok_or_else(|| {
        DecodeError::at(
            at,
            ErrorKind::BadField {
                field: "attr.size",
                value: size as u64,
            },
        )
    })
}

impl PerfData {
    /// Opens `path`; `-` is standard input, streamed unless it is a regular file.
    pub fn open(path: &Path) -> Result<PerfData, DecodeError> {
        let io = |e: std::io::Error| {
            DecodeError::at(0, ErrorKind::Io(format!("{}: {e}", path.display())))
        };
        let file = if path.as_os_str() == "-" {
            // Standard input may be a redirected file (mapped, any mode) or a pipe (streamed).
            use std::os::fd::AsFd;
            let fd = std::io::stdin().as_fd().try_clone_to_owned().map_err(io)?;
            std::fs::File::from(fd)
        } else {
            std::fs::File::open(path).map_err(io)?
        };
        let meta = file.metadata().map_err(io)?;
        if !meta.is_file() {
            // A FIFO or character device cannot be mapped: stream it.
            return PerfData::from_reader(Box::new(file));
        }
        // A file truncated under the map by another process ends the read with an error
        // (guard.rs), not SIGBUS.
        let map = GuardedMap::new(file).map_err(io)?;
        let _ = map.map.advise(memmap2::Advice::Sequential);
        PerfData::from_backing(Backing::Map(map))
    }

    /// Reads a whole input held in memory (tests, fuzzing).
    pub fn from_bytes(data: Vec<u8>) -> Result<PerfData, DecodeError> {
        PerfData::from_backing(Backing::Owned(data))
    }

    fn from_backing(data: Backing) -> Result<PerfData, DecodeError> {
        let header = PerfData::header(&data);
        // Zeros read where the file was are no header: say what happened instead.
        if let Some(e) = data.truncation() {
            return Err(e);
        }
        let (info, decoder, start, end) = header?;
        Ok(PerfData {
            source: Source::Whole { data, start, end },
            info,
            decoder,
            late: 0,
        })
    }

    /// Reads the header of an input addressable whole: what it says, its attrs, and where
    /// its records lie.
    fn header(data: &Backing) -> Result<(FileInfo, Decoder, usize, usize), DecodeError> {
        let bytes = data.bytes();
        let len = bytes.len() as u64;
        if bytes.len() < 16 {
            return Err(truncated(0, 16, len));
        }
        let magic = u64::from_le_bytes(bytes[0..8].try_into().expect("8 bytes"));
        let endian = endian_of(magic).map_err(|k| DecodeError::at(0, k))?;
        let b = Bytes::new(bytes, endian);
        let header_size = b.u64(8).expect("16 bytes");
        let mut info = FileInfo {
            endian: Some(endian),
            ..Default::default()
        };
        let mut decoder = Decoder::new();
        if header_size == PIPE_HEADER_LEN {
            info.pipe = true;
            return Ok((info, decoder, PIPE_HEADER_LEN as usize, bytes.len()));
        }
        if header_size < FILE_HEADER_LEN as u64 || header_size > 4096 {
            return Err(DecodeError::at(
                8,
                ErrorKind::BadField {
                    field: "header.size",
                    value: header_size,
                },
            ));
        }
        if len < FILE_HEADER_LEN as u64 {
            return Err(truncated(0, FILE_HEADER_LEN as u64, len));
        }
        let section = |at: usize, name: &'static str| -> Result<(u64, u64), DecodeError> {
            // Header entries always fit; a feature index entry after the data may not.
            let (Some(off), Some(size)) = (b.u64(at), b.u64(at + 8)) else {
                return Err(truncated(at as u64, 16, len.saturating_sub(at as u64)));
            };
            match off.checked_add(size) {
                Some(end) if end <= len => Ok((off, size)),
                _ => Err(DecodeError::at(
                    at as u64,
                    ErrorKind::SectionOutOfBounds {
                        section: name,
                        offset: off,
                        size,
                    },
                )),
            }
        };
        let attr_entry = b.u64(16).expect("in header");
        let attrs = section(24, "attrs")?;
        let data_sec = section(40, "data")?;
        info.data = data_sec;
        let attr_size = attr_entry.wrapping_sub(16);
        if !(ATTR_SIZE_MIN as u64..=ATTR_SIZE_MAX as u64).contains(&attr_size) {
            return Err(DecodeError::at(
                16,
                ErrorKind::BadField {
                    field: "header.attr_size",
                    value: attr_entry,
                },
            ));
        }
        let n_attrs = attrs.1 / attr_entry;
        for i in 0..n_attrs {
            let at = (attrs.0 + i * attr_entry) as usize;
            let attr = parse_attr(&b, at, attr_size as usize, at as u64)?;
            let ids_at = at + attr_size as usize;
            let (ioff, isize) = section(ids_at, "attr ids")?;
            let ids = (0..isize / 8).filter_map(|k| b.u64((ioff + 8 * k) as usize));
            decoder
                .add_attr_checked(attr, ids)
                .map_err(|e| shared_id(e, ioff + 8 * e.at as u64, None))?;
        }
        // Feature sections follow the data, one {offset, size} per set bit, in bit order.
        let mut idx = (data_sec.0 + data_sec.1) as usize;
        for bit in 0..feat::BITS {
            let word = b.u64(72 + 8 * (bit as usize / 64)).expect("in header");
            if word & (1 << (bit % 64)) == 0 {
                continue;
            }
            // Features are informative, but an index or a section that contradicts the file
            // is damage like any other: said, with its offset, not read past in silence.
            let (off, size) = section(idx, Features::name(bit))?;
            let sec = b
                .range(off as usize, (off + size) as usize)
                .ok_or_else(|| truncated(idx as u64, size, len.saturating_sub(off)))?;
            if !info.features.read(bit, &sec) {
                return Err(DecodeError::at(
                    off,
                    ErrorKind::BadField {
                        field: feature_field(bit),
                        value: size,
                    },
                ));
            }
            idx += 16;
        }
        let (start, end) = (data_sec.0 as usize, (data_sec.0 + data_sec.1) as usize);
        Ok((info, decoder, start, end))
    }

    /// Reads a pipe-mode stream (`perf record -o -`) from `reader`, one record at a time.
    pub fn from_reader(mut reader: Box<dyn Read>) -> Result<PerfData, DecodeError> {
        let mut head = [0u8; 16];
        read_exact(&mut reader, &mut head, 0)?;
        let magic = u64::from_le_bytes(head[0..8].try_into().expect("8 bytes"));
        let endian = endian_of(magic).map_err(|k| DecodeError::at(0, k))?;
        let size = Bytes::new(&head, endian).u64(8).expect("16 bytes");
        if size != PIPE_HEADER_LEN {
            return Err(DecodeError::at(
                8,
                ErrorKind::BadField {
                    field: "header.size (a stream must be in pipe mode: perf record -o -)",
                    value: size,
                },
            ));
        }
        Ok(PerfData {
            source: Source::Stream {
                reader,
                pos: PIPE_HEADER_LEN,
            },
            info: FileInfo {
                endian: Some(endian),
                pipe: true,
                ..Default::default()
            },
            decoder: Decoder::new(),
            late: 0,
        })
    }

    /// What the header says; in pipe mode, complete only after the records were read.
    pub fn info(&self) -> &FileInfo {
        &self.info
    }

    /// Records the last read handed on out of time order ([`ReadStats::late`]), to warn
    /// about once.
    pub fn late_records(&self) -> u64 {
        self.late
    }

    /// The warning to print about [`PerfData::late_records`], if any.
    pub fn order_warning(&self) -> Option<String> {
        let window = match self.source {
            Source::Stream { .. } => format!(
                "{STREAM_REORDER_RECORDS} records or {} MiB",
                STREAM_REORDER_BYTES >> 20
            ),
            Source::Whole { .. } => format!("{FILE_REORDER_RECORDS} records"),
        };
        (self.late > 0).then(|| {
            format!(
                "warning: {} records came after newer ones had been handed on, and were \
                 handed on out of time order: the input's rounds (FINISHED_ROUND) are larger \
                 than the reorder window of {window}, or it has none",
                self.late,
            )
        })
    }

    /// The decoder with this input's attrs.
    pub fn decoder(&self) -> &Decoder {
        &self.decoder
    }

    /// The decoder, to set its policies before reading.
    pub fn decoder_mut(&mut self) -> &mut Decoder {
        &mut self.decoder
    }

    /// Hands every record to `f`, in `order`, with the decoder that knows its attr.
    /// perf's bookkeeping records (HEADER_ATTR, HEADER_FEATURE, FINISHED_ROUND, …) are
    /// consumed here and also handed on. Stops at the first error, of the input or of `f`.
    pub fn for_each<E>(
        &mut self,
        order: Order,
        mut f: impl FnMut(&Decoder, &RecordView<'_>) -> Result<(), E>,
    ) -> Result<ReadStats, E>
    where
        E: From<DecodeError>,
    {
        let endian = self.info.endian.unwrap_or(Endian::NATIVE);
        let mut stats = ReadStats::default();
        match &mut self.source {
            Source::Whole { data, start, end } => {
                let map = Mapped::new(data, *start, *end, endian);
                map.walk(
                    order,
                    &mut self.decoder,
                    &mut self.info,
                    &mut stats,
                    &mut Plain(f),
                )?;
            }
            Source::Stream { reader, pos } => {
                // Time order over a stream needs copies: records wait in an arena until
                // their round is released.
                let mut buf = Vec::with_capacity(64 << 10);
                let mut arena: Vec<u8> = Vec::new();
                let mut reorder = ReorderBuffer::<(usize, u64)>::new(
                    STREAM_REORDER_RECORDS,
                    STREAM_REORDER_BYTES,
                );
                let mut arena_limit = ARENA_MIN;
                while let Some(view) = read_stream_record(
                    &mut **reader,
                    pos,
                    &mut buf,
                    endian,
                    &mut self.decoder,
                    &mut self.info,
                )? {
                    match order {
                        Order::File => {
                            stats.count(view.ty, view.size());
                            f(&self.decoder, &view)?;
                        }
                        Order::Time => {
                            let time = self.decoder.time_of(&view);
                            let (round, off) = (view.ty == kind::FINISHED_ROUND, view.offset);
                            let a = arena.len();
                            arena.extend_from_slice(&buf);
                            let full = reorder.push(time, buf.len(), (a, off));
                            if round {
                                reorder.finish_round();
                            } else if full {
                                reorder.release_overflow();
                            }
                            if round || full {
                                hand_on(
                                    &mut arena,
                                    &mut reorder,
                                    &self.decoder,
                                    &mut stats,
                                    &mut f,
                                    endian,
                                )?;
                                compact(&mut arena, &mut reorder, &mut arena_limit, endian);
                            }
                        }
                    }
                }
                reorder.flush();
                stats.late = reorder.late();
                hand_on(
                    &mut arena,
                    &mut reorder,
                    &self.decoder,
                    &mut stats,
                    &mut f,
                    endian,
                )?;
            }
        }
        self.late = stats.late;
        Ok(stats)
    }
}

/// Reads a stream's next record into `buf`, takes in what perf's own records tell the
/// reader and skips the payload some of them are followed by; returns the record, in
/// `buf`, or `None` at the end of the stream.
fn read_stream_record<'b>(
    reader: &mut dyn Read,
    pos: &mut u64,
    buf: &'b mut Vec<u8>,
    endian: Endian,
    decoder: &mut Decoder,
    info: &mut FileInfo,
) -> Result<Option<RecordView<'b>>, DecodeError> {
    let off = *pos;
    buf.resize(HEADER_LEN, 0);
    if !read_exact_or_eof(reader, buf, off)? {
        return Ok(None);
    }
    let size = Bytes::new(buf, endian).u16(6).expect("8 bytes") as usize;
    if size >= HEADER_LEN {
        buf.resize(size, 0);
        read_exact(reader, &mut buf[HEADER_LEN..], off + HEADER_LEN as u64)?;
    }
    let buf: &'b [u8] = buf;
    let view = RecordView::parse(Bytes::new(buf, endian), off)?;
    let skip = take_user_record(&view, decoder, info)?;
    *pos += size as u64;
    if skip > 0 {
        let n = std::io::copy(&mut (&mut *reader).take(skip), &mut std::io::sink())
            .map_err(|e| DecodeError::at(*pos, ErrorKind::Io(e.to_string())))?;
        if n < skip {
            return Err(truncated(*pos, skip, n));
        }
        *pos += skip;
    }
    Ok(Some(view))
}

/// Hands the released records of a stream's arena to `f`; empties the arena once nothing
/// waits in it.
fn hand_on<E: From<DecodeError>>(
    arena: &mut Vec<u8>,
    reorder: &mut ReorderBuffer<(usize, u64)>,
    decoder: &Decoder,
    stats: &mut ReadStats,
    f: &mut impl FnMut(&Decoder, &RecordView<'_>) -> Result<(), E>,
    endian: Endian,
) -> Result<(), E> {
    while let Some((a, o)) = reorder.pop() {
        let v = RecordView::parse(Bytes::new(&arena[a..], endian), o)?;
        stats.count(v.ty, v.size());
        f(decoder, &v)?;
    }
    if reorder.is_empty() {
        arena.clear();
    }
    Ok(())
}

/// Moves the records still waiting to the front of the arena once the released ones take
/// most of it, so the arena is bounded by the reorder window (twice its bytes at most),
/// not by the stream. In place: a fresh arena would double the peak.
fn compact(
    arena: &mut Vec<u8>,
    reorder: &mut ReorderBuffer<(usize, u64)>,
    limit: &mut usize,
    endian: Endian,
) {
    if arena.len() < *limit {
        return;
    }
    let mut waiting: Vec<&mut (usize, u64)> = reorder.items_mut().collect();
    // Front to back, each record moves down (or stays): no move overwrites one not made.
    waiting.sort_unstable_by_key(|x| x.0);
    let mut to = 0;
    for item in waiting {
        let from = item.0;
        let size = Bytes::new(&arena[from..], endian).u16(6).unwrap_or(0) as usize;
        arena.copy_within(from..from + size, to);
        item.0 = to;
        to += size;
    }
    arena.truncate(to);
    *limit = (2 * to).max(ARENA_MIN);
}

fn read_exact(r: &mut dyn Read, buf: &mut [u8], off: u64) -> Result<(), DecodeError> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => return Err(truncated(off, buf.len() as u64, got as u64)),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(DecodeError::at(off, ErrorKind::Io(e.to_string()))),
        }
    }
    Ok(())
}

/// Like [`read_exact`], but a clean end of input before the first byte returns false.
fn read_exact_or_eof(r: &mut dyn Read, buf: &mut [u8], off: u64) -> Result<bool, DecodeError> {
    loop {
        match r.read(buf) {
            Ok(0) => return Ok(false),
            Ok(n) => {
                read_exact(r, &mut buf[n..], off + n as u64)?;
                return Ok(true);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(DecodeError::at(off, ErrorKind::Io(e.to_string()))),
        }
    }
}

/// Takes in what perf's own records tell the reader. Returns how many payload bytes follow
/// the record outside its `size` (AUXTRACE and TRACING_DATA carry such a payload).
fn take_user_record(
    view: &RecordView<'_>,
    decoder: &mut Decoder,
    info: &mut FileInfo,
) -> Result<u64, DecodeError> {
    let b = &view.bytes;
    let bad = |field: &'static str, value: u64| {
        DecodeError::in_record(view.offset, view.ty, ErrorKind::BadField { field, value })
    };
    match view.ty {
        kind::HEADER_ATTR => {
            let own = b.u32(HEADER_LEN + 4).ok_or_else(|| bad("attr.size", 0))? as usize;
            let size = if own == 0 { ATTR_SIZE_MIN } else { own };
            if !(ATTR_SIZE_MIN..=ATTR_SIZE_MAX).contains(&size) || HEADER_LEN + size > view.size() {
                return Err(bad("attr.size", own as u64));
            }
            let attr = parse_attr(b, HEADER_LEN, size, view.offset)?;
            let n = (view.size() - HEADER_LEN - size) / 8;
            let ids = (0..n).filter_map(|k| b.u64(HEADER_LEN + size + 8 * k));
            decoder.add_attr_checked(attr, ids).map_err(|e| {
                let at = view.offset + (HEADER_LEN + size + 8 * e.at) as u64;
                shared_id(e, at, Some(view.ty))
            })?;
            Ok(0)
        }
        kind::HEADER_FEATURE => {
            if let (Some(bit), Some(sec)) =
                (b.u64(HEADER_LEN), b.range(HEADER_LEN + 8, view.size()))
            {
                let bit = bit.min(u32::MAX as u64) as u32;
                if !info.features.read(bit, &sec) {
                    return Err(bad(feature_field(bit), sec.len() as u64));
                }
            }
            Ok(0)
        }
        kind::HEADER_BUILD_ID => {
            // The same entry as the file header's BUILD_ID feature, one per record.
            let (_, entry) = features::build_id_entry(b)
                .ok_or_else(|| bad("build_id.size", view.size() as u64))?;
            info.features.build_ids.extend(entry);
            Ok(0)
        }
        kind::AUXTRACE => b.u64(HEADER_LEN).ok_or_else(|| bad("auxtrace.size", 0)),
        kind::HEADER_TRACING_DATA => {
            let size = b
                .u32(HEADER_LEN)
                .ok_or_else(|| bad("tracing_data.size", 0))? as u64;
            Ok(size.div_ceil(8) * 8)
        }
        kind::COMPRESSED => Err(bad(
            "COMPRESSED record (perf record -z); record without -z to read it",
            view.size() as u64,
        )),
        _ => Ok(0),
    }
}
