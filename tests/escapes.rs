//! A process that names itself with terminal escapes and a newline: `ps` and `report`
//! text show the name escaped (`\x1b`, `\x07`, `\x0a`), never the raw bytes; the JSON
//! outputs keep it exact. The live tests need root and perf (they skip with a reason
//! otherwise, and fail instead under NSWATCH_REQUIRE_LIVE=1).

mod common;

use common::live_ok;
use std::io::Write;
use std::process::{Child, Command, Stdio};

/// The name a hostile process gives itself: a window-title escape, a bell, a newline that
/// would start a line of its own. 15 bytes, so the kernel keeps it whole.
const HOSTILE: &str = "a\x1b]0;pwned\x07\nb";
/// How the text outputs write it.
const ESCAPED: &str = "a\\x1b]0;pwned\\x07\\x0ab";

/// A shell in a UTS namespace of its own (a sandbox group) that renames itself to
/// [`HOSTILE`] and waits for its standard input to close. Killed when dropped.
struct Named(Child);

impl Named {
    fn start() -> Named {
        let script = format!(
            "printf '{}' > /proc/self/comm && echo ready && read x",
            HOSTILE
                .replace('\x1b', "\\033")
                .replace('\x07', "\\007")
                .replace('\n', "\\n")
        );
        let mut child = Command::new("unshare")
            .args(["--uts", "sh", "-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(line, "ready\n");
        let comm = std::fs::read_to_string(format!("/proc/{}/comm", child.id())).unwrap();
        assert_eq!(comm, format!("{HOSTILE}\n"), "the shell renamed itself");
        Named(child)
    }
}

impl Drop for Named {
    fn drop(&mut self) {
        let _ = self.0.stdin.take().map(|mut s| s.write_all(b"\n"));
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// How `report` shows the name perf read for a task it found at its start: from
/// /proc/PID/status, where the kernel writes a newline in a name as `\n`.
const ESCAPED_BY_STATUS: &str = "a\\x1b]0;pwned\\x07\\nb";

/// No byte of `out` is a control character but the newline ending each line, and every
/// line that names the process shows it escaped (one of `forms`).
fn assert_escaped(out: &str, pid: u32, forms: &[&str], what: &str) {
    assert!(
        !out.chars().any(|c| c.is_control() && c != '\n'),
        "{what}: a control character reaches the terminal:\n{out:?}"
    );
    let named: Vec<&str> = out.lines().filter(|l| l.contains("pwned")).collect();
    assert!(
        !named.is_empty(),
        "{what}: the process is not shown:\n{out}"
    );
    for l in &named {
        assert!(forms.iter().any(|f| l.contains(f)), "{what}: {l:?}");
    }
    assert!(
        named.iter().any(|l| l.contains(&pid.to_string())),
        "{what}: pid {pid} not on the line of its name:\n{out}"
    );
    // The newline in the name started no line of its own.
    assert!(!out.lines().any(|l| l.starts_with('b')), "{what}:\n{out}");
}

#[test]
fn ps_text_escapes_a_hostile_command_name() {
    if !live_ok("ps with a hostile command name") {
        return;
    }
    let named = Named::start();
    let pid = named.0.id();
    for args in [&["ps"][..], &["ps", "--all"], &["ps", "--no-bpf"]] {
        assert_escaped(&common::nswatch(args), pid, &[ESCAPED], &args.join(" "));
    }
    // JSON keeps the name exact.
    let v: serde_json::Value = serde_json::from_str(&common::nswatch(&["ps", "--format", "json"]))
        .expect("ps --format json is JSON");
    let exact = serde_json::to_string(HOSTILE).unwrap();
    assert!(v.to_string().contains(exact.trim_matches('"')), "{v}");
}

#[test]
fn report_text_escapes_a_hostile_command_name() {
    if !live_ok("report with a hostile command name") {
        return;
    }
    let named = Named::start();
    let pid = named.0.id();
    // perf writes the tasks it finds at its start, the renamed shell among them (its own
    // UTS namespace: a line of the story), then the recording's hostname and command line.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hostile.data");
    let out = Command::new("perf")
        .args(["record", "-q", "--namespaces", "-e", "dummy", "-a", "-o"])
        .arg(&data)
        .args(["--", "sh", "-c", &format!("true '{HOSTILE}'")])
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "perf record: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = common::nswatch(&["report", data.to_str().unwrap()]);
    let forms = [ESCAPED, ESCAPED_BY_STATUS];
    assert_escaped(&text, pid, &forms, "report");
    // The header's command line (perf's cmdline feature) held the name too.
    let header = text.lines().next().unwrap();
    assert!(header.contains(&format!("true '{ESCAPED}'")), "{header}");
    // The NDJSON stream, read back as text, is escaped the same way.
    let nd = common::nswatch(&["report", "--format", "ndjson", data.to_str().unwrap()]);
    let file = dir.path().join("hostile.ndjson");
    std::fs::write(&file, &nd).unwrap();
    assert_escaped(
        &common::nswatch(&["report", file.to_str().unwrap()]),
        pid,
        &forms,
        "report of NDJSON",
    );
    // The stream itself keeps the exact name (JSON escapes).
    assert!(nd.contains("a\\u001b]0;pwned\\u0007\\\\nb"), "{nd}");
}

#[test]
fn error_messages_escape_what_they_quote() {
    // A file name is input too.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(HOSTILE);
    std::fs::write(&file, "{\"type\":\"fork\"}\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_nswatch"))
        .args(["report", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        !err.trim_end().chars().any(char::is_control),
        "a control character in {err:?}"
    );
    assert!(
        err.contains(&format!("{ESCAPED}: at line 1 (offset 0x0): fork: ")),
        "{err}"
    );
}
