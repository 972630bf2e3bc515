//! Decoder throughput on a synthetic fork storm (~1,000,000 records).
//!
//!   CARGO_TARGET_DIR=/tmp/bench-target cargo bench --bench decode
//!
//! The buffer is what nswatch's live rings hold: little-endian records of one attr with
//! sample_type TID|TIME|CPU|IDENTIFIER and sample_id_all (a 32-byte trailer). The mix is a
//! fork storm as `perf record --namespaces` sees it: per child FORK, NAMESPACES (7 links) and
//! EXIT, and a COMM for one child in four (those that exec).
//!
//! Groups (throughput in records, or events, per second):
//!   walk           RecordView::parse only (header checks), record after record;
//!   decode         parse + Decoder::decode, every field read and summed (`contiguous`);
//!                  `hot`: Decoder::hot (the fast read `report` and `record` use for FORK,
//!                  EXIT and NAMESPACES, the links read into a set), decode for the rest;
//!   decode_split   the same decode when records are two-piece views (ring wrap):
//!                  `contiguous` (baseline), `ring_128p` (the wraps of a 128-page ring: a
//!                  few hundred records), `every_record` (every record cut in two inside);
//!   to_event_json  decode + EventBuilder::event + JSON into a reused Vec (cleared each
//!                  MiB): `json_writer` is what `report --format ndjson` runs;
//!                  `write_json` the uncached Event::write_json; `serde_json_to_writer`
//!                  the same line through serde_json::to_writer (Event has no Serialize:
//!                  a serde impl mirroring the schema lives below; its output is checked to
//!                  be byte-identical to JsonWriter's before timing).

use criterion::{
    black_box, criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use nswatch::attr::{flag, sample, Attr, SampleFormat};
use nswatch::bytes::{Bytes, Endian};
use nswatch::decoder::Hot;
use nswatch::event::{Body, Event, JsonWriter};
use nswatch::nsset::link_name;
use nswatch::record::encode::Encoder;
use nswatch::record::{NsLink, Record, RecordView, SampleId, TaskEvent};
use nswatch::{Decoder, EventBuilder};
use serde::ser::{Serialize, SerializeMap, Serializer};
use std::time::Duration;

const SAMPLE_TYPE: u64 = sample::TID | sample::TIME | sample::CPU | sample::IDENTIFIER;
const EVENT_ID: u64 = 42;
const TARGET_RECORDS: usize = 1_000_000;
/// Ring size of `nswatch record`'s default --ring-pages (128 pages of 4 KiB).
const RING: usize = 128 * 4096;
const FLUSH: usize = 1 << 20;

struct Input {
    buf: Vec<u8>,
    records: u64,
    /// For `every_record`: where each record is cut, 8-aligned, strictly inside it.
    cuts: Vec<u16>,
}

fn host_ns() -> [NsLink; 7] {
    std::array::from_fn(|k| NsLink {
        dev: 4,
        ino: 4026531840 + k as u64,
    })
}

/// A fork storm: a shell (pid 1000) forks children; one in 16 goes into "a container" (new
/// net, uts, ipc, pid, mnt), one in 4 execs (COMM), each exits.
fn build() -> Input {
    let enc = Encoder::new(Endian::Little, SampleFormat::new(SAMPLE_TYPE, 0, true));
    let host = host_ns();
    let mut buf = Vec::with_capacity(TARGET_RECORDS * 100);
    let mut records = 0u64;
    let mut time = 1_000_000_000u64;
    let parent = 1000u32;
    let mut i = 0u32;
    while (records as usize) < TARGET_RECORDS {
        let child = 2000 + (i % 4_000_000);
        let cpu = i % 2;
        let id = |pid, tid, time| SampleId {
            pid: Some(pid),
            tid: Some(tid),
            time: Some(time),
            id: Some(EVENT_ID),
            stream_id: None,
            cpu: Some(cpu),
        };
        let t = TaskEvent {
            pid: child,
            ppid: parent,
            tid: child,
            ptid: parent,
            time,
        };
        enc.task(&mut buf, true, &t, &id(parent, parent, time));
        time += 700;
        let mut links = host;
        if i.is_multiple_of(16) {
            let c = u64::from(i % 64) * 16;
            for k in [0usize, 1, 2, 3, 5] {
                links[k].ino = 4026532000 + c + k as u64;
            }
        }
        enc.namespaces(&mut buf, child, child, &links, &id(parent, parent, time));
        time += 300;
        records += 2;
        if i.is_multiple_of(4) {
            enc.comm(
                &mut buf,
                child,
                child,
                "true",
                true,
                &id(child, child, time),
            );
            time += 900;
            records += 1;
        }
        let t = TaskEvent { time, ..t };
        enc.task(&mut buf, false, &t, &id(child, child, time));
        time += 400;
        records += 1;
        i += 1;
    }
    let mut cuts = Vec::with_capacity(records as usize);
    let mut off = 0;
    let mut k = 0usize;
    while off < buf.len() {
        let size = u16::from_le_bytes([buf[off + 6], buf[off + 7]]) as usize;
        // Rotate through every 8-aligned cut inside the record, header and trailer included.
        let slots = size / 8 - 1;
        cuts.push((8 * (1 + k % slots)) as u16);
        k += 1;
        off += size;
    }
    assert_eq!(cuts.len() as u64, records);
    Input { buf, records, cuts }
}

fn decoder() -> Decoder {
    let mut d = Decoder::new();
    d.add_attr(
        Attr {
            sample_type: SAMPLE_TYPE,
            flags: flag::SAMPLE_ID_ALL,
            ..Default::default()
        },
        [EVENT_ID],
    );
    d
}

#[inline(always)]
fn size_at(buf: &[u8], off: usize) -> usize {
    u16::from_le_bytes([buf[off + 6], buf[off + 7]]) as usize
}

/// Reads every field a consumer would: the sum keeps the compiler from dropping any read.
#[inline(always)]
fn touch(rec: &Record<'_>, id: &SampleId) -> u64 {
    let mut s =
        id.time.unwrap_or(0) + u64::from(id.cpu.unwrap_or(0)) + u64::from(id.tid.unwrap_or(0));
    match rec {
        Record::Fork(t) | Record::Exit(t) => {
            s += u64::from(t.pid) + u64::from(t.ppid) + u64::from(t.tid) + t.time;
        }
        Record::Namespaces(ns) => {
            s += u64::from(ns.pid) + u64::from(ns.tid);
            for (_, l) in ns.iter() {
                s += l.ino + l.dev;
            }
        }
        Record::Comm(c) => s += u64::from(c.pid) + c.comm.len() as u64,
        _ => s += 1,
    }
    s
}

#[derive(Clone, Copy)]
enum Split {
    None,
    Ring,
    Every,
}

/// The view of the record at `off`, as a ring reader would build it.
#[inline(always)]
fn view_at<'a>(inp: &'a Input, off: usize, k: usize, split: Split) -> RecordView<'a> {
    let buf = &inp.buf;
    let bytes = match split {
        Split::None => Bytes::new(&buf[off..], Endian::Little),
        Split::Ring => {
            let size = size_at(buf, off);
            let lap_end = (off / RING + 1) * RING;
            if off + size > lap_end {
                Bytes::split(
                    &buf[off..lap_end],
                    &buf[lap_end..off + size],
                    Endian::Little,
                )
            } else {
                Bytes::new(&buf[off..off + size], Endian::Little)
            }
        }
        Split::Every => {
            let size = size_at(buf, off);
            let cut = off + inp.cuts[k] as usize;
            Bytes::split(&buf[off..cut], &buf[cut..off + size], Endian::Little)
        }
    };
    RecordView::parse(bytes, off as u64).expect("valid record")
}

fn decode_all(inp: &Input, dec: &Decoder, split: Split) -> u64 {
    let mut sum = 0u64;
    let (mut off, mut k) = (0, 0);
    while off < inp.buf.len() {
        let v = view_at(inp, off, k, split);
        let (rec, id) = dec.decode(&v).expect("decodes");
        sum = sum.wrapping_add(touch(&rec, &id));
        off += v.size();
        k += 1;
    }
    sum
}

/// The fast read where it applies (`Decoder::hot`), the decoding elsewhere.
fn hot_all(inp: &Input, dec: &Decoder) -> u64 {
    let mut sum = 0u64;
    let mut off = 0;
    while off < inp.buf.len() {
        let v = view_at(inp, off, 0, Split::None);
        sum = sum.wrapping_add(match dec.hot(&v) {
            Some(Hot::Task {
                pid,
                ppid,
                tid,
                ptid,
                time,
                cpu,
                ..
            }) => u64::from(pid ^ ppid ^ tid ^ ptid ^ cpu.unwrap_or(0)) ^ time,
            Some(Hot::Namespaces(h)) => {
                let set = nswatch::nsset::NsSet::from_record(&h.view());
                set.links()
                    .iter()
                    .fold(h.time.unwrap_or(0), |a, l| a ^ l.ino ^ l.dev)
                    ^ u64::from(h.pid ^ h.tid ^ h.cpu.unwrap_or(0))
            }
            None => {
                let (rec, id) = dec.decode(&v).expect("decodes");
                touch(&rec, &id)
            }
        });
        off += v.size();
    }
    sum
}

/// Event through serde: the same object, keys and order as the hand-written writer.
struct SerdeEvent<'e, 'a>(&'e Event<'a>);
struct SerdeNs<'e>(&'e nswatch::nsset::NsSet);
struct SerdeLink(NsLink);

impl Serialize for SerdeLink {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("dev", &self.0.dev)?;
        m.serialize_entry("ino", &self.0.ino)?;
        m.end()
    }
}

impl Serialize for SerdeNs<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let links = self.0.links();
        let mut m = s.serialize_map(Some(links.len()))?;
        for (i, l) in links.iter().enumerate() {
            m.serialize_entry(link_name(i), &SerdeLink(*l))?;
        }
        m.end()
    }
}

impl Serialize for SerdeEvent<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let e = self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("type", e.body.type_name())?;
        m.serialize_entry("time_ns", &e.time_ns)?;
        m.serialize_entry("cpu", &e.cpu)?;
        m.serialize_entry("pid", &e.pid)?;
        m.serialize_entry("tid", &e.tid)?;
        if e.synthesized {
            m.serialize_entry("synthesized", &true)?;
        }
        match &e.body {
            Body::Namespaces { ns, comm, .. } => {
                m.serialize_entry("ns", &SerdeNs(ns))?;
                if let Some(c) = comm {
                    m.serialize_entry("comm", c)?;
                }
            }
            Body::Fork { ppid, ptid } | Body::Exit { ppid, ptid } => {
                m.serialize_entry("ppid", ppid)?;
                m.serialize_entry("ptid", ptid)?;
            }
            Body::Comm { comm, exec } => {
                m.serialize_entry("comm", comm)?;
                m.serialize_entry("exec", exec)?;
            }
            Body::Cgroup { id, path } => {
                m.serialize_entry("id", id)?;
                m.serialize_entry("path", path)?;
            }
            Body::Lost { lost } | Body::LostSamples { lost } => m.serialize_entry("lost", lost)?,
            Body::Sample {
                ip,
                period,
                callchain,
            } => {
                if let Some(ip) = ip {
                    m.serialize_entry("ip", ip)?;
                }
                if let Some(p) = period {
                    m.serialize_entry("period", p)?;
                }
                if let Some(c) = callchain {
                    m.serialize_entry("callchain", c)?;
                }
            }
            // Live capture's eBPF events: never in this bench's input.
            Body::NsSyscall { .. } | Body::NsSyscallLost { .. } => {}
        }
        m.end()
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Json {
    Writer,
    Uncached,
    Serde,
}

/// Decode, build events and write them; returns the bytes written (lines are not kept).
fn to_json(inp: &Input, dec: &Decoder, how: Json, out: &mut Vec<u8>, keep: bool) -> u64 {
    let mut builder = EventBuilder::new();
    let mut w = JsonWriter::new();
    let mut total = 0u64;
    out.clear();
    let mut off = 0;
    while off < inp.buf.len() {
        let v = view_at(inp, off, 0, Split::None);
        off += v.size();
        let (rec, id) = dec.decode(&v).expect("decodes");
        if let Some(ev) = builder.event(&rec, &id) {
            match how {
                Json::Writer => w.write(&ev, out),
                Json::Uncached => ev.write_json(out),
                Json::Serde => {
                    serde_json::to_writer(&mut *out, &SerdeEvent(&ev)).expect("to Vec");
                    out.push(b'\n');
                }
            }
            if !keep && out.len() >= FLUSH {
                total += out.len() as u64;
                black_box(&out[..]);
                out.clear();
            }
        }
    }
    total + out.len() as u64
}

fn benches(c: &mut Criterion) {
    let inp = build();
    let dec = decoder();
    let n = inp.records;
    eprintln!(
        "# fork storm: {n} records, {:.1} MiB, {} wrap a {}-page ring",
        inp.buf.len() as f64 / (1 << 20) as f64,
        {
            let (mut off, mut wraps) = (0, 0);
            while off < inp.buf.len() {
                let size = size_at(&inp.buf, off);
                wraps += usize::from(off + size > (off / RING + 1) * RING);
                off += size;
            }
            wraps
        },
        RING / 4096
    );
    eprintln!(
        "# size_of: Result<(Record, SampleId), DecodeError> {} B, Record {} B, SampleId {} B, \
         DecodeError {} B, Event {} B",
        std::mem::size_of::<Result<(Record<'_>, SampleId), nswatch::DecodeError>>(),
        std::mem::size_of::<Record<'_>>(),
        std::mem::size_of::<SampleId>(),
        std::mem::size_of::<nswatch::DecodeError>(),
        std::mem::size_of::<Event<'_>>(),
    );
    // Every split variant reads the same values as the contiguous one.
    let base = decode_all(&inp, &dec, Split::None);
    assert_eq!(decode_all(&inp, &dec, Split::Ring), base);
    assert_eq!(decode_all(&inp, &dec, Split::Every), base);
    // The serde mirror writes the same bytes as JsonWriter (and as write_json).
    let mut a = Vec::new();
    let mut b = Vec::new();
    to_json(&inp, &dec, Json::Writer, &mut a, true);
    to_json(&inp, &dec, Json::Serde, &mut b, true);
    assert!(a == b, "serde mirror differs from JsonWriter");
    b.clear();
    to_json(&inp, &dec, Json::Uncached, &mut b, true);
    assert!(a == b, "write_json differs from JsonWriter");
    eprintln!(
        "# ndjson: {:.1} MiB, {:.0} bytes/line",
        a.len() as f64 / (1 << 20) as f64,
        a.len() as f64 / n as f64
    );
    drop((a, b));

    let mut g = c.benchmark_group("walk");
    g.throughput(Throughput::Elements(n));
    g.bench_function("parse", |bch| {
        bch.iter(|| {
            let mut sum = 0u64;
            let mut off = 0;
            while off < inp.buf.len() {
                let v = RecordView::parse(Bytes::new(&inp.buf[off..], Endian::Little), off as u64)
                    .expect("valid");
                sum = sum.wrapping_add(u64::from(v.ty) + u64::from(v.misc));
                off += v.size();
            }
            black_box(sum)
        })
    });
    g.finish();

    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(n));
    g.bench_function("contiguous", |bch| {
        bch.iter(|| black_box(decode_all(&inp, &dec, Split::None)))
    });
    g.bench_function("hot", |bch| bch.iter(|| black_box(hot_all(&inp, &dec))));
    g.finish();

    let mut g = c.benchmark_group("decode_split");
    g.throughput(Throughput::Elements(n));
    for (name, split) in [
        ("contiguous", Split::None),
        ("ring_128p", Split::Ring),
        ("every_record", Split::Every),
    ] {
        g.bench_with_input(BenchmarkId::from_parameter(name), &split, |bch, &s| {
            bch.iter(|| black_box(decode_all(&inp, &dec, s)))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("to_event_json");
    g.throughput(Throughput::Elements(n));
    // 100-300 ms an iteration: flat sampling (same count per sample) keeps the group short.
    g.sampling_mode(SamplingMode::Flat);
    g.measurement_time(Duration::from_secs(6));
    let mut out = Vec::with_capacity(FLUSH + 4096);
    for (name, how) in [
        ("json_writer", Json::Writer),
        ("write_json", Json::Uncached),
        ("serde_json_to_writer", Json::Serde),
    ] {
        g.bench_function(name, |bch| {
            bch.iter(|| black_box(to_json(&inp, &dec, how, &mut out, false)))
        });
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .without_plots()
}

criterion_group! {
    name = decode;
    config = config();
    targets = benches
}
criterion_main!(decode);
