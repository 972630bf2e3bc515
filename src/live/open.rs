//! Opening the per-CPU side-band events, with errors that say which limit or privilege is
//! missing.

use crate::attr::{flag, sample, Attr};
use crate::record::NS_KINDS;
use perf_event_open_sys::bindings::{perf_event_attr, PERF_COUNT_SW_DUMMY, PERF_TYPE_SOFTWARE};
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// The layout of every record nswatch's rings carry: TID, TIME, CPU and IDENTIFIER in the
/// sample_id trailer.
pub const SAMPLE_TYPE: u64 = sample::TID | sample::TIME | sample::CPU | sample::IDENTIFIER;

/// The attr nswatch opens on each CPU: a software dummy event (it counts nothing) that asks
/// for task, comm, namespaces and cgroup records, timed by CLOCK_MONOTONIC so that eBPF
/// events (bpf_ktime_get_ns) share the clock, and woken up by a byte watermark.
pub fn side_band_attr(watermark_bytes: u32) -> perf_event_attr {
    let mut a = perf_event_attr {
        type_: PERF_TYPE_SOFTWARE,
        size: std::mem::size_of::<perf_event_attr>() as u32,
        config: PERF_COUNT_SW_DUMMY as u64,
        sample_type: SAMPLE_TYPE,
        ..Default::default()
    };
    a.set_disabled(1);
    a.set_task(1);
    a.set_comm(1);
    a.set_comm_exec(1);
    a.set_namespaces(1);
    a.set_cgroup(1);
    a.set_sample_id_all(1);
    a.set_use_clockid(1);
    a.clockid = libc::CLOCK_MONOTONIC;
    a.set_watermark(1);
    a.__bindgen_anon_2.wakeup_watermark = watermark_bytes;
    // read() then tells whether the event still runs: a CPU taken offline removes its
    // events for good (they stay off when it comes back), and their enabled time stops.
    a.read_format = READ_FORMAT;
    a
}

/// What read() of a side-band event gives: the (dummy) count, then the time enabled.
const READ_FORMAT: u64 = perf_event_open_sys::bindings::PERF_FORMAT_TOTAL_TIME_ENABLED as u64;

/// The time a side-band event has been enabled, in ns (it stops when the event is
/// removed from its CPU: the CPU went offline).
pub fn time_enabled(fd: &OwnedFd) -> io::Result<u64> {
    let mut v = [0u64; 2];
    // SAFETY: read into a buffer of the size given.
    let n = unsafe { libc::read(fd.as_raw_fd(), v.as_mut_ptr().cast(), 16) };
    if n != 16 {
        return Err(if n < 0 {
            io::Error::last_os_error()
        } else {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("read {n} of 16 bytes"),
            )
        });
    }
    Ok(v[1])
}

/// The namespace files of nswatch's own process that NAMESPACES records link to, held
/// open for as long as the rings are.
///
/// For each link of each NAMESPACES record the kernel takes the namespace's nsfs dentry
/// (`ns_get_path`) and puts it back. nsfs keeps no unused dentry: with no file open on the
/// namespace, every record allocates a dentry and an inode for each of its 7 links and
/// frees them again through RCU (the callbacks then run on whatever CPU, charged to
/// whatever task runs there). An open file keeps the dentry, and the record only takes a
/// reference. nswatch's own namespaces are the host's where it usually runs, those of
/// most tasks, and they live while nswatch does anyway: holding them changes no
/// namespace's lifetime. Best effort: a file that cannot be opened is left out.
pub fn pin_own_namespaces() -> Vec<OwnedFd> {
    NS_KINDS
        .iter()
        .filter_map(|k| std::fs::File::open(format!("/proc/self/ns/{}", k.name())).ok())
        .map(OwnedFd::from)
        .collect()
}

/// The decoder's view of [`side_band_attr`].
pub fn side_band_decoder_attr() -> Attr {
    Attr {
        kind: PERF_TYPE_SOFTWARE,
        config: PERF_COUNT_SW_DUMMY as u64,
        sample_type: SAMPLE_TYPE,
        read_format: READ_FORMAT,
        flags: flag::TASK
            | flag::COMM
            | flag::COMM_EXEC
            | flag::NAMESPACES
            | flag::CGROUP
            | flag::SAMPLE_ID_ALL
            | flag::USE_CLOCKID,
        clockid: libc::CLOCK_MONOTONIC,
    }
}

/// Why live capture cannot start, said so that the user knows what to change.
#[derive(Debug)]
pub enum OpenError {
    /// Not permitted: not root and no CAP_PERFMON (or CAP_SYS_ADMIN). perf_event_open
    /// refuses `attr.namespaces` without them whatever perf_event_paranoid is.
    NotPermitted {
        /// /proc/sys/kernel/perf_event_paranoid, if readable.
        paranoid: Option<i32>,
        /// The errno.
        err: io::Error,
    },
    /// Out of file descriptors (RLIMIT_NOFILE).
    TooManyFiles(io::Error),
    /// The ring cannot be mapped: locked-memory limit.
    LockedMemory {
        /// Bytes asked for.
        bytes: usize,
        /// RLIMIT_MEMLOCK soft limit.
        limit: Option<u64>,
        /// /proc/sys/kernel/perf_event_mlock_kb.
        mlock_kb: Option<u64>,
        /// The errno.
        err: io::Error,
    },
    /// The kernel rejects the attr: no namespaces (or cgroup, clockid) support.
    Unsupported(io::Error),
    /// Anything else, with the CPU it happened on.
    Other {
        /// CPU.
        cpu: u32,
        /// What was being done.
        what: &'static str,
        /// The errno.
        err: io::Error,
    },
}

fn read_num<T: std::str::FromStr>(path: &str) -> Option<T> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::NotPermitted { paranoid, err } => write!(
                f,
                "perf_event_open: {err}: namespace records need root or CAP_PERFMON \
                 (CAP_SYS_ADMIN before Linux 5.8) at any kernel.perf_event_paranoid \
                 (here kernel.perf_event_paranoid is {}; lowering it does not help); run as \
                 root, or give the binary the capabilities: setcap cap_perfmon,cap_bpf+ep PATH",
                paranoid.map_or("unreadable".to_string(), |p| p.to_string())
            ),
            OpenError::TooManyFiles(err) => write!(
                f,
                "perf_event_open: {err}: one fd per CPU is needed; raise the open-files limit \
                 (ulimit -n, RLIMIT_NOFILE)"
            ),
            OpenError::LockedMemory {
                bytes,
                limit,
                mlock_kb,
                err,
            } => write!(
                f,
                "mmap of a {bytes}-byte ring: {err}: over the locked-memory limit \
                 (ulimit -l = {}, kernel.perf_event_mlock_kb = {}); use --ring-pages to ask less \
                 or raise the limit",
                limit.map_or("?".to_string(), |l| if l == u64::MAX {
                    "unlimited".to_string()
                } else {
                    format!("{} KiB", l / 1024)
                }),
                mlock_kb.map_or("?".to_string(), |k| k.to_string())
            ),
            OpenError::Unsupported(err) => write!(
                f,
                "perf_event_open: {err}: this kernel does not support namespaces records \
                 (Linux 4.12+), cgroup records (5.7+) or CLOCK_MONOTONIC event times"
            ),
            OpenError::Other { cpu, what, err } => write!(f, "{what} on cpu {cpu}: {err}"),
        }
    }
}

impl std::error::Error for OpenError {}

/// Opens the side-band event on `cpu` for all tasks.
pub fn open_cpu(cpu: u32, watermark_bytes: u32) -> Result<OwnedFd, OpenError> {
    let mut attr = side_band_attr(watermark_bytes);
    // SAFETY: attr is a valid, fully initialised perf_event_attr.
    let fd = unsafe {
        perf_event_open_sys::perf_event_open(
            &mut attr,
            -1,
            cpu as i32,
            -1,
            perf_event_open_sys::bindings::PERF_FLAG_FD_CLOEXEC as libc::c_ulong,
        )
    };
    if fd < 0 {
        let err = io::Error::last_os_error();
        return Err(match err.raw_os_error() {
            Some(libc::EACCES) | Some(libc::EPERM) => OpenError::NotPermitted {
                paranoid: read_num("/proc/sys/kernel/perf_event_paranoid"),
                err,
            },
            Some(libc::EMFILE) | Some(libc::ENFILE) => OpenError::TooManyFiles(err),
            Some(libc::EINVAL) | Some(libc::E2BIG) | Some(libc::EOPNOTSUPP) => {
                OpenError::Unsupported(err)
            }
            _ => OpenError::Other {
                cpu,
                what: "perf_event_open",
                err,
            },
        });
    }
    // SAFETY: a fresh fd owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Turns an mmap failure into a message about the locked-memory limit when that is the
/// cause (EPERM/ENOMEM from perf's mlock accounting).
pub fn map_error(cpu: u32, bytes: usize, err: io::Error) -> OpenError {
    match err.raw_os_error() {
        Some(libc::EPERM) | Some(libc::ENOMEM) => {
            let mut rl = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: getrlimit writes the struct we pass.
            let limit = (unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut rl) } == 0)
                .then_some(rl.rlim_cur);
            OpenError::LockedMemory {
                bytes,
                limit,
                mlock_kb: read_num("/proc/sys/kernel/perf_event_mlock_kb"),
                err,
            }
        }
        _ => OpenError::Other {
            cpu,
            what: "mmap of the ring",
            err,
        },
    }
}

/// The CPUs that are online now (/sys/devices/system/cpu/online, "0-3,5").
pub fn online_cpus() -> io::Result<Vec<u32>> {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/online")?;
    parse_cpu_list(text.trim())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("cpu list {text:?}")))
}

/// Parses a kernel cpu list ("0-3,5,7-8").
pub fn parse_cpu_list(s: &str) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
                if b < a {
                    return None;
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse().ok()?),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-3,5,7-8"), Some(vec![0, 1, 2, 3, 5, 7, 8]));
        assert_eq!(parse_cpu_list("0"), Some(vec![0]));
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_list("x"), None);
    }

    #[test]
    fn decoder_attr_matches_the_opened_one() {
        let a = side_band_attr(4096);
        let d = side_band_decoder_attr();
        assert_eq!(a.sample_type, d.sample_type);
        let flags_word = {
            // The attr's bitfield word sits at byte 40, as in a perf.data file.
            let bytes: [u8; std::mem::size_of::<perf_event_attr>()] =
                unsafe { std::mem::transmute(a) };
            u64::from_ne_bytes(bytes[40..48].try_into().unwrap())
        };
        for f in [
            flag::TASK,
            flag::COMM,
            flag::NAMESPACES,
            flag::CGROUP,
            flag::SAMPLE_ID_ALL,
            flag::USE_CLOCKID,
        ] {
            assert_ne!(flags_word & f, 0, "flag {f:#x}");
        }
    }
}
