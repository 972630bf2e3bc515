//! Encode → decode round trips for every record type the decoder reads, over arbitrary
//! field values, both byte orders, every sample_id layout and arbitrary ring-wrap points.

use nswatch::attr::{sample, SampleFormat};
use nswatch::bytes::{Bytes, Endian};
use nswatch::record::encode::{Encoder, SampleFields};
use nswatch::record::{NsLink, Record, RecordView, SampleId, TaskEvent};
use proptest::prelude::*;

fn format() -> impl Strategy<Value = SampleFormat> {
    let bits = [
        sample::TID,
        sample::TIME,
        sample::ID,
        sample::STREAM_ID,
        sample::CPU,
        sample::IDENTIFIER,
        sample::IP,
        sample::ADDR,
        sample::PERIOD,
        sample::CALLCHAIN,
    ];
    (
        proptest::bits::u16::masked((1 << bits.len()) - 1),
        any::<bool>(),
    )
        .prop_map(move |(m, all)| {
            let st = bits
                .iter()
                .enumerate()
                .filter(|(i, _)| m & (1 << i) != 0)
                .fold(0, |a, (_, b)| a | b);
            SampleFormat::new(st, 0, all)
        })
}

fn endian() -> impl Strategy<Value = Endian> {
    prop_oneof![Just(Endian::Little), Just(Endian::Big)]
}

fn sample_id() -> impl Strategy<Value = SampleId> {
    (
        any::<u32>(),
        any::<u32>(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        any::<u32>(),
    )
        .prop_map(|(pid, tid, time, id, stream_id, cpu)| SampleId {
            pid: Some(pid),
            tid: Some(tid),
            time: Some(time),
            id: Some(id),
            stream_id: Some(stream_id),
            cpu: Some(cpu),
        })
}

/// What the trailer keeps of `id` under `fmt` (fields it lacks read back as None).
fn expected_id(fmt: &SampleFormat, id: &SampleId) -> SampleId {
    if !fmt.sample_id_all {
        return SampleId::default();
    }
    let has = |b| fmt.has(b);
    SampleId {
        pid: id.pid.filter(|_| has(sample::TID)),
        tid: id.tid.filter(|_| has(sample::TID)),
        time: id.time.filter(|_| has(sample::TIME)),
        id: id.id.filter(|_| has(sample::ID) || has(sample::IDENTIFIER)),
        stream_id: id.stream_id.filter(|_| has(sample::STREAM_ID)),
        cpu: id.cpu.filter(|_| has(sample::CPU)),
    }
}

/// Decodes `buf` whole and as a ring would hand it over, split at `cut`; the tests check
/// both decodings.
fn decode_both(
    buf: &[u8],
    e: Endian,
    fmt: &SampleFormat,
    cut: usize,
) -> [(Record<'static>, SampleId); 2] {
    let leaked: &'static [u8] = Box::leak(buf.to_vec().into_boxed_slice());
    let whole = RecordView::parse(Bytes::new(leaked, e), 0).unwrap();
    assert_eq!(whole.size(), buf.len());
    let (rec, id) = whole.decode(fmt).unwrap();
    let cut = cut % (buf.len() + 1);
    let (a, b) = leaked.split_at(cut);
    let split = RecordView::parse(Bytes::split(a, b, e), 0).unwrap();
    [(rec, id), split.decode(fmt).unwrap()]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn namespaces(e in endian(), fmt in format(), pid: u32, tid: u32,
                  links in proptest::collection::vec((any::<u64>(), any::<u64>()), 0..12),
                  id in sample_id(), cut: usize) {
        let links: Vec<NsLink> = links.into_iter().map(|(dev, ino)| NsLink { dev, ino }).collect();
        let mut buf = Vec::new();
        Encoder::new(e, fmt).namespaces(&mut buf, pid, tid, &links, &id);
        for (rec, got) in decode_both(&buf, e, &fmt, cut) {
            prop_assert_eq!(got, expected_id(&fmt, &id));
            let Record::Namespaces(ns) = rec else { panic!("{rec:?}") };
            prop_assert_eq!((ns.pid, ns.tid), (pid, tid));
            prop_assert_eq!(&ns.iter().map(|(_, l)| l).collect::<Vec<_>>(), &links);
        }
    }

    #[test]
    fn fork_and_exit(e in endian(), fmt in format(), fork: bool,
                     f in (any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>(), any::<u64>()),
                     id in sample_id(), cut: usize) {
        let t = TaskEvent { pid: f.0, ppid: f.1, tid: f.2, ptid: f.3, time: f.4 };
        let mut buf = Vec::new();
        Encoder::new(e, fmt).task(&mut buf, fork, &t, &id);
        for (rec, got) in decode_both(&buf, e, &fmt, cut) {
            prop_assert_eq!(got, expected_id(&fmt, &id));
            match rec {
                Record::Fork(x) if fork => prop_assert_eq!(x, t),
                Record::Exit(x) if !fork => prop_assert_eq!(x, t),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn comm(e in endian(), fmt in format(), pid: u32, tid: u32, name in "[a-zA-Z0-9/_. -]{0,15}",
            exec: bool, id in sample_id(), cut: usize) {
        let mut buf = Vec::new();
        Encoder::new(e, fmt).comm(&mut buf, pid, tid, &name, exec, &id);
        for (rec, got) in decode_both(&buf, e, &fmt, cut) {
            prop_assert_eq!(got, expected_id(&fmt, &id));
            let Record::Comm(c) = rec else { panic!("{rec:?}") };
            prop_assert_eq!((c.pid, c.tid, &*c.comm, c.exec), (pid, tid, name.as_str(), exec));
        }
    }

    #[test]
    fn cgroup(e in endian(), fmt in format(), cg: u64, path in "/[a-z0-9/._-]{0,200}",
              id in sample_id(), cut: usize) {
        let mut buf = Vec::new();
        Encoder::new(e, fmt).cgroup(&mut buf, cg, &path, &id);
        for (rec, got) in decode_both(&buf, e, &fmt, cut) {
            prop_assert_eq!(got, expected_id(&fmt, &id));
            let Record::Cgroup(c) = rec else { panic!("{rec:?}") };
            prop_assert_eq!((c.id, &*c.path), (cg, path.as_str()));
        }
    }

    #[test]
    fn lost_and_throttle(e in endian(), fmt in format(), a: u64, b: u64, c: u64, throttle: bool,
                         id in sample_id(), cut: usize) {
        let enc = Encoder::new(e, fmt);
        let mut buf = Vec::new();
        enc.lost(&mut buf, a, b, &id);
        for (rec, got) in decode_both(&buf, e, &fmt, cut) {
            prop_assert_eq!(got, expected_id(&fmt, &id));
            let Record::Lost(l) = rec else { panic!("{rec:?}") };
            prop_assert_eq!((l.id, l.lost), (a, b));
        }

        buf.clear();
        enc.lost_samples(&mut buf, c, &id);
        for (rec, _) in decode_both(&buf, e, &fmt, cut) {
            let Record::LostSamples(l) = rec else { panic!("{rec:?}") };
            prop_assert_eq!(l.lost, c);
        }

        buf.clear();
        enc.throttle(&mut buf, throttle, a, b, c, &id);
        for (rec, _) in decode_both(&buf, e, &fmt, cut) {
            match rec {
                Record::Throttle(t) if throttle => prop_assert_eq!((t.time, t.id, t.stream_id), (a, b, c)),
                Record::Unthrottle(t) if !throttle => prop_assert_eq!((t.time, t.id, t.stream_id), (a, b, c)),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn sample_record(e in endian(), fmt in format(), id in sample_id(), ip: u64, addr: u64, period: u64,
                     chain in proptest::collection::vec(any::<u64>(), 0..64), cut: usize) {
        let f = SampleFields { id, ip, addr, period, callchain: chain.clone() };
        let mut buf = Vec::new();
        Encoder::new(e, fmt).sample(&mut buf, &f);
        let expect_chain = if fmt.has(sample::CALLCHAIN) { chain } else { vec![] };
        // A sample carries its identity fields in its body, whatever sample_id_all says.
        let want = expected_id(&SampleFormat { sample_id_all: true, ..fmt }, &id);
        for (rec, got) in decode_both(&buf, e, &fmt, cut) {
            let Record::Sample(s) = rec else { panic!("{rec:?}") };
            prop_assert_eq!(got, want);
            prop_assert_eq!(s.ip, Some(ip).filter(|_| fmt.has(sample::IP)));
            prop_assert_eq!(s.addr, Some(addr).filter(|_| fmt.has(sample::ADDR)));
            prop_assert_eq!(s.period, Some(period).filter(|_| fmt.has(sample::PERIOD)));
            prop_assert_eq!(&s.callchain().collect::<Vec<_>>(), &expect_chain);
        }
    }
}
