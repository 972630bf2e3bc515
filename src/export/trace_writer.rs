//! A streaming writer of one JSON object holding one big array (`{…,"traceEvents":[…]}`)
//! that stays well-formed when the export is interrupted.
//!
//! To a regular file, new elements go in positioned writes that each end with the closing
//! brackets, which the next write overwrites: the file on disk is a complete document after
//! every write, even if the process is killed (SIGKILL included) between two of them.
//! Within a write there is a subtler cut: a buffered write that spans pages can be stopped
//! by SIGKILL at a page boundary, the pages before it written and the rest not (the kernel
//! checks for a fatal signal before each page), which would leave the old brackets
//! overwritten and no new ones. So a write never crosses a page boundary when it can be
//! helped: the elements that fit before the boundary with the brackets go in one write,
//! and only when not even one fits does a write cross, with one element. The only cut
//! left is a SIGKILL landing while the kernel copies that write's bytes before the
//! boundary (under a microsecond, once per 4 KiB), where a single large write gave it the
//! whole write (`tests/export.rs` kills an export mid-way and parses the file).
//!
//! A stream (pipe, terminal) cannot be rewritten; the brackets are written by
//! [`TraceWriter::finish`], or on drop when an error or a signal ends the export early.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;

/// Bytes buffered before a flush.
const FLUSH_AT: usize = 1 << 16;

/// The page size the kernel's buffered writes are cut at (the smallest there is).
const PAGE: u64 = 4096;

/// Where the document goes.
pub enum Sink {
    /// A regular file, written in place (see the module documentation).
    File(File),
    /// Anything else, written once in order.
    Stream(Box<dyn Write>),
}

/// Writes `head`, then array elements, then `tail`, keeping a regular file well-formed.
pub struct TraceWriter {
    sink: Sink,
    buf: Vec<u8>,
    tail: &'static [u8],
    /// Where the next bytes go in a file (the tail is written after them each flush).
    pos: u64,
    elements: u64,
    /// Where each element buffered in `buf` ends.
    ends: Vec<usize>,
    done: bool,
}

impl TraceWriter {
    /// Starts a document: `head` must open the array (end with `[`), `tail` close it and
    /// whatever encloses it (e.g. `]}`).
    pub fn new(sink: Sink, head: &[u8], tail: &'static [u8]) -> io::Result<TraceWriter> {
        let mut w = TraceWriter {
            sink,
            buf: Vec::with_capacity(FLUSH_AT + 4096),
            tail,
            pos: 0,
            elements: 0,
            ends: Vec::new(),
            done: false,
        };
        if let Sink::File(f) = &w.sink {
            f.set_len(0)?;
        }
        w.buf.extend_from_slice(head);
        w.flush()?;
        Ok(w)
    }

    /// Appends one array element, written by `f` into the buffer.
    pub fn element(&mut self, f: impl FnOnce(&mut Vec<u8>)) -> io::Result<()> {
        if self.elements > 0 {
            self.buf.extend_from_slice(b",\n");
        } else {
            self.buf.push(b'\n');
        }
        self.elements += 1;
        f(&mut self.buf);
        self.ends.push(self.buf.len());
        if self.buf.len() >= FLUSH_AT {
            self.flush()?;
        }
        Ok(())
    }

    /// Elements written so far.
    pub fn elements(&self) -> u64 {
        self.elements
    }

    /// Writes what is buffered (and, to a file, the closing brackets after it).
    pub fn flush(&mut self) -> io::Result<()> {
        match &mut self.sink {
            Sink::File(f) => {
                let mut piece = Vec::with_capacity(PAGE as usize + self.tail.len());
                for (from, to) in pieces(self.buf.len(), &self.ends, self.pos, self.tail.len()) {
                    piece.clear();
                    piece.extend_from_slice(&self.buf[from..to]);
                    piece.extend_from_slice(self.tail);
                    f.write_all_at(&piece, self.pos)?;
                    self.pos += (to - from) as u64;
                }
            }
            Sink::Stream(w) => {
                w.write_all(&self.buf)?;
                w.flush()?;
            }
        }
        self.buf.clear();
        self.ends.clear();
        Ok(())
    }

    /// Ends the document.
    pub fn finish(mut self) -> io::Result<()> {
        self.close()
    }

    fn close(&mut self) -> io::Result<()> {
        if self.done {
            return Ok(());
        }
        self.done = true;
        self.flush()?;
        match &mut self.sink {
            Sink::File(f) => f.set_len(self.pos + self.tail.len() as u64),
            Sink::Stream(w) => {
                w.write_all(self.tail)?;
                w.flush()
            }
        }
    }
}

/// How `len` buffered bytes (whole elements ending at `ends`, or the head when there are
/// none) are cut into writes that start at file offset `pos` and each end with a tail of
/// `tail` bytes: as many elements as fit before the next page boundary, or the first one
/// alone when none does.
fn pieces(len: usize, ends: &[usize], mut pos: u64, tail: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut from = 0;
    let mut ends = ends.iter().copied().peekable();
    while from < len {
        let room = (PAGE - pos % PAGE) as usize;
        let mut to = ends.next().unwrap_or(len);
        while let Some(&e) = ends.peek() {
            if e - from + tail > room {
                break;
            }
            to = e;
            ends.next();
        }
        out.push((from, to));
        pos += (to - from) as u64;
        from = to;
    }
    out
}

impl Drop for TraceWriter {
    /// An export cut short by an error still ends with a closed array and object.
    fn drop(&mut self) {
        let _ = self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn a_file_is_a_whole_document_after_every_flush_and_a_dropped_writer_closes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.json");
        let file = File::create(&path).unwrap();
        let mut w = TraceWriter::new(Sink::File(file), b"{\"a\":[", b"\n]}\n").unwrap();
        let read = || -> serde_json::Value {
            let mut s = String::new();
            File::open(&path).unwrap().read_to_string(&mut s).unwrap();
            serde_json::from_str(&s).unwrap()
        };
        assert_eq!(read()["a"], serde_json::json!([]));
        for i in 0..20_000u32 {
            w.element(|b| b.extend_from_slice(format!("{i}").as_bytes()))
                .unwrap();
        }
        // Some flushes happened on the way: what is on disk is complete as it stands.
        let mid = read()["a"].as_array().unwrap().len();
        assert!(mid > 0 && mid < 20_000, "{mid}");
        drop(w);
        let all = read();
        assert_eq!(all["a"].as_array().unwrap().len(), 20_000);
        assert_eq!(all["a"][19_999], 19_999);
    }

    #[test]
    fn writes_cross_a_page_boundary_only_with_one_element() {
        // Elements of 1 to 300 bytes, from every offset in a page.
        let mut ends = Vec::new();
        let mut len = 0;
        for i in 0..2_000 {
            len += 1 + (i * 37) % 300;
            ends.push(len);
        }
        for pos in (0..PAGE).step_by(97) {
            let cut = pieces(len, &ends, pos, 4);
            assert_eq!(cut.first().unwrap().0, 0);
            assert_eq!(cut.last().unwrap().1, len);
            let mut at = pos;
            for w in cut.windows(2) {
                assert_eq!(w[0].1, w[1].0, "contiguous");
            }
            for &(from, to) in &cut {
                assert!(ends.contains(&to), "cut inside an element");
                let (first, last) = (at, at + (to - from) as u64 + 4 - 1);
                let crosses = first / PAGE != last / PAGE;
                let one = ends.iter().filter(|&&e| e > from && e <= to).count() == 1;
                assert!(
                    !crosses || one,
                    "{pos}: {from}..{to} crosses with more than one"
                );
                at += (to - from) as u64;
            }
        }
    }

    #[test]
    fn a_stream_is_closed_by_finish_or_drop() {
        #[derive(Clone, Default)]
        struct Shared(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);
        impl Write for Shared {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                self.0.borrow_mut().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let out = Shared::default();
        {
            let mut w =
                TraceWriter::new(Sink::Stream(Box::new(out.clone())), b"{\"a\":[", b"]}").unwrap();
            w.element(|b| b.extend_from_slice(b"1")).unwrap();
            w.element(|b| b.extend_from_slice(b"{}")).unwrap();
        }
        let v: serde_json::Value = serde_json::from_slice(&out.0.borrow()).unwrap();
        assert_eq!(v["a"], serde_json::json!([1, {}]));
    }
}
