//! One record buffer, possibly split in two as at the end of a live ring, decoded with a
//! layout chosen by the input.
//!
//! Input: 24 bytes of configuration, then the records.
//!   [0..8)   sample_type (masked to the bits the decoder knows)
//!   [8..16)  read_format (masked to the five defined bits)
//!   [16]     bit 0: sample_id_all, bit 1: big endian, bit 2: skip unknown types
//!   [17..20) unused
//!   [20..24) split point (modulo the record bytes' length + 1)
//! The bytes after them are walked record by record; every decoded record has all its
//! accessors read and its event built and serialised, and the fast read of FORK, EXIT and
//! NAMESPACES records (`Decoder::hot`, report's `EventSender::send_record`) must agree with
//! the decoding: the same event, never a record the decoder refuses. Errors are fine,
//! panics are not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nswatch::attr::{flag, sample, Attr, SampleFormat};
use nswatch::bytes::{Bytes, Endian};
use nswatch::event::{EventSender, JsonWriter};
use nswatch::nsset::NsSet;
use nswatch::record::{Record, RecordView, SampleId};
use nswatch::{Decoder, EventBuilder};

const KNOWN: u64 = sample::IP
    | sample::TID
    | sample::TIME
    | sample::ADDR
    | sample::READ
    | sample::CALLCHAIN
    | sample::ID
    | sample::CPU
    | sample::PERIOD
    | sample::STREAM_ID
    | sample::IDENTIFIER;

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// Reads every field of a decoded record (the lazy ones included).
fn touch(rec: &Record<'_>, id: &SampleId) {
    use std::hint::black_box as bb;
    bb(id);
    match rec {
        Record::Namespaces(ns) => {
            bb((ns.pid, ns.tid, ns.len(), ns.is_empty()));
            let mut n = 0;
            for (kind, link) in ns.iter() {
                bb((kind.map(|k| k.name()), link));
                n += 1;
            }
            assert_eq!(n, ns.len());
            // One past the end must be None, not a panic.
            assert!(ns.link(ns.len()).is_none());
            bb(NsSet::from_record(ns));
        }
        Record::Sample(s) => {
            for ip in s.callchain() {
                bb(ip);
            }
            assert_eq!(s.callchain().count(), s.callchain_len());
            bb((s.sample_id(), s.ip, s.addr, s.period, s.stream_id, s.cpu));
        }
        Record::Comm(c) => {
            bb((c.pid, c.tid, c.exec, c.comm.len()));
        }
        Record::Cgroup(c) => {
            bb((c.id, c.path.len()));
        }
        Record::Mmap(m) => {
            bb((m.pid, m.tid, m.addr, m.len, m.pgoff, m.prot, m.flags));
            bb(m.filename.len());
        }
        Record::Fork(t) | Record::Exit(t) => {
            bb(t);
        }
        Record::Lost(l) => {
            bb(l);
        }
        Record::LostSamples(l) => {
            bb(l);
        }
        Record::Throttle(t) | Record::Unthrottle(t) => {
            bb(t);
        }
        Record::FinishedRound | Record::FinishedInit | Record::Other(_) => {}
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 24 {
        return;
    }
    let (cfg, recs) = data.split_at(24);
    let sample_type = u64_at(cfg, 0) & KNOWN;
    let read_format = u64_at(cfg, 8) & 0x1f;
    let sample_id_all = cfg[16] & 1 != 0;
    let endian = if cfg[16] & 2 != 0 {
        Endian::Big
    } else {
        Endian::Little
    };
    let split = u32::from_le_bytes(cfg[20..24].try_into().unwrap()) as usize % (recs.len() + 1);
    let (a, b) = recs.split_at(split);
    let fmt = SampleFormat::new(sample_type, read_format, sample_id_all);

    // The same layout through a Decoder (format_of, time_of, event_id).
    let attr = Attr {
        sample_type,
        read_format,
        flags: if sample_id_all {
            flag::SAMPLE_ID_ALL
        } else {
            0
        },
        ..Attr::default()
    };
    let mut decoder = Decoder::new();
    decoder.set_skip_unknown(cfg[16] & 4 != 0);
    decoder.add_attr(attr, [1, 2, 3]);

    let all = Bytes::split(a, b, endian);
    let mut builder = EventBuilder::new();
    let mut hot_builder = EventBuilder::new();
    let mut sender = EventSender::new();
    let mut sent = Vec::new();
    let mut writer = JsonWriter::new();
    let mut sink = 0usize;
    let mut off = 0usize;
    while off < all.len() {
        let rest = all.range(off, all.len()).expect("off < len");
        let view = match RecordView::parse(rest, off as u64) {
            Ok(v) => v,
            Err(e) => {
                assert_eq!(e.offset, off as u64);
                sink += e.to_string().len();
                break;
            }
        };
        assert!(view.size() >= 8 && view.size() <= rest.len());
        sink += view.event_id(&fmt).is_some() as usize;
        sink += decoder.time_of(&view).is_some() as usize;
        assert_eq!(decoder.format_of(&view), Ok(fmt));
        let decoded = decoder.decode(&view);
        let hot = decoder.hot(&view);
        assert_eq!(
            sender.send_record(&decoder, &view, &mut sent).is_ok(),
            decoded.is_ok()
        );
        sent.clear();
        match view.decode(&fmt) {
            Ok((rec, id)) => {
                touch(&rec, &id);
                let fast = match &hot {
                    Some(h) => Some(hot_builder.hot_event(h)),
                    None => hot_builder.event(&rec, &id),
                };
                assert_eq!(fast, builder.event(&rec, &id), "the fast read's event");
                if let Some(ev) = builder.event(&rec, &id) {
                    let json = ev.to_json();
                    let v: serde_json::Value =
                        serde_json::from_str(&json).expect("events serialise to valid JSON");
                    sink += serde_json::to_vec(&v).expect("re-serialise").len();
                    let mut line = Vec::new();
                    writer.write(&ev, &mut line);
                    assert_eq!(line, [json.as_bytes(), b"\n"].concat());
                }
            }
            Err(e) => {
                assert!(hot.is_none(), "the fast read took a record decoding refuses");
                assert_eq!(e.offset, off as u64);
                sink += e.to_string().len();
            }
        }
        off += view.size();
    }
    std::hint::black_box(sink);
});
