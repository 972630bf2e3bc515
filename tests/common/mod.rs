//! Shared by the integration tests (the nswatch package's and the tui crate's): perf
//! script's side-band lines, parsed, and nswatch's decoding of the same file in the same
//! shape, so the two can be compared record for record.
#![allow(dead_code)]

pub mod bounded;
pub mod machine;
pub mod planted;
pub mod recording;
pub mod rootfs;
pub mod runtimes;

use nswatch::event::{Body, EventBuilder};
use nswatch::nsset::link_name;
use nswatch::{Order, PerfData};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository's top directory (the tui crate's tests run from tui/).
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|d| d.join("fixtures").is_dir() && d.join("src/lib.rs").is_file())
        .expect("the repository above the crate")
}

/// Copies the executable `from` to `to`, for a test to run it from there, and returns once
/// it can be run ([`runnable`]).
pub fn copy_exe(from: &Path, to: &Path, probe: &[&str]) {
    std::fs::copy(from, to)
        .unwrap_or_else(|e| panic!("copy {} to {}: {e}", from.display(), to.display()));
    runnable(to, probe);
}

/// Returns once the executable just written at `path` can be run. A file just written may
/// still be open for writing in a child that another test thread forked meanwhile (until
/// that child execs), and exec fails with ETXTBSY while it is: `path probe…` is run (its
/// output dropped) until it gets past that, for up to 2 s. No child holds the file open
/// after that, so whatever runs it next runs.
pub fn runnable(path: &Path, probe: &[&str]) {
    for _ in 0..100 {
        let run = Command::new(path)
            .args(probe)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        match run {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            Err(e) => panic!("run {}: {e}", path.display()),
            Ok(_) => return,
        }
    }
    panic!("{}: text file busy for 2 s", path.display());
}

/// The nswatch binary under test. The tui crate's tests have only their own binaries built
/// for them, so they take the one cargo built beside `nswatch-top` (`cargo test
/// --workspace` builds both).
pub fn nswatch_bin() -> PathBuf {
    if let Some(bin) = option_env!("CARGO_BIN_EXE_nswatch") {
        return bin.into();
    }
    let Some(top) = option_env!("CARGO_BIN_EXE_nswatch-top") else {
        panic!("neither nswatch nor nswatch-top is a binary of this test's package");
    };
    let bin = Path::new(top).with_file_name("nswatch");
    assert!(
        bin.is_file(),
        "{} is not built: run the tests with `cargo test --workspace`, or `cargo build -p nswatch` first",
        bin.display()
    );
    bin
}

/// A file of fixtures/.
pub fn fixture(name: &str) -> PathBuf {
    repo_root().join("fixtures").join(name)
}

/// Every capture of fixtures/ (`*.data`), in name order; there are at least 7.
pub fn fixture_captures() -> Vec<PathBuf> {
    let dir = repo_root().join("fixtures");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "data"))
        .collect();
    files.sort();
    assert!(files.len() >= 7, "{} captures in fixtures/", files.len());
    files
}

/// Builds the test program at `source` (relative to the crate, e.g. "tests/progs/ns_calls.c")
/// with the machine's cc, once per test binary, and returns the executable's path.
pub fn build_c(source: &str) -> PathBuf {
    static BUILT: std::sync::Mutex<Vec<(String, PathBuf)>> = std::sync::Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, bin)) = built.iter().find(|(s, _)| s == source) {
        return bin.clone();
    }
    let stem = Path::new(source).file_stem().unwrap().to_str().unwrap();
    let dir = std::env::temp_dir().join(format!("nswatch-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bin = dir.join(stem);
    let out = Command::new("cc")
        .args(["-O2", "-Wall", "-pthread", "-o"])
        .arg(&bin)
        .arg(repo_root().join(source))
        .output()
        .expect("run cc");
    assert!(
        out.status.success(),
        "cc {source} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    built.push((source.to_string(), bin.clone()));
    bin
}

/// Runs the nswatch binary under test with `args`; its standard output, after checking it
/// succeeded (standard error in the message otherwise).
pub fn nswatch(args: &[&str]) -> String {
    let out = Command::new(nswatch_bin()).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "nswatch {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// One record as both sides see it: type, time, cpu, pid, tid and a normalised payload.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rec {
    pub time_ns: u64,
    pub kind: String,
    pub cpu: u32,
    pub pid: u32,
    pub tid: u32,
    pub detail: String,
}

/// The perf script options whose output `parse_script` reads.
pub const SCRIPT_ARGS: &[&str] = &[
    "script",
    "--ns",
    "--show-namespace-events",
    "--show-task-events",
    "--show-cgroup-events",
    "--show-lost-events",
    "-F",
    "comm,tid,pid,time,cpu",
];

fn parse_pair(s: &str, sep: char) -> (u32, u32) {
    let (a, b) = s
        .split_once(sep)
        .unwrap_or_else(|| panic!("no {sep} in {s:?}"));
    (a.trim().parse().unwrap(), b.trim().parse().unwrap())
}

/// Parses `perf script` output made with [`SCRIPT_ARGS`].
pub fn parse_script(text: &str) -> Vec<Rec> {
    let mut out: Vec<Rec> = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        // "COMM PID/TID [CPU] SEC.NSEC: [PERF_RECORD_… payload]"; COMM may contain spaces,
        // so the line is read from the " [CPU] " marker.
        let Some(bracket) = line.find(" [") else {
            continue;
        };
        let head = &line[..bracket];
        let rest = &line[bracket + 2..];
        let Some((cpu, rest)) = rest.split_once("] ") else {
            continue;
        };
        let Ok(cpu) = cpu.parse::<u32>() else {
            continue;
        };
        let rest = rest.trim_start();
        let Some((time, payload)) = rest.split_once(':') else {
            continue;
        };
        let (sec, nsec) = time.split_once('.').expect("--ns time");
        let time_ns = sec.parse::<u64>().unwrap() * 1_000_000_000 + nsec.parse::<u64>().unwrap();
        let pidtid = head.split_whitespace().last().unwrap();
        let (spid, stid) = parse_pair(pidtid, '/');
        let payload = payload.trim();
        let mut rec = Rec {
            time_ns,
            kind: String::new(),
            cpu,
            pid: spid,
            tid: stid,
            detail: String::new(),
        };
        if payload.is_empty() {
            rec.kind = "sample".into();
        } else if let Some(p) = payload.strip_prefix("PERF_RECORD_NAMESPACES ") {
            let (ids, nr) = p.split_once(" - nr_namespaces: ").unwrap();
            (rec.pid, rec.tid) = parse_pair(ids, '/');
            let nr: usize = nr.trim().parse().unwrap();
            // The links follow on continuation lines: "[0/net: 4/0xeffffff9, 1/uts: …]".
            let mut links = String::new();
            while links.matches(": ").count() < nr {
                let next = lines.next().expect("namespace links");
                if !links.is_empty() && !links.ends_with(' ') {
                    links.push(' ');
                }
                links.push_str(next.trim());
            }
            let links: Vec<String> = links
                .trim_matches(|c| c == '[' || c == ']' || c == ',')
                .split(", ")
                .map(|l| {
                    let (idx_name, val) = l.split_once(": ").unwrap();
                    let name = idx_name.split_once('/').unwrap().1;
                    let (dev, ino) = val.trim_end_matches(',').split_once('/').unwrap();
                    let ino = u64::from_str_radix(ino.trim_start_matches("0x"), 16).unwrap();
                    format!("{name}={dev}/{ino}")
                })
                .collect();
            rec.kind = "namespaces".into();
            rec.detail = format!("nr={nr} {}", links.join(" "));
        } else if let Some(p) = payload
            .strip_prefix("PERF_RECORD_FORK")
            .map(|p| ("fork", p))
            .or_else(|| {
                payload
                    .strip_prefix("PERF_RECORD_EXIT")
                    .map(|p| ("exit", p))
            })
        {
            let (kind, p) = p;
            // "(PID:TID):(PPID:PTID)"
            let p = p.replace(['(', ')'], "");
            let parts: Vec<&str> = p.split(':').collect();
            let n = |i: usize| parts[i].trim().parse::<u32>().unwrap();
            (rec.pid, rec.tid) = (n(0), n(1));
            rec.kind = kind.into();
            rec.detail = format!("ppid={} ptid={}", n(2), n(3));
        } else if let Some(p) = payload.strip_prefix("PERF_RECORD_COMM") {
            let (exec, p) = match p.strip_prefix(" exec: ") {
                Some(p) => (true, p),
                None => (false, p.trim_start_matches(": ")),
            };
            let (comm, ids) = p.rsplit_once(':').unwrap();
            (rec.pid, rec.tid) = parse_pair(ids, '/');
            rec.kind = "comm".into();
            rec.detail = format!("comm={comm} exec={exec}");
        } else if let Some(p) = payload.strip_prefix("PERF_RECORD_CGROUP cgroup: ") {
            let (id, path) = p.split_once(' ').unwrap();
            rec.kind = "cgroup".into();
            rec.detail = format!("id={id} path={path}");
        } else if let Some(p) = payload.strip_prefix("PERF_RECORD_LOST ") {
            rec.kind = "lost".into();
            rec.detail = format!("lost={}", p.trim_start_matches("lost ").trim());
        } else {
            // MMAP, KSYMBOL, BPF_EVENT…: outside the schema.
            continue;
        }
        out.push(rec);
    }
    out.sort();
    out
}

/// nswatch's decoding of `path` in the same shape as [`parse_script`].
pub fn decode_file(path: &Path) -> Vec<Rec> {
    let mut data = PerfData::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    decode(&mut data)
}

/// Decodes an opened input in the shape of [`parse_script`].
pub fn decode(data: &mut PerfData) -> Vec<Rec> {
    let mut b = EventBuilder::new();
    let mut out = Vec::new();
    data.for_each(
        Order::Time,
        |dec, view| -> Result<(), nswatch::DecodeError> {
            let Some(ev) = b.decode(dec, view)? else {
                return Ok(());
            };
            let (kind, detail) = match &ev.body {
                Body::Namespaces { ns, .. } => {
                    let links: Vec<String> = ns
                        .links()
                        .iter()
                        .enumerate()
                        .map(|(i, l)| format!("{}={}/{}", link_name(i), l.dev, l.ino))
                        .collect();
                    (
                        "namespaces",
                        format!("nr={} {}", ns.links().len(), links.join(" ")),
                    )
                }
                Body::Fork { ppid, ptid } => ("fork", format!("ppid={ppid} ptid={ptid}")),
                Body::Exit { ppid, ptid } => ("exit", format!("ppid={ppid} ptid={ptid}")),
                Body::Comm { comm, exec } => ("comm", format!("comm={comm} exec={exec}")),
                Body::Cgroup { id, path } => ("cgroup", format!("id={id} path={path}")),
                Body::Lost { lost } => ("lost", format!("lost={lost}")),
                Body::LostSamples { .. } => return Ok(()),
                Body::Sample { .. } => ("sample", String::new()),
                // Not from perf records: live capture's eBPF probe only.
                Body::NsSyscall { .. } | Body::NsSyscallLost { .. } => return Ok(()),
            };
            out.push(Rec {
                time_ns: ev.time_ns.expect("time"),
                kind: kind.into(),
                cpu: ev.cpu.expect("cpu"),
                pid: ev.pid.expect("pid"),
                tid: ev.tid.expect("tid"),
                detail,
            });
            Ok(())
        },
    )
    .unwrap_or_else(|e| panic!("decoding failed: {e}"));
    out.sort();
    out
}

/// Asserts that two decodings agree record for record, showing the first difference.
pub fn assert_same(name: &str, ours: &[Rec], perf: &[Rec]) {
    for (i, (a, b)) in ours.iter().zip(perf).enumerate() {
        assert_eq!(
            a, b,
            "{name}: record {i} differs (nswatch left, perf script right)"
        );
    }
    assert_eq!(
        ours.len(),
        perf.len(),
        "{name}: record counts differ (nswatch, perf script)"
    );
}

/// Whether live tests must run (CI) instead of skipping.
pub fn require_live() -> bool {
    std::env::var("NSWATCH_REQUIRE_LIVE").is_ok_and(|v| v == "1")
}

/// Skips (returns false, printing why) or, under NSWATCH_REQUIRE_LIVE=1, fails.
pub fn live_ok(what: &str) -> bool {
    let reason = if unsafe { libc::geteuid() } != 0 {
        Some("not root".to_string())
    } else if Command::new("perf").arg("--version").output().is_err() {
        Some("perf is not installed".to_string())
    } else {
        None
    };
    match reason {
        None => true,
        Some(r) if require_live() => {
            panic!("{what}: cannot run live ({r}) and NSWATCH_REQUIRE_LIVE=1")
        }
        Some(r) => {
            eprintln!("SKIP {what}: {r}");
            false
        }
    }
}

/// A `nswatch record` (or a load) running in the background: a [`std::process::Child`]
/// that is killed and reaped if the test ends (a failed assertion, say) before stopping
/// it, as a recorder left behind would trace the whole machine for every later test and
/// benchmark.
pub struct Recorder(pub std::process::Child);

impl std::ops::Deref for Recorder {
    type Target = std::process::Child;
    fn deref(&self) -> &std::process::Child {
        &self.0
    }
}

impl std::ops::DerefMut for Recorder {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        &mut self.0
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Starts `nswatch record [extra…] -o FILE` in the background and returns once the
/// start-up scan is in the file (the rings are enabled before it); loading the eBPF probe
/// can take a while on a loaded machine.
pub fn start_recording(extra: &[&str], file: &Path, stderr: std::process::Stdio) -> Recorder {
    let child = Recorder(
        Command::new(nswatch_bin())
            .arg("record")
            .args(extra)
            .arg("-o")
            .arg(file)
            .stderr(stderr)
            .spawn()
            .unwrap(),
    );
    let t0 = std::time::Instant::now();
    while std::fs::metadata(file).map_or(0, |m| m.len()) == 0 {
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(30),
            "record did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child
}

/// Stops `child` with SIGINT, as Ctrl-C would, and waits for it: its exit status and
/// what it wrote to standard error (when that was piped).
pub fn interrupt(child: &mut std::process::Child) -> (std::process::ExitStatus, String) {
    use std::io::Read;
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        e.read_to_string(&mut err).unwrap();
    }
    (status, err)
}

/// Runs perf with `args`, returning stdout, panicking with stderr on failure.
pub fn perf(args: &[&str]) -> Vec<u8> {
    let out = Command::new("perf").args(args).output().expect("run perf");
    assert!(
        out.status.success(),
        "perf {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Builds a file-mode perf.data image: header, attrs with their ids, data, no features.
/// `attrs` are (sample_type, flags, ids); flags are given in the little-endian bit layout
/// and bit-reversed for a big-endian file, as a big-endian perf would lay the bitfield out.
pub fn build_file(
    endian: nswatch::bytes::Endian,
    attrs: &[(u64, u64, Vec<u64>)],
    data: &[u8],
) -> Vec<u8> {
    use nswatch::bytes::Endian;
    let u64b = |v: u64| match endian {
        Endian::Little => v.to_le_bytes(),
        Endian::Big => v.to_be_bytes(),
    };
    let u32b = |v: u32| match endian {
        Endian::Little => v.to_le_bytes(),
        Endian::Big => v.to_be_bytes(),
    };
    const ATTR: usize = 136;
    let header = 104usize;
    let attrs_off = header;
    let attrs_len = attrs.len() * (ATTR + 16);
    let ids_off = attrs_off + attrs_len;
    let ids_len: usize = attrs.iter().map(|a| a.2.len() * 8).sum();
    let data_off = ids_off + ids_len;
    let mut f = Vec::new();
    f.extend_from_slice(&u64b(0x3245_4c49_4652_4550));
    f.extend_from_slice(&u64b(header as u64));
    f.extend_from_slice(&u64b((ATTR + 16) as u64));
    for v in [attrs_off, attrs_len, data_off, data.len(), 0, 0] {
        f.extend_from_slice(&u64b(v as u64));
    }
    f.extend_from_slice(&[0u8; 32]); // no features
    let mut next_ids = ids_off;
    for (sample_type, flags, ids) in attrs {
        let mut a = vec![0u8; ATTR];
        a[0..4].copy_from_slice(&u32b(1)); // PERF_TYPE_SOFTWARE
        a[4..8].copy_from_slice(&u32b(ATTR as u32));
        a[8..16].copy_from_slice(&u64b(9)); // dummy
        a[24..32].copy_from_slice(&u64b(*sample_type));
        let flags = match endian {
            Endian::Little => *flags,
            Endian::Big => flags.reverse_bits(),
        };
        a[40..48].copy_from_slice(&u64b(flags));
        f.extend_from_slice(&a);
        f.extend_from_slice(&u64b(next_ids as u64));
        f.extend_from_slice(&u64b((ids.len() * 8) as u64));
        next_ids += ids.len() * 8;
    }
    for (_, _, ids) in attrs {
        for id in ids {
            f.extend_from_slice(&u64b(*id));
        }
    }
    assert_eq!(f.len(), data_off);
    f.extend_from_slice(data);
    f
}
