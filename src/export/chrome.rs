//! Chrome trace-event JSON (the JSON Object Format: `{"traceEvents":[…],
//! "displayTimeUnit":…}`), which Perfetto and chrome://tracing open.
//!
//! One process track per group (host, container, sandbox), named by "process_name" metadata
//! with the group's label, name and kind; one thread per task in it. A task's stay in a
//! group is a complete slice ("ph":"X") from its fork, first sight or move in, to its exit,
//! move out or the end of the trace. Namespace changes and container start/exit are instant
//! events ("ph":"i") carrying the links that changed. Timestamps are µs, as the format
//! wants, with ns kept as three decimals.
//!
//! Slices are written when they end, so events are not in time order; the format does not
//! require it. A track's "pid" is its group id plus one (pid 0 is the idle task's in many
//! viewers); its threads keep their host tids.
//!
//! After the array, `"nswatchExport"` says `"complete"` once the whole input was written,
//! and `"incomplete"` while the export runs and after it stopped early (interrupted, a
//! damaged input, a write that failed, a kill).

use crate::event::{Body, Event};
use crate::export::trace_writer::{Sink, TraceWriter};
use crate::json::{push_str, push_u64};
use crate::model::json::push_kind_list;
use crate::model::json::Announcements;
use crate::model::{Attributor, ChangeKind, Group, GroupId};
use crate::nsset::link_name;
use crate::select::Selection;
use hashbrown::{HashMap, HashSet};
use std::io;

/// A task's open stay in a group.
#[derive(Debug, Clone)]
struct Stay {
    group: GroupId,
    pid: u32,
    start_ns: u64,
    /// How it began: "fork", "at start", "first seen", "setns/unshare", "clone".
    began: &'static str,
    /// Command names seen during the stay, oldest first.
    comms: Vec<String>,
    /// False from a fork until the new task's own NAMESPACES record, which the kernel
    /// writes a moment after the FORK (µs later, not at the same time): the set it names
    /// is where the task was born, not a move.
    own_ns_seen: bool,
}

/// The exporter: fed every event in time order, it asks the model for groups and writes
/// the trace as it goes.
pub struct ChromeTrace {
    w: TraceWriter,
    stays: HashMap<u32, Stay>,
    named: HashSet<GroupId>,
    /// Names an NDJSON recording announced, given to the model's groups as they appear.
    names: Announcements,
    /// First event time that is not perf's start-up state (time 0); earlier starts are
    /// drawn from here, so tasks found at start do not stretch back to boot.
    first_ns: Option<u64>,
    last_ns: u64,
    slices: u64,
    instants: u64,
    /// `--pid`, `--container`: the tracks and tasks written.
    select: Selection,
}

fn push_key(out: &mut Vec<u8>, key: &str) {
    out.push(b',');
    push_str(out, key);
    out.push(b':');
}

/// µs with three decimals from ns.
fn push_us(out: &mut Vec<u8>, ns: u64) {
    push_u64(out, ns / 1000);
    let frac = ns % 1000;
    out.push(b'.');
    out.extend_from_slice(&[
        b'0' + (frac / 100) as u8,
        b'0' + (frac / 10 % 10) as u8,
        b'0' + (frac % 10) as u8,
    ]);
}

/// The trace's "pid" of a group.
/// A group's track name: its display name and its runtime (`web (docker)`), or its kind
/// where no runtime is known (`ct-4026532588 (container)`).
pub fn track_name(g: &Group) -> String {
    let what = g.naming.runtime.as_deref().unwrap_or(g.kind.name());
    format!("{} ({what})", g.name())
}

/// The end of the document until it is finished (after every write, and what a killed or
/// failed export leaves): a reader can tell a trace cut short from a whole one.
const INCOMPLETE: &[u8] = b"\n],\"nswatchExport\":\"incomplete\"}\n";

/// The end of a document written to the end of its input.
const COMPLETE: &[u8] = b"\n],\"nswatchExport\":\"complete\"}\n";

fn track(g: GroupId) -> u64 {
    u64::from(g.0) + 1
}

impl ChromeTrace {
    /// Starts a trace on `sink`; `source` (the input's name) goes into "otherData".
    pub fn new(sink: Sink, source: &str) -> io::Result<ChromeTrace> {
        let mut head = Vec::new();
        head.extend_from_slice(b"{\"displayTimeUnit\":\"ns\",\"otherData\":{\"generator\":");
        push_str(&mut head, concat!("nswatch ", env!("CARGO_PKG_VERSION")));
        head.extend_from_slice(b",\"source\":");
        push_str(&mut head, source);
        head.extend_from_slice(b"},\"traceEvents\":[");
        Ok(ChromeTrace {
            w: TraceWriter::new(sink, &head, INCOMPLETE, COMPLETE)?,
            stays: HashMap::new(),
            named: HashSet::new(),
            names: Announcements::new(),
            first_ns: None,
            last_ns: 0,
            slices: 0,
            instants: 0,
            select: Selection::default(),
        })
    }

    /// Writes only the tasks and group events `select` keeps (by process id and group:
    /// see [`Selection::shows`]); the model still takes in every event.
    pub fn select(&mut self, select: Selection) {
        self.select = select;
    }

    /// The selection, which knows what it found.
    pub fn selection(&self) -> &Selection {
        &self.select
    }

    /// Slices written so far.
    pub fn slices(&self) -> u64 {
        self.slices
    }

    /// Instant events written so far.
    pub fn instants(&self) -> u64 {
        self.instants
    }

    fn clamp(&self, ns: u64) -> u64 {
        self.first_ns.map_or(ns, |f| ns.max(f))
    }

    /// Names a group's track the first time it is used (and again when renamed).
    fn name_group(&mut self, model: &Attributor, g: GroupId, again: bool) -> io::Result<()> {
        if !self.named.insert(g) && !again {
            return Ok(());
        }
        let group = model.group(g);
        let name = track_name(group);
        let label = group.label.clone();
        self.w.element(|o| {
            o.extend_from_slice(b"{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":");
            push_u64(o, track(g));
            o.extend_from_slice(b",\"tid\":0,\"args\":{\"name\":");
            push_str(o, &name);
            o.extend_from_slice(b"}}");
        })?;
        // The label stays findable (it is what events and `nswatch report` call the group).
        self.w.element(|o| {
            o.extend_from_slice(b"{\"name\":\"process_labels\",\"ph\":\"M\",\"pid\":");
            push_u64(o, track(g));
            o.extend_from_slice(b",\"tid\":0,\"args\":{\"labels\":");
            push_str(o, &label);
            o.extend_from_slice(b"}}");
        })?;
        // The host first, then groups in the order they appeared.
        self.w.element(|o| {
            o.extend_from_slice(b"{\"name\":\"process_sort_index\",\"ph\":\"M\",\"pid\":");
            push_u64(o, track(g));
            o.extend_from_slice(b",\"tid\":0,\"args\":{\"sort_index\":");
            push_u64(o, u64::from(g.0));
            o.extend_from_slice(b"}}");
        })
    }

    fn open(&mut self, model: &Attributor, tid: u32, stay: Stay) -> io::Result<()> {
        if !self.select.shows(model, stay.group, stay.pid) {
            // Not followed: if it moves where it is shown, it is first seen there.
            if let Some(old) = self.stays.remove(&tid) {
                let end = self.last_ns;
                self.close_stay(tid, old, end, "lost")?;
            }
            return Ok(());
        }
        self.name_group(model, stay.group, false)?;
        let start = stay.start_ns;
        if let Some(old) = self.stays.insert(tid, stay) {
            // perf's start-up state may name a task twice; otherwise the tid was reused
            // without an EXIT seen, and the old task ended unseen.
            if start != old.start_ns && start != 0 {
                let end = self.last_ns;
                self.close_stay(tid, old, end, "lost")?;
            }
        }
        Ok(())
    }

    fn close(&mut self, tid: u32, end_ns: u64, why: &str) -> io::Result<()> {
        match self.stays.remove(&tid) {
            Some(s) => self.close_stay(tid, s, end_ns, why),
            None => Ok(()),
        }
    }

    fn close_stay(&mut self, tid: u32, s: Stay, end_ns: u64, why: &str) -> io::Result<()> {
        let start = self.clamp(s.start_ns);
        let end = self.clamp(end_ns).max(start);
        let name = s
            .comms
            .last()
            .cloned()
            .unwrap_or_else(|| format!("tid {tid}"));
        self.slices += 1;
        let pid = track(s.group);
        self.w.element(|o| {
            o.extend_from_slice(b"{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":");
            push_u64(o, pid);
            o.extend_from_slice(b",\"tid\":");
            push_u64(o, u64::from(tid));
            o.extend_from_slice(b",\"args\":{\"name\":");
            push_str(o, &name);
            o.extend_from_slice(b"}}");
        })?;
        self.w.element(|o| {
            o.extend_from_slice(b"{\"name\":");
            push_str(o, &name);
            o.extend_from_slice(b",\"cat\":\"task\",\"ph\":\"X\",\"ts\":");
            push_us(o, start);
            o.extend_from_slice(b",\"dur\":");
            push_us(o, end - start);
            o.extend_from_slice(b",\"pid\":");
            push_u64(o, pid);
            o.extend_from_slice(b",\"tid\":");
            push_u64(o, u64::from(tid));
            o.extend_from_slice(b",\"args\":{\"pid\":");
            push_u64(o, u64::from(s.pid));
            o.extend_from_slice(b",\"tid\":");
            push_u64(o, u64::from(tid));
            push_key(o, "began");
            push_str(o, s.began);
            push_key(o, "ended");
            push_str(o, why);
            push_key(o, "comms");
            o.push(b'[');
            for (i, c) in s.comms.iter().enumerate() {
                if i > 0 {
                    o.push(b',');
                }
                push_str(o, c);
            }
            o.extend_from_slice(b"]}}");
        })
    }

    /// An instant on group `g`'s track, task `tid`'s (`pid` of `tid`'s process where
    /// known, for the selection).
    #[allow(clippy::too_many_arguments)]
    fn instant(
        &mut self,
        model: &Attributor,
        name: &str,
        scope: u8,
        ts_ns: u64,
        g: GroupId,
        tid: u32,
        args: impl FnOnce(&mut Vec<u8>),
    ) -> io::Result<()> {
        let pid = self.stays.get(&tid).map_or(tid, |s| s.pid);
        if tid != 0 && !self.select.shows(model, g, pid) {
            return Ok(());
        }
        let ts = self.clamp(ts_ns);
        self.instants += 1;
        self.w.element(|o| {
            o.extend_from_slice(b"{\"name\":");
            push_str(o, name);
            o.extend_from_slice(b",\"cat\":\"namespaces\",\"ph\":\"i\",\"s\":\"");
            o.push(scope);
            o.extend_from_slice(b"\",\"ts\":");
            push_us(o, ts);
            o.extend_from_slice(b",\"pid\":");
            push_u64(o, track(g));
            o.extend_from_slice(b",\"tid\":");
            push_u64(o, u64::from(tid));
            o.extend_from_slice(b",\"args\":{");
            args(o);
            o.extend_from_slice(b"}}");
        })
    }

    /// Takes in an NDJSON line that [`crate::event::JsonReader`] gave no event for: a
    /// recording's "container_start" or "container_rename" names the group of its label.
    /// True when it was one.
    pub fn announce(&mut self, model: &mut Attributor, line: &str) -> io::Result<bool> {
        let was = self.names.read_line(model, line);
        // A rename of a live group is a change of its own.
        let changes: Vec<_> = model.take_changes().collect();
        for c in &changes {
            if self.select.keep_group(model, c.group) {
                self.name_group(model, c.group, c.kind == ChangeKind::Rename)?;
            }
        }
        self.write_changes(model, changes, false)?;
        Ok(was)
    }

    /// Applies `ev` to `model` and writes what it shows.
    pub fn event(&mut self, model: &mut Attributor, ev: &Event<'_>) -> io::Result<()> {
        let time = ev.time_ns.unwrap_or(self.last_ns);
        if time > 0 && !ev.synthesized && self.first_ns.is_none() {
            self.first_ns = Some(time);
        }
        self.last_ns = self.last_ns.max(time);
        let tid = ev.tid;
        let before = tid.and_then(|t| model.current(t).copied());
        let g = self.names.observe(model, ev);
        if !self.select.is_all() {
            // What was found, for the caller to say what was not.
            self.select.keep(model, ev, g);
        }
        let changes: Vec<_> = model.take_changes().collect();
        for c in &changes {
            if self.select.keep_group(model, c.group) {
                self.name_group(model, c.group, c.kind == ChangeKind::Rename)?;
            }
        }
        match (&ev.body, tid, g) {
            (Body::Fork { .. }, Some(tid), Some(g)) => {
                let startup = ev.synthesized || time == 0;
                // A new task runs its parent's program until it execs; perf's start-up
                // FORKs are followed by the task's own name instead.
                let comms = model
                    .task(tid)
                    .map(|t| t.comm().to_string())
                    .filter(|c| !c.is_empty() && !startup);
                self.open(
                    model,
                    tid,
                    Stay {
                        group: g,
                        pid: ev.pid.unwrap_or(tid),
                        start_ns: time,
                        began: if startup { "at start" } else { "fork" },
                        comms: comms.into_iter().collect(),
                        own_ns_seen: false,
                    },
                )?;
            }
            (Body::Namespaces { ns, comm, cause }, Some(tid), Some(g)) => {
                let comm = comm.as_deref().map(str::to_string);
                match before.filter(|_| self.stays.contains_key(&tid)) {
                    Some(b) => {
                        let old_set = *model.sets().get(b.set);
                        let changed = old_set.diff(ns);
                        // perf's start-up state (time 0) and a fork from a parent never
                        // seen (no set to compare with) are not changes.
                        let startup = ev.synthesized || time == 0;
                        let unknown = old_set.is_unknown() || ns.is_unknown();
                        if changed != 0 && !startup && !unknown {
                            let born_now = self.stays.get(&tid).is_some_and(|s| !s.own_ns_seen);
                            let from = model.group(b.group).label.clone();
                            let to = model.group(g).label.clone();
                            let (old, new) = (old_set, **ns);
                            self.name_group(model, g, false)?;
                            // The probe's call where it saw one (its syscall, flags, target
                            // and result), else what the records alone tell.
                            let why = match cause {
                                Some(c) => c.syscall.name(),
                                None if born_now => "clone",
                                None => "setns/unshare",
                            };
                            self.instant(model, "namespaces", b't', time, g, tid, |o| {
                                o.extend_from_slice(b"\"cause\":");
                                push_str(o, why);
                                if let Some(c) = cause {
                                    o.push(b',');
                                    c.write_fields(o, None);
                                }
                                push_key(o, "from");
                                push_str(o, &from);
                                push_key(o, "to");
                                push_str(o, &to);
                                push_key(o, "changed");
                                o.push(b'{');
                                let mut first = true;
                                for i in (0..32).filter(|i| changed & (1 << i) != 0) {
                                    if !first {
                                        o.push(b',');
                                    }
                                    first = false;
                                    push_str(o, link_name(i));
                                    o.extend_from_slice(b":{\"from\":");
                                    push_u64(o, old.links().get(i).map_or(0, |l| l.ino));
                                    o.extend_from_slice(b",\"to\":");
                                    push_u64(o, new.links().get(i).map_or(0, |l| l.ino));
                                    o.push(b'}');
                                }
                                o.push(b'}');
                            })?;
                        }
                        let stay = self.stays.get_mut(&tid).expect("matched above");
                        let born = !std::mem::replace(&mut stay.own_ns_seen, true);
                        if stay.group != g {
                            if born {
                                // The child's own first record says where it was born: the
                                // stay moves, no sliver in the parent's group is left behind.
                                stay.group = g;
                                if time > 0 && !ev.synthesized {
                                    stay.began = "clone";
                                }
                                self.name_group(model, g, false)?;
                            } else {
                                let mut next = stay.clone();
                                next.group = g;
                                next.start_ns = time;
                                next.began = "setns/unshare";
                                next.own_ns_seen = true;
                                next.comms.truncate(0);
                                next.comms.extend(stay.comms.last().cloned());
                                self.close(tid, time, "setns/unshare")?;
                                self.open(model, tid, next)?;
                            }
                        }
                        if let Some(c) = comm {
                            push_comm(self.stays.get_mut(&tid), c);
                        }
                    }
                    None => {
                        let began = if ev.synthesized || time == 0 {
                            "at start"
                        } else {
                            "first seen"
                        };
                        self.open(
                            model,
                            tid,
                            Stay {
                                group: g,
                                pid: ev.pid.unwrap_or(tid),
                                start_ns: time,
                                began,
                                comms: comm.into_iter().collect(),
                                own_ns_seen: true,
                            },
                        )?;
                    }
                }
            }
            (Body::Comm { comm, .. }, Some(tid), _) => {
                push_comm(self.stays.get_mut(&tid), comm.to_string());
            }
            (Body::Exit { .. }, Some(tid), _) => self.close(tid, time, "exit")?,
            (Body::NsSyscall { call }, Some(tid), _) => {
                // A call without a NAMESPACES record (one that failed, or an exec that
                // entered its time_for_children): an instant on the task's track.
                let at = self.stays.get(&tid).map_or(GroupId::HOST, |s| s.group);
                self.name_group(model, at, false)?;
                self.instant(model, call.syscall.name(), b't', time, at, tid, |o| {
                    o.extend_from_slice(b"\"cause\":");
                    push_str(o, call.syscall.name());
                    o.push(b',');
                    call.write_fields(o, None);
                })?;
            }
            (Body::Lost { lost }, _, _) => {
                let lost = *lost;
                self.instant(model, "lost records", b'g', time, GroupId::HOST, 0, |o| {
                    o.extend_from_slice(b"\"lost\":");
                    push_u64(o, lost);
                })?;
            }
            _ => {}
        }
        self.write_changes(model, changes, ev.synthesized)
    }

    /// The instants of group changes; `synthesized`: made by the start-up state.
    fn write_changes(
        &mut self,
        model: &Attributor,
        changes: Vec<crate::model::Change>,
        synthesized: bool,
    ) -> io::Result<()> {
        for c in changes {
            if (c.time_ns == 0 || synthesized) && c.kind == ChangeKind::Start {
                // It existed when the recording began (perf's time-0 state, or the start-up
                // scan of a live run); it did not start in it.
                continue;
            }
            let grp = model.group(c.group);
            let (label, kind, name, leader) = (
                grp.label.clone(),
                grp.kind.name(),
                grp.name().to_string(),
                grp.leader,
            );
            let (runtime, runtime_id) = (grp.naming.runtime.clone(), grp.naming.runtime_id.clone());
            let owns = grp.differs;
            let what = crate::model::json::change_type(c.kind);
            if !self.select.keep_group(model, c.group) {
                continue;
            }
            self.instant(model, what, b'p', c.time_ns, c.group, leader, |o| {
                o.extend_from_slice(b"\"container\":");
                push_str(o, &label);
                push_key(o, "kind");
                push_str(o, kind);
                push_key(o, "name");
                push_str(o, &name);
                for (k, v) in [("runtime", &runtime), ("runtime_id", &runtime_id)] {
                    if let Some(v) = v {
                        push_key(o, k);
                        push_str(o, v);
                    }
                }
                push_key(o, "owns");
                push_kind_list(o, owns);
            })?;
        }
        Ok(())
    }

    /// Ends every open stay at the last time seen (`why`: "end of trace", or why the input
    /// stopped early), writes the ends of the groups left without a task, and closes the
    /// document: `"nswatchExport":"complete"` at the end of the trace, `"incomplete"`
    /// otherwise.
    pub fn finish(mut self, model: &mut Attributor, why: &str) -> io::Result<()> {
        model.finish();
        let changes: Vec<_> = model.take_changes().collect();
        self.write_changes(model, changes, false)?;
        let end = self.last_ns;
        let mut tids: Vec<u32> = self.stays.keys().copied().collect();
        tids.sort_unstable();
        for tid in tids {
            self.close(tid, end, why)?;
        }
        if why == "end of trace" {
            self.w.finish()
        } else {
            self.w.finish_incomplete()
        }
    }
}

fn push_comm(stay: Option<&mut Stay>, comm: String) {
    if let Some(s) = stay {
        if s.comms.last() != Some(&comm) {
            s.comms.push(comm);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nsset::NsSet;
    use crate::record::NsLink;
    use serde_json::Value;

    fn ev<'a>(time: u64, pid: u32, tid: u32, body: Body<'a>) -> Event<'a> {
        Event {
            time_ns: Some(time),
            cpu: Some(0),
            pid: Some(pid),
            tid: Some(tid),
            synthesized: false,
            body,
        }
    }

    #[test]
    fn stays_slices_and_instants_follow_the_model() {
        let link = |ino| NsLink { dev: 4, ino };
        let host = NsSet::from_links((1..=7).map(link));
        let uts = NsSet::from_links([1, 22, 3, 4, 5, 6, 7].map(link));
        let mut model = Attributor::new(host);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.json");
        let sink = Sink::File(std::fs::File::create(&path).unwrap());
        let mut t = ChromeTrace::new(sink, "test").unwrap();
        let ns = |s| Body::Namespaces {
            ns: s,
            comm: Some("sh".into()),
            cause: None,
        };
        t.event(&mut model, &ev(1_000_000, 10, 10, ns(&host)))
            .unwrap();
        t.event(&mut model, &ev(1_000_500, 10, 10, ns(&uts)))
            .unwrap();
        t.event(
            &mut model,
            &ev(2_000_000, 10, 10, Body::Exit { ppid: 1, ptid: 1 }),
        )
        .unwrap();
        // The sandbox's end is declared once it stayed without a task for the linger, or
        // at the end.
        assert_eq!((t.slices(), t.instants()), (2, 2));
        t.finish(&mut model, "end of trace").unwrap();
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let evs = v["traceEvents"].as_array().unwrap();
        let slices: Vec<&Value> = evs.iter().filter(|e| e["ph"] == "X").collect();
        assert_eq!(slices[0]["ts"].as_f64().unwrap(), 1000.0);
        assert_eq!(slices[0]["dur"].as_f64().unwrap(), 0.5);
        assert_eq!(slices[0]["pid"], 1, "host track");
        assert_eq!(slices[1]["pid"], 2, "sandbox track");
        assert_eq!(slices[1]["args"]["ended"], "exit");
        let change = evs.iter().find(|e| e["name"] == "namespaces").unwrap();
        assert_eq!(change["args"]["changed"]["uts"]["to"], 22);
        assert_eq!(change["args"]["from"], "host");
        assert!(evs
            .iter()
            .any(|e| e["name"] == "container_start" && e["ts"].as_f64() == Some(1000.5)));
        assert!(evs.iter().any(|e| e["name"] == "container_exit"));
        let names: Vec<&str> = evs
            .iter()
            .filter(|e| e["name"] == "process_name")
            .map(|e| e["args"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["host (host)", "sb-22 (sandbox)"]);
    }
}
