//! Runs `nswatch` as a child under a wall-time limit and reads what it cost: its exit, its
//! output, its wall time and its peak resident memory. A child over the limit is killed, so
//! a test of a runaway input fails in bounded time instead of hanging.
//!
//! The peak is the child's VmHWM (/proc/PID/status), read every millisecond while it runs:
//! `wait4`'s `ru_maxrss` would count the test process too, whose memory a child spawned
//! with vfork holds until its exec (the kernel folds it into the child's maximum there).

use std::ffi::OsStr;
use std::io::Read;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What a run of nswatch did and cost.
#[derive(Debug)]
pub struct Outcome {
    /// Exit status, when it exited.
    pub code: Option<i32>,
    /// The signal that ended it, when one did.
    pub signal: Option<i32>,
    /// Standard output (empty when the test took the pipe itself).
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: String,
    /// Wall time from start to exit.
    pub wall: Duration,
    /// Peak resident set, in KiB, as last read before the exit (0 for a child too quick
    /// to be read once).
    pub max_rss_kb: u64,
    /// True when the limit was reached and the child killed.
    pub killed: bool,
}

/// A child being run.
pub struct Watched {
    child: Child,
    start: Instant,
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr: JoinHandle<Vec<u8>>,
    /// Set between the child's exit and its reaping (see the watchdog in [`start`]).
    done: Arc<Mutex<bool>>,
    killed: Arc<Mutex<bool>>,
    /// Reads the child's peak memory, and kills it at the limit; returns the peak.
    dog: JoinHandle<u64>,
}

fn drain(mut r: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = r.read_to_end(&mut v);
        v
    })
}

/// Starts nswatch with `args`; standard input is a pipe when `stdin_pipe` (take it with
/// [`Watched::stdin`]), else /dev/null. Standard output is read by a thread unless
/// `own_stdout` (take it with [`Watched::stdout`]).
pub fn start(args: &[&OsStr], stdin_pipe: bool, own_stdout: bool, limit: Duration) -> Watched {
    let mut child = Command::new(super::nswatch_bin())
        .args(args)
        .stdin(if stdin_pipe {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start nswatch");
    let stdout = (!own_stdout).then(|| drain(child.stdout.take().unwrap()));
    let stderr = drain(child.stderr.take().unwrap());
    let (start, pid) = (Instant::now(), child.id() as i32);
    // The watchdog kills only a child not yet reaped: the waiter sets `done` between
    // seeing the exit (WNOWAIT: the pid stays the child's) and reaping it.
    let done = Arc::new(Mutex::new(false));
    let killed = Arc::new(Mutex::new(false));
    let dog = {
        let (done, killed, start, limit) = (done.clone(), killed.clone(), start, limit);
        std::thread::spawn(move || {
            let status = format!("/proc/{pid}/status");
            let mut hwm = 0;
            loop {
                // High-water mark: the last reading is the peak up to then.
                if let Some(kb) = std::fs::read_to_string(&status).ok().and_then(|s| {
                    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
                    line.split_whitespace().nth(1)?.parse::<u64>().ok()
                }) {
                    hwm = kb;
                }
                std::thread::sleep(Duration::from_millis(1));
                let d = done.lock().unwrap();
                if *d {
                    return hwm;
                }
                if start.elapsed() > limit && !*killed.lock().unwrap() {
                    // SAFETY: the child is not reaped while `done` is false.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                    *killed.lock().unwrap() = true;
                }
            }
        })
    };
    Watched {
        child,
        start,
        stdout,
        stderr,
        done,
        killed,
        dog,
    }
}

impl Watched {
    /// The child's standard input.
    pub fn stdin(&mut self) -> ChildStdin {
        self.child.stdin.take().expect("stdin is a pipe")
    }

    /// The child's standard output, when the test reads it itself.
    pub fn stdout(&mut self) -> ChildStdout {
        self.child.stdout.take().expect("stdout is the test's")
    }

    /// The child's process id.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Waits for the child (killing it at the limit) and tells what it did and cost.
    pub fn finish(mut self) -> Outcome {
        drop(self.child.stdin.take());
        let pid = self.pid();
        loop {
            // SAFETY: waitid on our own child, into a zeroed siginfo.
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            let r = unsafe {
                libc::waitid(
                    libc::P_PID,
                    pid as libc::id_t,
                    &mut info,
                    libc::WEXITED | libc::WNOWAIT,
                )
            };
            if r == 0 {
                break;
            }
            assert_eq!(
                std::io::Error::last_os_error().kind(),
                std::io::ErrorKind::Interrupted
            );
        }
        let wall = self.start.elapsed();
        *self.done.lock().unwrap() = true;
        let max_rss_kb = self.dog.join().unwrap();
        let mut status = 0;
        // SAFETY: reaping our own child, which has exited.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(r, pid, "wait4: {}", std::io::Error::last_os_error());
        let stdout = self
            .stdout
            .take()
            .map(|h| h.join().unwrap())
            .unwrap_or_default();
        let stderr = String::from_utf8_lossy(&self.stderr.join().unwrap()).into_owned();
        let killed = *self.killed.lock().unwrap();
        Outcome {
            code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
            signal: libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status)),
            stdout,
            stderr,
            wall,
            max_rss_kb,
            killed,
        }
    }
}

/// Runs nswatch with `args` to its end (input from /dev/null).
pub fn run(args: &[&OsStr], limit: Duration) -> Outcome {
    start(args, false, false, limit).finish()
}

/// What a refusal of bad input must look like: killed by nothing, within `limit` and
/// `rss_mb`, exit status 1, no panic, an offset (or line) in the message, each of
/// `expect` in it, and whatever reached standard output whole lines (JSON ones when
/// `ndjson`).
pub fn assert_refused(out: &Outcome, limit: Duration, rss_mb: u64, ndjson: bool, expect: &[&str]) {
    let err = &out.stderr;
    assert!(
        !out.killed,
        "still running after {limit:?} (killed); stderr: {err}"
    );
    assert_eq!(out.signal, None, "ended by a signal; stderr: {err}");
    assert_eq!(out.code, Some(1), "exit status; stderr: {err}");
    assert!(out.wall <= limit, "took {:?}", out.wall);
    assert!(
        out.max_rss_kb <= rss_mb << 10,
        "peak RSS {} KiB over {rss_mb} MiB",
        out.max_rss_kb
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains("at offset 0x") || err.contains("line "),
        "no offset in: {err}"
    );
    for e in expect {
        assert!(err.contains(e), "{e:?} not in: {err}");
    }
    let text = String::from_utf8(out.stdout.clone()).expect("UTF-8 output");
    assert!(text.is_empty() || text.ends_with('\n'), "a cut line");
    if ndjson {
        for line in text.lines() {
            serde_json::from_str::<serde_json::Value>(line).expect("well-formed line");
        }
    }
}
