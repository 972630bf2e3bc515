//! The lines of an NDJSON event stream, each with its place in the input (number, byte
//! offset) and checked on the way: a bound on its length, so that an endless line costs
//! bounded memory, and UTF-8, with the offset of the first bad byte.

use std::io::{self, BufRead};

/// The longest line read, newline included: 1 MiB. The longest lines nswatch writes are a
/// few KiB (a cgroup path of PATH_MAX bytes, escaped, in a "cgroup" or "container_start"
/// line); anything this long is not an event stream.
pub const MAX_LINE: usize = 1 << 20;

/// One line of the input.
#[derive(Debug, Clone, Copy)]
pub struct Line<'a> {
    /// Its text, with its newline (none on a last line cut off).
    pub text: &'a str,
    /// Its number, from 1.
    pub number: u64,
    /// The byte offset of its first byte in the input.
    pub offset: u64,
}

impl Line<'_> {
    /// True for a line without its newline: the input's last, cut off when its writer was
    /// killed mid-line (or a file that lacks its final newline).
    pub fn is_cut_off(&self) -> bool {
        !self.text.ends_with('\n')
    }
}

/// Why the input could not be read further as lines.
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    /// A line longer than the bound.
    #[error(
        "line {number} (offset {offset:#x}) is longer than {max} bytes: not an NDJSON event \
         stream"
    )]
    TooLong {
        /// The line's number.
        number: u64,
        /// The offset of its first byte.
        offset: u64,
        /// The bound.
        max: usize,
    },
    /// A line that is not UTF-8.
    #[error("line {number} (offset {offset:#x}): invalid UTF-8 at offset {at:#x}")]
    Utf8 {
        /// The line's number.
        number: u64,
        /// The offset of its first byte.
        offset: u64,
        /// The offset of the first invalid byte.
        at: u64,
    },
    /// The input failed.
    #[error("line {number} (offset {offset:#x}): {source}")]
    Io {
        /// The number of the line being read.
        number: u64,
        /// The offset of its first byte.
        offset: u64,
        /// What failed.
        source: io::Error,
    },
}

/// Reads an input line by line ([`Lines::next_line`]); after an error it reads no more.
#[derive(Debug)]
pub struct Lines<R> {
    input: R,
    buf: Vec<u8>,
    /// Lines returned so far.
    number: u64,
    /// The offset of the line in `buf`.
    offset: u64,
    max: usize,
    failed: bool,
}

impl<R: BufRead> Lines<R> {
    /// Lines of `input`, at most [`MAX_LINE`] bytes each.
    pub fn new(input: R) -> Self {
        Self::with_max(input, MAX_LINE)
    }

    /// Lines of `input`, at most `max` bytes each.
    pub fn with_max(input: R, max: usize) -> Self {
        Lines {
            input,
            buf: Vec::new(),
            number: 0,
            offset: 0,
            max,
            failed: false,
        }
    }

    /// The next line; `None` at the end of the input (or after an error).
    pub fn next_line(&mut self) -> Result<Option<Line<'_>>, LineError> {
        if self.failed {
            return Ok(None);
        }
        self.offset += self.buf.len() as u64;
        self.buf.clear();
        let (number, offset) = (self.number + 1, self.offset);
        loop {
            let avail = match self.input.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    self.failed = true;
                    return Err(LineError::Io {
                        number,
                        offset,
                        source,
                    });
                }
            };
            if avail.is_empty() {
                break;
            }
            let (take, end) = match memchr::memchr(b'\n', avail) {
                Some(i) => (i + 1, true),
                None => (avail.len(), false),
            };
            // Refused before it is copied: the line never holds more than the bound.
            if self.buf.len() + take > self.max {
                self.failed = true;
                return Err(LineError::TooLong {
                    number,
                    offset,
                    max: self.max,
                });
            }
            self.buf.extend_from_slice(&avail[..take]);
            self.input.consume(take);
            if end {
                break;
            }
        }
        if self.buf.is_empty() {
            return Ok(None);
        }
        self.number = number;
        let text = match std::str::from_utf8(&self.buf) {
            Ok(s) => s,
            // A last line cut in the middle of a character is a cut line like any other:
            // its whole characters are given, for the caller to take as cut off.
            Err(e) if e.error_len().is_none() && !self.buf.ends_with(b"\n") => {
                std::str::from_utf8(&self.buf[..e.valid_up_to()]).unwrap_or_default()
            }
            Err(e) => {
                self.failed = true;
                return Err(LineError::Utf8 {
                    number,
                    offset,
                    at: offset + e.valid_up_to() as u64,
                });
            }
        };
        Ok(Some(Line {
            text,
            number,
            offset,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &[u8], max: usize) -> (Vec<(String, u64, u64)>, Option<String>) {
        let mut lines = Lines::with_max(input, max);
        let mut got = Vec::new();
        loop {
            match lines.next_line() {
                Ok(Some(l)) => got.push((l.text.to_string(), l.number, l.offset)),
                Ok(None) => return (got, None),
                Err(e) => return (got, Some(e.to_string())),
            }
        }
    }

    #[test]
    fn lines_carry_their_number_and_offset() {
        let (got, err) = all(b"{\"a\":1}\n\n{\"b\":2}", 64);
        assert_eq!(err, None);
        assert_eq!(
            got,
            [
                ("{\"a\":1}\n".to_string(), 1, 0),
                ("\n".to_string(), 2, 8),
                ("{\"b\":2}".to_string(), 3, 9)
            ]
        );
    }

    #[test]
    fn a_line_over_the_bound_is_refused_with_its_place() {
        let mut input = b"{}\n".to_vec();
        input.extend(std::iter::repeat_n(b'[', 100));
        input.push(b'\n');
        let (got, err) = all(&input, 64);
        assert_eq!(got.len(), 1);
        assert_eq!(
            err.as_deref(),
            Some("line 2 (offset 0x3) is longer than 64 bytes: not an NDJSON event stream")
        );
        // A line of exactly the bound is read.
        let (got, err) = all(&input[..3 + 63], 64);
        assert_eq!((got.len(), err), (2, None));
    }

    #[test]
    fn invalid_utf8_is_told_with_the_offset_of_the_bad_byte() {
        let (got, err) = all(b"{}\n{\"comm\":\"a\xffb\"}\n{}\n", 64);
        assert_eq!(got.len(), 1);
        assert_eq!(
            err.as_deref(),
            Some("line 2 (offset 0x3): invalid UTF-8 at offset 0xd")
        );
    }

    #[test]
    fn a_last_line_cut_inside_a_character_is_a_cut_line() {
        let (got, err) = all("{}\n{\"comm\":\"é".as_bytes().split_last().unwrap().1, 64);
        assert_eq!(err, None);
        assert_eq!(got[1].0, "{\"comm\":\"");
    }
}
