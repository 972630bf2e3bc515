//! Text for a terminal from strings that come from the machine or an input file (command
//! names, cgroup paths, container names, host names, file names): what a task can name
//! itself must not move the cursor, retitle the window or start a line of its own.

use std::borrow::Cow;
use std::fmt::Write;

/// `s` with every control character written as its bytes in `\xHH` form, as lsns (its
/// libsmartcols) prints them: C0 controls (newline, escape, bell...), DEL, the C1
/// controls U+0080 to U+009F (U+009B is CSI to some terminals), and the bidirectional
/// overrides and isolates (U+202A to U+202E, U+2066 to U+2069), which reorder what follows
/// on the line. A backslash before an `x` becomes `\x5c`, so that the text reads back
/// unambiguously. Borrowed when nothing needs escaping, the common case.
pub fn escape(s: &str) -> Cow<'_, str> {
    let b = s.as_bytes();
    // Only ASCII controls, a backslash, and the lead bytes of U+0080..U+00BF (0xc2) and
    // U+2000..U+2FFF (0xe2) can start something to escape; most strings have none.
    let suspect = |i: usize| match b[i] {
        0..=0x1f | 0x7f | 0xc2 | 0xe2 => true,
        b'\\' => b.get(i + 1) == Some(&b'x'),
        _ => false,
    };
    if !(0..b.len()).any(suspect) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        let hostile = c.is_control()
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
            || c == '\\' && chars.peek() == Some(&'x');
        if hostile {
            for byte in c.encode_utf8(&mut [0; 4]).bytes() {
                let _ = write!(out, "\\x{byte:02x}");
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_written_as_hex_bytes() {
        assert_eq!(escape("a\x1b]0;pwned\x07\nb"), "a\\x1b]0;pwned\\x07\\x0ab");
        assert_eq!(escape("tab\there\r\x7f"), "tab\\x09here\\x0d\\x7f");
        assert_eq!(escape("csi\u{9b}31m"), "csi\\xc2\\x9b31m");
        assert_eq!(
            escape("a\u{202e}b\u{2066}c"),
            "a\\xe2\\x80\\xaeb\\xe2\\x81\\xa6c"
        );
    }

    #[test]
    fn what_reads_unambiguously_is_left_alone() {
        for s in [
            "",
            "bash",
            "/docker/abc",
            "é€ 中文 ü",
            "a\\b",
            "\u{2010}dash",
            "\u{a0}",
        ] {
            assert_eq!(escape(s), s);
        }
        assert!(matches!(escape("/kubepods/pod-1"), Cow::Borrowed(_)));
        // A backslash that could be read as an escape is itself escaped.
        assert_eq!(escape("a\\x1b"), "a\\x5cx1b");
        assert_eq!(escape("end\\"), "end\\");
    }
}
