//! An output file that only grows at its end: with direct I/O where asked
//! ([`AppendFile::with_direct`]) and where the file system does it whole, else buffered,
//! with its disk blocks reserved ahead of the writes. Either way its size is always the
//! bytes committed (a prefix of them, mid-commit), so that a reader following the file
//! sees each line once.
//!
//! **Direct I/O** (ext4, XFS, btrfs; `record -o`'s default). A commit is one `O_DIRECT`
//! write of whole 4 KiB blocks from an aligned buffer (the last partial block already on
//! disk, kept in memory, then the new bytes), and one small buffered write of what is left
//! past the last whole block ([`DirectAppender::commit_exact`]). The kernel copies nothing
//! into the page cache but that last page, dirties no other page for writeback to flush
//! later, and a direct write is never cut by SIGKILL (all of its bios are submitted and
//! waited for uninterruptibly, fs/iomap/direct-io.c); a kill between the two writes leaves
//! the file ending at a block boundary, which may be inside a line. Under a setns storm
//! writing ~600 MB/s of NDJSON, buffered writes spent 60% of nswatch's CPU in
//! `copy_folio_from_iter_atomic` (fresh page-cache pages, which in a VM cost the host a
//! fault each on first touch): 0.85 ns a byte, where a direct write costs the writer 0.125
//! (`benches/file_write.sh`). The next direct write covers the page the buffered one
//! dirtied, which the kernel writes back first, waiting for the device: commits that come
//! at a storm's pace write only whole blocks ([`AppendFile::commit_blocks`]), their rest
//! waiting for the next commit (under the storm a buffered rest per 1 MiB commit cost
//! 10–20% more CPU and lost 20 times the records). Each write waits for the device
//! (0.5–0.7 ns a byte here), so writes should be large; the first one that the file
//! system refuses (EINVAL) or cuts short turns the file back to buffered writes.
//!
//! **Buffered writes** where direct I/O is not asked for or not done whole (tmpfs, which
//! takes `O_DIRECT` since Linux 6.6 but copies through the page cache page by page; NFS,
//! FUSE; pipes and devices).
//! Each buffered write that extends an ext4 file reserves a delayed-allocation block per
//! page it fills (`ext4_da_get_block_prep`: the extent status tree, quota, the free-cluster
//! counter). Reserving the blocks a few megabytes at a time with
//! `fallocate(FALLOC_FL_KEEP_SIZE)` makes those pages land on blocks already allocated:
//! writing 1 GiB in 256 KiB writes took 0.21–0.23 ns a byte of the writer's CPU, and
//! 0.15 ns with 8 MiB reserved at a time; the whole machine's CPU, writeback included,
//! went down too (280–320 ms to 250–260 ms).
//!
//! Buffered writes give the file's pages back as they go: every [`DROP_EVERY`] bytes,
//! `posix_fadvise(DONTNEED)` over what was written up to [`DROP_KEEP`] bytes ago starts the
//! writeback of the dirty pages there and drops the clean ones (those written back since
//! the call before, whose range it covers again). A recording of gigabytes then keeps a few
//! megabytes in the page cache instead of pushing everything else out of it, and its new
//! pages are ones just freed: in a VM a page the guest never touched costs the host a
//! fault, which under a setns storm (~600 MB/s of NDJSON) made the copy into the page cache
//! 0.85 ns a byte and most of nswatch's CPU. Nothing waits for the device.
//!
//! KEEP_SIZE leaves the file's size alone: a reader (or an interrupted run) sees exactly
//! the bytes written, never zeros past them. The blocks reserved past the end are given
//! back when the writer is dropped; a run killed by SIGKILL leaves at most one reservation
//! ([`RESERVE`]) allocated past the end, which `du` shows and the next truncation frees.
//! Where the file system cannot reserve (tmpfs before 3.5, FUSE, NFS without ALLOCATE,
//! a full disk), the writes go on as plain writes.

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

pub use crate::rotate::create_new;
use crate::rotate::Rotation;

/// Bytes reserved at a time (past the bytes a write needs), in buffered writes.
pub const RESERVE: u64 = 8 << 20;

/// Buffered writes: the page cache of the file is given back every this many bytes, all
/// but the last [`DROP_KEEP`] (see the module documentation).
pub const DROP_EVERY: u64 = 8 << 20;

/// Buffered writes: the last bytes written whose pages stay cached, for a reader following
/// the file (`tail -f`) to find them there.
pub const DROP_KEEP: u64 = 8 << 20;

/// Offset, length and memory alignment of direct writes: a multiple of every logical
/// block size in use (512 and 4096); a file system that needs more refuses the first
/// write (EINVAL) and the file is written buffered.
pub const DIRECT_ALIGN: usize = 4096;

/// True for the file systems whose direct writes go through iomap's direct I/O, whole and
/// uninterruptible (ext4, XFS, btrfs). tmpfs takes `O_DIRECT` since Linux 6.6 but writes
/// through the page cache as before, page by page, so it is not among them.
pub fn direct_is_whole(f: &File) -> bool {
    // SAFETY: fstatfs fills the zeroed struct for a descriptor this file owns.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstatfs(f.as_raw_fd(), &mut st) } != 0 {
        return false;
    }
    [
        libc::EXT4_SUPER_MAGIC,
        libc::XFS_SUPER_MAGIC,
        libc::BTRFS_SUPER_MAGIC,
    ]
    .contains(&st.f_type)
}

/// Turns `O_DIRECT` on or off for `f`; false where the file system refuses it, or where
/// the file is open for appending (the kernel would put each write at the padded end).
pub fn set_direct(f: &File, on: bool) -> bool {
    let fd = f.as_raw_fd();
    // SAFETY: fcntl on a descriptor this file owns, with integer arguments.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || (on && flags & libc::O_APPEND != 0) {
            return false;
        }
        let flags = if on {
            flags | libc::O_DIRECT
        } else {
            flags & !libc::O_DIRECT
        };
        libc::fcntl(fd, libc::F_SETFL, flags) == 0
    }
}

/// Bytes a direct write should gather: each write waits for the device, and under a setns
/// storm 256 KiB writes spent a quarter of nswatch's CPU switching and notifying the
/// (virtual) device; 256 MB in 64 KiB direct writes took 0.44 s here, in 1 MiB ones 0.19 s
/// (4 MiB measured the same as 1 MiB).
pub const DIRECT_WRITE: usize = 1 << 20;

/// Turns on direct I/O for `f` where its file system does it whole; false (and `f` left
/// buffered) elsewhere.
pub fn try_direct(f: &File) -> bool {
    direct_is_whole(f) && set_direct(f, true)
}

/// Tells whether a direct write failed in a way that buffered writes may not: refused
/// (an alignment the file system does not take) or cut short (a full disk).
pub fn direct_refused(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EINVAL) || e.kind() == io::ErrorKind::WriteZero
}

/// Appends to a file opened with `O_DIRECT`, a block-aligned write at a time (see the
/// module documentation). New bytes are put straight into the buffer the write is made
/// from ([`DirectAppender::buffer`]), after the last partial block already written.
pub struct DirectAppender {
    /// `[0, off)` slack that puts `off` at an aligned address; `[off, off + carry)` the
    /// file's bytes from the start of the block its end is in, up to the end; then the new
    /// bytes.
    staging: Vec<u8>,
    off: usize,
    carry: usize,
    /// The file's logical end: what was committed, without tail or padding.
    end: u64,
    /// Just past the last newline committed: where a file whose writing failed is cut
    /// back to, as whole-block commits may end inside a line.
    line_end: u64,
}

impl DirectAppender {
    /// For a file whose logical end `end` is on a block boundary (a new file, say), with
    /// room for `capacity` new bytes before the buffer grows.
    pub fn new(end: u64, capacity: usize) -> DirectAppender {
        assert!(end.is_multiple_of(DIRECT_ALIGN as u64));
        let mut staging: Vec<u8> = Vec::with_capacity(capacity + 3 * DIRECT_ALIGN);
        let off = staging.as_ptr().align_offset(DIRECT_ALIGN);
        staging.resize(off, 0);
        DirectAppender {
            staging,
            off,
            carry: 0,
            end,
            line_end: end,
        }
    }

    /// Where new bytes go: append to it (never touch what is there).
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.staging
    }

    /// New bytes waiting in the buffer.
    pub fn pending(&self) -> usize {
        self.staging.len() - self.off - self.carry
    }

    /// The new bytes waiting in the buffer.
    pub fn pending_bytes(&self) -> &[u8] {
        &self.staging[self.off + self.carry..]
    }

    /// Drops the new bytes waiting in the buffer.
    pub fn discard(&mut self) {
        self.staging.truncate(self.off + self.carry);
    }

    /// The file's logical end (committed bytes, without tail or padding).
    pub fn end(&self) -> u64 {
        self.end
    }

    /// Just past the last newline committed (the end the file had when this was made, if
    /// none was since).
    pub fn line_end(&self) -> u64 {
        self.line_end
    }

    /// Notes the last newline of `committed`, bytes written at file offset `at`. Scans from
    /// the end: a line at most.
    fn note_lines(&mut self, committed: usize, at: u64) {
        let bytes = &self.staging[self.off..self.off + committed];
        if let Some(i) = bytes.iter().rposition(|&b| b == b'\n') {
            self.line_end = self.line_end.max(at + i as u64 + 1);
        }
    }

    /// Writes the new bytes at the logical end, followed by `tail` and then `pad` bytes to
    /// the end of a block, in one direct write from the start of the block the end is in.
    /// The next commit overwrites `tail` and the padding: what a reader sees between two
    /// commits, and after a kill, is everything committed, `tail`, and the padding. On an
    /// error the new bytes stay in the buffer.
    pub fn commit(&mut self, f: &File, tail: &[u8], pad: u8) -> io::Result<()> {
        // Room for the tail and the padding, and for `realign` to shift by a block.
        self.staging.reserve(tail.len() + 2 * DIRECT_ALIGN);
        self.realign();
        let new = self.pending();
        let start = self.end - self.carry as u64;
        let content = self.staging.len();
        self.staging.extend_from_slice(tail);
        let len = (self.staging.len() - self.off).next_multiple_of(DIRECT_ALIGN);
        self.staging.resize(self.off + len, pad);
        let written = write_whole(f, &self.staging[self.off..], start);
        self.staging.truncate(content);
        written?;
        self.note_lines(content - self.off, start);
        self.end += new as u64;
        let keep = (self.end % DIRECT_ALIGN as u64) as usize;
        self.staging.copy_within(content - keep..content, self.off);
        self.staging.truncate(self.off + keep);
        self.carry = keep;
        Ok(())
    }

    /// Writes the new bytes at the logical end leaving the file's size exactly at the end
    /// of what it wrote: what goes into the block the end is in (when the file ends inside
    /// one) in a buffered write with `O_DIRECT` turned off for it, the whole blocks after it
    /// in one direct write, and the bytes past the last whole block (less than a block),
    /// unless `whole_only`, in another buffered one. With `whole_only` those wait in the
    /// buffer for the next commit (nothing is written when no block is filled). The file
    /// is a prefix of what was committed at every moment and no direct write covers a page
    /// a reader may have cached, so a reader following it sees each line once. On an error
    /// the new bytes stay in the buffer, and committing again writes the same bytes at the
    /// same offsets.
    pub fn commit_exact(&mut self, f: &File, whole_only: bool) -> io::Result<()> {
        self.staging.reserve(2 * DIRECT_ALIGN);
        self.realign();
        let start = self.end - self.carry as u64;
        let total = self.carry + self.pending();
        let whole = total / DIRECT_ALIGN * DIRECT_ALIGN;
        if whole_only && whole == 0 {
            return Ok(());
        }
        // The block the end is in, when partly written, may sit in a follower's page
        // cache, zeros past the end included: a direct write over it races with that
        // reader, and where the kernel cannot drop the page after the write the follower
        // reads the stale zeros. So that block's new bytes go buffered, and direct writes
        // start at the next block, which no reader has looked at.
        let head = if self.carry > 0 {
            DIRECT_ALIGN.min(total)
        } else {
            0
        };
        if head > self.carry {
            let bytes = &self.staging[self.off + self.carry..self.off + head];
            write_buffered(f, bytes, start + self.carry as u64)?;
        }
        let direct_from = if self.carry > 0 { DIRECT_ALIGN } else { 0 };
        if whole > direct_from {
            let blocks = &self.staging[self.off + direct_from..self.off + whole];
            write_whole(f, blocks, start + direct_from as u64)?;
        }
        // Of the file's bytes from `start`: on disk once this commit is done.
        let on_disk = if whole_only { whole } else { total };
        let from = whole.max(head);
        if on_disk > from {
            let rest = &self.staging[self.off + from..self.off + on_disk];
            write_buffered(f, rest, start + from as u64)?;
        }
        self.end = start + on_disk as u64;
        self.note_lines(on_disk, start);
        self.staging
            .copy_within(self.off + whole..self.off + total, self.off);
        self.staging.truncate(self.off + total - whole);
        self.carry = on_disk - whole;
        Ok(())
    }

    /// Moves the bytes back to an aligned address if the buffer was reallocated as it
    /// grew (needs a block of spare capacity, so that it does not reallocate again).
    fn realign(&mut self) {
        let want = self.staging.as_ptr().align_offset(DIRECT_ALIGN);
        if want == self.off {
            return;
        }
        let len = self.staging.len() - self.off;
        if want > self.off {
            self.staging.resize(want + len, 0);
            self.staging.copy_within(self.off..self.off + len, want);
        } else {
            self.staging.copy_within(self.off.., want);
            self.staging.truncate(want + len);
        }
        self.off = want;
    }
}

/// A buffered write of `buf` at `at` on a file opened with `O_DIRECT`, turned off for it.
fn write_buffered(f: &File, buf: &[u8], at: u64) -> io::Result<()> {
    set_direct(f, false);
    let written = f.write_all_at(buf, at);
    set_direct(f, true);
    written
}

/// One direct write of `buf` at `at`; a short one is an error ([`direct_refused`]: a full
/// disk), since the block it stopped in is not known to be whole.
fn write_whole(f: &File, buf: &[u8], at: u64) -> io::Result<()> {
    let n = f.write_at(buf, at)?;
    if n != buf.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            format!(
                "direct write of {} bytes at offset {at} wrote {n}",
                buf.len()
            ),
        ));
    }
    Ok(())
}

/// How an [`AppendFile`] writes.
enum Mode {
    /// Buffered writes, the blocks reserved ahead while the file system allows it.
    Buffered {
        buf: Vec<u8>,
        /// Where the next write lands.
        pos: u64,
        /// The end of the blocks reserved so far.
        reserved: u64,
        reserving: bool,
        /// The page cache was given back below this offset; `dropping` for regular files.
        dropped: u64,
        dropping: bool,
        /// A regular file, cut back to its last whole line after a failed write.
        regular: bool,
        /// The last commit ended with a newline (or nothing was committed yet).
        ends_line: bool,
    },
    /// A direct write of whole blocks per commit, and a buffered one of the rest.
    Direct(DirectAppender),
}

/// A file written in order from its current size, in commits of whole lines: buffered with
/// its blocks reserved [`RESERVE`] bytes ahead, or with direct I/O when asked and where the
/// file system does it whole. Lines are put in [`AppendFile::buffer`] and written by
/// [`AppendFile::commit`]; a file left by a SIGKILL may end in a cut line (at a 4 KiB
/// boundary), one stopped any other way ends with whole lines.
pub struct AppendFile {
    file: File,
    mode: Mode,
    /// Set by [`AppendFile::rotating`].
    rotation: Option<Rotating>,
}

/// A rotating file's [`Rotation`], and the buffer capacity each new file gets.
struct Rotating {
    rotation: Rotation,
    capacity: usize,
}

impl AppendFile {
    /// Takes a file opened for writing, positioned at its end (e.g. just created), written
    /// buffered: its size is always the lines committed, so that a reader following it
    /// (`tail -f`, a log shipper) sees each line once. Anything but a regular file
    /// (`/dev/null`, a FIFO) is written plainly.
    pub fn new(file: File, capacity: usize) -> io::Result<AppendFile> {
        AppendFile::with_direct(file, capacity, false)
    }

    /// As [`AppendFile::new`], with direct I/O if `direct` and the file system does it
    /// whole. Only for a file that nothing else writes to: direct writes are positioned
    /// and do not move the descriptor's offset.
    pub fn with_direct(file: File, capacity: usize, direct: bool) -> io::Result<AppendFile> {
        let m = file.metadata()?;
        let end = m.len();
        // Only a file whose last partial block is known can be written directly: a new
        // one, or one that ends on a block boundary (the file may be open write-only).
        let mode = if direct
            && m.is_file()
            && end.is_multiple_of(DIRECT_ALIGN as u64)
            && try_direct(&file)
        {
            Mode::Direct(DirectAppender::new(end, capacity))
        } else {
            Mode::Buffered {
                buf: Vec::with_capacity(capacity),
                pos: end,
                reserved: end,
                reserving: m.is_file(),
                dropped: end,
                dropping: m.is_file(),
                regular: m.is_file(),
                ends_line: true,
            }
        };
        Ok(AppendFile {
            file,
            mode,
            rotation: None,
        })
    }

    /// A new file at the rotation's path (see [`Rotation::open_first`]), written as
    /// [`AppendFile::with_direct`] writes, which rotates after each commit that leaves it
    /// at the rotation's size or more and ends on a whole line; a commit of whole blocks
    /// ([`AppendFile::commit_blocks`]) that would reach that size commits everything
    /// instead. Each new file is written as the last one was (directly or buffered).
    pub fn rotating(
        mut rotation: Rotation,
        capacity: usize,
        direct: bool,
    ) -> io::Result<AppendFile> {
        let file = rotation.open_first()?;
        let mut out = AppendFile::with_direct(file, capacity, direct)?;
        out.rotation = Some(Rotating { rotation, capacity });
        Ok(out)
    }

    /// The rotation of a file made by [`AppendFile::rotating`].
    pub fn rotation(&self) -> Option<&Rotation> {
        self.rotation.as_ref().map(|r| &r.rotation)
    }

    /// The bytes committed to the file (its size, once a commit is done).
    pub fn committed(&self) -> u64 {
        match &self.mode {
            Mode::Direct(d) => d.end(),
            Mode::Buffered { pos, .. } => *pos,
        }
    }

    /// The bytes committed end with a newline (or there are none).
    fn ends_line(&self) -> bool {
        match &self.mode {
            Mode::Direct(d) => d.end() == d.line_end(),
            Mode::Buffered { ends_line, .. } => *ends_line,
        }
    }

    /// A rotating file holds (or would hold, with `more` bytes) its rotation's size.
    fn rotation_due(&self, more: usize) -> bool {
        self.rotation
            .as_ref()
            .is_some_and(|r| self.committed() + more as u64 >= r.rotation.size())
    }

    /// Rotates the file (see [`crate::rotate`]): it is complete, and nothing is written to
    /// it after; the blocks reserved past its end are given back first.
    fn rotate(&mut self) -> io::Result<()> {
        let Some(mut r) = self.rotation.take() else {
            return Ok(());
        };
        let direct = self.is_direct();
        if let Mode::Buffered { pos, reserved, .. } = &mut self.mode {
            if *reserved > *pos {
                let _ = self.file.set_len(*pos);
                *reserved = *pos;
            }
        }
        let new = r
            .rotation
            .rotate()
            .and_then(|f| AppendFile::with_direct(f, r.capacity, direct));
        match new {
            Ok(new) => {
                // The old writer is dropped: nothing waits in it, nothing is written.
                drop(std::mem::replace(self, new));
                self.rotation = Some(r);
                Ok(())
            }
            Err(e) => {
                self.rotation = Some(r);
                Err(e)
            }
        }
    }

    /// True while the file is written with direct I/O.
    pub fn is_direct(&self) -> bool {
        matches!(self.mode, Mode::Direct(_))
    }

    /// Where lines go until the next commit: append to it.
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        match &mut self.mode {
            Mode::Direct(d) => d.buffer(),
            Mode::Buffered { buf, .. } => buf,
        }
    }

    /// Bytes waiting for the next commit.
    pub fn pending(&self) -> usize {
        match &self.mode {
            Mode::Direct(d) => d.pending(),
            Mode::Buffered { buf, .. } => buf.len(),
        }
    }

    /// Drops what waits in the buffer (after a write error, say).
    pub fn discard(&mut self) {
        match &mut self.mode {
            Mode::Direct(d) => d.discard(),
            Mode::Buffered { buf, .. } => buf.clear(),
        }
    }

    /// Writes what waits in the buffer; a rotating file that this leaves at its
    /// rotation's size, ending on a whole line, is rotated.
    pub fn commit(&mut self) -> io::Result<()> {
        self.commit_some(false)?;
        if self.rotation_due(0) && self.ends_line() {
            self.rotate()?;
        }
        Ok(())
    }

    /// Writes what waits in the buffer, but where the file is written directly only the
    /// whole 4 KiB blocks of it, the rest (less than a block) staying in the buffer for the
    /// next commit: for commits that come often, each of which would otherwise make the
    /// next one wait for a page's writeback (see [`DirectAppender::commit_exact`]).
    pub fn commit_blocks(&mut self) -> io::Result<()> {
        if self.rotation_due(self.pending()) {
            // A rotation cuts only after a whole line: everything goes.
            return self.commit();
        }
        self.commit_some(true)
    }

    fn commit_some(&mut self, whole_only: bool) -> io::Result<()> {
        if self.pending() == 0 {
            return Ok(());
        }
        match &mut self.mode {
            Mode::Direct(d) => match d.commit_exact(&self.file, whole_only) {
                Ok(()) => return Ok(()),
                Err(e) if direct_refused(&e) => self.go_buffered()?,
                Err(e) => return Err(self.cut_to_last_line(e)),
            },
            Mode::Buffered { .. } => {}
        }
        let Mode::Buffered {
            buf,
            pos,
            reserved,
            reserving,
            dropped,
            dropping,
            regular,
            ends_line,
        } = &mut self.mode
        else {
            unreachable!("direct writes went buffered above");
        };
        if *reserving && *pos + buf.len() as u64 > *reserved {
            *reserving = reserve(
                &self.file,
                (*reserved).max(*pos),
                *pos + buf.len() as u64 + RESERVE,
            );
            if *reserving {
                *reserved = *pos + buf.len() as u64 + RESERVE;
            }
        }
        *ends_line = buf.last() == Some(&b'\n');
        let (kept, written) = write_lines(&self.file, buf, *regular);
        // A failed write left the file at its last whole line; the rest is dropped.
        *pos += kept as u64;
        buf.clear();
        if *dropping && *pos >= *dropped + DROP_EVERY + DROP_KEEP {
            let end = *pos - DROP_KEEP;
            // From a step back: pages still being written back at the last call are clean
            // by now.
            let start = dropped.saturating_sub(DROP_EVERY);
            // SAFETY: posix_fadvise takes a descriptor this file owns and plain integers.
            *dropping = unsafe {
                libc::posix_fadvise(
                    self.file.as_raw_fd(),
                    start as libc::off_t,
                    (end - start) as libc::off_t,
                    libc::POSIX_FADV_DONTNEED,
                )
            } == 0;
            *dropped = end;
        }
        written
    }

    /// Leaves direct I/O for buffered writes from the last whole line, cutting off whatever
    /// a refused or short direct write left past it; the start of the line that whole-block
    /// commits left unfinished, read back, and the new bytes move along.
    fn go_buffered(&mut self) -> io::Result<()> {
        let Mode::Direct(d) = &self.mode else {
            return Ok(());
        };
        let (end, line_end) = (d.end(), d.line_end());
        set_direct(&self.file, false);
        // A file opened write-only cannot be read back: it goes on from the logical end.
        let mut buf = vec![0; (end - line_end) as usize];
        let from = match self.file.read_exact_at(&mut buf, line_end) {
            Ok(()) => line_end,
            Err(_) => {
                buf.clear();
                end
            }
        };
        buf.extend_from_slice(d.pending_bytes());
        self.mode = Mode::Buffered {
            buf,
            pos: from,
            reserved: from,
            reserving: false,
            dropped: from,
            dropping: true,
            regular: true,
            ends_line: true,
        };
        self.file.set_len(from)?;
        (&self.file).seek(SeekFrom::Start(from)).map(drop)
    }

    /// After the direct write that failed with `e`: cuts the file back to its last whole
    /// line, since the run stops with that error.
    fn cut_to_last_line(&mut self, e: io::Error) -> io::Error {
        let Mode::Direct(d) = &self.mode else {
            return e;
        };
        match self.file.set_len(d.line_end()) {
            Ok(()) => e,
            Err(c) => io::Error::new(
                e.kind(),
                format!("{e}; cutting off the line it left unfinished failed too: {c}"),
            ),
        }
    }
}

/// An output file opened by [`create_output`].
#[derive(Debug)]
pub struct Output {
    /// Open for writing, close-on-exec.
    pub file: File,
    /// A regular file created empty by [`create_output`], which nothing else holds open:
    /// it may be written in place (positioned writes, truncation, direct I/O). Otherwise
    /// a stream (a character device, a FIFO, or one of the caller's own descriptors),
    /// written once in order, never truncated nor sought.
    pub fresh: bool,
    /// Where a file that was at the path before was moved (`PATH.old`).
    pub moved_to: Option<PathBuf>,
}

/// Opens `path` for output (`-o`), never writing through a link it did not expect and
/// never into a file that someone else may hold (see "Output files" in docs/DESIGN.md):
///
/// - nothing there: a new file, created with `O_EXCL | O_NOFOLLOW`, mode 0600;
/// - a regular file: moved to `PATH.old` (an empty one removed), then as above; a name
///   that reappears in between (a planted link) makes the creation fail;
/// - a character device or a FIFO: opened as a stream, except a FIFO that the kernel's
///   `protected_fifos` rule would keep from `O_CREAT` (in a sticky directory others may
///   write to, owned by neither the caller nor the directory's owner);
/// - a symbolic link: followed only to one of the caller's own descriptors (`/dev/stdout`,
///   `/dev/fd/N`, `/proc/self/fd/N`, which are duplicated) or, through links owned by root
///   or the caller, to a character device or a FIFO; anything else is refused.
///
/// Every error names the path and what was being done.
pub fn create_output(path: &Path) -> io::Result<Output> {
    let show = path.display();
    let named = |what: &str, e: io::Error| io::Error::new(e.kind(), format!("{show}: {what}: {e}"));
    let refused =
        |why: String| io::Error::new(io::ErrorKind::PermissionDenied, format!("{show}: {why}"));
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => Some(m),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(named("cannot look at it", e)),
    };
    let mut moved_to = None;
    if let Some(m) = meta {
        let t = m.file_type();
        if t.is_symlink() {
            return follow_link(path).map_err(|why| match why {
                Some(e) => e,
                None => refused(
                    "is a symbolic link, not followed (remove it or name its target)".into(),
                ),
            });
        }
        if t.is_char_device() || t.is_fifo() {
            fifo_allowed(path, &m).map_err(refused)?;
            return open_stream(path, &m);
        }
        if t.is_dir() {
            return Err(refused("is a directory".into()));
        }
        if !t.is_file() {
            let what = if t.is_block_device() {
                "a block device"
            } else if t.is_socket() {
                "a socket"
            } else {
                "not a regular file"
            };
            return Err(refused(format!(
                "is {what}, not written (name a new file, a character device or a FIFO)"
            )));
        }
        if m.len() == 0 {
            // Nothing to keep: an empty file (perf's rule too) is not moved over an older
            // PATH.old, but removed.
            std::fs::remove_file(path).map_err(|e| named("removing the empty file there", e))?;
        } else {
            let mut old = path.as_os_str().to_owned();
            old.push(".old");
            let old = PathBuf::from(old);
            // rename() moves the name: a hard link to another file moves, its target is
            // never written.
            std::fs::rename(path, &old)
                .map_err(|e| named(&format!("moving the file there to {}", old.display()), e))?;
            moved_to = Some(old);
        }
    }
    let file = create_new(path)?;
    Ok(Output {
        file,
        fresh: true,
        moved_to,
    })
}

/// Follows the link at `path` where [`create_output`] allows it; `Err(None)` where it
/// does not.
fn follow_link(path: &Path) -> Result<Output, Option<io::Error>> {
    let euid = unsafe { libc::geteuid() };
    let mut p = path.to_path_buf();
    for _ in 0..8 {
        if let Some(fd) = own_descriptor(&p) {
            return dup_own(path, fd).map_err(Some);
        }
        let m = std::fs::symlink_metadata(&p).map_err(|_| None)?;
        let t = m.file_type();
        if !t.is_symlink() {
            if (t.is_char_device() || t.is_fifo()) && fifo_allowed(&p, &m).is_ok() {
                return open_stream(&p, &m).map_err(Some);
            }
            return Err(None);
        }
        // A link another user owns may have been planted: it is not followed.
        if m.uid() != 0 && m.uid() != euid {
            return Err(None);
        }
        let target = std::fs::read_link(&p).map_err(|_| None)?;
        p = match p.parent() {
            Some(dir) => dir.join(target),
            None => target,
        };
    }
    Err(None)
}

/// The descriptor number when `p` is one of this process's `/proc/PID/fd/N` links
/// (`/proc/self/fd/N`, `/dev/fd/N`, `/proc/thread-self/fd/N`).
fn own_descriptor(p: &Path) -> Option<RawFd> {
    let fd: RawFd = p.file_name()?.to_str()?.parse().ok()?;
    let dir = std::fs::canonicalize(p.parent()?).ok()?;
    let pid = std::process::id();
    // SAFETY: gettid has no arguments and cannot fail.
    let tid = unsafe { libc::gettid() };
    let own = [
        PathBuf::from(format!("/proc/{pid}/fd")),
        PathBuf::from(format!("/proc/{pid}/task/{tid}/fd")),
    ];
    own.contains(&dir).then_some(fd)
}

/// A duplicate of the caller's descriptor `fd`, named `path` (`/dev/stdout`): a stream
/// sharing its offset and flags, as the shell's redirection made it.
fn dup_own(path: &Path, fd: RawFd) -> io::Result<Output> {
    let show = path.display();
    // SAFETY: fcntl with integer arguments; a new descriptor is owned by the File below.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("{show}: descriptor {fd}: {e}"),
        ));
    }
    if flags & libc::O_ACCMODE == libc::O_RDONLY {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{show}: descriptor {fd} is not open for writing"),
        ));
    }
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if new < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("{show}: duplicating descriptor {fd}: {e}"),
        ));
    }
    // SAFETY: `new` is a fresh descriptor that nothing else owns.
    let file = unsafe { File::from_raw_fd(new) };
    Ok(Output {
        file,
        fresh: false,
        moved_to: None,
    })
}

/// Opens the character device or FIFO at `p` (already looked at: `m`) for writing, as a
/// stream: no creation, no truncation, no link followed, and the same node as `m`.
fn open_stream(p: &Path, m: &std::fs::Metadata) -> io::Result<Output> {
    let show = p.display();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(p)
        .map_err(|e| io::Error::new(e.kind(), format!("{show}: opening it for writing: {e}")))?;
    let now = file
        .metadata()
        .map_err(|e| io::Error::new(e.kind(), format!("{show}: cannot look at it: {e}")))?;
    if (now.dev(), now.ino()) != (m.dev(), m.ino()) {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{show}: was replaced while it was being opened, not written"),
        ));
    }
    Ok(Output {
        file,
        fresh: false,
        moved_to: None,
    })
}

/// The kernel's `protected_fifos` rule (level 2), which `O_CREAT` would apply: a FIFO in
/// a sticky directory that others may write to (`/tmp`) is written only when the caller
/// or the directory's owner owns it, since its owner reads what goes in. Character
/// devices pass (only root makes them).
fn fifo_allowed(p: &Path, m: &std::fs::Metadata) -> Result<(), String> {
    if !m.file_type().is_fifo() {
        return Ok(());
    }
    let dir = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let Ok(d) = std::fs::metadata(dir) else {
        return Ok(());
    };
    let euid = unsafe { libc::geteuid() };
    let sticky_shared = d.mode() & 0o1000 != 0 && d.mode() & 0o022 != 0;
    if sticky_shared && m.uid() != euid && m.uid() != d.uid() {
        return Err(format!(
            "is a FIFO owned by uid {} in the shared sticky directory {}, not written \
             (its owner would read the output)",
            m.uid(),
            dir.display()
        ));
    }
    Ok(())
}

/// Writes `lines` at the descriptor's offset; returns how many of their bytes the file
/// keeps, and the error if a write failed. A failed write (a full disk) leaves a regular
/// file (`regular`) cut back to the last whole line it wrote, and the offset there; what
/// a stream took of a cut line cannot be taken back.
fn write_lines(f: &File, lines: &[u8], regular: bool) -> (usize, io::Result<()>) {
    let mut done = 0;
    while done < lines.len() {
        let e = match (&*f).write(&lines[done..]) {
            Ok(0) => io::Error::new(io::ErrorKind::WriteZero, "a write wrote nothing"),
            Ok(n) => {
                done += n;
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => e,
        };
        if !regular {
            return (done, Err(e));
        }
        let keep = lines[..done]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let cut = (|| {
            let at = (&*f).stream_position()? - (done - keep) as u64;
            f.set_len(at)?;
            (&*f).seek(SeekFrom::Start(at))
        })();
        return match cut {
            Ok(_) => (keep, Err(e)),
            Err(c) => (
                done,
                Err(io::Error::new(
                    e.kind(),
                    format!("{e}; cutting off the line it left unfinished failed too: {c}"),
                )),
            ),
        };
    }
    (done, Ok(()))
}

/// Reserves the blocks of `[start, end)` past the file's size; false when refused,
/// whatever the reason: the write itself then says what is wrong, if anything.
fn reserve(f: &File, start: u64, end: u64) -> bool {
    // SAFETY: fallocate takes a descriptor this file owns and plain integers.
    unsafe {
        libc::fallocate(
            f.as_raw_fd(),
            libc::FALLOC_FL_KEEP_SIZE,
            start as libc::off_t,
            (end - start) as libc::off_t,
        ) == 0
    }
}

impl Drop for AppendFile {
    /// Commits what waits, then cuts off the padding of direct writes, or gives back the
    /// blocks reserved past the end of buffered ones: truncating a file to its own size
    /// frees what KEEP_SIZE allocated beyond it.
    fn drop(&mut self) {
        // Dropping never rotates: what is committed here stays in this file.
        let _ = self.commit_some(false);
        if let Mode::Buffered { pos, reserved, .. } = self.mode {
            if reserved > pos {
                let _ = self.file.set_len(pos);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("nswatch-outfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    #[test]
    fn the_size_is_the_bytes_written_and_the_reservation_goes_when_dropped() {
        let path = scratch("grow");
        let mut w = AppendFile::new(File::create(&path).unwrap(), 0).unwrap();
        let line = b"{\"type\":\"fork\"}\n";
        for _ in 0..1000 {
            w.buffer().extend_from_slice(line);
            w.commit().unwrap();
        }
        let written = (line.len() * 1000) as u64;
        let m = std::fs::metadata(&path).unwrap();
        // Mid-run, the size is what was written, not what was reserved.
        assert_eq!(m.len(), written);
        if let Mode::Buffered {
            reserving: true,
            reserved,
            ..
        } = w.mode
        {
            // 512-byte blocks: the reservation is allocated while the writer lives.
            assert!(
                m.blocks() * 512 >= RESERVE,
                "{} blocks allocated with {} reserved",
                m.blocks(),
                reserved
            );
        }
        drop(w);
        let m = std::fs::metadata(&path).unwrap();
        assert_eq!(m.len(), written);
        assert!(
            m.blocks() * 512 < RESERVE,
            "{} blocks still allocated after the writer was dropped",
            m.blocks()
        );
        assert_eq!(std::fs::read(&path).unwrap(), line.repeat(1000));
        std::fs::remove_file(&path).unwrap();
    }

    /// Pages of `f`'s `[start, end)` in the page cache (mincore of a mapping of it).
    fn cached_pages(f: &File, start: u64, end: u64) -> usize {
        let page = 4096usize;
        let len = (end - start) as usize;
        // SAFETY: a read-only shared mapping of a range inside the file, unmapped below;
        // mincore fills one byte per page of it.
        unsafe {
            let p = libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                f.as_raw_fd(),
                start as libc::off_t,
            );
            assert_ne!(p, libc::MAP_FAILED);
            let mut v = vec![0u8; len.div_ceil(page)];
            assert_eq!(libc::mincore(p, len, v.as_mut_ptr()), 0);
            libc::munmap(p, len);
            v.iter().filter(|&&b| b & 1 == 1).count()
        }
    }

    #[test]
    fn buffered_writes_give_back_the_pages_of_all_but_the_last_bytes() {
        let path = scratch("dropped");
        let f = File::create(&path).unwrap();
        // SAFETY: fstatfs fills the zeroed struct for a descriptor this file owns.
        let mut st: libc::statfs = unsafe { std::mem::zeroed() };
        assert_eq!(unsafe { libc::fstatfs(f.as_raw_fd(), &mut st) }, 0);
        if st.f_type == libc::TMPFS_MAGIC {
            // tmpfs pages are the file: there is no page cache to give back.
            eprintln!("SKIP buffered_writes_give_back_the_pages: the temporary directory is tmpfs");
            return;
        }
        let mut w = AppendFile::new(f.try_clone().unwrap(), 1 << 20).unwrap();
        let chunk = vec![b'x'; 1 << 20];
        let total = 6 * (DROP_EVERY + DROP_KEEP);
        for _ in 0..total >> 20 {
            w.buffer().extend_from_slice(&chunk);
            w.commit().unwrap();
            // As if written back at once: the next call finds the pages clean.
            f.sync_data().unwrap();
        }
        let step = DROP_EVERY + DROP_KEEP;
        // Below the last call's range everything went; the last DROP_KEEP bytes stay.
        let f = File::open(&path).unwrap();
        let gone = cached_pages(&f, 0, total - 2 * step);
        assert!(gone == 0, "{gone} pages still cached far behind the end");
        let kept = cached_pages(&f, total - DROP_KEEP, total);
        assert_eq!(
            kept as u64,
            DROP_KEEP / 4096,
            "the last bytes are not all cached"
        );
        drop(w);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), total);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn direct_writes_leave_the_size_at_the_lines_committed() {
        let path = scratch("direct");
        let mut w = AppendFile::with_direct(File::create(&path).unwrap(), 1 << 12, true).unwrap();
        if direct_is_whole(&File::open(path.parent().unwrap()).unwrap()) {
            assert!(w.is_direct(), "ext4, XFS and btrfs take direct writes");
        }
        // Commits of every length around a block, so that each starts at another offset
        // of the block it rewrites; every third one of whole blocks only.
        let mut want = Vec::new();
        for i in 0..400usize {
            let mut chunk = Vec::new();
            for j in 0..(i * 13 % 97) {
                chunk.extend_from_slice(format!("{{\"n\":{i},\"j\":{j}}}\n").as_bytes());
            }
            // Grown past its capacity, the buffer moves: the next commit realigns it.
            w.buffer().extend_from_slice(&chunk);
            want.extend_from_slice(&chunk);
            let got = if i % 3 == 2 {
                w.commit_blocks().unwrap();
                let got = std::fs::read(&path).unwrap();
                if w.is_direct() {
                    // What fills no block waits in the buffer.
                    assert_eq!(got.len(), want.len() - w.pending(), "after write {i}");
                    assert!(w.pending() < DIRECT_ALIGN, "after write {i}");
                }
                got
            } else {
                w.commit().unwrap();
                std::fs::read(&path).unwrap()
            };
            assert_eq!(got, want[..got.len()], "after write {i}");
            if i % 3 != 2 {
                assert_eq!(got.len(), want.len(), "the size after write {i}");
            }
        }
        drop(w);
        assert_eq!(std::fs::read(&path).unwrap(), want);
        std::fs::remove_file(&path).unwrap();
    }

    /// After whole-block commits, which end inside a line, a failed write cuts the file
    /// back to its last whole line, and leaving direct I/O carries the line's start along.
    #[test]
    fn a_failed_or_refused_direct_write_leaves_whole_lines() {
        for refused in [false, true] {
            let path = scratch(if refused { "refused" } else { "failed" });
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)
                .unwrap();
            let mut w = AppendFile::with_direct(f, 1 << 12, true).unwrap();
            if !w.is_direct() {
                eprintln!("SKIP: {} takes no direct writes", path.display());
                return;
            }
            let mut want = Vec::new();
            for i in 0..300 {
                let line = format!("{{\"n\":{i},\"pad\":\"{}\"}}\n", "x".repeat(i % 50));
                w.buffer().extend_from_slice(line.as_bytes());
                want.extend_from_slice(line.as_bytes());
            }
            w.commit_blocks().unwrap();
            let size = std::fs::metadata(&path).unwrap().len() as usize;
            assert!(size > 0 && size.is_multiple_of(DIRECT_ALIGN));
            assert_ne!(want[size - 1], b'\n', "the blocks end inside a line");
            let whole = want[..size].iter().rposition(|&b| b == b'\n').unwrap() + 1;
            if refused {
                w.go_buffered().unwrap();
                assert_eq!(std::fs::metadata(&path).unwrap().len() as usize, whole);
                w.commit().unwrap();
                assert_eq!(std::fs::read(&path).unwrap(), want);
            } else {
                let e = w.cut_to_last_line(io::Error::other("disk full"));
                assert_eq!(e.to_string(), "disk full");
                assert_eq!(std::fs::read(&path).unwrap(), want[..whole]);
            }
            std::fs::remove_file(&path).unwrap();
        }
    }

    /// A reader following the file by offset, as `tail -f` does, while it is written
    /// directly: what it reads is the file, each byte once, never padding.
    #[test]
    fn a_follower_reads_each_line_once() {
        use std::io::Read;
        use std::sync::atomic::{AtomicBool, Ordering};
        let path = scratch("followed");
        let mut w = AppendFile::with_direct(File::create(&path).unwrap(), 1 << 16, true).unwrap();
        let done = std::sync::Arc::new(AtomicBool::new(false));
        let follower = {
            let (path, done) = (path.clone(), done.clone());
            std::thread::spawn(move || {
                let mut f = File::open(&path).unwrap();
                let mut seen = Vec::new();
                loop {
                    let finished = done.load(Ordering::Acquire);
                    f.read_to_end(&mut seen).unwrap();
                    if finished {
                        return seen;
                    }
                }
            })
        };
        let mut want = Vec::new();
        for i in 0..3000usize {
            let line = format!("{{\"n\":{i},\"pad\":\"{}\"}}\n", "x".repeat(i % 300));
            w.buffer().extend_from_slice(line.as_bytes());
            want.extend_from_slice(line.as_bytes());
            if i % 7 == 0 {
                w.commit_blocks().unwrap();
            } else if i % 5 == 0 {
                w.commit().unwrap();
            }
        }
        drop(w);
        done.store(true, Ordering::Release);
        let seen = follower.join().unwrap();
        let first_bad = seen.iter().zip(&want).position(|(a, b)| a != b);
        assert!(
            seen == want,
            "the follower read {} bytes of {}; first difference at {first_bad:?}: {:?}",
            seen.len(),
            want.len(),
            first_bad.map(|i| String::from_utf8_lossy(&seen[i..(i + 64).min(seen.len())]))
        );
        std::fs::remove_file(&path).unwrap();
    }

    /// A rotating file, written directly or buffered with commits of whole blocks and
    /// exact ones: every rotated file ends on a whole line and holds the rotation's size
    /// or more (less a commit), and the files, oldest to newest, are what was written.
    #[test]
    fn rotation_cuts_only_between_lines_and_loses_nothing() {
        for direct in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("out.ndjson");
            let size = 20_000;
            let rotation = Rotation::new(&path, size, 1000);
            let mut w = AppendFile::rotating(rotation.clone(), 1 << 12, direct).unwrap();
            let mut want = Vec::new();
            for i in 0..3000usize {
                let line = format!("{{\"n\":{i},\"pad\":\"{}\"}}\n", "x".repeat(i % 300));
                w.buffer().extend_from_slice(line.as_bytes());
                want.extend_from_slice(line.as_bytes());
                if i % 7 == 0 {
                    w.commit_blocks().unwrap();
                } else if i % 5 == 0 {
                    w.commit().unwrap();
                }
            }
            let rotations = w.rotation().unwrap().rotations();
            drop(w);
            assert!(rotations >= 10, "{rotations} rotations");
            assert!(!rotation.name(rotations as u32 + 1).exists());
            let mut got = Vec::new();
            for n in (1..=rotations as u32).rev() {
                let f = std::fs::read(rotation.name(n)).unwrap();
                assert_eq!(f.last(), Some(&b'\n'), "FILE.{n} (direct: {direct})");
                assert!(f.len() as u64 >= size, "FILE.{n}: {} bytes", f.len());
                assert!(f.len() < size as usize + 4 * DIRECT_ALIGN + 64 * 1024);
                got.extend_from_slice(&f);
            }
            got.extend_from_slice(&std::fs::read(&path).unwrap());
            assert!(
                got == want,
                "{} bytes of {} (direct: {direct})",
                got.len(),
                want.len()
            );
        }
    }

    #[test]
    fn an_existing_file_grows_from_its_end() {
        let path = scratch("append");
        std::fs::write(&path, b"first\n").unwrap();
        let f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        let mut w = AppendFile::with_direct(f, 0, true).unwrap();
        assert!(
            !w.is_direct(),
            "a file open for appending is written buffered"
        );
        w.buffer().extend_from_slice(b"second\n");
        w.commit().unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 13);
        drop(w);
        assert_eq!(std::fs::read(&path).unwrap(), b"first\nsecond\n");
        std::fs::remove_file(&path).unwrap();
    }
}
