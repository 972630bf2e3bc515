//! How `record -o`, `export -o` and `top`'s export key create and write their files: never
//! through a planted link, mode 0600 whatever the umask, streams (devices, FIFOs, the
//! caller's descriptors) written as streams, whole lines and well-formed documents on a
//! full file system, and `record -- CMD` ending as CMD did. The full-disk tests mount a
//! small tmpfs (root); the `record` tests need root and perf: they skip with the reason
//! otherwise, and fail under NSWATCH_REQUIRE_LIVE=1.

mod common;
use common::{fixture, live_ok, require_live};

use serde_json::Value;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::planted::{is_root, Planted};

/// Skips (false, printing why) where not root, or fails under NSWATCH_REQUIRE_LIVE=1.
fn root_ok(what: &str) -> bool {
    if is_root() {
        return true;
    }
    assert!(
        !require_live(),
        "{what}: needs root and NSWATCH_REQUIRE_LIVE=1"
    );
    eprintln!("SKIP {what}: not root");
    false
}

/// nswatch with `args`, under umask 000 (so that only nswatch's own mode is left).
fn nswatch(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nswatch"));
    cmd.args(args).stdin(Stdio::null());
    // SAFETY: umask is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0);
            Ok(())
        })
    };
    cmd.output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn input() -> String {
    fixture("unshare-net-uts.data")
        .to_str()
        .unwrap()
        .to_string()
}

/// Item 1: `export -o` through a link to an existing file or a dangling one is refused,
/// with the path and the reason, and writes nothing there.
#[test]
fn export_does_not_write_through_a_planted_link() {
    let p = Planted::new();
    for (name, target) in [("out.json", "victim"), ("new.json", "created")] {
        let link = p.link(name, target);
        let out = nswatch(&["export", &input(), "-o", link.to_str().unwrap()]);
        let err = stderr(&out);
        assert!(!out.status.success(), "{name}: {err}");
        assert!(
            err.contains(&format!(
                "{}: is a symbolic link, not followed",
                link.display()
            )),
            "{err}"
        );
        assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
        p.assert_untouched();
    }
}

/// Item 1: the same for `record -o`.
#[test]
fn record_does_not_write_through_a_planted_link() {
    if !live_ok("record_does_not_write_through_a_planted_link") {
        return;
    }
    let p = Planted::new();
    let link = p.link("rec.ndjson", "victim");
    let out = nswatch(&[
        "record",
        "--no-bpf",
        "--duration",
        "1s",
        "-o",
        link.to_str().unwrap(),
    ]);
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains(&format!(
            "{}: is a symbolic link, not followed",
            link.display()
        )),
        "{err}"
    );
    p.assert_untouched();
}

/// Items 1 and 5: an existing file is moved to FILE.old (as perf does) and a new one made,
/// 0600 under umask 000; a hard link's other name keeps its bytes.
#[test]
fn export_moves_an_existing_file_to_old_and_creates_it_0600() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("trace.json");
    std::fs::write(dir.path().join("victim"), b"precious\n").unwrap();
    std::fs::hard_link(dir.path().join("victim"), &out).unwrap();
    let o = nswatch(&["export", &input(), "-o", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let m = std::fs::symlink_metadata(&out).unwrap();
    assert!(m.is_file());
    assert_eq!(m.mode() & 0o7777, 0o600, "created {:o}", m.mode() & 0o7777);
    assert_eq!(
        std::fs::read(dir.path().join("victim")).unwrap(),
        b"precious\n"
    );
    assert_eq!(
        std::fs::read(dir.path().join("trace.json.old")).unwrap(),
        b"precious\n"
    );
    let t: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(t["nswatchExport"], "complete");
    assert!(!t["traceEvents"].as_array().unwrap().is_empty());
}

/// Item 5: `record -o` makes its file 0600 under umask 000.
#[test]
fn record_creates_its_file_0600() {
    if !live_ok("record_creates_its_file_0600") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rec.ndjson");
    let o = nswatch(&[
        "record",
        "--no-bpf",
        "--duration",
        "1s",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mode = std::fs::metadata(&out).unwrap().mode() & 0o7777;
    assert_eq!(mode, 0o600, "created {mode:o}");
}

/// Item 13: `export -o` to /dev/null, /dev/stdout (a pipe) or a FIFO writes a stream, and a
/// write error names the file and the operation.
#[test]
fn export_writes_devices_fifos_and_stdout_as_streams() {
    let o = nswatch(&["export", &input(), "-o", "/dev/null"]);
    assert!(o.status.success(), "/dev/null: {}", stderr(&o));

    let o = nswatch(&["export", &input(), "-o", "/dev/stdout"]);
    assert!(o.status.success(), "/dev/stdout: {}", stderr(&o));
    let t: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(t["nswatchExport"], "complete");

    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut v = Vec::new();
            std::fs::File::open(fifo)
                .unwrap()
                .read_to_end(&mut v)
                .unwrap();
            v
        })
    };
    let o = nswatch(&["export", &input(), "-o", fifo.to_str().unwrap()]);
    assert!(o.status.success(), "FIFO: {}", stderr(&o));
    let t: Value = serde_json::from_slice(&reader.join().unwrap()).unwrap();
    assert!(!t["traceEvents"].as_array().unwrap().is_empty());

    let o = nswatch(&["export", &input(), "-o", "/dev/full"]);
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(err.contains("/dev/full: writing"), "{err}");
    assert!(err.contains("No space left on device"), "{err}");
}

/// A small file system (tmpfs, or ext4 on a loop device, which takes direct I/O),
/// unmounted when dropped.
struct SmallFs {
    dir: tempfile::TempDir,
    _image: Option<tempfile::TempDir>,
}

impl SmallFs {
    fn mount(size: &str) -> SmallFs {
        let dir = tempfile::tempdir().unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(st.success(), "mount a tmpfs");
        SmallFs { dir, _image: None }
    }

    fn ext4(size: &str) -> SmallFs {
        let image_dir = tempfile::tempdir().unwrap();
        let image = image_dir.path().join("fs.img");
        let run = |cmd: &mut Command| {
            let o = cmd.output().unwrap();
            assert!(o.status.success(), "{cmd:?}: {o:?}");
        };
        run(Command::new("truncate").args(["-s", size]).arg(&image));
        run(Command::new("mkfs.ext4").arg("-q").arg(&image));
        let dir = tempfile::tempdir().unwrap();
        run(Command::new("mount")
            .args(["-o", "loop"])
            .arg(&image)
            .arg(dir.path()));
        SmallFs {
            dir,
            _image: Some(image_dir),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// Endless NDJSON: short-lived tasks, half of them in a uts sandbox.
fn feed(mut w: impl Write) {
    let ns = |uts: u64| {
        let names = ["net", "uts", "ipc", "pid", "user", "mnt", "cgroup"];
        let links: Vec<String> = names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let ino = if *n == "uts" {
                    uts
                } else {
                    4026531830 + i as u64
                };
                format!("\"{n}\":{{\"dev\":4,\"ino\":{ino}}}")
            })
            .collect();
        format!("{{{}}}", links.join(","))
    };
    let (host, sandbox) = (ns(4026531838), ns(4026532999));
    let mut buf = format!(
        "{{\"type\":\"namespaces\",\"time_ns\":0,\"cpu\":0,\"pid\":1,\"tid\":1,\"ns\":{host},\"comm\":\"init\"}}\n"
    );
    let mut t = 1_000_000u64;
    for i in 0u64.. {
        let pid = 100 + (i % 30000);
        t += 1000;
        buf.push_str(&format!("{{\"type\":\"fork\",\"time_ns\":{t},\"cpu\":0,\"pid\":{pid},\"tid\":{pid},\"ppid\":1,\"ptid\":1}}\n"));
        if i % 2 == 0 {
            buf.push_str(&format!("{{\"type\":\"namespaces\",\"time_ns\":{},\"cpu\":0,\"pid\":{pid},\"tid\":{pid},\"ns\":{sandbox}}}\n", t + 10));
        }
        buf.push_str(&format!("{{\"type\":\"exit\",\"time_ns\":{},\"cpu\":0,\"pid\":{pid},\"tid\":{pid},\"ppid\":1,\"ptid\":1}}\n", t + 500));
        if buf.len() > 1 << 16 {
            if w.write_all(buf.as_bytes()).is_err() {
                return;
            }
            buf.clear();
        }
    }
}

/// Item 12: `export -o` on a full file system stops with an error naming the file and the
/// write, and leaves a well-formed document of what it wrote, marked incomplete.
#[test]
fn export_on_a_full_file_system_leaves_a_document_marked_incomplete() {
    if !root_ok("export_on_a_full_file_system_leaves_a_document_marked_incomplete") {
        return;
    }
    let fs = SmallFs::mount("256k");
    let out = fs.path().join("trace.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_nswatch"))
        .args(["export", "-", "-o", out.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let w = child.stdin.take().unwrap();
    std::thread::spawn(move || feed(w));
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t0.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("export still running 60 s into a full file system");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(!status.success(), "{err}");
    assert!(
        err.contains(&format!("{}: writing the trace", out.display())),
        "{err}"
    );
    assert!(err.contains("No space left on device"), "{err}");
    let t: Value = serde_json::from_slice(&std::fs::read(&out).unwrap())
        .expect("a well-formed document after the failed write");
    assert_eq!(t["nswatchExport"], "incomplete");
    assert!(t["traceEvents"].as_array().unwrap().len() > 100);
}

/// Item 12: `record --buffered -o` on a full file system stops with the error, and its
/// file ends with a whole line.
#[test]
fn record_on_a_full_file_system_leaves_whole_lines() {
    if !live_ok("record_on_a_full_file_system_leaves_whole_lines") {
        return;
    }
    record_until_full(&SmallFs::mount("256k"), &["--buffered"]);
}

/// Item 12: as above, written with direct I/O (the default where the file system takes
/// it), whose whole-block writes may end inside a line.
#[test]
fn record_direct_on_a_full_file_system_leaves_whole_lines() {
    if !live_ok("record_direct_on_a_full_file_system_leaves_whole_lines") {
        return;
    }
    record_until_full(&SmallFs::ext4("3M"), &[]);
}

fn record_until_full(fs: &SmallFs, how: &[&str]) {
    let out = fs.path().join("rec.ndjson");
    // Forks to write about once the start-up scan is in.
    let stress = common::build_c("benches/stress.c");
    let mut load = common::Recorder(
        Command::new(&stress)
            .args(["fork", "100000000"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut args = vec!["record", "--no-bpf", "--duration", "20s", "-o"];
    args.push(out.to_str().unwrap());
    args.extend(how);
    let o = nswatch(&args);
    let _ = load.kill();
    let err = stderr(&o);
    assert!(!o.status.success(), "{err}");
    assert!(err.contains(&format!("writing {}", out.display())), "{err}");
    let bytes = std::fs::read(&out).unwrap();
    assert!(bytes.len() > 4096, "{} bytes", bytes.len());
    assert_eq!(bytes.last(), Some(&b'\n'), "the last line is cut");
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if !line.is_empty() {
            serde_json::from_slice::<Value>(line).unwrap_or_else(|e| panic!("line {}: {e}", i + 1));
        }
    }
}

/// Item 15: `record -- CMD` exits with CMD's code, or dies of CMD's signal, as perf does.
#[test]
fn record_exits_as_its_command_did() {
    if !live_ok("record_exits_as_its_command_did") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rec.ndjson");
    let run = |cmd: &str| {
        let o = nswatch(&[
            "record",
            "--no-bpf",
            "-o",
            out.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            cmd,
        ]);
        let lines = std::fs::read_to_string(&out).unwrap().lines().count();
        assert!(lines > 0, "{cmd}: nothing recorded: {}", stderr(&o));
        o.status
    };
    assert_eq!(run("exit 0").code(), Some(0));
    assert_eq!(run("exit 3").code(), Some(3));
    let killed = run("kill -9 $$");
    assert_eq!(killed.signal(), Some(libc::SIGKILL), "{killed:?}");
    assert!(!killed.core_dumped());
}
