//! The state of `nswatch top`, apart from any terminal: fed [`Update`]s and keys, it keeps
//! the rates, the recent namespace events, a snapshot of the tree and what the user chose
//! (selection, expansion, filter, sort, pause). [`crate::ui::draw`] reads it.

use crate::keys::{self, Action};
use crate::rates::{Counts, Metric, Rates, HISTORY};
use crate::usage::{Sampler, Usage};
use crossterm::event::KeyEvent;
use hashbrown::{HashMap, HashSet};
use nswatch::event::cause::{errno_name, flag_names, ns_type_name, Syscall, Target};
use nswatch::event::Cause;
use nswatch::event::{Body, Event};
use nswatch::model::json::Announcements;
use nswatch::model::tree::{self, GroupNode, Row, Tree};
use nswatch::model::{Attributor, ChangeKind, GroupId};
use nswatch::nsset::mask_names;
use nswatch::select::Selection;
use nswatch::session::Update;
use serde::Serialize;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};

/// Recent events kept for the events pane and the export.
pub const RECENT: usize = 256;

/// Where the events come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// This machine, now.
    Live,
    /// A recording.
    Replay {
        /// Its file name, as given.
        name: String,
        /// Playback speed (recorded seconds per second); `None`: as fast as it reads.
        speed: Option<f64>,
    },
}

/// What a recent event was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecentKind {
    /// A task entered other namespaces (setns, unshare, or born into new ones).
    Change,
    /// A namespace syscall failed.
    Failed,
    /// A group started.
    Start,
    /// A group ended.
    Exit,
    /// A group was renamed.
    Rename,
}

/// One line of the events pane.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recent {
    /// Arrival order.
    pub seq: u64,
    /// Event time, ns.
    pub time_ns: u64,
    /// What it was.
    pub kind: RecentKind,
    /// The syscall ("setns", "unshare", "clone", "clone3"), when the probe saw it.
    pub syscall: Option<&'static str>,
    /// Its flags by name, without the "CLONE_" prefix, for the namespaces only
    /// ("NEWNET|NEWUTS"); setns's target instead when it named one ("net:4026532290").
    pub flags: String,
    /// The errno of a failed call ("EINVAL").
    pub errno: Option<String>,
    /// The task (0 for group events).
    pub pid: u32,
    /// The thread.
    pub tid: u32,
    /// Its command name.
    pub comm: String,
    /// Namespaces it changed ("net,mnt"), read from the model.
    pub changed: String,
    /// The group it is in (or that started or ended): its display name.
    pub group: String,
    /// That group's stable id ("ct-4026532301"), which a later rename keeps.
    pub group_id: String,
}

/// A column of the groups pane, by which siblings can be sorted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Column {
    /// The group's name.
    Name,
    /// Live tasks.
    Tasks,
    /// CPU use of its cgroup, percent of one core.
    Cpu,
    /// Memory of its cgroup.
    Mem,
    /// Forks per second.
    Forks,
    /// Execs per second.
    Execs,
    /// Exits per second.
    Exits,
    /// Namespace changes per second.
    Ns,
    /// All of the four per second (the sparkline's figure).
    Activity,
}

impl Column {
    /// Left to right, as drawn.
    pub const ALL: [Column; 9] = [
        Column::Name,
        Column::Tasks,
        Column::Cpu,
        Column::Mem,
        Column::Forks,
        Column::Execs,
        Column::Exits,
        Column::Ns,
        Column::Activity,
    ];

    /// Its heading.
    pub fn heading(self) -> &'static str {
        match self {
            Column::Name => "NAME",
            Column::Tasks => "TASKS",
            Column::Cpu => "CPU%",
            Column::Mem => "MEM",
            Column::Forks => "FORK/s",
            Column::Execs => "EXEC/s",
            Column::Exits => "EXIT/s",
            Column::Ns => "NS/s",
            Column::Activity => "ACTIVITY",
        }
    }

    fn step(self, by: isize) -> Column {
        let i = Column::ALL.iter().position(|&c| c == self).unwrap_or(0) as isize;
        let n = Column::ALL.len() as isize;
        Column::ALL[(i + by).rem_euclid(n) as usize]
    }
}

/// How sibling groups are ordered: by a column, names A to Z and figures largest first,
/// or the other way round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Sort {
    /// The column.
    pub column: Column,
    /// The other way round.
    pub reverse: bool,
}

impl Default for Sort {
    /// The busiest first.
    fn default() -> Sort {
        Sort {
            column: Column::Activity,
            reverse: false,
        }
    }
}

/// How event times are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Times {
    /// Local wall-clock time, HH:MM:SS.mmm (where the source gives a wall clock).
    Wall,
    /// Seconds since the first event.
    Relative,
}

/// One line of the tree pane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item {
    /// A pod (index into the tree's pods).
    Pod(usize),
    /// A group (index into the tree's groups).
    Group(usize),
    /// A process of a group (group index, process index).
    Process(usize, usize),
    /// A thread of a process (group, process, tid).
    Thread(usize, usize, u32),
}

/// A visible line of the tree with its depth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViewRow {
    /// Indentation level.
    pub depth: u16,
    /// What it shows.
    pub item: Item,
}

/// Which pane the bottom of a narrow screen shows (a wide one shows both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    /// The latest namespace events.
    Events,
    /// The selected group.
    Detail,
}

/// Counts the header shows that come from outside the model.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stats {
    /// Records the kernel lost.
    pub lost_records: u64,
    /// eBPF records lost.
    pub bpf_lost: u64,
    /// The probe: "on", "off", "unavailable: …", or "recorded" in a replay.
    pub bpf: String,
    /// nswatch's own CPU use over the last second, percent of one core.
    pub cpu_pct: f64,
    /// Events read so far.
    pub events: u64,
    /// Replay: how far through the file, percent.
    pub progress_pct: Option<f64>,
    /// Replay: the file is read to its end.
    pub finished: bool,
}

/// State frozen by `p`: what the screen showed when paused.
#[derive(Debug)]
struct Frozen {
    rates: Rates,
    recent: VecDeque<Recent>,
    stats: Stats,
}

/// The state of `nswatch top`. See the module documentation.
#[derive(Debug)]
pub struct App {
    /// Where events come from.
    pub source: Source,
    /// Rates per group.
    pub rates: Rates,
    recent: VecDeque<Recent>,
    seq: u64,
    /// Time of the first event, the origin of the times shown.
    first_ns: Option<u64>,
    /// Time of the newest event.
    last_ns: u64,
    /// The last snapshot of the model.
    pub tree: Tree,
    live_tasks: usize,
    rows: Vec<ViewRow>,
    /// Index into the visible rows.
    pub selected: usize,
    /// First visible row of the tree pane (kept by the drawing, which knows the height).
    pub scroll: std::cell::Cell<usize>,
    expanded: HashSet<String>,
    expanded_procs: HashSet<(String, u32)>,
    /// The filter (case-insensitive substring of names, ids, runtimes, cgroups, commands).
    pub filter: String,
    /// True while `/` is being typed.
    pub editing: bool,
    /// Sibling order.
    pub sort: Sort,
    /// How event times are written.
    pub times: Times,
    /// Wall-clock ns minus event-clock ns, where known.
    wall_offset_ns: Option<i128>,
    /// CPU and memory by cgroup path, of the groups last sampled.
    usage: HashMap<String, Usage>,
    /// Names of the groups the filter matches, for the events pane.
    filter_groups: HashSet<String>,
    /// The tree rows drawn last (first, count), kept by the drawing.
    pub drawn: std::cell::Cell<(usize, usize)>,
    frozen: Option<Frozen>,
    /// Help shown.
    pub help: bool,
    /// Bottom pane of a narrow screen.
    pub pane: Pane,
    /// A message for the status line (export path, errors).
    pub status: Option<String>,
    /// Where `e` writes.
    pub export_dir: PathBuf,
    /// Counts from outside the model.
    pub stats: Stats,
    /// `q` was pressed.
    pub quit: bool,
    /// `-p`, `--container`: what the panes show (everything when it selects all).
    select: Selection,
    /// `--all`: the groups of kernel threads alone listed apart from the host, whose row
    /// otherwise counts them.
    pub all: bool,
    /// The status line's note that no group is yet what `--container` names, taken away
    /// once one shows.
    waiting: Option<String>,
    model_changed: bool,
    redraw: bool,
}

fn short_flags(c: &Cause) -> String {
    if let Some((_, t)) = &c.target {
        return match t {
            Target::Nsfs { ns_type, ino } => format!("{}:{ino}", ns_type_name(*ns_type)),
            Target::Pidfd { pid, .. } => format!("pidfd:{pid}"),
            Target::Closed => "fd closed".to_string(),
            Target::Other => "fd other".to_string(),
        };
    }
    let names = flag_names(c.syscall, c.flags);
    let ns: Vec<&str> = names
        .split('|')
        .filter(|f| f.starts_with("CLONE_NEW"))
        .map(|f| f.trim_start_matches("CLONE_"))
        .collect();
    if ns.is_empty() {
        "-".to_string()
    } else {
        ns.join("|")
    }
}

impl App {
    /// An empty state; `export_dir` is where `e` writes.
    pub fn new(source: Source, export_dir: impl Into<PathBuf>) -> App {
        App {
            source,
            rates: Rates::default(),
            recent: VecDeque::with_capacity(RECENT),
            seq: 0,
            first_ns: None,
            last_ns: 0,
            tree: Tree {
                host_pid: 1,
                host_tasks: 0,
                host_processes: 0,
                pods: Vec::new(),
                groups: Vec::new(),
            },
            live_tasks: 0,
            rows: Vec::new(),
            selected: 0,
            scroll: std::cell::Cell::new(0),
            expanded: HashSet::new(),
            expanded_procs: HashSet::new(),
            filter: String::new(),
            editing: false,
            sort: Sort::default(),
            times: Times::Wall,
            wall_offset_ns: None,
            usage: HashMap::new(),
            filter_groups: HashSet::new(),
            drawn: std::cell::Cell::new((0, 0)),
            frozen: None,
            help: false,
            pane: Pane::Events,
            status: None,
            export_dir: export_dir.into(),
            stats: Stats::default(),
            quit: false,
            select: Selection::default(),
            all: false,
            waiting: None,
            model_changed: true,
            redraw: true,
        }
    }

    /// Takes in one update of the session (or replay). `model` is the model after it.
    pub fn update(&mut self, model: &Attributor, update: Update<'_>) {
        self.model_changed = true;
        match update {
            Update::Group(c) => {
                if !self.shows_group(model, c.group) || !self.select.keep_group(model, c.group) {
                    return;
                }
                let g = model.group(c.group);
                let kind = match c.kind {
                    ChangeKind::Start => RecentKind::Start,
                    ChangeKind::Exit => RecentKind::Exit,
                    ChangeKind::Rename => RecentKind::Rename,
                };
                let what = match &g.naming().runtime {
                    Some(rt) => format!("{} {rt}", g.kind.name()),
                    None => g.kind.name().to_string(),
                };
                self.push(Recent {
                    seq: 0,
                    time_ns: c.time_ns,
                    kind,
                    syscall: None,
                    flags: what,
                    errno: None,
                    pid: 0,
                    tid: 0,
                    comm: g.creator.clone().unwrap_or_default(),
                    changed: String::new(),
                    group: g.name().to_string(),
                    group_id: g.label().to_string(),
                });
            }
            Update::Event { event, group } => self.event(model, event, group),
        }
    }

    /// Applies `ev` to `model` and takes it in with the group changes it caused, ordered as
    /// a live session hands them on (starts, the event, then exits and renames): for
    /// replays and tests, where nothing else owns the model.
    pub fn observe(&mut self, model: &mut Attributor, ev: &Event<'_>) -> Option<GroupId> {
        self.observe_named(model, ev, &mut Announcements::new())
    }

    /// [`App::observe`] for a recording that announced its groups' names: a group takes
    /// its announced naming when it appears, before its start is taken in.
    pub fn observe_named(
        &mut self,
        model: &mut Attributor,
        ev: &Event<'_>,
        names: &mut Announcements,
    ) -> Option<GroupId> {
        let group = names.observe(model, ev);
        nswatch::session::hand_on(model, &mut Vec::new(), ev, group, |_, _| {}, &mut |m, u| {
            self.update(m, u)
        });
        group
    }

    /// The replayed input ended: the groups left without a task are declared ended.
    pub fn end_of_input(&mut self, model: &mut Attributor) {
        model.finish();
        let changes: Vec<_> = model.take_changes().collect();
        for c in &changes {
            self.update(model, Update::Group(c));
        }
    }

    /// Takes in an NDJSON line that gave no event: a recording's "container_start" or
    /// "container_rename" names its group (a rename of a live group is taken in as one).
    pub fn announce(&mut self, model: &mut Attributor, names: &mut Announcements, line: &str) {
        if names.read_line(model, line) {
            let changes: Vec<_> = model.take_changes().collect();
            for c in &changes {
                self.update(model, Update::Group(c));
            }
            self.model_changed = true;
        }
    }

    fn event(&mut self, model: &Attributor, ev: &Event<'_>, group: Option<GroupId>) {
        self.stats.events += 1;
        if let Some(t) = ev.time_ns.filter(|&t| t > 0) {
            self.first_ns.get_or_insert(t);
            self.last_ns = t;
        }
        let tid = ev.tid.unwrap_or(0);
        // A failed or group-keeping syscall changed nothing: its group is its task's.
        let group = match &ev.body {
            Body::NsSyscall { call } => {
                group.or_else(|| model.current(call.tid).map(|iv| iv.group))
            }
            _ => group,
        };
        if !self.select.is_all() && !self.select.keep(model, ev, group) {
            return;
        }
        // The kernel threads' own groups are the host's unless listed apart.
        let group = group.map(|g| {
            if self.shows_group(model, g) {
                g
            } else {
                GroupId::HOST
            }
        });
        // perf stamps the tasks it found at start with time 0: state, not activity.
        let synthesized = ev.synthesized || ev.time_ns == Some(0);
        match &ev.body {
            Body::Fork { .. } if !synthesized => {
                self.rates.add(group, Metric::Fork);
            }
            Body::Comm { exec: true, .. } if !synthesized => self.rates.add(group, Metric::Exec),
            Body::Exit { .. } if !synthesized => self.rates.add(group, Metric::Exit),
            Body::Namespaces { cause, comm, .. } if !synthesized => {
                let task = model.task(tid);
                let changed = task
                    .and_then(|t| {
                        let before = t.previous()?;
                        Some(mask_names(
                            model
                                .sets()
                                .get(before.set)
                                .diff(model.sets().get(t.current.set)),
                        ))
                    })
                    .unwrap_or_default();
                // A task's first record (its birth, or its discovery) is no change, unless
                // the probe says a clone put it in new namespaces.
                if changed.is_empty() && cause.is_none() {
                    return;
                }
                self.rates.add(group, Metric::Ns);
                let comm = task
                    .map(|t| t.comm().to_string())
                    .or_else(|| comm.as_ref().map(|c| c.to_string()))
                    .unwrap_or_default();
                self.push(Recent {
                    seq: 0,
                    time_ns: ev.time_ns.unwrap_or(self.last_ns),
                    kind: RecentKind::Change,
                    syscall: cause.map(|c| c.syscall.name()),
                    flags: cause.map_or(String::new(), short_flags),
                    errno: None,
                    pid: ev.pid.unwrap_or(0),
                    tid,
                    comm,
                    changed,
                    group: group
                        .map(|g| model.group(g).name().to_string())
                        .unwrap_or_default(),
                    group_id: group
                        .map(|g| model.group(g).label().to_string())
                        .unwrap_or_default(),
                });
            }
            Body::NsSyscall { call } => {
                let kind = if call.ok() {
                    RecentKind::Change
                } else {
                    RecentKind::Failed
                };
                if call.ok() && call.syscall == Syscall::Setns {
                    self.rates.add(group, Metric::Ns);
                }
                self.push(Recent {
                    seq: 0,
                    time_ns: call.enter_ns,
                    kind,
                    syscall: Some(call.syscall.name()),
                    flags: short_flags(call),
                    errno: (!call.ok()).then(|| errno_name(-call.ret)),
                    pid: call.pid,
                    tid: call.tid,
                    comm: call.comm.clone(),
                    changed: String::new(),
                    group: group
                        .map(|g| model.group(g).name().to_string())
                        .unwrap_or_default(),
                    group_id: group
                        .map(|g| model.group(g).label().to_string())
                        .unwrap_or_default(),
                });
            }
            Body::Lost { lost } => self.stats.lost_records += lost,
            Body::NsSyscallLost { lost } => self.stats.bpf_lost += lost,
            _ => {}
        }
    }

    fn push(&mut self, mut r: Recent) {
        self.seq += 1;
        r.seq = self.seq;
        self.redraw = true;
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(r);
    }

    /// Closes the seconds up to `now_ns` (the events' clock). True when rates changed.
    pub fn advance(&mut self, now_ns: u64) -> bool {
        let rolled = self.rates.advance(now_ns);
        self.redraw |= rolled;
        // Sorted by a figure, the order follows the new second's figures.
        if rolled && self.sort.column != Column::Name && self.frozen.is_none() {
            self.relayout();
        }
        rolled
    }

    /// True when the model changed since the last [`App::refresh`].
    pub fn model_changed(&self) -> bool {
        self.model_changed
    }

    /// Takes a new snapshot of `model` (unless paused) and lays out the rows again.
    pub fn refresh(&mut self, model: &Attributor, host_pid: u32) {
        if self.frozen.is_some() {
            return;
        }
        let key = self.selection();
        self.tree = tree::build(model, host_pid, true);
        if !self.all {
            self.tree.fold_kernel_threads();
        }
        if self.select.is_all() {
            self.live_tasks = model.live_tasks();
        } else {
            self.narrow(model);
            self.live_tasks = self.tree.groups.iter().map(|g| g.tasks as usize).sum();
            if !self.tree.groups.is_empty() {
                if let Some(note) = self.waiting.take() {
                    if self.status.as_ref() == Some(&note) {
                        self.status = None;
                    }
                }
            }
        }
        self.model_changed = false;
        self.relayout_keeping(key);
    }

    /// Keeps in the snapshot only what the selection selects: the groups `--container`
    /// names (and those nested in them), the processes `-p` names and their groups, each
    /// group's task count then the threads of the processes kept.
    fn narrow(&mut self, model: &Attributor) {
        let s = &self.select;
        self.tree.groups.retain_mut(|g| {
            if !s.container.as_ref().is_none_or(|q| q.selects(model, g.gid)) {
                return false;
            }
            if s.pids.is_empty() {
                return true;
            }
            g.processes.retain(|p| s.pids.contains(&p.pid));
            g.tasks = g.processes.iter().map(|p| p.threads.len() as u32).sum();
            !g.processes.is_empty()
        });
        let kept: HashSet<&str> = self.tree.groups.iter().map(|g| g.id.as_str()).collect();
        for pod in &mut self.tree.pods {
            pod.containers.retain(|c| kept.contains(c.as_str()));
        }
        self.tree.pods.retain(|p| !p.containers.is_empty());
    }

    /// Shows only what `select` selects (`top -p`, `--container`): the groups pane, the
    /// task counts, the rates and the events pane.
    pub fn set_selection(&mut self, select: Selection) {
        self.select = select;
        self.model_changed = true;
    }

    /// What `-p` and `--container` asked for.
    pub fn selecting(&self) -> &Selection {
        &self.select
    }

    /// Says `note` in the status line until a group of the selection shows (a live `top
    /// --container` started before its container).
    pub fn wait_for_selection(&mut self, note: String) {
        self.status = Some(note.clone());
        self.waiting = Some(note);
    }

    /// True when group `g` is listed as itself: any group but one of kernel threads
    /// alone, which is the host's unless `--all`.
    fn shows_group(&self, model: &Attributor, g: GroupId) -> bool {
        self.all || !model.group(g).kernel_threads
    }

    /// Sets the CPU and memory figures by cgroup path directly (tests).
    pub fn set_usage(&mut self, usage: HashMap<String, Usage>) {
        self.usage = usage;
        self.relayout();
    }

    /// Sets the tree directly (tests, benches).
    pub fn set_tree(&mut self, tree: Tree) {
        let key = self.selection();
        self.live_tasks = tree.groups.iter().map(|g| g.tasks as usize).sum();
        self.tree = tree;
        self.model_changed = false;
        self.relayout_keeping(key);
    }

    /// Live tasks in the snapshot.
    pub fn live_tasks(&self) -> usize {
        self.live_tasks
    }

    /// True when the screen should be drawn again; clears the flag.
    pub fn take_redraw(&mut self) -> bool {
        std::mem::take(&mut self.redraw)
    }

    /// Asks for a redraw (resize).
    pub fn touch(&mut self) {
        self.redraw = true;
    }

    /// Rates as shown (frozen while paused).
    pub fn shown_rates(&self) -> &Rates {
        self.frozen.as_ref().map_or(&self.rates, |f| &f.rates)
    }

    /// Counts as shown (frozen while paused).
    pub fn shown_stats(&self) -> &Stats {
        self.frozen.as_ref().map_or(&self.stats, |f| &f.stats)
    }

    /// Recent events as shown, oldest first (frozen while paused).
    pub fn recent(&self) -> &VecDeque<Recent> {
        self.frozen.as_ref().map_or(&self.recent, |f| &f.recent)
    }

    /// Time of the first recent event, the origin of the times shown.
    pub fn first_ns(&self) -> u64 {
        self.first_ns.unwrap_or(0)
    }

    /// Sets the wall clock's lead over the events' clock (ns): event times can then be
    /// written as wall-clock times.
    pub fn set_wall_offset(&mut self, offset_ns: i128) {
        self.wall_offset_ns = Some(offset_ns);
        self.redraw = true;
    }

    /// An event time as shown: local HH:MM:SS.mmm, or seconds since the first event.
    pub fn time_text(&self, t_ns: u64) -> String {
        match (self.times, self.wall_offset_ns) {
            (Times::Wall, Some(off)) => wall_text(t_ns as i128 + off),
            _ => format!("{:>9.3}", t_ns.saturating_sub(self.first_ns()) as f64 / 1e9),
        }
    }

    /// The recent events the filter lets through, oldest first: those of a group it
    /// matches, or whose command, pid, syscall or flags hold its text.
    pub fn shown_events(&self) -> impl Iterator<Item = &Recent> {
        let f = self.filter.to_lowercase();
        self.recent().iter().filter(move |r| {
            if f.is_empty() || self.filter_groups.contains(&r.group_id) {
                return true;
            }
            let has = |s: &str| s.to_lowercase().contains(&f);
            has(&r.group)
                || has(&r.comm)
                || has(&r.flags)
                || has(&r.changed)
                || r.syscall.is_some_and(has)
                || r.pid.to_string() == f
        })
    }

    /// CPU and memory of a group's own cgroup, as last sampled (none where the group has
    /// no cgroup of its own, or in a replay).
    pub fn usage_of(&self, g: &GroupNode) -> Usage {
        g.cgroup
            .as_ref()
            .and_then(|c| self.usage.get(c))
            .copied()
            .unwrap_or_default()
    }

    /// Samples the cgroups of the containers on screen (of every shown one while sorting
    /// by CPU or memory, which needs them all) that have a cgroup of their own.
    pub fn sample_usage(&mut self, sampler: &mut Sampler) {
        let (first, n) = match self.sort.column {
            Column::Cpu | Column::Mem => (0, self.rows.len()),
            _ => self.drawn.get(),
        };
        let paths: Vec<(&str, u32)> = self
            .rows
            .iter()
            .skip(first)
            .take(n)
            .filter_map(|r| match r.item {
                Item::Group(g) if self.tree.groups[g].kind == "container" => {
                    let g = &self.tree.groups[g];
                    Some((g.cgroup.as_deref()?, g.processes.first()?.pid))
                }
                _ => None,
            })
            .filter(|(c, _)| crate::usage::own_cgroup(c))
            .collect();
        self.usage = sampler.sample(paths);
        self.redraw = true;
        if matches!(self.sort.column, Column::Cpu | Column::Mem) {
            self.relayout();
        }
    }

    /// True while paused.
    pub fn paused(&self) -> bool {
        self.frozen.is_some()
    }

    /// The visible rows of the tree.
    pub fn rows(&self) -> &[ViewRow] {
        &self.rows
    }

    /// Whether a group (by label) shows its processes.
    pub fn is_expanded(&self, label: &str) -> bool {
        self.expanded.contains(label)
    }

    /// Whether a process shows its threads.
    pub fn is_proc_expanded(&self, label: &str, pid: u32) -> bool {
        self.expanded_procs.contains(&(label.to_string(), pid))
    }

    /// The group of the selected row (a process's or thread's group).
    pub fn selected_group(&self) -> Option<&GroupNode> {
        match self.rows.get(self.selected)?.item {
            Item::Group(g) | Item::Process(g, _) | Item::Thread(g, _, _) => self.tree.groups.get(g),
            Item::Pod(_) => None,
        }
    }

    /// A group's activity per second over the last whole second.
    pub fn group_rate(&self, gid: GroupId) -> Counts {
        self.shown_rates()
            .get(gid)
            .map_or(Counts::default(), |r| r.last)
    }

    fn matches(&self, g: &GroupNode) -> bool {
        if self.filter.is_empty() {
            return true;
        }
        let f = self.filter.to_lowercase();
        let has = |s: &str| s.to_lowercase().contains(&f);
        has(&g.name)
            || has(&g.id)
            || g.runtime.as_deref().is_some_and(has)
            || g.runtime_id.as_deref().is_some_and(has)
            || g.cgroup.as_deref().is_some_and(has)
            || g.processes.iter().any(|p| has(&p.comm))
    }

    /// A row's identity (group or pod id, pid, tid), to find it again after the rows
    /// change. Pod ids ("pod-…") and group ids ("ct-…", "sb-…", "host") never collide.
    fn key_of(&self, item: Item) -> (&str, u32, u32) {
        match item {
            Item::Pod(p) => (&self.tree.pods[p].id, 0, 0),
            Item::Group(g) => (&self.tree.groups[g].id, 0, 0),
            Item::Process(g, p) => (
                &self.tree.groups[g].id,
                self.tree.groups[g].processes[p].pid,
                0,
            ),
            Item::Thread(g, p, t) => (
                &self.tree.groups[g].id,
                self.tree.groups[g].processes[p].pid,
                t,
            ),
        }
    }

    /// Lays out the visible rows from the snapshot, the filter, the sort and what is
    /// expanded, keeping the selection on the same thing where it still exists.
    pub fn relayout(&mut self) {
        let key = self.selection();
        self.relayout_keeping(key);
    }

    /// The selected row's identity, owned: taken before the snapshot it indexes goes.
    fn selection(&self) -> Option<(String, u32, u32)> {
        self.rows
            .get(self.selected)
            .map(|r| self.key_of(r.item))
            .map(|(k, p, t)| (k.to_string(), p, t))
    }

    fn relayout_keeping(&mut self, key: Option<(String, u32, u32)>) {
        let sort = self.sort;
        let rates = self.shown_rates();
        let counts = |g: &GroupNode| rates.get(g.gid).map_or(Counts::default(), |r| r.last);
        // Figures compare largest first; ties go to the busier, then model order.
        let cpu = |g: &GroupNode| self.usage_of(g).cpu_pct.unwrap_or(-1.0);
        let mem = |g: &GroupNode| self.usage_of(g).mem_bytes;
        let busier = |a: &GroupNode, b: &GroupNode| {
            counts(b)
                .sum()
                .cmp(&counts(a).sum())
                .then(cpu(b).total_cmp(&cpu(a)))
                .then(b.tasks.cmp(&a.tasks))
        };
        let order = self.tree.rows_by(|a, b| {
            let (ca, cb) = (counts(a), counts(b));
            let o = match sort.column {
                Column::Name => a.name.cmp(&b.name),
                Column::Tasks => b.tasks.cmp(&a.tasks),
                Column::Cpu => cpu(b).total_cmp(&cpu(a)),
                Column::Mem => mem(b).cmp(&mem(a)),
                Column::Forks => cb.forks.cmp(&ca.forks),
                Column::Execs => cb.execs.cmp(&ca.execs),
                Column::Exits => cb.exits.cmp(&ca.exits),
                Column::Ns => cb.ns.cmp(&ca.ns),
                Column::Activity => std::cmp::Ordering::Equal,
            }
            .then_with(|| busier(a, b));
            if sort.reverse {
                o.reverse()
            } else {
                o
            }
        });
        let mut rows = Vec::with_capacity(order.len());
        let pod_shown = |pod: &str| {
            self.tree
                .groups
                .iter()
                .any(|g| g.pod.as_deref() == Some(pod) && self.matches(g))
        };
        for (depth, row) in order {
            match row {
                Row::Pod(p) => {
                    if self.filter.is_empty() || pod_shown(&self.tree.pods[p].id) {
                        rows.push(ViewRow {
                            depth: depth as u16,
                            item: Item::Pod(p),
                        });
                    }
                }
                Row::Group(gi) => {
                    let g = &self.tree.groups[gi];
                    if !self.matches(g) {
                        continue;
                    }
                    rows.push(ViewRow {
                        depth: depth as u16,
                        item: Item::Group(gi),
                    });
                    if !self.expanded.contains(&g.id) {
                        continue;
                    }
                    for (pi, p) in g.processes.iter().enumerate() {
                        rows.push(ViewRow {
                            depth: depth as u16 + 1,
                            item: Item::Process(gi, pi),
                        });
                        if p.threads.len() > 1
                            && self.expanded_procs.contains(&(g.id.clone(), p.pid))
                        {
                            for &t in p.threads.iter().filter(|&&t| t != p.pid) {
                                rows.push(ViewRow {
                                    depth: depth as u16 + 2,
                                    item: Item::Thread(gi, pi, t),
                                });
                            }
                        }
                    }
                }
            }
        }
        self.filter_groups = if self.filter.is_empty() {
            HashSet::new()
        } else {
            self.tree
                .groups
                .iter()
                .filter(|g| self.matches(g))
                .map(|g| g.id.clone())
                .collect()
        };
        self.rows = rows;
        self.selected = self.selected.min(self.rows.len().saturating_sub(1));
        if let Some(key) = key {
            let old = self.selected;
            self.selected = (0..self.rows.len())
                .find(|&i| {
                    let (k, p, t) = self.key_of(self.rows[i].item);
                    k == key.0 && p == key.1 && t == key.2
                })
                .unwrap_or(old);
        }
        self.redraw = true;
    }

    /// Applies a key.
    pub fn handle_key(&mut self, key: KeyEvent) {
        self.redraw = true;
        let action = keys::action(key, self.editing, self.help);
        match action {
            Action::None => {}
            Action::Quit => self.quit = true,
            Action::Up => self.selected = self.selected.saturating_sub(1),
            Action::Down => {
                self.selected = (self.selected + 1).min(self.rows.len().saturating_sub(1))
            }
            Action::PageUp => self.selected = self.selected.saturating_sub(10),
            Action::PageDown => {
                self.selected = (self.selected + 10).min(self.rows.len().saturating_sub(1))
            }
            Action::Top => self.selected = 0,
            Action::Bottom => self.selected = self.rows.len().saturating_sub(1),
            Action::Toggle => self.toggle(None),
            Action::Expand => self.toggle(Some(true)),
            Action::Collapse => self.toggle(Some(false)),
            Action::FilterStart => {
                self.editing = true;
                self.status = None;
            }
            Action::FilterChar(c) => {
                self.filter.push(c);
                self.relayout();
            }
            Action::FilterBack => {
                self.filter.pop();
                self.relayout();
            }
            Action::FilterDone => self.editing = false,
            Action::FilterCancel => {
                self.editing = false;
                self.filter.clear();
                self.relayout();
            }
            Action::SortNext | Action::SortPrev => {
                let by = if action == Action::SortNext { 1 } else { -1 };
                self.sort.column = self.sort.column.step(by);
                self.relayout();
            }
            Action::SortReverse => {
                self.sort.reverse = !self.sort.reverse;
                self.relayout();
            }
            Action::Times => {
                self.times = match self.times {
                    Times::Wall => Times::Relative,
                    Times::Relative => Times::Wall,
                };
                if self.times == Times::Wall && self.wall_offset_ns.is_none() {
                    self.status = Some("no wall clock in this source: times are relative".into());
                }
            }
            Action::Pause => {
                self.frozen = match self.frozen.take() {
                    Some(_) => None,
                    None => Some(Frozen {
                        rates: self.rates.clone(),
                        recent: self.recent.clone(),
                        stats: self.stats.clone(),
                    }),
                };
                // Resuming shows what changed meanwhile at the next refresh.
                self.model_changed = true;
            }
            Action::Export => {
                self.status = Some(match self.export() {
                    Ok(p) => format!("exported to {}", p.display()),
                    Err(e) => format!("export failed: {e}"),
                });
            }
            Action::Help => self.help = !self.help,
            Action::SwitchPane => {
                self.pane = match self.pane {
                    Pane::Events => Pane::Detail,
                    Pane::Detail => Pane::Events,
                }
            }
            Action::Escape => {
                self.help = false;
                self.status = None;
            }
        }
    }

    fn toggle(&mut self, want: Option<bool>) {
        let Some(row) = self.rows.get(self.selected).copied() else {
            return;
        };
        match row.item {
            Item::Group(g) => {
                let id = self.tree.groups[g].id.clone();
                let open = self.expanded.contains(&id);
                match (want.unwrap_or(!open), open) {
                    (true, false) => {
                        self.expanded.insert(id);
                    }
                    (false, true) => {
                        self.expanded.remove(&id);
                    }
                    _ => return,
                }
            }
            Item::Process(g, p) => {
                let key = (
                    self.tree.groups[g].id.clone(),
                    self.tree.groups[g].processes[p].pid,
                );
                let open = self.expanded_procs.contains(&key);
                match (want.unwrap_or(!open), open) {
                    (true, false) => {
                        self.expanded_procs.insert(key);
                    }
                    (false, true) => {
                        self.expanded_procs.remove(&key);
                    }
                    // Left on a collapsed process goes to its group.
                    (false, false) => {
                        self.select_group(g);
                        return;
                    }
                    _ => return,
                }
            }
            Item::Thread(g, _, _) => {
                if want == Some(false) {
                    self.select_group(g);
                }
                return;
            }
            Item::Pod(_) => return,
        }
        self.relayout();
    }

    fn select_group(&mut self, g: usize) {
        if let Some(i) = self.rows.iter().position(|r| r.item == Item::Group(g)) {
            self.selected = i;
        }
    }

    /// The current view as JSON: header counts, the visible groups with their rates and
    /// history, pods, and the recent events.
    pub fn export_json(&self) -> serde_json::Value {
        #[derive(Serialize)]
        struct GroupOut<'a> {
            #[serde(flatten)]
            node: &'a GroupNode,
            rates: Counts,
            history: Vec<u32>,
        }
        let rates = self.shown_rates();
        let mut seen = HashSet::new();
        let groups: Vec<GroupOut<'_>> = self
            .rows
            .iter()
            .filter_map(|r| match r.item {
                Item::Group(g) | Item::Process(g, _) | Item::Thread(g, _, _) => Some(g),
                Item::Pod(_) => None,
            })
            .filter(|g| seen.insert(*g))
            .map(|g| {
                let node = &self.tree.groups[g];
                let r = rates.get(node.gid);
                GroupOut {
                    node,
                    rates: r.map_or(Counts::default(), |r| r.last),
                    history: r.map_or(Vec::new(), |r| r.history(HISTORY).collect()),
                }
            })
            .collect();
        let source = match &self.source {
            Source::Live => serde_json::json!({"live": true}),
            Source::Replay { name, speed } => serde_json::json!({"replay": name, "speed": speed}),
        };
        serde_json::json!({
            "source": source,
            "paused": self.paused(),
            "filter": self.filter,
            "sort": self.sort.column,
            "sort_reverse": self.sort.reverse,
            "stats": self.shown_stats(),
            "live_tasks": self.live_tasks,
            "rates": rates.total.last,
            "host_pid": self.tree.host_pid,
            "pods": self.tree.pods,
            "groups": groups,
            "events": self.shown_events().collect::<Vec<_>>(),
        })
    }

    /// Writes [`App::export_json`] to a new file in the export directory: created with
    /// `O_EXCL | O_NOFOLLOW` (a name taken, a link planted there included, moves on to the
    /// next name), mode 0600; removed again if the write fails.
    pub fn export(&self) -> std::io::Result<PathBuf> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let text = serde_json::to_string_pretty(&self.export_json())? + "\n";
        let (path, mut file) = create_unique(
            &self.export_dir,
            &format!("nswatch-top-{}.{:03}", now.as_secs(), now.subsec_millis()),
        )?;
        if let Err(e) = std::io::Write::write_all(&mut file, text.as_bytes()) {
            let _ = std::fs::remove_file(&path);
            return Err(std::io::Error::new(
                e.kind(),
                format!("{}: writing: {e}", path.display()),
            ));
        }
        Ok(std::fs::canonicalize(&path).unwrap_or(path))
    }
}

/// Creates `dir/stem.json`, or `dir/stem-N.json` for the first N free: whatever is at a
/// name, a dangling link too, is left alone and the next one tried.
fn create_unique(dir: &Path, stem: &str) -> std::io::Result<(PathBuf, std::fs::File)> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    for n in 0..10_000 {
        let p = match n {
            0 => dir.join(format!("{stem}.json")),
            n => dir.join(format!("{stem}-{n}.json")),
        };
        let created = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&p);
        match created {
            Ok(f) => {
                // 0600 whatever the umask: the export lists the machine's tasks.
                f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
                return Ok((p, f));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(std::io::Error::new(
                    e.kind(),
                    format!("{}: creating: {e}", p.display()),
                ))
            }
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AlreadyExists,
        format!("{}: no free name for {stem}.json", dir.display()),
    ))
}

/// Local time of `ns` since the epoch, HH:MM:SS.mmm.
fn wall_text(ns: i128) -> String {
    let secs = ns.div_euclid(1_000_000_000) as libc::time_t;
    let ms = ns.rem_euclid(1_000_000_000) / 1_000_000;
    // SAFETY: localtime_r fills the struct it is given from a plain integer.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    if unsafe { libc::localtime_r(&secs, &mut tm) }.is_null() {
        return format!("{:>12}", "?");
    }
    format!(
        "{:02}:{:02}:{:02}.{ms:03}",
        tm.tm_hour, tm.tm_min, tm.tm_sec
    )
}
