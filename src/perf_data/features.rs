//! perf.data feature sections (the `# hostname : …` lines of `perf report --header-only`).

use crate::bytes::Bytes;
use crate::record::BuildId;
use serde::Serialize;

/// Feature bit numbers (tools/perf/util/header.h, `HEADER_*`).
#[allow(missing_docs)]
pub mod feat {
    pub const TRACING_DATA: u32 = 1;
    pub const BUILD_ID: u32 = 2;
    pub const HOSTNAME: u32 = 3;
    pub const OSRELEASE: u32 = 4;
    pub const VERSION: u32 = 5;
    pub const ARCH: u32 = 6;
    pub const NRCPUS: u32 = 7;
    pub const CPUDESC: u32 = 8;
    pub const CPUID: u32 = 9;
    pub const TOTAL_MEM: u32 = 10;
    pub const CMDLINE: u32 = 11;
    pub const CLOCKID: u32 = 23;
    pub const CLOCK_DATA: u32 = 29;
    /// Number of bits of the feature bitmap in the file header.
    pub const BITS: u32 = 256;
}

/// The feature sections nswatch reads. Absent ones stay `None`; one whose own lengths
/// contradict it is damage, which [`Features::read`] reports.
///
/// ```
/// use nswatch::perf_data::PerfData;
///
/// let data = PerfData::open(std::path::Path::new("fixtures/samples.data"))?;
/// let f = &data.info().features;
/// assert!(f.os_release.is_some() && f.nr_cpus_online.is_some());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Features {
    /// Host name of the recording machine.
    pub hostname: Option<String>,
    /// Kernel release (`uname -r`).
    pub os_release: Option<String>,
    /// perf's version.
    pub perf_version: Option<String>,
    /// Machine architecture.
    pub arch: Option<String>,
    /// CPUs online when recording.
    pub nr_cpus_online: Option<u32>,
    /// CPUs available (possible).
    pub nr_cpus_avail: Option<u32>,
    /// The `perf record` command line.
    pub cmdline: Option<Vec<String>>,
    /// Resolution of the event clock, in ns (HEADER_CLOCKID).
    pub clock_res_ns: Option<u64>,
    /// The clock the events use (HEADER_CLOCK_DATA), when perf recorded one.
    pub clockid: Option<u32>,
    /// Wall-clock time (ns since the epoch) at `clock_ref_ns` of the event clock.
    pub clock_tod_ns: Option<u64>,
    /// Event-clock time that `clock_tod_ns` corresponds to.
    pub clock_ref_ns: Option<u64>,
    /// The build-ids perf recorded for the files its samples hit (HEADER_BUILD_ID, or the
    /// pipe's PERF_RECORD_HEADER_BUILD_ID records), as (path as mapped, build-id).
    #[serde(skip)]
    pub build_ids: Vec<(String, BuildId)>,
}

/// `header.misc` bit of a build-id entry whose `size` byte is valid (else the id is 20 bytes).
const MISC_BUILD_ID_SIZE: u16 = 1 << 15;

/// One `struct perf_record_header_build_id` at the start of `b`: (its size, the entry).
/// Layout: header {u32 type, u16 misc, u16 size}, i32 pid, u8 build_id[20], u8 size,
/// 3 reserved bytes, then the NUL-padded path up to `size`. `None` when it does not fit.
pub(crate) fn build_id_entry(b: &Bytes<'_>) -> Option<(usize, Option<(String, BuildId)>)> {
    let misc = b.u16(4)?;
    let size = b.u16(6)? as usize;
    if size < 36 || size > b.len() {
        return None;
    }
    let n = if misc & MISC_BUILD_ID_SIZE != 0 {
        (b.range(32, 33)?.to_contiguous()[0] as usize).min(20)
    } else {
        20
    };
    let id = BuildId::new(&b.range(12, 12 + n)?.to_contiguous());
    let name = b.c_str(36, size)?.into_owned();
    Some((size, id.map(|id| (name, id))))
}

/// `struct perf_header_string`: u32 length (padding included), then NUL-padded bytes.
fn string(b: &Bytes<'_>, off: &mut usize) -> Option<String> {
    let len = b.u32(*off)? as usize;
    let start = *off + 4;
    let end = start.checked_add(len)?;
    let s = b.c_str(start, end)?.into_owned();
    *off = end;
    Some(s)
}

impl Features {
    /// Name of feature `bit` (perf's `HEADER_*` without the prefix), for errors.
    pub fn name(bit: u32) -> &'static str {
        match bit {
            feat::HOSTNAME => "HOSTNAME",
            feat::OSRELEASE => "OSRELEASE",
            feat::VERSION => "VERSION",
            feat::ARCH => "ARCH",
            feat::NRCPUS => "NRCPUS",
            feat::CMDLINE => "CMDLINE",
            feat::CLOCKID => "CLOCKID",
            feat::CLOCK_DATA => "CLOCK_DATA",
            feat::BUILD_ID => "BUILD_ID",
            _ => "feature",
        }
    }

    /// Reads feature `bit` from its section bytes `b`; unknown bits (and versions) are
    /// ignored. Returns false when the section is too short for what it says it holds (a
    /// string or a count past its end), leaving the feature `None`.
    pub fn read(&mut self, bit: u32, b: &Bytes<'_>) -> bool {
        let mut off = 0;
        match bit {
            feat::HOSTNAME => self.hostname = string(b, &mut off),
            feat::OSRELEASE => self.os_release = string(b, &mut off),
            feat::VERSION => self.perf_version = string(b, &mut off),
            feat::ARCH => self.arch = string(b, &mut off),
            feat::NRCPUS => {
                self.nr_cpus_avail = b.u32(0);
                self.nr_cpus_online = b.u32(4);
                return self.nr_cpus_online.is_some();
            }
            feat::CMDLINE => {
                self.cmdline = (|| {
                    let n = b.u32(0)?;
                    off = 4;
                    // Each entry takes at least 4 bytes: bound the count by the section.
                    if n as usize > b.len() / 4 {
                        return None;
                    }
                    (0..n).map(|_| string(b, &mut off)).collect()
                })();
                return self.cmdline.is_some();
            }
            feat::BUILD_ID => {
                // Entries back to back to the section's end.
                while off < b.len() {
                    let Some((size, entry)) =
                        b.range(off, b.len()).and_then(|r| build_id_entry(&r))
                    else {
                        return false;
                    };
                    self.build_ids.extend(entry);
                    off += size;
                }
                return true;
            }
            feat::CLOCKID => {
                self.clock_res_ns = b.u64(0);
                return self.clock_res_ns.is_some();
            }
            // Version 1 is the only layout perf has written.
            feat::CLOCK_DATA if b.u32(0) == Some(1) => {
                self.clockid = b.u32(4);
                self.clock_tod_ns = b.u64(8);
                self.clock_ref_ns = b.u64(16);
                return self.clock_ref_ns.is_some();
            }
            _ => return true,
        }
        // The four strings.
        match bit {
            feat::HOSTNAME => self.hostname.is_some(),
            feat::OSRELEASE => self.os_release.is_some(),
            feat::VERSION => self.perf_version.is_some(),
            _ => self.arch.is_some(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bytes::Endian;

    #[test]
    fn build_id_entries_are_read_back_to_back_and_a_cut_one_is_damage() {
        let entry = |misc: u16, id: &[u8], size_byte: u8, name: &str| {
            let mut e = Vec::new();
            let len = (36 + name.len() + 1).next_multiple_of(8);
            e.extend_from_slice(&67u32.to_le_bytes());
            e.extend_from_slice(&misc.to_le_bytes());
            e.extend_from_slice(&(len as u16).to_le_bytes());
            e.extend_from_slice(&(-1i32).to_le_bytes());
            let mut b = [0u8; 20];
            b[..id.len()].copy_from_slice(id);
            e.extend_from_slice(&b);
            e.extend_from_slice(&[size_byte, 0, 0, 0]);
            e.extend_from_slice(name.as_bytes());
            e.resize(len, 0);
            e
        };
        let mut sec = entry(2, &[0xab; 20], 0, "/usr/lib/libc.so.6");
        sec.extend(entry(
            2 | MISC_BUILD_ID_SIZE,
            &[0x12; 16],
            16,
            "/opt/app/bin",
        ));
        let mut f = Features::default();
        assert!(f.read(feat::BUILD_ID, &Bytes::new(&sec, Endian::Little)));
        assert_eq!(f.build_ids.len(), 2);
        assert_eq!(f.build_ids[0].0, "/usr/lib/libc.so.6");
        assert_eq!(f.build_ids[0].1.as_bytes(), [0xab; 20]);
        assert_eq!(f.build_ids[1].0, "/opt/app/bin");
        assert_eq!(f.build_ids[1].1.to_string(), "12".repeat(16));
        // An entry whose size runs past the section.
        let cut = &sec[..sec.len() - 8];
        assert!(!Features::default().read(feat::BUILD_ID, &Bytes::new(cut, Endian::Little)));
    }

    #[test]
    fn reads_strings_and_rejects_absurd_counts() {
        let mut sec = Vec::new();
        sec.extend_from_slice(&8u32.to_le_bytes());
        sec.extend_from_slice(b"myhost\0\0");
        let mut f = Features::default();
        assert!(f.read(feat::HOSTNAME, &Bytes::new(&sec, Endian::Little)));
        assert_eq!(f.hostname.as_deref(), Some("myhost"));

        let bad = u32::MAX.to_le_bytes();
        assert!(!f.read(feat::CMDLINE, &Bytes::new(&bad, Endian::Little)));
        assert_eq!(f.cmdline, None);
        assert!(!f.read(feat::HOSTNAME, &Bytes::new(&bad, Endian::Little)));
        assert_eq!(f.hostname, None);
        assert!(
            f.read(200, &Bytes::new(&bad, Endian::Little)),
            "unknown bits are no damage"
        );
    }
}
