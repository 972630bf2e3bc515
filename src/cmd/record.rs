//! `nswatch record`: stream every task and namespace change on the machine as NDJSON.

use anyhow::{Context, Result};
use nswatch::bpf::correlate::Correlator;
use nswatch::bpf::{Cause, Probe};
use nswatch::census;
use nswatch::event::{Body, Event, JsonWriter, EVENT_TYPES};
use nswatch::live::{monotonic_ns, Capture, CaptureOptions, Item};
use nswatch::model::json::{write_change, write_labeled};
use nswatch::model::{Attributor, Change, ChangeKind, GroupId};
use nswatch::procfs;
use nswatch::record::NsLink;
use nswatch::record::{kind_name, Record, SampleId};
use nswatch::EventBuilder;
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Arguments of `nswatch record`.
#[derive(clap::Args)]
pub struct RecordArgs {
    /// Write the events to FILE instead of standard output.
    #[arg(short = 'o', long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Stop after this long (e.g. 10, 10s, 500ms, 2m).
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Keep only events of these process ids (repeatable).
    #[arg(long = "pid", value_name = "PID")]
    pids: Vec<u32>,
    /// Keep only events of tasks with this command name (repeatable).
    #[arg(long = "comm", value_name = "NAME")]
    comms: Vec<String>,
    /// Data pages per CPU ring (rounded up to a power of two).
    #[arg(long, default_value_t = 128)]
    ring_pages: usize,
    /// How long records wait for older ones from other CPUs before they are written
    /// (e.g. 10ms).
    #[arg(long, default_value = "10ms", value_parser = parse_duration)]
    reorder_window: Duration,
    /// Count only: write no events, just the summary.
    #[arg(short, long)]
    quiet: bool,
    /// Do not load the eBPF probe: namespace changes without their causes (syscall,
    /// flags, target, result).
    #[arg(long)]
    no_bpf: bool,
    /// Trace the whole machine while this command runs, and stop when it exits.
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<String>,
}

/// Parses "10", "10s", "500ms", "2m", "1.5s".
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("not a duration: {s:?}"))?;
    let secs = match unit {
        "ms" => v / 1000.0,
        "s" => v,
        "m" => v * 60.0,
        "h" => v * 3600.0,
        _ => return Err(format!("unknown unit in {s:?} (use ms, s, m or h)")),
    };
    if !(0.0..1e9).contains(&secs) {
        return Err(format!("out of range: {s:?}"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Which events the user asked for.
struct Filter {
    pids: Vec<u32>,
    comms: Vec<String>,
}

impl Filter {
    fn keep(&self, builder: &EventBuilder, rec: &Record<'_>, id: &SampleId) -> bool {
        let (pid, tid, comm) = match rec {
            Record::Namespaces(n) => (Some(n.pid), Some(n.tid), None),
            Record::Fork(t) => (Some(t.pid), Some(t.ptid), None),
            Record::Exit(t) => (Some(t.pid), Some(t.tid), None),
            Record::Comm(c) => (Some(c.pid), Some(c.tid), Some(&*c.comm)),
            _ => (id.pid, id.tid, None),
        };
        if !self.pids.is_empty() && !pid.is_some_and(|p| self.pids.contains(&p)) {
            return false;
        }
        if !self.comms.is_empty() {
            let name = comm.or_else(|| tid.and_then(|t| builder.comm(t)));
            return name.is_some_and(|n| self.comms.iter().any(|c| c == n));
        }
        true
    }

    fn keep_call(&self, builder: &EventBuilder, c: &Cause) -> bool {
        (self.pids.is_empty() || self.pids.contains(&c.pid))
            && (self.comms.is_empty()
                || self
                    .comms
                    .iter()
                    .any(|n| *n == c.comm || builder.comm(c.tid) == Some(n)))
    }

    fn keep_task(&self, t: &procfs::ProcTask) -> bool {
        (self.pids.is_empty() || self.pids.contains(&t.pid))
            && (self.comms.is_empty() || self.comms.contains(&t.comm))
    }
}

/// Where the lines go: whole lines only, so that an interrupted file is well-formed.
struct Sink {
    out: Box<dyn Write>,
    buf: Vec<u8>,
    json: JsonWriter,
    /// Events written, by [`Body::type_index`].
    counts: [u64; EVENT_TYPES.len()],
    /// Group events written: starts, exits, renames.
    group_events: [u64; 3],
    /// Records read from the rings, by record type (128 and up in the last slot).
    records: [u64; 129],
    quiet: bool,
}

impl Sink {
    /// Writes `ev` labelled with the group `model` puts it in.
    fn put(&mut self, ev: &Event<'_>, model: &Attributor, g: Option<GroupId>) -> io::Result<()> {
        self.counts[ev.body.type_index()] += 1;
        if self.quiet {
            return Ok(());
        }
        write_labeled(&mut self.json, ev, g.map(|g| model.group(g)), &mut self.buf);
        if self.buf.len() >= 1 << 16 {
            self.flush()?;
        }
        Ok(())
    }

    fn put_change(&mut self, model: &Attributor, c: &Change) {
        self.group_events[c.kind as usize] += 1;
        if !self.quiet {
            write_change(model, c, &mut self.buf);
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        self.out.flush()
    }
}

/// Writes `tasks`, read from /proc at `time`, as synthesized events, as perf does at start;
/// the model learns them with what /proc says beyond events (parents, NSpid, names), and
/// tasks it had that are gone are ended.
fn synthesize(
    sink: &mut Sink,
    builder: &mut EventBuilder,
    groups: &mut Groups,
    filter: &Filter,
    time: u64,
    tasks: &[procfs::ProcTask],
) -> io::Result<usize> {
    let present: hashbrown::HashSet<u32> = tasks.iter().map(|t| t.tid).collect();
    groups.model.end_missing(time, |tid| present.contains(&tid));
    census::feed(&mut groups.model, Path::new("/proc"), time, tasks);
    groups.publish(sink)?;
    let mut n = 0;
    for t in tasks {
        builder.set_comm(t.tid, &t.comm);
        if !filter.keep_task(t) {
            continue;
        }
        n += 1;
        let head = |body| Event {
            time_ns: Some(time),
            cpu: None,
            pid: Some(t.pid),
            tid: Some(t.tid),
            synthesized: true,
            body,
        };
        let g = groups.model.current(t.tid).map(|iv| iv.group);
        sink.put(
            &head(Body::Comm {
                comm: t.comm.as_str().into(),
                exec: false,
            }),
            &groups.model,
            g,
        )?;
        sink.put(
            &head(Body::Namespaces {
                ns: &t.ns,
                comm: Some(t.comm.as_str().into()),
                cause: None,
            }),
            &groups.model,
            g,
        )?;
    }
    Ok(n)
}

/// The container model and what naming its groups needs.
struct Groups {
    model: Attributor,
    /// Named network namespaces (/run/netns), read again when a group starts.
    netns: Vec<(String, NsLink)>,
    pending: Vec<Change>,
}

impl Groups {
    /// Observes `ev` and returns its group; ns_syscall events, which change nothing, get
    /// the group their task is in.
    fn observe(&mut self, ev: &Event<'_>) -> Option<GroupId> {
        self.model
            .observe(ev)
            .or_else(|| Some(self.model.current(ev.tid?)?.group))
    }

    /// Names the groups that started (from /proc, while their tasks live) and writes their
    /// start events; held exits and renames follow with [`Groups::publish_rest`].
    fn publish_starts(&mut self, sink: &mut Sink) {
        self.pending.extend(self.model.take_changes());
        if self.pending.iter().any(|c| c.kind == ChangeKind::Start) {
            self.netns = census::named_netns(Path::new("/run/netns"));
        }
        for c in self.pending.iter().filter(|c| c.kind == ChangeKind::Start) {
            census::name_group(&mut self.model, Path::new("/proc"), c.group, &self.netns);
            sink.put_change(&self.model, c);
        }
        self.pending.retain(|c| c.kind != ChangeKind::Start);
        // Renames found while naming are written with the rest.
        self.pending.extend(self.model.take_changes());
    }

    fn publish_rest(&mut self, sink: &mut Sink) {
        self.pending.extend(self.model.take_changes());
        for c in &self.pending {
            sink.put_change(&self.model, c);
        }
        self.pending.clear();
    }

    fn publish(&mut self, sink: &mut Sink) -> io::Result<()> {
        self.publish_starts(sink);
        self.publish_rest(sink);
        Ok(())
    }
}

/// Everything a merged item updates on its way to the output.
struct State<'f> {
    sink: Sink,
    groups: Groups,
    builder: EventBuilder,
    filter: &'f Filter,
    causes: Correlator,
    expired: Vec<Cause>,
    lost_records: u64,
    rescan: bool,
    /// Namespace changes written with their cause.
    matched: u64,
    /// eBPF records lost, as last written.
    bpf_lost: u64,
}

impl State<'_> {
    fn handle(&mut self, item: Item<'_, '_>) -> Result<()> {
        let (dec, view) = match item {
            Item::Syscall(c) => {
                if let Some(c) = self.causes.syscall(*c) {
                    self.put_call(&c)?;
                }
                return Ok(());
            }
            Item::Record(dec, view) => (dec, view),
        };
        let (rec, id) = dec.decode(view)?;
        self.sink.records[(view.ty as usize).min(128)] += 1;
        let time = match &rec {
            Record::Fork(t) | Record::Exit(t) => id.time.or(Some(t.time)),
            _ => id.time,
        };
        if let (false, Some(t)) = (self.causes.is_empty(), time) {
            self.causes.expire(t, &mut self.expired);
            for c in std::mem::take(&mut self.expired) {
                self.put_call(&c)?;
            }
        }
        let mut cause = None;
        match &rec {
            Record::Lost(l) => {
                self.lost_records += l.lost;
                self.rescan = true;
            }
            Record::Fork(t) => self.causes.fork(t.ptid, t.tid, time.unwrap_or(0)),
            Record::Namespaces(n) => cause = self.causes.namespaces(n.tid, time.unwrap_or(0)),
            _ => {}
        }
        let keep = self.filter.keep(&self.builder, &rec, &id);
        if let Some(mut ev) = self.builder.event(&rec, &id) {
            if let Body::Namespaces { cause: c, .. } = &mut ev.body {
                *c = cause.as_ref();
                self.matched += u64::from(c.is_some());
            }
            // The model sees every event; the filter only chooses what is written.
            let g = self.groups.observe(&ev);
            self.groups.publish_starts(&mut self.sink);
            if keep || matches!(ev.body, Body::Lost { .. }) {
                self.sink.put(&ev, &self.groups.model, g)?;
            }
            self.groups.publish_rest(&mut self.sink);
        }
        Ok(())
    }

    /// Writes a call that made no NAMESPACES record as an "ns_syscall" event.
    fn put_call(&mut self, c: &Cause) -> io::Result<()> {
        if !self.filter.keep_call(&self.builder, c) {
            return Ok(());
        }
        let ev = Event {
            time_ns: Some(c.enter_ns),
            cpu: Some(c.cpu),
            pid: Some(c.pid),
            tid: Some(c.tid),
            synthesized: false,
            body: Body::NsSyscall { call: c },
        };
        let g = self.groups.observe(&ev);
        self.sink.put(&ev, &self.groups.model, g)
    }

    /// Writes an "ns_syscall_lost" event when the probe lost records since the last one.
    fn put_bpf_lost(&mut self, lost: u64) -> io::Result<()> {
        if lost <= self.bpf_lost {
            return Ok(());
        }
        let n = lost - self.bpf_lost;
        self.bpf_lost = lost;
        let ev = Event {
            time_ns: Some(monotonic_ns()),
            cpu: None,
            pid: None,
            tid: None,
            synthesized: false,
            body: Body::NsSyscallLost { lost: n },
        };
        self.sink.put(&ev, &self.groups.model, None)
    }

    /// Writes `tasks`, read from /proc at `time`, after what the rings hold from before it.
    fn snapshot(&mut self, cap: &mut Capture) -> Result<usize> {
        let time = monotonic_ns();
        let tasks = procfs::scan(Path::new("/proc"));
        cap.drain_until(time, |item| self.handle(item))?;
        Ok(synthesize(
            &mut self.sink,
            &mut self.builder,
            &mut self.groups,
            self.filter,
            time,
            &tasks,
        )?)
    }
}

/// Runs `nswatch record`.
pub fn run(args: &RecordArgs) -> Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("installing a signal handler")?;
    }
    let opts = CaptureOptions {
        ring_pages: args.ring_pages,
        window: args.reorder_window,
        ..Default::default()
    };
    // The probe is attached before the rings are enabled, so that no change the rings see
    // lacks its cause for want of a program not yet there.
    let (probe, bpf_state) = if args.no_bpf {
        (None, "off (--no-bpf)".to_string())
    } else {
        match Probe::load() {
            Ok(p) => (Some(p), "on".to_string()),
            Err(e) => {
                eprintln!(
                    "nswatch: eBPF unavailable, recording namespace changes without their causes: {e}"
                );
                (None, "unavailable".to_string())
            }
        }
    };
    let (_, host) = procfs::host_set(Path::new("/proc"))
        .context("reading the host's namespaces from /proc/1/ns or /proc/2/ns")?;
    let mut cap = Capture::open(opts)?;
    if let Some(p) = probe {
        cap.set_side(Box::new(p))
            .context("adding the eBPF ring buffer to epoll")?;
    }
    let out: Box<dyn Write> = match &args.output {
        Some(p) => {
            Box::new(std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?)
        }
        None => Box::new(io::stdout()),
    };
    let filter = Filter {
        pids: args.pids.clone(),
        comms: args.comms.clone(),
    };
    let mut st = State {
        sink: Sink {
            out,
            buf: Vec::with_capacity(1 << 17),
            json: JsonWriter::new(),
            counts: [0; EVENT_TYPES.len()],
            group_events: [0; 3],
            records: [0; 129],
            quiet: args.quiet,
        },
        builder: EventBuilder::new(),
        groups: Groups {
            model: Attributor::new(host),
            netns: Vec::new(),
            pending: Vec::new(),
        },
        filter: &filter,
        causes: Correlator::new(),
        expired: Vec::new(),
        lost_records: 0,
        rescan: false,
        matched: 0,
        bpf_lost: 0,
    };
    let started = Instant::now();
    // The rings are enabled first, so that nothing that changes during the scan is missed
    // (it may be seen twice, never not at all). What the rings hold from before the scan
    // is written first, so that the stream stays in time order.
    let synthesized = st.snapshot(&mut cap)?;
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
    let mut last_rescan = Instant::now();
    let result = loop {
        if stop.load(Ordering::Relaxed) {
            break Ok(());
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break Ok(());
        }
        if let Some(c) = child.as_mut() {
            if c.try_wait()?.is_some() {
                break Ok(());
            }
        }
        let wait = deadline.map_or(Duration::from_millis(100), |d| {
            d.saturating_duration_since(Instant::now())
                .min(Duration::from_millis(100))
        });
        if let Err(e) = cap.poll(wait, |item| st.handle(item)) {
            break Err(e);
        }
        if let Some(lost) = cap.side().map(|s| s.lost()) {
            if let Err(e) = st.put_bpf_lost(lost) {
                break Err(e.into());
            }
        }
        // Lost records may hide namespace changes: read /proc again (at most once a second).
        if st.rescan && last_rescan.elapsed() >= Duration::from_secs(1) {
            st.rescan = false;
            st.snapshot(&mut cap)?;
            last_rescan = Instant::now();
        }
        if let Err(e) = st.sink.flush() {
            break Err(e.into());
        }
    };
    // What the rings still hold is written, even after an interrupt.
    let mut flushed = cap.flush(|item| st.handle(item));
    for c in st.causes.finish() {
        if flushed.is_ok() {
            flushed = st.put_call(&c).map_err(Into::into);
        }
    }
    if let (Some(lost), true) = (cap.side().map(|s| s.lost()), flushed.is_ok()) {
        flushed = st.put_bpf_lost(lost).map_err(Into::into);
    }
    let written = st.sink.flush();
    if let Some(c) = child.as_mut() {
        if stop.load(Ordering::Relaxed) {
            let _ = c.kill();
        }
        let _ = c.wait();
    }
    let sink = &st.sink;
    let stats = cap.stats();
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
    let records: BTreeMap<&str, u64> = (0..sink.records.len())
        .filter(|&t| sink.records[t] > 0)
        .map(|t| (kind_name(t as u32), sink.records[t]))
        .collect();
    let events: BTreeMap<&str, u64> = EVENT_TYPES
        .iter()
        .zip(sink.counts)
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| (*k, n))
        .collect();
    let per_cpu: Vec<String> = cap
        .cpus()
        .iter()
        .zip(&stats.per_cpu)
        .map(|(c, n)| format!("cpu{c} {n}"))
        .collect();
    eprintln!(
        "nswatch record: {total} records in {:.3} s ({}); lost records {}; late {}",
        started.elapsed().as_secs_f64(),
        list(records),
        st.lost_records,
        stats.late,
    );
    eprintln!(
        "  events{}: {}; synthesized tasks {synthesized}",
        if args.quiet {
            " (not written: --quiet)"
        } else {
            " written"
        },
        list(events)
    );
    let m = &st.groups.model;
    eprintln!(
        "  groups: {} seen, {} live ({} tasks); container_start {}, container_exit {}, container_rename {}",
        m.groups().len() - 1,
        m.groups().iter().filter(|g| g.is_live()).count() - 1,
        m.live_tasks(),
        sink.group_events[0],
        sink.group_events[1],
        sink.group_events[2],
    );
    eprintln!(
        "  per cpu: {}; wake-ups {}; ring resyncs {}",
        per_cpu.join(", "),
        stats.wakeups,
        stats.resyncs
    );
    eprintln!(
        "  eBPF: {bpf_state}; namespace syscalls {}, {} of them matched to their NAMESPACES record; lost syscall records {}",
        stats.side, st.matched, st.bpf_lost
    );
    result?;
    flushed?;
    written?;
    Ok(())
}
