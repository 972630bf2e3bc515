//! Prometheus metrics of a live [`Session`]: per-group counts labelled with the groups'
//! names, the capture's own counts, and the agent's CPU and memory, served in the
//! Prometheus text exposition format on `/metrics` (docs/USAGE.md lists the series).
//!
//! Two sides, so that the session never waits for a scrape: a [`Counts`] on the
//! session's thread takes every [`Update`] (a few plain increments, no lock, no atomic)
//! and, every [`PUBLISH_EVERY`], publishes a [`Snapshot`] of them by swapping an `Arc`
//! under a lock held for that swap alone; the [`Server`]'s thread answers each scrape from
//! the latest snapshot. Neither side walks the other's data.
//!
//! A group that ended stays in the output for the retention time (`record`'s default, 5
//! minutes, is several scrapes at the usual 15 s to 1 min intervals, and Prometheus's own
//! look-back) so that scrapes see its last counts, and at most [`MAX_ENDED`] ended groups are kept:
//! a node with heavy container churn keeps a bounded number of series.

use crate::event::cause::{errno_name, Syscall};
use crate::event::Body;
use crate::live::monotonic_ns;
use crate::model::group::{Group, Kind};
use crate::model::{Attributor, ChangeKind, GroupId};
use crate::record::kind_name;
use crate::session::{Session, Update};
use hashbrown::HashMap;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often the session publishes its counts for the scrapes: what a scrape sees is at
/// most this (plus one `--latency`) old. Each publication copies the groups' counts.
pub const PUBLISH_EVERY: Duration = Duration::from_millis(500);

/// Ended groups kept at most, whatever the retention: beyond this the ones that ended
/// first leave first, so that churn faster than 2,000 groups per retention time cannot
/// grow the output.
pub const MAX_ENDED: usize = 2000;

/// Every [`Syscall`], in the enum's order (its index in the counts).
const SYSCALLS: [Syscall; 8] = [
    Syscall::Setns,
    Syscall::Unshare,
    Syscall::Clone,
    Syscall::Clone3,
    Syscall::Fork,
    Syscall::Vfork,
    Syscall::Execve,
    Syscall::Execveat,
];

/// Parses `--metrics`'s address: a port alone listens on loopback (127.0.0.1:PORT); an
/// address with its port (`0.0.0.0:9464`, `[::]:9464`, `192.0.2.7:9464`) listens there;
/// `localhost:PORT` is loopback.
pub fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    if let Some(port) = s.strip_prefix("localhost:") {
        if let Ok(port) = port.parse::<u16>() {
            return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
        }
    }
    if s.starts_with(':') {
        return Err(format!(
            "{s:?}: give a port alone (loopback), or an address with it: 127.0.0.1{s} or \
             0.0.0.0{s} (every interface)"
        ));
    }
    s.parse::<SocketAddr>().map_err(|_| {
        format!("{s:?} is not a port or an IP address with a port (9464, 0.0.0.0:9464, [::1]:9464)")
    })
}

/// One group's counts, and the labels that name it.
#[derive(Debug, Clone)]
struct GroupCounts {
    id: GroupId,
    labels: Arc<Vec<(&'static str, String)>>,
    kind: Kind,
    forks: u64,
    execs: u64,
    exits: u64,
    tasks: u32,
    /// Namespace syscalls that succeeded and that failed, by [`Syscall`] as index.
    ns_ok: [u64; 8],
    ns_failed: [u64; 8],
    /// Failed calls by (syscall, errno).
    errnos: Vec<(Syscall, i64, u64)>,
    /// When its last task left (monotonic ns).
    ended_ns: Option<u64>,
    /// Its (kind, runtime) in the starts' counts: its exit is counted there too, so that
    /// starts less exits are the groups running, whatever was learned of it in between.
    counted_as: Option<(Kind, String)>,
}

impl GroupCounts {
    fn new(g: &Group) -> GroupCounts {
        GroupCounts {
            id: g.id,
            labels: Arc::new(labels(g)),
            kind: g.kind,
            forks: 0,
            execs: 0,
            exits: 0,
            tasks: g.live_tasks,
            ns_ok: [0; 8],
            ns_failed: [0; 8],
            errnos: Vec::new(),
            ended_ns: g.ended_ns,
            counted_as: None,
        }
    }
}

/// The labels of a group's series: its label (`group`), kind, name, and where known its
/// runtime, runtime id, image, and pod (`pod_namespace`, `pod`; `namespace` is left to
/// the scraper's own target labels).
fn label_pairs(g: &Group) -> impl Iterator<Item = (&'static str, &str)> {
    let n = &g.naming;
    [
        ("group", Some(g.label.as_str())),
        ("kind", Some(g.kind.name())),
        ("name", Some(g.name())),
        ("runtime", n.runtime.as_deref()),
        ("runtime_id", n.runtime_id.as_deref()),
        ("image", n.image.as_deref()),
        ("pod_namespace", n.namespace.as_deref()),
        ("pod", n.pod_name.as_deref()),
    ]
    .into_iter()
    .filter_map(|(k, v)| Some((k, v.filter(|v| !v.is_empty())?)))
}

fn labels(g: &Group) -> Vec<(&'static str, String)> {
    label_pairs(g).map(|(k, v)| (k, v.to_string())).collect()
}

/// Whether `have` are still `g`'s labels (a group first named after its start, say, when
/// its runtime's state was read again, is no rename).
fn labels_match(g: &Group, have: &[(&'static str, String)]) -> bool {
    label_pairs(g).eq(have.iter().map(|(k, v)| (*k, v.as_str())))
}

/// Counts of group starts and exits for one (kind, runtime).
#[derive(Debug, Clone, Default)]
struct StartsExits {
    starts: u64,
    exits: u64,
}

/// What a scrape shows, as the session last published it.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    groups: Vec<GroupCounts>,
    starts: Vec<((Kind, String), StartsExits)>,
    records: Vec<(&'static str, u64)>,
    lost_records: u64,
    bpf_lost: u64,
    syscalls: u64,
    /// The fullest each CPU's ring was when read since the previous publication, 0..1.
    ring_fill: Vec<(u32, f64)>,
    /// Groups that ended and left the output.
    dropped: u64,
}

impl Snapshot {
    /// Groups in the output (live ones and ended ones within their retention).
    pub fn groups(&self) -> usize {
        self.groups.len()
    }
}

/// The session's side: takes every update, publishes snapshots.
#[derive(Debug)]
pub struct Counts {
    groups: Vec<GroupCounts>,
    index: HashMap<GroupId, usize>,
    /// Two groups lately counted and their slots, the newer first: most updates are of
    /// one of them (a fork storm's one group; a setns storm's two, in turn).
    last: [Option<(GroupId, usize)>; 2],
    starts: HashMap<(Kind, String), StartsExits>,
    retention_ns: u64,
    max_ended: usize,
    ring_peak: Vec<f64>,
    dropped: u64,
    last_publish: Option<Instant>,
    shared: Arc<Mutex<Arc<Snapshot>>>,
}

impl Counts {
    /// Counts that publish to `shared` (a [`Server`]'s), keeping ended groups for
    /// `retention`.
    pub fn new(shared: Arc<Mutex<Arc<Snapshot>>>, retention: Duration) -> Counts {
        Counts {
            groups: Vec::new(),
            index: HashMap::new(),
            last: [None; 2],
            starts: HashMap::new(),
            retention_ns: retention.as_nanos().min(u64::MAX as u128) as u64,
            max_ended: MAX_ENDED,
            ring_peak: Vec::new(),
            dropped: 0,
            last_publish: None,
            shared,
        }
    }

    /// The counts of group `g`: one of the last two groups' at once, else
    /// [`Counts::slot_slow`].
    #[inline(always)]
    fn slot(&mut self, model: &Attributor, g: GroupId) -> &mut GroupCounts {
        match self.last {
            [Some((a, i)), _] | [_, Some((a, i))] if a == g => &mut self.groups[i],
            _ => self.slot_slow(model, g),
        }
    }

    /// The counts of a group other than the last two: the index's, or new ones; it
    /// replaces the older of the two.
    #[cold]
    #[inline(never)]
    fn slot_slow(&mut self, model: &Attributor, g: GroupId) -> &mut GroupCounts {
        let i = match self.index.get(&g) {
            Some(&i) => i,
            None => {
                self.groups.push(GroupCounts::new(model.group(g)));
                self.index.insert(g, self.groups.len() - 1);
                self.groups.len() - 1
            }
        };
        self.last = [Some((g, i)), self.last[0]];
        &mut self.groups[i]
    }

    /// Counts one update of the session. Events of tasks found by a /proc scan are state,
    /// not activity: not counted. On the path of every record: the common events are
    /// counted inline, the rest by a call.
    #[inline]
    pub fn put(&mut self, model: &Attributor, update: &Update<'_>) {
        let Update::Event {
            event,
            group: Some(g),
        } = *update
        else {
            return self.put_rare(model, update);
        };
        if event.synthesized {
            return;
        }
        match &event.body {
            Body::Fork { .. } => self.slot(model, g).forks += 1,
            Body::Exit { .. } => self.slot(model, g).exits += 1,
            Body::Namespaces { cause: None, .. } => {}
            Body::Namespaces { cause: Some(c), .. } => {
                self.slot(model, g).ns_ok[c.syscall as usize] += 1
            }
            _ => self.put_rare(model, update),
        }
    }

    #[inline(never)]
    fn put_rare(&mut self, model: &Attributor, update: &Update<'_>) {
        match *update {
            Update::Event {
                event,
                group: Some(g),
            } => match &event.body {
                Body::Comm { exec: true, .. } => self.slot(model, g).execs += 1,
                Body::NsSyscall { call } => {
                    let s = self.slot(model, g);
                    if call.ok() {
                        s.ns_ok[call.syscall as usize] += 1;
                    } else {
                        s.ns_failed[call.syscall as usize] += 1;
                        let errno = -call.ret;
                        match s
                            .errnos
                            .iter_mut()
                            .find(|(c, e, _)| *c == call.syscall && *e == errno)
                        {
                            Some(x) => x.2 += 1,
                            None => s.errnos.push((call.syscall, errno, 1)),
                        }
                    }
                }
                _ => {}
            },
            Update::Event { group: None, .. } => {}
            Update::Group(c) => {
                let g = model.group(c.group);
                let key = (g.kind, g.naming.runtime.clone().unwrap_or_default());
                match c.kind {
                    ChangeKind::Start => {
                        self.starts.entry(key.clone()).or_default().starts += 1;
                        let s = self.slot(model, c.group);
                        s.ended_ns = None;
                        s.counted_as = Some(key);
                    }
                    ChangeKind::Exit => {
                        let s = self.slot(model, c.group);
                        s.ended_ns = Some(c.time_ns.max(1));
                        s.tasks = 0;
                        let key = s.counted_as.clone().unwrap_or(key);
                        self.starts.entry(key).or_default().exits += 1;
                    }
                    ChangeKind::Rename => {
                        let labels = Arc::new(labels(g));
                        self.slot(model, c.group).labels = labels;
                    }
                }
            }
        }
    }

    /// After each poll of the session: notes how full the rings were, and publishes a
    /// snapshot when [`PUBLISH_EVERY`] has passed since the last.
    pub fn after_poll(&mut self, session: &Session) {
        let cs = session.capture_stats();
        let size = session.ring_bytes().max(1) as f64;
        self.ring_peak.resize(cs.ring_used.len(), 0.0);
        for (peak, &used) in self.ring_peak.iter_mut().zip(&cs.ring_used) {
            *peak = peak.max(used as f64 / size);
        }
        if self
            .last_publish
            .is_some_and(|t| t.elapsed() < PUBLISH_EVERY)
        {
            return;
        }
        self.publish(session, monotonic_ns());
    }

    /// Publishes a snapshot now (at `now_ns`, monotonic), after dropping the groups whose
    /// retention is over.
    pub fn publish(&mut self, session: &Session, now_ns: u64) {
        self.last_publish = Some(Instant::now());
        let mut snap = self.snapshot(session.model(), now_ns);
        let st = session.stats();
        snap.records = st
            .records
            .iter()
            .enumerate()
            .filter(|(_, &n)| n > 0)
            .map(|(t, &n)| (kind_name(t as u32), n))
            .collect();
        snap.lost_records = st.lost_records;
        snap.bpf_lost = st.bpf_lost;
        snap.syscalls = session.capture_stats().side;
        snap.ring_fill = session
            .cpus()
            .into_iter()
            .zip(self.ring_peak.iter_mut())
            .map(|(cpu, peak)| (cpu, std::mem::take(peak)))
            .collect();
        *self.shared.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(snap);
    }

    /// Publishes the groups' counts alone, at `now_ns` (monotonic), the capture's left at
    /// zero: for a model fed without a [`Session`] (a replay, a benchmark).
    pub fn publish_model(&mut self, model: &Attributor, now_ns: u64) {
        let snap = self.snapshot(model, now_ns);
        *self.shared.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(snap);
    }

    /// The groups' part of a snapshot at `now_ns`, the groups past their retention
    /// dropped first.
    fn snapshot(&mut self, model: &Attributor, now_ns: u64) -> Snapshot {
        self.expire(now_ns);
        // Groups found by the start-up scan, or quiet since, have a series too: their tasks
        // are state, shown whether or not they did anything.
        for g in model.groups().iter().filter(|g| g.is_live()) {
            if !self.index.contains_key(&g.id) {
                self.groups.push(GroupCounts::new(g));
                self.index.insert(g.id, self.groups.len() - 1);
            }
        }
        for s in &mut self.groups {
            if s.ended_ns.is_none() {
                let g = model.group(s.id);
                s.tasks = g.live_tasks;
                if !labels_match(g, &s.labels) {
                    s.labels = Arc::new(labels(g));
                }
            }
        }
        Snapshot {
            groups: self.groups.clone(),
            starts: self
                .starts
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            dropped: self.dropped,
            ..Snapshot::default()
        }
    }

    /// Drops the ended groups past their retention, and the oldest ended beyond
    /// [`MAX_ENDED`].
    fn expire(&mut self, now_ns: u64) {
        let mut ended: Vec<u64> = self.groups.iter().filter_map(|g| g.ended_ns).collect();
        let mut cut = now_ns.saturating_sub(self.retention_ns);
        if ended.len() > self.max_ended {
            // The newest `max_ended` stay: drop what ended up to the one before them.
            let k = ended.len() - self.max_ended;
            ended.select_nth_unstable(k - 1);
            cut = cut.max(ended[k - 1]);
        }
        let before = self.groups.len();
        self.groups.retain(|g| g.ended_ns.is_none_or(|e| e > cut));
        if self.groups.len() != before {
            self.dropped += (before - self.groups.len()) as u64;
            self.index.clear();
            for (i, g) in self.groups.iter().enumerate() {
                self.index.insert(g.id, i);
            }
            self.last = [None; 2];
        }
    }

    /// Groups counted now (live and ended within their retention).
    pub fn groups(&self) -> usize {
        self.groups.len()
    }
}

/// The scrape's side: encodes the latest snapshot, and the agent's own process figures.
#[derive(Debug)]
struct SnapshotCollector {
    shared: Arc<Mutex<Arc<Snapshot>>>,
}

type Labels<'a> = Vec<(&'a str, &'a str)>;

fn counter<'l>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: impl IntoIterator<Item = (Labels<'l>, u64)>,
) -> Result<(), std::fmt::Error> {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, v) in series {
        ConstCounter::new(v).encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}

fn gauge<'l, V: prometheus_client::encoding::EncodeGaugeValue>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: impl IntoIterator<Item = (Labels<'l>, V)>,
) -> Result<(), std::fmt::Error> {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, v) in series {
        ConstGauge::new(v).encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}

fn group_labels(g: &GroupCounts) -> Labels<'_> {
    g.labels.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn with<'a>(mut l: Labels<'a>, more: &[(&'a str, &'a str)]) -> Labels<'a> {
    l.extend_from_slice(more);
    l
}

impl Collector for SnapshotCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let snap = Arc::clone(&self.shared.lock().unwrap_or_else(|e| e.into_inner()));
        let gs = &snap.groups;
        gauge(
            &mut enc,
            "nswatch_group_tasks",
            "Tasks (processes and threads) in the group now.",
            gs.iter().map(|g| (group_labels(g), g.tasks)),
        )?;
        counter(
            &mut enc,
            "nswatch_group_forks",
            "Tasks started in the group (processes and threads).",
            gs.iter().map(|g| (group_labels(g), g.forks)),
        )?;
        counter(
            &mut enc,
            "nswatch_group_execs",
            "exec() calls in the group.",
            gs.iter().map(|g| (group_labels(g), g.execs)),
        )?;
        counter(
            &mut enc,
            "nswatch_group_exits",
            "Tasks of the group that ended.",
            gs.iter().map(|g| (group_labels(g), g.exits)),
        )?;
        counter(
            &mut enc,
            "nswatch_group_namespace_syscalls",
            "Namespace syscalls (setns, unshare, clone with CLONE_NEW*) of the group's \
             tasks, by syscall and result, counted in the group the task is in after the \
             call (needs the eBPF probe).",
            gs.iter().flat_map(|g| {
                SYSCALLS.iter().enumerate().flat_map(move |(i, s)| {
                    [("ok", g.ns_ok[i]), ("failed", g.ns_failed[i])]
                        .into_iter()
                        .filter(|(_, n)| *n > 0)
                        .map(move |(r, n)| {
                            (
                                with(group_labels(g), &[("syscall", s.name()), ("result", r)]),
                                n,
                            )
                        })
                })
            }),
        )?;
        let errnos: Vec<(Labels<'_>, String, u64)> = gs
            .iter()
            .flat_map(|g| {
                g.errnos.iter().map(move |&(s, e, n)| {
                    (
                        with(group_labels(g), &[("syscall", s.name())]),
                        errno_name(e),
                        n,
                    )
                })
            })
            .collect();
        counter(
            &mut enc,
            "nswatch_group_namespace_syscall_errors",
            "Failed namespace syscalls of the group's tasks, by syscall and errno.",
            errnos
                .iter()
                .map(|(l, e, n)| (with(l.clone(), &[("errno", e.as_str())]), *n)),
        )?;
        let starts: Vec<(Labels<'_>, &StartsExits)> = snap
            .starts
            .iter()
            .map(|((kind, rt), v)| {
                let mut l = vec![("kind", kind.name())];
                if !rt.is_empty() {
                    l.push(("runtime", rt.as_str()));
                }
                (l, v)
            })
            .collect();
        counter(
            &mut enc,
            "nswatch_container_starts",
            "Groups (containers, sandboxes) that started, by kind and runtime (the runtime \
             known when the start was seen); those found at nswatch's start included.",
            starts.iter().map(|(l, v)| (l.clone(), v.starts)),
        )?;
        counter(
            &mut enc,
            "nswatch_container_exits",
            "Groups (containers, sandboxes) whose last task ended, by kind and runtime.",
            starts.iter().map(|(l, v)| (l.clone(), v.exits)),
        )?;
        let live = |k: Kind| {
            gs.iter()
                .filter(|g| g.kind == k && g.ended_ns.is_none())
                .count()
        };
        gauge(
            &mut enc,
            "nswatch_groups",
            "Live groups by kind.",
            [Kind::Host, Kind::Container, Kind::Sandbox]
                .into_iter()
                .map(|k| (vec![("kind", k.name())], live(k) as u64)),
        )?;
        gauge(
            &mut enc,
            "nswatch_metrics_groups",
            "Groups in this output: the live ones and those ended within the retention.",
            [(vec![], gs.len() as u64)],
        )?;
        counter(
            &mut enc,
            "nswatch_metrics_groups_dropped",
            "Ended groups that left this output (retention over, or too many ended).",
            [(vec![], snap.dropped)],
        )?;
        counter(
            &mut enc,
            "nswatch_records",
            "perf records read from the rings, by type.",
            snap.records.iter().map(|(t, n)| (vec![("type", *t)], *n)),
        )?;
        counter(
            &mut enc,
            "nswatch_lost_records",
            "perf records the kernel lost because a ring was full.",
            [(vec![], snap.lost_records)],
        )?;
        counter(
            &mut enc,
            "nswatch_ebpf_records",
            "Namespace syscall records read from the eBPF probe.",
            [(vec![], snap.syscalls)],
        )?;
        counter(
            &mut enc,
            "nswatch_ebpf_lost_records",
            "Namespace syscall records the eBPF probe lost.",
            [(vec![], snap.bpf_lost)],
        )?;
        let cpus: Vec<String> = snap.ring_fill.iter().map(|(c, _)| c.to_string()).collect();
        gauge(
            &mut enc,
            "nswatch_ring_fill_ratio",
            "The fullest each CPU's ring was when read, over the last half second (1 = \
             full: records are lost).",
            snap.ring_fill
                .iter()
                .zip(&cpus)
                .map(|((_, f), c)| (vec![("cpu", c.as_str())], *f)),
        )?;
        drop(snap);
        process_metrics(&mut enc)
    }
}

/// The standard process collector's series, from /proc/self.
fn process_metrics(enc: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
    let Some(p) = ProcessStat::read() else {
        return Ok(());
    };
    let one = |v| [(Vec::<(&str, &str)>::new(), v)];
    let mut m = enc.encode_descriptor(
        "process_cpu_seconds",
        "Total user and system CPU time spent in seconds.",
        None,
        MetricType::Counter,
    )?;
    ConstCounter::new(p.cpu_seconds).encode(m.encode_family(&Vec::<(&str, &str)>::new())?)?;
    gauge(
        enc,
        "process_resident_memory_bytes",
        "Resident memory size in bytes.",
        one(p.rss_bytes),
    )?;
    gauge(
        enc,
        "process_virtual_memory_bytes",
        "Virtual memory size in bytes.",
        one(p.vsize_bytes),
    )?;
    gauge(
        enc,
        "process_start_time_seconds",
        "Start time of the process since unix epoch in seconds.",
        [(Vec::<(&str, &str)>::new(), p.start_time)],
    )?;
    gauge(
        enc,
        "process_open_fds",
        "Number of open file descriptors.",
        one(p.open_fds),
    )?;
    gauge(
        enc,
        "process_max_fds",
        "Maximum number of open file descriptors.",
        one(p.max_fds),
    )
}

/// What /proc/self says of this process.
struct ProcessStat {
    cpu_seconds: f64,
    rss_bytes: u64,
    vsize_bytes: u64,
    start_time: f64,
    open_fds: u64,
    max_fds: u64,
}

impl ProcessStat {
    fn read() -> Option<ProcessStat> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // The command name may hold spaces and parentheses: fields follow the last ')'.
        let rest = &stat[stat.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        // Field 3 (state) is f[0]: utime is field 14, stime 15, starttime 22, vsize 23,
        // rss 24 (pages).
        let num = |i: usize| f.get(i - 3)?.parse::<u64>().ok();
        // SAFETY: sysconf has no preconditions.
        let tck = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
        // Reading /proc/stat formats every interrupt's counts: the boot time is read once.
        static BTIME: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
        let btime = (*BTIME.get_or_init(|| {
            std::fs::read_to_string("/proc/stat")
                .ok()?
                .lines()
                .find_map(|l| l.strip_prefix("btime ")?.trim().parse::<u64>().ok())
        }))?;
        let open_fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64);
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: lim is a valid rlimit to fill.
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
        Some(ProcessStat {
            cpu_seconds: (num(14)? + num(15)?) as f64 / tck,
            rss_bytes: num(24)? * page,
            vsize_bytes: num(23)?,
            start_time: btime as f64 + num(22)? as f64 / tck,
            open_fds,
            max_fds: lim.rlim_cur,
        })
    }
}

/// The text of one scrape of `shared`.
pub fn encode(shared: &Arc<Mutex<Arc<Snapshot>>>) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(SnapshotCollector {
        shared: Arc::clone(shared),
    }));
    let mut out = String::with_capacity(1 << 16);
    // Writing into a String does not fail.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &registry);
    out
}

/// The HTTP server of `/metrics`: one thread that accepts a connection, reads its
/// request, answers and closes it, one after another. A scrape wakes that one thread;
/// tiny_http's accepting thread, queue and workers woke several a scrape.
pub struct Server {
    addr: SocketAddr,
    /// The listening socket, shut down to end the thread's `accept`.
    listener: TcpListener,
    stop: Arc<AtomicBool>,
    shared: Arc<Mutex<Arc<Snapshot>>>,
    thread: Option<JoinHandle<()>>,
}

/// How long a client may take to send its request or read the answer: a client that
/// stalls holds up the next scrape for that long at most.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

impl Server {
    /// Listens on `addr` and serves scrapes from a thread of its own. Fails (before
    /// anything else starts) when the address cannot be listened on.
    pub fn start(addr: SocketAddr) -> anyhow::Result<Server> {
        let listener = TcpListener::bind(addr)
            .map_err(|e| anyhow::anyhow!("--metrics {addr}: cannot listen: {e}"))?;
        let addr = listener.local_addr()?;
        let shared: Arc<Mutex<Arc<Snapshot>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (l, sh, st) = (
            listener.try_clone()?,
            Arc::clone(&shared),
            Arc::clone(&stop),
        );
        let thread = std::thread::Builder::new()
            .name("nswatch-metrics".into())
            .spawn(move || serve(&l, &sh, &st))?;
        Ok(Server {
            addr,
            listener,
            stop,
            shared,
            thread: Some(thread),
        })
    }

    /// The address it listens on (the port chosen, for a port of 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Counts that publish to this server, keeping ended groups for `retention`.
    pub fn counts(&self, retention: Duration) -> Counts {
        Counts::new(Arc::clone(&self.shared), retention)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // SAFETY: a socket of ours; shutting down a listening socket makes a blocked
        // accept() return (EINVAL) on Linux.
        unsafe { libc::shutdown(self.listener.as_raw_fd(), libc::SHUT_RDWR) };
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(listener: &TcpListener, shared: &Arc<Mutex<Arc<Snapshot>>>, stop: &AtomicBool) {
    for conn in listener.incoming() {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        // A client that went away, or timed out, is its own business.
        if let Ok(mut c) = conn {
            let _ = answer(&mut c, shared);
        } else {
            // accept() failing at once (out of fds): do not spin.
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Reads one request's head and answers it: the metrics on `GET /metrics`, 404 or 405
/// otherwise; the connection is closed after.
fn answer(c: &mut TcpStream, shared: &Arc<Mutex<Arc<Snapshot>>>) -> io::Result<()> {
    c.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    c.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    let mut head = [0u8; 4096];
    let mut n = 0;
    while n < head.len() {
        let k = c.read(&mut head[n..])?;
        n += k;
        if k == 0 || head[..n].windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let line = head[..n].split(|&b| b == b'\n').next().unwrap_or_default();
    let mut words = std::str::from_utf8(line).unwrap_or("").split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let get = matches!(method, "GET" | "HEAD");
    let (status, kind, body) = match (get, path) {
        (true, "/metrics") => (
            "200 OK",
            prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            encode(shared),
        ),
        (true, "/") => ("200 OK", TEXT, "nswatch: metrics at /metrics\n".into()),
        (true, _) => ("404 Not Found", TEXT, "not found: try /metrics\n".into()),
        (false, _) => ("405 Method Not Allowed", TEXT, "GET /metrics\n".into()),
    };
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if method != "HEAD" {
        out.extend_from_slice(body.as_bytes());
    }
    c.write_all(&out)?;
    c.shutdown(std::net::Shutdown::Write)
}

const TEXT: &str = "text/plain; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Cause;
    use crate::event::Event;
    use crate::model::group::Naming;
    use crate::model::Change;
    use crate::nsset::NsSet;
    use crate::record::NsLink;

    fn set(inos: [u64; 7]) -> NsSet {
        NsSet::from_links(inos.map(|ino| NsLink { dev: 4, ino }))
    }
    const HOST: [u64; 7] = [1, 2, 3, 4, 5, 6, 7];
    const CT: [u64; 7] = [10, 11, 12, 14, 5, 16, 7];

    fn ev(time: u64, tid: u32, body: Body<'_>) -> Event<'_> {
        Event {
            time_ns: Some(time),
            cpu: Some(0),
            pid: Some(tid),
            tid: Some(tid),
            synthesized: false,
            body,
        }
    }

    fn call(syscall: Syscall, ret: i64) -> Cause {
        Cause {
            syscall,
            flags: 0,
            target: None,
            ret,
            enter_ns: 0,
            exit_ns: 0,
            pid: 1,
            tid: 1,
            cpu: 0,
            comm: String::new(),
            before: [0; 10],
            after: [0; 10],
            child_tid: None,
            dev: 4,
            flags_unread: false,
            cgroup: 0,
        }
    }

    /// Feeds `e` to the model, then the changes it made and the event to `counts`, in the
    /// session's order (starts before the event, exits after).
    fn feed(m: &mut Attributor, counts: &mut Counts, e: &Event<'_>) -> Option<GroupId> {
        let g = m.observe(e);
        let changes: Vec<Change> = m.take_changes().collect();
        for c in changes.iter().filter(|c| c.kind == ChangeKind::Start) {
            counts.put(m, &Update::Group(c));
        }
        counts.put(m, &Update::Event { event: e, group: g });
        for c in changes.iter().filter(|c| c.kind != ChangeKind::Start) {
            counts.put(m, &Update::Group(c));
        }
        g
    }

    fn scrape(counts: &mut Counts, m: &Attributor, now: u64) -> String {
        counts.publish_model(m, now);
        encode(&counts.shared)
    }

    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn groups_are_counted_under_their_names_and_leave_after_the_retention() {
        let mut m = Attributor::new(set(HOST));
        let mut counts = Counts::new(Arc::default(), Duration::from_secs(300));
        let (host, ct) = (set(HOST), set(CT));
        // A task enters a container by setns, is named, forks twice and execs; a failed
        // unshare; then everything ends.
        let setns = call(Syscall::Setns, 0);
        let ns = |ns, cause| Body::Namespaces {
            ns,
            comm: None,
            cause,
        };
        let g = feed(&mut m, &mut counts, &ev(10, 100, ns(&ct, Some(&setns)))).unwrap();
        m.set_naming(
            g,
            Naming {
                runtime: Some("runc".into()),
                runtime_id: Some("web-1".into()),
                name: Some("web-1".into()),
                namespace: Some("shop".into()),
                pod_name: Some("web".into()),
                ..Naming::default()
            },
        );
        for c in m.take_changes().collect::<Vec<_>>() {
            counts.put(&m, &Update::Group(&c));
        }
        for tid in [101, 102] {
            feed(
                &mut m,
                &mut counts,
                &ev(
                    20,
                    tid,
                    Body::Fork {
                        ppid: 100,
                        ptid: 100,
                    },
                ),
            );
            feed(&mut m, &mut counts, &ev(20, tid, ns(&ct, None)));
        }
        let exec = Body::Comm {
            comm: "sh".into(),
            exec: true,
        };
        feed(&mut m, &mut counts, &ev(30, 101, exec));
        let failed = call(Syscall::Unshare, -(libc::EPERM as i64));
        counts.put(
            &m,
            &Update::Event {
                event: &ev(40, 102, Body::NsSyscall { call: &failed }),
                group: Some(g),
            },
        );
        // The host's own activity is counted apart.
        feed(&mut m, &mut counts, &ev(41, 200, ns(&host, None)));
        feed(
            &mut m,
            &mut counts,
            &ev(
                42,
                201,
                Body::Fork {
                    ppid: 200,
                    ptid: 200,
                },
            ),
        );

        let text = scrape(&mut counts, &m, 50);
        let who = r#"group="ct-14",kind="container",name="web-1",runtime="runc",runtime_id="web-1",pod_namespace="shop",pod="web""#;
        let v = |series: &str| value(&text, series);
        assert_eq!(
            v(&format!("nswatch_group_tasks{{{who}}}")),
            Some(3.0),
            "{text}"
        );
        assert_eq!(v(&format!("nswatch_group_forks_total{{{who}}}")), Some(2.0));
        assert_eq!(v(&format!("nswatch_group_execs_total{{{who}}}")), Some(1.0));
        assert_eq!(
            v(&format!(
                r#"nswatch_group_namespace_syscalls_total{{{who},syscall="setns",result="ok"}}"#
            )),
            Some(1.0)
        );
        assert_eq!(
            v(&format!(
                r#"nswatch_group_namespace_syscalls_total{{{who},syscall="unshare",result="failed"}}"#
            )),
            Some(1.0)
        );
        assert_eq!(
            v(&format!(
                r#"nswatch_group_namespace_syscall_errors_total{{{who},syscall="unshare",errno="EPERM"}}"#
            )),
            Some(1.0)
        );
        assert_eq!(
            v(r#"nswatch_group_forks_total{group="host",kind="host",name="host"}"#),
            Some(1.0),
            "{text}"
        );
        assert_eq!(
            v(r#"nswatch_container_starts_total{kind="container"}"#),
            Some(1.0),
            "{text}"
        );
        assert_eq!(v(r#"nswatch_groups{kind="container"}"#), Some(1.0));
        assert!(v("process_resident_memory_bytes").unwrap() > 0.0, "{text}");
        assert!(v("process_cpu_seconds_total").is_some(), "{text}");

        // The container ends: counted, still shown within the retention, gone after it.
        for tid in [100, 101, 102] {
            feed(
                &mut m,
                &mut counts,
                &ev(60, tid, Body::Exit { ppid: 1, ptid: 1 }),
            );
        }
        let later = 60 + crate::model::attributor::EXIT_LINGER_NS + 1;
        feed(&mut m, &mut counts, &ev(later, 200, ns(&host, None)));
        let text = scrape(&mut counts, &m, later);
        assert_eq!(
            value(&text, &format!("nswatch_group_exits_total{{{who}}}")),
            Some(3.0)
        );
        assert_eq!(
            value(&text, &format!("nswatch_group_tasks{{{who}}}")),
            Some(0.0)
        );
        assert_eq!(
            value(&text, r#"nswatch_container_exits_total{kind="container"}"#),
            Some(1.0),
            "{text}"
        );
        let text = scrape(&mut counts, &m, later + 301_000_000_000);
        assert!(!text.contains("ct-14"), "{text}");
        assert_eq!(
            value(&text, "nswatch_metrics_groups_dropped_total"),
            Some(1.0)
        );
        assert_eq!(
            value(&text, "nswatch_metrics_groups"),
            Some(1.0),
            "the host"
        );
    }

    #[test]
    fn a_group_found_at_start_has_its_tasks_without_any_activity() {
        let mut m = Attributor::new(set(HOST));
        let mut counts = Counts::new(Arc::default(), Duration::from_secs(300));
        let sandbox = set([40, 2, 3, 4, 5, 6, 7]);
        let mut start = ev(
            0,
            300,
            Body::Namespaces {
                ns: &sandbox,
                comm: None,
                cause: None,
            },
        );
        start.synthesized = true;
        feed(&mut m, &mut counts, &start);
        let text = scrape(&mut counts, &m, 10);
        assert!(
            text.contains("nswatch_group_tasks{group=\"host\""),
            "the host, which no change started: {text}"
        );
        assert!(
            text.contains("nswatch_group_tasks{group=\"sb-40\""),
            "the quiet sandbox: {text}"
        );
    }

    #[test]
    fn at_most_max_ended_groups_stay() {
        let mut m = Attributor::new(set(HOST));
        let mut counts = Counts::new(Arc::default(), Duration::from_secs(300));
        counts.max_ended = 3;
        for i in 0..10u64 {
            let s = set([30 + i, 2, 3, 4, 5, 6, 7]);
            let tid = 1000 + i as u32;
            let t = 1_000 + i * 10;
            feed(
                &mut m,
                &mut counts,
                &ev(t, tid, Body::Fork { ppid: 1, ptid: 1 }),
            );
            feed(
                &mut m,
                &mut counts,
                &ev(
                    t,
                    tid,
                    Body::Namespaces {
                        ns: &s,
                        comm: None,
                        cause: None,
                    },
                ),
            );
            feed(
                &mut m,
                &mut counts,
                &ev(t + 1, tid, Body::Exit { ppid: 1, ptid: 1 }),
            );
        }
        let end = 1_000 + 100 + crate::model::attributor::EXIT_LINGER_NS + 1;
        let host = set(HOST);
        feed(
            &mut m,
            &mut counts,
            &ev(
                end,
                1,
                Body::Namespaces {
                    ns: &host,
                    comm: None,
                    cause: None,
                },
            ),
        );
        let text = scrape(&mut counts, &m, end);
        assert_eq!(value(&text, "nswatch_metrics_groups"), Some(4.0), "{text}");
        // The newest three sandboxes stay.
        for i in 7..10 {
            assert!(text.contains(&format!("sb-{}", 30 + i)), "{text}");
        }
        assert_eq!(
            value(&text, "nswatch_metrics_groups_dropped_total"),
            Some(7.0)
        );
    }

    #[test]
    fn syscall_table_follows_the_enum() {
        for (i, s) in SYSCALLS.iter().enumerate() {
            assert_eq!(*s as usize, i, "{}", s.name());
        }
    }

    fn ask(addr: SocketAddr, request: &str) -> String {
        let mut c = TcpStream::connect(addr).unwrap();
        c.write_all(request.as_bytes()).unwrap();
        let mut out = String::new();
        c.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn the_server_answers_scrapes_and_stops() {
        let server = Server::start("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = server.addr();
        assert_ne!(addr.port(), 0);
        let out = ask(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
        assert!(
            out.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"),
            "{out}"
        );
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        assert!(
            head.contains(&format!("Content-Length: {}\r\n", body.len())),
            "{out}"
        );
        assert!(
            body.contains("# TYPE nswatch_group_tasks gauge\n"),
            "{body}"
        );
        assert!(body.contains("\nprocess_resident_memory_bytes "), "{body}");
        let out = ask(addr, "HEAD /metrics?x=1 HTTP/1.0\r\n\r\n");
        assert!(
            out.starts_with("HTTP/1.1 200 OK") && out.ends_with("\r\n\r\n"),
            "{out}"
        );
        assert!(ask(addr, "GET /x HTTP/1.0\r\n\r\n").starts_with("HTTP/1.1 404 "));
        assert!(ask(addr, "POST /metrics HTTP/1.0\r\n\r\n").starts_with("HTTP/1.1 405 "));
        assert!(ask(addr, "\r\n\r\n").starts_with("HTTP/1.1 405 "));
        let t0 = Instant::now();
        drop(server);
        assert!(t0.elapsed() < Duration::from_secs(1));
        assert!(TcpStream::connect(addr).is_err(), "still listening");
    }

    #[test]
    fn addresses_default_to_loopback() {
        assert_eq!(parse_addr("9464").unwrap().to_string(), "127.0.0.1:9464");
        assert_eq!(
            parse_addr("localhost:9464").unwrap().to_string(),
            "127.0.0.1:9464"
        );
        assert_eq!(parse_addr("0.0.0.0:80").unwrap().to_string(), "0.0.0.0:80");
        assert_eq!(parse_addr("[::]:9464").unwrap().to_string(), "[::]:9464");
        assert!(parse_addr(":9464").unwrap_err().contains("0.0.0.0:9464"));
        assert!(parse_addr("99999").is_err());
        assert!(parse_addr("example.org:80").is_err());
        assert!(parse_addr("").is_err());
    }
}
