//! `nswatch record`: stream every task and namespace change on the machine as NDJSON.

use anyhow::{Context, Result};
use nswatch::event::{JsonWriter, EVENT_TYPES};
use nswatch::live::CaptureOptions;
use nswatch::model::json::{add_wall_times, write_change, write_labeled};
use nswatch::model::Attributor;
use nswatch::out_file::{create_output, AppendFile, DIRECT_WRITE};
use nswatch::record::kind_name;
use nswatch::report::{write_change_line, write_event_line, Times};
use nswatch::rotate::{parse_size, Rotation, DEFAULT_KEEP};
use nswatch::select::{ContainerQuery, Selection};
use nswatch::session::{Session, SessionOptions, Update};
use nswatch::units::parse_duration;
use nswatch::units::WallClock;
use std::collections::BTreeMap;
use std::io::{self, IsTerminal};
use std::os::fd::AsFd;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Arguments of `nswatch record`.
#[derive(clap::Args)]
pub struct RecordArgs {
    /// Write the events to FILE instead of standard output: created 0600, a file already
    /// there moved to FILE.old; a symbolic link is not followed (but to a device, a FIFO or
    /// one of nswatch's own descriptors, e.g. /dev/stdout).
    #[arg(short = 'o', long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Stop after this long (e.g. 10 (seconds), 1m30s, 500ms).
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Write the file (`-o`) through the page cache. By default it is written with direct
    /// I/O where the file system does it whole (ext4, XFS, btrfs): no copy into the page
    /// cache and no writeback after, the file's size still exactly the lines written.
    #[arg(long)]
    buffered: bool,
    /// Rotate the file (`-o`) when it reaches SIZE (e.g. 100M; K, M, G, T are powers of
    /// 1024): FILE is renamed FILE.1 (FILE.1 to FILE.2, and so on) and a new FILE is
    /// created, never splitting a line; a file already there is rotated first.
    #[arg(long, value_name = "SIZE", value_parser = parse_size, requires = "output")]
    rotate_size: Option<u64>,
    /// How many rotated files --rotate-size keeps (FILE.1, the newest, to FILE.N; the
    /// oldest beyond them is removed) [default: 5].
    #[arg(long, value_name = "N", requires = "rotate_size")]
    rotate_keep: Option<u32>,
    /// Keep only events of these process ids (comma list, repeatable).
    #[arg(short = 'p', long = "pid", value_name = "PID", value_delimiter = ',')]
    pids: Vec<u32>,
    /// Keep only events of this group and the containers nested in it: its label
    /// (ct-4026532300), name, runtime id, or the id's first 12 or more characters.
    #[arg(long, value_name = "NAME|ID")]
    container: Option<String>,
    /// Keep only events of tasks with this command name (repeatable).
    #[arg(long = "comm", value_name = "NAME")]
    comms: Vec<String>,
    /// Data pages per CPU ring (rounded up to a power of two).
    #[arg(long, default_value_t = nswatch::live::DEFAULT_RING_PAGES)]
    ring_pages: usize,
    /// How long records wait for older ones from other CPUs before they are written
    /// (e.g. 10ms).
    #[arg(long, default_value = "10ms", value_parser = parse_duration)]
    reorder_window: Duration,
    /// Longest time an event waits in the rings before it is written, when less than half
    /// a ring's worth comes in (busier rings wake nswatch at once). Each wake-up costs CPU
    /// (~80 µs in a VM): shorter is fresher output, longer is cheaper.
    #[arg(long, default_value = "250ms", value_parser = parse_duration)]
    latency: Duration,
    /// How events are written: one line of text each (the default on a terminal), or NDJSON
    /// (the default to a pipe or a file).
    #[arg(long, value_enum)]
    format: Option<RecordFormat>,
    /// Times as the recording's clock (mono: CLOCK_MONOTONIC ns, as perf -k mono), or
    /// also as wall-clock time (wall: RFC 3339 in the text, a "wall_time" field in NDJSON).
    #[arg(long, value_enum, default_value = "mono")]
    time: TimeArg,
    /// Count only: write no events (nor any file), just the summary on standard error.
    #[arg(long, conflicts_with = "output")]
    count_only: bool,
    /// Do not load the eBPF probe: namespace changes without their causes (syscall,
    /// flags, target, result).
    #[arg(long)]
    no_bpf: bool,
    /// Serve Prometheus metrics on ADDR at /metrics while recording: a port alone listens
    /// on loopback (9464 is 127.0.0.1:9464), an address with its port there (0.0.0.0:9464:
    /// every interface). With --count-only, the metrics alone (no events written).
    #[cfg(feature = "metrics")]
    #[arg(long, value_name = "ADDR", value_parser = nswatch::metrics::parse_addr)]
    metrics: Option<std::net::SocketAddr>,
    /// How long a group that ended stays in the metrics (e.g. 5m, 30s).
    #[cfg(feature = "metrics")]
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration, requires = "metrics")]
    metrics_retention: Duration,
    /// How long what ended is remembered (e.g. 10m, 1h; at least 1s): a group that ended
    /// longer ago gives back its memory (names, label, namespace sets), so that a
    /// recording that runs for weeks keeps the size of its last window; entered again
    /// after that, a namespace kept alive by a file or a mount is a new group of the
    /// same label, named again.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_history)]
    history: Duration,
    /// Trace the whole machine while this command runs, and stop when it exits.
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<String>,
}

/// `record --format`.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum RecordFormat {
    /// A line for people per event: time, CPU, pid/tid, command, group, what happened.
    Text,
    /// One JSON object per event (schema/event-v1.schema.json).
    Ndjson,
}

/// `--time`.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TimeArg {
    /// The recording's clock, CLOCK_MONOTONIC (seconds since boot).
    Mono,
    /// Wall-clock time, RFC 3339, UTC.
    Wall,
}

/// Lines are written out once this many bytes wait (and after every poll): a setns storm
/// writes ~600 MB/s of NDJSON, and one write() per 64 KiB was 1,700 syscalls a second at
/// 110 MB/s.
const FLUSH_AT: usize = 1 << 18;

/// Where the lines go: whole lines only, so that an interrupted file is well-formed.
struct Sink {
    /// Lines are made in its buffer and written by its commits.
    out: AppendFile,
    flush_at: usize,
    json: JsonWriter,
    /// Events written, by [`Body::type_index`].
    counts: [u64; EVENT_TYPES.len()],
    /// Group events written: starts, exits, renames.
    group_events: [u64; 3],
    count_only: bool,
    filter: Selection,
    /// Lines for people instead of NDJSON, with their times.
    text: Option<Times>,
    /// `--time wall` in NDJSON.
    wall: Option<WallClock>,
    /// The first write error; later updates are dropped, the run stops at the next check.
    error: Option<io::Error>,
    /// When lines were last written, and how long lines may wait after a poll for the
    /// next one ([`Sink::flush_due`]).
    last_commit: Instant,
    commit_every: Duration,
    /// The counts `--metrics` serves: of every update, whatever the filter.
    #[cfg(feature = "metrics")]
    metrics: Option<nswatch::metrics::Counts>,
}

impl Sink {
    fn put(&mut self, model: &Attributor, update: Update<'_>) {
        #[cfg(feature = "metrics")]
        if let Some(m) = self.metrics.as_mut() {
            m.put(model, &update);
        }
        let keep = match &update {
            Update::Event { event, group } => self.filter.keep(model, event, *group),
            Update::Group(c) => self.filter.keep_group(model, c.group),
        };
        if !keep {
            return;
        }
        match update {
            Update::Event { event, group } => {
                self.counts[event.body.type_index()] += 1;
                if self.count_only {
                } else if let Some(times) = &self.text {
                    write_event_line(model, event, group, times, self.out.buffer());
                } else {
                    let g = group.map(|g| model.group(g));
                    let from = self.out.buffer().len();
                    write_labeled(&mut self.json, event, g, self.out.buffer());
                    if let Some(w) = &self.wall {
                        add_wall_times(self.out.buffer(), from, w);
                    }
                }
            }
            Update::Group(c) => {
                self.group_events[c.kind as usize] += 1;
                if self.count_only {
                } else if let Some(times) = &self.text {
                    write_change_line(model, c, times, self.out.buffer());
                } else {
                    let from = self.out.buffer().len();
                    write_change(model, c, self.out.buffer());
                    if let Some(w) = &self.wall {
                        add_wall_times(self.out.buffer(), from, w);
                    }
                }
            }
        }
        if self.out.pending() >= self.flush_at {
            // A storm's pace: the next poll's commit writes what is left of a block.
            let _ = self.commit(AppendFile::commit_blocks);
        }
    }

    /// After a poll: writes the lines waiting, unless a write was made less than
    /// `commit_every` ago; they then go with the next full buffer or after the next poll.
    /// A write that failed in [`Sink::put`] is returned at once, so that the run stops.
    /// Under a storm, writes of `flush_at` bytes come every millisecond or two from
    /// [`Sink::put`], and a write of what one drain left besides (each poll's, before)
    /// doubled the writes: each direct one costs ~90 µs of switching and notifying the
    /// device in this VM whatever its size. The poll does not wake up sooner for them: a
    /// wake-up costs as much (the fork loop went from 175 to 227 ns a record when it did).
    fn flush_due(&mut self) -> io::Result<()> {
        let due = self.out.pending() > 0 && self.last_commit.elapsed() >= self.commit_every;
        if due || self.error.is_some() {
            self.flush()
        } else {
            Ok(())
        }
    }

    /// Writes every line waiting.
    fn flush(&mut self) -> io::Result<()> {
        self.commit(AppendFile::commit)
    }

    fn commit(&mut self, how: fn(&mut AppendFile) -> io::Result<()>) -> io::Result<()> {
        self.last_commit = Instant::now();
        if self.error.is_none() {
            if let Err(e) = how(&mut self.out) {
                self.error = Some(e);
            }
        }
        if self.error.is_some() {
            self.out.discard();
        }
        match &self.error {
            Some(e) => Err(io::Error::new(e.kind(), e.to_string())),
            None => Ok(()),
        }
    }
}

/// Runs `nswatch record`.
pub fn run(args: &RecordArgs) -> Result<()> {
    check_pids(&args.pids)?;
    let rotation = match (&args.output, args.rotate_size) {
        (Some(p), Some(size)) => {
            let r = Rotation::new(p, size, args.rotate_keep.unwrap_or(DEFAULT_KEEP));
            r.check()?;
            Some(r)
        }
        _ => None,
    };
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("installing a signal handler")?;
    }
    // The command's end interrupts the wait for records (epoll_wait is never restarted
    // after a handler), so that `record -- CMD` stops at once, not after `--latency`.
    let child_ended = Arc::new(AtomicBool::new(false));
    if !args.command.is_empty() {
        signal_hook::flag::register(signal_hook::consts::SIGCHLD, Arc::clone(&child_ended))
            .context("installing a signal handler")?;
    }
    let opts = SessionOptions {
        capture: CaptureOptions {
            ring_pages: args.ring_pages,
            window: args.reorder_window,
            tick: args.latency.max(Duration::from_millis(1)),
        },
        bpf: !args.no_bpf,
        history: Some(args.history),
        ..Default::default()
    };
    // A bad --metrics address fails before anything starts.
    #[cfg(feature = "metrics")]
    let metrics = args
        .metrics
        .map(nswatch::metrics::Server::start)
        .transpose()?;
    let mut session = Session::start(opts)?;
    // `record` labels each event with its task's group at that moment, in time order, and
    // never asks about the past: it keeps no history and no ended tasks. (With the 5 s a
    // profiler needs, a setns storm's history grew by ~100,000 intervals a second for the
    // first 5 s, a sixth of record's CPU in page faults and copies, and its memory.)
    session.model_mut().set_grace_ns(0);
    let bpf_state = match session.stats().bpf.as_str() {
        "off" => "off (--no-bpf)".to_string(),
        s => {
            if let Some(why) = s.strip_prefix("unavailable: ") {
                super::note!(
                    "nswatch: eBPF unavailable, recording namespace changes without their causes: {why}"
                );
                "unavailable".to_string()
            } else {
                s.to_string()
            }
        }
    };
    let capacity = DIRECT_WRITE + (1 << 16);
    let out = match (&args.output, rotation) {
        // Every error names the file.
        (Some(_), Some(r)) => AppendFile::rotating(r, capacity, !args.buffered)?,
        // A new file, 0600, never through a planted link; a device or FIFO as a stream.
        (Some(p), None) => {
            let o = create_output(p)?;
            AppendFile::with_direct(o.file, capacity, o.fresh && !args.buffered)
                .with_context(|| format!("{}: preparing it for writing", p.display()))?
        }
        // Standard output's offset may be shared (`(nswatch record; echo) > f`): written
        // buffered, so that the offset moves with the lines.
        (None, _) => io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .map(std::fs::File::from)
            .and_then(|f| AppendFile::new(f, capacity))
            .context("standard output")?,
    };
    // Text on a terminal, NDJSON to a pipe or a file, unless asked.
    let text = match args.format {
        Some(f) => f == RecordFormat::Text,
        None => args.output.is_none() && io::stdout().is_terminal(),
    };
    let wall = (args.time == TimeArg::Wall).then(WallClock::now);
    let flush_at = if out.is_direct() {
        DIRECT_WRITE
    } else {
        FLUSH_AT
    };
    let filter = Selection::new(
        args.pids.clone(),
        args.comms.clone(),
        args.container.as_deref(),
    );
    let mut sink = Sink {
        out,
        flush_at,
        json: JsonWriter::new(),
        counts: [0; EVENT_TYPES.len()],
        group_events: [0; 3],
        count_only: args.count_only,
        filter,
        text: text.then_some(Times(wall)),
        wall,
        error: None,
        last_commit: Instant::now(),
        // Under a quarter of --latency between writes is a storm's pace.
        commit_every: args.latency / 4,
        #[cfg(feature = "metrics")]
        metrics: metrics.as_ref().map(|m| {
            eprintln!("nswatch: metrics at http://{}/metrics", m.addr());
            m.counts(args.metrics_retention)
        }),
    };
    let where_to = args.output.as_ref().map_or_else(
        || "standard output".to_string(),
        |p| p.display().to_string(),
    );
    let started = Instant::now();
    // The rings are enabled first, so that nothing that changes during the scan is missed
    // (it may be seen twice, never not at all). What the rings hold from before the scan
    // is written first, so that the stream stays in time order.
    let synthesized = session.bootstrap(|m, u| sink.put(m, u))?;
    if let Some(w) = session.stats().unreadable_warning() {
        super::note!("nswatch: {w}");
    }
    if let Some(q) = &sink.filter.container {
        check_container(q, session.model());
    }
    let mut child: Option<Child> = match args.command.split_first() {
        Some((cmd, rest)) => Some(
            Command::new(cmd)
                .args(rest)
                .spawn()
                .with_context(|| format!("starting {cmd}"))?,
        ),
        None => None,
    };
    let deadline = args.duration.map(|d| started + d);
    let result: Result<()> = loop {
        if stop.load(Ordering::Relaxed) {
            break Ok(());
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break Ok(());
        }
        if let Some(c) = child.as_mut() {
            if child_ended.swap(false, Ordering::Relaxed) && c.try_wait()?.is_some() {
                break Ok(());
            }
        }
        let wait = deadline.map_or(args.latency, |d| {
            d.saturating_duration_since(Instant::now())
                .min(args.latency)
        });
        if let Err(e) = session.poll(wait, |m, u| sink.put(m, u)) {
            break Err(e.into());
        }
        #[cfg(feature = "metrics")]
        if let Some(m) = sink.metrics.as_mut() {
            m.after_poll(&session);
        }
        if let Err(e) = sink.flush_due() {
            break Err(anyhow::Error::from(e).context(format!("writing {where_to}")));
        }
    };
    // What the rings still hold is written, even after an interrupt.
    let flushed = session.finish(|m, u| sink.put(m, u));
    let written = sink.flush();
    // How the command ended, when it ended on its own: nswatch exits the same way.
    let mut command_status = None;
    if let Some(c) = child.as_mut() {
        // Interrupted, or the recording failed (a write error, say): the command is not
        // waited for, as perf record does not wait for its workload.
        if stop.load(Ordering::Relaxed) || result.is_err() || written.is_err() {
            let _ = c.kill();
            let _ = c.wait();
        } else {
            command_status = c.wait().ok();
        }
    }
    let stats = session.capture_stats();
    let st = session.stats();
    let total: u64 = stats.per_cpu.iter().sum();
    let list = |m: BTreeMap<&str, u64>| {
        if m.is_empty() {
            "none".to_string()
        } else {
            m.iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let records: BTreeMap<&str, u64> = (0..st.records.len())
        .filter(|&t| st.records[t] > 0)
        .map(|t| (kind_name(t as u32), st.records[t]))
        .collect();
    let events: BTreeMap<&str, u64> = EVENT_TYPES
        .iter()
        .zip(sink.counts)
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| (*k, n))
        .collect();
    // A CPU that went offline and came back had two rings: one count per CPU.
    let mut by_cpu: BTreeMap<u32, u64> = BTreeMap::new();
    for (c, n) in session.cpus().iter().zip(&stats.per_cpu) {
        *by_cpu.entry(*c).or_default() += n;
    }
    let per_cpu: Vec<String> = by_cpu.iter().map(|(c, n)| format!("cpu{c} {n}")).collect();
    let hotplug = if stats.stopped + stats.reopened > 0 {
        format!(
            "; CPU hotplug: {} rings stopped (CPU offline), {} opened (CPU online)",
            stats.stopped, stats.reopened
        )
    } else {
        String::new()
    };
    super::note!(
        "nswatch record: {total} records in {:.3} s ({}); lost records {}; late {}",
        started.elapsed().as_secs_f64(),
        list(records),
        st.lost_records,
        stats.late,
    );
    super::note!(
        "  events{}: {}; synthesized tasks {synthesized}",
        if args.count_only {
            " (not written: --count-only)"
        } else {
            " written"
        },
        list(events)
    );
    let m = session.model();
    super::note!(
        "  groups: {} seen, {} live ({} tasks); container_start {}, container_exit {}, container_rename {}",
        m.groups_seen() - 1,
        m.groups().iter().filter(|g| g.is_live()).count() - 1,
        m.live_tasks(),
        sink.group_events[0],
        sink.group_events[1],
        sink.group_events[2],
    );
    if let Some(r) = sink.out.rotation() {
        eprintln!(
            "  output rotated {} times (at {} bytes, {} rotated files kept)",
            r.rotations(),
            r.size(),
            r.keep()
        );
    }
    let pins = session.pin_stats();
    let unheld = if pins.skipped > 0 {
        format!(
            "; {} groups not held (open-files limit: raise ulimit -n)",
            pins.skipped
        )
    } else {
        String::new()
    };
    super::note!(
        "  namespace files held for live groups: {} now, {} at most (room for {}){unheld}",
        pins.held,
        pins.peak,
        pins.budget
    );
    super::note!(
        "  per cpu: {}; wake-ups {}, {} of them with the reorder window cut short (a ring half full); ring resyncs {}{hotplug}",
        per_cpu.join(", "),
        stats.wakeups,
        stats.hurried,
        stats.resyncs
    );
    super::note!(
        "  eBPF: {bpf_state}; namespace syscalls {}, {} of them matched to their NAMESPACES record; lost syscall records {}",
        stats.side, st.matched, st.bpf_lost
    );
    result?;
    flushed?;
    // After a failed run the error was said above; a write that fails only now says so.
    written.with_context(|| format!("writing {where_to}"))?;
    if let Some(status) = command_status.filter(|s| !s.success()) {
        // The file is complete and closed before the process ends.
        drop(sink);
        drop(session);
        exit_like(status);
    }
    Ok(())
}

/// Says which of the pids asked for (`-p`) are not running; an error when none is, as
/// `perf record -p` says.
fn check_pids(pids: &[u32]) -> Result<()> {
    let gone: Vec<u32> = pids
        .iter()
        .copied()
        .filter(|p| !std::path::Path::new(&format!("/proc/{p}")).exists())
        .collect();
    for p in &gone {
        eprintln!("nswatch record: pid {p}: no such process");
    }
    if !pids.is_empty() && gone.len() == pids.len() {
        anyhow::bail!("none of the processes asked for (-p) is running");
    }
    Ok(())
}

/// Says when no group is now what `--container` names: its events are written once one
/// starts (or is named so).
fn check_container(q: &ContainerQuery, model: &Attributor) {
    if !q.matches(model).iter().any(|g| g.is_live()) {
        super::note!(
            "nswatch record: no group named {:?} now (a label, a name, a runtime id or its \
             first 12+ characters): its events are written once it starts",
            q.as_str()
        );
    }
}

/// Ends nswatch as the command it ran ended, as `perf record -- CMD` does: with its exit
/// code, or killed by the same signal (re-raised with its default action, without a core
/// dump of nswatch's own), so that a shell or a script sees the command's failure.
fn exit_like(status: ExitStatus) -> ! {
    if let Some(sig) = status.signal() {
        // SAFETY: plain libc calls on this process; the signal's default action ends it.
        unsafe {
            let no_core = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::setrlimit(libc::RLIMIT_CORE, &no_core);
            libc::signal(sig, libc::SIG_DFL);
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, sig);
            libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
            libc::raise(sig);
        }
        // A signal whose default action does not end a process: the shell's convention.
        std::process::exit(128 + sig);
    }
    std::process::exit(status.code().unwrap_or(1));
}

/// `--history`: a duration of at least [`nswatch::model::MIN_HISTORY_NS`].
fn parse_history(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    let min = Duration::from_nanos(nswatch::model::MIN_HISTORY_NS);
    if d < min {
        return Err(format!(
            "{s} is shorter than {}s: a group's end is declared {}ms after its last task left",
            min.as_secs(),
            nswatch::model::attributor::EXIT_LINGER_NS / 1_000_000
        ));
    }
    Ok(d)
}
