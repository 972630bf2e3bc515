//! Hostile input, generated here (nothing is checked in): each file or stream is refused
//! with exit status 1 and a message naming the offset, or read whole, within a wall time and
//! a peak resident memory that the test measures (common::bounded). The bounds hold for a
//! debug build on a loaded machine (its figures are in docs/TESTING.md).

mod common;

use common::bounded::{self, assert_refused, Outcome};
use nswatch::attr::{flag, sample, SampleFormat};
use nswatch::bytes::Endian;
use nswatch::record::encode::Encoder;
use nswatch::record::{kind, NsLink, SampleId};
use nswatch::{Order, PerfData};
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

/// Any refusal of a small file: seconds, tens of MiB.
const LIMIT: Duration = Duration::from_secs(20);
const RSS_MB: u64 = 64;

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

fn put64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// `nswatch report --format FORMAT PATH`, bounded.
fn report(path: &Path, format: &str) -> Outcome {
    let args: [&OsStr; 4] = [
        "report".as_ref(),
        "--format".as_ref(),
        format.as_ref(),
        path.as_os_str(),
    ];
    bounded::run(&args, LIMIT)
}

/// Writes `bytes` to a file and expects both formats to refuse it.
fn refused(bytes: &[u8], expect: &[&str]) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hostile.data");
    std::fs::write(&path, bytes).unwrap();
    assert_refused(&report(&path, "text"), LIMIT, RSS_MB, false, expect);
    let out = report(&path, "ndjson");
    assert_refused(&out, LIMIT, RSS_MB, true, expect);
    out
}

/// Streams `bytes` into `nswatch report --format ndjson -` through a pipe and expects a
/// refusal.
fn refused_from_pipe(bytes: Vec<u8>, expect: &[&str]) -> Outcome {
    let args: [&OsStr; 4] = [
        "report".as_ref(),
        "--format".as_ref(),
        "ndjson".as_ref(),
        "-".as_ref(),
    ];
    let mut w = bounded::start(&args, true, false, LIMIT);
    let mut stdin = w.stdin();
    let feed = std::thread::spawn(move || {
        // The reader may stop (and close the pipe) before the end.
        let _ = stdin.write_all(&bytes);
    });
    let out = w.finish();
    feed.join().unwrap();
    assert_refused(&out, LIMIT, RSS_MB, true, expect);
    out
}

// ---- Item 7: attrs sharing their ids ----

/// A file of `n` attrs whose ids sections are one and the same list of `m` ids, and no
/// records: read naively, n × m insertions.
fn shared_ids_file(n: usize, m: usize) -> (Vec<u8>, usize) {
    const ATTR: usize = 136;
    let attrs_off = 104;
    let ids_off = attrs_off + n * (ATTR + 16);
    let data_off = ids_off + m * 8;
    let mut f = vec![0u8; data_off];
    f[0..8].copy_from_slice(b"PERFILE2");
    put64(&mut f, 8, 104);
    put64(&mut f, 16, (ATTR + 16) as u64);
    put64(&mut f, 24, attrs_off as u64);
    put64(&mut f, 32, (n * (ATTR + 16)) as u64);
    put64(&mut f, 40, data_off as u64);
    put64(&mut f, 48, 0);
    for i in 0..n {
        let a = attrs_off + i * (ATTR + 16);
        f[a..a + 4].copy_from_slice(&1u32.to_le_bytes());
        f[a + 4..a + 8].copy_from_slice(&(ATTR as u32).to_le_bytes());
        put64(
            &mut f,
            a + 24,
            sample::TID | sample::TIME | sample::IDENTIFIER,
        );
        put64(&mut f, a + 40, flag::SAMPLE_ID_ALL);
        put64(&mut f, a + ATTR, ids_off as u64);
        put64(&mut f, a + ATTR + 8, (m * 8) as u64);
    }
    for k in 0..m {
        put64(&mut f, ids_off + 8 * k, k as u64 + 1);
    }
    (f, ids_off)
}

#[test]
fn attrs_sharing_one_ids_section_are_refused_at_once() {
    // 2.7 MB: 9000 attrs × 170 000 shared ids (1.5 × 10^9 insertions read naively, over
    // two minutes).
    let (f, ids_off) = shared_ids_file(9000, 170_000);
    assert!(f.len() > 2_700_000);
    let out = refused(
        &f,
        &[
            "event id 0x1 is given to attr 0 already",
            &format!("at offset {ids_off:#x}"),
        ],
    );
    eprintln!(
        "shared ids, {} bytes: {:?}, {} KiB peak",
        f.len(),
        out.wall,
        out.max_rss_kb
    );
    assert!(out.wall < Duration::from_secs(5), "{:?}", out.wall);
}

// ---- Item 11: ids of no attr ----

const A: u64 = sample::TID | sample::TIME | sample::CPU | sample::IDENTIFIER;
const B: u64 =
    sample::TID | sample::TIME | sample::ID | sample::STREAM_ID | sample::CPU | sample::IDENTIFIER;

fn sid(pid: u32, time: u64, id: u64) -> SampleId {
    SampleId {
        pid: Some(pid),
        tid: Some(pid),
        time: Some(time),
        id: Some(id),
        stream_id: Some(id),
        cpu: Some(1),
    }
}

#[test]
fn a_record_id_of_no_attr_is_refused_with_its_offset() {
    let ea = Encoder::new(Endian::Little, SampleFormat::new(A, 0, true));
    let eb = Encoder::new(Endian::Little, SampleFormat::new(B, 0, true));
    let links: Vec<NsLink> = (0..7)
        .map(|i| NsLink {
            dev: 4,
            ino: 100 + i,
        })
        .collect();
    let mut d = Vec::new();
    ea.namespaces(&mut d, 100, 100, &links, &sid(100, 1_000, 11));
    eb.namespaces(&mut d, 100, 100, &links, &sid(100, 2_000, 22));
    let bad_at = d.len();
    // Id 33 is neither attr's; A's layout would read B's trailer as a time of 33 ns.
    eb.namespaces(&mut d, 101, 101, &links, &sid(101, 3_000, 33));
    let f = common::build_file(
        Endian::Little,
        &[
            (A, flag::SAMPLE_ID_ALL | flag::NAMESPACES, vec![11]),
            (B, flag::SAMPLE_ID_ALL, vec![22]),
        ],
        &d,
    );
    let at = f.len() - d.len() + bad_at;
    let out = refused(
        &f,
        &[
            "event id 0x21 belongs to no attr",
            &format!("at offset {at:#x}"),
            "NAMESPACES",
        ],
    );
    // The records before it were handed on, in time order.
    let lines = String::from_utf8(out.stdout).unwrap();
    assert_eq!(lines.lines().count(), 2, "{lines}");
}

// ---- Item 8: a time-ordered stream without rounds ----

/// The records of a pipe-mode fixture, to be repeated into a stream of any length: perf's
/// own records (HEADER_ATTR, …) once, then the kernel's, their timestamps shifted at each
/// repetition so that time goes on (FINISHED_ROUND records left out).
struct Stretch {
    prologue: Vec<u8>,
    /// Records of the first repetition only (timestamp 0: perf's synthesized ones).
    first: Vec<u8>,
    /// The records repeated, and where each holds its timestamp.
    body: Vec<u8>,
    times: Vec<(usize, u64)>,
    span: u64,
}

impl Stretch {
    fn of(fixture: &str) -> Stretch {
        let raw = std::fs::read(common::fixture(fixture)).unwrap();
        let mut pd = PerfData::from_bytes(raw.clone()).unwrap();
        let mut s = Stretch {
            prologue: raw[..16].to_vec(),
            first: Vec::new(),
            body: Vec::new(),
            times: Vec::new(),
            span: 0,
        };
        let (mut lo, mut hi) = (u64::MAX, 0);
        pd.for_each(Order::File, |dec, v| -> Result<(), nswatch::DecodeError> {
            let rec = &raw[v.offset as usize..v.offset as usize + v.size()];
            if !v.is_kernel() {
                if v.ty != kind::FINISHED_ROUND {
                    s.prologue.extend_from_slice(rec);
                }
                return Ok(());
            }
            match dec.time_of(v).filter(|&t| t > 0) {
                None => s.first.extend_from_slice(rec),
                Some(t) => {
                    (lo, hi) = (lo.min(t), hi.max(t));
                    for at in (8..rec.len()).step_by(8) {
                        if le64(rec, at) == t {
                            s.times.push((s.body.len() + at, t));
                        }
                    }
                    s.body.extend_from_slice(rec);
                }
            }
            Ok(())
        })
        .unwrap();
        s.span = hi - lo + 1;
        assert!(!s.body.is_empty() && !s.times.is_empty());
        s
    }

    /// Repetition `rep` of the body (`shift`: with its times moved on).
    fn rep(&self, rep: u64, shift: bool, out: &mut Vec<u8>) {
        if rep == 0 {
            out.extend_from_slice(&self.prologue);
            out.extend_from_slice(&self.first);
        }
        let base = out.len();
        out.extend_from_slice(&self.body);
        if shift {
            for &(at, t) in &self.times {
                put64(out, base + at, t + rep * self.span);
            }
        }
    }

    /// The stream, about `bytes` long.
    fn stream(&self, bytes: usize, shift: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(bytes + self.body.len() * 2);
        let mut rep = 0;
        while out.len() < bytes {
            self.rep(rep, shift, &mut out);
            rep += 1;
        }
        out
    }
}

/// Streams `total` bytes of `s` into `nswatch report --format ndjson -` and returns the
/// outcome and the number of lines written.
fn stream_into_report(s: &Stretch, total: usize, shift: bool, limit: Duration) -> (Outcome, usize) {
    let args: [&OsStr; 4] = [
        "report".as_ref(),
        "--format".as_ref(),
        "ndjson".as_ref(),
        "-".as_ref(),
    ];
    let mut w = bounded::start(&args, true, true, limit);
    let mut stdin = w.stdin();
    let mut stdout = w.stdout();
    let count = std::thread::spawn(move || {
        let (mut n, mut buf) = (0, vec![0u8; 1 << 16]);
        while let Ok(k) = stdout.read(&mut buf) {
            if k == 0 {
                break;
            }
            n += buf[..k].iter().filter(|&&b| b == b'\n').count();
        }
        n
    });
    std::thread::scope(|sc| {
        sc.spawn(move || {
            let mut chunk = Vec::with_capacity(4 << 20);
            let (mut sent, mut rep) = (0, 0);
            while sent < total {
                chunk.clear();
                while chunk.len() < 4 << 20 {
                    s.rep(rep, shift, &mut chunk);
                    rep += 1;
                }
                if stdin.write_all(&chunk).is_err() {
                    return;
                }
                sent += chunk.len();
            }
        });
    });
    let out = w.finish();
    (out, count.join().unwrap())
}

#[test]
fn a_stream_without_rounds_is_read_in_bounded_memory() {
    let s = Stretch::of("pipe.data");
    // 256 MiB of records, sixteen times the reorder window; read whole, as perf does.
    let total = 256 << 20;
    let limit = Duration::from_secs(240);
    let (out, lines) = stream_into_report(&s, total, true, limit);
    eprintln!(
        "stream of {} MiB without rounds: {:?}, {} KiB peak, {lines} lines",
        total >> 20,
        out.wall,
        out.max_rss_kb
    );
    assert!(!out.killed, "over {limit:?}; {}", out.stderr);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(lines > total / 1000, "{lines} lines");
    assert!(
        !out.stderr.contains("out of time order"),
        "time goes on: nothing late; {}",
        out.stderr
    );
    // 16 MiB of records wait at most, in an arena twice that: tens of MiB, whatever the
    // stream's length (the whole stream was held before the bound).
    assert!(out.max_rss_kb < 80 << 10, "peak RSS {} KiB", out.max_rss_kb);
}

#[test]
fn records_older_than_what_was_handed_on_are_counted_once() {
    let s = Stretch::of("pipe.data");
    // The same records over and over: past the window, every repetition is late.
    let total = 40 << 20;
    let (out, _) = stream_into_report(&s, total, false, Duration::from_secs(120));
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let warnings: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("records came after newer ones"))
        .collect();
    assert_eq!(warnings.len(), 1, "{}", out.stderr);
    let n: u64 = warnings[0]
        .split("warning: ")
        .nth(1)
        .and_then(|w| w.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a count in {:?}", warnings[0]));
    assert!(n > 1000, "{n}");
    assert!(out.max_rss_kb < 80 << 10, "peak RSS {} KiB", out.max_rss_kb);
}

// ---- Item 17: a file truncated while it is read ----

fn truncated_while_read(threads: &str) {
    let s = Stretch::of("pipe.data");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.data");
    std::fs::write(&path, s.stream(128 << 20, true)).unwrap();
    let args: [&OsStr; 6] = [
        "report".as_ref(),
        "--format".as_ref(),
        "ndjson".as_ref(),
        "--threads".as_ref(),
        threads.as_ref(),
        path.as_os_str(),
    ];
    let mut w = bounded::start(&args, false, true, Duration::from_secs(60));
    let mut stdout = w.stdout();
    // Read the first lines, then none: report fills the pipe and waits, a few MiB into
    // the file, while the file is cut well before where it reads.
    let mut head = vec![0u8; 4096];
    stdout.read_exact(&mut head).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(1 << 20)
        .unwrap();
    let mut rest = Vec::new();
    stdout.read_to_end(&mut rest).unwrap();
    let mut out = w.finish();
    out.stdout = [head, rest].concat();
    eprintln!(
        "truncated while read ({threads} threads): {:?}, {} KiB peak: {}",
        out.wall,
        out.max_rss_kb,
        out.stderr.trim()
    );
    // The records of a file without rounds wait in its map: 24 bytes each of the reader's
    // own (up to 1 Mi of them), the pages of the last 16 MiB read, and the batches in flight.
    assert_refused(
        &out,
        Duration::from_secs(60),
        96,
        true,
        &["big.data", "truncated while being read", "to 1048576 bytes"],
    );
}

#[test]
fn a_file_truncated_while_read_is_an_error_not_sigbus() {
    truncated_while_read("1");
}

#[test]
fn a_file_truncated_while_read_on_two_threads_is_an_error_not_sigbus() {
    truncated_while_read("2");
}

// ---- Huge counts and sizes in headers and feature sections ----

fn forkexec() -> Vec<u8> {
    std::fs::read(common::fixture("forkexec.data")).unwrap()
}

/// Offset of the feature index entry of `bit` in a file-mode file.
fn feature_entry(b: &[u8], bit: usize) -> usize {
    let idx = (le64(b, 40) + le64(b, 48)) as usize;
    let set = |k: usize| le64(b, 72 + 8 * (k / 64)) & (1 << (k % 64)) != 0;
    assert!(set(bit), "feature {bit} present");
    idx + 16 * (0..bit).filter(|&k| set(k)).count()
}

#[test]
fn huge_sizes_in_the_header_are_refused() {
    let mut b = forkexec();
    put64(&mut b, 8, u64::MAX);
    refused(&b, &["header.size", "at offset 0x8"]);

    let mut b = forkexec();
    put64(&mut b, 48, u64::MAX);
    refused(&b, &["data section", "outside the file", "at offset 0x28"]);

    let mut b = forkexec();
    let ids = le64(&b, 24) as usize + (le64(&b, 16) as usize - 16);
    put64(&mut b, ids + 8, u64::MAX - 7);
    refused(&b, &["attr ids section", &format!("at offset {ids:#x}")]);
}

#[test]
fn a_feature_index_past_the_end_is_refused() {
    // The sections the index points to cut off the file.
    let mut b = forkexec();
    let idx = (le64(&b, 40) + le64(&b, 48)) as usize;
    let entries: u32 = (0..4).map(|w| le64(&b, 72 + 8 * w).count_ones()).sum();
    b.truncate(idx + 16 * entries as usize);
    refused(
        &b,
        &[
            "section",
            "outside the file",
            &format!("at offset {idx:#x}"),
        ],
    );
    // And the index itself cut short: one feature more than it holds.
    b[72 + 8 * 3 + 7] |= 0x80;
    b.truncate(idx + 16 * (entries as usize - 1));
    refused(
        &b,
        &[
            "section",
            "outside the file",
            &format!("at offset {idx:#x}"),
        ],
    );
}

#[test]
fn huge_counts_in_feature_sections_are_refused() {
    let mut b = forkexec();
    let e = feature_entry(&b, 3); // HOSTNAME
    let sec = le64(&b, e) as usize;
    b[sec..sec + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    refused(&b, &["feature HOSTNAME", &format!("at offset {sec:#x}")]);

    let mut b = forkexec();
    let e = feature_entry(&b, 11); // CMDLINE
    let sec = le64(&b, e) as usize;
    b[sec..sec + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    refused(&b, &["feature CMDLINE", &format!("at offset {sec:#x}")]);

    let mut b = forkexec();
    let e = feature_entry(&b, 3);
    put64(&mut b, e + 8, u64::MAX);
    refused(&b, &["HOSTNAME section", &format!("at offset {e:#x}")]);
}

/// Offset of the first record of type `ty` in a pipe-mode file.
fn pipe_record(b: &[u8], ty: u32, pick: impl Fn(&[u8]) -> bool) -> usize {
    let mut off = 16;
    loop {
        let t = u32::from_le_bytes(b[off..off + 4].try_into().unwrap());
        let size = u16::from_le_bytes([b[off + 6], b[off + 7]]) as usize;
        if t == ty && pick(&b[off..off + size]) {
            return off;
        }
        off += size;
    }
}

#[test]
fn huge_counts_in_a_stream_are_refused() {
    let pipe = std::fs::read(common::fixture("pipe.data")).unwrap();
    // A HEADER_FEATURE record whose hostname claims 4 GiB.
    let mut b = pipe.clone();
    let at = pipe_record(&b, kind::HEADER_FEATURE, |r| le64(r, 8) == 3);
    b[at + 16..at + 20].copy_from_slice(&u32::MAX.to_le_bytes());
    refused_from_pipe(b, &["feature HOSTNAME", &format!("at offset {at:#x}")]);
    // A HEADER_ATTR record whose attr claims a size past the record.
    let mut b = pipe.clone();
    let at = pipe_record(&b, kind::HEADER_ATTR, |_| true);
    b[at + 12..at + 16].copy_from_slice(&u32::MAX.to_le_bytes());
    refused_from_pipe(b, &["attr.size", &format!("at offset {at:#x}")]);
}

#[test]
fn records_of_size_zero_and_the_largest_size_are_refused() {
    let pipe = std::fs::read(common::fixture("pipe.data")).unwrap();
    let at = pipe_record(&pipe, kind::NAMESPACES, |_| true);
    // Size 0, in a stream and in a file.
    let mut b = pipe.clone();
    b[at + 6..at + 8].copy_from_slice(&0u16.to_le_bytes());
    let expect = [
        "smaller than the 8-byte record header",
        &format!("at offset {at:#x}"),
    ];
    refused_from_pipe(b.clone(), &expect);
    refused(&b, &expect);
    // The largest size (not a multiple of 8), and the largest aligned one, past the end.
    let mut b = pipe.clone();
    b[at + 6..at + 8].copy_from_slice(&u16::MAX.to_le_bytes());
    refused(&b, &["not a multiple of 8", &format!("at offset {at:#x}")]);
    let mut b = pipe[..at + 4096].to_vec();
    b[at + 6..at + 8].copy_from_slice(&0xfff8u16.to_le_bytes());
    refused(&b, &["truncated", &format!("{at:#x}")]);
    refused_from_pipe(b, &["truncated"]);
}
