//! Inputs Linux perf on this machine cannot make: big-endian files, attrs whose sample_id
//! trailers differ in one file, nr_namespaces other than 7, records split by a ring end.

mod common;
use nswatch::attr::{flag, sample, SampleFormat};
use nswatch::bytes::{Bytes, Endian};
use nswatch::event::{Body, EventBuilder};
use nswatch::record::encode::Encoder;
use nswatch::record::{NsLink, Record, RecordView, SampleId, TaskEvent};
use nswatch::{Order, PerfData};

const A: u64 = sample::TID | sample::TIME | sample::CPU | sample::IDENTIFIER;
const B: u64 =
    sample::TID | sample::TIME | sample::ID | sample::STREAM_ID | sample::CPU | sample::IDENTIFIER;

fn links(base: u64, n: usize) -> Vec<NsLink> {
    (0..n as u64)
        .map(|i| NsLink {
            dev: 4,
            ino: base + i,
        })
        .collect()
}

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

/// Two attrs with different trailers; records of both, interleaved, out of time order.
fn data(endian: Endian) -> Vec<u8> {
    let ea = Encoder::new(endian, SampleFormat::new(A, 0, true));
    let eb = Encoder::new(endian, SampleFormat::new(B, 0, true));
    let mut d = Vec::new();
    let t = |pid, time| TaskEvent {
        pid,
        ppid: 1,
        tid: pid,
        ptid: 1,
        time,
    };
    ea.task(&mut d, true, &t(100, 50), &sid(100, 50, 11));
    eb.namespaces(&mut d, 100, 100, &links(1000, 7), &sid(100, 60, 22));
    ea.comm(&mut d, 100, 100, "worker", true, &sid(100, 55, 11));
    eb.namespaces(&mut d, 100, 100, &links(2000, 9), &sid(100, 70, 22));
    ea.namespaces(&mut d, 100, 100, &links(3000, 3), &sid(100, 80, 11));
    eb.cgroup(&mut d, 77, "/system.slice/x.scope", &sid(100, 90, 22));
    ea.task(&mut d, false, &t(100, 99), &sid(100, 99, 11));
    d
}

fn events(file: Vec<u8>) -> Vec<String> {
    let mut pd = PerfData::from_bytes(file).unwrap();
    let mut b = EventBuilder::new();
    let mut out = Vec::new();
    pd.for_each(Order::Time, |dec, v| -> Result<(), nswatch::DecodeError> {
        if let Some(ev) = b.decode(dec, v)? {
            out.push(ev.to_json());
        }
        Ok(())
    })
    .unwrap();
    out
}

fn file(endian: Endian) -> Vec<u8> {
    common::build_file(
        endian,
        &[
            (A, flag::SAMPLE_ID_ALL | flag::NAMESPACES, vec![11]),
            (B, flag::SAMPLE_ID_ALL, vec![22]),
        ],
        &data(endian),
    )
}

#[test]
fn big_endian_file_decodes_like_little_endian() {
    let le = events(file(Endian::Little));
    let be = events(file(Endian::Big));
    assert_eq!(le.len(), 7);
    assert_eq!(le, be);
}

#[test]
fn attrs_with_different_trailers_are_told_apart_by_id() {
    let ev = events(file(Endian::Little));
    let times: Vec<u64> = ev
        .iter()
        .map(|e| {
            serde_json::from_str::<serde_json::Value>(e).unwrap()["time_ns"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(
        times,
        [50, 55, 60, 70, 80, 90, 99],
        "decoded with the right trailer, ordered"
    );
    let cg: serde_json::Value = serde_json::from_str(&ev[5]).unwrap();
    assert_eq!(cg["path"], "/system.slice/x.scope");
    assert_eq!(cg["cpu"], 1);
}

#[test]
fn nr_namespaces_other_than_seven() {
    let ev = events(file(Endian::Little));
    let nine: serde_json::Value = serde_json::from_str(&ev[3]).unwrap();
    let ns = nine["ns"].as_object().unwrap();
    // 9 links: the 7 known kinds, then the 8th by index; nsset keeps at most 8.
    assert_eq!(ns.len(), 8);
    assert_eq!(ns["net"]["ino"], 2000);
    assert_eq!(ns["cgroup"]["ino"], 2006);
    assert_eq!(ns["ns7"]["ino"], 2007);
    let three: serde_json::Value = serde_json::from_str(&ev[4]).unwrap();
    let mut keys: Vec<&String> = three["ns"].as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["ipc", "net", "uts"]);
    assert_eq!(nine["comm"], "worker");
}

#[test]
fn every_split_point_of_a_ring_decodes_alike() {
    let fmt = SampleFormat::new(A, 0, true);
    let enc = Encoder::new(Endian::Little, fmt);
    let mut rec = Vec::new();
    enc.comm(&mut rec, 5, 6, "a-rather-long-n", false, &sid(5, 7, 8));
    let whole = RecordView::parse(Bytes::new(&rec, Endian::Little), 0).unwrap();
    let (want, want_id) = whole.decode(&fmt).unwrap();
    for cut in 0..=rec.len() {
        let (a, b) = rec.split_at(cut);
        let v = RecordView::parse(Bytes::split(a, b, Endian::Little), 0).unwrap();
        let (got, id) = v.decode(&fmt).unwrap();
        assert_eq!(id, want_id, "cut {cut}");
        match (&got, &want) {
            (Record::Comm(g), Record::Comm(w)) => assert_eq!(g, w, "cut {cut}"),
            _ => panic!("not a COMM"),
        }
    }
    let mut b = EventBuilder::new();
    let ev = b.event(&want, &want_id).unwrap();
    assert!(matches!(ev.body, Body::Comm { ref comm, exec: false } if comm == "a-rather-long-n"));
}

/// The fast reads (`Decoder::hot`, and `report`'s two threads, which send through them)
/// give the general decode's events in either byte order: a file of one attr, so that
/// they apply, with tasks and sets of 7 and of 9 links.
#[test]
fn fast_reads_are_the_general_decode_in_both_byte_orders() {
    use nswatch::event::{EventReceiver, EventSender};
    let mut seen = Vec::new();
    for endian in [Endian::Little, Endian::Big] {
        let e = Encoder::new(endian, SampleFormat::new(A, 0, true));
        let mut d = Vec::new();
        for (i, pid) in (200..230u32).enumerate() {
            let t = |time| TaskEvent {
                pid,
                ppid: 1,
                tid: pid,
                ptid: 1,
                time,
            };
            let time = 1_000 * i as u64;
            e.task(&mut d, true, &t(time), &sid(pid, time, 11));
            let set = links(1000 * (1 + i as u64 % 3), 7 + 2 * (i % 2));
            e.namespaces(&mut d, pid, pid, &set, &sid(pid, time + 1, 11));
            e.task(&mut d, false, &t(time + 2), &sid(pid, time + 2, 11));
        }
        let file = common::build_file(
            endian,
            &[(A, flag::SAMPLE_ID_ALL | flag::NAMESPACES, vec![11])],
            &d,
        );
        let mut pd = PerfData::from_bytes(file).unwrap();
        let (mut general, mut fast) = (EventBuilder::new(), EventBuilder::new());
        let (mut sender, mut receiver) = (EventSender::new(), EventReceiver::new());
        let mut lines = Vec::new();
        let mut hot = 0;
        pd.for_each(Order::Time, |dec, v| -> Result<(), nswatch::DecodeError> {
            let want = general.decode(dec, v)?.map(|ev| ev.to_json());
            if let Some(h) = dec.hot(v) {
                hot += 1;
                assert_eq!(Some(fast.hot_event(&h).to_json()), want);
            }
            let mut sent = Vec::new();
            sender.send_record(dec, v, &mut sent)?;
            let got: Vec<String> = sent
                .iter()
                .filter_map(|s| receiver.receive(s, |ev| ev.to_json()))
                .collect();
            assert_eq!(got, want.iter().cloned().collect::<Vec<_>>());
            lines.extend(want);
            Ok(())
        })
        .unwrap();
        assert_eq!(hot, 90, "{endian:?}: every record read the fast way");
        seen.push(lines);
    }
    assert_eq!(seen[0], seen[1]);
    assert_eq!(seen[0].len(), 90);
}
