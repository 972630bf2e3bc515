//! A streaming writer of one JSON object holding one big array (`{…,"traceEvents":[…]}`)
//! that stays well-formed when the export is interrupted.
//!
//! To a regular file every flush is one positioned write of the new elements followed by
//! the closing brackets, which the next flush overwrites: the file on disk is a complete
//! document after every flush, even if the process is killed (SIGKILL included) between
//! two of them. A stream (pipe, terminal) cannot be rewritten; the brackets are written by
//! [`TraceWriter::finish`], or on drop when an error or a signal ends the export early.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;

/// Bytes buffered before a flush.
const FLUSH_AT: usize = 1 << 16;

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
                let n = self.buf.len() as u64;
                self.buf.extend_from_slice(self.tail);
                f.write_all_at(&self.buf, self.pos)?;
                self.pos += n;
            }
            Sink::Stream(w) => {
                w.write_all(&self.buf)?;
                w.flush()?;
            }
        }
        self.buf.clear();
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
