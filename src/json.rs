//! JSON text, low level: strings escaped, numbers' digits, and caches of text written
//! recently. The bottom of every writer of the event stream (the schema's lines, the
//! probe's causes, the model's fields, Chrome traces, the text report), imported from above
//! and importing nothing of the crate.

/// True when `b` has a byte a JSON string must escape.
#[inline(always)]
pub(crate) fn needs_escape(b: &[u8]) -> bool {
    // A command name (at most 15 bytes) is asked about on every NAMESPACES line: checked a
    // word at a time, as two overlapping words (a byte loop was 50 instructions a line).
    let n = b.len();
    let word = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"));
    let half = |at: usize| u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"));
    if (8..=16).contains(&n) {
        word_needs_escape(word(0)) || word_needs_escape(word(n - 8))
    } else if (4..8).contains(&n) {
        word_needs_escape(u64::from(half(0)) | u64::from(half(n - 4)) << 32)
    } else {
        b.iter().any(|&c| c < 0x20 || c == b'"' || c == b'\\')
    }
}

/// True when a byte of `w` is below 0x20, a quote or a backslash (exact: a borrow only
/// crosses into a higher byte from a byte that matched).
#[inline(always)]
fn word_needs_escape(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGHS;
    below_space | zero_byte(w ^ (ONES * u64::from(b'"'))) | zero_byte(w ^ (ONES * u64::from(b'\\')))
        != 0
}

/// Appends `s` as a JSON string (quoted, escaped).
pub(crate) fn push_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let b = s.as_bytes();
    if !needs_escape(b) {
        out.extend_from_slice(b);
    } else {
        for ch in s.chars() {
            match ch {
                '"' => out.extend_from_slice(b"\\\""),
                '\\' => out.extend_from_slice(b"\\\\"),
                '\n' => out.extend_from_slice(b"\\n"),
                '\t' => out.extend_from_slice(b"\\t"),
                '\r' => out.extend_from_slice(b"\\r"),
                c if (c as u32) < 0x20 => {
                    out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
                }
                c => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
            }
        }
    }
    out.push(b'"');
}

/// `v` (< 10^8) as exactly 8 ASCII digits in a register, the first digit in the low byte
/// (so `to_le_bytes` is the text). SWAR: every digit found at once with a few
/// multiplications; no table, and no byte stores that a wider load would then have to wait
/// for (a store-forwarding stall on every number).
#[inline(always)]
pub(crate) fn eight(v: u32) -> u64 {
    // Lanes of 32 bits: the high and low four digits.
    let merged = u64::from(v / 10_000) | (u64::from(v % 10_000) << 32);
    // x / 100 for x < 10^4 in each lane (10486 / 2^20 rounds it exactly).
    let hundreds = ((merged * 10_486) >> 20) & 0x0000_007F_0000_007F;
    // Lanes of 16 bits: four two-digit numbers, first first.
    let pairs = hundreds | ((merged - 100 * hundreds) << 16);
    // x / 10 for x < 100 in each lane (103 / 2^10 rounds it exactly).
    let tens = ((pairs * 103) >> 10) & 0x000F_000F_000F_000F;
    let ones = pairs - 10 * tens;
    (tens | (ones << 8)) + 0x3030_3030_3030_3030
}

/// A number's decimal digits, ready to be appended: the first 16 bytes of the text and the
/// rest (numbers of 17 to 20 digits), held in registers and written with two stores of
/// fixed size whatever the length, where a copy of just the digits would be a call to
/// memcpy.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Digits {
    /// The first 16 bytes of the text, the first digit in the low byte.
    pub(crate) first: u128,
    /// Bytes 17 to 20 of the text.
    pub(crate) rest: u32,
    /// How many digits.
    pub(crate) len: u8,
}

impl Digits {
    #[inline]
    pub(crate) fn of(v: u64) -> Digits {
        const E8: u64 = 100_000_000;
        const E16: u64 = E8 * E8;
        if v < E8 {
            // Pids, cpus, the high part of a timestamp: 32-bit arithmetic only. The length is
            // eight less the leading zeros, which are the low bytes of the digits that
            // are '0' (v = 0 keeps one).
            let d = eight(v as u32);
            let zeros = ((d - 0x3030_3030_3030_3030) | 1 << 56).trailing_zeros() / 8;
            return Digits {
                first: u128::from(d >> (8 * zeros)),
                rest: 0,
                len: (8 - zeros) as u8,
            };
        }
        let len = v.checked_ilog10().map_or(1, |l| l + 1);
        // The last 16 digits, zero-padded.
        let x =
            u128::from(eight(((v / E8) % E8) as u32)) | u128::from(eight((v % E8) as u32)) << 64;
        if v < E16 {
            return Digits {
                first: x >> (8 * (16 - len)),
                rest: 0,
                len: len as u8,
            };
        }
        // 17 to 20 digits: k of them above the last 16 (at most 1844).
        let k = len - 16;
        let top = eight((v / E16) as u32) >> (8 * (8 - k));
        Digits {
            first: u128::from(top) | (x << (8 * k)),
            rest: (x >> (8 * (16 - k))) as u32,
            len: len as u8,
        }
    }

    /// How many digits.
    #[inline(always)]
    pub(crate) fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// The digit of `v` < 10.
    #[inline(always)]
    pub(crate) fn one(v: u8) -> Digits {
        Digits {
            first: u128::from(b'0' + v),
            rest: 0,
            len: 1,
        }
    }

    /// The digits of the number one more, unless its last digit is a 9 (a carry) or the
    /// number has more than 16 digits.
    #[inline(always)]
    pub(crate) fn succ(&self) -> Option<Digits> {
        if self.len > 16 {
            return None;
        }
        let shift = 8 * (u32::from(self.len) - 1);
        if (self.first >> shift) as u8 == b'9' {
            return None;
        }
        Some(Digits {
            first: self.first + (1u128 << shift),
            ..*self
        })
    }

    /// Appends the digits to `out`.
    #[inline]
    pub(crate) fn push_to(&self, out: &mut Vec<u8>) {
        out.reserve(20);
        let at = out.len();
        // SAFETY: `reserve` made room for 20 bytes past `at`; all are written, and `len`
        // (at most 20) of them are kept.
        unsafe {
            let p = out.as_mut_ptr().add(at);
            p.cast::<[u8; 16]>()
                .write_unaligned(self.first.to_le_bytes());
            p.add(16)
                .cast::<[u8; 4]>()
                .write_unaligned(self.rest.to_le_bytes());
            out.set_len(at + self.len as usize);
        }
    }
}

/// Appends `v` in decimal.
#[inline]
pub(crate) fn push_u64(out: &mut Vec<u8>, v: u64) {
    Digits::of(v).push_to(out);
}

/// Appends `v` in decimal, with its sign.
pub(crate) fn push_i64(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    push_u64(out, v.unsigned_abs());
}

/// A timestamp's digits above its last eight, and what they were made from: in time order
/// they change once per 0.1 s, so a line's times are mostly eight digits made and a copy.
#[derive(Debug)]
pub(crate) struct TimeHigh {
    hi: u64,
    digits: Digits,
}

impl Default for TimeHigh {
    fn default() -> Self {
        // No timestamp's high part (at most 1.8 * 10^11) is u64::MAX: the first is made.
        TimeHigh {
            hi: u64::MAX,
            digits: Digits::of(0),
        }
    }
}

impl TimeHigh {
    /// The digits of `hi`, made if they are not the last ones.
    #[inline(always)]
    pub(crate) fn digits(&mut self, hi: u64) -> &Digits {
        if self.hi != hi {
            (self.hi, self.digits) = (hi, Digits::of(hi));
        }
        &self.digits
    }

    /// Appends `v` in decimal.
    #[inline(always)]
    pub(crate) fn push(&mut self, out: &mut Vec<u8>, v: u64) {
        let hi = v / 100_000_000;
        if hi == 0 {
            return push_u64(out, v);
        }
        self.digits(hi).push_to(out);
        out.extend_from_slice(&eight((v % 100_000_000) as u32).to_le_bytes());
    }
}

/// The text of a few values written recently, by what it was made from, replaced in turn
/// once full: what a stream writes again and again (a storm's calls and sets of links, the
/// groups of its lines) is copied, not made.
#[derive(Debug)]
pub(crate) struct RecentTexts<K> {
    entries: Vec<(K, Vec<u8>)>,
    /// The entry replaced next, once full.
    next: usize,
    /// The entry last used: the next line mostly uses it again.
    last: usize,
    /// The entry used before `last`: a stream going back and forth between two (a setns
    /// storm's groups) finds it without a search.
    before: usize,
}

impl<K> Default for RecentTexts<K> {
    fn default() -> Self {
        RecentTexts {
            entries: Vec::new(),
            next: 0,
            last: 0,
            before: 0,
        }
    }
}

/// Entries a [`RecentTexts`] keeps: a storm between two namespaces uses two; a few more
/// cover several threads or tools at once.
const RECENT_TEXTS: usize = 8;

impl<K> RecentTexts<K> {
    /// The text of the entry whose key `is`, made by `make` (which appends the text and
    /// gives its key) when there is none.
    #[inline(always)]
    pub(crate) fn text(
        &mut self,
        is: impl Fn(&K) -> bool,
        make: impl FnOnce(&mut Vec<u8>) -> K,
    ) -> &[u8] {
        let i = match self.entries.get(self.last) {
            Some((k, _)) if is(k) => self.last,
            _ => {
                let i = match self.entries.get(self.before) {
                    Some((k, _)) if is(k) => self.before,
                    _ => self.find(is, make),
                };
                self.before = self.last;
                i
            }
        };
        self.last = i;
        &self.entries[i].1
    }

    /// The entry whose key `is`, made if there is none: [`RecentTexts::text`] past the
    /// last two used.
    #[inline(never)]
    fn find(&mut self, is: impl Fn(&K) -> bool, make: impl FnOnce(&mut Vec<u8>) -> K) -> usize {
        match self.entries.iter().position(|(k, _)| is(k)) {
            Some(i) => i,
            None => self.insert(make),
        }
    }

    #[cold]
    fn insert(&mut self, make: impl FnOnce(&mut Vec<u8>) -> K) -> usize {
        let mut text = Vec::new();
        let key = make(&mut text);
        if self.entries.len() < RECENT_TEXTS {
            self.entries.push((key, text));
            return self.entries.len() - 1;
        }
        let i = self.next;
        self.next = (i + 1) % RECENT_TEXTS;
        self.entries[i] = (key, text);
        i
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_found_in_every_length_and_place() {
        let slow = |b: &[u8]| b.iter().any(|&c| c < 0x20 || c == b'"' || c == b'\\');
        for n in 0..=20 {
            for at in 0..n.max(1) {
                for v in 0..=255u8 {
                    for fill in [b'a', 0x7f, 0xff, b' ', b'!', b'#', b'[', b']'] {
                        let mut b = vec![fill; n];
                        if n > 0 {
                            b[at] = v;
                        }
                        assert_eq!(needs_escape(&b), slow(&b), "{b:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn recent_texts_are_the_texts_of_their_keys() {
        // Back and forth between two keys, then among more keys than are kept (entries
        // replaced under the last two used), in every order of a small cycle.
        let mut t = RecentTexts::<u32>::default();
        let mut made = 0;
        let keys = (0..40u32)
            .map(|i| i % 2)
            .chain((0..400).map(|i| (i * 7) % 13));
        for (n, k) in keys
            .chain((0..200).map(|i| [3, 4, 3, 5][i % 4]))
            .enumerate()
        {
            if n == 40 {
                assert_eq!(made, 2, "two keys back and forth are made once each");
            }
            let text = t.text(
                |&x| x == k,
                |out| {
                    made += 1;
                    out.extend_from_slice(format!("k{k}").as_bytes());
                    k
                },
            );
            assert_eq!(text, format!("k{k}").as_bytes());
        }
    }

    #[test]
    fn digits_are_written_like_display() {
        let mut vals = vec![
            0,
            1,
            9,
            10,
            11,
            99,
            100,
            101,
            999,
            1000,
            u64::MAX,
            u64::MAX - 1,
        ];
        vals.extend((0..64).map(|b| 1u64 << b));
        vals.extend((1..20).map(|e| 10u64.pow(e) - 1));
        vals.extend((1..20).flat_map(|e| [10u64.pow(e), 10u64.pow(e) + 1]));
        vals.extend(0..20_000);
        // Every length, digits all over: a 64-bit LCG, cut to 1..=64 bits.
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for i in 0..200_000u64 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            vals.push(x >> (i % 64));
        }
        for v in vals {
            let mut out = b"x".to_vec();
            push_u64(&mut out, v);
            assert_eq!(&out[1..], v.to_string().as_bytes(), "{v}");
        }
    }

    #[test]
    fn digits_plus_one_and_single_digits_are_written_like_display() {
        let text = |d: &Digits| {
            let mut out = Vec::new();
            d.push_to(&mut out);
            String::from_utf8(out).unwrap()
        };
        for v in 0..10u8 {
            assert_eq!(text(&Digits::one(v)), v.to_string());
        }
        let starts = (0..30_000u64).chain([u32::MAX as u64 - 20, 10u64.pow(15) - 3]);
        for v in starts {
            if let Some(d) = Digits::of(v).succ() {
                assert_eq!(text(&d), (v + 1).to_string(), "{v} + 1");
            } else {
                assert_eq!(v % 10, 9, "{v}: only a carry refuses");
            }
        }
    }
}
