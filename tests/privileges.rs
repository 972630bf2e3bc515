//! What nswatch does for a user who is not root: run set-user-ID it refuses, file
//! capabilities that would bypass permission checks it leaves out of every file access, a
//! user with CAP_PERFMON and CAP_BPF sees containers that started before it (or is told
//! which tasks it could not read), a plain user's `ps` shows that user's own namespaces,
//! and the perf_event_paranoid hint says what the kernel really asks. Needs root (to make
//! the set-user-ID copy, set file capabilities and drop to uid 65534 with `setpriv`).

mod common;

use serde_json::Value;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The unprivileged user the tests run nswatch as.
const NOBODY: &str = "65534";
/// Text of the root-only file that no run may show.
const SECRET: &str = "NSWATCH-SECRET-TEXT-0123456789";

/// Root and `setpriv`, else a skip (a failure under NSWATCH_REQUIRE_LIVE=1).
fn root_ok(what: &str) -> bool {
    let reason = if unsafe { libc::geteuid() } != 0 {
        Some("not root")
    } else if Command::new("setpriv").arg("--version").output().is_err() {
        Some("setpriv (util-linux) is not installed")
    } else {
        None
    };
    match reason {
        None => true,
        Some(r) if common::require_live() => {
            panic!("{what}: {r} and NSWATCH_REQUIRE_LIVE=1")
        }
        Some(r) => {
            eprintln!("SKIP {what}: {r}");
            false
        }
    }
}

/// Runs `bin args` as uid/gid 65534 without supplementary groups, with `caps` (setpriv's
/// names, "perfmon") as ambient capabilities and no others.
fn as_nobody(bin: &Path, caps: &[&str], args: &[&str]) -> Output {
    let list: String = caps.iter().map(|c| format!(",+{c}")).collect();
    // Copies are made by `common::copy_exe`, which returns once they can be run.
    Command::new("setpriv")
        .args([
            &format!("--reuid={NOBODY}"),
            &format!("--regid={NOBODY}"),
            "--clear-groups",
            &format!("--inh-caps=-all{list}"),
            &format!("--ambient-caps=-all{list}"),
            "--",
        ])
        .arg(bin)
        .args(args)
        .output()
        .expect("run setpriv")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn nswatch() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_nswatch"))
}

/// A directory on a file system that honours set-user-ID bits and file capabilities
/// (not mounted nosuid), that uid 65534 can enter: under the temporary directory, else
/// beside the binary under test.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let name = format!("nswatch-priv-{tag}-{}", std::process::id());
        let dir = [
            std::env::temp_dir(),
            nswatch().parent().unwrap().to_path_buf(),
        ]
        .into_iter()
        .find(|d| !nosuid(d))
        .expect("a file system without nosuid")
        .join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        Scratch(dir)
    }

    /// A copy of nswatch, owned by root, with mode `mode`.
    fn copy_of_nswatch(&self, mode: u32) -> PathBuf {
        let bin = self.0.join("nswatch");
        common::copy_exe(nswatch(), &bin, &["--version"]);
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(mode)).unwrap();
        assert_eq!(std::fs::metadata(&bin).unwrap().mode() & 0o7777, mode);
        bin
    }

    /// A file only root may read, holding [`SECRET`], and a directory only root may write.
    fn secret_and_private_dir(&self) -> (PathBuf, PathBuf) {
        let secret = self.0.join("secret");
        std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        let private = self.0.join("private");
        std::fs::create_dir(&private).unwrap();
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
        (secret, private)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn nosuid(dir: &Path) -> bool {
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a NUL-terminated path and a statvfs to fill.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    r != 0 || st.f_flag & libc::ST_NOSUID != 0
}

/// The first 8 bytes of [`SECRET`] as a `bad magic` error would print them (hex, both byte
/// orders): file content, even encoded, must not reach the terminal of a user who may not
/// read the file.
fn secret_as_hex() -> [String; 2] {
    let b: [u8; 8] = SECRET.as_bytes()[..8].try_into().unwrap();
    [
        format!("{:x}", u64::from_le_bytes(b)),
        format!("{:x}", u64::from_be_bytes(b)),
    ]
}

fn assert_no_secret(what: &str, out: &Output) {
    let (stdout, stderr) = text(out);
    for s in [&stdout, &stderr] {
        assert!(!s.contains(SECRET), "{what}: the secret was printed: {s}");
        for hex in secret_as_hex() {
            assert!(!s.contains(&hex), "{what}: the secret's bytes: {s}");
        }
    }
}

#[test]
fn a_set_user_id_copy_refuses_to_run() {
    if !root_ok("a_set_user_id_copy_refuses_to_run") {
        return;
    }
    let dir = Scratch::new("setuid");
    let (secret, private) = dir.secret_and_private_dir();
    let fixture = common::fixture("unshare-mnt-pid.data");
    let written = private.join("trace.json");
    for mode in [0o4755, 0o2755] {
        let bin = dir.copy_of_nswatch(mode);
        let out = as_nobody(&bin, &[], &["report", secret.to_str().unwrap()]);
        let (_, err) = text(&out);
        assert_eq!(out.status.code(), Some(1), "mode {mode:o}: {err}");
        assert!(
            err.contains("set-user-ID or set-group-ID") && err.contains("setcap"),
            "mode {mode:o}: {err}"
        );
        assert_no_secret(&format!("report, mode {mode:o}"), &out);
        let out = as_nobody(
            &bin,
            &[],
            &[
                "export",
                "--format",
                "chrome",
                fixture.to_str().unwrap(),
                "-o",
                written.to_str().unwrap(),
            ],
        );
        assert_eq!(out.status.code(), Some(1), "{}", text(&out).1);
        assert!(!written.exists(), "mode {mode:o}: wrote in a root-only dir");
    }
    // The same copy without the bit reads what the user may read.
    let plain = dir.copy_of_nswatch(0o755);
    let out = as_nobody(&plain, &[], &["report", fixture.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out).1);
}

#[test]
fn file_capabilities_never_open_what_the_user_may_not() {
    if !root_ok("file_capabilities_never_open_what_the_user_may_not") {
        return;
    }
    if Command::new("setcap").arg("-v").output().is_err() {
        if common::require_live() {
            panic!("setcap (libcap2-bin) is not installed and NSWATCH_REQUIRE_LIVE=1");
        }
        eprintln!("SKIP file_capabilities_never_open_what_the_user_may_not: no setcap");
        return;
    }
    let dir = Scratch::new("fcaps");
    let (secret, private) = dir.secret_and_private_dir();
    let bin = dir.copy_of_nswatch(0o755);
    let caps = "cap_dac_override,cap_dac_read_search,cap_fowner,cap_perfmon,cap_bpf+ep";
    let st = Command::new("setcap").arg(caps).arg(&bin).status().unwrap();
    assert!(st.success(), "setcap {caps}");
    let out = as_nobody(&bin, &[], &["report", secret.to_str().unwrap()]);
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("Permission denied"), "{err}");
    assert_no_secret("report with file capabilities", &out);
    let fixture = common::fixture("unshare-mnt-pid.data");
    let written = private.join("trace.json");
    let out = as_nobody(
        &bin,
        &[],
        &[
            "export",
            "--format",
            "chrome",
            fixture.to_str().unwrap(),
            "-o",
            written.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out).1);
    assert!(
        text(&out).1.contains("Permission denied"),
        "{:?}",
        text(&out)
    );
    assert!(!written.exists(), "wrote in a root-only dir");
    // The capabilities it is given for tracing still work: the machine's tasks, every one.
    let out = as_nobody(&bin, &[], &["ps", "--format", "json"]);
    assert!(out.status.success(), "{}", text(&out).1);
    assert!(!text(&out).1.contains("not readable"), "{}", text(&out).1);
}

/// A process started by root in new net and uts namespaces, killed on drop.
struct Sandboxed(Child);

impl Sandboxed {
    fn start(prefix: &[&str]) -> Sandboxed {
        let child = Command::new(prefix[0])
            .args(&prefix[1..])
            .args(["sleep", "60"])
            .stdin(Stdio::null())
            .spawn()
            .expect("start unshare");
        let s = Sandboxed(child);
        // unshare execs sleep in the same process once the namespaces are made.
        let comm = format!("/proc/{}/comm", s.pid());
        let t0 = Instant::now();
        while std::fs::read_to_string(&comm)
            .map(|c| c.trim() != "sleep")
            .unwrap_or(true)
        {
            assert!(t0.elapsed() < Duration::from_secs(10), "sleep never ran");
            std::thread::sleep(Duration::from_millis(10));
        }
        s
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Sandboxed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The group (kind, owned namespaces) `ps --format json` puts process `pid` in, if shown.
fn group_of(ps_json: &str, pid: u32) -> Option<(String, Vec<String>)> {
    let v: Value = serde_json::from_str(ps_json).expect("ps JSON");
    v["groups"].as_array().unwrap().iter().find_map(|g| {
        let shown = g["processes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["pid"].as_u64() == Some(u64::from(pid)));
        shown.then(|| {
            let owns = g["owns"].as_array().unwrap();
            (
                g["kind"].as_str().unwrap().to_string(),
                owns.iter()
                    .map(|o| o.as_str().unwrap().to_string())
                    .collect(),
            )
        })
    })
}

#[test]
fn perfmon_without_ptrace_sees_earlier_sandboxes_or_says_it_cannot() {
    if !common::live_ok("perfmon_without_ptrace_sees_earlier_sandboxes_or_says_it_cannot") {
        return;
    }
    let sb = Sandboxed::start(&["unshare", "-n", "-u"]);
    let pid = sb.pid();
    let sandbox = Some(("sandbox".to_string(), vec!["net".into(), "uts".into()]));
    // Through the BPF task iterator: the truth.
    let out = as_nobody(
        nswatch(),
        &["perfmon", "bpf"],
        &["ps", "--all", "--format", "json"],
    );
    let (stdout, err) = text(&out);
    assert!(out.status.success(), "{err}");
    assert_eq!(group_of(&stdout, pid), sandbox, "{err}");
    // From /proc, which hides other users' namespaces: not the host, and said.
    let out = as_nobody(
        nswatch(),
        &["perfmon", "bpf"],
        &["ps", "--all", "--no-bpf", "--format", "json"],
    );
    let (stdout, err) = text(&out);
    assert!(out.status.success(), "{err}");
    let g = group_of(&stdout, pid);
    assert!(g.is_none() || g == sandbox, "{g:?}: {err}");
    assert!(err.contains("not readable"), "{err}");
    // A live session's start-up: with the iterator, its sandbox; without CAP_BPF (no
    // iterator), never the host's with unknown links, and a warning.
    for (caps, truth) in [(&["perfmon", "bpf"][..], true), (&["perfmon"][..], false)] {
        let out = as_nobody(nswatch(), caps, &["record", "--duration", "0.5"]);
        let (stdout, err) = text(&out);
        assert!(out.status.success(), "{caps:?}: {err}");
        let ns: Vec<Value> = stdout
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|e| e["type"] == "namespaces" && e["tid"].as_u64() == Some(u64::from(pid)))
            .collect();
        for e in &ns {
            assert_ne!(e["container"], "host", "{caps:?}: {e}");
            assert_ne!(e["ns"]["net"]["ino"], 0, "{caps:?}: {e}");
        }
        if truth {
            assert_eq!(ns.len(), 1, "{caps:?}: {err}");
            assert!(ns[0]["container"].as_str().unwrap().starts_with("sb-"));
        } else {
            assert!(
                err.contains("namespaces of") && err.contains("could not be read"),
                "{caps:?}: {err}"
            );
        }
    }
}

#[test]
fn plain_users_ps_shows_their_own_namespaces() {
    if !root_ok("plain_users_ps_shows_their_own_namespaces") {
        return;
    }
    let sb = Sandboxed::start(&[
        "setpriv",
        &format!("--reuid={NOBODY}"),
        &format!("--regid={NOBODY}"),
        "--clear-groups",
        "--inh-caps=-all",
        "--",
        "unshare",
        "-U",
        "-r",
        "-u",
    ]);
    let out = as_nobody(nswatch(), &[], &["ps", "--format", "json"]);
    let (stdout, err) = text(&out);
    assert!(out.status.success(), "{err}");
    let g = group_of(&stdout, sb.pid()).expect("the user's own sandbox");
    assert_eq!(
        g,
        ("sandbox".to_string(), vec!["uts".into(), "user".into()])
    );
    // Root's tasks (pid 1's among them) were not readable, and stderr says how many.
    let n: usize = err
        .split_whitespace()
        .find_map(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no count in {err}"));
    assert!(n > 0 && err.contains("not readable"), "{err}");
    // The text form too.
    let out = as_nobody(nswatch(), &[], &["ps"]);
    let (stdout, err) = text(&out);
    assert!(out.status.success(), "{err}");
    assert!(stdout.contains("sandbox "), "{stdout}");
}

#[test]
fn the_paranoid_hint_says_only_capabilities_help() {
    if !common::live_ok("the_paranoid_hint_says_only_capabilities_help") {
        return;
    }
    let out = as_nobody(
        nswatch(),
        &[],
        &["record", "--duration", "1", "-o", "/dev/null"],
    );
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    // perf_event_open refuses namespace records (attr.namespaces) without CAP_PERFMON
    // whatever kernel.perf_event_paranoid is: lowering it is no advice.
    assert!(
        err.contains("CAP_PERFMON") && err.contains("setcap"),
        "{err}"
    );
    assert!(err.contains("perf_event_paranoid"), "{err}");
    assert!(
        !err.contains("-1 lets") && !err.contains("0 or -1"),
        "advises lowering perf_event_paranoid: {err}"
    );
}
