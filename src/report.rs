//! `nswatch report`'s text: one line per namespace change of a task, then the distinct
//! namespace sets and their tasks.

use crate::event::{Body, Event};
use crate::json::{eight, push_u64, Digits, RecentTexts};
use crate::nsset::{link_name, mask_names, Interner, NsSet, SetId};
use crate::record::NsLink;
use crate::text::escape;
use compact_str::CompactString;
use hashbrown::HashMap;
use std::io::{self, Write};

/// Why a line was printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// First sight of a task (perf's start-up state) that is not in the host's set.
    AtStart,
    /// A new task whose set differs from its parent's (clone with CLONE_NEW*, or the first
    /// child after unshare(CLONE_NEWPID)).
    NewTask,
    /// A running task's set changed (setns or unshare).
    Changed,
}

/// One namespace change of a task.
#[derive(Debug, Clone)]
pub struct Change {
    /// When.
    pub time_ns: Option<u64>,
    /// Where.
    pub cpu: Option<u32>,
    /// Process id.
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// Command name, when known.
    pub comm: Option<CompactString>,
    /// The set before (the task's own, or its parent's for a new task).
    pub before: Option<SetId>,
    /// The set after.
    pub after: SetId,
    /// Why it is reported.
    pub cause: Cause,
}

/// What a story line tells: a [`Change`], or one made at once without being kept.
#[derive(Debug, Clone, Copy)]
struct LineOf<'a> {
    time_ns: Option<u64>,
    cpu: Option<u32>,
    pid: u32,
    tid: u32,
    comm: Option<&'a str>,
    before: Option<SetId>,
    after: SetId,
    cause: Cause,
}

impl<'a> From<&'a Change> for LineOf<'a> {
    fn from(c: &'a Change) -> Self {
        LineOf {
            time_ns: c.time_ns,
            cpu: c.cpu,
            pid: c.pid,
            tid: c.tid,
            comm: c.comm.as_deref(),
            before: c.before,
            after: c.after,
            cause: c.cause,
        }
    }
}

/// Bytes of lines a [`Story`] makes before it writes them.
const TEXT_BLOCK: usize = 1 << 16;

/// The tasks seen in one set: a count, and the first few for the summary.
#[derive(Debug, Default)]
struct SetTasks {
    count: usize,
    first: Vec<(u32, u32, Option<String>)>,
}

/// Follows the namespace sets of tasks through an event stream.
#[derive(Debug, Default)]
pub struct Story {
    sets: Interner,
    host: Option<SetId>,
    current: HashMap<u32, SetId>,
    /// (tid, set) pairs already counted, so a task is counted once per set.
    seen: hashbrown::HashSet<(u32, SetId)>,
    forked_from: HashMap<u32, u32>,
    members: HashMap<SetId, SetTasks>,
    changes: Vec<Change>,
    finishing: bool,
    namespaces_events: u64,
    /// The parts of lines that a storm repeats, as text.
    texts: LineTexts,
    /// Lines made and not yet written: written in blocks (a setns storm is a line per
    /// record).
    text: Vec<u8>,
    /// How times are written.
    times: Times,
}

/// The parts of a story line that a storm repeats, kept as text: a setns storm writes a
/// line per record, the same task going back and forth between two sets, and making
/// those parts again (numbers, padding, names of links) was most of a line's cost.
#[derive(Debug, Default)]
struct LineTexts {
    /// The whole seconds of the last time written, and their text (`   751.`).
    secs: Option<(u64, Vec<u8>)>,
    /// What follows the time (` [001]   14670/14676   stress           changed: net  …
    /// differs from host: net` and the newline), by cpu, pid, tid, command name, cause
    /// and the sets before and after.
    rests: RecentTexts<(LineKey, Cause, Option<SetId>, SetId)>,
}

/// Whose line: cpu, pid, tid and command name.
type LineKey = (Option<u32>, u32, u32, Option<CompactString>);

impl LineTexts {
    /// Appends `t` as [`push_time`] does.
    #[inline]
    fn time(&mut self, out: &mut Vec<u8>, t: u64) {
        let (secs, nanos) = (t / 1_000_000_000, (t % 1_000_000_000) as u32);
        match &self.secs {
            Some((s, text)) if *s == secs => out.extend_from_slice(text),
            _ => {
                let mut text = Vec::with_capacity(8);
                push_right(&mut text, secs, 6, b' ');
                text.push(b'.');
                out.extend_from_slice(&text);
                self.secs = Some((secs, text));
            }
        }
        Digits::one((nanos / 100_000_000) as u8).push_to(out);
        out.extend_from_slice(&eight(nanos % 100_000_000).to_le_bytes());
    }
}

/// Until the host's set is known, changes wait; after this many NAMESPACES events without a
/// kthreadd (or readable PID 1) record, the most common set is taken as the host's.
const HOST_GUESS_AFTER: u64 = 10_000;
/// Tasks listed per set in the summary.
const LIST_TASKS: usize = 8;

impl Story {
    /// An empty story.
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes times as `times` says (the recording's clock by default).
    pub fn set_times(&mut self, times: Times) {
        self.times = times;
    }

    /// How times are written.
    pub fn times(&self) -> Times {
        self.times
    }

    /// The host's set, once known.
    pub fn host(&self) -> Option<&NsSet> {
        self.host.map(|h| self.sets.get(h))
    }

    /// Takes in one event.
    pub fn add(&mut self, ev: &Event<'_>) {
        self.add_shown(ev, true)
    }

    /// Takes in one event; one not `shown` (another process or container than the one
    /// asked for) is followed but neither told nor counted in the summary.
    pub fn add_shown(&mut self, ev: &Event<'_>, shown: bool) {
        self.add_shown_at(ev, shown, None)
    }

    /// [`Story::add`] for an event of a stream that names each distinct set by an index
    /// (`set_index`, that of a NAMESPACES event's set), the same set under the same index
    /// every time: an [`EventReceiver`](crate::event::EventReceiver)'s. Each index's set is
    /// then interned once, not at each event. One stream per story.
    pub fn add_at(&mut self, ev: &Event<'_>, set_index: Option<u32>) {
        self.add_shown_at(ev, true, set_index)
    }

    #[inline]
    fn add_shown_at(&mut self, ev: &Event<'_>, shown: bool, set_index: Option<u32>) {
        let (Some(pid), Some(tid)) = (ev.pid, ev.tid) else {
            return;
        };
        match &ev.body {
            Body::Fork { ptid, .. } => {
                self.forked_from.insert(tid, *ptid);
            }
            // perf writes a task's start-up records as FORK, NAMESPACES, COMM: the name
            // arrives after the change it belongs to.
            Body::Comm { comm, .. } => {
                if let Some(c) = self.changes.last_mut() {
                    if c.tid == tid && c.cause == Cause::AtStart {
                        c.comm = Some(CompactString::from(&**comm));
                        if let Some(m) = self.members.get_mut(&c.after) {
                            for f in m.first.iter_mut().filter(|f| f.1 == tid) {
                                f.2 = Some(comm.to_string());
                            }
                        }
                    }
                }
            }
            Body::Exit { .. } => {
                if let Some(id) = self.current.remove(&tid) {
                    self.seen.remove(&(tid, id));
                }
                self.forked_from.remove(&tid);
            }
            Body::Namespaces { ns, comm, .. } => {
                self.namespaces_events += 1;
                if ns.is_unknown() {
                    return;
                }
                let id = self.sets.intern_at(set_index, ns);
                // Kernel threads run in the initial namespaces: kthreadd (PID 2) names the
                // host where PID 1's links are unreadable.
                if self.host.is_none() && (pid == 1 || pid == 2) {
                    self.host = Some(id);
                }
                // Owned only where kept: most records repeat a known task's set.
                let comm = comm.as_deref();
                if shown && self.seen.insert((tid, id)) {
                    let m = self.members.entry(id).or_default();
                    m.count += 1;
                    if m.first.len() < LIST_TASKS {
                        m.first.push((pid, tid, comm.map(str::to_owned)));
                    }
                }
                // One probe for the task's set before and after.
                let (before, cause) = match self.current.insert(tid, id) {
                    Some(prev) => (Some(prev), Cause::Changed),
                    // perf synthesizes the tasks that existed before it started with time 0.
                    None if ev.time_ns == Some(0) => {
                        self.forked_from.remove(&tid);
                        (None, Cause::AtStart)
                    }
                    None => match self.forked_from.remove(&tid) {
                        Some(ptid) => (self.current.get(&ptid).copied(), Cause::NewTask),
                        None => (None, Cause::AtStart),
                    },
                };
                let report = shown
                    && match before {
                        Some(b) => b != id,
                        None => cause == Cause::AtStart,
                    };
                if report {
                    // Told at once where nothing waits before it (the host known, no
                    // start-up change waiting for its name): most lines of a storm.
                    if let (Some(host), true, false) =
                        (self.host, self.changes.is_empty(), cause == Cause::AtStart)
                    {
                        let line = LineOf {
                            time_ns: ev.time_ns,
                            cpu: ev.cpu,
                            pid,
                            tid,
                            comm,
                            before,
                            after: id,
                            cause,
                        };
                        let host = self.sets.get(host);
                        let (sets, times) = (&self.sets, self.times);
                        push_line(&mut self.texts, sets, host, times, &line, &mut self.text);
                        return;
                    }
                    self.changes.push(Change {
                        time_ns: ev.time_ns,
                        cpu: ev.cpu,
                        pid,
                        tid,
                        comm: comm.map(CompactString::from),
                        before,
                        after: id,
                        cause,
                    });
                }
            }
            _ => {}
        }
    }

    fn guess_host(&mut self) {
        if self.host.is_none() {
            self.host = self
                .members
                .iter()
                .max_by_key(|(id, m)| (m.count, std::cmp::Reverse(**id)))
                .map(|(id, _)| *id);
        }
    }

    /// Writes the changes that can be told now (all of them once the host is known), in
    /// blocks of 64 KiB until the end ([`Story::finish`]).
    pub fn write_changes(&mut self, out: &mut dyn Write) -> io::Result<()> {
        if self.host.is_none() && self.namespaces_events >= HOST_GUESS_AFTER {
            self.guess_host();
        }
        if let (Some(host), false) = (self.host, self.changes.is_empty()) {
            // A start-up change waits for its COMM record (see `add`), unless this is the
            // end.
            let keep = match self.changes.last() {
                Some(c) if c.cause == Cause::AtStart && !self.finishing => 1,
                _ => 0,
            };
            let upto = self.changes.len() - keep;
            let Story {
                sets,
                changes,
                texts,
                text,
                times,
                ..
            } = self;
            let host = sets.get(host);
            for c in &changes[..upto] {
                push_line(texts, sets, host, *times, &c.into(), text);
            }
            // What was written is not needed again.
            changes.drain(..upto);
        }
        if self.text.len() >= TEXT_BLOCK || self.finishing {
            out.write_all(&self.text)?;
            self.text.clear();
        }
        Ok(())
    }

    /// Writes the remaining changes and the summary of namespace sets.
    pub fn finish(&mut self, out: &mut dyn Write) -> io::Result<()> {
        self.guess_host();
        self.finishing = true;
        self.write_changes(out)?;
        let Some(host_id) = self.host else {
            return writeln!(
                out,
                "\nno namespace sets were read (a capture needs `perf record --namespaces`)"
            );
        };
        let host = *self.sets.get(host_id);
        // The sets of the tasks shown, and the host's.
        let mut ids: Vec<SetId> = self.members.keys().copied().collect();
        if !self.members.contains_key(&host_id) {
            ids.push(host_id);
        }
        ids.sort_by_key(|&id| (id != host_id, id));
        writeln!(out, "\nnamespace sets: {}", ids.len())?;
        let none = SetTasks::default();
        for id in ids {
            let set = self.sets.get(id);
            let tasks = self.members.get(&id).unwrap_or(&none);
            let label = if id == host_id {
                "host".to_string()
            } else {
                format!("differs from host: {}", mask_names(set.diff(&host)))
            };
            writeln!(
                out,
                "  set #{:<3} {:<40} tasks: {}",
                id.0, label, tasks.count
            )?;
            let shown: Vec<String> = set
                .links()
                .iter()
                .enumerate()
                .filter(|&(i, l)| id == host_id || host.links().get(i) != Some(l))
                .map(|(i, l)| format!("{} {}", link_name(i), fmt_link(l)))
                .collect();
            writeln!(out, "            {}", shown.join("  "))?;
            if id != host_id {
                let list: Vec<String> = tasks
                    .first
                    .iter()
                    .map(|(p, t, c)| format!("{p}/{t} {}", escape(c.as_deref().unwrap_or("?"))))
                    .collect();
                let more = tasks.count - tasks.first.len();
                let more = if more > 0 {
                    format!(", +{more} more")
                } else {
                    String::new()
                };
                writeln!(out, "            {}{}", list.join(", "), more)?;
            }
        }
        Ok(())
    }
}

/// A link as `lsns`, `ps`, `top` and the NDJSON's `ino` write it: the inode number in
/// decimal (`4026531833`, what `readlink /proc/PID/ns/net` shows as `net:[4026531833]`).
/// The device is left out: every namespace file lives on the one nsfs.
pub fn fmt_link(l: &NsLink) -> String {
    l.ino.to_string()
}

/// Appends `c`'s line to `text`, unless it is no news (a task first seen in the host's
/// set). Built by hand from the parts a storm repeats (see [`LineTexts`]), not through
/// `format!`: a setns storm is a line per record.
fn push_line(
    texts: &mut LineTexts,
    sets: &Interner,
    host: &NsSet,
    times: Times,
    c: &LineOf<'_>,
    text: &mut Vec<u8>,
) {
    if c.cause == Cause::AtStart && sets.get(c.after).diff(host) == 0 {
        return;
    }
    match (times.0, c.time_ns) {
        (None, Some(t)) => texts.time(text, t),
        (w, t) => Times(w).push(text, t),
    }
    // Keyed by the sets' ids, which the story's interner never gives out again, and
    // made from their differences (to the set before, to the host's) only when new.
    text.extend_from_slice(texts.rests.text(
        |(k, cause, before, after)| {
            *after == c.after
                && *before == c.before
                && *cause == c.cause
                && k.1 == c.pid
                && k.2 == c.tid
                && k.0 == c.cpu
                && k.3.as_deref() == c.comm
        },
        |rest| {
            let after = sets.get(c.after);
            let what = match (c.cause, c.before) {
                (Cause::AtStart, _) => "at start".to_string(),
                (Cause::NewTask, Some(b)) => format!(
                    "new task, not in parent's: {}",
                    mask_names(after.diff(sets.get(b)))
                ),
                (_, Some(b)) => format!("changed: {}", mask_names(after.diff(sets.get(b)))),
                (_, None) => "new task".to_string(),
            };
            push_task_columns(rest, c.cpu, c.pid, c.tid, c.comm.unwrap_or("?"));
            push_line_tail(rest, &what, after.diff(host));
            let key = (c.cpu, c.pid, c.tid, c.comm.map(CompactString::from));
            (key, c.cause, c.before, c.after)
        },
    ));
}

/// The columns after a line's time, as `report`'s story and `record`'s text both align
/// them: ` [CPU] pid/tid comm `, the command name escaped ([`escape`]).
fn push_task_columns(out: &mut Vec<u8>, cpu: Option<u32>, pid: u32, tid: u32, comm: &str) {
    out.push(b' ');
    match cpu {
        Some(cpu) => {
            out.push(b'[');
            push_right(out, cpu as u64, 3, b'0');
            out.push(b']');
        }
        None => out.extend_from_slice(b"[---]"),
    }
    out.push(b' ');
    push_right(out, pid as u64, 7, b' ');
    out.push(b'/');
    let at = out.len();
    push_u64(out, tid as u64);
    pad_to(out, at, 7);
    out.push(b' ');
    push_padded(out, &escape(comm), 16);
    out.push(b' ');
}

/// A story line's end: what changed, what differs from the host's set (`vs_host`, a link
/// mask), and the newline.
fn push_line_tail(line: &mut Vec<u8>, what: &str, vs_host: u32) {
    push_padded(line, what, 36);
    line.push(b' ');
    match vs_host {
        0 => line.extend_from_slice(b"back in the host's namespaces"),
        m => {
            line.extend_from_slice(b"differs from host: ");
            line.extend_from_slice(mask_names(m).as_bytes());
        }
    }
    line.push(b'\n');
}

/// A time in seconds (`   751.609692888`, 16 columns), or a dash, appended.
fn push_time(out: &mut Vec<u8>, t: Option<u64>) {
    match t {
        Some(t) => {
            push_right(out, t / 1_000_000_000, 6, b' ');
            out.push(b'.');
            push_right(out, t % 1_000_000_000, 9, b'0');
        }
        None => out.extend_from_slice(format!("{:>16}", "-").as_bytes()),
    }
}

/// `v` in decimal, right-aligned in `width` columns filled with `fill`.
fn push_right(out: &mut Vec<u8>, v: u64, width: usize, fill: u8) {
    let d = Digits::of(v);
    out.resize(out.len() + width.saturating_sub(d.len()), fill);
    d.push_to(out);
}

/// Spaces after what was appended from `at` on, up to `width` bytes (ASCII only).
fn pad_to(out: &mut Vec<u8>, at: usize, width: usize) {
    let n = out.len() - at;
    out.resize(out.len() + width.saturating_sub(n), b' ');
}

/// `s` left-aligned in `width` characters, as `{:<width}` does.
fn push_padded(out: &mut Vec<u8>, s: &str, width: usize) {
    out.extend_from_slice(s.as_bytes());
    let chars = if s.is_ascii() {
        s.len()
    } else {
        s.chars().count()
    };
    out.resize(out.len() + width.saturating_sub(chars), b' ');
}

/// Writes the groups `model` made (the host aside): label, kind, name and runtime, and
/// what else names them (cgroup, image, pod, the command that made them), with their life.
/// Groups of kernel threads alone ([`crate::model::Group::kernel_threads`]) count with the
/// host: listed only with `all`, else only counted.
/// Only the groups `keep` keeps are written (`--pid`, `--container`).
pub fn write_groups(
    model: &crate::model::Attributor,
    all: bool,
    keep: &dyn Fn(&crate::model::Group) -> bool,
    times: &Times,
    out: &mut dyn Write,
) -> io::Result<()> {
    let at = |t: u64| {
        let mut b = Vec::new();
        times.push(&mut b, Some(t));
        String::from_utf8_lossy(&b).trim_start().to_string()
    };
    let listed = || {
        model
            .groups()
            .iter()
            .filter(|g| g.kind != crate::model::Kind::Host && keep(g))
    };
    let (groups, kernel): (Vec<_>, Vec<_>) = listed().partition(|g| !g.kernel_threads);
    let groups = if all { listed().collect() } else { groups };
    match (kernel.len(), all) {
        (0, _) => writeln!(out, "\ngroups: {}", groups.len())?,
        (k, true) => writeln!(
            out,
            "\ngroups: {} ({k} of kernel threads alone, counted with the host)",
            groups.len()
        )?,
        (k, false) => writeln!(
            out,
            "\ngroups: {} (and {k} of kernel threads alone, counted with the host: --all lists it)",
            groups.len()
        )?,
    }
    for g in groups {
        let mut who = g.name().to_string();
        if let Some(rt) = &g.naming.runtime {
            who = format!("{who} ({rt})");
        }
        let n = &g.naming;
        let mut more = Vec::new();
        let fields = [
            ("image", &n.image),
            ("namespace", &n.namespace),
            ("pod", &n.pod_name),
            ("pod uid", &n.pod_uid),
            ("cgroup", &n.cgroup),
            ("by", &g.creator),
        ];
        for (k, v) in fields {
            if let Some(v) = v {
                more.push(format!("{k} {v}"));
            }
        }
        let life = match (g.started_ns, g.ended_ns) {
            (0, None) => "from the start".to_string(),
            (s, None) => format!("from {}", at(s)),
            (s, Some(e)) => format!("{} to {}", at(s), at(e)),
        };
        let kernel = if g.kernel_threads {
            "  (kernel threads)"
        } else {
            ""
        };
        writeln!(
            out,
            "  {:<18} {:<9} {:<24} {}{kernel}",
            escape(&g.label),
            g.kind.name(),
            escape(&who),
            life
        )?;
        if !more.is_empty() {
            writeln!(out, "            {}", escape(&more.join("  ")))?;
        }
    }
    Ok(())
}

/// How the lines of [`write_event_line`] and [`Story`] write times: the recording's clock
/// (CLOCK_MONOTONIC seconds, as perf prints them), or wall-clock time.
#[derive(Debug, Clone, Copy, Default)]
pub struct Times(pub Option<crate::units::WallClock>);

impl Times {
    /// Appends the time of `t` (or a dash where unknown), in a fixed width.
    pub fn push(&self, out: &mut Vec<u8>, t: Option<u64>) {
        match (self.0, t) {
            (Some(w), Some(t)) => out.extend_from_slice(w.rfc3339(t).as_bytes()),
            (Some(_), None) => out.extend_from_slice(format!("{:>30}", "-").as_bytes()),
            (None, t) => push_time(out, t),
        }
    }
}

/// The start of a line of `record`'s text: time, CPU, pid/tid, command name and group,
/// aligned as `report`'s story lines.
#[allow(clippy::too_many_arguments)]
fn push_head(
    out: &mut Vec<u8>,
    times: &Times,
    time: Option<u64>,
    cpu: Option<u32>,
    pid: u32,
    tid: u32,
    comm: &str,
    group: &str,
) {
    times.push(out, time);
    push_task_columns(out, cpu, pid, tid, comm);
    push_padded(out, &escape(group), 18);
    out.push(b' ');
}

/// Appends `ev`, which the model put in `group`, as one line for people (`nswatch record`
/// on a terminal): time, CPU, pid/tid, command name, group label, what happened. Names
/// are escaped ([`escape`]). Returns false, writing nothing, for what a person does not
/// need a line for: the start-up scan's tasks in the host, samples, and the groups of
/// kernel threads alone ([`crate::model::Group::kernel_threads`]), which count as the host.
pub fn write_event_line(
    model: &crate::model::Attributor,
    ev: &Event<'_>,
    group: Option<crate::model::GroupId>,
    times: &Times,
    out: &mut Vec<u8>,
) -> bool {
    use crate::event::cause::{errno_name, flag_names};
    let label = group.map_or("-", |g| model.group(g).label.as_str());
    if group.is_some_and(|g| model.group(g).kernel_threads) {
        return false;
    }
    if ev.synthesized
        && (group == Some(crate::model::GroupId::HOST)
            || !matches!(ev.body, Body::Namespaces { .. }))
    {
        return false;
    }
    let tid = ev.tid.unwrap_or(0);
    let pid = ev.pid.unwrap_or(tid);
    // An EXIT's task has just ended: it is found among the ended ones.
    let time = ev.time_ns.unwrap_or(model.now_ns());
    let task_comm = model
        .task_at(0, tid, time)
        .map(|(t, _)| t.comm().to_string())
        .filter(|c| !c.is_empty());
    // A new task's own record in the host, as every fork makes: the fork line said it.
    let born_in_host = matches!(ev.body, Body::Namespaces { cause: None, .. })
        && group == Some(crate::model::GroupId::HOST)
        && model.task_at(0, tid, time).is_some_and(|(t, _)| {
            t.previous().is_none() && time - t.born_ns().min(time) < 10_000_000
        });
    if born_in_host {
        return false;
    }
    let what = match &ev.body {
        Body::Namespaces { ns, cause, .. } => {
            let vs_host = match ns.diff(model.host()) {
                0 => "in the host's namespaces".to_string(),
                m => format!("differs from host: {}", mask_names(m)),
            };
            let why = match cause {
                Some(c) => format!(
                    " ({} {}{})",
                    c.syscall.name(),
                    flag_names(c.syscall, c.flags),
                    if c.ok() {
                        String::new()
                    } else {
                        format!(" {}", errno_name(c.ret))
                    }
                ),
                None if ev.synthesized => " (at start)".to_string(),
                None => String::new(),
            };
            format!("namespaces  {vs_host}{why}")
        }
        Body::Fork { ppid, ptid } => format!("fork        from {ppid}/{ptid}"),
        Body::Exit { .. } => "exit".to_string(),
        Body::Comm { comm, exec } => format!(
            "comm        {}{}",
            escape(comm),
            if *exec { " (exec)" } else { "" }
        ),
        Body::Cgroup { id, path } => format!("cgroup      {id} {}", escape(path)),
        Body::Lost { lost } => format!("lost        {lost} records (ring full)"),
        Body::LostSamples { lost } => format!("lost        {lost} samples"),
        Body::Sample { .. } => return false,
        Body::NsSyscall { call } => format!(
            "ns_syscall  {} {}{}",
            call.syscall.name(),
            flag_names(call.syscall, call.flags),
            if call.ok() {
                String::new()
            } else {
                format!(" {}", errno_name(call.ret))
            }
        ),
        Body::NsSyscallLost { lost } => format!("lost        {lost} syscall records"),
    };
    let comm = match &ev.body {
        Body::Namespaces { comm: Some(c), .. } => c.to_string(),
        Body::NsSyscall { call } => call.comm.clone(),
        _ => task_comm.unwrap_or_else(|| "?".to_string()),
    };
    push_head(out, times, ev.time_ns, ev.cpu, pid, tid, &comm, label);
    out.extend_from_slice(what.as_bytes());
    out.push(b'\n');
    true
}

/// Appends a group change as one line for people, in [`write_event_line`]'s columns:
/// `container_start  container web (docker)`; nothing for a group of kernel threads.
pub fn write_change_line(
    model: &crate::model::Attributor,
    change: &crate::model::Change,
    times: &Times,
    out: &mut Vec<u8>,
) {
    let g = model.group(change.group);
    if g.kernel_threads {
        return;
    }
    let leader = model.task_at(0, g.leader, change.time_ns).map(|(t, _)| t);
    let comm = leader
        .map(|t| t.comm().to_string())
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "?".to_string());
    let pid = leader.map_or(g.leader, |t| t.pid);
    push_head(
        out,
        times,
        Some(change.time_ns),
        None,
        pid,
        g.leader,
        &comm,
        &g.label,
    );
    let mut what = format!(
        "{:<11} {} {}",
        crate::model::json::change_type(change.kind),
        g.kind.name(),
        g.name()
    );
    if let Some(rt) = &g.naming.runtime {
        what.push_str(&format!(" ({rt})"));
    }
    if g.differs != 0 {
        what.push_str(&format!(" own: {}", mask_names(g.differs)));
    }
    out.extend_from_slice(escape(&what).as_bytes());
    out.push(b'\n');
}
