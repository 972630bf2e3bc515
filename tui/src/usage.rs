//! CPU and memory of a group, read from its own cgroup.
//!
//! cgroup v2 gives `cpu.stat` (`usage_usec`) and `memory.current`; v1 gives
//! `cpuacct.usage` (ns) and `memory.usage_in_bytes`. On a hybrid machine a group's cgroup
//! may have either, so each figure is taken from the first hierarchy whose directory for
//! the path has the file. The mounts are found once in /proc/self/mountinfo; the files are
//! read at the screen's refresh, for the groups on screen only, never per event.

use hashbrown::HashMap;
use std::path::PathBuf;
use std::time::Instant;

/// Where the cgroup hierarchies that hold the figures are mounted.
#[derive(Debug, Clone, Default)]
pub struct Mounts {
    /// The cgroup2 mount (`/sys/fs/cgroup`, or `/sys/fs/cgroup/unified` on hybrid).
    pub v2: Option<PathBuf>,
    /// The v1 hierarchy with the `cpuacct` controller.
    pub cpuacct: Option<PathBuf>,
    /// The v1 hierarchy with the `memory` controller.
    pub memory: Option<PathBuf>,
}

impl Mounts {
    /// The mounts of this machine, from /proc/self/mountinfo (none when unreadable).
    pub fn of_this_machine() -> Mounts {
        std::fs::read_to_string("/proc/self/mountinfo")
            .map(|t| Mounts::parse(&t))
            .unwrap_or_default()
    }

    /// The mounts a mountinfo text lists: the first of each kind, mounted at the root of
    /// its hierarchy (a bind of a sub-cgroup would give wrong paths).
    pub fn parse(mountinfo: &str) -> Mounts {
        let mut m = Mounts::default();
        for line in mountinfo.lines() {
            // id parent major:minor root mountpoint options [optional...] - fstype source super
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let f: Vec<&str> = left.split(' ').collect();
            let r: Vec<&str> = right.split(' ').collect();
            if f.len() < 5 || r.len() < 3 || f[3] != "/" {
                continue;
            }
            let at = PathBuf::from(unescape(f[4]));
            let opts = |name: &str| r[2].split(',').any(|o| o == name);
            match r[0] {
                "cgroup2" if m.v2.is_none() => m.v2 = Some(at),
                "cgroup" if opts("cpuacct") && m.cpuacct.is_none() => m.cpuacct = Some(at),
                "cgroup" if opts("memory") && m.memory.is_none() => m.memory = Some(at),
                _ => {}
            }
        }
        m
    }
}

/// mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            if let Some(v) = std::str::from_utf8(&b[i + 1..i + 4])
                .ok()
                .and_then(|d| u8::from_str_radix(d, 8).ok())
            {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What one cgroup uses now.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Reading {
    /// CPU time used since the cgroup was made, ns.
    pub cpu_ns: Option<u64>,
    /// Memory charged to it, bytes.
    pub mem_bytes: Option<u64>,
}

/// Reads the figures of cgroup `path` (as /proc/PID/cgroup writes it) under `mounts`.
pub fn read(mounts: &Mounts, path: &str) -> Reading {
    read_with(mounts, path, None)
}

/// [`read`], where a hierarchy's own line in `proc_cgroup` (a member task's
/// /proc/PID/cgroup text) gives that hierarchy's path first: on a hybrid machine the v1
/// memory hierarchy may hold the group at another path than the one it was named from.
pub fn read_with(mounts: &Mounts, path: &str, proc_cgroup: Option<&str>) -> Reading {
    // The path a hierarchy's line gives: "0::/p" for v2, "4:memory:/p" for a v1 one.
    let line_path = |controller: Option<&str>| -> Option<&str> {
        proc_cgroup?.lines().find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (id, ctl, p) = (f.next()?, f.next()?, f.next()?);
            let hit = match controller {
                None => id == "0" && ctl.is_empty(),
                Some(c) => ctl.split(',').any(|x| x == c),
            };
            hit.then_some(p)
        })
    };
    let file = |base: &Option<PathBuf>, controller: Option<&str>, name: &str| {
        let base = base.as_ref()?;
        line_path(controller)
            .into_iter()
            .chain([path])
            .find_map(|p| {
                std::fs::read_to_string(base.join(p.trim_start_matches('/')).join(name)).ok()
            })
    };
    let v2_cpu = file(&mounts.v2, None, "cpu.stat").and_then(|t| {
        t.lines()
            .find_map(|l| l.strip_prefix("usage_usec "))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|us| us * 1000)
    });
    let cpu_ns = v2_cpu.or_else(|| {
        file(&mounts.cpuacct, Some("cpuacct"), "cpuacct.usage").and_then(|t| t.trim().parse().ok())
    });
    let mem_bytes = file(&mounts.v2, None, "memory.current")
        .and_then(|t| t.trim().parse().ok())
        .or_else(|| {
            file(&mounts.memory, Some("memory"), "memory.usage_in_bytes")
                .and_then(|t| t.trim().parse().ok())
        });
    Reading { cpu_ns, mem_bytes }
}

/// CPU (percent of one core) and memory of a group, as shown.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Usage {
    /// Percent of one core over the last interval; `None` until two readings, or where
    /// the cgroup gives no CPU figure.
    pub cpu_pct: Option<f64>,
    /// Bytes.
    pub mem_bytes: Option<u64>,
}

/// Readings of the groups' cgroups over time, turned into [`Usage`].
#[derive(Debug, Default)]
pub struct Sampler {
    mounts: Mounts,
    last: HashMap<String, (u64, Instant)>,
}

impl Sampler {
    /// A sampler reading the hierarchies at `mounts`.
    pub fn new(mounts: Mounts) -> Sampler {
        Sampler {
            mounts,
            last: HashMap::new(),
        }
    }

    /// Reads each of `cgroups` (paths, each with a member task's pid) now; the CPU share is the CPU time used since its
    /// previous reading over the wall time between them. Paths not read this time are
    /// forgotten.
    pub fn sample<'a>(
        &mut self,
        cgroups: impl IntoIterator<Item = (&'a str, u32)>,
    ) -> HashMap<String, Usage> {
        let now = Instant::now();
        let mut out = HashMap::new();
        let mut last = HashMap::new();
        for (path, pid) in cgroups {
            if out.contains_key(path) {
                continue;
            }
            let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok();
            let r = read_with(&self.mounts, path, own.as_deref());
            let cpu_pct = r.cpu_ns.and_then(|ns| {
                last.insert(path.to_string(), (ns, now));
                let (prev, at) = self.last.get(path)?;
                let dt = now.duration_since(*at).as_secs_f64();
                (dt > 0.0).then(|| ns.saturating_sub(*prev) as f64 / 1e9 / dt * 100.0)
            });
            out.insert(
                path.to_string(),
                Usage {
                    cpu_pct,
                    mem_bytes: r.mem_bytes,
                },
            );
        }
        self.last = last;
        out
    }
}

/// True when `path` is a container's own cgroup as a runtime lays it out, whose figures
/// are the container's. A sandbox made by `unshare` stays in its creator's cgroup, shared
/// with other processes: those figures would not be its own.
pub fn own_cgroup(path: &str) -> bool {
    nswatch::model::cgroup::name_path(path).is_container()
}

/// `n` bytes in at most 5 characters: "512K", "1.2G".
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "K", "M", "G", "T"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n}B")
    } else if v < 10.0 {
        format!("{v:.1}{}", UNITS[u])
    } else {
        format!("{v:.0}{}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn mounts_of_a_hybrid_machine() {
        let text = "\
30 25 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
33 30 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
35 30 0:31 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
36 30 0:32 /sub /mnt/bind rw - cgroup cgroup rw,memory
";
        let m = Mounts::parse(text);
        assert_eq!(m.v2.as_deref(), Some(Path::new("/sys/fs/cgroup/unified")));
        assert_eq!(
            m.cpuacct.as_deref(),
            Some(Path::new("/sys/fs/cgroup/cpu,cpuacct"))
        );
        assert_eq!(
            m.memory.as_deref(),
            Some(Path::new("/sys/fs/cgroup/memory"))
        );
    }

    #[test]
    fn v2_then_v1_files_are_read_from_a_tree() {
        let dir = tempfile::tempdir().unwrap();
        let v2 = dir.path().join("v2");
        let v1 = dir.path().join("acct");
        let mem = dir.path().join("mem");
        std::fs::create_dir_all(v2.join("a/b")).unwrap();
        std::fs::create_dir_all(v1.join("a/b")).unwrap();
        std::fs::create_dir_all(mem.join("a/b")).unwrap();
        // v2 has CPU only (no memory controller enabled there): memory comes from v1.
        std::fs::write(v2.join("a/b/cpu.stat"), "usage_usec 1500\nuser_usec 1000\n").unwrap();
        std::fs::write(v1.join("a/b/cpuacct.usage"), "99\n").unwrap();
        std::fs::write(mem.join("a/b/memory.usage_in_bytes"), "4096\n").unwrap();
        let m = Mounts {
            v2: Some(v2),
            cpuacct: Some(v1.clone()),
            memory: Some(mem.clone()),
        };
        let r = read(&m, "/a/b");
        assert_eq!(r.cpu_ns, Some(1_500_000));
        assert_eq!(r.mem_bytes, Some(4096));
        // A task's own line moves the v1 memory path (hybrid: memory elsewhere).
        std::fs::create_dir_all(mem.join("x/a/b")).unwrap();
        std::fs::write(mem.join("x/a/b/memory.usage_in_bytes"), "8192\n").unwrap();
        let m2 = Mounts {
            v2: m.v2.clone(),
            cpuacct: m.cpuacct.clone(),
            memory: Some(mem.clone()),
        };
        let r = read_with(
            &m2,
            "/a/b",
            Some("4:memory:/x/a/b\n2:cpuacct:/a/b\n0::/a/b\n"),
        );
        assert_eq!(r.mem_bytes, Some(8192));
        // v1 alone.
        let m = Mounts {
            v2: None,
            cpuacct: Some(v1),
            memory: None,
        };
        assert_eq!(
            read(&m, "/a/b"),
            Reading {
                cpu_ns: Some(99),
                mem_bytes: None
            }
        );
    }

    #[test]
    fn bytes_for_people() {
        assert_eq!(human_bytes(512), "512B");
        assert_eq!(human_bytes(4096), "4.0K");
        assert_eq!(human_bytes(300 << 20), "300M");
        assert_eq!(human_bytes(3 << 30), "3.0G");
    }
}
