//! Writes perf records: the inverse of the decoder, for round-trip tests, benchmarks and
//! synthetic inputs. Layouts follow include/uapi/linux/perf_event.h.

use super::{kind, NsLink, SampleId, TaskEvent, MISC_COMM_EXEC};
use crate::attr::{sample, SampleFormat};
use crate::bytes::Endian;

/// Appends records of one attr's layout to a byte buffer.
#[derive(Debug, Clone, Copy)]
pub struct Encoder {
    /// Byte order to write.
    pub endian: Endian,
    /// Layout of the attr the records belong to.
    pub format: SampleFormat,
}

/// The fields of a SAMPLE the encoder can write (those the decoder reads).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SampleFields {
    /// Identity fields (pid, tid, time, id, stream_id, cpu).
    pub id: SampleId,
    /// SAMPLE_IP.
    pub ip: u64,
    /// SAMPLE_ADDR.
    pub addr: u64,
    /// SAMPLE_PERIOD.
    pub period: u64,
    /// SAMPLE_CALLCHAIN.
    pub callchain: Vec<u64>,
}

impl Encoder {
    /// An encoder for `format` in `endian` order.
    pub fn new(endian: Endian, format: SampleFormat) -> Self {
        Encoder { endian, format }
    }

    fn u16(&self, out: &mut Vec<u8>, v: u16) {
        out.extend_from_slice(&match self.endian {
            Endian::Little => v.to_le_bytes(),
            Endian::Big => v.to_be_bytes(),
        });
    }

    fn u32(&self, out: &mut Vec<u8>, v: u32) {
        out.extend_from_slice(&match self.endian {
            Endian::Little => v.to_le_bytes(),
            Endian::Big => v.to_be_bytes(),
        });
    }

    fn u64(&self, out: &mut Vec<u8>, v: u64) {
        out.extend_from_slice(&match self.endian {
            Endian::Little => v.to_le_bytes(),
            Endian::Big => v.to_be_bytes(),
        });
    }

    /// Writes the header with a placeholder size; `finish` patches it.
    fn begin(&self, out: &mut Vec<u8>, ty: u32, misc: u16) -> usize {
        let start = out.len();
        self.u32(out, ty);
        self.u16(out, misc);
        self.u16(out, 0);
        start
    }

    fn finish(&self, out: &mut [u8], start: usize) {
        let size = (out.len() - start) as u16;
        let b = match self.endian {
            Endian::Little => size.to_le_bytes(),
            Endian::Big => size.to_be_bytes(),
        };
        out[start + 6..start + 8].copy_from_slice(&b);
    }

    fn string(&self, out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(s.as_bytes());
        let pad = 8 - s.len() % 8; // at least one NUL, then 8-alignment
        out.extend(std::iter::repeat_n(0, pad));
    }

    fn trailer(&self, out: &mut Vec<u8>, id: &SampleId) {
        if !self.format.sample_id_all {
            return;
        }
        let f = &self.format;
        if f.has(sample::TID) {
            self.u32(out, id.pid.unwrap_or(0));
            self.u32(out, id.tid.unwrap_or(0));
        }
        if f.has(sample::TIME) {
            self.u64(out, id.time.unwrap_or(0));
        }
        if f.has(sample::ID) {
            self.u64(out, id.id.unwrap_or(0));
        }
        if f.has(sample::STREAM_ID) {
            self.u64(out, id.stream_id.unwrap_or(0));
        }
        if f.has(sample::CPU) {
            self.u32(out, id.cpu.unwrap_or(0));
            self.u32(out, 0);
        }
        if f.has(sample::IDENTIFIER) {
            self.u64(out, id.id.unwrap_or(0));
        }
    }

    /// PERF_RECORD_NAMESPACES with `links` in kernel index order.
    pub fn namespaces(
        &self,
        out: &mut Vec<u8>,
        pid: u32,
        tid: u32,
        links: &[NsLink],
        id: &SampleId,
    ) {
        let s = self.begin(out, kind::NAMESPACES, 0);
        self.u32(out, pid);
        self.u32(out, tid);
        self.u64(out, links.len() as u64);
        for l in links {
            self.u64(out, l.dev);
            self.u64(out, l.ino);
        }
        self.trailer(out, id);
        self.finish(out, s);
    }

    /// PERF_RECORD_FORK (`fork` true) or PERF_RECORD_EXIT.
    pub fn task(&self, out: &mut Vec<u8>, fork: bool, t: &TaskEvent, id: &SampleId) {
        let s = self.begin(out, if fork { kind::FORK } else { kind::EXIT }, 0);
        self.u32(out, t.pid);
        self.u32(out, t.ppid);
        self.u32(out, t.tid);
        self.u32(out, t.ptid);
        self.u64(out, t.time);
        self.trailer(out, id);
        self.finish(out, s);
    }

    /// PERF_RECORD_COMM.
    pub fn comm(
        &self,
        out: &mut Vec<u8>,
        pid: u32,
        tid: u32,
        comm: &str,
        exec: bool,
        id: &SampleId,
    ) {
        let s = self.begin(out, kind::COMM, if exec { MISC_COMM_EXEC } else { 0 });
        self.u32(out, pid);
        self.u32(out, tid);
        self.string(out, comm);
        self.trailer(out, id);
        self.finish(out, s);
    }

    /// PERF_RECORD_CGROUP.
    pub fn cgroup(&self, out: &mut Vec<u8>, cgroup_id: u64, path: &str, id: &SampleId) {
        let s = self.begin(out, kind::CGROUP, 0);
        self.u64(out, cgroup_id);
        self.string(out, path);
        self.trailer(out, id);
        self.finish(out, s);
    }

    /// PERF_RECORD_LOST.
    pub fn lost(&self, out: &mut Vec<u8>, event_id: u64, lost: u64, id: &SampleId) {
        let s = self.begin(out, kind::LOST, 0);
        self.u64(out, event_id);
        self.u64(out, lost);
        self.trailer(out, id);
        self.finish(out, s);
    }

    /// PERF_RECORD_LOST_SAMPLES.
    pub fn lost_samples(&self, out: &mut Vec<u8>, lost: u64, id: &SampleId) {
        let s = self.begin(out, kind::LOST_SAMPLES, 0);
        self.u64(out, lost);
        self.trailer(out, id);
        self.finish(out, s);
    }

    /// PERF_RECORD_THROTTLE (`throttle` true) or UNTHROTTLE.
    pub fn throttle(
        &self,
        out: &mut Vec<u8>,
        throttle: bool,
        time: u64,
        event_id: u64,
        stream_id: u64,
        id: &SampleId,
    ) {
        let s = self.begin(
            out,
            if throttle {
                kind::THROTTLE
            } else {
                kind::UNTHROTTLE
            },
            0,
        );
        self.u64(out, time);
        self.u64(out, event_id);
        self.u64(out, stream_id);
        self.trailer(out, id);
        self.finish(out, s);
    }

    /// A perf user record with no body (FINISHED_ROUND, FINISHED_INIT).
    pub fn empty(&self, out: &mut Vec<u8>, ty: u32) {
        let s = self.begin(out, ty, 0);
        self.finish(out, s);
    }

    /// PERF_RECORD_SAMPLE with the fields up to the callchain (READ is not written: the
    /// format must not have it).
    pub fn sample(&self, out: &mut Vec<u8>, f: &SampleFields) {
        let fmt = &self.format;
        let s = self.begin(out, kind::SAMPLE, 0);
        if fmt.has(sample::IDENTIFIER) {
            self.u64(out, f.id.id.unwrap_or(0));
        }
        if fmt.has(sample::IP) {
            self.u64(out, f.ip);
        }
        if fmt.has(sample::TID) {
            self.u32(out, f.id.pid.unwrap_or(0));
            self.u32(out, f.id.tid.unwrap_or(0));
        }
        if fmt.has(sample::TIME) {
            self.u64(out, f.id.time.unwrap_or(0));
        }
        if fmt.has(sample::ADDR) {
            self.u64(out, f.addr);
        }
        if fmt.has(sample::ID) {
            self.u64(out, f.id.id.unwrap_or(0));
        }
        if fmt.has(sample::STREAM_ID) {
            self.u64(out, f.id.stream_id.unwrap_or(0));
        }
        if fmt.has(sample::CPU) {
            self.u32(out, f.id.cpu.unwrap_or(0));
            self.u32(out, 0);
        }
        if fmt.has(sample::PERIOD) {
            self.u64(out, f.period);
        }
        if fmt.has(sample::CALLCHAIN) {
            self.u64(out, f.callchain.len() as u64);
            for ip in &f.callchain {
                self.u64(out, *ip);
            }
        }
        self.finish(out, s);
    }
}
