//! `nswatch top` in a real terminal: tmux runs `nswatch-top` (and once `nswatch top`, which
//! hands over to it), `capture-pane` reads the screen.
//! The live test needs root (it watches this machine and makes a network namespace); it
//! skips with a reason otherwise, and fails instead under NSWATCH_REQUIRE_LIVE=1.

#[path = "../../tests/common/mod.rs"]
mod common;

use common::live_ok;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A tmux server of our own (its own socket, so that no other session is touched), killed
/// when the test ends, passed or failed.
struct Tmux {
    socket: String,
    /// Where the shell around nswatch writes its exit status: tmux does not always reap a
    /// pane's process when several servers run at once, so its #{pane_dead_status} can
    /// stay empty.
    status: tempfile::TempPath,
}

impl Tmux {
    /// Runs `nswatch-top args` in a `w`x`h` pane that stays after the command exits (to
    /// read its status and the restored screen).
    fn start(tag: &str, args: &[&str], w: u16, h: u16) -> Tmux {
        Tmux::start_bin(tag, env!("CARGO_BIN_EXE_nswatch-top"), args, w, h)
    }

    /// Runs `bin args` as [`Tmux::start`] does.
    fn start_bin(tag: &str, bin: &str, args: &[&str], w: u16, h: u16) -> Tmux {
        let t = Tmux {
            socket: format!("nswatch-{tag}-{}", std::process::id()),
            status: tempfile::NamedTempFile::new().unwrap().into_temp_path(),
        };
        let wrapper = format!("\"$0\" \"$@\"; echo $? > {}", t.status.display());
        let mut cmd = vec![
            "new-session".to_string(),
            "-d".into(),
            "-s".into(),
            "t".into(),
            "-x".into(),
            w.to_string(),
            "-y".into(),
            h.to_string(),
            "sh".into(),
            "-c".into(),
            wrapper,
            bin.into(),
        ];
        cmd.extend(args.iter().map(|a| a.to_string()));
        t.tmux(&cmd.iter().map(String::as_str).collect::<Vec<_>>());
        t.tmux(&["set-option", "-t", "t", "remain-on-exit", "on"]);
        t
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .env_remove("TMUX")
            .output()
            .expect("run tmux");
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", "t"])
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend(keys);
        self.tmux(&args);
    }

    /// Waits until the screen satisfies `pred`; panics with the last screen after
    /// `timeout`.
    fn wait_for(&self, what: &str, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if pred(&s) {
                // Taken again a little later: a capture can come while a frame is half
                // drawn (the first one writes the rows, then the status line), and what
                // the caller asserts next may be in the part not drawn yet.
                std::thread::sleep(Duration::from_millis(100));
                let again = self.screen();
                if pred(&again) {
                    return again;
                }
            }
            if start.elapsed() > timeout {
                panic!("{what}: not seen in {timeout:?}; the screen:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until nswatch has exited and returns its exit status.
    fn wait_exit(&self) -> String {
        let start = Instant::now();
        loop {
            let status = std::fs::read_to_string(&self.status).unwrap_or_default();
            if !status.trim().is_empty() {
                return status.trim().to_string();
            }
            if start.elapsed() > Duration::from_secs(10) {
                panic!(
                    "nswatch did not exit in 10 s; the screen:\n{}",
                    self.screen()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The pid of nswatch (the child of the shell that runs it in the pane).
    fn nswatch_pid(&self) -> i32 {
        let sh = self.pane("#{pane_pid}");
        std::fs::read_to_string(format!("/proc/{sh}/task/{sh}/children"))
            .unwrap()
            .split_whitespace()
            .next()
            .expect("nswatch runs under the pane's shell")
            .parse()
            .unwrap()
    }

    fn pane(&self, format: &str) -> String {
        self.tmux(&["display-message", "-p", "-t", "t", format])
            .trim()
            .to_string()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .arg("kill-server")
            .output();
    }
}

/// A named network namespace with a process in it, removed when dropped.
struct Netns {
    name: String,
    child: Option<Child>,
}

impl Netns {
    /// `sleep 30` in a new network namespace `name`: one task.
    fn start(name: &str) -> Netns {
        Netns::run(name, &["sleep", "30"])
    }

    /// `cmd` in a new network namespace `name`, in a process group of its own (all of it
    /// is killed when stopped).
    fn run(name: &str, cmd: &[&str]) -> Netns {
        use std::os::unix::process::CommandExt;
        let ok = Command::new("ip")
            .args(["netns", "add", name])
            .status()
            .expect("ip netns add");
        assert!(ok.success(), "ip netns add {name}");
        let child = Command::new("ip")
            .args(["netns", "exec", name])
            .args(cmd)
            .stdin(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("ip netns exec");
        Netns {
            name: name.to_string(),
            child: Some(child),
        }
    }

    /// The pid of the command (`ip netns exec` becomes it).
    fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: a signal to the process group the child leads.
            unsafe { libc::kill(-(c.id() as i32), libc::SIGKILL) };
            let _ = c.wait();
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        self.stop();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// The tree's row of a group: "▸ sb NAME" (the events pane writes names otherwise).
fn tree_row<'a>(screen: &'a str, kind: &str, name: &str) -> Option<&'a str> {
    let want = format!("{kind} {name} ");
    screen
        .lines()
        .find(|l| l.contains(&format!("▸ {want}")) || l.contains(&format!("▾ {want}")))
}

#[test]
fn live_top_shows_a_sandbox_appear_by_name_and_go() {
    if !live_ok("nswatch top under tmux") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().to_str().unwrap();
    let tmux = Tmux::start("live", &["--export-dir", export], 100, 30);
    tmux.wait_for("the live header", Duration::from_secs(20), |s| {
        s.contains("nswatch top live")
    });
    let name = format!("nswtop{}", std::process::id());
    // Filter on the name, so the row shows however many groups this machine has.
    tmux.keys(&["/"]);
    tmux.keys(&["-l", &name]);
    tmux.keys(&["Enter"]);
    let mut ns = Netns::start(&name);
    let s = tmux.wait_for("the sandbox's row", Duration::from_secs(10), |s| {
        tree_row(s, "sb", &name).is_some()
    });
    let row = tree_row(&s, "sb", &name).unwrap();
    // One task: the sleep that `ip netns exec` became.
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[3], "1", "task count in {row:?}");
    assert!(s.contains("start   sandbox"), "start event missing:\n{s}");
    // Export while it runs: the file holds the group by name, and the status line says
    // where it went.
    tmux.keys(&["e"]);
    let s = tmux.wait_for("the export's status", Duration::from_secs(5), |s| {
        s.contains("exported to ")
    });
    let path = s
        .lines()
        .find_map(|l| l.trim().strip_prefix("exported to "))
        .unwrap()
        .trim()
        .to_string();
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(v["groups"][0]["name"], name.as_str(), "{v}");
    assert_eq!(v["groups"][0]["runtime"], "ip-netns");
    ns.stop();
    tmux.wait_for("the sandbox's row to go", Duration::from_secs(10), |s| {
        tree_row(s, "sb", &name).is_none()
    });
    // Its end is declared once it stayed without a task for 100 ms.
    tmux.wait_for("the sandbox's exit event", Duration::from_secs(5), |s| {
        s.contains("exit    sandbox")
    });
    tmux.keys(&["q"]);
    assert_eq!(tmux.wait_exit(), "0");
    // The alternate screen is left: the UI is gone from the pane.
    assert!(!tmux.screen().contains("nswatch top live"));
}

#[test]
fn replay_plays_a_fixture_through_the_ui() {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/unshare-mnt-pid.data"
    );
    let tmux = Tmux::start("replay", &["--replay", fixture, "--speed", "max"], 80, 24);
    let s = tmux.wait_for("the end of the replay", Duration::from_secs(20), |s| {
        s.contains("(end)")
    });
    let lines: Vec<&str> = s.lines().collect();
    assert_eq!(
        lines[0].trim_end(),
        "nswatch top replay unshare-mnt-pid.data max (end) · 0 ct 0 sb 0 pod · 67 tasks"
    );
    for want in [
        "│    0.065 exit    container          ct-4026532178 (by unshare)               │",
        "│    0.064 ns      pid                unshare[24117] in ct-4026532178          │",
        "│    0.064 start   container          ct-4026532178 (by unshare)               │",
        "│    0.064 ns      mnt                unshare[24115] in sb-4026532177          │",
    ] {
        assert!(lines.contains(&want), "missing {want:?} in:\n{s}");
    }
    // Ctrl-C quits too, with the terminal restored.
    tmux.keys(&["C-c"]);
    assert_eq!(tmux.wait_exit(), "0");
    assert!(!tmux.screen().contains("nswatch top replay"));
}

/// `nswatch top` hands its arguments over to `nswatch-top` beside it, or on PATH: the same
/// replay plays on the same screen, the pane's process is the UI itself (exec, not a
/// child), and `nswatch top --help` is the UI's help under the subcommand's name.
#[test]
fn nswatch_top_runs_the_ui_beside_it() {
    let nswatch = common::nswatch_bin();
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/unshare-mnt-pid.data"
    );
    let tmux = Tmux::start_bin(
        "dispatch",
        nswatch.to_str().unwrap(),
        &["top", "--replay", fixture, "--speed", "max"],
        80,
        24,
    );
    let s = tmux.wait_for("the end of the replay", Duration::from_secs(20), |s| {
        s.contains("(end)")
    });
    assert_eq!(
        s.lines().next().unwrap().trim_end(),
        "nswatch top replay unshare-mnt-pid.data max (end) · 0 ct 0 sb 0 pod · 67 tasks"
    );
    let exe = std::fs::read_link(format!("/proc/{}/exe", tmux.nswatch_pid())).unwrap();
    assert_eq!(exe.file_name().unwrap(), "nswatch-top", "{}", exe.display());
    tmux.keys(&["q"]);
    assert_eq!(tmux.wait_exit(), "0");

    let help = |bin: &std::path::Path, args: &[&str]| {
        let out = Command::new(bin).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let via = help(&nswatch, &["top", "--help"]);
    let own = help(env!("CARGO_BIN_EXE_nswatch-top").as_ref(), &["--help"]);
    assert!(via.contains("Usage: nswatch top [OPTIONS]"), "{via}");
    assert!(via.contains("--replay <FILE>"), "{via}");
    assert_eq!(via, own.replace("Usage: nswatch-top", "Usage: nswatch top"));

    // Alone in its directory, nswatch finds the UI on PATH.
    let dir = tempfile::tempdir().unwrap();
    let alone = dir.path().join("nswatch");
    common::copy_exe(&nswatch, &alone, &["--version"]);
    let top_dir = std::path::Path::new(env!("CARGO_BIN_EXE_nswatch-top"))
        .parent()
        .unwrap();
    let out = Command::new(&alone)
        .args(["top", "--help"])
        .env("PATH", top_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap(), via);
}

#[test]
fn a_replayed_file_whose_last_line_is_cut_plays_to_its_end() {
    // NDJSON as a recording killed mid-write leaves it: whole lines, then a cut one.
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/unshare-mnt-pid.data"
    );
    let mut nd = common::nswatch(&["report", "--format", "ndjson", fixture]);
    nd.push_str("{\"type\":\"fork\",\"time_ns\":12");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cut.ndjson");
    std::fs::write(&file, nd).unwrap();
    let tmux = Tmux::start(
        "cut",
        &["--replay", file.to_str().unwrap(), "--speed", "max"],
        120,
        30,
    );
    let s = tmux.wait_for("the end of the replay", Duration::from_secs(20), |s| {
        s.contains("(end)") && s.contains("is cut off")
    });
    let lines = s.lines().count();
    assert!(
        s.contains("is cut off at the end of the file, ignored"),
        "{s}"
    );
    // Everything before the cut line was played: the container came and went.
    assert!(s.contains("exit    container"), "{lines} lines:\n{s}");
    tmux.keys(&["q"]);
    assert_eq!(tmux.wait_exit(), "0");
}

#[test]
fn paced_replay_follows_the_recorded_clock() {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/unshare-mnt-pid.data"
    );
    // The recording spans about 65 ms after its start-up records: at 1/40 speed, 2.6 s.
    let start = Instant::now();
    let tmux = Tmux::start("paced", &["--replay", fixture, "--speed", "0.025"], 80, 24);
    tmux.wait_for("the end of the replay", Duration::from_secs(20), |s| {
        s.contains("(end)")
    });
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(2000),
        "a paced replay ended in {took:?}"
    );
    tmux.keys(&["q"]);
    tmux.wait_exit();
}

#[test]
fn replay_reads_ndjson_like_perf_data() {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/unshare-mnt-pid.data"
    );
    let out = Command::new(common::nswatch_bin())
        .args(["report", "--format", "ndjson", fixture])
        .output()
        .unwrap();
    assert!(out.status.success());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("unshare-mnt-pid.ndjson");
    std::fs::write(&file, &out.stdout).unwrap();
    let tmux = Tmux::start(
        "ndjson",
        &["--replay", file.to_str().unwrap(), "--speed", "max"],
        80,
        24,
    );
    let s = tmux.wait_for("the end of the replay", Duration::from_secs(20), |s| {
        s.contains("(end)")
    });
    let lines: Vec<&str> = s.lines().collect();
    assert_eq!(
        lines[0].trim_end(),
        "nswatch top replay unshare-mnt-pid.ndjson max (end) · 0 ct 0 sb 0 pod · 67 tasks"
    );
    for want in [
        "│    0.065 exit    container          ct-4026532178 (by unshare)               │",
        "│    0.064 start   container          ct-4026532178 (by unshare)               │",
        "│    0.064 ns      mnt                unshare[24115] in sb-4026532177          │",
    ] {
        assert!(lines.contains(&want), "missing {want:?} in:\n{s}");
    }
    tmux.keys(&["q"]);
    tmux.wait_exit();
}

#[test]
fn replay_of_ndjson_shows_the_names_the_recording_announced() {
    // A fixture's stream as `nswatch record` writes it for a named container: its start
    // line carries the name and runtime the census read.
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/unshare-mnt-pid.data"
    );
    let mut nd = String::new();
    for line in common::nswatch(&["report", "--format", "ndjson", fixture]).lines() {
        let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v["type"] == "container_start" && v["kind"] == "container" {
            v["name"] = "web".into();
            v["runtime"] = "docker".into();
            v["runtime_id"] = "4c1ae0c1a5e0".into();
        }
        nd.push_str(&format!("{v}\n"));
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("named.ndjson");
    std::fs::write(&file, nd).unwrap();
    let tmux = Tmux::start(
        "named",
        &["--replay", file.to_str().unwrap(), "--speed", "max"],
        80,
        24,
    );
    let s = tmux.wait_for("the end of the replay", Duration::from_secs(20), |s| {
        s.contains("(end)")
    });
    let lines: Vec<&str> = s.lines().collect();
    for want in [
        "│    0.065 exit    container docker   web (by unshare)                         │",
        "│    0.064 ns      pid                unshare[24117] in web                    │",
        "│    0.064 start   container docker   web (by unshare)                         │",
    ] {
        assert!(lines.contains(&want), "missing {want:?} in:\n{s}");
    }
    assert!(!s.contains("ct-4026532178 (by"), "{s}");
    tmux.keys(&["q"]);
    tmux.wait_exit();
}

#[test]
fn live_top_shows_a_runc_container_appear_by_name_and_go() {
    use common::runtimes::{runtime_ok, Container, Runtime};
    if !live_ok("nswatch top with runc") || !runtime_ok("nswatch top with runc", Runtime::Runc) {
        return;
    }
    let tmux = Tmux::start("runc", &[], 120, 30);
    tmux.wait_for("the live header", Duration::from_secs(20), |s| {
        s.contains("nswatch top live")
    });
    let mut c = Container::start(Runtime::Runc, "top");
    let name = c.id().to_string();
    // Filter on the container's id (runc's id is its name: the cgroup path says so).
    tmux.keys(&["/"]);
    tmux.keys(&["-l", &name]);
    tmux.keys(&["Enter"]);
    let s = tmux.wait_for("the container's row", Duration::from_secs(10), |s| {
        tree_row(s, "ct", &name).is_some()
    });
    let row = tree_row(&s, "ct", &name).unwrap();
    let tasks: usize = row.split_whitespace().nth(3).unwrap().parse().unwrap();
    assert_eq!(tasks, c.tasks().len(), "task count in {row:?}");
    c.stop();
    tmux.wait_for("the container's row to go", Duration::from_secs(10), |s| {
        tree_row(s, "ct", &name).is_none()
    });
    tmux.keys(&["q"]);
    assert_eq!(tmux.wait_exit(), "0");
}

#[test]
fn top_exits_when_its_terminal_goes_away() {
    // A replay that has finished waits for keys: the state in which a hung-up terminal made
    // crossterm read end-of-file forever at full CPU.
    let fixture = common::fixture("unshare-mnt-pid.data");
    let tmux = Tmux::start(
        "hangup",
        &["--replay", fixture.to_str().unwrap(), "--speed", "max"],
        100,
        30,
    );
    tmux.wait_for("the replay's end", Duration::from_secs(20), |s| {
        s.contains("nswatch top")
    });
    let pid = tmux.nswatch_pid();
    let _ = Command::new("tmux")
        .args(["-L", &tmux.socket, "kill-server"])
        .output();
    let t0 = Instant::now();
    // Gone, or a zombie nobody reaps: either way no longer running.
    while std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| !s.split(") ").nth(1).is_some_and(|r| r.starts_with('Z')))
    {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "nswatch top (pid {pid}) still runs after its terminal went away"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The fixture's event stream `copies` times over, each copy 1 s after the last: a long
/// recording.
fn long_ndjson(copies: u64) -> String {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/unshare-mnt-pid.data"
    );
    let one = common::nswatch(&["report", "--format", "ndjson", fixture]);
    // Each line split around its time, to shift it without parsing.
    let parts: Vec<(&str, u64, &str)> = one
        .lines()
        .map(|l| {
            let at = l.find("\"time_ns\":").unwrap() + "\"time_ns\":".len();
            let end = at + l[at..].find(|c: char| !c.is_ascii_digit()).unwrap();
            (&l[..at], l[at..end].parse().unwrap(), &l[end..])
        })
        .collect();
    let mut out = String::with_capacity(one.len() * copies as usize);
    for i in 0..copies {
        for (head, t, tail) in &parts {
            let t = if *t == 0 { 0 } else { t + i * 1_000_000_000 };
            out.push_str(&format!("{head}{t}{tail}\n"));
        }
    }
    out
}

#[test]
fn quitting_a_replay_at_max_speed_mid_read_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("long.ndjson");
    std::fs::write(&file, long_ndjson(2000)).unwrap();
    let tmux = Tmux::start(
        "quitmid",
        &["--replay", file.to_str().unwrap(), "--speed", "max"],
        100,
        24,
    );
    let s = tmux.wait_for("the replay under way", Duration::from_secs(20), |s| {
        s.lines()
            .next()
            .is_some_and(|l| l.contains("long.ndjson max") && l.contains('%'))
    });
    assert!(!s.contains("(end)"), "the replay ended already:\n{s}");
    tmux.keys(&["q"]);
    assert_eq!(tmux.wait_exit(), "0", "{}", tmux.screen());
    assert!(
        !tmux.screen().contains("nswatch: quit"),
        "{}",
        tmux.screen()
    );
}

#[test]
fn a_replay_shows_a_bad_line_in_its_status_and_stays_up_until_q() {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/unshare-mnt-pid.data"
    );
    let good = common::nswatch(&["report", "--format", "ndjson", fixture]);
    let line_100 = good
        .split_inclusive('\n')
        .take(100)
        .map(str::len)
        .sum::<usize>();
    // Invalid UTF-8 in line 101; and, in another file, a line that never ends.
    let mut bad_utf8 = good.as_bytes().to_vec();
    bad_utf8.insert(line_100 + 10, 0xff);
    let mut endless = good.as_bytes().to_vec();
    endless.extend_from_slice(b"{\"type\":\"fork\",\"a\":");
    endless.resize(endless.len() + (4 << 20), b'[');
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes, want) in [
        (
            "bad-utf8.ndjson",
            bad_utf8,
            format!(
                "read stopped: line 101 (offset {line_100:#x}): invalid UTF-8 at offset {:#x}",
                line_100 + 10
            ),
        ),
        (
            "endless.ndjson",
            endless,
            format!(
                "read stopped: line {} (offset {:#x}) is longer than 1048576 bytes",
                good.lines().count() + 1,
                good.len()
            ),
        ),
    ] {
        let file = dir.path().join(name);
        std::fs::write(&file, bytes).unwrap();
        let tmux = Tmux::start(
            "badline",
            &["--replay", file.to_str().unwrap(), "--speed", "max"],
            140,
            30,
        );
        let s = tmux.wait_for(
            "the error in the status line",
            Duration::from_secs(20),
            |s| s.contains(&want),
        );
        // The lines before the bad one were played.
        let header = s.lines().next().unwrap();
        assert!(
            header.contains("(end)") && !header.contains(" 0 tasks"),
            "{s}"
        );
        // Still up a second later, until q.
        std::thread::sleep(Duration::from_secs(1));
        assert!(tmux.screen().contains(&want), "{}", tmux.screen());
        tmux.keys(&["q"]);
        assert_eq!(tmux.wait_exit(), "0");
    }
}

/// A replay of the fixture played to its end in a `w`x`h` pane, with `more` arguments.
fn ended_replay(tag: &str, w: u16, h: u16, more: &[&str]) -> Tmux {
    let fixture = common::fixture("unshare-mnt-pid.data");
    let mut args = vec!["--replay", fixture.to_str().unwrap(), "--speed", "max"];
    args.extend(more);
    let tmux = Tmux::start(tag, &args, w, h);
    tmux.wait_for("the end of the replay", Duration::from_secs(20), |s| {
        s.contains("(end)")
    });
    tmux
}

#[test]
fn the_first_key_after_a_resize_acts_at_once() {
    let tmux = ended_replay("resize", 80, 24, &["--all"]);
    // With --all two rows, the host's and kdevtmpfs's group's.
    tmux.keys(&["j"]);
    tmux.wait_for("the selection to move", Duration::from_secs(5), |s| {
        s.contains("groups (2 rows)")
    });
    tmux.tmux(&["resize-window", "-t", "t", "-x", "100", "-y", "30"]);
    tmux.keys(&["q"]);
    // One key, no other: top must be gone (wait_exit allows 10 s).
    assert_eq!(tmux.wait_exit(), "0");
}

#[test]
fn a_resize_alone_redraws_at_the_new_size() {
    let tmux = ended_replay("redraw", 80, 24, &[]);
    tmux.tmux(&["resize-window", "-t", "t", "-x", "130", "-y", "30"]);
    // Wide enough for the tree beside the detail and events.
    tmux.wait_for("the wide layout", Duration::from_secs(5), |s| {
        s.lines().count() >= 30 && s.contains("┌ detail ")
    });
    tmux.keys(&["q"]);
    assert_eq!(tmux.wait_exit(), "0");
}

/// The group rows of the tree pane, in order, as "kind name" ("host" for the host).
fn group_rows(screen: &str) -> Vec<String> {
    screen
        .lines()
        .filter_map(|l| {
            let l = l.trim_start_matches('│');
            let rest = l.strip_prefix("▸ ").or_else(|| l.strip_prefix("▾ "))?;
            let w: Vec<&str> = rest.split_whitespace().collect();
            Some(match w.first() {
                Some(&"host") => "host".to_string(),
                _ => format!("{} {}", w.first()?, w.get(1)?),
            })
        })
        .collect()
}

/// The tree's row of the host: its cells split at whitespace ("│▸", "host", TASKS, …).
fn host_cells(screen: &str) -> Vec<&str> {
    screen
        .lines()
        .find(|l| l.contains("▸ host ") || l.contains("▾ host "))
        .map(|l| l.split_whitespace().collect())
        .unwrap_or_default()
}

#[test]
fn sort_by_a_column_and_reverse_it() {
    if !live_ok("nswatch top sorting two sandboxes") {
        return;
    }
    // Two sandboxes of this test's own, a with one task and b with three: names and task
    // counts sort them opposite ways round.
    let tag = format!("nswsort{}", std::process::id());
    let (a, b) = (format!("{tag}a"), format!("{tag}b"));
    let _na = Netns::start(&a);
    let _nb = Netns::run(&b, &["sh", "-c", "sleep 30 & sleep 30; wait"]);
    let tmux = Tmux::start("sort", &[], 100, 30);
    tmux.wait_for("the live header", Duration::from_secs(20), |s| {
        s.contains("nswatch top live")
    });
    // Only the two, whatever else this machine runs.
    tmux.keys(&["/"]);
    tmux.keys(&["-l", &tag]);
    tmux.keys(&["Enter"]);
    let (ra, rb) = (format!("sb {a}"), format!("sb {b}"));
    tmux.wait_for("both sandboxes", Duration::from_secs(10), |s| {
        tree_row(s, "sb", &b).is_some_and(|r| r.split_whitespace().nth(3) == Some("3"))
            && tree_row(s, "sb", &a).is_some()
    });
    // `>`: the next column after activity, the name (A to Z); `I` reverses it.
    tmux.keys(&[">"]);
    tmux.wait_for("sort by name", Duration::from_secs(5), |s| {
        s.contains("sort name ▲")
            && s.contains("NAME▲")
            && group_rows(s) == [ra.clone(), rb.clone()]
    });
    tmux.keys(&["I"]);
    tmux.wait_for("sort by name reversed", Duration::from_secs(5), |s| {
        s.contains("sort name ▼") && group_rows(s) == [rb.clone(), ra.clone()]
    });
    // `>`: tasks, still reversed (fewest first); `I`: most first.
    tmux.keys(&[">"]);
    tmux.wait_for("sort by tasks reversed", Duration::from_secs(5), |s| {
        s.contains("sort tasks ▲")
            && s.contains("TASKS▲")
            && group_rows(s) == [ra.clone(), rb.clone()]
    });
    tmux.keys(&["I"]);
    tmux.wait_for("sort by tasks", Duration::from_secs(5), |s| {
        s.contains("sort tasks ▼") && group_rows(s) == [rb.clone(), ra.clone()]
    });
    // `<` three times: back past name and activity to NS/s.
    tmux.keys(&["<", "<", "<"]);
    tmux.wait_for("sort by NS/s", Duration::from_secs(5), |s| {
        s.contains("sort ns/s ▼") && s.contains("NS/s▼")
    });
    tmux.keys(&["q"]);
    assert_eq!(tmux.wait_exit(), "0");
}

#[test]
fn kernel_threads_groups_count_as_the_host_unless_all() {
    // kdevtmpfs's mount namespace is a group of kernel threads alone (sb-4026531860).
    let plain = ended_replay("kthreads", 100, 30, &[]);
    let s = plain.screen();
    assert_eq!(group_rows(&s), ["host"], "{s}");
    assert!(!s.contains("sb-4026531860"), "{s}");
    let folded: u32 = host_cells(&s)[2].parse().unwrap();
    plain.keys(&["q"]);
    assert_eq!(plain.wait_exit(), "0");
    // --all lists it apart, and the host's row no longer counts its task; the header counts
    // it as no sandbox either way.
    let all = ended_replay("kthreadsall", 130, 30, &["--all"]);
    all.keys(&["j"]);
    let s = all.wait_for("its detail", Duration::from_secs(5), |s| {
        s.contains("kernel threads alone, counted with the host")
    });
    assert_eq!(group_rows(&s), ["host", "sb sb-4026531860"], "{s}");
    let own: u32 = host_cells(&s)[2].parse().unwrap();
    let theirs: u32 = tree_row(&s, "sb", "sb-4026531860")
        .unwrap()
        .split_whitespace()
        .nth(3)
        .unwrap()
        .parse()
        .unwrap();
    assert!(theirs >= 1, "{s}");
    assert_eq!(own + theirs, folded, "{s}");
    assert!(s.lines().next().unwrap().contains(" 0 sb "), "{s}");
    all.keys(&["q"]);
    assert_eq!(all.wait_exit(), "0");
}

/// The lines of the events pane (below its title, above its bottom border).
fn event_lines(screen: &str) -> Vec<&str> {
    screen
        .lines()
        .skip_while(|l| !l.contains("namespace events"))
        .skip(1)
        .take_while(|l| !l.starts_with('└'))
        .filter(|l| !l.trim_matches(|c| c == '│' || c == ' ').is_empty())
        .collect()
}

#[test]
fn the_filter_narrows_the_events_pane() {
    let tmux = ended_replay("filter", 80, 24, &[]);
    let s = tmux.screen();
    // Six: the start of kdevtmpfs's group is the host's, not shown.
    assert_eq!(event_lines(&s).len(), 6, "{s}");
    tmux.keys(&["/"]);
    tmux.keys(&["-l", "ct-4026532178"]);
    tmux.keys(&["Enter"]);
    let s = tmux.wait_for("the filtered events", Duration::from_secs(5), |s| {
        s.contains("namespace events (3) filter")
    });
    let lines = event_lines(&s);
    assert_eq!(lines.len(), 3, "{s}");
    assert!(lines.iter().all(|l| l.contains("ct-4026532178")), "{s}");
    tmux.keys(&["q"]);
    assert_eq!(tmux.wait_exit(), "0");
}

#[test]
fn narrow_panes_cut_with_an_ellipsis_and_keep_the_name() {
    let tmux = ended_replay("narrow", 80, 24, &["--all"]);
    tmux.tmux(&["resize-window", "-t", "t", "-x", "36", "-y", "24"]);
    // Drawn at the new width (tmux cuts the old screen to it before top redraws).
    let s = tmux.wait_for("the narrow layout", Duration::from_secs(5), |s| {
        s.lines()
            .any(|l| l.starts_with("┌ groups") && l.ends_with('┐') && l.chars().count() == 36)
    });
    let cut: Vec<&str> = event_lines(&s)
        .into_iter()
        .filter(|l| l.ends_with("…│"))
        .collect();
    assert!(!cut.is_empty(), "no event line cut with '…':\n{s}");
    // The name column keeps its room: the id of kdevtmpfs's group (listed with --all)
    // shows whole or cut with '…'.
    assert!(
        s.lines()
            .any(|l| l.contains("▸ sb sb-4026531860") || l.contains("▸ sb sb-40…")),
        "{s}"
    );
    tmux.keys(&["q"]);
    assert_eq!(tmux.wait_exit(), "0");
}

/// Processes killed and reaped when dropped.
struct Kids(Vec<Child>);

impl Drop for Kids {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn ns_ino(pid: u32, kind: &str) -> u64 {
    let link = std::fs::read_link(format!("/proc/{pid}/ns/{kind}")).unwrap();
    let s = link.to_string_lossy();
    s[s.find('[').unwrap() + 1..s.len() - 1].parse().unwrap()
}

#[test]
fn live_top_at_80x24_shows_the_busiest_of_many_sandboxes_first() {
    if !live_ok("nswatch top with many sandboxes") {
        return;
    }
    let tmux = Tmux::start("many", &[], 80, 24);
    tmux.wait_for("the live header", Duration::from_secs(20), |s| {
        s.contains("nswatch top live")
    });
    let spawn = |args: &[&str]| {
        Command::new("unshare")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("unshare")
    };
    let mut kids = Kids(Vec::new());
    for _ in 0..12 {
        kids.0.push(spawn(&["-u", "sleep", "120"]));
    }
    // One sandbox forks and execs all the time: the busiest.
    let busy = spawn(&["-u", "sh", "-c", "while :; do /bin/true; done"]);
    let busy_pid = busy.id();
    kids.0.push(busy);
    std::thread::sleep(Duration::from_millis(200));
    let want = format!("sb-{}", ns_ino(busy_pid, "uts"));
    // The first sandbox row, before the idle ones (the host, doing this machine's other
    // work, may be busier still, and sorts like any group).
    let s = tmux.wait_for("the busiest sandbox first", Duration::from_secs(15), |s| {
        let rows = group_rows(s);
        rows.iter()
            .find(|r| r.starts_with("sb "))
            .is_some_and(|r| r.ends_with(&want))
            && rows.iter().filter(|r| r.starts_with("sb ")).count() >= 3
    });
    let rows = group_rows(&s);
    // The tree pane of an 80x24 screen holds 9 rows: 13 sandboxes and the host do not
    // fit, yet the busiest shows, near the top.
    assert!(rows.len() <= 9, "{s}");
    let at = rows.iter().position(|r| r.ends_with(&want)).unwrap();
    assert!(at <= 1, "{s}");
    // The sandboxes have no cgroup of their own: no CPU or memory figure for them.
    let row = s.lines().find(|l| l.contains(&want)).unwrap();
    assert_eq!(row.split_whitespace().nth(5), Some("-"), "{s}");
    drop(kids);
    tmux.keys(&["q"]);
    assert_eq!(tmux.wait_exit(), "0");
}

#[test]
fn live_top_reads_a_containers_cpu_and_memory_from_its_cgroup() {
    use common::runtimes::{runtime_ok, Container, Runtime};
    let what = "nswatch top: CPU and memory of a runc container";
    if !live_ok(what) || !runtime_ok(what, Runtime::Runc) {
        return;
    }
    let tmux = Tmux::start("cpu", &[], 100, 30);
    tmux.wait_for("the live header", Duration::from_secs(20), |s| {
        s.contains("nswatch top live")
    });
    let mut c = Container::start(Runtime::Runc, "cpu");
    // Busy work inside: a shell loop that never waits.
    c.exec(&["/bin/sh", "-c", "while :; do :; done"]);
    let name = c.id().to_string();
    tmux.keys(&["/"]);
    tmux.keys(&["-l", &name]);
    tmux.keys(&["Enter"]);
    // NAME, TASKS, CPU%, MEM: "▸ ct NAME TASKS CPU% MEM …".
    let figures = |s: &str| -> Option<(f64, String)> {
        let row = tree_row(s, "ct", &name)?;
        let w: Vec<&str> = row.split_whitespace().collect();
        Some((w.get(4)?.parse().ok()?, w.get(5)?.to_string()))
    };
    let s = tmux.wait_for("the container's CPU", Duration::from_secs(15), |s| {
        figures(s).is_some_and(|(cpu, _)| cpu >= 20.0)
    });
    let (cpu, mem) = figures(&s).unwrap();
    // A loop that never waits keeps about one core busy (less on a shared machine).
    assert!(cpu <= 105.0, "CPU {cpu}% in:\n{s}");
    assert!(
        mem != "-" && mem.ends_with(['K', 'M', 'G']),
        "memory {mem:?} in:\n{s}"
    );
    c.stop();
    tmux.keys(&["q"]);
    assert_eq!(tmux.wait_exit(), "0");
}

#[test]
fn replay_shows_only_the_pid_or_container_asked_for() {
    // Pid 24117 is unshare's child, the first task of ct-4026532178's pid namespace.
    for (tag, sel) in [
        ("selpid", ["-p", "24117"]),
        ("selct", ["--container", "ct-4026532178"]),
    ] {
        let tmux = ended_replay(tag, 80, 24, &sel);
        let s = tmux.screen();
        // The group's start, its task's entry into the new pid namespace, its exit; not
        // unshare[24115]'s own mount namespace change.
        let lines = event_lines(&s);
        assert_eq!(lines.len(), 3, "{s}");
        assert!(lines.iter().all(|l| l.contains("ct-4026532178")), "{s}");
        assert!(!s.contains("unshare[24115]"), "{s}");
        // The title says what is shown; at the end nothing of it runs.
        assert!(s.contains(&format!("{} {} ", sel[0], sel[1])), "{s}");
        assert!(s.contains("(nothing selected now)"), "{s}");
        assert!(
            s.lines().next().unwrap().trim_end().ends_with(" 0 tasks"),
            "{s}"
        );
        tmux.keys(&["q"]);
        assert_eq!(tmux.wait_exit(), "0");
    }
    // Part of it not in the recording: said in the status line.
    let tmux = ended_replay("selsome", 80, 24, &["-p", "24117,999999"]);
    let s = tmux.screen();
    assert!(s.contains("no event of pid 999999"), "{s}");
    assert_eq!(event_lines(&s).len(), 3, "{s}");
    tmux.keys(&["q"]);
    assert_eq!(tmux.wait_exit(), "0");
    // None of it: an error before the screen opens, as `report` says it.
    let fixture = common::fixture("unshare-mnt-pid.data");
    for (sel, want) in [
        (["-p", "999999"], "no event of pid 999999"),
        (["--container", "nosuch"], "no group named \"nosuch\""),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_nswatch-top"))
            .args(["--replay", fixture.to_str().unwrap()])
            .args(sel)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains(want), "{err}");
    }
}

#[test]
fn live_top_p_shows_the_group_of_a_pid_and_says_a_pid_not_running() {
    // None running: an error before anything else (and before any privilege is needed).
    let out = Command::new(env!("CARGO_BIN_EXE_nswatch-top"))
        .args(["-p", "999999"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("pid 999999: no such process"), "{err}");
    assert!(
        err.contains("none of the processes asked for (-p) is running"),
        "{err}"
    );
    if !live_ok("nswatch top -p") {
        return;
    }
    let name = format!("nswpid{}", std::process::id());
    let ns = Netns::start(&name);
    let pid = format!("{},999999", ns.pid());
    let tmux = Tmux::start("selpidlive", &["-p", &pid], 100, 30);
    // Both in one capture: tmux can be read while a frame is half drawn (its rows first,
    // the status line last).
    let s = tmux.wait_for(
        "its group alone, the pid not running said",
        Duration::from_secs(20),
        |s| group_rows(s) == [format!("sb {name}")] && s.contains("pid 999999: no such process"),
    );
    assert!(s.contains(&format!("-p {pid} ")), "{s}");
    // The header counts the selection's tasks: the one sleep.
    assert!(
        s.lines().next().unwrap().trim_end().ends_with(" 1 tasks"),
        "{s}"
    );
    tmux.keys(&["q"]);
    assert_eq!(tmux.wait_exit(), "0");
}

#[test]
fn live_top_container_waits_for_it_and_shows_it_alone() {
    if !live_ok("nswatch top --container") {
        return;
    }
    let name = format!("nswsel{}", std::process::id());
    let tmux = Tmux::start("selctlive", &["--container", &name], 100, 30);
    let s = tmux.wait_for(
        "the note that it is not there",
        Duration::from_secs(20),
        |s| s.contains(&format!("no group named \"{name}\" now")),
    );
    assert!(s.contains("(nothing selected now)"), "{s}");
    assert!(s.contains(&format!("--container {name} ")), "{s}");
    let ns = Netns::start(&name);
    let s = tmux.wait_for("its row alone", Duration::from_secs(10), |s| {
        group_rows(s) == [format!("sb {name}")]
    });
    assert!(!s.contains("no group named"), "{s}");
    assert!(
        s.lines().next().unwrap().trim_end().ends_with(" 1 tasks"),
        "{s}"
    );
    // Its events alone.
    let events = event_lines(&s);
    assert!(events.iter().any(|l| l.contains("start   sandbox")), "{s}");
    assert!(events.iter().all(|l| l.contains(&name)), "{s}");
    // The detail pane (Tab) writes its namespaces by inode number, as lsns does; its own
    // marked.
    let net = ns_ino(ns.pid(), "net");
    tmux.keys(&["Tab"]);
    tmux.wait_for("its detail", Duration::from_secs(5), |s| {
        s.contains(&format!("net    {net}*"))
    });
    tmux.keys(&["q"]);
    assert_eq!(tmux.wait_exit(), "0");
}
