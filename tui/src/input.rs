//! Keys from the terminal's bytes, read by `top` itself rather than by crossterm's event
//! reader.
//!
//! crossterm's reader waits on the terminal and on its SIGWINCH pipe with an edge-triggered
//! epoll, and returns the resize as soon as it sees it: when a key arrived in the same wait,
//! that key's readiness is spent and its bytes stay unread until another key comes (a key
//! typed just after a resize did nothing). Here the terminal is polled level-triggered by
//! the caller, its bytes are parsed below, and a resize is a SIGWINCH flag of our own;
//! ratatui reads the new size when it next draws.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Parses what one read of the terminal (in raw mode) brought into keys, in order.
/// Sequences this does not know are dropped whole; an ESC that ends the read is the Esc
/// key (terminals write a sequence in one go).
pub fn parse_keys(bytes: &[u8]) -> Vec<KeyEvent> {
    let mut out = Vec::new();
    let mut i = 0;
    let key = |code| KeyEvent::new(code, KeyModifiers::NONE);
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            0x1b => {
                let (k, used) = escape(&bytes[i + 1..]);
                out.extend(k);
                i += 1 + used;
                continue;
            }
            b'\r' | b'\n' => out.push(key(KeyCode::Enter)),
            b'\t' => out.push(key(KeyCode::Tab)),
            0x7f | 0x08 => out.push(key(KeyCode::Backspace)),
            0x01..=0x1a => out.push(KeyEvent::new(
                KeyCode::Char((b'a' + b - 1) as char),
                KeyModifiers::CONTROL,
            )),
            0x00..=0x1f => {}
            _ => {
                // One UTF-8 character; a broken one is dropped a byte at a time.
                let len = match b {
                    0xc0..=0xdf => 2,
                    0xe0..=0xef => 3,
                    0xf0..=0xf7 => 4,
                    _ => 1,
                };
                let end = (i + len).min(bytes.len());
                if let Some(c) = std::str::from_utf8(&bytes[i..end])
                    .ok()
                    .and_then(|s| s.chars().next())
                {
                    out.push(key(KeyCode::Char(c)));
                    i = end;
                    continue;
                }
            }
        }
        i += 1;
    }
    out
}

/// The key of the bytes after an ESC, and how many of them it used.
fn escape(rest: &[u8]) -> (Option<KeyEvent>, usize) {
    let key = |code| Some(KeyEvent::new(code, KeyModifiers::NONE));
    match rest.first() {
        None | Some(0x1b) => (key(KeyCode::Esc), 0),
        // SS3: ESC O x (application cursor keys, F1-F4).
        Some(b'O') => {
            let code = match rest.get(1) {
                Some(b'A') => KeyCode::Up,
                Some(b'B') => KeyCode::Down,
                Some(b'C') => KeyCode::Right,
                Some(b'D') => KeyCode::Left,
                Some(b'H') => KeyCode::Home,
                Some(b'F') => KeyCode::End,
                Some(b'P') => KeyCode::F(1),
                Some(b'Q') => KeyCode::F(2),
                Some(b'R') => KeyCode::F(3),
                Some(b'S') => KeyCode::F(4),
                None => return (key(KeyCode::Esc), 0),
                Some(_) => return (None, 2),
            };
            (key(code), 2)
        }
        // CSI: ESC [ parameters final-byte.
        Some(b'[') => {
            let body = &rest[1..];
            let Some(end) = body.iter().position(|b| (0x40..=0x7e).contains(b)) else {
                return (None, rest.len());
            };
            let params = std::str::from_utf8(&body[..end]).unwrap_or("");
            // "1;5A": a modified arrow; the modifier is not told apart here.
            let first: u32 = params
                .split(';')
                .next()
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            let code = match body[end] {
                b'A' => Some(KeyCode::Up),
                b'B' => Some(KeyCode::Down),
                b'C' => Some(KeyCode::Right),
                b'D' => Some(KeyCode::Left),
                b'H' => Some(KeyCode::Home),
                b'F' => Some(KeyCode::End),
                b'Z' => Some(KeyCode::BackTab),
                b'~' => match first {
                    1 | 7 => Some(KeyCode::Home),
                    4 | 8 => Some(KeyCode::End),
                    3 => Some(KeyCode::Delete),
                    5 => Some(KeyCode::PageUp),
                    6 => Some(KeyCode::PageDown),
                    11..=15 => Some(KeyCode::F((first - 10) as u8)),
                    17..=21 => Some(KeyCode::F((first - 11) as u8)),
                    23 | 24 => Some(KeyCode::F((first - 12) as u8)),
                    _ => None,
                },
                _ => None,
            };
            (code.and_then(key), 2 + end)
        }
        // ESC then a character: Alt and that key, taken as the key alone.
        Some(_) => {
            let mut k = parse_keys(&rest[..1]);
            (k.pop(), 1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(bytes: &[u8]) -> Vec<KeyCode> {
        parse_keys(bytes).into_iter().map(|k| k.code).collect()
    }

    #[test]
    fn letters_arrows_and_function_keys() {
        assert_eq!(
            codes(b"jq\x1b[A\x1bOB\x1b[5~\x1b[6~\x1b[17~\x1bOP\r\t\x7f"),
            vec![
                KeyCode::Char('j'),
                KeyCode::Char('q'),
                KeyCode::Up,
                KeyCode::Down,
                KeyCode::PageUp,
                KeyCode::PageDown,
                KeyCode::F(6),
                KeyCode::F(1),
                KeyCode::Enter,
                KeyCode::Tab,
                KeyCode::Backspace,
            ]
        );
    }

    #[test]
    fn a_lone_escape_is_esc_and_ctrl_c_is_control() {
        assert_eq!(codes(b"\x1b"), vec![KeyCode::Esc]);
        assert_eq!(codes(b"\x1b\x1b"), vec![KeyCode::Esc, KeyCode::Esc]);
        let k = parse_keys(b"\x03");
        assert_eq!(k[0].code, KeyCode::Char('c'));
        assert!(k[0].modifiers.contains(KeyModifiers::CONTROL));
        assert_eq!(
            codes(b"\x1b[1;5C<"),
            vec![KeyCode::Right, KeyCode::Char('<')]
        );
        assert_eq!(codes("é".as_bytes()), vec![KeyCode::Char('é')]);
        // An unknown sequence is dropped whole, a cut one too.
        assert_eq!(codes(b"\x1b[99xj\x1b[12"), vec![KeyCode::Char('j')]);
    }
}
